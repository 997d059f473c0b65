"""terminate (C18), relaunch and recover against the sandbox."""

from __future__ import annotations

import pytest

from flyte_bridge.errors import FlyteConflictError
from flyte_bridge.models import WorkflowPhase


def test_terminate_a_running_execution_records_the_cause(client, registered_examples):
    running = client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 120})

    result = client.terminate(running, "no longer needed")
    aborted = client.wait(running, timeout=60, poll_interval=0.2)

    assert result.already_terminal is False
    assert result.execution_id == running.id
    assert aborted.phase is WorkflowPhase.ABORTED
    assert (aborted.error.code, aborted.error.message) == ("ABORTED", "no longer needed")


@pytest.mark.parametrize("run", ["hello", "failing"])
def test_c18_terminate_a_finished_execution_says_so_instead_of_failing(client, finished_runs, run):
    finished = finished_runs[run]

    result = client.terminate(finished, "too late")

    assert result.already_terminal is True
    assert result.phase is finished.phase


def test_relaunch_runs_the_same_launch_plan_and_inputs_again(client, finished_runs):
    hello = finished_runs["hello"]

    again = client.relaunch(hello)

    assert again.id != hello.id
    assert again.mode == "RELAUNCH"
    assert again.launch_plan == hello.launch_plan
    assert client.fetch_inputs(again) == {"name": "core"}


def test_relaunch_under_a_name_taken_by_another_run_is_a_conflict(client, finished_runs):
    with pytest.raises(FlyteConflictError, match="not a relaunch"):
        client.relaunch(finished_runs["hello"], name=finished_runs["failing"].id.name)


def test_recover_under_a_name_taken_by_another_run_is_a_conflict(client, finished_runs):
    with pytest.raises(FlyteConflictError, match="which is not a recovery of"):
        client.recover(finished_runs["failing"], name=finished_runs["hello"].id.name)


def test_recover_starts_a_recovery_of_a_failed_run(client, finished_runs):
    failing = finished_runs["failing"]

    recovery = client.recover(failing)

    assert recovery.mode == "RECOVERED"
    assert recovery.proto.spec.metadata.reference_execution.name == failing.id.name


def test_a_recovery_reuses_the_nodes_that_succeeded(sandbox_client):
    failed = sandbox_client.wait(
        sandbox_client.launch("failures.keep_going_wf", inputs={"seconds": 0.5}),
        timeout=120,
        poll_interval=0.3,
    )

    recovery = sandbox_client.wait(
        sandbox_client.recover(failed), timeout=120, poll_interval=0.3, sync_nodes=True
    )

    phases = {n.spec_node_id: n.phase.name for n in recovery.node_executions.values()}
    assert failed.phase.name == "FAILED"
    assert phases == {"n0": "FAILED", "n1": "RECOVERED"}
    assert recovery.node_executions["n1"].is_done and recovery.node_executions["n1"].is_successful


def _drive_terminate(cause: str, aborted_with: str):
    """terminate_op whose TerminateExecution meets FAILED_PRECONDITION (a lost first answer, or
    a run ended before) and whose read finds the run ABORTED with ``aborted_with``."""
    from flyteidl.admin import execution_pb2
    from flyteidl.core.execution_pb2 import WorkflowExecution

    from flyte_bridge import _ops
    from flyte_bridge.errors import FlyteFailedPreconditionError
    from flyte_bridge.models import ExecutionId

    op = _ops.terminate_op(ExecutionId("flytesnacks", "development", "e1"), cause)
    assert next(op).method == "TerminateExecution"
    read = op.throw(FlyteFailedPreconditionError("already terminated"))
    assert read.method == "GetExecution"
    found = execution_pb2.Execution()
    found.closure.phase = WorkflowExecution.ABORTED
    found.closure.abort_metadata.cause = aborted_with
    with pytest.raises(StopIteration) as stopped:
        op.send(found)
    return stopped.value.value


def test_a_terminate_whose_first_answer_was_lost_reports_that_it_ended_the_run():
    result = _drive_terminate("not needed", aborted_with="not needed")

    assert result.phase.name == "ABORTED" and not result.already_terminal


def test_a_terminate_of_a_run_someone_else_aborted_says_it_had_already_ended():
    result = _drive_terminate("not needed", aborted_with="stopped from the console")

    assert result.already_terminal
