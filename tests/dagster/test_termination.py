"""Stopping a Dagster run stops its Flyte execution (pitfall C19), from an asset or an op, and
from an op waiting for a gate of an execution launched without waiting."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from stoppable_run import GATE_WAIT_MESSAGE

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("stoppable_run.py")


def _running(client, launch_plan: str, deadline: float, since: dt.datetime):
    """The execution of ``launch_plan`` Dagster launched after ``since``, once it is RUNNING."""
    while time.monotonic() < deadline:
        for execution in client.list_executions(
            filters=f"eq(launch_plan.name,{launch_plan})+eq(phase,RUNNING)"
        ):
            if "dagster-run-id" in execution.labels and execution.created_at >= since:
                return execution
        time.sleep(0.2)
    raise AssertionError(f"the Dagster run never got its {launch_plan} execution to RUNNING")


def _until_logged(dagster_home: Path, run_id: str, text: str, deadline: float) -> None:
    """Returns once the Dagster run has logged a message starting with ``text``."""
    while time.monotonic() < deadline:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            if any(entry.user_message.startswith(text) for entry in instance.all_logs(run_id)):
                return
        time.sleep(0.2)
    raise AssertionError(f"the Dagster run never logged {text!r}")


def _stop(dagster_home: Path, process: subprocess.Popen, run_id: str) -> None:
    """What Dagster's run launcher does to terminate a run: mark it CANCELING, interrupt it."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.report_run_canceling(instance.get_run_by_id(run_id))
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def _start(kind: str, flyte_sandbox, dagster_home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), flyte_sandbox.endpoint, kind],
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _assert_stopped(client, dagster_home: Path, execution) -> None:
    stopped = client.wait(execution, timeout=60, poll_interval=0.2)
    assert stopped.phase_name == "ABORTED"
    assert "Dagster run was stopped" in stopped.error.message
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_run_by_id(execution.labels["dagster-run-id"])
    assert run.status == dg.DagsterRunStatus.CANCELED


@pytest.mark.parametrize("kind", ["asset", "op"])
def test_interrupting_the_dagster_run_terminates_the_flyte_execution(
    kind, flyte_sandbox, flyte_examples, client, dagster_home
):
    started = dt.datetime.now(dt.timezone.utc)
    process = _start(kind, flyte_sandbox, dagster_home)
    try:
        execution = _running(client, "long_sleep.long_sleep_wf", time.monotonic() + 120, started)
        _stop(dagster_home, process, execution.labels["dagster-run-id"])
    finally:
        if process.poll() is None:
            process.kill()

    _assert_stopped(client, dagster_home, execution)


def test_interrupting_a_gate_wait_terminates_the_execution_launched_without_waiting(
    flyte_sandbox, flyte_examples, client, dagster_home
):
    started = dt.datetime.now(dt.timezone.utc)
    process = _start("gate", flyte_sandbox, dagster_home)
    try:
        deadline = time.monotonic() + 120
        execution = _running(client, "approvals.approval_wf", deadline, started)
        run_id = execution.labels["dagster-run-id"]
        _until_logged(dagster_home, run_id, GATE_WAIT_MESSAGE, deadline)
        _stop(dagster_home, process, run_id)
    finally:
        if process.poll() is None:
            process.kill()

    _assert_stopped(client, dagster_home, execution)
