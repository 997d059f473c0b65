"""Unit tests of the local executor, driven through an in-memory control plane.

The end-to-end tests go through the real gRPC server; these check the executor's event stream
directly (phases, ordering, ids) for each node kind, fast enough to run on every change.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import pytest
from flyteidl.admin import execution_pb2 as admin_execution_pb2
from flyteidl.core import compiler_pb2, execution_pb2, identifier_pb2, literals_pb2, types_pb2
from flyteidl.event import event_pb2

from flyte_bridge.literals import python_to_literal_map, to_literal
from flyte_bridge.sandbox.compiler import Compiler
from flyte_bridge.sandbox.executor import LocalExecutor, child_execution_name, child_node_id
from flyte_bridge.sandbox.storage import DataStore

FLOAT = types_pb2.LiteralType(simple=types_pb2.FLOAT)
BOOLEAN = types_pb2.LiteralType(simple=types_pb2.BOOLEAN)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flyte"
WorkflowPhase = execution_pb2.WorkflowExecution.Phase
NodePhase = execution_pb2.NodeExecution.Phase
TaskPhase = execution_pb2.TaskExecution.Phase


def serialize(module_name: str, entity_name: str) -> dict[str, object]:
    """Serializes a flytekit entity of the examples into its registration protos."""
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    module = importlib.import_module(module_name)
    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(),
        project="flytesnacks",
        domain="development",
        version="v1",
    )
    entities: OrderedDict = OrderedDict()
    get_serializable(entities, settings, getattr(module, entity_name))
    found: dict[str, object] = {"tasks": {}, "workflows": {}, "launch_plans": {}}
    for model in entities.values():
        proto = model.to_flyte_idl()
        kind = type(proto).__name__
        if kind == "TaskSpec":
            found["tasks"][proto.template.id.name] = proto.template
        elif kind == "WorkflowSpec":
            found["workflows"][proto.template.id.name] = proto
        elif kind == "LaunchPlan":
            found["launch_plans"][proto.id.name] = proto
    return found


class FakeControlPlane:
    """Records events and answers the executor's questions as the admin side would."""

    def __init__(self, store: DataStore) -> None:
        self.store = store
        self.engine: LocalExecutor | None = None
        self.workflow_events: dict[str, list[event_pb2.WorkflowExecutionEvent]] = {}
        self.node_events: list[event_pb2.NodeExecutionEvent] = []
        self.task_events: list[event_pb2.TaskExecutionEvent] = []
        self.signals: dict[tuple[str, str], literals_pb2.Literal | None] = {}
        self.closures: dict[str, compiler_pb2.CompiledWorkflowClosure] = {}
        self.done = threading.Condition()

    def record_workflow_event(self, event: event_pb2.WorkflowExecutionEvent) -> None:
        with self.done:
            self.workflow_events.setdefault(event.execution_id.name, []).append(event)
            self.done.notify_all()
        if event.phase in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ABORTED):
            self.engine.notify_execution_done(event.execution_id)

    def record_node_event(self, event: event_pb2.NodeExecutionEvent) -> None:
        with self.done:
            self.node_events.append(event)
            self.done.notify_all()

    def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        with self.done:
            self.task_events.append(event)
            self.done.notify_all()

    def get_or_create_signal(self, signal_id, signal_type):
        with self.done:
            value = self.signals.setdefault(
                (signal_id.execution_id.name, signal_id.signal_id), None
            )
            self.done.notify_all()
            return value

    def set_signal(self, execution: str, signal: str, value: literals_pb2.Literal) -> None:
        with self.done:
            self.signals[(execution, signal)] = value
        self.engine.notify_signal_set(
            identifier_pb2.SignalIdentifier(signal_id=signal, execution_id=execution_id(execution))
        )

    def create_child_execution(self, launch_plan_id, inputs, parent_node_execution, name):
        child = execution_id(name)
        spec = admin_execution_pb2.ExecutionSpec(launch_plan=launch_plan_id)
        spec.metadata.parent_node_execution.CopyFrom(parent_node_execution)
        self.engine.start(child, self.closures[launch_plan_id.name], inputs, spec)
        return child

    def get_execution(self, execution):
        events = self.workflow_events.get(execution.name, [])
        result = admin_execution_pb2.Execution(id=execution)
        if events:
            result.closure.phase = events[-1].phase
            if events[-1].output_uri:
                result.closure.outputs.uri = events[-1].output_uri
            if events[-1].HasField("error"):
                result.closure.error.CopyFrom(events[-1].error)
        return result

    def get_node_execution(self, node_execution_id):
        from flyteidl.admin import node_execution_pb2

        events = [
            e
            for e in self.node_events
            if e.id.execution_id.name == node_execution_id.execution_id.name
            and e.id.node_id == node_execution_id.node_id
        ]
        if not events:
            raise LookupError(node_execution_id.node_id)
        result = node_execution_pb2.NodeExecution(
            id=node_execution_id, input_uri=events[0].input_uri
        )
        result.closure.phase = events[-1].phase
        result.closure.output_uri = events[-1].output_uri
        return result

    def terminate_execution(self, execution, cause):
        self.engine.abort(execution, cause)

    def wait_for(self, predicate, timeout: float = 60.0):
        with self.done:
            assert self.done.wait_for(predicate, timeout), "timed out waiting for the engine"

    def phases(self, name: str) -> list[int]:
        return [event.phase for event in self.workflow_events.get(name, [])]

    def node_phases(self, name: str, node_id: str) -> list[int]:
        return [
            e.phase
            for e in self.node_events
            if e.id.execution_id.name == name and e.id.node_id == node_id
        ]

    def wait_terminal(self, name: str, timeout: float = 60.0) -> int:
        terminal = (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ABORTED)
        self.wait_for(lambda: any(p in terminal for p in self.phases(name)), timeout)
        return self.phases(name)[-1]


