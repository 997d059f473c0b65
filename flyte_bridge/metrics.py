"""Execution metrics: the span tree GetExecutionMetrics returns, as rows, a table and YAML.

Admin answers ``GetExecutionMetrics`` with one ``core.Span`` per execution, node execution and
task execution, each holding child spans and leaf *operation* spans (``WORKFLOW_SETUP``,
``NODE_SETUP``, ``TASK_RUNTIME``...) that split its time. ``ExecutionSpan`` wraps that tree; its
``rows()``, ``breakdown()``, ``to_dict()``, ``explain()`` and ``dump()`` return data or strings
and print nothing. Times are UTC. Every span gets an id that is unique in the tree (its path of
entity labels), so equal node ids in two sub-workflows never overwrite each other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import yaml
from flyteidl.core import metrics_pb2

_UTC = dt.timezone.utc
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _time(timestamp: Any, present: bool) -> dt.datetime | None:
    """A protobuf Timestamp as a UTC datetime, or None when the field is unset."""
    if not present:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(
        seconds=timestamp.seconds, microseconds=timestamp.nanos // 1000
    )


@dataclasses.dataclass(frozen=True)
class SpanRow:
    """One line of ``ExecutionSpan.rows()``: a span with its depth in the tree."""

    span_id: str
    kind: str
    label: str
    depth: int
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def duration(self) -> dt.timedelta | None:
        """``end - start``, or None when either is unknown."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class ExecutionSpan:
    """A span of the metrics tree: an execution, node execution, task execution or operation.

    Attributes:
        kind: ``"workflow"``, ``"node"``, ``"task"`` or ``"operation"``.
        name: The execution name, node id, retry attempt (as text) or operation id.
        key: ``name``, with ``#2``, ``#3``... when siblings share it (repeated operations).
        span_id: Unique in the tree: the labels from the root down, joined by ``/``.
        start: Start time (UTC), None when admin left it unset.
        end: End time (UTC), None when admin left it unset.
        children: Child spans in admin's order (by start time).
        proto: The ``core.Span`` this was built from.
    """

    kind: str
    name: str
    key: str
    span_id: str
    start: dt.datetime | None
    end: dt.datetime | None
    children: tuple[ExecutionSpan, ...]
    proto: Any = dataclasses.field(repr=False, compare=False, default=None)

    @classmethod
    def from_proto(
        cls, span: metrics_pb2.Span, parent_id: str = "", key: str | None = None
    ) -> ExecutionSpan:
        """Builds the tree from a ``core.Span`` (the ``span`` of the metrics response).

        Args:
            span: The root span.
            parent_id: Id of the parent span, for a subtree; empty for the root.
            key: Name that is unique among the span's siblings; defaults to its name.
        """
        kind, name = _kind_and_name(span)
        key = name if key is None else key
        own_id = f"{parent_id}/{kind}:{key}" if parent_id else f"{kind}:{key}"
        children = []
        seen: dict[tuple[str, str], int] = {}
        for child in span.spans:
            identity = _kind_and_name(child)
            seen[identity] = seen.get(identity, 0) + 1
            count = seen[identity]
            child_key = identity[1] if count == 1 else f"{identity[1]}#{count}"
            children.append(cls.from_proto(child, own_id, child_key))
        return cls(
            kind=kind,
            name=name,
            key=key,
            span_id=own_id,
            start=_time(span.start_time, span.HasField("start_time")),
            end=_time(span.end_time, span.HasField("end_time")),
            children=tuple(children),
            proto=span,
        )

    @property
    def duration(self) -> dt.timedelta | None:
        """``end - start``, or None when either is unknown."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def label(self) -> str:
        """``workflow/<name>``, ``node/<node id>``, ``task/<attempt>`` or the operation id."""
        return self.name if self.kind == "operation" else f"{self.kind}/{self.name}"

    def walk(self, max_depth: int | None = None) -> Iterator[tuple[int, ExecutionSpan]]:
        """Yields ``(depth, span)`` depth-first from this span (depth 0), down to ``max_depth``."""
        stack: list[tuple[int, ExecutionSpan]] = [(0, self)]
        while stack:
            depth, span = stack.pop()
            yield depth, span
            if max_depth is None or depth < max_depth:
                stack.extend((depth + 1, child) for child in reversed(span.children))

    def rows(self, max_depth: int | None = None) -> list[SpanRow]:
        """Returns every span down to ``max_depth`` as rows, depth-first."""
        return [
            SpanRow(span.span_id, span.kind, span.label, depth, span.start, span.end)
            for depth, span in self.walk(max_depth)
        ]

    def breakdown(self) -> dict[str, float]:
        """Seconds spent per operation id over the whole subtree, sorted by operation id."""
        totals: dict[str, float] = {}
        for _, span in self.walk():
            if span.kind == "operation" and span.duration is not None:
                totals[span.name] = totals.get(span.name, 0.0) + span.duration.total_seconds()
        return {name: round(totals[name], 6) for name in sorted(totals)}

    def to_dict(self, max_depth: int | None = None) -> dict[str, Any]:
        """Returns ``{label: summary}`` where a summary holds start, end, duration (seconds),
        the subtree's breakdown, and the child entities grouped as ``nodes``, ``task_attempts``
        and ``executions`` (launch-plan children), each keyed uniquely among its siblings."""
        return {self.label: self._summary(max_depth)}

    def _summary(self, max_depth: int | None) -> dict[str, Any]:
        """The summary of this entity span (see ``to_dict``)."""
        summary: dict[str, Any] = {
            "start": _format_time(self.start),
            "end": _format_time(self.end),
            "duration": _seconds(self.duration),
            "breakdown": self.breakdown(),
        }
        if max_depth is not None and max_depth <= 0:
            return summary
        groups = {"node": "nodes", "task": "task_attempts", "workflow": "executions"}
        deeper = None if max_depth is None else max_depth - 1
        for child in self.children:
            if child.kind == "operation":
                continue
            group = summary.setdefault(groups[child.kind], {})
            is_attempt = child.kind == "task" and child.key.isdigit()
            key: Any = int(child.key) if is_attempt else child.key
            group[key] = child._summary(deeper)
        return summary

    def explain(self, max_depth: int | None = None) -> str:
        """Returns a table of the spans, indented by depth, with UTC times and durations.

        Args:
            max_depth: How many levels below this span to show; None shows all.
        """
        rows = self.rows(max_depth)
        labels = ["  " * row.depth + row.label for row in rows]
        width = max([len("span"), *(len(label) for label in labels)])
        header = f"{'span':<{width}}  {'start (UTC)':<26}  {'end (UTC)':<26}  {'duration':>10}"
        lines = [header, "-" * len(header)]
        for label, row in zip(labels, rows, strict=True):
            duration = "-" if row.duration is None else f"{row.duration.total_seconds():.3f}s"
            lines.append(
                f"{label:<{width}}  {_format_time(row.start) or '-':<26}  "
                f"{_format_time(row.end) or '-':<26}  {duration:>10}"
            )
        return "\n".join(lines) + "\n"

    def dump(self, max_depth: int | None = None) -> str:
        """Returns ``to_dict()`` as block-style YAML (PyYAML's safe dumper, nothing patched)."""
        return yaml.safe_dump(
            self.to_dict(max_depth), sort_keys=False, default_flow_style=False, indent=2
        )


def _kind_and_name(span: metrics_pb2.Span) -> tuple[str, str]:
    """The span's kind and its name within its parent."""
    which = span.WhichOneof("id")
    if which == "workflow_id":
        return "workflow", span.workflow_id.name
    if which == "node_id":
        return "node", span.node_id.node_id
    if which == "task_id":
        return "task", str(span.task_id.retry_attempt)
    if which == "operation_id":
        return "operation", span.operation_id
    return "operation", "UNKNOWN"


def _format_time(moment: dt.datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, or None."""
    return None if moment is None else moment.astimezone(_UTC).strftime(_TIME_FORMAT)


def _seconds(duration: dt.timedelta | None) -> float | None:
    """A duration in seconds, or None."""
    return None if duration is None else round(duration.total_seconds(), 6)
