"""A read-only HTML page per execution, so that console links flytekit and the bridge print work.

The sandbox has no Flyte console. ``/console/projects/<p>/domains/<d>/executions/<name>`` (and
any path below it) shows the execution's phase, timing, error, inputs and outputs, and each node
execution with its task attempts and log links. Other console pages are not served.
"""

from __future__ import annotations

import html
import re

from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2
from google.protobuf import text_format

from flyte_bridge.sandbox.status import AdminError

_EXECUTION_PATH = re.compile(
    r"^console/projects/(?P<project>[^/]+)/domains/(?P<domain>[^/]+)/executions/(?P<name>[^/]+)"
)
_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "pre{background:#f6f6f6;padding:8px;max-height:20em;overflow:auto}"
)


def _time(timestamp) -> str:
    return timestamp.ToJsonString() if timestamp.seconds else ""


def _duration(duration) -> str:
    return f"{duration.ToNanoseconds() / 1e9:.2f}s" if duration.ToNanoseconds() else ""


def _literals(literal_map) -> str:
    return html.escape(text_format.MessageToString(literal_map, as_utf8=True)[:20_000])


def render(executions, path: str) -> tuple[int, str]:
    """The (HTTP status, HTML) of a console path."""
    match = _EXECUTION_PATH.match(path)
    if not match:
        return 404, "<p>The sandbox's console shows executions only.</p>"
    execution_id = identifier_pb2.WorkflowExecutionIdentifier(**match.groupdict())
    try:
        execution = executions.get_execution(execution_id)
    except AdminError as err:
        return 404, f"<p>{html.escape(err.message)}</p>"
    closure = execution.closure
    phase = core_execution_pb2.WorkflowExecution.Phase.Name(closure.phase)
    data = executions.get_execution_data(execution_id)
    parts = [
        f"<h1>{html.escape(execution_id.name)}</h1>",
        f"<p>{html.escape(execution_id.project)} / {html.escape(execution_id.domain)} &middot; "
        f"launch plan {html.escape(execution.spec.launch_plan.name)} &middot; <b>{phase}</b></p>",
        "<table><tr><th>created</th><th>started</th><th>duration</th></tr>",
        f"<tr><td>{_time(closure.created_at)}</td><td>{_time(closure.started_at)}</td>"
        f"<td>{_duration(closure.duration)}</td></tr></table>",
    ]
    if closure.HasField("error"):
        parts.append(
            f"<h2>Error {html.escape(closure.error.code)}</h2>"
            f"<pre>{html.escape(closure.error.message)}</pre>"
        )
    if closure.HasField("abort_metadata"):
        parts.append(f"<p>Aborted: {html.escape(closure.abort_metadata.cause)}</p>")
    parts.append(f"<h2>Inputs</h2>{_data(data.full_inputs, data.inputs)}")
    if data.full_outputs.literals or data.outputs.bytes:
        parts.append(f"<h2>Outputs</h2>{_data(data.full_outputs, data.outputs)}")
    parts.append(_nodes(executions, execution_id))
    return 200, "".join(parts)


def _data(inline, blob) -> str:
    """Inline literals, or a link to a map too large to show (above the inline limit)."""
    if not inline.literals and blob.bytes:
        return f'<p><a href="{html.escape(blob.url)}">{blob.bytes} bytes, stored apart</a></p>'
    return f"<pre>{_literals(inline)}</pre>"


def _nodes(executions, execution_id, parent: str = "") -> str:
    nodes = executions.list_node_executions(execution_id, parent)
    if not nodes:
        return ""
    rows = [
        "<table><tr><th>node</th><th>phase</th><th>started</th><th>duration</th>"
        "<th>attempts</th></tr>"
    ]
    for node in nodes:
        phase = core_execution_pb2.NodeExecution.Phase.Name(node.closure.phase)
        attempts = _attempts(executions, node)
        error = ""
        if node.closure.HasField("error"):
            error = f"<pre>{html.escape(node.closure.error.message[:2000])}</pre>"
        children = (
            _nodes(executions, execution_id, node.id.node_id)
            if (node.metadata.is_parent_node)
            else ""
        )
        rows.append(
            f"<tr><td>{html.escape(node.id.node_id)}</td><td>{phase}{error}</td>"
            f"<td>{_time(node.closure.started_at)}</td><td>{_duration(node.closure.duration)}"
            f"</td><td>{attempts}{children}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _attempts(executions, node: node_execution_pb2.NodeExecution) -> str:
    listed = executions.list_task_executions(
        task_execution_pb2.TaskExecutionListRequest(node_execution_id=node.id, limit=1000)
    ).task_executions
    phase_name = core_execution_pb2.TaskExecution.Phase.Name
    items = []
    for attempt in listed:
        phase = phase_name(attempt.closure.phase)
        items.append(f"#{attempt.id.retry_attempt} {phase} {_log_links(attempt.closure.logs)}")
        # An array node's items: one entry per item attempt, inside the array's task execution.
        for item in attempt.closure.metadata.external_resources:
            items.append(
                f"item {item.index} #{item.retry_attempt} {phase_name(item.phase)} "
                f"{_log_links(item.logs)}"
            )
    return "<br>".join(items)


def _log_links(logs) -> str:
    return " ".join(
        f'<a href="{html.escape(log.uri)}">{html.escape(log.name or "log")}</a>' for log in logs
    )


def page(body: str) -> bytes:
    """A complete HTML document around ``body``."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Flyte sandbox</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    ).encode()