def execution_id(name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    return identifier_pb2.WorkflowExecutionIdentifier(
        project="flytesnacks", domain="development", name=name
    )


def compile_workflow(module_name: str, workflow_name: str) -> compiler_pb2.CompiledWorkflowClosure:
    found = serialize(module_name, workflow_name)
    tasks = found["tasks"]
    workflows = found["workflows"]
    spec = workflows[f"{module_name}.{workflow_name}"]
    compiler = Compiler(
        get_task=lambda identifier: tasks[identifier.name],
        check_launch_plan=lambda identifier: None,
        get_workflow=lambda identifier: (
            workflows[identifier.name].template if identifier.name in workflows else None
        ),
    )
    return compiler.compile(spec.template, list(spec.sub_workflows))


@pytest.fixture
def plane(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))
    store = DataStore(tmp_path / "store")
    control_plane = FakeControlPlane(store)
    engine = LocalExecutor(control_plane, store, sys.executable, kill_grace_seconds=1.0)
    control_plane.engine = engine
    yield control_plane
    engine.shutdown()


def outputs(plane: FakeControlPlane, name: str) -> literals_pb2.LiteralMap:
    uri = plane.workflow_events[name][-1].output_uri
    return plane.store.read_proto(uri, literals_pb2.LiteralMap)


def start(plane, execution, module, workflow, spec=None, **inputs):
    closure = compile_workflow(module, workflow)
    plane.engine.start(
        execution_id(execution),
        closure,
        python_to_literal_map(inputs, closure.primary.template.interface.inputs),
        spec or admin_execution_pb2.ExecutionSpec(),
    )
    return closure


def test_task_workflow_reports_propeller_event_sequence(plane):
    start(plane, "hello1", "hello", "hello_wf", name="sandbox")

    assert plane.wait_terminal("hello1") == WorkflowPhase.SUCCEEDED
    assert plane.phases("hello1") == [
        WorkflowPhase.RUNNING,
        WorkflowPhase.SUCCEEDING,
        WorkflowPhase.SUCCEEDED,
    ]
    assert outputs(plane, "hello1").literals["o0"].scalar.primitive.string_value == "hello sandbox"
    assert plane.node_phases("hello1", "start-node") == [NodePhase.SUCCEEDED]
    assert plane.node_phases("hello1", "n0") == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.SUCCEEDED,
    ]
    assert plane.node_phases("hello1", "end-node") == [NodePhase.QUEUED, NodePhase.SUCCEEDED]
    task_phases = [e.phase for e in plane.task_events]
    assert task_phases == [TaskPhase.QUEUED, TaskPhase.RUNNING, TaskPhase.SUCCEEDED]
    log_uri = plane.task_events[-1].logs[0].uri
    assert DataStore.local_path(log_uri).exists()


