"""Executions, node executions, task executions and signals, as the clients return them.

The models wrap flyteidl's admin protos (kept in ``.proto``) and add what a caller asks of them:
the phase as an enum with a terminal test per level, ``is_done``, ``is_successful`` and ``error``
(an abort cause included). Both clients return the same models.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flyteidl.admin import execution_pb2 as admin_execution_pb2
from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2, identifier_pb2, types_pb2

from flyte_bridge.errors import (
    NO_SCOPE_HINT,
    FlyteExecutionFailedError,
    FlyteInvalidInputError,
    FlyteNotReadyError,
)

__all__ = [
    "ExecutionId",
    "NodeExecutionId",
    "TaskExecutionId",
    "EntityId",
    "WorkflowPhase",
    "NodePhase",
    "TaskPhase",
    "ExecutionError",
    "Execution",
    "NodeExecution",
    "TaskExecution",
    "Subtask",
    "Signal",
    "TerminateResult",
    "Project",
]


# Identifiers --------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ExecutionId:
    """A workflow execution's identifier; ``str(id)`` is ``"project/domain/name"``.

    ``org`` is the organization of a multi-tenant deployment (empty elsewhere); it is kept from
    the protos admin returns and sent back with every call about the execution, but is not part
    of ``str(id)``.
    """

    project: str
    domain: str
    name: str
    org: str = ""

    def __str__(self) -> str:
        return f"{self.project}/{self.domain}/{self.name}"

    @classmethod
    def parse(
        cls,
        value: str,
        default_project: str | None = None,
        default_domain: str | None = None,
        org: str = "",
    ) -> ExecutionId:
        """Reads ``"project/domain/name"`` or a bare name completed by the defaults, in ``org``.

        Raises:
            FlyteInvalidInputError: The string has another shape, or a bare name was given
                without a default project and domain.
        """
        parts = value.strip().split("/")
        if len(parts) == 3 and all(parts):
            return cls(*parts, org=org)
        if len(parts) == 1 and parts[0]:
            if not default_project or not default_domain:
                raise FlyteInvalidInputError(
                    f"execution {value!r} names no project and domain and the client has no "
                    "default_project/default_domain; name it as 'project/domain/name', or "
                    f"{NO_SCOPE_HINT}",
                    subject=value,
                )
            return cls(default_project, default_domain, parts[0], org=org)
        raise FlyteInvalidInputError(
            f"expected an execution as 'project/domain/name' or a bare name, got {value!r}",
            subject=value,
        )

    @classmethod
    def from_proto(cls, pb: identifier_pb2.WorkflowExecutionIdentifier) -> ExecutionId:
        return cls(pb.project, pb.domain, pb.name, pb.org)

    def to_proto(self) -> identifier_pb2.WorkflowExecutionIdentifier:
        return identifier_pb2.WorkflowExecutionIdentifier(
            project=self.project, domain=self.domain, name=self.name, org=self.org
        )


@dataclass(frozen=True, order=True)
class NodeExecutionId:
    """A node execution's identifier: the execution and the node's unique id within it."""

    execution_id: ExecutionId
    node_id: str

    def __str__(self) -> str:
        return f"{self.execution_id}/{self.node_id}"

    @classmethod
    def from_proto(cls, pb: identifier_pb2.NodeExecutionIdentifier) -> NodeExecutionId:
        return cls(ExecutionId.from_proto(pb.execution_id), pb.node_id)

    def to_proto(self) -> identifier_pb2.NodeExecutionIdentifier:
        return identifier_pb2.NodeExecutionIdentifier(
            node_id=self.node_id, execution_id=self.execution_id.to_proto()
        )


@dataclass(frozen=True)
class EntityId:
    """A task, workflow or launch plan version: ``resource_type`` is ``"TASK"``, ``"WORKFLOW"``
    or ``"LAUNCH_PLAN"``; ``org`` as for :class:`ExecutionId`."""

    resource_type: str
    project: str
    domain: str
    name: str
    version: str
    org: str = ""

    def __str__(self) -> str:
        return f"{self.project}/{self.domain}/{self.name}@{self.version}"

    @classmethod
    def from_proto(cls, pb: identifier_pb2.Identifier) -> EntityId:
        kind = identifier_pb2.ResourceType.Name(pb.resource_type)
        return cls(kind, pb.project, pb.domain, pb.name, pb.version, pb.org)

    def to_proto(self) -> identifier_pb2.Identifier:
        return identifier_pb2.Identifier(
            resource_type=identifier_pb2.ResourceType.Value(self.resource_type),
            project=self.project,
            domain=self.domain,
            name=self.name,
            version=self.version,
            org=self.org,
        )


@dataclass(frozen=True)
class TaskExecutionId:
    """A task execution attempt: the node execution, the task and the retry attempt."""

    node_execution_id: NodeExecutionId
    task_id: EntityId
    retry_attempt: int

    def __str__(self) -> str:
        return f"{self.node_execution_id}/{self.retry_attempt}"

    @classmethod
    def from_proto(cls, pb: identifier_pb2.TaskExecutionIdentifier) -> TaskExecutionId:
        return cls(
            NodeExecutionId.from_proto(pb.node_execution_id),
            EntityId.from_proto(pb.task_id),
            pb.retry_attempt,
        )

    def to_proto(self) -> identifier_pb2.TaskExecutionIdentifier:
        return identifier_pb2.TaskExecutionIdentifier(
            task_id=self.task_id.to_proto(),
            node_execution_id=self.node_execution_id.to_proto(),
            retry_attempt=self.retry_attempt,
        )


# Phases -------------------------------------------------------------------------------------


class _Phase(enum.IntEnum):
    """Phase enums named as flyteidl's; a value the client does not know is kept, not lost."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int):
            return None
        unknown = int.__new__(cls, value)
        unknown._name_ = f"UNKNOWN_{value}"
        unknown._value_ = value
        return unknown

    @property
    def is_known(self) -> bool:
        """False for a value newer than this client's flyteidl."""
        return self._name_ in type(self).__members__

    @property
    def is_terminal(self) -> bool:
        """True when this phase never changes again (for a task: this attempt never does)."""
        return self._name_ in type(self)._terminal()

    @property
    def is_success(self) -> bool:
        """True for the successful terminal phases."""
        return self._name_ in type(self)._success()

    @classmethod
    def _terminal(cls) -> frozenset[str]:
        raise NotImplementedError

    @classmethod
    def _success(cls) -> frozenset[str]:
        raise NotImplementedError


