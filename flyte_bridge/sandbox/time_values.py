"""Validity of google.protobuf Timestamp and Duration values found anywhere in a request.

protobuf's Python runtime stores any seconds and nanos, but its ``ToDatetime`` and
``ToTimedelta`` (which flytekit calls on every execution it lists) raise ``ValueError`` for a
value outside the range the well-known types define. The sandbox refuses such a value when it is
sent, so that one bad record cannot break every later read of a project.
"""

from __future__ import annotations

from google.protobuf.message import Message

TIMESTAMP_SECONDS = (-62135596800, 253402300799)  # 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z
DURATION_SECONDS = 315576000000  # 10,000 years, either sign
_MAX_NANOS = 999999999


def timestamp_problem(seconds: int, nanos: int) -> str | None:
    """Why a Timestamp with these parts is not valid, or None if it is."""
    if TIMESTAMP_SECONDS[0] <= seconds <= TIMESTAMP_SECONDS[1] and 0 <= nanos <= _MAX_NANOS:
        return None
    return (
        f"is not a valid timestamp (seconds={seconds}, nanos={nanos}): seconds must be in "
        f"[{TIMESTAMP_SECONDS[0]}, {TIMESTAMP_SECONDS[1]}] and nanos in [0, {_MAX_NANOS}]"
    )


def duration_problem(seconds: int, nanos: int) -> str | None:
    """Why a Duration with these parts is not valid, or None if it is."""
    in_range = abs(seconds) <= DURATION_SECONDS and abs(nanos) <= _MAX_NANOS
    if in_range and not (seconds > 0 > nanos or seconds < 0 < nanos):
        return None
    return (
        f"is not a valid duration (seconds={seconds}, nanos={nanos}): seconds must be in "
        f"[-{DURATION_SECONDS}, {DURATION_SECONDS}], nanos in [-{_MAX_NANOS}, {_MAX_NANOS}] "
        "and of the same sign as seconds"
    )


_CHECKS = {
    "google.protobuf.Timestamp": timestamp_problem,
    "google.protobuf.Duration": duration_problem,
}


def invalid_time_value(message: Message, path: str = "") -> str | None:
    """The first Timestamp or Duration set in ``message`` that is not valid, named by its path.

    Returns None when every one is valid, else ``"<path> is not a valid ..."``; repeated fields
    and maps show the index or key in brackets (``collection.literals[2].scalar...``).
    """
    check = _CHECKS.get(message.DESCRIPTOR.full_name)
    if check is not None:
        problem = check(message.seconds, message.nanos)
        return f"{path or 'value'} {problem}" if problem else None
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        name = f"{path}.{field.name}" if path else field.name
        if isinstance(value, Message):
            items = [(name, value)]
        elif field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = [(f"{name}[{key}]", item) for key, item in value.items()]
        else:
            items = [(f"{name}[{index}]", item) for index, item in enumerate(value)]
        for item_path, item in items:
            problem = invalid_time_value(item, item_path)
            if problem:
                return problem
    return None
