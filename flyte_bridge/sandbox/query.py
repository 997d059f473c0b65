"""The admin filter language, sort keys and page tokens, compiled to SQL for SQLite.

Filters are ``fn(field,value)`` expressions joined by ``+`` (section 3 of the behaviour doc).
A field is a column of the listed entity or, with a prefix such as ``launch_plan.``, of an entity
the listing may join. Timestamps are parsed from RFC 3339 and compared as instants, durations
are seconds or Go-style strings, phases are compared by enum name.

Limitations (SQLite's, not admin's): at most ``MAX_FILTER_EXPRESSIONS`` expressions and
``MAX_FILTER_VALUES`` values per filter, and timestamps outside int64 nanoseconds are clamped.
Integers, durations and page tokens must fit int64 as in admin (never an OverflowError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from flyteidl.admin import common_pb2

from flyte_bridge.sandbox.status import invalid

TEXT, INT, TIME, DURATION, BLOB = "text", "int", "time", "duration", "blob"

_EXPRESSION = re.compile(r"^(.+)\((.+),\s?(.+)\)$", re.DOTALL)
_OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})" r"(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_COMMON = {"id": INT, "created_at": TIME, "updated_at": TIME, "deleted_at": TIME}
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
# SQLite integers (and admin's Go int64) hold -2^63 .. 2^63-1; a larger value would reach SQLite
# as an OverflowError, so it is refused (or, for timestamps, clamped) while the filter is read.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# SQLite refuses a statement with more than 32766 parameters ("too many SQL variables"); the
# listings add a few of their own, so a filter may bring at most this many values.
MAX_FILTER_VALUES = 30_000
# SQLite refuses an expression tree deeper than 1000 ("Expression tree is too large"), which a
# chain of ANDs reaches at about 1000 expressions (admin, on Postgres, has no such limit).
MAX_FILTER_EXPRESSIONS = 500


@dataclass(frozen=True)
class Entity:
    """A filterable record type: its filter prefix, short code, table and columns."""

    prefix: str
    code: str
    table: str
    columns: dict[str, str]
    execution_keyed: bool = False


def _columns(kinds: dict[str, str], common: bool = True) -> dict[str, str]:
    return {**(_COMMON if common else {}), **kinds}


EXECUTION = Entity(
    "execution",
    "e",
    "executions",
    _columns(
        {
            "execution_project": TEXT,
            "execution_domain": TEXT,
            "execution_name": TEXT,
            "launch_plan_id": INT,
            "workflow_id": INT,
            "task_id": INT,
            "phase": TEXT,
            "closure": BLOB,
            "spec": BLOB,
            "started_at": TIME,
            "execution_created_at": TIME,
            "execution_updated_at": TIME,
            "duration": DURATION,
            "abort_cause": TEXT,
            "mode": INT,
            "source_execution_id": INT,
            "parent_node_execution_id": INT,
            "cluster": TEXT,
            "inputs_uri": TEXT,
            "user_inputs_uri": TEXT,
            "error_kind": TEXT,
            "error_code": TEXT,
            "user": TEXT,
            "state": INT,
            "launch_entity": TEXT,
        }
    ),
    execution_keyed=True,
)
NODE_EXECUTION = Entity(
    "node_execution",
    "ne",
    "node_executions",
    _columns(
        {
            "execution_project": TEXT,
            "execution_domain": TEXT,
            "execution_name": TEXT,
            "node_id": TEXT,
            "phase": TEXT,
            "input_uri": TEXT,
            "closure": BLOB,
            "started_at": TIME,
            "node_execution_created_at": TIME,
            "node_execution_updated_at": TIME,
            "duration": DURATION,
            "node_execution_metadata": BLOB,
            "parent_id": INT,
            "parent_task_execution_id": INT,
            "error_kind": TEXT,
            "error_code": TEXT,
            "cache_status": TEXT,
            "dynamic_workflow_remote_closure_reference": TEXT,
            "internal_data": BLOB,
        }
    ),
    execution_keyed=True,
)
TASK_EXECUTION = Entity(
    "task_execution",
    "te",
    "task_executions",
    _columns(
        {
            "project": TEXT,
            "domain": TEXT,
            "name": TEXT,
            "version": TEXT,
            "execution_project": TEXT,
            "execution_domain": TEXT,
            "execution_name": TEXT,
            "node_id": TEXT,
            "retry_attempt": INT,
            "phase": TEXT,
            "phase_version": INT,
            "input_uri": TEXT,
            "closure": BLOB,
            "started_at": TIME,
            "task_execution_created_at": TIME,
            "task_execution_updated_at": TIME,
            "duration": DURATION,
        }
    ),
    execution_keyed=True,
)
TASK = Entity(
    "task",
    "t",
    "tasks",
    _columns(
        {
            "project": TEXT,
            "domain": TEXT,
            "name": TEXT,
            "version": TEXT,
            "closure": BLOB,
            "digest": TEXT,
            "type": TEXT,
            "short_description": TEXT,
        }
    ),
)
WORKFLOW = Entity(
    "workflow",
    "w",
    "workflows",
    _columns(
        {
            "project": TEXT,
            "domain": TEXT,
            "name": TEXT,
            "version": TEXT,
            "typed_interface": BLOB,
            "remote_closure_identifier": TEXT,
            "digest": TEXT,
            "short_description": TEXT,
        }
    ),
)
LAUNCH_PLAN = Entity(
    "launch_plan",
    "l",
    "launch_plans",
    _columns(
        {
            "project": TEXT,
            "domain": TEXT,
            "name": TEXT,
            "version": TEXT,
            "spec": BLOB,
            "workflow_id": INT,
            "closure": BLOB,
            "state": INT,
            "digest": TEXT,
            "schedule_type": TEXT,
            "launch_condition_type": TEXT,
        }
    ),
)
PROJECT = Entity(
    "project",
    "p",
    "projects",
    _columns({"identifier": TEXT, "name": TEXT, "description": TEXT, "labels": BLOB, "state": INT}),
)
SIGNAL = Entity(
    "signal",
    "s",
    "signals",
    _columns(
        {
            "execution_project": TEXT,
            "execution_domain": TEXT,
            "execution_name": TEXT,
            "signal_id": TEXT,
            "type": BLOB,
            "value": BLOB,
        }
    ),
    execution_keyed=True,
)
NAMED_ENTITY = Entity(
    "entities",
    "nen",
    "named_entities",
    _columns(
        {
            "resource_type": INT,
            "project": TEXT,
            "domain": TEXT,
            "name": TEXT,
            "description": TEXT,
            "state": INT,
        },
        common=False,
    ),
)
ADMIN_TAG = Entity("admin_tag", "at", "execution_tags", {"name": TEXT})
EXECUTION_TAG = Entity("execution_tag", "et", "execution_tags", {"key": TEXT, "value": TEXT})

_BY_PREFIX = {
    e.prefix: e
    for e in (
        EXECUTION,
        NODE_EXECUTION,
        TASK_EXECUTION,
        TASK,
        WORKFLOW,
        LAUNCH_PLAN,
        PROJECT,
        SIGNAL,
        NAMED_ENTITY,
        ADMIN_TAG,
        EXECUTION_TAG,
    )
}
_BY_PREFIX["execution_admin_tag"] = ADMIN_TAG
_BY_PREFIX["named_entity_metadata"] = Entity(
    "named_entity_metadata", "nem", "named_entity_metadata", {"description": TEXT, "state": INT}
)


@dataclass
class Listing:
    """How one list RPC reads its entity: the base table alias and the joins it may use.

    ``joins`` maps a joinable entity prefix to the SQL JOIN clause that brings it in; the clause
    is added once, only when a filter names that entity.
    """

    entity: Entity
    alias: str
    joins: dict[str, tuple[str, str]] = field(default_factory=dict)
    tag_owner: str | None = None


@dataclass
class Query:
    """A compiled WHERE clause with its parameters and the joins it needs."""

    where: list[str] = field(default_factory=list)
    params: list = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    mentioned: set[str] = field(default_factory=set)

    def add(self, clause: str, *params: object) -> None:
        self.where.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        joins = " ".join(self.joins)
        where = " AND ".join(self.where) if self.where else "1=1"
        return f"{joins} WHERE {where}"


def parse_timestamp(value: str) -> int:
    """Nanoseconds since the epoch from an RFC 3339 timestamp string."""
    text = value.strip()
    match = _RFC3339.match(text)
    if not match:
        raise invalid(f"Timestamp {value} must conform to RFC3339 Nano spec")
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        moment = datetime.fromisoformat(base.replace("t", "T").replace(" ", "T") + zone)
    except ValueError as exc:
        raise invalid(f"Timestamp {value} must conform to RFC3339 Nano spec") from exc
    nanos = int((fraction or ".0")[1:].ljust(9, "0")[:9])
    # Stored instants are int64 nanoseconds (years 1677 to 2262); one outside that range is
    # compared as the nearest representable instant, which orders it as Postgres would.
    return min(max(int(moment.timestamp()) * 1_000_000_000 + nanos, INT64_MIN), INT64_MAX)


def parse_duration(value: str) -> int:
    """Nanoseconds from a bare number of seconds or a Go-style duration such as ``1h30m``.

    Like Go's int64 durations, a value beyond about 292 years (2^63 ns) is refused.
    """
    text = value.strip()
    nanos: float | None = None
    try:
        nanos = float(text) * 1_000_000_000
    except ValueError:
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-")
        parts = _DURATION_PART.findall(body)
        if not parts or "".join(number + unit for number, unit in parts) != body:
            raise invalid(
                f"Failed to parse duration [{value}]: expected seconds (120) or a Go duration "
                "(1h30m, 250ms)"
            ) from None
        nanos = sign * sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not INT64_MIN <= nanos <= INT64_MAX:  # also false for nan
        raise invalid(
            f"Failed to parse duration [{value}]: expected a duration of at most "
            f"{INT64_MAX // 1_000_000_000} seconds (2^63 ns) either way"
        )
    return int(nanos)


def _typed(kind: str, value: str) -> object:
    if kind == TIME:
        return parse_timestamp(value)
    if kind == DURATION:
        return parse_duration(value)
    if kind == INT:
        if not _WHOLE_NUMBER.fullmatch(value) or not INT64_MIN <= int(value) <= INT64_MAX:
            raise invalid(
                f"invalid value [{value}] for an integer filter field: expected a whole number "
                f"from {INT64_MIN} to {INT64_MAX}"
            )
        return int(value)
    return value


def _resolve_field(listing: Listing, name: str) -> tuple[Entity, str, str]:
    """The entity, SQL column reference and column kind a filter field names."""
    entity = listing.entity
    column = name
    if "." in name:
        prefix, column = name.split(".", 1)
        entity = _BY_PREFIX.get(prefix)
        if entity is None:
            raise invalid(f"'{name}' is invalid filter")
    if entity is listing.entity:
        # As flyteadmin: the column check comes first, so project, domain and name are refused
        # on executions, node executions and signals (which have no such columns); on task
        # executions, where they are the task's columns, they are then rewritten to filter on
        # the execution's.
        if column not in entity.columns:
            raise invalid(f"'{entity.code}.{column}' is invalid filter")
        if entity.execution_keyed and column in ("project", "domain", "name"):
            column = f"execution_{column}"
        return entity, f"{listing.alias}.{column}", entity.columns[column]
    if column not in entity.columns:
        raise invalid(f"'{entity.code}.{column}' is invalid filter")
    if entity in (ADMIN_TAG, EXECUTION_TAG) and listing.tag_owner:
        target = "key" if column == "name" else column
        return entity, f"tag.{target}", TEXT
    if entity.prefix not in listing.joins:
        raise invalid(f"'{entity.code}' entity is not allowed in filters")
    alias, _ = listing.joins[entity.prefix]
    return entity, f"{alias}.{column}", entity.columns[column]


def compile_filters(listing: Listing, filters: str, query: Query | None = None) -> Query:
    """Compiles a filter string into ``query`` (a new one if not given)."""
    query = query or Query()
    if not filters:
        return query
    expressions = filters.split("+")
    if len(expressions) > MAX_FILTER_EXPRESSIONS:
        raise invalid(
            f"invalid value for filters: expected at most {MAX_FILTER_EXPRESSIONS} expressions "
            f"joined by '+', got {len(expressions)} (the sandbox's SQLite limit)"
        )
    for expression in expressions:
        match = _EXPRESSION.match(expression)
        if not match:
            raise invalid(f"invalid value for filters: {expression!r}")
        function, name, raw_value = match.groups()
        entity, column, kind = _resolve_field(listing, name)
        query.mentioned.add(name.split(".", 1)[-1] if entity is listing.entity else name)
        values = raw_value.split(";")
        typed = [_typed(kind, value) for value in values]
        clause = _clause(function, column, typed)
        if entity in (ADMIN_TAG, EXECUTION_TAG) and listing.tag_owner:
            clause = (
                f"EXISTS (SELECT 1 FROM execution_tags tag WHERE tag.execution_id = "
                f"{listing.tag_owner} AND {clause})"
            )
        elif entity is not listing.entity:
            join = listing.joins[entity.prefix][1]
            if join not in query.joins:
                query.joins.append(join)
        query.add(clause, *typed)
        if len(query.params) > MAX_FILTER_VALUES:
            raise invalid(
                f"invalid value for filters: expected at most {MAX_FILTER_VALUES} values in all "
                "(the sandbox's SQLite limit)"
            )
    return query


def _clause(function: str, column: str, values: list) -> str:
    if function in ("value_in", "value_not_in"):
        marks = ", ".join("?" for _ in values)
        negation = "NOT " if function == "value_not_in" else ""
        return f"{column} {negation}IN ({marks})"
    if len(values) != 1:
        raise invalid(f"function {function} takes a single value, got {len(values)}")
    if function in _OPERATORS:
        return f"{column} {_OPERATORS[function]} ?"
    if function == "contains":
        return f"instr({column}, ?) > 0"
    if function == "not_like":
        return f"{column} NOT LIKE ?"
    raise invalid(f"unrecognized filter function: {function}")


def order_by(listing: Listing, sort: common_pb2.Sort | None, default: str = "") -> str:
    """The ORDER BY clause of a sort request; the default keeps insertion order."""
    if sort is None or not sort.key:
        return default or f"ORDER BY {listing.alias}.id ASC"
    if sort.key not in listing.entity.columns:
        raise invalid(f"invalid sort key '{sort.key}'")
    direction = "ASC" if sort.direction == common_pb2.Sort.ASCENDING else "DESC"
    return f"ORDER BY {listing.alias}.{sort.key} {direction}, {listing.alias}.id {direction}"


def page(
    limit: int, token: str, *, zero_is_unlimited: bool = False, rpc: str = ""
) -> tuple[int, int]:
    """The (limit, offset) of a page request; limit 0 is refused unless it means 'all'."""
    if limit <= 0 and not zero_is_unlimited:
        raise invalid("invalid value for limit")
    offset = 0
    if token:
        offset = int(token) if _WHOLE_NUMBER.fullmatch(token) else -1
        if not 0 <= offset <= INT64_MAX:
            raise invalid(
                f"invalid pagination token {token[:100]} for {rpc or 'List'}: expected the token "
                f"of a previous page, a row offset from 0 to {INT64_MAX}"
            )
    return (limit if limit > 0 else -1), offset


def next_token(limit: int, offset: int, count: int) -> str:
    """The next page's token: the next offset when this page is full, otherwise empty."""
    return str(offset + count) if limit > 0 and count == limit else ""
