"""Dynamic nodes: the sub-workflow a dynamic task returns, compiled and run in place.

A flytekit ``@dynamic`` task does not write ``outputs.pb``; it writes ``futures.pb``, a
``DynamicJobSpec`` holding the nodes it decided to run, their output bindings and the task
templates and sub-workflows they need. Like propeller's dynamic node handler, the executor then:

1. reports the parent task attempt SUCCEEDED (its output URI is where the node's outputs will be
   copied once the sub-workflow is done);
2. compiles the spec into a workflow ``dynamic_<node unique id>`` with the task's interface,
   using the same compiler as CreateWorkflow;
3. reports the node DYNAMIC_RUNNING with ``is_dynamic``, ``is_parent`` and
   ``task_node_metadata.dynamic_workflow{id, compiled_workflow, dynamic_job_spec_uri}``, which
   the admin side keeps for GetDynamicNodeWorkflow and GetNodeExecutionData;
4. runs the compiled workflow as a child scope of the node: a child's id is
   ``<node unique id>-<attempt>-<spec node id>``, shortened like every child id; its
   ``spec_node_id`` is its id in the compiled workflow and its parent is the dynamic node;
5. copies the sub-workflow's outputs into the node's attempt output directory and reports the
   node SUCCEEDED, or FAILED with the error of the child that failed.

A recovered execution (RecoverExecution) whose reference ran a dynamic node that produced a
spec but then failed reuses the old ``futures.pb`` instead of running the parent task again, so
the children keep their ids and those that succeeded are recovered rather than re-run.

Once the spec is compiled the node is not retried: a failing child fails it for good, as in
propeller. The spec's ``min_successes`` is not looked at (propeller only used it for the old
array tasks), and a dynamic workflow has no failure node.

Deviations from propeller, on purpose:
- Tasks that a spec references without carrying their template are looked up among the
  registered tasks; propeller refuses to compile such a spec.
- The compiled sub-workflow is not cached next to ``futures.pb``; a recovery compiles the old
  spec again, which gives the same node ids (only the random workflow version differs).
- A dynamic node still running when the sandbox stops is not resumed when it starts again on the
  same data directory: the node fails, and so does its execution.
"""

from __future__ import annotations

import logging
import secrets
import string
from typing import TYPE_CHECKING

from flyteidl.core import (
    compiler_pb2,
    dynamic_job_pb2,
    execution_pb2,
    identifier_pb2,
    literals_pb2,
    tasks_pb2,
    workflow_pb2,
)
from flyteidl.event import event_pb2

from flyte_bridge.sandbox import executor as engine_module
from flyte_bridge.sandbox.compiler import END_NODE, START_NODE, Compiler
from flyte_bridge.sandbox.status import AdminError, not_found

if TYPE_CHECKING:
    from flyteidl.admin import node_execution_pb2

    from flyte_bridge.sandbox.executor import LocalExecutor, _Attempt, _NodeRun, _Scope

logger = logging.getLogger(__name__)

NodePhase = execution_pb2.NodeExecution.Phase
TaskPhase = execution_pb2.TaskExecution.Phase
ErrorKind = execution_pb2.ExecutionError.ErrorKind

DYNAMIC_WORKFLOW_NAME = "dynamic_{}"
_VERSION_ALPHABET = string.ascii_lowercase + string.digits


def dynamic_workflow_id(
    execution_id: identifier_pb2.WorkflowExecutionIdentifier, node_unique_id: str
) -> identifier_pb2.Identifier:
    """The id propeller gives a dynamic node's compiled workflow (random version)."""
    return identifier_pb2.Identifier(
        resource_type=identifier_pb2.WORKFLOW,
        project=execution_id.project,
        domain=execution_id.domain,
        name=DYNAMIC_WORKFLOW_NAME.format(node_unique_id),
        version="".join(secrets.choice(_VERSION_ALPHABET) for _ in range(10)),
    )