def test_recoverable_failure_is_retried_as_a_new_attempt(plane):
    start(plane, "retry1", "failures", "retry_wf", value=7)

    assert plane.wait_terminal("retry1") == WorkflowPhase.SUCCEEDED
    attempts = [
        (e.retry_attempt, e.phase) for e in plane.task_events if e.phase >= TaskPhase.SUCCEEDED
    ]
    assert attempts == [(0, TaskPhase.FAILED), (1, TaskPhase.SUCCEEDED)]
    assert plane.node_phases("retry1", "n0") == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.SUCCEEDED,
    ]
    assert outputs(plane, "retry1").literals["o0"].scalar.primitive.string_value == (
        "value 7 after 1 retry"
    )


def test_user_error_fails_the_execution_with_the_task_error(plane):
    start(plane, "fail1", "failures", "failing_wf", reason="boom")

    assert plane.wait_terminal("fail1") == WorkflowPhase.FAILED
    assert plane.phases("fail1") == [
        WorkflowPhase.RUNNING,
        WorkflowPhase.FAILING,
        WorkflowPhase.FAILED,
    ]
    error = plane.workflow_events["fail1"][-1].error
    assert error.code == "USER:RuntimeError"
    assert "ValueError: boom" in error.message
    assert len(plane.task_events) == 3


def test_fail_after_executable_nodes_complete_lets_independent_nodes_finish(plane):
    start(plane, "keep1", "failures", "keep_going_wf", seconds=1.0)

    assert plane.wait_terminal("keep1") == WorkflowPhase.FAILED
    assert plane.node_phases("keep1", "n1")[-1] == NodePhase.SUCCEEDED
    assert plane.node_phases("keep1", "n0")[-1] == NodePhase.FAILED


def test_branch_runs_the_chosen_case_as_a_child_of_the_branch_node(plane):
    start(plane, "branch1", "branching", "branch_wf", x=-2)

    assert plane.wait_terminal("branch1") == WorkflowPhase.SUCCEEDED
    assert outputs(plane, "branch1").literals["o0"].scalar.primitive.string_value == (
        "-2 is not positive"
    )
    child = [e for e in plane.node_events if e.parent_node_metadata.node_id == "n0"]
    assert {e.id.node_id for e in child} == {child_node_id("n0", 0, "n1")}
    assert {e.spec_node_id for e in child} == {"n1"}


def test_subworkflow_and_launch_plan_nodes(plane):
    plane.closures["square_launch_plan"] = compile_workflow("composition", "square_wf")
    start(plane, "comp1", "composition", "composed_wf", x=3)

    assert plane.wait_terminal("comp1") == WorkflowPhase.SUCCEEDED
    assert outputs(plane, "comp1").literals["o0"].scalar.primitive.integer == 49
    sub_children = {
        e.id.node_id for e in plane.node_events if e.parent_node_metadata.node_id == "n0"
    }
    assert {"n0-0-start-node", "n0-0-n0", "n0-0-n1", "n0-0-end-node"} == sub_children
    child_name = child_execution_name("comp1", "n1", 0)
    assert plane.phases(child_name)[-1] == WorkflowPhase.SUCCEEDED
    running = [
        e for e in plane.node_events if e.id.node_id == "n1" and e.phase == NodePhase.RUNNING
    ]
    assert running[0].workflow_node_metadata.execution_id.name == child_name


