"""DAGs that make Flyte runs fail, time out and lose their worker, and that use the rarer
operator options, for the provider's tests.

Failures are recorded in ``FAILURES`` by each task's failure callback (``dag.test()`` runs the
tasks in the test's process), so a test can assert the reason the task failed with.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider.operators.flyte import (
    FlyteBackfillOperator,
    FlyteLaunchOperator,
    FlyteSignalOperator,
    FlyteTerminateOperator,
)
from airflow_provider.sensors.flyte import FlyteExecutionSensor

FAILURES: list[tuple[str, int, str]] = []

FAILING = "failures.failing_wf"
RELEASE = "approvals.approval_wf"
LONG_SLEEP = "long_sleep.long_sleep_wf"
KEEP_GOING = "failures.keep_going_wf"
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def record_failure(context) -> None:
    ti = context["ti"]
    FAILURES.append((ti.task_id, ti.try_number, str(context.get("exception"))))


def execution_of(task_id: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}', key='execution_id') }}}}"


DEFAULTS = {"on_failure_callback": record_failure, "retries": 0}

with DAG("flyte_failures", schedule=None, start_date=START, default_args=DEFAULTS) as failures:
    FlyteLaunchOperator(
        task_id="failing_launch",
        launch_plan=FAILING,
        deferrable=True,
        poll_interval=0.5,
        retries=1,
        retry_delay=dt.timedelta(0),
    )
    gated = FlyteLaunchOperator(
        task_id="launch_gated", launch_plan=RELEASE, wait_for_completion=False
    )
    reject = FlyteSignalOperator(
        task_id="reject_review",
        execution=execution_of("launch_gated"),
        signal_id="review",
        action="reject",
        deferrable=True,
        poll_interval=0.5,
        timeout=120,
    )
    wait_gated = FlyteExecutionSensor(
        task_id="wait_gated", execution=execution_of("launch_gated"), poke_interval=0.5
    )
    gated >> reject >> wait_gated
    doomed = FlyteLaunchOperator(
        task_id="launch_doomed",
        launch_plan=LONG_SLEEP,
        inputs={"seconds": 600},
        wait_for_completion=False,
    )
    abort = FlyteTerminateOperator(
        task_id="abort_doomed", execution=execution_of("launch_doomed"), cause="aborted by a test"
    )
    wait_doomed = FlyteExecutionSensor(
        task_id="wait_doomed", execution=execution_of("launch_doomed"), poke_interval=0.5
    )
    abort_again = FlyteTerminateOperator(
        task_id="abort_doomed_again", execution=execution_of("launch_doomed")
    )
    soft_waits = [
        FlyteExecutionSensor(
            task_id=f"soft_wait_doomed_{mode}",
            execution=execution_of("launch_doomed"),
            deferrable=mode == "deferred",
            soft_fail=True,
            poke_interval=0.5,
        )
        for mode in ("deferred", "on_worker")
    ]
    doomed >> abort >> [wait_doomed, abort_again, *soft_waits]
    FlyteLaunchOperator(
        task_id="recovering_launch",
        launch_plan=KEEP_GOING,
        inputs={"seconds": 0.5},
        recover_on_retry=True,
        poll_interval=0.5,
        retries=1,
        retry_delay=dt.timedelta(0),
    )

with DAG("flyte_timeouts", schedule=None, start_date=START, default_args=DEFAULTS) as timeouts:
    FlyteLaunchOperator(
        task_id="wait_too_long",
        launch_plan=LONG_SLEEP,
        inputs={"seconds": 600},
        deferrable=True,
        poll_interval=0.5,
        timeout=3,
    )
    FlyteLaunchOperator(
        task_id="exceed_execution_timeout",
        launch_plan=LONG_SLEEP,
        inputs={"seconds": 600},
        deferrable=True,
        poll_interval=0.5,
        execution_timeout=dt.timedelta(seconds=4),
    )
    FlyteLaunchOperator(
        task_id="sync_execution_timeout",
        launch_plan=LONG_SLEEP,
        inputs={"seconds": 600},
        deferrable=False,
        poll_interval=0.5,
        execution_timeout=dt.timedelta(seconds=4),
    )

with DAG(
    "flyte_deferred_execution_timeouts", schedule=None, start_date=START, default_args=DEFAULTS
) as deferred_execution_timeouts:
    # Each waits longer than its execution_timeout; timeout=20 only bounds a wait that ignores it.
    too_long = {"deferrable": True, "timeout": 20, "execution_timeout": dt.timedelta(seconds=4)}
    waits = {
        "watched": (
            LONG_SLEEP,
            {"seconds": 600},
            lambda execution: FlyteExecutionSensor(
                task_id="sense_past_execution_timeout",
                execution=execution,
                poke_interval=0.5,
                **too_long,
            ),
        ),
        # rollout_percent is reached only after review is approved, which nothing here does.
        "gated": (
            RELEASE,
            {},
            lambda execution: FlyteSignalOperator(
                task_id="rollout_past_execution_timeout",
                execution=execution,
                signal_id="rollout_percent",
                action="set_input",
                value=25.0,
                poll_interval=0.5,
                **too_long,
            ),
        ),
    }
    for name, (launch_plan, inputs, wait_on) in waits.items():
        launched = FlyteLaunchOperator(
            task_id=f"launch_{name}",
            launch_plan=launch_plan,
            inputs=inputs,
            wait_for_completion=False,
        )
        execution = execution_of(f"launch_{name}")
        stop = FlyteTerminateOperator(
            task_id=f"stop_{name}", execution=execution, trigger_rule="all_done"
        )
        launched >> wait_on(execution) >> stop

with DAG("flyte_reattach", schedule=None, start_date=START, default_args=DEFAULTS) as reattach:
    FlyteLaunchOperator(
        task_id="sleep_then_finish",
        launch_plan=LONG_SLEEP,
        inputs={"seconds": 8},
        deferrable=False,
        poll_interval=0.5,
    )

with DAG(
    "flyte_operations",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    default_args=DEFAULTS,
    render_template_as_native_obj=True,
    params={"greeting_name": "templated"},
) as operations:
    FlyteLaunchOperator(
        task_id="launch_task",
        task="hello.say_hello",
        inputs={"name": "{{ params.greeting_name }}"},
        # Rendered as native objects: the day becomes an int and the try number is one.
        labels={"airflow-task": "{{ task.task_id }}", "day": "{{ ds_nodash }}"},
        annotations={"airflow-run": "{{ run_id }}", "airflow-try": "{{ ti.try_number }}"},
        deferrable=True,
        poll_interval=0.5,
    )
    FlyteBackfillOperator(task_id="plan_backfill", launch_plan="daily_report", dry_run=True)


def planning_over_data_interval(name: str, schedule: str | None, intervals: bool = True) -> DAG:
    """A DAG whose one task plans (dry run) a backfill of daily_report (06:00 daily) over the
    DAG run's data interval (without ``intervals``, a cron string: Airflow 3's trigger
    timetable, whose runs' data intervals are one instant)."""
    with DAG(
        f"flyte_backfill_interval_{name}",
        schedule=(
            schedule and CronDataIntervalTimetable(schedule, timezone="UTC")
            if intervals
            else schedule
        ),
        start_date=START,
        catchup=False,
        default_args=DEFAULTS,
    ) as dag:
        FlyteBackfillOperator(
            task_id="plan_data_interval", launch_plan="daily_report", dry_run=True
        )
    return dag


