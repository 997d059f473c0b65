"""Stopping a Dagster run stops its Flyte execution (pitfall C19), from an asset or an op."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("stoppable_run.py")


def _running_sleeper(client, deadline: float, since: dt.datetime):
    """The long-sleep execution Dagster launched after ``since``, once it is RUNNING."""
    while time.monotonic() < deadline:
        for execution in client.list_executions(
            filters="eq(launch_plan.name,long_sleep.long_sleep_wf)+eq(phase,RUNNING)"
        ):
            if "dagster-run-id" in execution.labels and execution.created_at >= since:
                return execution
        time.sleep(0.2)
    raise AssertionError("the Dagster run never got its Flyte execution to RUNNING")


@pytest.mark.parametrize("kind", ["asset", "op"])
def test_interrupting_the_dagster_run_terminates_the_flyte_execution(
    kind, flyte_sandbox, flyte_examples, client, dagster_home
):
    started = dt.datetime.now(dt.timezone.utc)
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), flyte_sandbox.endpoint, kind],
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        execution = _running_sleeper(client, time.monotonic() + 120, started)
        # What Dagster's run launcher does to terminate a run: mark it CANCELING, interrupt it.
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            run = instance.get_run_by_id(execution.labels["dagster-run-id"])
            instance.report_run_canceling(run)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    stopped = client.wait(execution, timeout=60, poll_interval=0.2)
    assert stopped.phase_name == "ABORTED"
    assert "Dagster run was stopped" in stopped.error.message
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_run_by_id(execution.labels["dagster-run-id"])
    assert run.status == dg.DagsterRunStatus.CANCELED
