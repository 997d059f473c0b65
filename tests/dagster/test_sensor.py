"""The execution sensor against the sandbox: outside executions are reported once."""

import datetime as dt

import dagster as dg
import pytest

from dagster_resources import DAGSTER_RUN_LABEL, FlyteLaunchPlanProps, build_flyte_execution_sensor

pytestmark = pytest.mark.slow

HELLO = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
DAILY_REPORT = FlyteLaunchPlanProps(
    name="daily_report", outputs={"o0": "STRING"}, kickoff_time_input="kickoff_time"
)
SIX_AM_DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6)
UNBOUNDED = 3600.0
"""A tick budget no tick here spends, so a slow machine cannot split a tick in two (the budget
has its own test in test_definitions.py)."""


@dg.asset
def noop() -> None:
    """What the run-requesting sensor asks to run."""


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensor.evaluate_tick(context)


def _reported(result, among) -> list[str]:
    """The execution ids a tick reported, among those of this test: the session's sandbox is
    shared, so runs of other tests may end between two ticks and be reported too."""
    ids = [event.metadata["flyte/execution_id"].value for event in result.asset_events]
    ids += [request.run_key for request in result.run_requests or []]
    return sorted(i for i in ids if i in among)


def test_sensor_reports_outside_executions_once_and_skips_dagster_launched_ones(flyte, client):
    sensor = build_flyte_execution_sensor(
        flyte=flyte,
        launch_plans=[HELLO, DAILY_REPORT],
        partitions_def={"daily_report": SIX_AM_DAYS},
        tick_budget_seconds=UNBOUNDED,
    )
    requesting = build_flyte_execution_sensor(
        flyte=flyte,
        launch_plans=[HELLO, DAILY_REPORT],
        mode="run_requests",
        target=[noop],
        tick_budget_seconds=UNBOUNDED,
    )
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)

        outside = client.launch("hello.hello_wf", inputs={"name": "outside"})
        kickoff = dt.datetime(2024, 3, 5, 6, tzinfo=dt.timezone.utc)
        report = client.launch("daily_report", inputs={"kickoff_time": kickoff})
        ours = client.launch(
            "hello.hello_wf", inputs={"name": "ours"}, labels={DAGSTER_RUN_LABEL: "run-1"}
        )
        for execution in (outside, report, ours):
            client.wait(execution, timeout=120, poll_interval=0.2)

        second = _tick(sensor, instance, first.cursor)
        third = _tick(sensor, instance, second.cursor)
        requested = _tick(requesting, instance, first.cursor)

    launched = {str(outside.id), str(report.id), str(ours.id)}
    assert _reported(first, launched) == []
    assert _reported(second, launched) == sorted([str(outside.id), str(report.id)])
    assert _reported(third, launched) == []
    assert not {e.metadata["flyte/execution_id"].value for e in second.asset_events} & {
        e.metadata["flyte/execution_id"].value for e in third.asset_events
    }, "an execution was reported by two ticks"
    reported = {event.metadata["flyte/execution_id"].value: event for event in second.asset_events}
    hello = reported[str(outside.id)]
    assert hello.asset_key == dg.AssetKey(["hello", "hello_wf", "o0"])
    assert hello.metadata["flyte/output_preview"].value == "hello outside"
    assert reported[str(report.id)].partition == "2024-03-05"
    assert _reported(requested, launched) == sorted([str(outside.id), str(report.id)])
