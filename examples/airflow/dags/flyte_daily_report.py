"""Drive the Flyte examples from Airflow: a daily report, a gated release, a backfill, a stop.

Two DAGs come from this file: ``flyte_daily_report`` waits in the triggerer (deferrable) and
``flyte_daily_report_sync`` waits on the worker. Each one

1. launches the ``daily_report`` launch plan for the run's data interval and waits for it;
2. reads the report line from XCom in a downstream task;
3. launches the release workflow, approves its ``review`` gate, sets its ``rollout_percent``
   input from the DAG's params (a template rendered as a float) and waits for the release;
4. backfills ``daily_report`` over the week that ends at the run's data interval;
5. launches a ten-minute run and terminates it, then checks it ended ABORTED.

They use the ``flyte_default`` connection, for example
``AIRFLOW_CONN_FLYTE_DEFAULT='{"conn_type": "flyte", "host": "localhost", "port": 30080,
"extra": {"insecure": true, "project": "flytesnacks", "domain": "development",
"console_url": "http://localhost:30081"}}'`` for a sandbox started with
``flyte-bridge sandbox start --http-port 30081``, where ``examples/flyte`` is registered
(``console_url`` is the sandbox's HTTP endpoint, which serves the pages the links open).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, task

from airflow_provider.operators.flyte import (
    FlyteBackfillOperator,
    FlyteLaunchOperator,
    FlyteSignalOperator,
    FlyteTerminateOperator,
)
from airflow_provider.sensors.flyte import FlyteExecutionSensor

DAILY_REPORT = os.environ.get("FLYTE_EXAMPLE_DAILY_REPORT", "daily_report")
RELEASE = os.environ.get("FLYTE_EXAMPLE_RELEASE", "approvals.approval_wf")
LONG_SLEEP = os.environ.get("FLYTE_EXAMPLE_LONG_SLEEP", "long_sleep.long_sleep_wf")


def execution_of(task_id: str) -> str:
    """A template for the execution id a launch task pushed to XCom."""
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}', key='execution_id') }}}}"


@task
def read_report(outputs: dict) -> str:
    """Reads the launch plan's output (``o0``) from the launch task's XCom return value."""
    line = outputs["o0"]
    if not line.startswith("report eu "):
        raise ValueError(f"unexpected report line {line!r}")
    return line


def build(dag_id: str, deferrable: bool) -> DAG:
    """One DAG of this file; ``deferrable`` chooses where every wait happens."""
    with DAG(
        dag_id,
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        render_template_as_native_obj=True,
        default_args={"retries": 0},
        params={"rollout_percent": 25.0},
        tags=["flyte", "example"],
    ) as dag:
        report = FlyteLaunchOperator(
            task_id="launch_daily_report",
            launch_plan=DAILY_REPORT,
            inputs={"kickoff_time": "{{ data_interval_start }}", "region": "eu"},
            labels={"airflow-dag": "{{ dag.dag_id }}"},
            deferrable=deferrable,
            poll_interval=1,
            timeout=dt.timedelta(minutes=10),
        )
        read_report(report.output)

        release = FlyteLaunchOperator(
            task_id="launch_release",
            launch_plan=RELEASE,
            inputs={"version": 1},
            wait_for_completion=False,
        )
        approve = FlyteSignalOperator(
            task_id="approve_review",
            execution=execution_of("launch_release"),
            signal_id="review",
            action="approve",
            deferrable=deferrable,
            poll_interval=1,
            timeout=300,
        )
        rollout = FlyteSignalOperator(
            task_id="set_rollout",
            execution=execution_of("launch_release"),
            signal_id="rollout_percent",
            action="set_input",
            value="{{ params.rollout_percent }}",
            deferrable=deferrable,
            poll_interval=1,
            timeout=300,
        )
        released = FlyteExecutionSensor(
            task_id="wait_for_release",
            execution=execution_of("launch_release"),
            deferrable=deferrable,
            poke_interval=1,
            timeout=600,
        )
        release >> approve >> rollout >> released

        FlyteBackfillOperator(
            task_id="backfill_week",
            launch_plan=DAILY_REPORT,
            start="{{ data_interval_end - macros.timedelta(days=7) }}",
            end="{{ data_interval_end }}",
            parallel=True,
            labels={"airflow-dag": "{{ dag.dag_id }}"},
            deferrable=deferrable,
            poll_interval=1,
            timeout=dt.timedelta(minutes=10),
        )

        long_run = FlyteLaunchOperator(
            task_id="launch_long_run",
            launch_plan=LONG_SLEEP,
            inputs={"seconds": 600},
            wait_for_completion=False,
        )
        stop = FlyteTerminateOperator(
            task_id="terminate_long_run",
            execution=execution_of("launch_long_run"),
            cause="stopped by the example DAG",
        )
        stopped = FlyteExecutionSensor(
            task_id="check_long_run_aborted",
            execution=execution_of("launch_long_run"),
            success_phases=["ABORTED"],
            deferrable=deferrable,
            poke_interval=1,
            timeout=120,
        )
        long_run >> stop >> stopped
    return dag


flyte_daily_report = build("flyte_daily_report", deferrable=True)
flyte_daily_report_sync = build("flyte_daily_report_sync", deferrable=False)