class WorkflowPhase(_Phase):
    """``core.WorkflowExecution.Phase``: SUCCEEDING, FAILING and ABORTING are not terminal."""

    UNDEFINED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDING = 3
    SUCCEEDED = 4
    FAILING = 5
    FAILED = 6
    ABORTED = 7
    TIMED_OUT = 8
    ABORTING = 9

    @classmethod
    def _terminal(cls) -> frozenset[str]:
        return frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})

    @classmethod
    def _success(cls) -> frozenset[str]:
        return frozenset({"SUCCEEDED"})


class NodePhase(_Phase):
    """``core.NodeExecution.Phase``: RECOVERED (outputs reused by a recovery) is a success."""

    UNDEFINED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILING = 4
    FAILED = 5
    ABORTED = 6
    SKIPPED = 7
    TIMED_OUT = 8
    DYNAMIC_RUNNING = 9
    RECOVERED = 10

    @classmethod
    def _terminal(cls) -> frozenset[str]:
        return frozenset({"SUCCEEDED", "FAILED", "ABORTED", "SKIPPED", "TIMED_OUT", "RECOVERED"})

    @classmethod
    def _success(cls) -> frozenset[str]:
        return frozenset({"SUCCEEDED", "RECOVERED"})


class TaskPhase(_Phase):
    """``core.TaskExecution.Phase``: RETRYABLE_FAILED ends this attempt (the node may retry)."""

    UNDEFINED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    ABORTED = 4
    FAILED = 5
    INITIALIZING = 6
    WAITING_FOR_RESOURCES = 7
    RETRYABLE_FAILED = 8

    @classmethod
    def _terminal(cls) -> frozenset[str]:
        return frozenset({"SUCCEEDED", "ABORTED", "FAILED", "RETRYABLE_FAILED"})

    @classmethod
    def _success(cls) -> frozenset[str]:
        return frozenset({"SUCCEEDED"})


