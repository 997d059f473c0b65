"""Signals on the approval example: typed values, gates not reached yet (C15, C16).

The happy paths run with both clients; the refusals (decided by the shared operation code before
any SetSignal) run once, with the sync client, to keep the end-to-end time down.
"""

from __future__ import annotations

import time

import pytest

from flyte_bridge.errors import (
    FlyteFailedPreconditionError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
    FlyteNotReadyError,
    FlyteTimeoutError,
)


@pytest.fixture
def paused(client, registered_examples):
    """An approval_wf execution, terminated after the test if it still runs."""
    execution = client.launch("approvals.approval_wf", inputs={"version": 1})
    yield execution
    client.terminate(execution, "test finished")


@pytest.fixture(scope="module")
def at_rollout_gate(sandbox_client):
    """One approval_wf execution, approved, waiting at its float gate ``rollout_percent``."""
    execution = sandbox_client.launch("approvals.approval_wf", inputs={"version": 1})
    sandbox_client.approve(execution, "review", wait_for_gate=60)
    yield execution
    sandbox_client.terminate(execution, "test finished")


def test_c15_approve_right_after_launch_waits_for_the_gate_and_sets_it_once(
    client, paused, flyte_sandbox
):
    before = flyte_sandbox.rpc_counts.snapshot()

    signal = client.approve(paused, "review", wait_for_gate=60)

    assert flyte_sandbox.rpc_counts.since(before)["SetSignal"] == 1
    assert signal.signal_id == "review"
    assert signal.value is True
    assert [(s.signal_id, s.value) for s in client.list_signals(paused) if s.is_set] == [
        ("review", True)
    ]


def test_c15_approve_without_waiting_on_a_gate_not_reached_raises_not_ready(sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf", inputs={"version": 1})
    try:
        with pytest.raises(FlyteNotReadyError, match="gate 'review' .* has not been reached") as e:
            sandbox_client.approve(execution, "review")
        assert e.value.hint == "pass wait_for_gate=<seconds> to wait for it"
        assert e.value.message.endswith(f"; {e.value.hint}")
    finally:
        sandbox_client.terminate(execution, "test finished")


def test_a_gate_of_a_workflow_without_static_gates_is_said_to_be_unchecked(sandbox_client):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 60})
    try:
        with pytest.raises(FlyteNotReadyError) as e:
            sandbox_client.approve(execution, "review")
    finally:
        sandbox_client.terminate(execution, "test finished")

    assert "its workflow declares no gate outside dynamic nodes, so the id is unchecked" in (
        e.value.message
    )


def test_c15_a_signal_no_gate_declares_raises_not_found_listing_the_gates(
    sandbox_client, at_rollout_gate
):
    with pytest.raises(FlyteNotFoundError, match="gates declared by its workflow: review, rollout"):
        sandbox_client.approve(at_rollout_gate, "deploy-ok", wait_for_gate=0.5)


def test_a_misspelt_gate_fails_at_once_even_with_a_long_wait(sandbox_client, at_rollout_gate):
    started = time.monotonic()

    with pytest.raises(FlyteNotFoundError, match="no signal 'reveiw'"):
        sandbox_client.approve(at_rollout_gate, "reveiw", wait_for_gate=600)

    assert time.monotonic() - started < 5


def test_a_value_that_cannot_fit_a_gate_not_reached_yet_fails_at_once(sandbox_client, paused):
    """The gate's type comes from the compiled workflow, so a bad value does not wait for it."""
    started = time.monotonic()

    with pytest.raises(FlyteInvalidInputError, match="'rollout_percent' .* expects FLOAT"):
        sandbox_client.set_input(paused, "rollout_percent", "abc", wait_for_gate=600)
    with pytest.raises(FlyteInvalidInputError, match="approve fits only an approve gate"):
        sandbox_client.approve(paused, "rollout_percent", wait_for_gate=600)

    assert time.monotonic() - started < 5
    assert [s for s in sandbox_client.list_signals(paused) if s.is_set] == []


def test_a_value_that_fits_a_gate_not_reached_yet_still_waits_for_it(sandbox_client, paused):
    with pytest.raises(FlyteNotReadyError, match="gate 'rollout_percent' .* waited 0.3s"):
        sandbox_client.set_input(paused, "rollout_percent", 25.0, wait_for_gate=0.3)


def test_wait_for_gate_returns_the_signal_once_the_gate_is_reached(client, paused):
    signal = client.wait_for_gate(paused, "review", timeout=60, poll_interval=0.2)

    assert (signal.signal_id, signal.is_set, signal.value) == ("review", False, None)


def test_wait_for_gate_times_out_naming_the_gate(sandbox_client, paused):
    with pytest.raises(FlyteTimeoutError, match="gate 'rollout_percent' .* waited 0.5s"):
        sandbox_client.wait_for_gate(paused, "rollout_percent", timeout=0.5, poll_interval=0.1)


