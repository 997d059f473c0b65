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


@dg.asset
def noop() -> None:
    """What the run-requesting sensor asks to run."""


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensor.evaluate_tick(context)


def test_sensor_reports_outside_executions_once_and_skips_dagster_launched_ones(flyte, client):
    sensor = build_flyte_execution_sensor(
        flyte=flyte,
        launch_plans=[HELLO, DAILY_REPORT],
        partitions_def={"daily_report": SIX_AM_DAYS},
    )
    requesting = build_flyte_execution_sensor(
        flyte=flyte, launch_plans=[HELLO, DAILY_REPORT], mode="run_requests", target=[noop]
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

    assert first.asset_events == []
    reported = {event.metadata["flyte/execution_id"].value: event for event in second.asset_events}
    assert sorted(reported) == sorted([str(outside.id), str(report.id)])
    hello = reported[str(outside.id)]
    assert hello.asset_key == dg.AssetKey(["hello", "hello_wf", "o0"])
    assert hello.metadata["flyte/output_preview"].value == "hello outside"
    assert reported[str(report.id)].partition == "2024-03-05"
    assert third.asset_events == []
    assert sorted(request.run_key for request in requested.run_requests) == sorted(reported)
