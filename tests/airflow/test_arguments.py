"""Operator arguments that cannot work are refused before anything happens on Flyte: a value
given to approve or reject, a poll interval or timeout that is not a positive number of seconds
(when the DAG is parsed, or in execute before launching), an execution template that rendered to
None; a single phase name is one success phase; a gate not reached is explained in the
operator's own parameters."""

import datetime as dt
import math

import pytest

from flyte_bridge.naming import execution_name

HELLO, DAILY = "hello.hello_wf", "daily_report"
NOT_POSITIVE = [-1, 0, -0.5, math.nan, math.inf, "5", True, dt.timedelta(0), dt.timedelta(-1)]


def operators():
    """Each operator that waits, built with only the arguments it needs besides durations."""
    from airflow_provider.operators.flyte import (
        FlyteBackfillOperator,
        FlyteLaunchOperator,
        FlyteSignalOperator,
    )

    return {
        "launch": lambda **kw: FlyteLaunchOperator(task_id="l", launch_plan=HELLO, **kw),
        "backfill": lambda **kw: FlyteBackfillOperator(task_id="b", launch_plan=DAILY, **kw),
        "signal": lambda **kw: FlyteSignalOperator(task_id="s", execution="e", signal_id="g", **kw),
    }


@pytest.mark.parametrize("value", [False, True, 0, "no"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_value_with_approve_or_reject_is_refused_when_the_dag_is_parsed(action, value):
    from airflow.sdk import DAG

    from airflow_provider.operators.flyte import FlyteSignalOperator

    with pytest.raises(ValueError) as refused, DAG("signal_value", schedule=None):
        FlyteSignalOperator(
            task_id="gate", execution="e", signal_id="review", action=action, value=value
        )

    assert "value goes only with action='set_input'" in str(refused.value)
    assert f"action={action!r} takes no value, got value={value!r}" in str(refused.value)


def test_approve_and_reject_without_a_value_and_set_input_with_one_are_accepted():
    from airflow_provider.operators.flyte import FlyteSignalOperator

    for action, value in [("approve", None), ("reject", None), ("set_input", False)]:
        operator = FlyteSignalOperator(
            task_id=action, execution="e", signal_id="g", action=action, value=value
        )
        assert (operator.action, operator.value) == (action, value)


@pytest.mark.parametrize("kind", ["launch", "backfill", "signal"])
@pytest.mark.parametrize("value", NOT_POSITIVE, ids=repr)
def test_a_poll_interval_that_is_not_positive_is_refused_when_the_dag_is_parsed(kind, value):
    with pytest.raises(ValueError) as refused:
        operators()[kind](poll_interval=value)

    assert str(refused.value) == (
        f"poll_interval must be a positive number of seconds or a timedelta; got {value!r}"
    )


@pytest.mark.parametrize("kind", ["launch", "backfill", "signal"])
@pytest.mark.parametrize("value", NOT_POSITIVE, ids=repr)
def test_a_timeout_that_is_not_positive_or_none_is_refused_when_the_dag_is_parsed(kind, value):
    with pytest.raises(ValueError) as refused:
        operators()[kind](timeout=value)

    assert str(refused.value).startswith(
        "timeout must be a positive number of seconds or a timedelta, or None"
    )
    assert str(refused.value).endswith(f"; got {value!r}")


@pytest.mark.parametrize("kind", ["launch", "backfill", "signal"])
def test_durations_as_seconds_timedeltas_or_no_timeout_are_accepted(kind):
    operator = operators()[kind](poll_interval=dt.timedelta(seconds=2), timeout=90)
    assert (operator.poll_interval, operator.timeout) == (2.0, 90.0)
    operator = operators()[kind](poll_interval=0.25, timeout=None)
    assert (operator.poll_interval, operator.timeout) == (0.25, None)


def test_a_sensor_poke_interval_of_zero_is_refused_when_the_dag_is_parsed():
    from airflow_provider.sensors.flyte import FlyteExecutionSensor

    with pytest.raises(ValueError, match="poke_interval must be a positive number of seconds"):
        FlyteExecutionSensor(task_id="sense", execution="e", poke_interval=0)


@pytest.mark.parametrize(
    ("given", "phases"),
    [
        ("SUCCEEDED", {"SUCCEEDED"}),
        ("aborted", {"ABORTED"}),
        (["FAILED", "ABORTED"], {"FAILED", "ABORTED"}),
        (("TIMED_OUT",), {"TIMED_OUT"}),
    ],
)
def test_success_phases_take_one_phase_name_or_a_list_of_them(given, phases):
    from airflow_provider.sensors.flyte import FlyteExecutionSensor

    sensor = FlyteExecutionSensor(task_id="sense", execution="e", success_phases=given)

    assert sensor.success_phases == phases


@pytest.mark.parametrize(
    ("given", "detail"),
    [
        ("RUNNING", "got 'RUNNING', where ['RUNNING'] is not a terminal phase"),
        (["SUCCEEDED", "DONE"], "where ['DONE'] is not a terminal phase"),
        ([], "got no phase: []"),
        (5, "got 5"),
        ([None], "got [None]"),
        ({"SUCCEEDED": True}, "got {'SUCCEEDED': True}"),
    ],
)
def test_success_phases_that_are_not_terminal_phase_names_are_refused(given, detail):
    from airflow_provider.sensors.flyte import FlyteExecutionSensor

    with pytest.raises(ValueError) as refused:
        FlyteExecutionSensor(task_id="sense", execution="e", success_phases=given)

    assert str(refused.value).startswith(
        "success_phases must be a terminal phase name or a list of them, among "
        "['ABORTED', 'FAILED', 'SUCCEEDED', 'TIMED_OUT']; "
    )
    assert detail in str(refused.value)
    assert "'S', 'U'" not in str(refused.value)


class TaskInstance:
    """What the operators read of ``context["ti"]``, for calling ``execute`` directly."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.task_id = "arguments", task_id
        self.run_id = f"manual__{dt.datetime.now(dt.timezone.utc).isoformat()}"
        self.map_index = -1
        self.start_date = None
        self.xcoms: dict = {}

    def xcom_push(self, key, value) -> None:
        self.xcoms[key] = value


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize(
    ("kind", "attribute", "value"),
    [
        ("launch", "poll_interval", 0),
        ("launch", "timeout", -5),
        ("backfill", "poll_interval", -1),
        ("backfill", "timeout", "10"),
    ],
)
def test_a_duration_known_only_at_execute_time_fails_the_task_before_launching(
    flyte_connection, flyte_examples, flyte_sandbox, kind, attribute, value, deferrable
):
    """A value set on the operator after it was built (as a pre_execute hook or a plugin may
    do) is checked in execute, before the launch: no execution to leave unwatched or abort."""
    from airflow.sdk.exceptions import AirflowFailException

    kwargs = {"start": "2024-01-01", "end": "2024-01-02"} if kind == "backfill" else {}
    operator = operators()[kind](deferrable=deferrable, **kwargs)
    setattr(operator, attribute, value)
    ti = TaskInstance(operator.task_id)
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(AirflowFailException) as failed:
        operator.execute({"ti": ti})

    assert str(failed.value).startswith(f"{attribute} must be a positive number of seconds")
    assert str(failed.value).endswith(f"; got {value!r}")
    assert flyte_sandbox.rpc_counts.since(before) == {}
    assert ti.xcoms == {}


def never_pushed(kind: str, execution):
    from airflow_provider.operators.flyte import FlyteSignalOperator, FlyteTerminateOperator
    from airflow_provider.sensors.flyte import FlyteExecutionSensor

    template = "{{ ti.xcom_pull(task_ids='launch_relaese', key='execution_id') }}"
    operator = {
        "sensor": lambda: FlyteExecutionSensor(
            task_id="sense", execution=template, poke_interval=0.2
        ),
        "sensor_deferred": lambda: FlyteExecutionSensor(
            task_id="sense", execution=template, deferrable=True
        ),
        "signal": lambda: FlyteSignalOperator(task_id="gate", execution=template, signal_id="g"),
        "signal_deferred": lambda: FlyteSignalOperator(
            task_id="gate", execution=template, signal_id="g", deferrable=True
        ),
        "terminate": lambda: FlyteTerminateOperator(task_id="stop", execution=template),
    }[kind]()
    operator.execution = execution  # what rendering the template gave
    return operator


@pytest.mark.parametrize(
    "kind", ["sensor", "sensor_deferred", "signal", "signal_deferred", "terminate"]
)
@pytest.mark.parametrize(
    "rendered", [None, "None", " None ", "", "flytesnacks/development/None"], ids=repr
)
def test_an_execution_that_rendered_to_none_fails_before_any_call_to_admin(
    flyte_connection, flyte_sandbox, kind, rendered
):
    from airflow.sdk.exceptions import AirflowFailException

    operator = never_pushed(kind, rendered)
    ti = TaskInstance(operator.task_id)
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(AirflowFailException) as failed:
        operator.execute({"ti": ti})

    message = str(failed.value)
    assert "field 'execution' (template \"{{ ti.xcom_pull(task_ids='launch_relaese'" in message
    assert f"rendered to {rendered!r}" in message
    assert "usually an XCom that was never pushed" in message
    assert flyte_sandbox.rpc_counts.since(before) == {}
    assert ti.xcoms == {}


@pytest.fixture
def release(flyte_examples, flyte_client):
    """A running approval workflow: its ``rollout_percent`` gate comes only after ``review`` is
    approved, so it is not reached while the test runs."""
    ti = TaskInstance("release")
    execution = flyte_client.launch(
        "approvals.approval_wf",
        inputs={"version": 1},
        name=execution_name(ti.dag_id, ti.task_id, ti.run_id, -1),
    )
    yield str(execution.id)
    flyte_client.terminate(execution, cause="test finished")


@pytest.mark.slow
def test_a_gate_not_reached_without_wait_for_gate_says_which_operator_setting_waits(
    flyte_connection, release
):
    from airflow_provider.operators.flyte import FlyteSignalOperator
    from flyte_bridge.errors import FlyteNotReadyError

    operator = FlyteSignalOperator(
        task_id="rollout",
        execution=release,
        signal_id="rollout_percent",
        action="set_input",
        value=25.0,
        wait_for_gate=False,
    )

    with pytest.raises(FlyteNotReadyError) as not_ready:
        operator.execute({"ti": TaskInstance("rollout")})

    message = not_ready.value.message
    assert message.startswith(f"gate 'rollout_percent' of execution {release} has not been reached")
    assert "FlyteSignalOperator has wait_for_gate=False" in message
    assert "set wait_for_gate=True (the default) to wait for the gate, with timeout=" in message
    assert "wait_for_gate=<seconds>" not in message
    assert not_ready.value.subject == f"{release}/rollout_percent"


@pytest.mark.slow
def test_a_gate_not_reached_within_the_timeout_names_the_operators_timeout(
    flyte_connection, release
):
    from airflow_provider.operators.flyte import FlyteSignalOperator
    from flyte_bridge.errors import FlyteNotReadyError

    operator = FlyteSignalOperator(
        task_id="rollout",
        execution=release,
        signal_id="rollout_percent",
        action="set_input",
        value=25.0,
        deferrable=False,
        timeout=1,
    )

    with pytest.raises(FlyteNotReadyError) as not_ready:
        operator.execute({"ti": TaskInstance("rollout")})

    message = not_ready.value.message
    assert "has not been reached yet" in message
    assert message.endswith("; waited timeout=1s (a longer timeout= waits longer)")
    assert "wait_for_gate=" not in message


@pytest.mark.parametrize("policy", ["bogus", "FAIL_FAST", None, ""])
def test_an_unknown_backfill_failure_policy_is_refused_when_the_dag_is_parsed(
    policy,
):
    from airflow.sdk import DAG

    with pytest.raises(ValueError) as refused, DAG("backfill_policy", schedule=None):
        operators()["backfill"](failure_policy=policy)

    assert str(refused.value) == (
        f"failure_policy must be one of ('fail_fast', 'continue'), got {policy!r}"
    )


def test_the_backfill_failure_policies_are_those_of_the_core():
    import typing

    from airflow_provider.operators.flyte import BACKFILL_FAILURE_POLICIES
    from flyte_bridge.backfill import FailurePolicy

    assert BACKFILL_FAILURE_POLICIES == typing.get_args(FailurePolicy)
    assert operators()["backfill"](failure_policy="continue").failure_policy == "continue"


def test_set_input_without_a_value_is_refused_when_the_dag_is_parsed():
    from airflow.sdk import DAG

    from airflow_provider.operators.flyte import FlyteSignalOperator

    with pytest.raises(ValueError) as refused, DAG("signal_no_value", schedule=None):
        FlyteSignalOperator(task_id="rollout", execution="e", signal_id="g", action="set_input")

    assert str(refused.value).startswith(
        "action='set_input' needs a value: the input to give the gate"
    )
    assert str(refused.value).endswith("; got value=None")


def test_a_set_input_value_template_that_rendered_to_none_fails_before_any_call_to_admin(
    flyte_connection, flyte_sandbox
):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider.operators.flyte import FlyteSignalOperator

    operator = FlyteSignalOperator(
        task_id="rollout",
        execution="flytesnacks/development/e",
        signal_id="rollout_percent",
        action="set_input",
        value="{{ ti.xcom_pull(task_ids='pick_rollout') }}",
    )
    operator.value = None  # what rendering it natively gave: the XCom was never pushed
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(AirflowFailException, match="action='set_input' needs a value"):
        operator.execute({"ti": TaskInstance(operator.task_id)})

    assert flyte_sandbox.rpc_counts.since(before) == {}


@pytest.mark.parametrize(
    ("kind", "settings", "warned"),
    [
        ("launch", {"deferrable": True, "wait_for_completion": False}, True),
        ("backfill", {"deferrable": True, "wait_for_completion": False}, True),
        ("launch", {"deferrable": True}, False),
        ("launch", {"deferrable": False, "wait_for_completion": False}, False),
    ],
)
def test_deferrable_without_waiting_is_warned_about_when_the_dag_is_parsed(kind, settings, warned):
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        operators()[kind](**settings)

    warnings = [log["event"] for log in logs if log["log_level"] == "warning"]
    assert bool(warnings) is warned
    if warned:
        (warning,) = warnings
        assert "deferrable=True has no effect with wait_for_completion=False" in warning
