"""GetExecutionMetrics: an execution's timeline as nested spans, built as flyteadmin builds it.

Spans come from the recorded closures only (created, started, updated timestamps and
durations). The leaves carry operation ids such as ``NODE_SETUP`` or ``TASK_RUNTIME`` that
flytekit's ``FlyteExecutionSpan.explain()`` aggregates. A sub-workflow's nodes are matched
against the parent's compiled closure (flyteadmin fetches the sub-workflow by id instead). An
array node's span has no children, as in flyteadmin: its items are not broken down.
"""

from __future__ import annotations

from flyteidl.admin import execution_pb2, node_execution_pb2
from flyteidl.core import compiler_pb2, identifier_pb2, metrics_pb2, workflow_pb2
from google.protobuf import timestamp_pb2

from flyte_bridge.sandbox.compiler import END_NODE, START_NODE, identifier_key, inner_nodes
from flyte_bridge.sandbox.db import from_duration, from_timestamp, to_timestamp
from flyte_bridge.sandbox.status import internal

WORKFLOW_SETUP = "WORKFLOW_SETUP"
WORKFLOW_TEARDOWN = "WORKFLOW_TEARDOWN"
NODE_SETUP = "NODE_SETUP"
NODE_TRANSITION = "NODE_TRANSITION"
NODE_RESET = "NODE_RESET"
NODE_IDLE = "NODE_IDLE"
NODE_TEARDOWN = "NODE_TEARDOWN"
TASK_SETUP = "TASK_SETUP"
TASK_RUNTIME = "TASK_RUNTIME"
TASK_TEARDOWN = "TASK_TEARDOWN"


def _ns(ts: timestamp_pb2.Timestamp) -> int:
    return from_timestamp(ts)


def _operation(name: str, start: int, end: int) -> metrics_pb2.Span:
    return metrics_pb2.Span(
        operation_id=name, start_time=to_timestamp(start), end_time=to_timestamp(end)
    )