def test_gates_wait_for_approval_and_typed_input(plane):
    start(plane, "gate1", "approvals", "approval_wf", version=1)
    plane.wait_for(lambda: ("gate1", "review") in plane.signals)
    plane.set_signal(
        "gate1",
        "review",
        to_literal(True, BOOLEAN),
    )
    plane.wait_for(lambda: ("gate1", "rollout_percent") in plane.signals)
    plane.set_signal("gate1", "rollout_percent", to_literal(25.0, FLOAT))

    assert plane.wait_terminal("gate1") == WorkflowPhase.SUCCEEDED
    assert outputs(plane, "gate1").literals["o0"].scalar.primitive.string_value == (
        "release 2 at 25%"
    )


def test_reject_fails_the_execution(plane):
    start(plane, "gate2", "approvals", "approval_wf", version=1)
    plane.wait_for(lambda: ("gate2", "review") in plane.signals)
    plane.set_signal(
        "gate2",
        "review",
        to_literal(False, BOOLEAN),
    )

    assert plane.wait_terminal("gate2") == WorkflowPhase.FAILED
    assert plane.workflow_events["gate2"][-1].error.code == "ReceivedRejectSignal"


def test_abort_kills_the_task_process(plane):
    start(plane, "sleep1", "long_sleep", "long_sleep_wf", seconds=600)
    plane.wait_for(lambda: TaskPhase.RUNNING in [e.phase for e in plane.task_events])
    attempt = next(iter(plane.engine._live_attempts))
    plane.engine.abort(execution_id("sleep1"), "user asked")

    assert plane.wait_terminal("sleep1") == WorkflowPhase.ABORTED
    assert attempt.process.wait(0) is not None
    assert plane.node_phases("sleep1", "n0")[-1] == NodePhase.ABORTED
    assert plane.task_events[-1].phase == TaskPhase.ABORTED


def test_unsupported_task_type_fails_instead_of_hanging(plane):
    closure = compile_workflow("hello", "hello_wf")
    closure.tasks[0].template.ClearField("container")
    closure.tasks[0].template.type = "sql"
    plane.engine.start(
        execution_id("sql1"),
        closure,
        python_to_literal_map({"name": "x"}, closure.primary.template.interface.inputs),
        admin_execution_pb2.ExecutionSpec(),
    )

    assert plane.wait_terminal("sql1") == WorkflowPhase.FAILED
    assert plane.workflow_events["sql1"][-1].error.code == "PluginNotFound"


def with_node_timeout(closure, node_id: str, seconds: int, retries: int = 0):
    for node in closure.primary.template.nodes:
        if node.id == node_id:
            node.metadata.timeout.FromSeconds(seconds)
            node.metadata.retries.retries = retries
    return closure


def test_task_timeout_kills_the_attempt_and_fails_with_retries_exhausted(plane):
    closure = with_node_timeout(compile_workflow("long_sleep", "long_sleep_wf"), "n0", 1)
    inputs = python_to_literal_map({"seconds": 600}, closure.primary.template.interface.inputs)
    plane.engine.start(
        execution_id("timeout1"), closure, inputs, admin_execution_pb2.ExecutionSpec()
    )

    assert plane.wait_terminal("timeout1") == WorkflowPhase.FAILED
    error = plane.workflow_events["timeout1"][-1].error
    assert error.code == "RetriesExhausted|TimeoutExpired"
    assert "task execution timeout [1s] expired" in error.message
    assert plane.engine._live_attempts == set()


def test_gate_timeout_fails_the_execution(plane):
    closure = with_node_timeout(compile_workflow("approvals", "approval_wf"), "n1", 1)
    inputs = python_to_literal_map({"version": 1}, closure.primary.template.interface.inputs)
    plane.engine.start(
        execution_id("gatetime"), closure, inputs, admin_execution_pb2.ExecutionSpec()
    )

    assert plane.wait_terminal("gatetime") == WorkflowPhase.FAILED
    error = plane.workflow_events["gatetime"][-1].error
    assert error.code == "RetriesExhausted|TimeoutExpired"
    assert "task execution timeout [1s] expired" in error.message
    assert plane.node_phases("gatetime", "n1")[-1] == NodePhase.FAILED


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600, "1h0m0s"),
        (90, "1m30s"),
        (1, "1s"),
        (1.5, "1.5s"),
        (0.25, "250ms"),
        (0.123456789, "123.456789ms"),
        (0.0005, "500µs"),
        (0, "0s"),
    ],
)
def test_durations_in_messages_are_written_as_propeller_writes_them(seconds, text):
    from flyte_bridge.sandbox.executor import _format_duration

    assert _format_duration(seconds) == text


