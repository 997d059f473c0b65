"""Dynamic nodes in the local executor: the events, ids and outputs propeller produces.

Driven through the in-memory control plane of ``test_executor_unit``; the end-to-end behaviour
(FlyteRemote, GetDynamicNodeWorkflow, recovery) is in ``test_dynamic_nodes.py``.
"""

from __future__ import annotations

import sys

import pytest
from flyteidl.admin import execution_pb2 as admin_execution_pb2
from test_executor_unit import (
    EXAMPLES,
    FakeControlPlane,
    NodePhase,
    TaskPhase,
    WorkflowPhase,
    compile_workflow,
    execution_id,
    outputs,
    start,
)

from flyte_bridge.sandbox.executor import LocalExecutor, child_execution_name
from flyte_bridge.sandbox.storage import DataStore

DYNAMIC_MODULE = """
import os
import time
from datetime import timedelta

from flytekit import LaunchPlan, conditional, dynamic, sleep, task, workflow
from flytekit.exceptions.user import FlyteRecoverableException


@task
def plus_one(x: int) -> int:
    return x + 1


@task
def explode(x: int) -> int:
    if x > 0:
        raise ValueError(f"cannot handle {x}")
    return x


@task
def nap(seconds: int) -> int:
    time.sleep(seconds)
    return seconds


@dynamic
def slow_fan_out(seconds: int) -> list[int]:
    return [nap(seconds=seconds)]


@dynamic
def fan_out(n: int) -> list[int]:
    return [plus_one(x=i) for i in range(n)]


@dynamic(retries=1)
def flaky_fan_out(n: int) -> list[int]:
    if os.environ.get("FLYTE_ATTEMPT_NUMBER") == "0":
        raise FlyteRecoverableException("the first attempt fails")
    return [plus_one(x=i) for i in range(n)]


@dynamic
def failing_fan_out(n: int) -> list[int]:
    return [plus_one(x=n), explode(x=n)]


@workflow
def fan_out_wf(n: int = 2) -> list[int]:
    return fan_out(n=n)


@workflow
def flaky_wf(n: int = 2) -> list[int]:
    return flaky_fan_out(n=n)


@workflow
def failing_wf(n: int = 3) -> list[int]:
    return failing_fan_out(n=n)


@workflow
def slow_wf(seconds: int = 600) -> list[int]:
    return slow_fan_out(seconds=seconds)


@task
def double(x: int) -> int:
    return 2 * x


@workflow
def double_wf(x: int) -> int:
    return double(x=x)


double_lp = LaunchPlan.get_or_create(workflow=double_wf, name="double_lp")


@dynamic
def every_kind(x: int) -> int:
    pause = sleep(timedelta(milliseconds=200))
    doubled = double_wf(x=x)
    pause >> doubled
    quadrupled = double_lp(x=doubled)
    return (
        conditional("big")
        .if_(quadrupled > 10)
        .then(double(x=quadrupled))
        .else_()
        .then(plus_one(x=quadrupled))
    )


@workflow
def every_kind_wf(x: int = 3) -> int:
    return every_kind(x=x)
"""


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    """One engine for the module; every test runs its own execution on it."""
    root = tmp_path_factory.mktemp("dynamic")
    module_dir = root / "modules"
    module_dir.mkdir()
    (module_dir / "dynamic_kinds.py").write_text(DYNAMIC_MODULE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(module_dir))
        patch.setenv("PYTHONPATH", f"{module_dir}:{EXAMPLES}")
        store = DataStore(root / "store")
        control_plane = FakeControlPlane(store)
        engine = LocalExecutor(control_plane, store, sys.executable, kill_grace_seconds=1.0)
        control_plane.engine = engine
        yield control_plane
        engine.shutdown()


def node_events(plane: FakeControlPlane, execution: str, node_id: str):
    return [
        e
        for e in plane.node_events
        if e.id.execution_id.name == execution and e.id.node_id == node_id
    ]


def integers(plane: FakeControlPlane, execution: str) -> list[int]:
    items = outputs(plane, execution).literals["o0"].collection.literals
    return [item.scalar.primitive.integer for item in items]


