"""Syncing an execution's whole node tree, concurrently, without fetching finished parts twice.

One sync lists the top-level node executions (every page) and, for each node at once (the
runtime bounds the fan-out): its task executions (every attempt), its children when it is a
parent (sub-workflow, dynamic, branch, array), and the execution a launch-plan node started,
itself synced to the bottom. A dynamic node's compiled workflow (GetDynamicNodeWorkflow, one call
per dynamic node) gives the kinds of the nodes it made; start and end nodes are left out, also
under the hashed ids propeller gives deeply nested ones. A node that has not started yet (no
metadata, no attempts) is returned as it is; nothing is dereferenced that may be missing.

A node execution seen in a terminal phase is kept in a :class:`TreeCache` with its whole subtree;
the next sync that lists it in the same phase reuses it without any RPC below it. The same holds
for launch-plan children that have finished. Only the listing of the non-finished levels is
repeated.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from flyteidl.admin import common_pb2, node_execution_pb2

from flyte_bridge._requests import (
    ADMIN,
    GateTypes,
    NodeSpec,
    Scope,
    get_execution_call,
    is_boundary_node,
    node_executions_op,
    task_executions_op,
    template_facts,
)
from flyte_bridge._runtime import Call, Gather, Op
from flyte_bridge.errors import FlyteNotFoundError, FlyteServerError
from flyte_bridge.models import (
    EntityId,
    Execution,
    ExecutionId,
    NodeExecution,
    NodeExecutionId,
    TaskExecution,
)

MAX_DEPTH = 32
"""Levels of sub-workflows and launch-plan children followed; deeper levels are not synced."""


class TreeCache:
    """Finished subtrees and workflow templates, shared by the syncs of one client.

    Finished node executions are keyed by their id and terminal phase; finished launch-plan
    children by their id and phase. Templates (immutable once registered) by identifier. The
    cache is bounded: the oldest entries go first.
    """

    def __init__(self, max_nodes: int = 50_000, max_templates: int = 256) -> None:
        self._lock = threading.Lock()
        self._nodes: OrderedDict[tuple[Any, int], Any] = OrderedDict()
        self._templates: OrderedDict[EntityId, tuple[Scope, GateTypes]] = OrderedDict()
        self._max_nodes = max_nodes
        self._max_templates = max_templates

    def get(self, key: tuple[Any, int]) -> Any:
        with self._lock:
            found = self._nodes.get(key)
            if found is not None:
                self._nodes.move_to_end(key)
            return found

    def put(self, key: tuple[Any, int], value: Any) -> None:
        with self._lock:
            self._nodes[key] = value
            self._nodes.move_to_end(key)
            while len(self._nodes) > self._max_nodes:
                self._nodes.popitem(last=False)

    def template(self, workflow_id: EntityId) -> tuple[Scope, GateTypes] | None:
        with self._lock:
            return self._templates.get(workflow_id)

    def put_template(self, workflow_id: EntityId, facts: tuple[Scope, GateTypes]) -> None:
        with self._lock:
            self._templates[workflow_id] = facts
            while len(self._templates) > self._max_templates:
                self._templates.popitem(last=False)

    def __len__(self) -> int:
        return len(self._nodes)


def template_op(execution: Execution, cache: TreeCache) -> Op[tuple[Scope, GateTypes]]:
    """The node specs and gate types of the execution's workflow (GetWorkflow, cached)."""
    workflow_id = execution.workflow
    if workflow_id is None:
        return {}, {}
    known = cache.template(workflow_id)
    if known is not None:
        return known
    try:
        request = common_pb2.ObjectGetRequest(id=workflow_id.to_proto())
        workflow = yield Call(ADMIN, "GetWorkflow", request)
    except FlyteNotFoundError:
        facts: tuple[Scope, GateTypes] = ({}, {})
    else:
        facts = template_facts(workflow.closure.compiled_workflow)
    cache.put_template(workflow_id, facts)
    return facts


def sync_op(
    execution_id: ExecutionId, cache: TreeCache, sync_nodes: bool = True, depth: int = 0
) -> Op[Execution]:
    """Fetches an execution and, with ``sync_nodes``, its whole node tree."""
    execution = Execution((yield get_execution_call(execution_id)))
    if sync_nodes:
        yield from fill_tree_op(execution, cache, depth)
    return execution


