"""A finished execution tree of every node kind, seeded into a sandbox without running anything.

``bench_sync_tree.py`` syncs a tree of about 1,000 node executions built this way, and
``tests/core/test_seeded_tree.py`` checks a small one. A generated flytekit module is registered
with ``pyflyte register``; its workflow ``outer`` has four kinds of nodes:

- sub-workflow nodes running ``inner`` (``tasks`` task nodes each);
- dynamic nodes running the task ``fanout``, whose generated workflow has the shape of the
  registered workflow ``dyn_body`` (``dynamic_tasks`` task nodes);
- array nodes mapping ``echo`` over ``array_size`` items;
- launch-plan nodes launching ``child`` (a launch plan of ``inner``) as child executions.

:class:`SeedingEngine` is the sandbox's executor: for every execution it is asked to start it
writes, through the sandbox's own event recording, the events propeller would send for a run
where everything succeeded: node and task events (a dynamic node is a parent with
``is_dynamic`` and its compiled workflow; an array node has ``is_array`` and one task execution
whose metadata lists one external resource per item), and a child execution, itself seeded,
for every launch-plan node. Inputs and outputs are empty literal maps in the sandbox's store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.event import event_pb2
from google.protobuf import timestamp_pb2

PROJECT, DOMAIN = "flytesnacks", "development"
MODULE = "seeded_tree"
NodePhase = core_execution_pb2.NodeExecution.Phase
TaskPhase = core_execution_pb2.TaskExecution.Phase
WorkflowPhase = core_execution_pb2.WorkflowExecution.Phase
_BOUNDARY = ("start-node", "end-node")


@dataclass(frozen=True)
class TreeShape:
    """How many nodes of each kind ``outer`` has, and how big each one is."""

    subworkflows: int = 4
    tasks: int = 99
    dynamics: int = 3
    dynamic_tasks: int = 99
    arrays: int = 20
    array_size: int = 10
    launch_plans: int = 3

    @property
    def node_executions(self) -> int:
        """Node executions of the whole tree, launch-plan children's included."""
        return (
            self.subworkflows * (1 + self.tasks)
            + self.dynamics * (1 + self.dynamic_tasks)
            + self.arrays
            + self.launch_plans * (1 + self.tasks)
        )

    def module_source(self) -> str:
        """The flytekit module that declares the tree's workflows."""
        return textwrap.dedent(
            f"""
            from flytekit import LaunchPlan, dynamic, map_task, task, workflow

            @task
            def echo(x: int) -> int:
                return x

            mapped_echo = map_task(echo)

            @workflow
            def inner(x: int) -> int:
                results = [echo(x=x) for _ in range({self.tasks})]
                return results[-1]

            @workflow
            def dyn_body(x: int) -> int:
                results = [echo(x=x) for _ in range({self.dynamic_tasks})]
                return results[-1]

            @dynamic
            def fanout(x: int) -> int:
                results = [echo(x=x) for _ in range({self.dynamic_tasks})]
                return results[-1]

            child = LaunchPlan.get_or_create(inner, name="{MODULE}.child")

            @workflow
            def outer(x: int = 1) -> int:
                subworkflows = [inner(x=x) for _ in range({self.subworkflows})]
                dynamics = [fanout(x=x) for _ in range({self.dynamics})]
                arrays = [mapped_echo(x=[x] * {self.array_size}) for _ in range({self.arrays})]
                launched = [child(x=x) for _ in range({self.launch_plans})]
                return subworkflows[-1]
            """
        )


