"""A small builder for flyteadmin's list filters and sort orders.

Admin reads filters as ``fn(field,value)`` expressions joined by ``+`` (AND; there is no OR),
with ``;`` separating the values of ``value_in``/``value_not_in``. It has no quoting or escaping:
a ``+``, ``,``, ``(``, ``)`` or ``;`` inside a value would change the meaning of the filter, so
such values are refused here with a ``FlyteInvalidInputError`` instead of being sent.

Example::

    Filter.eq("launch_plan.name", "daily_etl") & Filter.value_in("phase", ["SUCCEEDED", "FAILED"])
    # -> "eq(launch_plan.name,daily_etl)+value_in(phase,SUCCEEDED;FAILED)"
    Sort.desc("created_at")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Iterable
from typing import Any

from flyte_bridge.errors import FlyteInvalidInputError

SINGLE_VALUE_FUNCTIONS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "not_like")
SET_FUNCTIONS = ("value_in", "value_not_in")

ENTITY_PREFIXES = (
    "execution",
    "launch_plan",
    "workflow",
    "task",
    "node_execution",
    "task_execution",
    "entities",
    "named_entity_metadata",
    "project",
    "signal",
    "admin_tag",
    "execution_admin_tag",
    "execution_tag",
)

_COLUMN = r"[a-z_][a-z0-9_]*"
_KEY = re.compile(rf"^(?:(?P<entity>{_COLUMN})\.)?(?P<column>{_COLUMN})$")
_FORBIDDEN = set("+,();")
_EXPRESSION = re.compile(r"^(?P<fn>[a-z_]+)\((?P<key>[^(),]+),\s?(?P<value>[^(),]+)\)$")
_SORT = re.compile(rf"^(?P<direction>asc|desc)\((?P<key>{_COLUMN})\)$")


def _check_key(key: str) -> str:
    """Checks a filter field: a column name with an optional entity prefix admin knows."""
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise FlyteInvalidInputError(
            f"filter field {key!r}: expected a column name such as 'phase' or "
            "'launch_plan.name' (lowercase letters, digits and underscores)"
        )
    entity = match.group("entity")
    if entity is not None and entity not in ENTITY_PREFIXES:
        raise FlyteInvalidInputError(
            f"filter field {key!r}: unknown entity {entity!r}; expected one of "
            f"{', '.join(ENTITY_PREFIXES)}"
        )
    return key


def _phase_names() -> frozenset[str]:
    from flyte_bridge.models import NodePhase, TaskPhase, WorkflowPhase

    return frozenset(p.name for phases in (WorkflowPhase, NodePhase, TaskPhase) for p in phases)


def _phase_value(key: str, text: str, function: str) -> str:
    """A value compared with a ``phase`` column: admin matches phase names exactly, so
    ``running`` would match nothing; known names are written in upper case and unknown ones
    refused."""
    if not isinstance(key, str) or key.rsplit(".", 1)[-1] != "phase" or function == "contains":
        return text
    names = _phase_names()
    if text.upper() in names:
        return text.upper()
    raise FlyteInvalidInputError(
        f"filter value {text!r} for {key}: expected a phase name such as SUCCEEDED, RUNNING or "
        f"FAILED (one of {', '.join(sorted(names))})"
    )


def format_value(value: Any) -> str:
    """Writes one filter value the way admin compares it.

    Enum members are written by name (phases are compared by name, ``SUCCEEDED``); datetimes as
    RFC 3339 in UTC (naive ones are taken as UTC); timedeltas as seconds, which admin reads for
    ``duration``; other values with ``str``.

    Raises:
        FlyteInvalidInputError: if the value is empty, starts with a space, or holds a character
            admin's filter grammar cannot carry (``+ , ( ) ;``).
    """
    if isinstance(value, enum.Enum):
        text = value.name
    elif isinstance(value, dt.datetime):
        moment = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
        text = moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    elif isinstance(value, dt.timedelta):
        text = repr(value.total_seconds())
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise FlyteInvalidInputError(
            f"filter value {value!r}: expected a str, number, enum member, datetime or timedelta"
        )
    if not text:
        raise FlyteInvalidInputError("filter value is empty; admin cannot match an empty value")
    bad = sorted(_FORBIDDEN & set(text))
    if bad:
        raise FlyteInvalidInputError(
            f"filter value {text!r} holds {' '.join(bad)}, which admin's filter language cannot "
            "escape; filter on another field or match a part of the value with contains"
        )
    if text[0].isspace():
        raise FlyteInvalidInputError(
            f"filter value {text!r} starts with a space, which admin strips; remove it"
        )
    return text


@dataclasses.dataclass(frozen=True)
class Filter:
    """Filter expressions that all must hold; combine them with ``&``.

    Build them with the class methods (``Filter.eq("phase", "SUCCEEDED")``) and pass them to a
    client's list call; ``str(filter)`` is the admin filter string.
    """

    expressions: tuple[str, ...] = ()

    @classmethod
    def _single(cls, function: str, key: str, value: Any) -> Filter:
        """One expression comparing ``key`` with one value."""
        text = _phase_value(key, format_value(value), function)
        return cls((f"{function}({_check_key(key)},{text})",))

    @classmethod
    def _set(cls, function: str, key: str, values: Iterable[Any]) -> Filter:
        """One expression testing ``key`` against a set of values."""
        if isinstance(values, (str, bytes)):
            raise FlyteInvalidInputError(
                f"{function}({key}, ...): expected a list of values, got a single str"
            )
        texts = [_phase_value(key, format_value(value), function) for value in values]
        if not texts:
            raise FlyteInvalidInputError(f"{function}({key}, ...): the list of values is empty")
        return cls((f"{function}({_check_key(key)},{';'.join(texts)})",))

    @classmethod
    def eq(cls, key: str, value: Any) -> Filter:
        """``key`` equals ``value``."""
        return cls._single("eq", key, value)

    @classmethod
    def ne(cls, key: str, value: Any) -> Filter:
        """``key`` differs from ``value``."""
        return cls._single("ne", key, value)

    @classmethod
    def gt(cls, key: str, value: Any) -> Filter:
        """``key`` is greater than ``value``."""
        return cls._single("gt", key, value)

    @classmethod
    def gte(cls, key: str, value: Any) -> Filter:
        """``key`` is greater than or equal to ``value``."""
        return cls._single("gte", key, value)

    @classmethod
    def lt(cls, key: str, value: Any) -> Filter:
        """``key`` is less than ``value``."""
        return cls._single("lt", key, value)

    @classmethod
    def lte(cls, key: str, value: Any) -> Filter:
        """``key`` is less than or equal to ``value``."""
        return cls._single("lte", key, value)

    @classmethod
    def contains(cls, key: str, value: Any) -> Filter:
        """``key`` contains the substring ``value`` (SQL ``LIKE %value%``)."""
        return cls._single("contains", key, value)

    @classmethod
    def not_like(cls, key: str, pattern: Any) -> Filter:
        """``key`` does not match the SQL ``LIKE`` pattern (``%`` is the wildcard)."""
        return cls._single("not_like", key, pattern)

    @classmethod
    def value_in(cls, key: str, values: Iterable[Any]) -> Filter:
        """``key`` is one of ``values``."""
        return cls._set("value_in", key, values)

    @classmethod
    def value_not_in(cls, key: str, values: Iterable[Any]) -> Filter:
        """``key`` is none of ``values``."""
        return cls._set("value_not_in", key, values)

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Reads an admin filter string (``eq(phase,RUNNING)+gt(duration,60)``), checking it.

        Raises:
            FlyteInvalidInputError: naming the expression that is not ``fn(field,value)`` with a
                known function, field and value.
        """
        if not text.strip():
            return cls()
        expressions = []
        for part in text.split("+"):
            match = _EXPRESSION.match(part.strip())
            if match is None:
                raise FlyteInvalidInputError(
                    f"filter {part!r}: expected fn(field,value), e.g. eq(phase,SUCCEEDED)"
                )
            function, key, value = match.group("fn", "key", "value")
            if function in SET_FUNCTIONS:
                expressions.extend(cls._set(function, key.strip(), value.split(";")).expressions)
            elif function in SINGLE_VALUE_FUNCTIONS:
                expressions.extend(cls._single(function, key.strip(), value).expressions)
            else:
                known = ", ".join(SINGLE_VALUE_FUNCTIONS + SET_FUNCTIONS)
                raise FlyteInvalidInputError(
                    f"filter {part!r}: unknown function {function!r}; expected one of {known}"
                )
        return cls(tuple(expressions))

    @classmethod
    def all(cls, *filters: Filter | str | None) -> Filter:
        """Joins filters (or admin filter strings) with AND, skipping ``None`` and empty ones."""
        result = cls()
        for item in filters:
            if item is None:
                continue
            result &= cls.parse(item) if isinstance(item, str) else item
        return result

    def __and__(self, other: Filter) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        return Filter(self.expressions + other.expressions)

    def __bool__(self) -> bool:
        return bool(self.expressions)

    def __str__(self) -> str:
        return "+".join(self.expressions)


