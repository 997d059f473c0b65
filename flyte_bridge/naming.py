"""Deterministic execution names that flyteadmin accepts.

An orchestrator that launches a Flyte execution for one of its steps names the execution after the
step (for Airflow: dag id, task id, run id and map index), so that any process can recompute the
name: a retry finds the run of an earlier try instead of launching a second one, and a kill
handler finds the run to terminate without any stored state.

Names follow flyteadmin's rule (``^[a-z][a-z0-9-]*$``, at most 63 characters; admins older than
1.1 allow 20). A name is a readable slug of the parts followed by a digest of all of them, so two
steps whose slugs are cut to the same text still get different names; under a 20-character limit
the slug keeps only the first few letters and the digest tells the steps apart.
:func:`flyte_bridge.reattach.launch_or_reattach` builds names within the client config's
``max_execution_name_length``. ``generation`` counts the runs of one step: generation 0 is the
first launch; after a run failed or was aborted the next launch uses generation 1, and so on,
each with its own deterministic name.
"""

from __future__ import annotations

import hashlib
import json
import re

from flyte_bridge.errors import FlyteInvalidInputError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
"""flyteadmin's execution name rule (it lower-cases before matching; we require lower case)."""

MAX_NAME_LENGTH = 63
"""flyteadmin's limit since 1.1 (the Kubernetes label limit); older admins allow 20."""

DIGEST_LENGTH = 10
"""Hex characters of the digest: 40 bits, so a collision needs about a million names per step."""

_SEPARATOR = re.compile(r"[^a-z0-9]+")


def execution_name(*parts: object, generation: int = 0, max_length: int = MAX_NAME_LENGTH) -> str:
    """Builds the deterministic execution name of one step and generation.

    Args:
        *parts: What identifies the step, most readable first (for Airflow: dag id, task id,
            run id, map index). Each is turned into text with ``str``; ``None`` and ``""``
            differ from each other and from every other value.
        generation: 0 for the first launch of the step, n for the launch after n runs of it
            failed or were aborted.
        max_length: The server's name length limit (63, or 20 on old admins).

    Returns:
        A name such as ``"daily-report-launch-3f9c2a7d1e"`` (``"...-g1"`` for generation 1)
        that matches ``^[a-z][a-z0-9-]*$`` and fits ``max_length``.

    Raises:
        FlyteInvalidInputError: No parts, a negative generation, or a limit too short to hold
            a letter, the digest and the generation suffix.
    """
    if not parts:
        raise FlyteInvalidInputError("execution_name needs at least one part to name the step")
    if generation < 0:
        raise FlyteInvalidInputError(f"generation must be 0 or more, got {generation}")

    suffix = f"-g{generation}" if generation else ""
    digest = _digest(parts, generation)
    room = max_length - len(suffix) - len(digest) - 1
    if room < 1:
        raise FlyteInvalidInputError(
            f"max_length {max_length} cannot hold a name: at least "
            f"{max_length - room + 1} characters are needed for generation {generation}"
        )

    slug = _slug(parts)
    if not slug or not slug[0].isalpha():
        slug = f"f-{slug}" if slug else "f"
    slug = slug[:room].rstrip("-")
    return f"{slug}-{digest}{suffix}"


def validate_execution_name(name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """Checks a caller-chosen execution name before any RPC, with a message that says the rule.

    Args:
        name: The name to check.
        max_length: The server's name length limit (63, or 20 on old admins).

    Returns:
        The name, unchanged.

    Raises:
        FlyteInvalidInputError: The name is empty, too long, or not lower-case letters, digits
            and '-' starting with a letter.
    """
    if not isinstance(name, str) or not name:
        raise FlyteInvalidInputError(
            f"execution name must be a non-empty string, got {name!r}", subject=repr(name)
        )
    if len(name) > max_length:
        raise FlyteInvalidInputError(
            f"execution name {name!r} has {len(name)} characters; at most {max_length} allowed",
            subject=name,
        )
    if not NAME_PATTERN.match(name):
        raise FlyteInvalidInputError(
            f"execution name {name!r} must be lower-case letters, digits and '-' and start "
            "with a letter (flyteadmin's ^[a-z][a-z0-9-]*$)",
            subject=name,
        )
    return name


def _slug(parts: tuple[object, ...]) -> str:
    """Lower-cases the parts and joins their runs of letters and digits with '-'."""
    text = "-".join("" if part is None else str(part) for part in parts).lower()
    return _SEPARATOR.sub("-", text).strip("-")


def _digest(parts: tuple[object, ...], generation: int) -> str:
    """A stable digest of the parts' text (``None`` kept apart from ``""``) and the generation."""
    encoded = json.dumps(
        [None if part is None else str(part) for part in parts] + [generation],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


_LABEL_NAME = r"[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
LABEL_KEY = re.compile(rf"^({_LABEL_NAME}/)?{_LABEL_NAME}$")
"""A Kubernetes label key: an optional ``prefix/`` and a name of at most 63 characters."""
LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
"""A Kubernetes label value: empty, or a name of at most 63 characters."""


def label_problem(key: str, value: str) -> str | None:
    """Why Kubernetes (and so flyteadmin) would refuse the label, or None when it is valid."""
    if len(key.split("/")[-1]) > 63 or not LABEL_KEY.match(key):
        return (
            f"label key {key!r} is not a Kubernetes label name: expected letters, digits, "
            "'-', '_' and '.' (at most 63, starting and ending with a letter or digit), "
            "optionally after a 'prefix/'"
        )
    if len(value) > 63 or not LABEL_VALUE.match(value):
        return (
            f"label value {value!r} of {key!r} is not a Kubernetes label value: expected at most "
            "63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return None


def natural_order(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key putting o2 before o10 (numbers in names compare as numbers): the order in which
    inputs, outputs and map keys are returned and shown, the same in every process."""
    # ASCII digits only: str.isdigit() is also true of '²', which int() cannot read.
    return tuple(
        (0, int(part), "") if part.isascii() and part.isdigit() else (1, 0, part)
        for part in re.split(r"([0-9]+)", name)
        if part
    )