def fill_tree_op(execution: Execution, cache: TreeCache, depth: int = 0) -> Op[Execution]:
    """Fills ``execution.node_executions`` with the whole tree below it."""
    (scope, _), top = yield Gather(
        [template_op(execution, cache), node_executions_op(execution.id)]
    )
    nodes = [pb for pb in top if not _is_boundary(pb)]
    synced = yield Gather([_node_op(pb, scope, cache, depth) for pb in nodes])
    execution.node_executions = {node.node_id: node for node in synced}
    return execution


def _node_op(
    pb: node_execution_pb2.NodeExecution, scope: Scope, cache: TreeCache, depth: int
) -> Op[NodeExecution]:
    key = (NodeExecutionId.from_proto(pb.id), pb.closure.phase)
    cached = cache.get(key)
    if cached is not None:
        return cached

    spec = scope.get(pb.metadata.spec_node_id or pb.id.node_id, NodeSpec(None))
    node = NodeExecution(pb, kind=spec.kind)
    if node.kind is None and pb.closure.HasField("workflow_node_metadata"):
        node.kind = "launch_plan"
    if depth >= MAX_DEPTH:
        return node

    work: list[Any] = []
    child_id = pb.closure.workflow_node_metadata.executionId
    if child_id.name:
        work.append(_child_execution_op(ExecutionId.from_proto(child_id), cache, depth + 1))
    if pb.metadata.is_parent_node:
        inner = spec.inner
        if node.is_dynamic:
            inner = yield from _dynamic_scope_op(node)
        work.append(_children_op(node, inner, cache, depth + 1))
    if _may_have_attempts(node):
        work.append(task_executions_op(node.id))

    results = yield Gather(work)
    for result in results:
        if isinstance(result, Execution):
            node.child_execution = result
        elif isinstance(result, dict):
            node.children = result
        else:
            node.task_executions = [TaskExecution(te) for te in result]

    if node.is_done:
        cache.put(key, node)
    return node


def _may_have_attempts(node: NodeExecution) -> bool:
    """Whether a node can have task executions: task, array and dynamic nodes (or unknown)."""
    if node.kind in ("gate", "workflow", "launch_plan", "branch"):
        return False
    if node.proto.closure.HasField("workflow_node_metadata"):
        return False
    if node.is_parent and not node.is_dynamic and node.kind != "array":
        return False
    return node.phase.name not in ("UNDEFINED",)


def _children_op(
    node: NodeExecution, scope: Scope, cache: TreeCache, depth: int
) -> Op[dict[str, NodeExecution]]:
    children = yield from node_executions_op(node.id.execution_id, parent=node.node_id)
    children = [pb for pb in children if not _is_boundary(pb)]
    synced = yield Gather([_node_op(pb, scope, cache, depth) for pb in children])
    return {child.node_id: child for child in synced}


def _is_boundary(pb: node_execution_pb2.NodeExecution) -> bool:
    """A start or end node, by its id or, for the hashed ids propeller gives deeply nested
    nodes (``ffuqhjya``), by the template node it runs."""
    return is_boundary_node(pb.id.node_id) or is_boundary_node(pb.metadata.spec_node_id)


def _dynamic_scope_op(node: NodeExecution) -> Op[Scope]:
    """The specs of the nodes a dynamic node made at run time (GetDynamicNodeWorkflow), so its
    children get their kinds; empty when admin does not have or serve it."""
    request = node_execution_pb2.GetDynamicNodeWorkflowRequest(id=node.id.to_proto())
    try:
        response = yield Call(ADMIN, "GetDynamicNodeWorkflow", request)
    except FlyteNotFoundError:
        return {}  # not compiled yet: the dynamic task is still running
    except FlyteServerError as error:
        if error.grpc_code != "UNIMPLEMENTED":
            raise
        return {}
    scope, _gates = template_facts(response.compiled_workflow)
    return scope


def _child_execution_op(
    execution_id: ExecutionId, cache: TreeCache, depth: int
) -> Op[Execution | None]:
    try:
        execution = Execution((yield get_execution_call(execution_id)))
    except FlyteNotFoundError:
        return None  # named by the node's event before admin has created it
    key = (execution_id, execution.proto.closure.phase)
    cached = cache.get(key)
    if cached is not None:
        return cached
    yield from fill_tree_op(execution, cache, depth)
    if execution.is_done:
        cache.put(key, execution)
    return execution