def test_max_parallelism_runs_one_task_node_at_a_time(plane):
    spec = admin_execution_pb2.ExecutionSpec(max_parallelism=1)
    start(plane, "par1", "failures", "keep_going_wf", spec=spec, seconds=0.5)

    assert plane.wait_terminal("par1") == WorkflowPhase.FAILED
    events = [(e.parent_node_execution_id.node_id, e.phase) for e in plane.task_events]
    first_node = events[0][0]
    first_done = events.index(
        (first_node, TaskPhase.FAILED if first_node == "n0" else TaskPhase.SUCCEEDED)
    )
    second_queued = next(i for i, (node, phase) in enumerate(events) if node != first_node)
    assert second_queued > first_done


def test_recovery_reuses_succeeded_nodes_and_reruns_failed_ones(plane):
    start(plane, "orig1", "failures", "keep_going_wf", seconds=0.2)
    assert plane.wait_terminal("orig1") == WorkflowPhase.FAILED
    spec = admin_execution_pb2.ExecutionSpec()
    spec.metadata.mode = admin_execution_pb2.ExecutionMetadata.RECOVERED
    spec.metadata.reference_execution.CopyFrom(execution_id("orig1"))

    start(plane, "rec1", "failures", "keep_going_wf", spec=spec, seconds=0.2)

    assert plane.wait_terminal("rec1") == WorkflowPhase.FAILED
    assert plane.node_phases("rec1", "n1") == [NodePhase.RECOVERED]
    assert plane.node_phases("rec1", "n0")[-1] == NodePhase.FAILED
    recovered = [
        e for e in plane.node_events if e.id.execution_id.name == "rec1" and e.id.node_id == "n1"
    ]
    assert (
        plane.store.read_proto(recovered[0].output_uri, literals_pb2.LiteralMap)
        .literals["o0"]
        .scalar.primitive.string_value
        == "finished"
    )


def test_shutdown_kills_running_task_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))
    store = DataStore(tmp_path / "store")
    control_plane = FakeControlPlane(store)
    control_plane.engine = LocalExecutor(
        control_plane, store, sys.executable, kill_grace_seconds=1.0
    )
    start(control_plane, "shut1", "long_sleep", "long_sleep_wf", seconds=600)
    control_plane.wait_for(
        lambda: TaskPhase.RUNNING in [e.phase for e in control_plane.task_events]
    )
    attempt = next(iter(control_plane.engine._live_attempts))

    control_plane.engine.shutdown(timeout=5)

    assert attempt.process.wait(0) is not None


FAILURE_NODE_MODULE = """
import typing
from flytekit import task, workflow
from flytekit.types.error import FlyteError


@task
def explode(x: int) -> int:
    if x > 0:
        raise ValueError(f"exploded on {x}")
    return x


@task
def record_failure(x: int, err: typing.Optional[FlyteError] = None) -> None:
    with open(f"{MARKER}", "w") as marker:
        marker.write(f"{x} {err.failed_node_id} {'exploded on' in err.message}")


@workflow(on_failure=record_failure)
def guarded_wf(x: int = 3) -> int:
    return explode(x=x)
"""


def test_failure_node_runs_with_the_error_before_the_run_fails(plane, tmp_path, monkeypatch):
    marker = tmp_path / "failure-node.txt"
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / "guarded.py").write_text(FAILURE_NODE_MODULE.replace("{MARKER}", str(marker)))
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setenv("PYTHONPATH", f"{module_dir}:{EXAMPLES}")

    start(plane, "guard1", "guarded", "guarded_wf", x=3)

    assert plane.wait_terminal("guard1") == WorkflowPhase.FAILED
    assert plane.phases("guard1") == [
        WorkflowPhase.RUNNING,
        WorkflowPhase.FAILING,
        WorkflowPhase.FAILED,
    ]
    assert plane.node_phases("guard1", "fn0")[-1] == NodePhase.SUCCEEDED
    assert marker.read_text() == "3 n0 True"
    assert plane.workflow_events["guard1"][-1].error.code == "USER:RuntimeError"


