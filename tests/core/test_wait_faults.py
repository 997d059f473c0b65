"""wait(): bounded by its timeout whatever the server does (C05, C06, C10).

These run against the scripted AdminService of conftest, which can stop answering or report a
phase the client does not know; the sandbox cannot (yet).
"""

from __future__ import annotations

import time

import pytest
from flyteidl.core.execution_pb2 import WorkflowExecution

from flyte_bridge import _ops
from flyte_bridge.errors import FlyteInvalidInputError, FlyteServerError, FlyteTimeoutError
from flyte_bridge.models import WorkflowPhase

RUNNING = WorkflowExecution.RUNNING
SUCCEEDED = WorkflowExecution.SUCCEEDED
ID = "flytesnacks/development/{}"


def test_c06_wait_polls_only_get_execution_until_terminal(scripted_client):
    admin, client = scripted_client
    admin.script["e1"] = [RUNNING, RUNNING, RUNNING, SUCCEEDED]

    execution = client.wait(ID.format("e1"), timeout=30, poll_interval=0.05)

    assert execution.phase is WorkflowPhase.SUCCEEDED
    assert dict(admin.calls) == {"GetExecution": 4}


def test_wait_reports_each_phase_change_once(scripted_client):
    admin, client = scripted_client
    admin.script["e2"] = [WorkflowExecution.QUEUED, RUNNING, RUNNING, SUCCEEDED]
    seen = []

    client.wait(ID.format("e2"), timeout=30, poll_interval=0.05, on_update=seen.append)

    assert [e.phase.name for e in seen] == ["QUEUED", "RUNNING", "SUCCEEDED"]


def test_c05_wait_ends_within_timeout_plus_one_deadline_when_server_stops_answering(
    scripted_client,
):
    admin, client = scripted_client
    admin.script["e3"] = [RUNNING, RUNNING, admin.HANG]
    started = time.monotonic()

    with pytest.raises(FlyteTimeoutError) as caught:
        client.wait(ID.format("e3"), timeout=3.0, poll_interval=0.2)

    elapsed = time.monotonic() - started
    assert 3.0 <= elapsed < 3.0 + 2.0 + 1.0  # timeout + one RPC deadline (2 s) + slack
    assert "flytesnacks/development/e3" in str(caught.value)
    assert "RUNNING" in str(caught.value)


@pytest.mark.parametrize(
    "phase, successful",
    [("SUCCEEDED", True), ("FAILED", False), ("ABORTED", False), ("TIMED_OUT", False)],
)
def test_c10_wait_returns_on_every_terminal_phase(scripted_client, phase, successful):
    admin, client = scripted_client
    admin.script["e4"] = [RUNNING, WorkflowExecution.Phase.Value(phase)]

    execution = client.wait(ID.format("e4"), timeout=30, poll_interval=0.01)

    assert execution.phase.name == phase
    assert execution.is_done
    assert execution.is_successful is successful


def test_c10_wait_keeps_polling_transient_phases_until_timeout_naming_the_phase(scripted_client):
    admin, client = scripted_client
    admin.script["e5"] = [WorkflowExecution.UNDEFINED]

    with pytest.raises(FlyteTimeoutError, match="last phase UNDEFINED"):
        client.wait(ID.format("e5"), timeout=1.0, poll_interval=0.1)

    assert admin.calls["GetExecution"] >= 5


def test_c10_wait_gives_up_on_a_phase_it_does_not_know(scripted_client, monkeypatch):
    admin, client = scripted_client
    admin.script["e6"] = [99]
    monkeypatch.setattr(_ops, "UNKNOWN_PHASE_GRACE", 0.3)

    with pytest.raises(FlyteServerError, match="phase 99"):
        client.wait(ID.format("e6"), timeout=None, poll_interval=0.05)


def test_c06_wait_lists_no_node_executions_while_polling(scripted_client):
    admin, client = scripted_client
    admin.script["e7"] = [RUNNING] * 5 + [SUCCEEDED]

    client.wait(ID.format("e7"), timeout=30, poll_interval=0.01, sync_nodes=False)

    assert "ListNodeExecutions" not in admin.calls
    assert admin.calls["GetExecution"] == 6


