"""Request building and response parsing shared by both clients.

Everything here is either a plain function over protos or a small operation (see
:mod:`flyte_bridge._runtime`) that the clients compose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    node_execution_pb2,
    signal_pb2,
    task_execution_pb2,
)
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2, workflow_pb2
from flyteidl.service import dataproxy_pb2
from google.protobuf import duration_pb2

from flyte_bridge._runtime import Blocking, Call, Gather, Op
from flyte_bridge.errors import (
    NO_SCOPE_HINT,
    FlyteBridgeError,
    FlyteDataError,
    FlyteInvalidInputError,
)
from flyte_bridge.models import (
    Execution,
    ExecutionId,
    NodeExecution,
    NodeExecutionId,
    TaskExecution,
)

logger = logging.getLogger(__name__)

ADMIN = "admin"
SIGNAL = "signal"
DATA_PROXY = "dataproxy"

PAGE_SIZE = 100
"""Rows per List* call: admin's usual limit."""

_SORT_ASC = common_pb2.Sort.Direction.ASCENDING
_SORT_DESC = common_pb2.Sort.Direction.DESCENDING
_BOUNDARY_NODES = ("start-node", "end-node")

ExecutionLike = Any
"""An ``Execution``, an ``ExecutionId`` or a ``"project/domain/name"`` / bare name string."""


# Identifiers --------------------------------------------------------------------------------


def execution_id_of(
    value: ExecutionLike,
    default_project: str | None,
    default_domain: str | None,
    org: str = "",
) -> ExecutionId:
    """Reads any accepted execution argument as an ExecutionId (a string in ``org``)."""
    if isinstance(value, Execution):
        return value.id
    if isinstance(value, ExecutionId):
        return value
    if isinstance(value, identifier_pb2.WorkflowExecutionIdentifier):
        return ExecutionId.from_proto(value)
    if isinstance(value, str):
        return ExecutionId.parse(value, default_project, default_domain, org)
    raise FlyteInvalidInputError(
        "expected an Execution, an ExecutionId or a 'project/domain/name' string, "
        f"got {type(value).__name__}"
    )


def scope_of(
    project: str | None, domain: str | None, default_project: str | None, default_domain: str | None
) -> tuple[str, str]:
    """The project and domain of a call, from the arguments or the config's defaults."""
    project = project or default_project
    domain = domain or default_domain
    if not project or not domain:
        missing = " and ".join(n for n, v in (("project", project), ("domain", domain)) if not v)
        raise FlyteInvalidInputError(f"no {missing} to run in: {NO_SCOPE_HINT}")
    return project, domain


def is_boundary_node(node_id: str) -> bool:
    """start-node and end-node (also a child's ``<parent>-0-start-node``), matched exactly."""
    return node_id in _BOUNDARY_NODES or node_id.endswith(tuple(f"-{n}" for n in _BOUNDARY_NODES))


# Sorting and filters ------------------------------------------------------------------------


def sort_proto(sort: Any, default_key: str = "created_at", descending: bool = True) -> Any:
    """A ``admin.Sort`` from a Sort builder, its text (``"desc(created_at)"``, as filters take
    theirs), an ``admin.Sort`` or None (the default)."""
    if sort is None:
        return common_pb2.Sort(key=default_key, direction=_SORT_DESC if descending else _SORT_ASC)
    if isinstance(sort, common_pb2.Sort):
        return sort
    if isinstance(sort, str):
        from flyte_bridge.filters import Sort

        return Sort.parse(sort).to_proto()
    to_proto = getattr(sort, "to_proto", None)
    if to_proto is not None:
        return to_proto()
    raise FlyteInvalidInputError(
        f"expected a Sort (Sort.desc('created_at')) or its text ('desc(created_at)'), got "
        f"{type(sort).__name__}"
    )