# Each run's boundary tick is the next run's; an hour holds at most one tick; a manual run's
# data interval is one instant, or none without a logical date.
backfill_interval_daily = planning_over_data_interval("daily", "0 6 * * *")
backfill_interval_hourly = planning_over_data_interval("hourly", "0 * * * *")
backfill_interval_manual = planning_over_data_interval("manual", None)
backfill_interval_trigger = planning_over_data_interval("trigger", "0 6 * * *", intervals=False)

DB_CONNECTION = "flyte_in_db"
"""A connection that only the metadata database holds (``airflow connections add``)."""

with DAG(
    "flyte_db_connection", schedule=None, start_date=START, default_args=DEFAULTS
) as db_connection:
    FlyteLaunchOperator(
        task_id="launch_deferred",
        launch_plan=LONG_SLEEP,
        inputs={"seconds": 2},
        flyte_conn_id=DB_CONNECTION,
        deferrable=True,
        poll_interval=0.5,
    )

UNREACHABLE_CONNECTION = "flyte_unreachable"
"""A connection to a port nothing listens on (set by the test): transient errors."""
BAD_EXTRAS_CONNECTION = "flyte_bad_extras"
"""A connection whose ``rpc_timeout`` is not a number (set by the test)."""
MISSING_CONNECTION = "flyte_nosuch_conn"
"""A connection id that no connection has."""
RETRIED = {"retries": 2, "retry_delay": dt.timedelta(0)}