# Errors and small values --------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution, node or attempt did not succeed.

    ``kind`` is ``"USER"``, ``"SYSTEM"`` or ``"UNKNOWN"``; an abort gives ``code="ABORTED"`` with
    the cause as the message and ``principal`` saying who aborted.
    """

    code: str
    message: str
    kind: str = "UNKNOWN"
    error_uri: str = ""
    failed_node: str | None = None
    principal: str | None = None

    @classmethod
    def from_proto(
        cls, pb: execution_pb2.ExecutionError, failed_node: str | None = None
    ) -> ExecutionError:
        return cls(
            code=pb.code,
            message=pb.message,
            kind=execution_pb2.ExecutionError.ErrorKind.Name(pb.kind),
            error_uri=pb.error_uri,
            failed_node=failed_node,
        )


@dataclass(frozen=True)
class Subtask:
    """One item of an array node attempt: its index, attempt, phase and log links."""

    index: int
    retry_attempt: int
    phase: TaskPhase
    external_id: str = ""
    logs: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TerminateResult:
    """What ``terminate`` found: whether the execution had already ended, and its phase then."""

    execution_id: ExecutionId
    phase: WorkflowPhase
    already_terminal: bool


@dataclass(frozen=True)
class Signal:
    """A gate's signal: its declared type and, once set, its value as a Python value.

    ``changed`` is True on the signal an approve, reject or set_input call returns when that
    call set it, and False when the signal already held the value (nothing was sent).
    """

    signal_id: str
    execution_id: ExecutionId
    type: types_pb2.LiteralType
    value: Any = None
    is_set: bool = False
    changed: bool = False

    def __repr__(self) -> str:
        """One line, the type as its short name (``BOOLEAN``), not the proto's text."""
        from flyte_bridge.literals import describe_type

        return (
            f"Signal(signal_id={self.signal_id!r}, execution_id={self.execution_id}, "
            f"type={describe_type(self.type)}, value={self.value!r}, is_set={self.is_set}, "
            f"changed={self.changed})"
        )


@dataclass(frozen=True)
class Project:
    """A project registered on admin, with the ids of its domains."""

    id: str
    name: str
    domains: tuple[str, ...]


def _timestamp(pb: Any) -> dt.datetime | None:
    if not pb.seconds and not pb.nanos:
        return None
    return pb.ToDatetime(tzinfo=dt.timezone.utc)


def _duration(pb: Any) -> dt.timedelta | None:
    if not pb.seconds and not pb.nanos:
        return None
    return pb.ToTimedelta()


# Executions ---------------------------------------------------------------------------------


class _Outcome:
    """What the three levels share: the phase and its tests, timings, inputs and outputs.

    Subclasses hold an admin proto with a ``closure`` and name their phase enum.
    """

    _phase_type: ClassVar[type[_Phase]]
    proto: Any
    _inputs: dict[str, Any] | None
    _outputs: dict[str, Any] | None

    @property
    def subject(self) -> str:
        raise NotImplementedError

    @property
    def error(self) -> ExecutionError | None:
        raise NotImplementedError

    @property
    def error_summary(self) -> str | None:
        """The error as ``code: message``, or only the message when the code just repeats the
        phase (an abort is ``ABORTED`` with the cause as message); None without an error."""
        error = self.error
        if error is None:
            return None
        if not error.code or error.code == self.phase_name:
            return error.message
        return f"{error.code}: {error.message}"

    @property
    def phase(self) -> Any:
        return self._phase_type(self.proto.closure.phase)

    @property
    def phase_name(self) -> str:
        return self.phase.name

    @property
    def is_done(self) -> bool:
        """Whether the phase is terminal (for a task execution: this attempt has ended)."""
        return self.phase.is_terminal

    @property
    def is_successful(self) -> bool:
        return self.phase.is_success

    @property
    def created_at(self) -> dt.datetime | None:
        return _timestamp(self.proto.closure.created_at)

    @property
    def started_at(self) -> dt.datetime | None:
        return _timestamp(self.proto.closure.started_at)

    @property
    def updated_at(self) -> dt.datetime | None:
        return _timestamp(self.proto.closure.updated_at)

    @property
    def duration(self) -> dt.timedelta | None:
        return _duration(self.proto.closure.duration)

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs as Python values, once fetched with the client's ``fetch_inputs``."""
        if self._inputs is None:
            raise FlyteNotReadyError(
                "inputs were not fetched yet; call client.fetch_inputs(...)", subject=self.subject
            )
        return self._inputs

    @property
    def outputs(self) -> dict[str, Any]:
        """Outputs as Python values, once fetched with the client's ``fetch_outputs``.

        Raises:
            FlyteNotReadyError: Not finished, or not fetched yet.
            FlyteExecutionFailedError: It finished without success.
        """
        self.check_outputs_available()
        if self._outputs is None:
            raise FlyteNotReadyError(
                "outputs were not fetched yet; call client.fetch_outputs(...)",
                subject=self.subject,
            )
        return self._outputs

    def check_outputs_available(self) -> None:
        """Raises the typed error that explains why outputs cannot be read, if one applies."""
        if not self.is_done:
            raise FlyteNotReadyError(
                f"{self.subject} is {self.phase_name}: outputs exist once it has finished",
                subject=self.subject,
            )
        if not self.is_successful:
            error = self.error
            detail = f": {self.error_summary}" if error else ""
            raise FlyteExecutionFailedError(
                f"{self.subject} ended {self.phase_name}{detail}; it has no outputs",
                subject=self.subject,
                phase=self.phase_name,
                error_code=error.code if error else None,
                failed_node=error.failed_node if error else None,
            )


