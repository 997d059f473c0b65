"""Pitfalls C04, C19 and C20 against the sandbox: a worker lost mid-wait, a task killed while
deferred, and a deadline passing while deferred."""

import asyncio
import contextlib
import datetime as dt
import os
import re
import subprocess
import sys
import time

import pytest

from flyte_bridge.errors import FlyteNotFoundError
from flyte_bridge.naming import execution_name

pytestmark = pytest.mark.slow


def wait_for_phase(client, name, phases, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            execution = client.fetch_execution(name)
            if execution.phase_name in phases:
                return execution
        except FlyteNotFoundError:
            pass
        assert time.monotonic() < deadline, f"{name} never reached {phases}"
        time.sleep(0.2)


def test_a_retry_after_the_worker_died_mid_wait_reattaches_without_a_second_launch(
    airflow_db, flyte_connection, flyte_examples, flyte_client
):
    import flyte_test_dags

    when = dt.datetime(2026, 2, 1, 6, tzinfo=dt.timezone.utc)
    step = ("flyte_reattach", "sleep_then_finish", f"manual__{when.isoformat()}", -1)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import datetime as dt, flyte_test_dags; "
            f"when = dt.datetime.fromisoformat({when.isoformat()!r}); "
            "flyte_test_dags.reattach.test(logical_date=when, run_after=when)",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_phase(flyte_client, execution_name(*step), {"RUNNING"})
    finally:
        worker.kill()
        worker.wait()

    retried_at = dt.datetime.now(dt.timezone.utc)
    run = flyte_test_dags.reattach.test(logical_date=when, run_after=when)

    (ti,) = run.get_task_instances()
    assert ti.state == "success"
    execution = flyte_client.fetch_execution(execution_name(*step))
    assert execution.phase_name == "SUCCEEDED"
    assert execution.created_at < retried_at
    with pytest.raises(FlyteNotFoundError):
        flyte_client.fetch_execution(execution_name(*step, generation=1))


async def run_in_triggerer(trigger, cancel_message):
    """Runs a trigger the way the triggerer does, then cancels it as a user action or a restart."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    runner.triggers[1] = {"task": None, "name": "flyte", "events": 0, "is_watcher": False}
    task = asyncio.create_task(runner.run_trigger(1, trigger))
    runner.triggers[1]["task"] = task
    await asyncio.sleep(1.5)
    assert not task.done(), "the trigger fired while its execution was still running"
    task.cancel(cancel_message)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def rebuilt_trigger(execution):
    """A trigger for the execution, rebuilt from its serialized form as the triggerer does."""
    from airflow_provider.triggers.flyte import FlyteExecutionTrigger

    classpath, kwargs = FlyteExecutionTrigger(
        execution_id=str(execution.id), poll_interval=0.5
    ).serialize()
    assert classpath == "airflow_provider.triggers.flyte.FlyteExecutionTrigger"
    return FlyteExecutionTrigger(**kwargs)


@pytest.fixture
def long_run(flyte_examples, flyte_client):
    execution = flyte_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 600})
    wait_for_phase(flyte_client, execution.id.name, {"RUNNING"})
    yield execution
    flyte_client.terminate(execution, cause="test cleanup")


def test_a_task_killed_while_deferred_terminates_its_run(
    monkeypatch, airflow_db, flyte_connection, flyte_client, long_run
):
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG

    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")

    asyncio.run(run_in_triggerer(rebuilt_trigger(long_run), _USER_ACTION_CANCEL_MSG))

    ended = wait_for_phase(flyte_client, long_run.id.name, {"ABORTED"}, timeout=30)
    assert "killed while deferred" in ended.error.message


def test_a_triggerer_restart_leaves_the_run_going(
    monkeypatch, airflow_db, flyte_connection, flyte_client, long_run
):
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")

    asyncio.run(run_in_triggerer(rebuilt_trigger(long_run), None))

    assert flyte_client.fetch_execution(long_run.id).phase_name == "RUNNING"


def run_recording_failures(dag_name):
    """One ``dag.test()`` run of a DAG of flyte_test_dags, and why each task that failed did."""
    import flyte_test_dags

    flyte_test_dags.FAILURES.clear()
    run = getattr(flyte_test_dags, dag_name).test()
    return run, {task_id: reason for task_id, _, reason in flyte_test_dags.FAILURES}


@pytest.fixture(scope="module")
def timeouts_run(airflow_db, flyte_connection, flyte_examples):
    return run_recording_failures("timeouts")


@pytest.mark.parametrize(
    ("task_id", "deadline", "limit", "spent"),
    [
        ("wait_too_long", "timeout", 3, "waited"),
        ("exceed_execution_timeout", "execution_timeout", 4, "task ran"),
    ],
)
def test_a_deadline_passing_while_deferred_terminates_the_run_and_reports_the_time_spent(
    timeouts_run, flyte_client, task_id, deadline, limit, spent
):
    run, reasons = timeouts_run
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == task_id]

    reason = reasons[task_id]
    assert f"did not end within the {deadline} of {limit}s" in reason
    assert "terminated it" in reason
    seconds = float(re.search(rf"{spent} (\d+\.\d)s", reason).group(1))
    assert limit <= seconds <= (ti.end_date - ti.start_date).total_seconds()
    name = execution_name("flyte_timeouts", task_id, run.run_id, -1)
    assert wait_for_phase(flyte_client, name, {"ABORTED"}, timeout=30).phase_name == "ABORTED"


def test_a_task_timing_out_on_the_worker_terminates_its_run_in_on_kill(timeouts_run, flyte_client):
    run, reasons = timeouts_run
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "sync_execution_timeout"]
    assert ti.state == "failed"
    assert "sync_execution_timeout" in reasons
    name = execution_name("flyte_timeouts", "sync_execution_timeout", run.run_id, -1)
    ended = wait_for_phase(flyte_client, name, {"ABORTED"}, timeout=30)
    assert "sync_execution_timeout killed" in ended.error.message


@pytest.fixture(scope="module")
def deferred_execution_timeouts_run(airflow_db, flyte_connection, flyte_examples):
    return run_recording_failures("deferred_execution_timeouts")


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        (
            "sense_past_execution_timeout",
            "did not end within the execution_timeout of 4s (task ran 4.",
        ),
        (
            "rollout_past_execution_timeout",
            "did not reach gate rollout_percent within the execution_timeout of 4s (task ran 4.",
        ),
    ],
)
def test_a_deferred_sensor_or_signal_fails_at_its_execution_timeout(
    deferred_execution_timeouts_run, task_id, message
):
    run, reasons = deferred_execution_timeouts_run
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == task_id]

    assert ti.state == "failed"
    assert message in reasons[task_id]
    assert 4 <= (ti.end_date - ti.start_date).total_seconds() < 15


def test_a_deferred_sensor_past_its_execution_timeout_leaves_the_run_going(
    deferred_execution_timeouts_run, xcoms
):
    run, reasons = deferred_execution_timeouts_run

    assert reasons["sense_past_execution_timeout"].endswith("; left it running")
    assert xcoms(run, "stop_watched")["return_value"]["already_terminal"] is False


def test_a_deferred_signal_past_its_execution_timeout_sends_nothing(
    deferred_execution_timeouts_run,
):
    _, reasons = deferred_execution_timeouts_run

    assert reasons["rollout_past_execution_timeout"].endswith("; the signal was not sent")


@pytest.fixture
def at_review(flyte_examples, flyte_client):
    """An approval workflow waiting at its ``review`` gate."""
    execution = flyte_client.launch("approvals.approval_wf", inputs={"version": 1})
    deadline = time.monotonic() + 60
    while "review" not in {signal.signal_id for signal in flyte_client.list_signals(execution)}:
        assert time.monotonic() < deadline, "the approval workflow never reached its gate"
        time.sleep(0.2)
    yield execution
    flyte_client.terminate(execution, cause="test cleanup")


def test_a_gate_reached_after_the_execution_timeout_is_not_answered(
    flyte_connection, flyte_client, at_review
):
    """The trigger saw the gate just before the deadline, but the task resumed after it."""
    from airflow_provider.operators.flyte import FlyteSignalOperator, FlyteWaitTimeout

    operator = FlyteSignalOperator(
        task_id="approve",
        execution=str(at_review.id),
        signal_id="review",
        deferrable=True,
        execution_timeout=dt.timedelta(seconds=4),
    )

    class StartedLongAgo:
        start_date = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=10)

    event = {"status": "reached", "execution_id": str(at_review.id), "signal_id": "review"}
    with pytest.raises(FlyteWaitTimeout) as refused:
        operator.execute_complete({"ti": StartedLongAgo()}, event)

    assert str(refused.value).startswith("The execution_timeout of 4s passed (task ran 10.")
    assert f"before gate review of Flyte execution {at_review.id} was answered" in str(
        refused.value
    )
    assert "the signal was not sent" in str(refused.value)
    (review,) = [s for s in flyte_client.list_signals(at_review) if s.signal_id == "review"]
    assert review.is_set is False