def test_wait_for_gate_on_a_misspelt_gate_fails_at_once(sandbox_client, at_rollout_gate):
    with pytest.raises(FlyteNotFoundError, match="gates declared by its workflow"):
        sandbox_client.wait_for_gate(at_rollout_gate, "rolout_percent", timeout=600)


def test_list_signals_of_an_execution_that_does_not_exist_raises_not_found(sandbox_client):
    with pytest.raises(FlyteNotFoundError):
        sandbox_client.list_signals("no-such-execution-here")


def test_approving_twice_is_idempotent_and_sends_one_set_signal(
    sandbox_client, at_rollout_gate, flyte_sandbox
):
    before = flyte_sandbox.rpc_counts.snapshot()

    again = sandbox_client.approve(at_rollout_gate, "review")

    assert (again.signal_id, again.value) == ("review", True)
    assert again.changed is False, "the call set nothing"
    assert "SetSignal" not in flyte_sandbox.rpc_counts.since(before)


def test_rejecting_an_approved_gate_is_refused_and_keeps_the_approval(
    sandbox_client, at_rollout_gate
):
    with pytest.raises(FlyteFailedPreconditionError, match="already given True"):
        sandbox_client.reject(at_rollout_gate, "review")

    signals = {s.signal_id: s.value for s in sandbox_client.list_signals(at_rollout_gate)}
    assert signals["review"] is True


def test_a_gate_of_an_ended_execution_cannot_be_answered(sandbox_client, at_rollout_gate):
    execution = sandbox_client.launch("approvals.approval_wf", inputs={"version": 1})
    sandbox_client.wait_for_gate(execution, "review", timeout=60, poll_interval=0.2)
    sandbox_client.terminate(execution, "test: ended before review")
    sandbox_client.wait(execution, timeout=60, poll_interval=0.2)

    with pytest.raises(FlyteFailedPreconditionError, match="ended ABORTED"):
        sandbox_client.approve(execution, "review")


def test_c16_set_input_converts_an_int_to_the_declared_float_and_runs_to_the_end(client, paused):
    client.approve(paused, "review", wait_for_gate=60)

    signal = client.set_input(paused, "rollout_percent", 25, wait_for_gate=60)
    finished = client.wait(paused, timeout=120, poll_interval=0.3)

    assert signal.value == 25.0 and isinstance(signal.value, float)
    assert signal.changed is True
    assert client.fetch_outputs(finished) == {"o0": "release 2 at 25%"}


def test_c16_set_input_of_the_wrong_type_fails_locally_naming_the_expected_type(
    sandbox_client, at_rollout_gate, flyte_sandbox
):
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(FlyteInvalidInputError, match="expects FLOAT"):
        sandbox_client.set_input(at_rollout_gate, "rollout_percent", "a lot", wait_for_gate=60)

    assert "SetSignal" not in flyte_sandbox.rpc_counts.since(before)

    signals = sandbox_client.list_signals(at_rollout_gate)
    assert [s.is_set for s in signals if s.signal_id == "rollout_percent"] == [False]


def test_c16_approve_refuses_a_gate_that_is_not_boolean(sandbox_client, at_rollout_gate):
    with pytest.raises(FlyteInvalidInputError, match="expects FLOAT"):
        sandbox_client.approve(at_rollout_gate, "rollout_percent", wait_for_gate=60)


def test_reject_sets_the_gate_false_and_fails_the_execution(client, paused):
    signal = client.reject(paused, "review", wait_for_gate=60)

    finished = client.wait(paused, timeout=120, poll_interval=0.3)

    assert (signal.signal_id, signal.value) == ("review", False)
    assert finished.phase.name == "FAILED"
    assert finished.error is not None


def test_set_input_from_text_reads_the_float_gate_value(sandbox_client, paused):
    sandbox_client.approve(paused, "review", wait_for_gate=60)

    signal = sandbox_client.set_input(
        paused, "rollout_percent", "12.5", wait_for_gate=60, from_text=True
    )

    assert signal.value == 12.5


def test_a_declared_gate_of_a_run_that_ended_before_it_says_so(sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf", inputs={"version": 1})
    sandbox_client.wait_for_gate(execution, "review", timeout=60, poll_interval=0.2)
    sandbox_client.terminate(execution, "stopped at the review")  # rollout_percent comes after it
    sandbox_client.wait(execution, timeout=60, poll_interval=0.2)

    with pytest.raises(FlyteNotFoundError) as missing:
        sandbox_client.set_input(execution, "rollout_percent", 25.0, wait_for_gate=5)

    assert missing.value.message == (
        f"execution {execution.id} ended ABORTED without reaching its gate 'rollout_percent'; "
        "the gate can no longer be answered"
    )
