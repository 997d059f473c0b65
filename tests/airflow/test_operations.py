"""The rarer operator options end to end: a task launch with templated inputs, labels and
annotations; a dry-run backfill over the data interval; deferral decided by Airflow's config and
by one status read before deferring; names within the connection's length limit; a retry right
after a kill."""

import datetime as dt
import json

import pytest

from flyte_bridge.naming import execution_name

pytestmark = pytest.mark.slow

LOGICAL_DATE = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def operations_run(airflow_db, flyte_connection, flyte_examples):
    import flyte_test_dags

    run = flyte_test_dags.operations.test(logical_date=LOGICAL_DATE)
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_a_task_launches_with_templated_inputs_labels_and_annotations(
    operations_run, xcoms, flyte_client
):
    run, states = operations_run

    assert states["launch_task"] == "success"
    execution = flyte_client.fetch_execution(
        execution_name("flyte_operations", "launch_task", run.run_id, -1)
    )
    assert execution.proto.spec.launch_plan.resource_type == 1  # TASK
    assert execution.proto.spec.launch_plan.name == "hello.say_hello"
    assert execution.labels["airflow-task"] == "launch_task"
    assert execution.labels["day"] == LOGICAL_DATE.strftime("%Y%m%d")
    assert dict(execution.proto.spec.annotations.values) == {
        "airflow-run": run.run_id,
        "airflow-try": "1",
    }
    assert xcoms(run, "launch_task")["return_value"] == {"o0": "hello templated"}


def test_a_dry_run_backfill_plans_the_data_interval_and_launches_nothing(operations_run, xcoms):
    run, states = operations_run

    assert states["plan_backfill"] == "success"
    assert (run.data_interval_start, run.data_interval_end) == (
        LOGICAL_DATE - dt.timedelta(days=1),
        LOGICAL_DATE,
    )
    pushed = xcoms(run, "plan_backfill")
    assert pushed["return_value"] == ["2026-01-04T06:00:00+00:00"]
    assert "execution_id" not in pushed


def planned_over_data_interval(name, **run):
    """The ticks a dry-run backfill planned over the data interval of a run of
    ``flyte_backfill_interval_<name>``, or why the task failed."""
    import flyte_test_dags

    flyte_test_dags.FAILURES.clear()
    run = getattr(flyte_test_dags, f"backfill_interval_{name}").test(**run)
    (ti,) = run.get_task_instances()
    if ti.state == "success":
        return ti.xcom_pull(task_ids="plan_data_interval")
    ((_, _, reason),) = flyte_test_dags.FAILURES
    return reason


def test_consecutive_scheduled_runs_backfill_the_tick_between_their_intervals_once(
    airflow_db, flyte_connection, flyte_examples
):
    at_six = [dt.datetime(2026, 1, day, 6, tzinfo=dt.timezone.utc) for day in (2, 3)]

    plans = [planned_over_data_interval("daily", logical_date=when) for when in at_six]

    assert plans == [["2026-01-01T06:00:00+00:00"], ["2026-01-02T06:00:00+00:00"]]


def test_a_trigger_timetables_runs_backfill_the_tick_at_their_instant(
    airflow_db, flyte_connection, flyte_examples
):
    six = dt.datetime(2026, 1, 2, 6, tzinfo=dt.timezone.utc)

    assert planned_over_data_interval("trigger", logical_date=six) == [six.isoformat()]


def test_a_data_interval_ending_at_the_only_tick_holds_no_tick_and_says_to_set_the_window(
    airflow_db, flyte_connection, flyte_examples
):
    six = dt.datetime(2026, 1, 2, 6, tzinfo=dt.timezone.utc)

    reason = planned_over_data_interval("hourly", logical_date=six)

    assert "no schedule tick of daily_report falls in the data interval" in reason
    assert "[2026-01-02T05:00:00+00:00, 2026-01-02T06:00:00+00:00)" in reason
    assert "set start and end" in reason


@pytest.mark.parametrize(
    ("run", "detail"),
    [
        ({}, "this run's data interval, which is one instant (a manual run's"),
        ({"logical_date": None}, "has no data interval (a run without a logical date)"),
    ],
)
def test_a_manual_run_backfilling_its_data_interval_says_to_set_the_window(
    airflow_db, flyte_connection, flyte_examples, run, detail
):
    reason = planned_over_data_interval("manual", **run)

    assert detail in reason
    assert "set start and end" in reason


class TaskInstance:
    """What the operators read of ``context["ti"]``, for calling ``execute`` directly."""

    def __init__(self, task_id: str, run_id: str) -> None:
        self.dag_id, self.task_id, self.run_id = "direct_calls", task_id, run_id
        self.map_index = -1
        self.start_date = None
        self.xcoms: dict = {}

    def xcom_push(self, key, value) -> None:
        self.xcoms[key] = value