def register(config: Path, work: Path, shape: TreeShape, version: str) -> None:
    """Writes the module for ``shape`` under ``work`` and registers it with pyflyte."""
    code = work / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / f"{MODULE}.py").write_text(shape.module_source())
    pyflyte = str(Path(sys.executable).with_name("pyflyte"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLYTE_")}
    subprocess.run(
        [pyflyte, "--config", str(config), "register", "--project", PROJECT,
         "--domain", DOMAIN, "--version", version, f"{MODULE}.py"],
        cwd=code, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class SeedingEngine:
    """A sandbox executor that runs nothing and records a finished tree for every start.

    Set ``server`` to the sandbox's server before launching. While ``just_started`` is true,
    executions are left running just after their nodes were reached instead: every top-level
    node is QUEUED or RUNNING, with no attempt, child node or child execution yet (a parent not
    yet marked as one, a launch-plan node that has not launched).
    """

    def __init__(self, shape: TreeShape) -> None:
        self.shape = shape
        self.server: Any = None
        self.just_started = False
        self._children = 0

    def start(self, execution_id, closure, inputs, spec) -> None:
        _Seeder(self, execution_id, closure).run()

    def __getattr__(self, name: str) -> Any:
        """abort, notify_* and shutdown: nothing runs, so there is nothing to do."""
        return lambda *args, **kwargs: None

    def child_name(self) -> str:
        self._children += 1
        return f"seeded-child-{self._children}"


class _Seeder:
    """Writes the events of one execution's finished tree."""

    def __init__(self, engine: SeedingEngine, execution_id: Any, closure: Any) -> None:
        self.engine = engine
        self.executions = engine.server.executions
        self.execution_id = execution_id
        self.closure = closure
        store = engine.server.store
        self.empty_uri = store.uri("seeded", execution_id.name, "empty.pb")
        store.write_bytes(self.empty_uri, literals_pb2.LiteralMap().SerializeToString())
        self.subworkflows = {sub.template.id.name: sub.template for sub in closure.sub_workflows}

    def run(self) -> None:
        self._workflow_event(WorkflowPhase.RUNNING)
        if self.engine.just_started:
            nodes = [n for n in self.closure.primary.template.nodes if n.id not in _BOUNDARY]
            for index, node in enumerate(nodes):
                phase = NodePhase.QUEUED if index % 2 else NodePhase.RUNNING
                self._node_event(node.id, node.id, phase, None)
            return
        self._nodes(self.closure.primary.template.nodes, parent=None, prefix="")
        self._workflow_event(WorkflowPhase.SUCCEEDED)

    def _nodes(self, nodes: Any, parent: str | None, prefix: str) -> None:
        for node in nodes:
            if node.id in _BOUNDARY:
                continue
            unique_id = f"{prefix}{node.id}"
            kind = node.WhichOneof("target")
            if kind == "workflow_node" and node.workflow_node.HasField("sub_workflow_ref"):
                template = self.subworkflows[node.workflow_node.sub_workflow_ref.name]
                self._parent(unique_id, node.id, parent, template.nodes)
            elif kind == "workflow_node":
                self._launch_plan(unique_id, node, parent)
            elif kind == "array_node":
                self._array(unique_id, node, parent)
            elif node.task_node.reference_id.name.endswith(".fanout"):
                self._dynamic(unique_id, node, parent)
            else:
                self._task(unique_id, node.id, parent, node.task_node.reference_id)

    def _task(self, unique_id: str, spec_id: str, parent: str | None, task_id: Any) -> None:
        self._node_event(unique_id, spec_id, NodePhase.RUNNING, parent)
        self._task_event(unique_id, task_id, TaskPhase.RUNNING)
        self._task_event(unique_id, task_id, TaskPhase.SUCCEEDED)
        self._node_event(unique_id, spec_id, NodePhase.SUCCEEDED, parent)

    def _parent(self, unique_id: str, spec_id: str, parent: str | None, nodes: Any) -> None:
        self._node_event(unique_id, spec_id, NodePhase.RUNNING, parent, is_parent=True)
        self._nodes(nodes, parent=unique_id, prefix=f"{unique_id}-0-")
        self._node_event(unique_id, spec_id, NodePhase.SUCCEEDED, parent, is_parent=True)

    def _dynamic(self, unique_id: str, node: Any, parent: str | None) -> None:
        """A dynamic node: its task yields a workflow shaped like ``dyn_body``, run below it."""
        task_id = node.task_node.reference_id
        body_id = identifier_pb2.Identifier(
            resource_type=identifier_pb2.WORKFLOW,
            project=task_id.project,
            domain=task_id.domain,
            name=f"{MODULE}.dyn_body",
            version=task_id.version,
        )
        body = self.executions.get_workflow(body_id).closure.compiled_workflow
        dynamic = event_pb2.DynamicWorkflowNodeMetadata(
            id=body_id, compiled_workflow=body, dynamic_job_spec_uri=self.empty_uri
        )
        flags = {"is_parent": True, "is_dynamic": True}
        self._node_event(unique_id, node.id, NodePhase.RUNNING, parent)
        self._task_event(unique_id, task_id, TaskPhase.RUNNING)
        self._task_event(unique_id, task_id, TaskPhase.SUCCEEDED)
        self._node_event(
            unique_id, node.id, NodePhase.DYNAMIC_RUNNING, parent, dynamic=dynamic, **flags
        )
        self._nodes(body.primary.template.nodes, parent=unique_id, prefix=f"{unique_id}-0-")
        self._node_event(unique_id, node.id, NodePhase.SUCCEEDED, parent, **flags)

    def _array(self, unique_id: str, node: Any, parent: str | None) -> None:
        """An array node: one task execution listing every item as an external resource."""
        task_id = node.array_node.node.task_node.reference_id
        self._node_event(unique_id, node.id, NodePhase.RUNNING, parent, is_array=True)
        for phase in (TaskPhase.RUNNING, TaskPhase.SUCCEEDED):
            metadata = event_pb2.TaskExecutionMetadata(
                external_resources=[
                    event_pb2.ExternalResourceInfo(
                        external_id=f"{self.execution_id.name}-{unique_id}-{index}",
                        index=index,
                        retry_attempt=0,
                        phase=phase,
                    )
                    for index in range(self.engine.shape.array_size)
                ]
            )
            self._task_event(unique_id, task_id, phase, metadata=metadata)
        self._node_event(unique_id, node.id, NodePhase.SUCCEEDED, parent, is_array=True)

    def _launch_plan(self, unique_id: str, node: Any, parent: str | None) -> None:
        """A launch-plan node: a child execution (seeded in turn) started from this node."""
        self._node_event(unique_id, node.id, NodePhase.RUNNING, parent)
        node_execution_id = identifier_pb2.NodeExecutionIdentifier(
            node_id=unique_id, execution_id=self.execution_id
        )
        child_id = self.executions.create_child_execution(
            node.workflow_node.launchplan_ref,
            literals_pb2.LiteralMap(literals={"x": _integer(1)}),
            node_execution_id,
            self.engine.child_name(),
        )
        self._node_event(unique_id, node.id, NodePhase.SUCCEEDED, parent, child=child_id)

    def _node_event(
        self,
        unique_id: str,
        spec_id: str,
        phase: int,
        parent: str | None,
        *,
        is_parent: bool = False,
        is_dynamic: bool = False,
        is_array: bool = False,
        dynamic: Any = None,
        child: Any = None,
    ) -> None:
        event = event_pb2.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(
                node_id=unique_id, execution_id=self.execution_id
            ),
            producer_id="seeded-tree",
            phase=phase,
            occurred_at=_now(),
            reported_at=_now(),
            spec_node_id=spec_id,
            node_name=spec_id,
            input_uri=self.empty_uri,
            is_parent=is_parent,
            is_dynamic=is_dynamic,
            is_array=is_array,
        )
        if phase == NodePhase.SUCCEEDED:
            event.output_uri = self.empty_uri
        if parent is not None:
            event.parent_node_metadata.node_id = parent
        if dynamic is not None:
            event.task_node_metadata.dynamic_workflow.CopyFrom(dynamic)
        if child is not None:
            event.workflow_node_metadata.execution_id.CopyFrom(child)
        self.executions.record_node_event(event)

    def _task_event(self, unique_id: str, task_id: Any, phase: int, metadata: Any = None) -> None:
        event = event_pb2.TaskExecutionEvent(
            task_id=task_id,
            parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=unique_id, execution_id=self.execution_id
            ),
            retry_attempt=0,
            phase=phase,
            producer_id="seeded-tree",
            occurred_at=_now(),
            reported_at=_now(),
            input_uri=self.empty_uri,
        )
        if phase == TaskPhase.SUCCEEDED:
            event.output_uri = self.empty_uri
        if metadata is not None:
            event.metadata.CopyFrom(metadata)
        self.executions.record_task_event(event)

    def _workflow_event(self, phase: int) -> None:
        event = event_pb2.WorkflowExecutionEvent(
            execution_id=self.execution_id,
            producer_id="seeded-tree",
            phase=phase,
            occurred_at=_now(),
        )
        if phase == WorkflowPhase.SUCCEEDED:
            event.output_uri = self.empty_uri
        self.executions.record_workflow_event(event)


def _integer(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )
