"""The seam between the sandbox's admin side and its local executor.

In a real Flyte deployment flytepropeller reports progress to flyteadmin with CreateWorkflowEvent,
CreateNodeEvent and CreateTaskEvent, asks it for signals and child executions, and is told by it
to abort. The sandbox keeps that split inside one process: the admin side (registry, executions,
store) implements :class:`ControlPlane`, the executor implements :class:`Engine`, and the two
talk in flyteidl's own event protos so that what clients see is built exactly as flyteadmin
builds it, from events.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from flyteidl.admin import (
    execution_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    task_execution_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import (
    compiler_pb2,
    identifier_pb2,
    literals_pb2,
    types_pb2,
)
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.event import event_pb2

from flyte_bridge.sandbox.storage import DataStore


@dataclasses.dataclass
class RecordedProgress:
    """What the database holds of an execution a previous sandbox process left in flight.

    The admin side reads it when the sandbox starts again and hands it to
    :meth:`Engine.resume`, which continues the execution from it.
    """

    phase: int
    """The execution's recorded workflow phase (UNDEFINED, QUEUED, RUNNING, FAILING, ...)."""
    error: core_execution_pb2.ExecutionError | None
    """The execution's recorded error (set while FAILING)."""
    nodes: dict[str, node_execution_pb2.NodeExecution]
    """Every recorded node execution, by unique node id (nested ones included)."""
    attempts: dict[str, list[task_execution_pb2.TaskExecution]]
    """Every recorded task execution, by unique node id, in attempt order."""


class ControlPlane(Protocol):
    """What the executor needs from the admin side (what propeller gets from flyteadmin)."""

    store: DataStore

    def record_workflow_event(self, event: event_pb2.WorkflowExecutionEvent) -> None:
        """Applies a workflow phase change to the execution's closure, as CreateWorkflowEvent."""

    def record_node_event(self, event: event_pb2.NodeExecutionEvent) -> None:
        """Creates or updates a node execution from an event, as CreateNodeEvent."""

    def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        """Creates or updates a task execution attempt from an event, as CreateTaskEvent."""

    def get_or_create_signal(
        self, signal_id: identifier_pb2.SignalIdentifier, signal_type: types_pb2.LiteralType
    ) -> literals_pb2.Literal | None:
        """Creates the signal row when a gate is reached; returns its value once it is set."""

    def create_child_execution(
        self,
        launch_plan_id: identifier_pb2.Identifier,
        inputs: literals_pb2.LiteralMap,
        parent_node_execution: identifier_pb2.NodeExecutionIdentifier,
        name: str,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        """Launches a launch plan as a child execution (mode CHILD_WORKFLOW) of a node."""

    def get_execution(
        self, execution_id: identifier_pb2.WorkflowExecutionIdentifier
    ) -> execution_pb2.Execution:
        """The current state of an execution (used to follow child executions)."""

    def terminate_execution(
        self, execution_id: identifier_pb2.WorkflowExecutionIdentifier, cause: str
    ) -> None:
        """Aborts an execution; a terminal one is left as it is (cascading aborts)."""

    def get_task(self, task_id: identifier_pb2.Identifier) -> task_pb2.Task:
        """A registered task, for dynamic workflows that reference tasks by id."""

    def get_launch_plan(
        self, launch_plan_id: identifier_pb2.Identifier
    ) -> launch_plan_pb2.LaunchPlan:
        """A registered launch plan, for launch-plan nodes."""

    def get_workflow(self, workflow_id: identifier_pb2.Identifier) -> workflow_pb2.Workflow:
        """A registered workflow with its compiled closure."""

    def get_node_execution(
        self, node_execution_id: identifier_pb2.NodeExecutionIdentifier
    ) -> node_execution_pb2.NodeExecution:
        """One node execution (recovery reads the reference execution's nodes)."""

    def list_node_executions(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        unique_parent_id: str = "",
    ) -> list[node_execution_pb2.NodeExecution]:
        """Every node execution directly under a parent (top level when empty), in order."""


class Engine(Protocol):
    """What the admin side needs from the executor (what flyteadmin asks of propeller)."""

    def start(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        closure: compiler_pb2.CompiledWorkflowClosure,
        inputs: literals_pb2.LiteralMap,
        spec: execution_pb2.ExecutionSpec,
    ) -> None:
        """Begins running a committed execution in the background and returns at once.

        A recovery passes the reference execution in ``spec.metadata.reference_execution``
        with mode RECOVERED; the executor reuses the outputs of its succeeded nodes.
        """

    def resume(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        closure: compiler_pb2.CompiledWorkflowClosure,
        inputs: literals_pb2.LiteralMap,
        spec: execution_pb2.ExecutionSpec,
        progress: RecordedProgress,
    ) -> None:
        """Continues an execution a previous sandbox process left in flight, from its records.

        Optional: the admin side fails in-flight executions at start-up, with error code
        ``SandboxRestarted``, when the engine has no ``resume``.
        """

    def abort(self, execution_id: identifier_pb2.WorkflowExecutionIdentifier, cause: str) -> None:
        """Stops a running execution: kills its task processes and reports ABORTED."""

    def notify_signal_set(self, signal_id: identifier_pb2.SignalIdentifier) -> None:
        """Wakes the gate waiting on this signal."""

    def notify_execution_done(
        self, execution_id: identifier_pb2.WorkflowExecutionIdentifier
    ) -> None:
        """Wakes the launch-plan node waiting on this child execution."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stops every running execution's processes and the executor's threads."""