def test_an_engine_bug_fails_the_execution_instead_of_hanging(plane, monkeypatch):
    def broken(node_run):
        raise RuntimeError("simulated engine bug")

    monkeypatch.setattr(plane.engine, "_start_task_node", broken)
    start(plane, "bug1", "hello", "hello_wf", name="x")

    assert plane.wait_terminal("bug1") == WorkflowPhase.FAILED
    error = plane.workflow_events["bug1"][-1].error
    assert error.code == "EngineError"
    assert "simulated engine bug" in error.message


CRASHING_MODULE = """
import os
from flytekit import task, workflow


@task
def crash_once(x: int) -> int:
    if os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
        os._exit(137)
    return x + 1


@workflow
def crash_wf(x: int = 1) -> int:
    return crash_once(x=x)


@task
def crash_always(x: int) -> int:
    os._exit(3)
    return x


@workflow
def crash_always_wf(x: int = 1) -> int:
    return crash_always(x=x)
"""


@pytest.fixture
def crashing_module(tmp_path, monkeypatch):
    """The module of crashing tasks, importable here and by the task processes (ask for it
    after ``plane``, which sets PYTHONPATH to the examples alone)."""
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / "crashing.py").write_text(CRASHING_MODULE)
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setenv("PYTHONPATH", f"{module_dir}:{EXAMPLES}")


def test_a_crashed_task_process_is_retried_as_a_system_failure(plane, crashing_module):
    start(plane, "crash1", "crashing", "crash_wf", x=1)

    assert plane.wait_terminal("crash1") == WorkflowPhase.SUCCEEDED
    finished = [e for e in plane.task_events if e.phase in (TaskPhase.FAILED, TaskPhase.SUCCEEDED)]
    assert [(e.retry_attempt, e.phase) for e in finished] == [
        (0, TaskPhase.FAILED),
        (1, TaskPhase.SUCCEEDED),
    ]
    assert finished[0].error.code == "ProcessExited"
    assert "exited with code 137" in finished[0].error.message
    assert outputs(plane, "crash1").literals["o0"].scalar.primitive.integer == 2


def test_a_task_that_always_crashes_fails_once_the_system_retry_budget_is_spent(
    plane, crashing_module
):
    from flyte_bridge.sandbox.executor import DEFAULT_SYSTEM_RETRIES

    start(plane, "crash2", "crashing", "crash_always_wf", x=1)

    assert plane.wait_terminal("crash2") == WorkflowPhase.FAILED
    failed = [e for e in plane.task_events if e.phase == TaskPhase.FAILED]
    assert [e.retry_attempt for e in failed] == list(range(DEFAULT_SYSTEM_RETRIES + 1))
    assert {e.error.code for e in failed} == {"ProcessExited"}
    # As propeller words a node whose retries ran out: kind USER, the last error's kind in the text.
    error = plane.workflow_events["crash2"][-1].error
    assert error.code == "RetriesExhausted|ProcessExited"
    assert error.kind == execution_pb2.ExecutionError.USER
    attempts = DEFAULT_SYSTEM_RETRIES + 1
    assert f"[{attempts}/{attempts}] currentAttempt done. Last Error: SYSTEM::" in error.message
    assert "task process exited with code 3 and wrote no output" in error.message


def test_a_long_chain_of_skipped_nodes_is_scheduled_without_recursion(plane):
    closure = compile_workflow("hello", "hello_wf")
    closure.tasks[0].template.ClearField("container")
    template = closure.primary.template
    task_node = next(node for node in template.nodes if node.id == "n0")
    chain = []
    for index in range(1500):
        node = type(task_node)()
        node.CopyFrom(task_node)
        node.id = f"c{index}"
        if index:
            node.upstream_node_ids.append(f"c{index - 1}")
        chain.append(node)
    del template.nodes[:]
    template.nodes.extend(chain)
    template.ClearField("outputs")
    template.metadata.on_failure = template.metadata.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE
    closure.primary.ClearField("connections")
    inputs = python_to_literal_map({"name": "x"}, template.interface.inputs)

    plane.engine.start(execution_id("chain1"), closure, inputs, admin_execution_pb2.ExecutionSpec())

    assert plane.wait_terminal("chain1") == WorkflowPhase.FAILED
    assert plane.node_phases("chain1", "c0")[-1] == NodePhase.FAILED
    assert plane.node_phases("chain1", "c1499") == [NodePhase.SKIPPED]