def _unique_run_id() -> str:
    return f"manual__{dt.datetime.now(dt.timezone.utc).isoformat()}"


def test_a_deferrable_launch_whose_run_already_succeeded_finishes_on_the_worker(
    flyte_connection, flyte_examples, flyte_client
):
    from airflow_provider.operators.flyte import FlyteLaunchOperator

    ti = TaskInstance("already_done", _unique_run_id())
    earlier = flyte_client.launch(
        "hello.hello_wf",
        inputs={"name": "earlier try"},
        name=execution_name(ti.dag_id, ti.task_id, ti.run_id, -1),
    )
    flyte_client.wait(earlier, timeout=120, poll_interval=0.2)
    operator = FlyteLaunchOperator(
        task_id=ti.task_id,
        launch_plan="hello.hello_wf",
        inputs={"name": "earlier try"},
        deferrable=True,
        poll_interval=0.2,
    )

    outputs = operator.execute({"ti": ti})

    assert outputs == {"o0": "hello earlier try"}
    assert ti.xcoms["execution_id"] == str(earlier.id)
    assert ti.xcoms["console_url"] == flyte_client.console_url(earlier)


def test_a_deferrable_launch_of_a_running_run_defers_with_json_only_trigger_arguments(
    flyte_connection, flyte_examples, flyte_client
):
    import json

    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider.operators.flyte import FlyteLaunchOperator
    from airflow_provider.triggers.flyte import FlyteExecutionTrigger

    ti = TaskInstance("defers", _unique_run_id())
    operator = FlyteLaunchOperator(
        task_id=ti.task_id,
        launch_plan="long_sleep.long_sleep_wf",
        inputs={"seconds": 600},
        deferrable=True,
        timeout=300,
    )
    try:
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute({"ti": ti})
    finally:
        flyte_client.terminate(ti.xcoms["execution_id"], cause="test finished")

    trigger = deferred.value.trigger
    assert isinstance(trigger, FlyteExecutionTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert trigger.execution_id == ti.xcoms["execution_id"]
    _, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["end_time"] - kwargs["wait_started"] == 300


def test_a_backfill_ending_on_a_bare_date_includes_that_day(flyte_connection, flyte_examples):
    from airflow_provider.operators.flyte import FlyteBackfillOperator

    ti = TaskInstance("bare_dates", _unique_run_id())
    operator = FlyteBackfillOperator(
        task_id=ti.task_id,
        launch_plan="daily_report",
        start="2024-01-01",
        end="2024-01-07",
        dry_run=True,
    )

    plan = operator.execute({"ti": ti})

    assert plan[0] == "2024-01-01T06:00:00+00:00"
    assert plan[-1] == "2024-01-07T06:00:00+00:00"
    assert len(plan) == 7


def test_a_resume_without_a_trigger_event_reattaches_to_the_same_run(
    flyte_connection, flyte_examples, flyte_client, flyte_sandbox
):
    """An interrupted deferral comes back with no event: the task checks its run again, defers
    on it again, and launches nothing."""
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider.operators.flyte import FlyteLaunchOperator

    ti = TaskInstance("resumed_without_event", _unique_run_id())

    def operator() -> FlyteLaunchOperator:
        return FlyteLaunchOperator(
            task_id=ti.task_id,
            launch_plan="long_sleep.long_sleep_wf",
            inputs={"seconds": 600},
            deferrable=True,
        )

    try:
        with pytest.raises(TaskDeferred) as first:
            operator().execute({"ti": ti})
        before = flyte_sandbox.rpc_counts.snapshot()
        with pytest.raises(TaskDeferred) as again:
            operator().execute_complete({"ti": ti}, None)
    finally:
        flyte_client.terminate(ti.xcoms["execution_id"], cause="test finished")

    assert again.value.trigger.execution_id == first.value.trigger.execution_id
    step = (ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
    assert flyte_client.find_execution(execution_name(*step, generation=1)) is None
    assert flyte_sandbox.rpc_counts.since(before).get("CreateExecution", 0) <= 1, "one refused"


@pytest.mark.parametrize("setting", ["True", "False"])
def test_deferrable_defaults_to_airflows_operators_default_deferrable(monkeypatch, setting):
    from airflow_provider.operators.flyte import (
        FlyteBackfillOperator,
        FlyteLaunchOperator,
        FlyteSignalOperator,
    )
    from airflow_provider.sensors.flyte import FlyteExecutionSensor

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)

    operators = [
        FlyteLaunchOperator(task_id="launch", launch_plan="hello.hello_wf"),
        FlyteExecutionSensor(task_id="sense", execution="e"),
        FlyteSignalOperator(task_id="signal", execution="e", signal_id="review"),
        FlyteBackfillOperator(task_id="backfill", launch_plan="daily_report"),
    ]

    assert {operator.deferrable for operator in operators} == {setting == "True"}


def test_a_connection_limiting_names_to_twenty_characters_launches_within_the_limit(
    monkeypatch, flyte_sandbox, flyte_examples, flyte_client
):
    from airflow_provider.operators.flyte import FlyteLaunchOperator

    host, port = flyte_sandbox.endpoint.rsplit(":", 1)
    extra = {"insecure": True, "project": "flytesnacks", "domain": "development"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYTE_SHORT_NAMES",
        json.dumps(
            {
                "conn_type": "flyte",
                "host": host,
                "port": int(port),
                "extra": {**extra, "max_execution_name_length": 20},
            }
        ),
    )
    run_id = _unique_run_id()
    names = {}
    for task_id in ("first_of_two", "second_of_two"):
        ti = TaskInstance(task_id, run_id)
        operator = FlyteLaunchOperator(
            task_id=task_id,
            launch_plan="hello.hello_wf",
            inputs={"name": task_id},
            flyte_conn_id="flyte_short_names",
            poll_interval=0.2,
        )

        assert operator.execute({"ti": ti}) == {"o0": f"hello {task_id}"}
        names[task_id] = flyte_client.fetch_execution(ti.xcoms["execution_id"]).id.name

    assert names == {
        task_id: execution_name("direct_calls", task_id, run_id, -1, max_length=20)
        for task_id in names
    }
    assert all(len(name) <= 20 for name in names.values())
    assert len(set(names.values())) == 2


@pytest.fixture
def aborts_held(flyte_sandbox, monkeypatch):
    """Holds the sandbox engine's aborts: a terminated run stays ABORTING until the test ends."""
    engine = flyte_sandbox.server.executions.engine
    held = []
    monkeypatch.setattr(
        engine, "abort", lambda execution_id, cause: held.append((execution_id, cause))
    )
    yield held
    monkeypatch.undo()
    for execution_id, cause in held:
        engine.abort(execution_id, cause)


def test_a_retry_right_after_a_kill_launches_the_next_generation_not_the_aborting_run(
    aborts_held, flyte_connection, flyte_examples, flyte_client
):
    from airflow_provider.operators.flyte import FlyteLaunchOperator

    ti = TaskInstance("killed_then_retried", _unique_run_id())
    step = (ti.dag_id, ti.task_id, ti.run_id, -1)

    def attempt():
        operator = FlyteLaunchOperator(
            task_id=ti.task_id,
            launch_plan="long_sleep.long_sleep_wf",
            inputs={"seconds": 600},
            wait_for_completion=False,
        )
        return operator, operator.execute({"ti": ti})

    killed, first = attempt()
    killed.on_kill()
    assert flyte_client.fetch_execution(first).phase_name == "ABORTING"
    _, second = attempt()
    try:
        assert first == f"flytesnacks/development/{execution_name(*step)}"
        assert second == f"flytesnacks/development/{execution_name(*step, generation=1)}"
        assert flyte_client.fetch_execution(second).phase_name in ("QUEUED", "RUNNING")
        assert ti.xcoms["execution_id"] == second
    finally:
        flyte_client.terminate(second, cause="test finished")


def test_values_rendered_as_text_are_read_as_the_declared_types(
    airflow_db, flyte_connection, flyte_examples, flyte_client
):
    import flyte_test_dags

    run = flyte_test_dags.rendered_text.test(logical_date=LOGICAL_DATE)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}

    assert set(states.values()) == {"success"}, states
    report = flyte_client.fetch_execution(
        execution_name("flyte_rendered_text", "report_from_text", run.run_id, -1)
    )
    assert flyte_client.fetch_inputs(report)["kickoff_time"] == run.data_interval_start
    release = flyte_client.fetch_execution(
        execution_name("flyte_rendered_text", "release_from_text", run.run_id, -1)
    )
    finished = flyte_client.wait(release, timeout=120, poll_interval=0.3)
    assert flyte_client.fetch_outputs(finished) == {"o0": "release 5 at 12.5%"}


def test_a_backfill_gives_its_templated_inputs_to_every_run(
    flyte_connection, flyte_examples, flyte_client
):
    from airflow_provider.operators.flyte import FlyteBackfillOperator

    ti = TaskInstance("backfill_inputs", _unique_run_id())
    operator = FlyteBackfillOperator(
        task_id=ti.task_id,
        launch_plan="daily_report",
        start="2024-05-01T06:00:00+00:00",
        end="2024-05-02T06:00:00+00:00",
        inputs={"region": "apac"},
        parallel=True,
        deferrable=False,
        poll_interval=0.5,
    )
    assert "inputs" in operator.template_fields

    operator.execute({"ti": ti})

    done = flyte_client.wait(ti.xcoms["execution_id"], timeout=180, sync_nodes=True)
    reports = sorted(
        flyte_client.fetch_outputs(node.child_execution)["o0"]
        for node in done.node_executions.values()
    )
    assert reports == ["report apac 2024-05-01: 10 events", "report apac 2024-05-02: 20 events"]