@dataclass(eq=False)
class Execution(_Outcome):
    """A workflow execution (also a single-task execution, and a launch-plan child).

    ``node_executions`` is filled by ``sync(execution, sync_nodes=True)``: the top-level node
    executions by node id, each with its children and attempts.
    """

    _phase_type: ClassVar[type[_Phase]] = WorkflowPhase
    proto: admin_execution_pb2.Execution
    node_executions: dict[str, NodeExecution] = field(default_factory=dict)
    _inputs: dict[str, Any] | None = field(default=None, repr=False)
    _outputs: dict[str, Any] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Execution({self.id}, {self.phase.name})"

    @property
    def id(self) -> ExecutionId:
        return ExecutionId.from_proto(self.proto.id)

    @property
    def subject(self) -> str:
        return str(self.id)

    @property
    def phase(self) -> WorkflowPhase:
        return WorkflowPhase(self.proto.closure.phase)

    @property
    def error(self) -> ExecutionError | None:
        """The failure, the abort (code ``ABORTED``, cause as message) or the timeout; else None."""
        closure = self.proto.closure
        if closure.HasField("error"):
            return ExecutionError.from_proto(closure.error, _failed_node(closure.error))
        if self.phase == WorkflowPhase.ABORTED or closure.HasField("abort_metadata"):
            cause = closure.abort_metadata.cause or closure.abort_cause
            if self.phase == WorkflowPhase.ABORTED or cause:
                return ExecutionError(
                    code="ABORTED",
                    message=cause or "aborted",
                    kind="USER",
                    principal=closure.abort_metadata.principal or None,
                )
        if self.phase == WorkflowPhase.TIMED_OUT:
            return ExecutionError(code="TIMED_OUT", message="the execution timed out")
        if self.phase == WorkflowPhase.FAILED:
            return ExecutionError(code="FAILED", message="the execution failed")
        return None

    @property
    def launch_plan(self) -> EntityId:
        """What was launched: a launch plan, or a task for a single-task execution."""
        return EntityId.from_proto(self.proto.spec.launch_plan)

    @property
    def workflow(self) -> EntityId | None:
        closure = self.proto.closure
        return EntityId.from_proto(closure.workflow_id) if closure.HasField("workflow_id") else None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.proto.spec.labels.values)

    @property
    def mode(self) -> str:
        """How it started: ``MANUAL``, ``SCHEDULED``, ``RELAUNCH``, ``CHILD_WORKFLOW``..."""
        return admin_execution_pb2.ExecutionMetadata.ExecutionMode.Name(
            self.proto.spec.metadata.mode
        )

    @property
    def parent_node_execution(self) -> NodeExecutionId | None:
        metadata = self.proto.spec.metadata
        if not metadata.HasField("parent_node_execution"):
            return None
        return NodeExecutionId.from_proto(metadata.parent_node_execution)

    def iter_nodes(self) -> Any:
        """Every node execution of the synced tree, depth first (launch-plan children included)."""
        for node in self.node_executions.values():
            yield from node.iter_nodes()

    def failed_node(self) -> NodeExecution | None:
        """The innermost FAILED node execution of the synced tree, following the first failed
        node at each level; None when none failed or the execution was not synced with its
        nodes. A launch-plan node is not followed into its child execution."""
        nodes, found = self.node_executions, None
        while True:
            failed = next((n for n in nodes.values() if n.phase == NodePhase.FAILED), None)
            if failed is None:
                return found
            nodes, found = failed.children, failed