@pytest.fixture(scope="module")
def fan_out(plane):
    """A finished run of ``fan_out_wf(n=2)`` and its compiled closure."""
    closure = start(plane, "dyn", "dynamic_kinds", "fan_out_wf", n=2)
    assert plane.wait_terminal("dyn") == WorkflowPhase.SUCCEEDED
    return closure


def test_dynamic_node_goes_dynamic_running_after_its_task_and_succeeds_with_its_outputs(
    plane, fan_out
):
    assert plane.node_phases("dyn", "n0") == [
        NodePhase.QUEUED,
        NodePhase.RUNNING,
        NodePhase.DYNAMIC_RUNNING,
        NodePhase.SUCCEEDED,
    ]
    assert integers(plane, "dyn") == [1, 2]


def test_dynamic_running_event_carries_the_compiled_workflow_and_the_spec(plane, fan_out):
    (event,) = [e for e in node_events(plane, "dyn", "n0") if e.phase == NodePhase.DYNAMIC_RUNNING]
    dynamic = event.task_node_metadata.dynamic_workflow

    assert event.is_dynamic and event.is_parent
    assert (dynamic.id.project, dynamic.id.domain, dynamic.id.name) == (
        "flytesnacks",
        "development",
        "dynamic_n0",
    )
    assert dynamic.compiled_workflow.primary.template.id == dynamic.id
    assert {node.id for node in dynamic.compiled_workflow.primary.template.nodes} == {
        "start-node",
        "dn0",
        "dn1",
        "end-node",
    }
    assert [t.template.id.name for t in dynamic.compiled_workflow.tasks] == [
        "dynamic_kinds.plus_one"
    ]
    task_interface = fan_out.tasks[0].template.interface
    assert dynamic.compiled_workflow.primary.template.interface == task_interface
    assert dynamic.dynamic_job_spec_uri.endswith("/n0/data/0/futures.pb")


def test_dynamic_task_attempt_succeeds_with_the_node_output_uri(plane, fan_out):
    attempt_events = [e for e in plane.task_events if e.parent_node_execution_id.node_id == "n0"]
    final = node_events(plane, "dyn", "n0")[-1]

    assert [e.phase for e in attempt_events] == [
        TaskPhase.QUEUED,
        TaskPhase.RUNNING,
        TaskPhase.SUCCEEDED,
    ]
    assert attempt_events[-1].output_uri == final.output_uri
    assert final.output_uri.endswith("/n0/data/0/outputs.pb")


def test_dynamic_children_are_numbered_under_the_dynamic_node(plane, fan_out):
    child = node_events(plane, "dyn", "n0-0-dn1")
    start_node = node_events(plane, "dyn", "n0-0-start-node")
    end_node = node_events(plane, "dyn", "n0-0-end-node")

    assert [e.phase for e in child] == [NodePhase.QUEUED, NodePhase.RUNNING, NodePhase.SUCCEEDED]
    assert {(e.spec_node_id, e.parent_node_metadata.node_id, e.retry_group) for e in child} == {
        ("dn1", "n0", "0")
    }
    assert [e.phase for e in start_node] == [NodePhase.SUCCEEDED]
    assert start_node[0].output_uri == node_events(plane, "dyn", "n0")[0].input_uri
    assert [e.phase for e in end_node] == [NodePhase.QUEUED, NodePhase.SUCCEEDED]
    assert end_node[0].parent_node_metadata.node_id == "n0"


def test_children_of_a_retried_dynamic_task_carry_the_attempt_that_returned_them(plane):
    start(plane, "flaky", "dynamic_kinds", "flaky_wf", n=2)

    assert plane.wait_terminal("flaky") == WorkflowPhase.SUCCEEDED
    assert integers(plane, "flaky") == [1, 2]
    attempts = {
        (e.retry_attempt, e.phase)
        for e in plane.task_events
        if e.parent_node_execution_id.node_id == "n0"
    }
    assert (0, TaskPhase.FAILED) in attempts and (1, TaskPhase.SUCCEEDED) in attempts
    child = node_events(plane, "flaky", "n0-1-dn0")
    assert child and {(e.parent_node_metadata.node_id, e.retry_group) for e in child} == {
        ("n0", "1")
    }
    assert not node_events(plane, "flaky", "n0-0-dn0")
    assert node_events(plane, "flaky", "n0")[-1].output_uri.endswith("/n0/data/1/outputs.pb")