@dataclasses.dataclass(frozen=True)
class Sort:
    """A sort order for list calls: a column of the listed entity and a direction."""

    key: str
    ascending: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not re.fullmatch(_COLUMN, self.key):
            raise FlyteInvalidInputError(
                f"sort key {self.key!r}: expected a column of the listed entity, without an "
                "entity prefix, e.g. 'created_at'"
            )

    @classmethod
    def asc(cls, key: str) -> Sort:
        """Sorts by ``key``, smallest first."""
        return cls(key, ascending=True)

    @classmethod
    def desc(cls, key: str) -> Sort:
        """Sorts by ``key``, largest (latest) first."""
        return cls(key, ascending=False)

    @classmethod
    def parse(cls, text: str) -> Sort:
        """Reads ``asc(key)`` or ``desc(key)``.

        Raises:
            FlyteInvalidInputError: if ``text`` has another shape.
        """
        match = _SORT.match(text.strip())
        if match is None:
            raise FlyteInvalidInputError(
                f"sort {text!r}: expected asc(key) or desc(key), e.g. desc(created_at)"
            )
        return cls(match.group("key"), ascending=match.group("direction") == "asc")

    def to_proto(self) -> Any:
        """Returns the ``admin.Sort`` message (DESCENDING is flyteidl's default, 0)."""
        from flyteidl.admin import common_pb2

        direction = common_pb2.Sort.ASCENDING if self.ascending else common_pb2.Sort.DESCENDING
        return common_pb2.Sort(key=self.key, direction=direction)

    def __str__(self) -> str:
        return f"{'asc' if self.ascending else 'desc'}({self.key})"


MOST_RECENT_FIRST = Sort.desc("created_at")
"""The order of ``recent_executions``: newest first."""