def test_c18_a_run_stuck_in_aborting_after_terminate_times_out_naming_aborting(scripted_client):
    admin, client = scripted_client
    admin.script["e8"] = [RUNNING]

    result = client.terminate(ID.format("e8"), "stop")
    with pytest.raises(FlyteTimeoutError, match="last phase ABORTING") as timed_out:
        client.wait(ID.format("e8"), timeout=0.5, poll_interval=0.1)
    assert timed_out.value.last_phase == "ABORTING"

    assert (result.already_terminal, result.phase.name) == (False, "ABORTING")


def test_c10_wait_without_timeout_has_no_hidden_cap_over_six_fake_hours():
    """Drives the wait operation by hand with a fake clock: 360 polls a minute apart."""
    from flyteidl.admin.execution_pb2 import Execution as ExecutionProto

    from flyte_bridge._runtime import Call, Sleep
    from flyte_bridge.models import ExecutionId

    now = [0.0]
    op = _ops.wait_op(ExecutionId("p", "d", "long"), None, 60.0, 30.0, clock=lambda: now[0])
    polls = 0
    step = next(op)
    while True:
        if isinstance(step, Sleep):
            now[0] += step.seconds
            step = op.send(None)
            continue
        assert isinstance(step, Call) and step.method == "GetExecution"
        polls += 1
        phase = SUCCEEDED if polls == 361 else RUNNING
        try:
            step = op.send(ExecutionProto(closure={"phase": phase}))
        except StopIteration as stop:
            finished = stop.value
            break

    assert polls == 361
    assert now[0] == 6 * 3600
    assert finished.phase is WorkflowPhase.SUCCEEDED


def test_wait_backs_off_while_polls_keep_failing_and_resets_after_an_answer():
    """Drives the wait operation with a fake clock: five failed polls, an answer, one more."""
    from flyteidl.admin.execution_pb2 import Execution as ExecutionProto

    from flyte_bridge._runtime import Call, Sleep
    from flyte_bridge.errors import FlyteTransientError
    from flyte_bridge.models import ExecutionId

    now = [0.0]
    outcomes = ["fail"] * 5 + [RUNNING, "fail", SUCCEEDED]
    pauses = []
    op = _ops.wait_op(ExecutionId("p", "d", "flaky"), None, 0.5, 10.0, clock=lambda: now[0])
    step = next(op)
    while True:
        if isinstance(step, Sleep):
            pauses.append(step.seconds)
            now[0] += step.seconds
            step = op.send(None)
            continue
        assert isinstance(step, Call)
        outcome = outcomes.pop(0)
        try:
            if outcome == "fail":
                step = op.throw(FlyteTransientError("UNAVAILABLE"))
            else:
                step = op.send(ExecutionProto(closure={"phase": outcome}))
        except StopIteration as stop:
            finished = stop.value
            break

    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 0.5, 1.0]
    assert finished.phase is WorkflowPhase.SUCCEEDED


def test_a_sync_with_a_timeout_ends_by_it_when_the_server_stops_answering(scripted_client):
    admin, client = scripted_client
    admin.script["e9"] = [admin.HANG]
    started = time.monotonic()

    with pytest.raises(FlyteTimeoutError):
        client.sync(ID.format("e9"), timeout=1.0)

    assert time.monotonic() - started < 1.0 + 1.0  # not the RPC deadline of 2 s and retries


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_a_sync_refuses_a_timeout_that_is_not_a_positive_number(scripted_client, timeout):
    _admin, client = scripted_client

    with pytest.raises(FlyteInvalidInputError, match="timeout must be a positive|got nan"):
        client.sync(ID.format("e1"), timeout=timeout)


def test_c20_a_run_that_ends_between_the_last_poll_and_the_deadline_is_returned_as_ended(
    scripted_client,
):
    admin, client = scripted_client
    admin.script["e20"] = [RUNNING, SUCCEEDED]  # the next poll would come after the deadline

    execution = client.wait(ID.format("e20"), timeout=0.5, poll_interval=30)

    assert execution.phase is WorkflowPhase.SUCCEEDED
    assert dict(admin.calls) == {"GetExecution": 2}, "one poll, then the read at the deadline"
