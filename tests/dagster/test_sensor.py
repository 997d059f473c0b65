"""The execution sensor against the sandbox: outside executions are reported once."""

import datetime as dt
import re

import dagster as dg
import pytest

from dagster_resources import (
    DAGSTER_RUN_LABEL,
    FlyteLaunchPlanProps,
    FlyteResource,
    build_flyte_execution_sensor,
)

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


def test_sensor_reports_outside_executions_once_and_skips_dagster_launched_ones(
    flyte, client, capfd
):
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
    # Each tick says what it saw; other tests' runs may be counted too, so only the shape is fixed.
    log = capfd.readouterr().err
    assert "First tick: reporting Flyte executions that succeed from now on" in log
    assert re.search(
        r"\d+ newly succeeded Flyte execution\(s\): \d+ materialization\(s\), [1-9]\d* launched "
        r"by Dagster itself",
        log,
    )
    assert re.search(r"\d+ newly succeeded Flyte execution\(s\): \d+ run request\(s\)", log)


def _make_outputs_unreadable(client, execution) -> None:
    """Overwrites the stored outputs of a finished execution with bytes that are no LiteralMap;
    the sandbox then serves them behind their URL, where the client cannot decode them."""
    from flyte_bridge.sandbox.storage import DataStore

    uri = client.fetch_execution(execution.id).proto.closure.outputs.uri
    assert uri, "the sandbox keeps a SUCCEEDED execution's outputs in a file"
    DataStore.local_path(uri).write_bytes(b"\xff\xff\xff\xff not a literal map")


def test_an_execution_whose_outputs_cannot_be_read_does_not_stop_the_others(flyte, client):
    sensor = build_flyte_execution_sensor(
        flyte=flyte,
        launch_plans=[HELLO, DAILY_REPORT],
        partitions_def={"daily_report": SIX_AM_DAYS},
        tick_budget_seconds=UNBOUNDED,
    )
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)
        broken = client.launch("hello.hello_wf", inputs={"name": "broken"})
        client.wait(broken, timeout=120, poll_interval=0.2)
        _make_outputs_unreadable(client, broken)
        with pytest.raises(Exception, match="not a serialized LiteralMap"):
            client.fetch_outputs(client.fetch_execution(broken.id))
        kickoff = dt.datetime(2024, 3, 6, 6, tzinfo=dt.timezone.utc)
        later = [
            client.launch("hello.hello_wf", inputs={"name": "after"}),
            client.launch("daily_report", inputs={"kickoff_time": kickoff}),
        ]
        for execution in later:
            client.wait(execution, timeout=120, poll_interval=0.2)

        second = _tick(sensor, instance, first.cursor)
        third = _tick(sensor, instance, second.cursor)

    launched = {str(broken.id), *(str(execution.id) for execution in later)}
    assert _reported(second, launched) == sorted(launched)
    assert _reported(third, launched) == [], "the cursor did not move past the broken execution"
    reported = {event.metadata["flyte/execution_id"].value: event for event in second.asset_events}
    unreadable = reported[str(broken.id)]
    assert "flyte/output_preview" not in unreadable.metadata
    assert "not a serialized LiteralMap" in unreadable.metadata["flyte/outputs_error"].value
    assert unreadable.metadata["flyte/phase"].value == "SUCCEEDED"
    assert reported[str(later[0].id)].metadata["flyte/output_preview"].value == "hello after"
    assert reported[str(later[1].id)].partition == "2024-03-06"