def _failed_node(error: execution_pb2.ExecutionError) -> str | None:
    """The failing node as flytepropeller names it in the code or message, when it does."""
    for text in (error.message, error.code):
        marker = "failed at Node["
        if marker in text:
            start = text.index(marker) + len(marker)
            end = text.find("]", start)
            if end > start:
                return text[start:end]
    return None


@dataclass(eq=False)
class TaskExecution(_Outcome):
    """One attempt of a task: its phase, error and log links."""

    _phase_type: ClassVar[type[_Phase]] = TaskPhase
    proto: task_execution_pb2.TaskExecution
    _inputs: dict[str, Any] | None = field(default=None, repr=False)
    _outputs: dict[str, Any] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"TaskExecution({self.id}, {self.phase.name})"

    @property
    def id(self) -> TaskExecutionId:
        return TaskExecutionId.from_proto(self.proto.id)

    @property
    def subject(self) -> str:
        return f"task execution {self.id}"

    @property
    def retry_attempt(self) -> int:
        return self.proto.id.retry_attempt

    @property
    def phase(self) -> TaskPhase:
        return TaskPhase(self.proto.closure.phase)

    @property
    def error(self) -> ExecutionError | None:
        closure = self.proto.closure
        return ExecutionError.from_proto(closure.error) if closure.HasField("error") else None

    @property
    def logs(self) -> list[tuple[str, str]]:
        """Log links as ``(name, uri)`` pairs."""
        return [(log.name, log.uri) for log in self.proto.closure.logs]

    @property
    def subtasks(self) -> list[Subtask]:
        """The sub-tasks of an array node (map task) attempt, as the plugin reports them.

        Flyte reports an array node's items inside its task execution
        (``closure.metadata.external_resources``), not as node executions of their own.
        """
        return [
            Subtask(
                index=resource.index,
                retry_attempt=resource.retry_attempt,
                phase=TaskPhase(resource.phase),
                external_id=resource.external_id,
                logs=[(log.name, log.uri) for log in resource.logs],
            )
            for resource in self.proto.closure.metadata.external_resources
        ]


@dataclass(eq=False)
class NodeExecution(_Outcome):
    """A node execution and what hangs below it.

    ``task_executions`` holds every attempt of a task node (and of an array node's task);
    ``children`` the node executions of a sub-workflow, dynamic, branch or array node, by node
    id; ``child_execution`` the execution a launch-plan node started. ``kind`` is the node's kind
    from the workflow template (``"task"``, ``"workflow"``, ``"launch_plan"``, ``"branch"``,
    ``"gate"``, ``"array"``) or ``None`` when the template does not name it (dynamic children).
    """

    _phase_type: ClassVar[type[_Phase]] = NodePhase
    proto: node_execution_pb2.NodeExecution
    kind: str | None = None
    task_executions: list[TaskExecution] = field(default_factory=list)
    children: dict[str, NodeExecution] = field(default_factory=dict)
    child_execution: Execution | None = None
    _inputs: dict[str, Any] | None = field(default=None, repr=False)
    _outputs: dict[str, Any] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"NodeExecution({self.id}, {self.phase.name})"

    @property
    def id(self) -> NodeExecutionId:
        return NodeExecutionId.from_proto(self.proto.id)

    @property
    def subject(self) -> str:
        return f"node execution {self.id}"

    @property
    def node_id(self) -> str:
        """The unique node id within the execution (child ids carry their parents' ids)."""
        return self.proto.id.node_id

    @property
    def spec_node_id(self) -> str:
        """The node's id in its workflow template."""
        return self.proto.metadata.spec_node_id or self.proto.id.node_id

    @property
    def phase(self) -> NodePhase:
        return NodePhase(self.proto.closure.phase)

    @property
    def is_gate(self) -> bool:
        return self.kind == "gate"

    @property
    def is_parent(self) -> bool:
        return self.proto.metadata.is_parent_node

    @property
    def is_dynamic(self) -> bool:
        return self.proto.metadata.is_dynamic

    @property
    def is_array(self) -> bool:
        return self.proto.metadata.is_array or self.kind == "array"

    @property
    def error(self) -> ExecutionError | None:
        closure = self.proto.closure
        if closure.HasField("error"):
            return ExecutionError.from_proto(closure.error, self.node_id)
        return None

    def iter_nodes(self) -> Any:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children.values():
            yield from child.iter_nodes()
        if self.child_execution is not None:
            yield from self.child_execution.iter_nodes()
