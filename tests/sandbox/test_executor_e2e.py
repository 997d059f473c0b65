"""The local executor's behaviour as flytekit's FlyteRemote sees it, over real gRPC.

The examples are registered once per session with ``pyflyte register``; each test launches one
registered launch plan and reads the execution back, nodes and task attempts included.
"""

from __future__ import annotations

import urllib.request
from datetime import datetime, timezone

import pytest
from flyte_examples import EXAMPLES_VERSION, unique_name, wait_until
from flytekit.models.core.execution import NodeExecutionPhase, TaskExecutionPhase
from flytekit.models.core.execution import WorkflowExecutionPhase as Phase

pytestmark = pytest.mark.slow


@pytest.fixture
def remote(flyte_examples_remote):
    """FlyteRemote on the session's sandbox, with every example registered once per session."""
    return flyte_examples_remote


def launch(remote, launch_plan: str, **inputs):
    entity = remote.fetch_launch_plan(name=launch_plan, version=EXAMPLES_VERSION)
    return remote.execute(entity, inputs=inputs, execution_name=unique_name("e2e"))


def finish(remote, execution, timeout: float = 120):
    return remote.wait(execution, timeout=timeout, poll_interval=0.3)


def test_registered_scheduled_launch_plan_runs_with_its_kickoff_time(remote):
    kickoff = datetime(2026, 5, 2, 6, 0, tzinfo=timezone.utc)

    execution = finish(remote, launch(remote, "daily_report", kickoff_time=kickoff))

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == "report eu 2026-05-02: 20 events"
    launch_plan = remote.client.get_launch_plan(
        remote.fetch_launch_plan(name="daily_report", version=EXAMPLES_VERSION).id
    )
    schedule = launch_plan.spec.entity_metadata.schedule
    assert (schedule.cron_schedule.schedule or schedule.cron_expression) == "0 6 * * *"
    assert schedule.kickoff_time_input_arg == "kickoff_time"


def test_retry_attempts_are_task_executions_of_one_node(remote):
    execution = finish(remote, launch(remote, "failures.retry_wf", value=3))

    assert execution.closure.phase == Phase.SUCCEEDED
    node = execution.node_executions["n0"]
    assert node.closure.phase == NodeExecutionPhase.SUCCEEDED
    attempts = sorted(node.task_executions, key=lambda t: t.id.retry_attempt)
    assert [(t.id.retry_attempt, t.closure.phase) for t in attempts] == [
        (0, TaskExecutionPhase.FAILED),
        (1, TaskExecutionPhase.SUCCEEDED),
    ]
    assert "flaky fails on its first attempt" in attempts[0].closure.error.message


def test_each_attempt_links_its_own_log_served_over_http(remote):
    execution = finish(remote, launch(remote, "failures.retry_wf", value=5))

    attempts = sorted(
        execution.node_executions["n0"].task_executions, key=lambda t: t.id.retry_attempt
    )
    logs = [urllib.request.urlopen(t.closure.logs[0].uri, timeout=10).read() for t in attempts]
    assert b"flaky fails on its first attempt" in logs[0]
    assert b"flaky fails on its first attempt" not in logs[1]


def test_fail_after_executable_nodes_complete_finishes_independent_node(remote):
    execution = finish(remote, launch(remote, "failures.keep_going_wf", seconds=0.5))

    assert execution.closure.phase == Phase.FAILED
    assert execution.node_executions["n0"].closure.phase == NodeExecutionPhase.FAILED
    assert execution.node_executions["n1"].closure.phase == NodeExecutionPhase.SUCCEEDED
    assert execution.closure.error.code == "USER:RuntimeError"


def test_reject_fails_the_execution_with_reject_error(remote):
    execution = launch(remote, "approvals.approval_wf", version=4)
    wait_until(lambda: remote.list_signals(execution.id.name), what="the review gate")

    remote.reject("review", execution.id.name)

    execution = finish(remote, execution)
    assert execution.closure.phase == Phase.FAILED
    assert execution.closure.error.code == "ReceivedRejectSignal"
    assert execution.node_executions["n1"].closure.phase == NodeExecutionPhase.FAILED


def test_branch_runs_only_the_taken_case_as_child(remote):
    execution = finish(remote, launch(remote, "branching.branch_wf", x=-4))

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == "-4 is not positive"
    branch = execution.node_executions["n0"]
    assert branch.metadata.is_parent_node
    children = remote.client.list_node_executions(execution.id, unique_parent_id="n0", limit=100)[0]
    assert [child.metadata.spec_node_id for child in children] == ["n1"]


def test_launch_plan_node_runs_a_child_execution(remote):
    execution = finish(remote, launch(remote, "composition.composed_wf", x=2))

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == 25
    child_id = execution.node_executions["n1"].closure.target_metadata.execution_id
    child = remote.fetch_execution(name=child_id.name)
    assert child.closure.phase == Phase.SUCCEEDED
    assert child.spec.metadata.parent_node_execution.execution_id.name == execution.id.name
    assert child.outputs["o0"] == 25
    subworkflow = execution.node_executions["n0"]
    assert subworkflow.metadata.is_parent_node
    assert subworkflow.outputs["o0"] == 5


def test_terminating_a_parent_aborts_its_running_gate(remote):
    execution = launch(remote, "approvals.approval_wf", version=1)
    wait_until(lambda: remote.list_signals(execution.id.name), what="the review gate")

    remote.terminate(execution, cause="not needed")

    execution = finish(remote, execution)
    assert execution.closure.phase == Phase.ABORTED
    assert execution.node_executions["n1"].closure.phase == NodeExecutionPhase.ABORTED


def test_recover_reuses_succeeded_nodes_of_the_failed_execution(remote):
    original = finish(remote, launch(remote, "failures.keep_going_wf", seconds=0.2))
    assert original.closure.phase == Phase.FAILED

    recovered_id = remote.client.recover_execution(original.id, name=unique_name("rec"))

    recovered = finish(remote, remote.fetch_execution(name=recovered_id.name))
    assert recovered.closure.phase == Phase.FAILED
    assert recovered.node_executions["n1"].closure.phase == NodeExecutionPhase.RECOVERED
    data = remote.client.get_node_execution_data(recovered.node_executions["n1"].id)
    assert data.full_outputs.literals["o0"].scalar.primitive.string_value == "finished"
    assert recovered.node_executions["n0"].closure.phase == NodeExecutionPhase.FAILED
