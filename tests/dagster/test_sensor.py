"""The execution sensor against the sandbox: outside executions are reported once."""

import dagster as dg
import pytest

from dagster_resources import DAGSTER_RUN_LABEL, FlyteLaunchPlanProps, build_flyte_execution_sensor

pytestmark = pytest.mark.slow

HELLO = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensor.evaluate_tick(context)


def test_sensor_reports_an_outside_execution_once_and_skips_dagster_launched_ones(flyte, client):
    sensor = build_flyte_execution_sensor(flyte=flyte, launch_plans=[HELLO])
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)

        outside = client.launch("hello.hello_wf", inputs={"name": "outside"})
        ours = client.launch(
            "hello.hello_wf", inputs={"name": "ours"}, labels={DAGSTER_RUN_LABEL: "run-1"}
        )
        client.wait(outside, timeout=120, poll_interval=0.2)
        client.wait(ours, timeout=120, poll_interval=0.2)

        second = _tick(sensor, instance, first.cursor)
        third = _tick(sensor, instance, second.cursor)

    assert first.asset_events == []
    (reported,) = second.asset_events
    assert reported.asset_key == dg.AssetKey(["hello", "hello_wf", "o0"])
    assert reported.metadata["flyte/execution_id"].value == str(outside.id)
    assert reported.metadata["flyte/output_preview"].value == "hello outside"
    assert third.asset_events == []