def test_aborting_a_parent_cascades_to_its_child_execution(plane):
    plane.closures["square_launch_plan"] = compile_workflow("long_sleep", "long_sleep_wf")
    closure = compile_workflow("composition", "composed_wf")
    launch_plan_node = next(n for n in closure.primary.template.nodes if n.id == "n1")
    launch_plan_node.inputs[0].var = "seconds"
    inputs = python_to_literal_map({"x": 300}, closure.primary.template.interface.inputs)
    plane.engine.start(
        execution_id("parent1"), closure, inputs, admin_execution_pb2.ExecutionSpec()
    )
    child = child_execution_name("parent1", "n1", 0)
    plane.wait_for(
        lambda: any(
            e.phase == TaskPhase.RUNNING and e.parent_node_execution_id.execution_id.name == child
            for e in plane.task_events
        )
    )

    plane.engine.abort(execution_id("parent1"), "stop everything")

    assert plane.wait_terminal("parent1") == WorkflowPhase.ABORTED
    assert plane.wait_terminal(child) == WorkflowPhase.ABORTED
    assert plane.node_phases("parent1", "n1")[-1] == NodePhase.ABORTED
    assert plane.engine._live_attempts == set()


def test_without_the_fork_server_tasks_run_as_fresh_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))
    store = DataStore(tmp_path / "store")
    control_plane = FakeControlPlane(store)
    control_plane.engine = LocalExecutor(control_plane, store, sys.executable, fork_server=False)
    try:
        start(control_plane, "fresh1", "hello", "hello_wf", name="fresh")

        assert control_plane.wait_terminal("fresh1") == WorkflowPhase.SUCCEEDED
        result = outputs(control_plane, "fresh1").literals["o0"].scalar.primitive.string_value
        assert result == "hello fresh"
        assert not store.path("engine", "fork-server.log").exists()
    finally:
        control_plane.engine.shutdown()


KINDS_MODULE = """
from datetime import timedelta
from typing import List

from flytekit import dynamic, map_task, sleep, task, workflow


@task
def plus_one(x: int) -> int:
    return x + 1


@workflow
def sleep_wf(x: int = 1) -> int:
    pause = sleep(timedelta(seconds=1))
    result = plus_one(x=x)
    pause >> result
    return result


@workflow
def map_wf(xs: List[int] = [1, 2]) -> List[int]:
    return map_task(plus_one)(x=xs)


@dynamic
def fan_out(n: int) -> List[int]:
    return [plus_one(x=i) for i in range(n)]


@workflow
def dynamic_wf(n: int = 2) -> List[int]:
    return fan_out(n=n)
"""


@pytest.fixture
def kinds_module(tmp_path, monkeypatch):
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / "node_kinds.py").write_text(KINDS_MODULE)
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setenv("PYTHONPATH", f"{module_dir}:{EXAMPLES}")
    return "node_kinds"


def test_sleep_gate_succeeds_after_its_duration(plane, kinds_module):
    started = time.monotonic()
    start(plane, "nap1", kinds_module, "sleep_wf", x=1)

    assert plane.wait_terminal("nap1") == WorkflowPhase.SUCCEEDED
    assert time.monotonic() - started >= 1.0
    assert plane.node_phases("nap1", "n0") == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.SUCCEEDED,
    ]
    assert outputs(plane, "nap1").literals["o0"].scalar.primitive.integer == 2