class DynamicNodes:
    """Runs the sub-workflows of dynamic tasks for one :class:`LocalExecutor`.

    Every method runs on the owning execution's mailbox, like the rest of the executor.
    """

    def __init__(self, engine: LocalExecutor) -> None:
        self._engine = engine

    def on_futures(self, node_run: _NodeRun, attempt: _Attempt, futures_uri: str) -> None:
        """A task attempt wrote ``futures.pb``: the task succeeded, its sub-workflow starts."""
        engine = self._engine
        output_uri = f"{attempt.paths.output_prefix}/outputs.pb"
        engine._task_event(node_run, attempt, TaskPhase.SUCCEEDED, output_uri=output_uri)
        self._run_spec(node_run, attempt.number, futures_uri)

    def recover(self, node_run: _NodeRun, reference: node_execution_pb2.NodeExecution) -> bool:
        """Resumes a dynamic node of a recovered execution from its reference's spec.

        Returns False (the node runs afresh) unless the reference node is a dynamic node that got
        as far as writing its spec and that spec can still be read.
        """
        engine = self._engine
        spec_uri = reference.closure.dynamic_job_spec_uri
        if node_run.kind != "task_node" or not reference.metadata.is_dynamic or not spec_uri:
            return False
        store = engine.store
        if not store.exists(spec_uri):
            logger.warning(
                "cannot recover dynamic node %s: %s is gone", node_run.unique_id, spec_uri
            )
            return False
        run = node_run.scope.run
        node_run.inputs_uri = run.uri(node_run.unique_id, "data", "inputs.pb")
        inputs = literals_pb2.LiteralMap()
        if reference.input_uri and store.exists(reference.input_uri):
            inputs = store.read_proto(reference.input_uri, literals_pb2.LiteralMap)
        store.write_proto(node_run.inputs_uri, inputs)
        node_run.inputs = inputs
        futures_uri = run.uri(node_run.unique_id, "data", "0", "futures.pb")
        store.write_bytes(futures_uri, store.read_bytes(spec_uri))
        engine._node_event(node_run, NodePhase.QUEUED, input_uri=node_run.inputs_uri)
        node_run.phase = NodePhase.QUEUED
        engine._mark_running(node_run)
        logger.info("recovering dynamic node %s from %s", node_run.unique_id, spec_uri)
        self._run_spec(node_run, 0, futures_uri)
        return True

    # The sub-workflow.

    def _run_spec(self, node_run: _NodeRun, attempt_number: int, futures_uri: str) -> None:
        engine = self._engine
        run = node_run.scope.run
        try:
            spec = engine.store.read_proto(futures_uri, dynamic_job_pb2.DynamicJobSpec)
        except Exception as error:  # noqa: BLE001 - a garbled spec fails the node
            self._fail(
                node_run,
                "DynamicJobSpecUnreadable",
                f"unable to read futures file, maybe corrupted: {error}",
                ErrorKind.SYSTEM,
            )
            return
        try:
            closure = self._compile(node_run, spec)
        except AdminError as error:
            self._fail(node_run, "DynamicWorkflowBuildFailed", error.message, ErrorKind.USER)
            return
        for task in closure.tasks:
            run.tasks.setdefault(engine_module._key(task.template.id), task.template)
        for sub_workflow in closure.sub_workflows:
            run.subworkflows.setdefault(engine_module._key(sub_workflow.template.id), sub_workflow)

        # Waiting children must not queue behind their own parent's slot.
        engine._release_slot(node_run)
        node_run.child_attempt = attempt_number
        node_run.phase = NodePhase.DYNAMIC_RUNNING
        metadata = event_pb2.TaskNodeMetadata(
            dynamic_workflow=event_pb2.DynamicWorkflowNodeMetadata(
                id=closure.primary.template.id,
                compiled_workflow=closure,
                dynamic_job_spec_uri=futures_uri,
            )
        )
        engine._node_event(
            node_run,
            NodePhase.DYNAMIC_RUNNING,
            is_dynamic=True,
            is_parent=True,
            task_node_metadata=metadata,
        )
        logger.debug("dynamic node %s runs %d nodes", node_run.unique_id, len(spec.nodes))
        node_run.child_scope = engine_module._Scope(
            run, closure.primary, node_run, node_run.inputs_uri, self._on_sub_workflow_done
        )
        engine._begin_scope(node_run.child_scope)

    def _compile(
        self, node_run: _NodeRun, spec: dynamic_job_pb2.DynamicJobSpec
    ) -> compiler_pb2.CompiledWorkflowClosure:
        run = node_run.scope.run
        parent_task = run.tasks[engine_module._key(node_run.node.task_node.reference_id)]
        template = workflow_pb2.WorkflowTemplate(
            id=dynamic_workflow_id(run.id, node_run.unique_id),
            interface=parent_task.interface,
            nodes=spec.nodes,
            outputs=spec.outputs,
        )
        carried = {engine_module._key(task.id): task for task in spec.tasks}
        compiler = Compiler(
            get_task=lambda task_id: self._task_template(run, carried, task_id),
            check_launch_plan=self._check_launch_plan,
            get_workflow=self._registered_workflow,
        )
        return compiler.compile(template, list(spec.subworkflows))

    def _task_template(
        self,
        run: engine_module._Run,
        carried: dict[tuple[str, ...], tasks_pb2.TaskTemplate],
        task_id: identifier_pb2.Identifier,
    ) -> tasks_pb2.TaskTemplate:
        key = engine_module._key(task_id)
        if key in carried:
            return carried[key]
        if key in run.tasks:
            return run.tasks[key]
        get_task = getattr(self._engine.control_plane, "get_task", None)
        if get_task is None:
            raise not_found(f"task {task_id.name} is neither in the dynamic spec nor registered")
        return get_task(task_id).closure.compiled_task.template

    def _check_launch_plan(self, launch_plan_id: identifier_pb2.Identifier) -> None:
        get_launch_plan = getattr(self._engine.control_plane, "get_launch_plan", None)
        if get_launch_plan is not None:
            get_launch_plan(launch_plan_id)

    def _registered_workflow(
        self, workflow_id: identifier_pb2.Identifier
    ) -> workflow_pb2.WorkflowTemplate | None:
        """A registered sub-workflow's template without its start and end nodes, or None."""
        get_workflow = getattr(self._engine.control_plane, "get_workflow", None)
        if get_workflow is None:
            return None
        try:
            compiled = get_workflow(workflow_id).closure.compiled_workflow
        except AdminError:
            return None
        template = workflow_pb2.WorkflowTemplate()
        template.CopyFrom(compiled.primary.template)
        del template.nodes[:]
        template.nodes.extend(
            node
            for node in compiled.primary.template.nodes
            if node.id not in (START_NODE, END_NODE)
        )
        return template

    def _on_sub_workflow_done(self, scope: _Scope) -> None:
        node_run = scope.parent
        if node_run is None or node_run.done:
            return
        engine = self._engine
        if scope.error is not None:
            node_run.error = scope.error
            engine._finish_node(node_run, NodePhase.FAILED)
            return
        run = scope.run
        target = run.uri(node_run.unique_id, "data", str(node_run.child_attempt), "outputs.pb")
        source = scope.output_uri
        store = engine.store
        data = store.read_bytes(source) if source and store.exists(source) else b""
        store.write_bytes(target, data)
        node_run.output_uri = target
        engine._finish_node(node_run, NodePhase.SUCCEEDED)

    def _fail(self, node_run: _NodeRun, code: str, message: str, kind: int) -> None:
        node_run.error = engine_module._error(code, message, kind)
        self._engine._finish_node(node_run, NodePhase.FAILED)