class ExecutionMetrics:
    """Builds the span tree of one execution from the records of :class:`Executions`."""

    def __init__(self, executions) -> None:
        self.executions = executions

    def get(self, request: execution_pb2.WorkflowExecutionGetMetricsRequest):
        execution = self.executions.get_execution(request.id)
        return execution_pb2.WorkflowExecutionGetMetricsResponse(
            span=self._execution_span(execution, request.depth)
        )

    def _execution_span(self, execution: execution_pb2.Execution, depth: int) -> metrics_pb2.Span:
        closure = execution.closure
        created, updated = _ns(closure.created_at), _ns(closure.updated_at)
        span = metrics_pb2.Span(
            workflow_id=execution.id,
            start_time=closure.created_at,
            end_time=closure.updated_at,
        )
        if depth == 0:
            return span
        compiled = self.executions.get_workflow(closure.workflow_id).closure.compiled_workflow
        nodes = self.executions.list_node_executions(execution.id)
        start = next((n for n in nodes if n.id.node_id == START_NODE), None)
        if start is None or not start.closure.HasField("updated_at"):
            span.spans.append(_operation(WORKFLOW_SETUP, created, updated))
            return span
        span.spans.append(_operation(WORKFLOW_SETUP, created, _ns(start.closure.updated_at)))
        span.spans.extend(self._node_list(nodes, compiled, compiled.primary, depth - 1))
        latest = _latest_upstream(END_NODE, compiled.primary, nodes)
        if latest is not None and _ns(latest.closure.updated_at) <= updated:
            span.spans.append(
                _operation(WORKFLOW_TEARDOWN, _ns(latest.closure.updated_at), updated)
            )
        return span

    def _node_list(self, nodes, closure, workflow, depth) -> list[metrics_pb2.Span]:
        """Spans of sibling node executions, each after its NODE_TRANSITION from upstream."""
        specs = _node_specs(workflow.template)
        spans = []
        for node in sorted(nodes, key=lambda n: _ns(n.closure.created_at)):
            spec_id = node.metadata.spec_node_id or node.id.node_id
            if spec_id in (START_NODE, END_NODE):
                continue
            spec = specs.get(spec_id)
            if spec is None:
                raise internal(
                    f"node execution {node.id.node_id} refers to node {spec_id}, which is not in "
                    f"workflow {workflow.template.id.name}"
                )
            latest = _latest_upstream(spec_id, workflow, nodes)
            if latest is not None:
                spans.append(
                    _operation(
                        NODE_TRANSITION,
                        _ns(latest.closure.updated_at),
                        _ns(node.closure.created_at),
                    )
                )
            spans.append(self._node_span(node, spec, closure, depth))
        return spans

    def _node_span(self, node, spec: workflow_pb2.Node, closure, depth) -> metrics_pb2.Span:
        created, updated = _ns(node.closure.created_at), _ns(node.closure.updated_at)
        span = metrics_pb2.Span(
            node_id=node.id, start_time=node.closure.created_at, end_time=node.closure.updated_at
        )
        if depth == 0:
            return span
        kind = spec.WhichOneof("target")
        children = span.spans
        if kind == "task_node":
            last = self._task_attempts(node, children, created, updated, depth)
            if node.metadata.is_parent_node:
                self._dynamic_children(node, children, last, updated, depth)
        elif kind == "gate_node":
            _gate(node, children, created, updated)
        elif kind == "workflow_node" and spec.workflow_node.HasField("launchplan_ref"):
            self._launch_plan_child(node, children, created, updated, depth)
        elif kind == "workflow_node":
            sub = _find_sub_workflow(closure, spec.workflow_node.sub_workflow_ref)
            self._nested(node, sub, closure, children, created, updated, depth)
        elif kind == "branch_node":
            self._branch(node, spec, closure, children, created, updated, depth)
        # Array nodes get no child spans: flyteadmin logs them as unsupported and goes on.
        return span

    def _task_attempts(self, node, children, created, updated, depth) -> int:
        """Adds NODE_SETUP, one span per attempt with NODE_RESET gaps, NODE_TEARDOWN."""
        attempts = self._attempts(node)
        if not attempts:
            children.append(_operation(NODE_SETUP, created, updated))
            return updated
        children.append(_operation(NODE_SETUP, created, _ns(attempts[0].closure.created_at)))
        previous = None
        for attempt in attempts:
            if previous is not None:
                children.append(
                    _operation(
                        NODE_RESET,
                        _ns(previous.closure.updated_at),
                        _ns(attempt.closure.created_at),
                    )
                )
            children.append(_task_span(attempt, depth - 1))
            previous = attempt
        last = _ns(attempts[-1].closure.updated_at)
        if not node.metadata.is_parent_node and updated >= last:
            children.append(_operation(NODE_TEARDOWN, last, updated))
        return last

    def _attempts(self, node):
        from flyteidl.admin import task_execution_pb2

        listed = self.executions.list_task_executions(
            task_execution_pb2.TaskExecutionListRequest(node_execution_id=node.id, limit=1_000_000)
        ).task_executions
        return sorted(listed, key=lambda t: _ns(t.closure.created_at))

    def _dynamic_children(self, node, children, last, updated, depth) -> None:
        child_nodes = self.executions.list_node_executions(node.id.execution_id, node.id.node_id)
        if not child_nodes:
            children.append(_operation(NODE_RESET, last, updated))
            return
        data = self.executions.get_node_execution_data(node.id)
        compiled = data.dynamic_workflow.compiled_workflow
        start = next((n for n in child_nodes if n.metadata.spec_node_id == START_NODE), None)
        if start is not None:
            children.append(_operation(NODE_RESET, last, _ns(start.closure.updated_at)))
        children.extend(self._node_list(child_nodes, compiled, compiled.primary, depth - 1))
        self._teardown(children, compiled.primary, child_nodes, updated)

    def _launch_plan_child(self, node, children, created, updated, depth) -> None:
        target = node.closure.workflow_node_metadata
        if not target.HasField("executionId"):
            children.append(_operation(NODE_SETUP, created, updated))
            return
        child = self.executions.get_execution(target.executionId)
        child_created, child_updated = (
            _ns(child.closure.created_at),
            _ns(child.closure.updated_at),
        )
        children.append(_operation(NODE_SETUP, created, child_created))
        children.append(self._execution_span(child, depth - 1))
        if updated >= child_updated:
            children.append(_operation(NODE_TEARDOWN, child_updated, updated))

    def _nested(self, node, workflow, closure, children, created, updated, depth) -> None:
        child_nodes = self.executions.list_node_executions(node.id.execution_id, node.id.node_id)
        if not child_nodes:
            children.append(_operation(NODE_SETUP, created, updated))
            return
        start = next((n for n in child_nodes if n.metadata.spec_node_id == START_NODE), None)
        start_end = _ns(start.closure.updated_at) if start is not None else created
        children.append(_operation(NODE_SETUP, created, start_end))
        children.extend(self._node_list(child_nodes, closure, workflow, depth - 1))
        self._teardown(children, workflow, child_nodes, updated)

    def _branch(self, node, spec, closure, children, created, updated, depth) -> None:
        child_nodes = self.executions.list_node_executions(node.id.execution_id, node.id.node_id)
        if not child_nodes:
            children.append(_operation(NODE_SETUP, created, updated))
            return
        if len(child_nodes) > 1:
            raise internal(f"branch node {node.id.node_id} has more than one child execution")
        (child,) = child_nodes
        specs = {inner.id: inner for inner in inner_nodes(spec)}
        child_spec = specs.get(child.metadata.spec_node_id or child.id.node_id)
        if child_spec is None:
            raise internal(f"branch node {node.id.node_id} ran an unknown case node")
        child_created, child_updated = (
            _ns(child.closure.created_at),
            _ns(child.closure.updated_at),
        )
        children.append(_operation(NODE_SETUP, created, child_created))
        children.append(self._node_span(child, child_spec, closure, depth - 1))
        if updated >= child_updated:
            children.append(_operation(NODE_TEARDOWN, child_updated, updated))

    @staticmethod
    def _teardown(children, workflow, child_nodes, updated) -> None:
        latest = _latest_upstream(END_NODE, workflow, child_nodes)
        if latest is not None and updated >= _ns(latest.closure.updated_at):
            children.append(_operation(NODE_TEARDOWN, _ns(latest.closure.updated_at), updated))


def _node_specs(template: workflow_pb2.WorkflowTemplate) -> dict[str, workflow_pb2.Node]:
    return {node.id: node for node in template.nodes}


def _latest_upstream(spec_id: str, workflow: compiler_pb2.CompiledWorkflow, nodes):
    """The upstream node execution of ``spec_id`` that was updated last, if any ran."""
    upstream = (
        set(workflow.connections.upstream[spec_id].ids)
        if spec_id in (workflow.connections.upstream)
        else set()
    )
    candidates = [n for n in nodes if (n.metadata.spec_node_id or n.id.node_id) in upstream]
    return max(candidates, key=lambda n: _ns(n.closure.updated_at), default=None)


def _find_sub_workflow(
    closure: compiler_pb2.CompiledWorkflowClosure, reference: identifier_pb2.Identifier
) -> compiler_pb2.CompiledWorkflow:
    key = identifier_key(reference)
    for sub in closure.sub_workflows:
        if identifier_key(sub.template.id) == key:
            return sub
    raise internal(f"sub-workflow {reference.name} is missing from the compiled closure")


def _gate(node: node_execution_pb2.NodeExecution, children, created, updated) -> None:
    closure = node.closure
    if not closure.HasField("started_at"):
        children.append(_operation(NODE_SETUP, created, updated))
        return
    started = _ns(closure.started_at)
    children.append(_operation(NODE_SETUP, created, started))
    if not closure.HasField("duration"):
        children.append(_operation(NODE_IDLE, started, updated))
        return
    end = started + from_duration(closure.duration)
    children.append(_operation(NODE_IDLE, started, end))
    if updated >= end:
        children.append(_operation(NODE_TEARDOWN, end, updated))


def _task_span(attempt, depth: int) -> metrics_pb2.Span:
    closure = attempt.closure
    created, updated = _ns(closure.created_at), _ns(closure.updated_at)
    span = metrics_pb2.Span(
        task_id=attempt.id, start_time=closure.created_at, end_time=closure.updated_at
    )
    if depth == 0:
        return span
    if not closure.HasField("started_at"):
        span.spans.append(_operation(TASK_SETUP, created, updated))
        return span
    started = _ns(closure.started_at)
    span.spans.append(_operation(TASK_SETUP, created, started))
    if not closure.HasField("duration"):
        span.spans.append(_operation(TASK_RUNTIME, started, updated))
        return span
    end = started + from_duration(closure.duration)
    span.spans.append(_operation(TASK_RUNTIME, started, end))
    if updated >= end:
        span.spans.append(_operation(TASK_TEARDOWN, end, updated))
    return span