def test_array_node_reports_its_items_inside_one_task_execution(plane, kinds_module):
    start(plane, "map1", kinds_module, "map_wf", xs=[1, 2])

    assert plane.wait_terminal("map1") == WorkflowPhase.SUCCEEDED
    results = outputs(plane, "map1").literals["o0"].collection.literals
    assert [literal.scalar.primitive.integer for literal in results] == [2, 3]
    node_events = [e for e in plane.node_events if e.id.node_id == "n0"]
    assert [e.phase for e in node_events] == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.SUCCEEDED,
    ]
    assert all(e.is_array for e in node_events)
    task_events = [e for e in plane.task_events if e.parent_node_execution_id.node_id == "n0"]
    assert {e.retry_attempt for e in task_events} == {0}
    assert task_events[0].phase == TaskPhase.QUEUED
    assert task_events[-1].phase == TaskPhase.SUCCEEDED
    running_versions = [e.phase_version for e in task_events if e.phase == TaskPhase.RUNNING]
    assert running_versions == list(range(len(running_versions)))
    last_phase = {}
    for event in task_events:
        for resource in event.metadata.external_resources:
            last_phase[(resource.index, resource.retry_attempt)] = resource.phase
    assert last_phase == {(0, 0): TaskPhase.SUCCEEDED, (1, 0): TaskPhase.SUCCEEDED}


def test_dynamic_task_runs_the_nodes_it_returns_as_its_children(plane, kinds_module):
    start(plane, "dyn1", kinds_module, "dynamic_wf", n=2)

    assert plane.wait_terminal("dyn1") == WorkflowPhase.SUCCEEDED
    results = outputs(plane, "dyn1").literals["o0"].collection.literals
    assert [item.scalar.primitive.integer for item in results] == [1, 2]
    assert plane.node_phases("dyn1", "n0") == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.DYNAMIC_RUNNING,
        NodePhase.SUCCEEDED,
    ]
    assert plane.node_phases("dyn1", "n0-0-dn1") == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.SUCCEEDED,
    ]


SILENT_ZYGOTE = """
import sys, time
for line in sys.stdin:
    time.sleep(600)
"""


def test_a_spawn_the_fork_server_never_answers_blocks_neither_abort_nor_shutdown(
    tmp_path, monkeypatch
):
    from flyte_bridge.sandbox import task_runner

    silent = tmp_path / "silent_zygote.py"
    silent.write_text(SILENT_ZYGOTE)
    monkeypatch.setattr(task_runner, "ZYGOTE_SCRIPT", silent)
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))
    store = DataStore(tmp_path / "store")
    plane = FakeControlPlane(store)
    plane.engine = LocalExecutor(plane, store, sys.executable)
    try:
        start(plane, "stuck1", "hello", "hello_wf", name="stuck")
        plane.wait_for(lambda: plane.node_phases("stuck1", "n0"), timeout=30)
        time.sleep(0.5)  # the attempt is now waiting for the zygote's reply

        aborted_at = time.monotonic()
        plane.engine.abort(execution_id("stuck1"), "stop it")
        assert plane.wait_terminal("stuck1", timeout=15) == WorkflowPhase.ABORTED
        assert time.monotonic() - aborted_at < 15
    finally:
        stopping = threading.Thread(target=plane.engine.shutdown, daemon=True)
        stopping.start()
        stopping.join(20)
    assert not stopping.is_alive(), "shutdown waited for a spawn the fork server never answered"
    assert plane.task_events == [], "no task process was started for the aborted attempt"


def test_a_negative_max_parallelism_does_not_hold_nodes_back(plane):
    spec = admin_execution_pb2.ExecutionSpec(max_parallelism=-1)
    start(plane, "parneg", "hello", "hello_wf", spec=spec, name="sandbox")

    assert plane.wait_terminal("parneg") == WorkflowPhase.SUCCEEDED


def test_a_negative_node_timeout_is_no_timeout(plane):
    closure = compile_workflow("hello", "hello_wf")
    node = next(n for n in closure.primary.template.nodes if n.id == "n0")
    node.metadata.timeout.FromSeconds(-5)
    plane.engine.start(
        execution_id("tneg"),
        closure,
        python_to_literal_map({"name": "x"}, closure.primary.template.interface.inputs),
        admin_execution_pb2.ExecutionSpec(),
    )

    assert plane.wait_terminal("tneg") == WorkflowPhase.SUCCEEDED