def filter_text(filters: Any) -> str:
    """The admin filter string from a Filter builder, a string, or an iterable of either."""
    if filters is None:
        return ""
    if isinstance(filters, str):
        return filters
    if isinstance(filters, Iterable):
        return "+".join(filter_text(item) for item in filters if item is not None)
    return str(filters)


# Pagination ---------------------------------------------------------------------------------


def list_executions_request(
    project: str,
    domain: str,
    filters: str,
    sort: Any,
    limit: int,
    token: str = "",
    org: str = "",
) -> common_pb2.ResourceListRequest:
    return common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=project, domain=domain, org=org),
        limit=limit,
        token=token,
        filters=filters,
        sort_by=sort,
    )


def paginate(
    method: str,
    make_request: Callable[[str], Any],
    items: Callable[[Any], Iterable[Any]],
    service: str = ADMIN,
    timeout: float | None = None,
    deadline: Any = None,
) -> Op[list[Any]]:
    """Every item of a List* RPC, following tokens until admin returns an empty one; a
    ``deadline`` (transport ``Deadline``) bounds every page and retry together."""
    result: list[Any] = []
    token = ""
    while True:
        response = yield Call(
            service, method, make_request(token), timeout=timeout, deadline=deadline
        )
        result.extend(items(response))
        token = response.token
        if not token:
            return result


def node_executions_op(
    execution_id: ExecutionId, parent: str | None = None
) -> Op[list[node_execution_pb2.NodeExecution]]:
    """Every node execution of an execution's top level, or under ``parent``'s unique id."""

    def request(token: str) -> node_execution_pb2.NodeExecutionListRequest:
        return node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=execution_id.to_proto(),
            limit=PAGE_SIZE,
            token=token,
            unique_parent_id=parent or "",
            sort_by=common_pb2.Sort(key="created_at", direction=_SORT_ASC),
        )

    return paginate("ListNodeExecutions", request, lambda r: r.node_executions)


def task_executions_op(
    node_execution_id: NodeExecutionId,
) -> Op[list[task_execution_pb2.TaskExecution]]:
    """Every attempt of a node's task, oldest first."""

    def request(token: str) -> task_execution_pb2.TaskExecutionListRequest:
        return task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=node_execution_id.to_proto(),
            limit=PAGE_SIZE,
            token=token,
            sort_by=common_pb2.Sort(key="created_at", direction=_SORT_ASC),
        )

    return paginate("ListTaskExecutions", request, lambda r: r.task_executions)


def signals_op(execution_id: ExecutionId) -> Op[list[signal_pb2.Signal]]:
    """Every signal of an execution (a signal exists once its gate has been reached)."""

    def request(token: str) -> signal_pb2.SignalListRequest:
        return signal_pb2.SignalListRequest(
            workflow_execution_id=execution_id.to_proto(), limit=PAGE_SIZE, token=token
        )

    return paginate("ListSignals", request, lambda r: r.signals, service=SIGNAL)


def get_execution_call(
    execution_id: ExecutionId, timeout: float | None = None, idempotent: bool = True
) -> Call:
    return Call(
        ADMIN,
        "GetExecution",
        execution_pb2.WorkflowExecutionGetRequest(id=execution_id.to_proto()),
        idempotent=idempotent,
        timeout=timeout,
        subject=str(execution_id),
    )


# Data: inputs and outputs -------------------------------------------------------------------


def data_call(target: Execution | NodeExecution | TaskExecution) -> Call:
    """The Get*Data call for an execution, a node execution or a task execution attempt."""
    if isinstance(target, Execution):
        request: Any = execution_pb2.WorkflowExecutionGetDataRequest(id=target.proto.id)
        return Call(ADMIN, "GetExecutionData", request)
    if isinstance(target, NodeExecution):
        request = node_execution_pb2.NodeExecutionGetDataRequest(id=target.proto.id)
        return Call(ADMIN, "GetNodeExecutionData", request)
    request = task_execution_pb2.TaskExecutionGetDataRequest(id=target.proto.id)
    return Call(ADMIN, "GetTaskExecutionData", request)