with DAG(
    "flyte_permanent_errors", schedule=None, start_date=START, default_args=DEFAULTS
) as permanent_errors:
    FlyteLaunchOperator(
        task_id="misspelt_input",
        launch_plan="hello.hello_wf",
        inputs={"nmae": "typo"},
        **RETRIED,
    )
    FlyteLaunchOperator(task_id="missing_launch_plan", launch_plan="hello.no_such_wf", **RETRIED)
    # A template that renders the whole inputs to text, not a mapping.
    FlyteBackfillOperator(
        task_id="inputs_not_a_mapping",
        launch_plan="daily_report",
        start="2024-01-01",
        end="2024-01-02",
        inputs="{{ params.regions }}",
        params={"regions": "us,eu"},
        **RETRIED,
    )
    gated_release = FlyteLaunchOperator(
        task_id="launch_release", launch_plan=RELEASE, wait_for_completion=False
    )
    missing_gate = FlyteSignalOperator(
        task_id="missing_gate",
        execution=execution_of("launch_release"),
        signal_id="no_such_gate",
        deferrable=True,
        poll_interval=0.5,
        **RETRIED,
    )
    stop_release = FlyteTerminateOperator(
        task_id="stop_release", execution=execution_of("launch_release"), trigger_rule="all_done"
    )
    gated_release >> missing_gate >> stop_release
    FlyteExecutionSensor(
        task_id="missing_execution",
        execution="flytesnacks/development/no-such-execution",
        poke_interval=0.5,
        **RETRIED,
    )
    FlyteLaunchOperator(
        task_id="bad_extras",
        launch_plan="hello.hello_wf",
        flyte_conn_id=BAD_EXTRAS_CONNECTION,
        **RETRIED,
    )
    FlyteLaunchOperator(
        task_id="unreachable",
        launch_plan="hello.hello_wf",
        flyte_conn_id=UNREACHABLE_CONNECTION,
        retries=1,
        retry_delay=dt.timedelta(0),
    )
    # Every operator and the sensor, on a connection id that is not defined.
    missing = {"flyte_conn_id": MISSING_CONNECTION, **RETRIED}
    FlyteLaunchOperator(
        task_id="missing_conn_launch", launch_plan="hello.hello_wf", deferrable=True, **missing
    )
    FlyteBackfillOperator(
        task_id="missing_conn_backfill",
        launch_plan="daily_report",
        start="2026-01-01",
        end="2026-01-02",
        **missing,
    )
    FlyteSignalOperator(
        task_id="missing_conn_signal",
        execution="flytesnacks/development/any",
        signal_id="review",
        **missing,
    )
    FlyteTerminateOperator(
        task_id="missing_conn_terminate", execution="flytesnacks/development/any", **missing
    )
    for deferrable in (False, True):
        FlyteExecutionSensor(
            task_id=f"missing_conn_sensor{'_deferred' if deferrable else ''}",
            execution="flytesnacks/development/any",
            deferrable=deferrable,
            poke_interval=0.5,
            **missing,
        )
    # An execution template whose xcom_pull names a task that does not exist (renders 'None').
    never_pushed = {"execution": execution_of("launch_relaese"), **RETRIED}
    FlyteExecutionSensor(task_id="never_pushed_sensor", poke_interval=0.5, **never_pushed)
    FlyteSignalOperator(task_id="never_pushed_signal", signal_id="review", **never_pushed)
    FlyteTerminateOperator(task_id="never_pushed_terminate", **never_pushed)

with DAG(
    "flyte_rendered_text",
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    default_args=DEFAULTS,
    params={"version": 4, "rollout": 12.5},
) as rendered_text:
    # Rendered as text (Airflow's default): every value below reaches the operators as a str.
    FlyteLaunchOperator(
        task_id="report_from_text",
        launch_plan="daily_report",
        inputs={"kickoff_time": "{{ data_interval_start }}", "region": "us"},
        poll_interval=0.5,
    )
    text_release = FlyteLaunchOperator(
        task_id="release_from_text",
        launch_plan=RELEASE,
        inputs={"version": "{{ params.version }}"},
        wait_for_completion=False,
    )
    text_review = FlyteSignalOperator(
        task_id="review_from_text",
        execution=execution_of("release_from_text"),
        signal_id="review",
        poll_interval=0.5,
    )
    text_rollout = FlyteSignalOperator(
        task_id="rollout_from_text",
        execution=execution_of("release_from_text"),
        signal_id="rollout_percent",
        action="set_input",
        value="{{ params.rollout }}",
        poll_interval=0.5,
    )
    text_release >> text_review >> text_rollout

with DAG(
    "flyte_no_console_url", schedule=None, start_date=START, default_args=DEFAULTS
) as no_console_url:
    # Tasks that end without a console URL in XCom, and one that has one, for the link.
    FlyteLaunchOperator(task_id="launch_fails", launch_plan="hello.no_such_wf")
    FlyteBackfillOperator(
        task_id="backfill_dry_run",
        launch_plan="daily_report",
        start="2026-01-01",
        end="2026-01-02",
        dry_run=True,
    )
    FlyteExecutionSensor(
        task_id="sense_missing",
        execution="flytesnacks/development/no-such-execution",
        poke_interval=0.5,
    )
    FlyteLaunchOperator(task_id="launch_succeeds", launch_plan="hello.hello_wf", poll_interval=0.5)