def test_kickoff_times_outside_the_partitions_are_skipped_not_reported(flyte, client, capfd):
    sensor = build_flyte_execution_sensor(
        flyte=flyte,
        launch_plans=[DAILY_REPORT],
        partitions_def=SIX_AM_DAYS,
        tick_budget_seconds=UNBOUNDED,
    )
    kickoffs = {
        "inside": dt.datetime(2024, 3, 7, 6, tzinfo=dt.timezone.utc),
        "before the start": dt.datetime(2023, 6, 1, 6, tzinfo=dt.timezone.utc),
        "not a partition yet": dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3),
    }
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)
        runs = {
            what: client.launch("daily_report", inputs={"kickoff_time": kickoff})
            for what, kickoff in kickoffs.items()
        }
        for execution in runs.values():
            client.wait(execution, timeout=120, poll_interval=0.2)
        second = _tick(sensor, instance, first.cursor)
        third = _tick(sensor, instance, second.cursor)

    launched = {str(execution.id) for execution in runs.values()}
    assert _reported(second, launched) == [str(runs["inside"].id)]
    (event,) = [
        e for e in second.asset_events if e.metadata["flyte/execution_id"].value in launched
    ]
    assert event.partition == "2024-03-07"
    assert _reported(third, launched) == []
    # The sensor's log goes to Dagster's console handler, not to the root logger.
    skipped = [line for line in capfd.readouterr().err.splitlines() if "Skipping" in line]
    assert any(
        str(runs["before the start"].id) in line and "2023-06-01" in line for line in skipped
    )
    assert any(str(runs["not a partition yet"].id) in line for line in skipped)


def test_a_sensor_reads_the_env_vars_of_its_resource_at_each_tick(
    flyte_sandbox, flyte_examples, client, monkeypatch
):
    monkeypatch.setenv("MY_FLYTE_ENDPOINT", flyte_sandbox.endpoint)
    monkeypatch.setenv("MY_FLYTE_PROJECT", "flytesnacks")
    from_env = FlyteResource(
        endpoint=dg.EnvVar("MY_FLYTE_ENDPOINT"),
        insecure=True,
        default_project=dg.EnvVar("MY_FLYTE_PROJECT"),
        default_domain="development",
    )
    sensor = build_flyte_execution_sensor(
        flyte=from_env, launch_plans=[HELLO], tick_budget_seconds=UNBOUNDED
    )
    from flyte_bridge.client import FlyteClient

    closed: list[str] = []
    real_close = FlyteClient.close

    def counting_close(self) -> None:
        closed.append(self.config.endpoint)
        real_close(self)

    monkeypatch.setattr(FlyteClient, "close", counting_close)
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)
        outside = client.launch("hello.hello_wf", inputs={"name": "from env"})
        client.wait(outside, timeout=120, poll_interval=0.2)
        second = _tick(sensor, instance, first.cursor)

    assert _reported(second, {str(outside.id)}) == [str(outside.id)]
    assert from_env.endpoint == "MY_FLYTE_ENDPOINT", "the resource given stays as it was"
    assert closed == [flyte_sandbox.endpoint] * 2, "each tick closes the client it built"


@dg.asset(partitions_def=SIX_AM_DAYS)
def daily_noop() -> None:
    """What the partitioned run-requesting sensor asks to run."""


def test_run_requests_carry_the_partition_of_the_kickoff_time(flyte, client, capfd):
    sensor = build_flyte_execution_sensor(
        flyte=flyte,
        launch_plans=[DAILY_REPORT],
        partitions_def=SIX_AM_DAYS,
        mode="run_requests",
        target=[daily_noop],
        tick_budget_seconds=UNBOUNDED,
    )
    kickoffs = {
        "inside": dt.datetime(2024, 3, 8, 6, tzinfo=dt.timezone.utc),
        "before the start": dt.datetime(2023, 6, 2, 6, tzinfo=dt.timezone.utc),
    }
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)
        runs = {
            what: client.launch("daily_report", inputs={"kickoff_time": kickoff})
            for what, kickoff in kickoffs.items()
        }
        for execution in runs.values():
            client.wait(execution, timeout=120, poll_interval=0.2)
        # Partitioned run requests are checked against the definitions holding the target.
        defs = dg.Definitions(assets=[daily_noop], sensors=[sensor])
        context = dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs)
        second = sensor.evaluate_tick(context)

    launched = {str(execution.id) for execution in runs.values()}
    assert _reported(second, launched) == [str(runs["inside"].id)]
    (request,) = [r for r in second.run_requests if r.run_key in launched]
    assert request.partition_key == "2024-03-08"
    skipped = [line for line in capfd.readouterr().err.splitlines() if "Skipping" in line]
    assert any(
        str(runs["before the start"].id) in line and "2023-06-02" in line for line in skipped
    )