def read_stored_op(uri: str) -> Op[bytes]:
    """The bytes stored at ``uri``: an HTTP(S) URL as is, a native URI through a data-proxy
    signed link, else directly with fsspec (the caller's own storage access)."""
    from flyte_bridge import download

    if uri.startswith(("http://", "https://")):
        return (yield Blocking(download.read_url, (uri,)))
    try:
        response = yield Call(
            DATA_PROXY,
            "CreateDownloadLocation",
            dataproxy_pb2.CreateDownloadLocationRequest(
                native_url=uri, expires_in=duration_pb2.Duration(seconds=3600)
            ),
        )
    except FlyteBridgeError as error:
        logger.debug("no signed link for %s (%s); reading it directly", uri, error)
    else:
        if response.signed_url:
            return (yield Blocking(download.read_url, (response.signed_url,)))
    return (yield Blocking(download.read_url, (uri,)))


def walk_literal(literal: literals_pb2.Literal) -> Iterable[literals_pb2.Literal]:
    """The literal and every literal inside it (collections, maps, union values)."""
    yield literal
    kind = literal.WhichOneof("value")
    inner: Iterable[literals_pb2.Literal] = ()
    if kind == "collection":
        inner = literal.collection.literals
    elif kind == "map":
        inner = literal.map.literals.values()
    elif kind == "scalar" and literal.scalar.WhichOneof("value") == "union":
        inner = (literal.scalar.union.value,)
    for item in inner:
        yield from walk_literal(item)


def _offloaded_uris(literal: literals_pb2.Literal, found: set[str]) -> None:
    for item in walk_literal(literal):
        if item.WhichOneof("value") == "offloaded_metadata":
            found.add(item.offloaded_metadata.uri)


def prefetch_offloaded_op(literal_map: literals_pb2.LiteralMap) -> Op[dict[str, bytes]]:
    """Reads every offloaded literal of a map (and those inside them), concurrently."""
    fetched: dict[str, bytes] = {}
    pending: set[str] = set()
    for literal in literal_map.literals.values():
        _offloaded_uris(literal, pending)
    for _ in range(4):
        if not pending:
            break
        uris = sorted(pending)
        blobs = yield Gather([_read_or_data_error(uri, "the offloaded literal") for uri in uris])
        pending = set()
        for uri, data in zip(uris, blobs, strict=True):
            fetched[uri] = data
            inner = literals_pb2.Literal()
            try:
                inner.ParseFromString(data)
            except Exception:  # noqa: BLE001 - literals.to_python reports the corrupt bytes
                continue
            _offloaded_uris(inner, pending)
        pending -= set(fetched)
    return fetched


def _read_or_data_error(uri: str, what: str) -> Op[bytes]:
    try:
        return (yield from read_stored_op(uri))
    except FlyteDataError:
        raise
    except Exception as error:  # noqa: BLE001 - every storage failure is reported the same way
        raise FlyteDataError(
            f"cannot read {what} at {uri}: {error}; the client needs the data proxy or read "
            "access to that storage",
            subject=uri,
        ) from error


def literal_map_op(full: literals_pb2.LiteralMap, blob: Any) -> Op[literals_pb2.LiteralMap]:
    """The LiteralMap of one side of a Get*Data response, inline or behind its URL.

    Admin leaves ``full_*`` empty above its inline limit; the map is then read from the
    ``UrlBlob`` link. A blob of 0 bytes is an empty map and is not fetched (flytekit's rule).
    """
    if len(full.literals) or not blob.url or blob.bytes == 0:
        return full
    data = yield from _read_or_data_error(blob.url, "the literal map behind the URL")
    result = literals_pb2.LiteralMap()
    try:
        result.ParseFromString(data)
    except Exception as error:  # noqa: BLE001
        raise FlyteDataError(
            f"the data at {blob.url} is not a serialized LiteralMap", subject=blob.url
        ) from error
    return result


