"""Trigger arguments and events at the triggerer/worker boundary (no server needed)."""

import json

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider.operators.flyte import FlyteLaunchOperator, check_event
from airflow_provider.triggers.flyte import (
    FlyteExecutionTrigger,
    FlyteGateTrigger,
    wait_deadline,
)


@pytest.mark.parametrize(
    "trigger",
    [
        FlyteExecutionTrigger(
            execution_id="flytesnacks/development/a1",
            poll_interval=2,
            wait_started=100.0,
            end_time=160.0,
            execution_deadline=130.0,
            timeout_limit=30,
        ),
        FlyteGateTrigger(
            execution_id="flytesnacks/development/a1", signal_id="review", end_time=9.5
        ),
    ],
)
def test_a_trigger_serializes_to_json_and_rebuilds_itself(trigger):
    classpath, kwargs = trigger.serialize()

    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


def test_the_earlier_deadline_wins():
    assert wait_deadline(160.0, 130.0) == 130.0
    assert wait_deadline(None, 130.0) == 130.0
    assert wait_deadline(None, None) is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "expected a trigger event payload"),
        ({"status": "bogus", "execution_id": "p/d/n"}, "is not one of"),
        ({"status": "done"}, "without an execution_id"),
    ],
)
def test_a_lost_or_foreign_event_is_refused_with_the_reason(event, message):
    with pytest.raises(AirflowException, match=message):
        check_event(event, ("done", "timeout", "error"))


def test_a_launch_names_exactly_one_of_launch_plan_or_task():
    with pytest.raises(ValueError, match="exactly one of launch_plan or task"):
        FlyteLaunchOperator(task_id="t", launch_plan="a", task="b")