def test_a_failing_child_fails_the_dynamic_node_and_the_workflow_with_its_error(plane):
    start(plane, "boom", "dynamic_kinds", "failing_wf", n=3)

    assert plane.wait_terminal("boom") == WorkflowPhase.FAILED
    child_error = node_events(plane, "boom", "n0-0-dn1")[-1].error
    node = node_events(plane, "boom", "n0")[-1]
    assert node.phase == NodePhase.FAILED
    assert node.error == child_error
    assert "ValueError: cannot handle 3" in child_error.message
    assert plane.workflow_events["boom"][-1].error.message == child_error.message


def test_dynamic_children_get_task_slots_when_max_parallelism_is_one(plane):
    spec = admin_execution_pb2.ExecutionSpec(max_parallelism=1)
    start(plane, "narrow", "dynamic_kinds", "fan_out_wf", spec=spec, n=2)

    assert plane.wait_terminal("narrow") == WorkflowPhase.SUCCEEDED
    assert integers(plane, "narrow") == [1, 2]


def test_aborting_a_running_dynamic_node_aborts_its_children(plane):
    start(plane, "stop", "dynamic_kinds", "slow_wf", seconds=600)
    plane.wait_for(lambda: NodePhase.RUNNING in plane.node_phases("stop", "n0-0-dn0"))
    plane.engine.abort(execution_id("stop"), "user asked")

    assert plane.wait_terminal("stop") == WorkflowPhase.ABORTED
    assert plane.node_phases("stop", "n0-0-dn0")[-1] == NodePhase.ABORTED
    assert plane.node_phases("stop", "n0")[-2:] == [NodePhase.DYNAMIC_RUNNING, NodePhase.ABORTED]
    aborted = [
        e
        for e in plane.task_events
        # The module's engine is shared: a sibling aborted in another execution has this id too.
        if e.parent_node_execution_id.execution_id.name == "stop"
        and e.parent_node_execution_id.node_id == "n0-0-dn0"
        and e.phase == TaskPhase.ABORTED
    ]
    assert len(aborted) == 1


def test_dynamic_spec_runs_gate_subworkflow_launch_plan_and_branch_nodes(plane):
    plane.closures["double_lp"] = compile_workflow("dynamic_kinds", "double_wf")
    start(plane, "kinds", "dynamic_kinds", "every_kind_wf", x=3)

    assert plane.wait_terminal("kinds") == WorkflowPhase.SUCCEEDED
    assert outputs(plane, "kinds").literals["o0"].scalar.primitive.integer == 24
    (dynamic_running,) = [
        e for e in node_events(plane, "kinds", "n0") if e.phase == NodePhase.DYNAMIC_RUNNING
    ]
    spec = dynamic_running.task_node_metadata.dynamic_workflow.compiled_workflow.primary.template
    kinds = {node.id: node.WhichOneof("target") for node in spec.nodes if node.WhichOneof("target")}
    assert kinds == {
        "dn0": "gate_node",
        "dn1": "workflow_node",
        "dn2": "workflow_node",
        "dn3": "branch_node",
    }
    for spec_node_id in kinds:
        events = node_events(plane, "kinds", f"n0-0-{spec_node_id}")
        assert events[-1].phase == NodePhase.SUCCEEDED, spec_node_id
        assert events[-1].parent_node_metadata.node_id == "n0"
    subworkflow_child = node_events(plane, "kinds", "n0-0-dn1-0-dn0")
    assert subworkflow_child[-1].parent_node_metadata.node_id == "n0-0-dn1"
    branch_child = node_events(plane, "kinds", "n0-0-dn3-0-dn0")
    assert branch_child[-1].parent_node_metadata.node_id == "n0-0-dn3"
    launched = child_execution_name("kinds", "n0-0-dn2", 0)
    assert plane.phases(launched)[-1] == WorkflowPhase.SUCCEEDED