def to_python_op(literal_map: literals_pb2.LiteralMap, variables: Any = None) -> Op[dict[str, Any]]:
    """Converts a LiteralMap to Python values, offloaded literals read first."""
    from flyte_bridge import literals

    fetched = yield from prefetch_offloaded_op(literal_map)

    def fetch(uri: str) -> bytes:
        if uri not in fetched:
            raise FlyteDataError(f"the offloaded literal at {uri} was not read", subject=uri)
        return fetched[uri]

    return literals.literal_map_to_python(literal_map, variables, fetch=fetch)


# Workflow templates -------------------------------------------------------------------------


def node_kind(node: workflow_pb2.Node) -> str | None:
    """The kind of a template node: task, workflow, launch_plan, branch, gate or array."""
    target = node.WhichOneof("target")
    if target == "workflow_node":
        reference = node.workflow_node.WhichOneof("reference")
        return "launch_plan" if reference == "launchplan_ref" else "workflow"
    if target == "task_node":
        return "task"
    if target == "branch_node":
        return "branch"
    if target == "gate_node":
        return "gate"
    if target == "array_node":
        return "array"
    return None


@dataclass(frozen=True)
class NodeSpec:
    """A template node as the tree sync needs it: its kind and the nodes below it.

    ``inner`` maps spec node ids to specs for what runs under the node: a sub-workflow's nodes,
    a branch's cases, an array node's node. It is empty where the template does not say (a
    dynamic node's children are decided at run time).
    """

    kind: str | None
    inner: Mapping[str, NodeSpec] = field(default_factory=dict)


Scope = Mapping[str, NodeSpec]
"""Spec node id -> NodeSpec for one level of a workflow."""


GateTypes = dict[str, types_pb2.LiteralType]
"""A workflow's gates: signal id -> the type its value must have (BOOLEAN for approve gates)."""

_BOOLEAN = types_pb2.LiteralType(simple=types_pb2.SimpleType.BOOLEAN)


def template_facts(closure: Any) -> tuple[Scope, GateTypes]:
    """From a compiled workflow closure: the primary workflow's scope (nested through its
    sub-workflows, branches and array nodes) and every gate's signal id -> declared type."""
    templates = {_id_key(sub.template.id): sub.template for sub in closure.sub_workflows}
    gates: GateTypes = {}

    def scope_of(nodes: Iterable[workflow_pb2.Node], depth: int) -> dict[str, NodeSpec]:
        scope: dict[str, NodeSpec] = {}
        for node in nodes:
            kind = node_kind(node)
            inner: dict[str, NodeSpec] = {}
            if depth < 32:
                if kind == "workflow":
                    template = templates.get(_id_key(node.workflow_node.sub_workflow_ref))
                    inner = scope_of(template.nodes, depth + 1) if template else {}
                elif kind == "branch":
                    inner = scope_of(_branch_nodes(node), depth + 1)
                elif kind == "array":
                    inner = scope_of([node.array_node.node], depth + 1)
            if kind == "gate":
                gate = node.gate_node
                which = gate.WhichOneof("condition")
                if which == "approve":
                    gates[gate.approve.signal_id] = _BOOLEAN
                elif which == "signal":
                    gates[gate.signal.signal_id] = gate.signal.type
            scope[node.id] = NodeSpec(kind, inner)
        return scope

    return scope_of(closure.primary.template.nodes, 0), gates


def _id_key(identifier: Any) -> tuple[str, str, str, str]:
    return (identifier.project, identifier.domain, identifier.name, identifier.version)


def _branch_nodes(node: workflow_pb2.Node) -> list[workflow_pb2.Node]:
    branch = node.branch_node.if_else
    nodes = [branch.case.then_node, *(case.then_node for case in branch.other)]
    if branch.HasField("else_node"):
        nodes.append(branch.else_node)
    return nodes
