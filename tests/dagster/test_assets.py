"""Flyte launch plans as assets, materialized in process against the sandbox over gRPC."""

import datetime as dt

import dagster as dg
import pytest

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteResource,
    build_flyte_assets_definition,
    build_flyte_execution_sensor,
    flyte_assets,
)

pytestmark = pytest.mark.slow

HELLO = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
DAILY_REPORT = FlyteLaunchPlanProps(
    name="daily_report",
    outputs={"o0": "STRING"},
    kickoff_time_input="kickoff_time",
    cron_schedule="0 6 * * *",
)
SIX_AM_DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6)


@flyte_assets(launch_plan=DAILY_REPORT, partitions_def=SIX_AM_DAYS)
def daily_report(context: dg.AssetExecutionContext, flyte: FlyteResource):
    yield from flyte.materialize(context)


@flyte_assets(
    launch_plan=DAILY_REPORT,
    partitions_def=SIX_AM_DAYS,
    backfill_strategy="per_partition",
    name="daily_report_per_partition",
)
def daily_report_per_partition(context: dg.AssetExecutionContext, flyte: FlyteResource):
    yield from flyte.materialize(context)


def _only_materialization(result: dg.ExecuteInProcessResult) -> dg.AssetMaterialization:
    (event,) = result.get_asset_materialization_events()
    return event.materialization


def test_materializing_reports_the_output_with_the_execution_url_id_phase_and_duration(
    flyte, client
):
    @flyte_assets(launch_plan=HELLO)
    def hello(context: dg.AssetExecutionContext, flyte: FlyteResource):
        yield from flyte.materialize(context, inputs={"name": "Dagster"})

    result = dg.materialize([hello], resources={"flyte": flyte})

    materialization = _only_materialization(result)
    metadata = materialization.metadata
    assert materialization.asset_key == dg.AssetKey(["hello", "hello_wf", "o0"])
    assert metadata["flyte/output_preview"].value == "hello Dagster"
    assert metadata["flyte/phase"].value == "SUCCEEDED"
    assert metadata["flyte/duration"].value > 0
    execution = client.fetch_execution(metadata["flyte/execution_id"].value)
    assert metadata["flyte/execution_url"].value == client.console_url(execution)
    assert execution.labels["dagster-run-id"] == result.run_id


def test_failed_execution_fails_the_step_with_the_error_and_url(flyte):
    failing = build_flyte_assets_definition(
        FlyteLaunchPlanProps(name="failures.failing_wf"), inputs={"reason": "no data today"}
    )

    result = dg.materialize([failing], resources={"flyte": flyte}, raise_on_error=False)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.user_failure_data
    assert "ended FAILED" in error.description
    assert "no data today" in error.description
    assert error.metadata["flyte/execution_url"].value.startswith("http")
    assert error.metadata["flyte/phase"].value == "FAILED"


def test_time_partition_start_is_the_kickoff_time(flyte):
    result = dg.materialize([daily_report], resources={"flyte": flyte}, partition_key="2024-01-03")

    materialization = _only_materialization(result)
    assert materialization.partition == "2024-01-03"
    assert materialization.metadata["flyte/output_preview"].value == (
        "report eu 2024-01-03: 30 events"
    )


def test_partition_range_runs_as_one_flyte_backfill_the_sensor_does_not_report(flyte, client):
    sensor = build_flyte_execution_sensor(
        flyte=flyte, launch_plans=[DAILY_REPORT], tick_budget_seconds=3600
    )
    with dg.instance_for_test() as instance:
        before = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        result = dg.materialize(
            [daily_report],
            resources={"flyte": flyte},
            tags={
                "dagster/asset_partition_range_start": "2024-02-01",
                "dagster/asset_partition_range_end": "2024-02-03",
            },
        )
        after = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=before.cursor)
        )

    events = result.get_asset_materialization_events()
    assert sorted(event.materialization.partition for event in events) == [
        "2024-02-01",
        "2024-02-02",
        "2024-02-03",
    ]
    metadata = events[0].materialization.metadata
    assert metadata["flyte/backfill_runs"].value == 3
    backfill = client.sync(client.fetch_execution(metadata["flyte/execution_id"].value))
    assert backfill.phase_name == "SUCCEEDED"
    assert backfill.launch_plan.name != "daily_report"
    assert backfill.labels["dagster-run-id"] == result.run_id
    children = {str(node.child_execution.id) for node in backfill.node_executions.values()}
    assert len(children) == 3
    reported = {event.metadata["flyte/execution_id"].value for event in after.asset_events}
    assert not reported & children, "the sensor reported runs of Dagster's own backfill"


def test_a_flyte_backfill_of_a_partition_range_passes_the_builders_inputs_to_every_run(
    flyte, client
):
    us_report = build_flyte_assets_definition(
        DAILY_REPORT,
        inputs={"region": "us"},
        partitions_def=SIX_AM_DAYS,
        backfill_strategy="flyte_backfill",
        name="daily_report_us",
    )

    result = dg.materialize(
        [us_report],
        resources={"flyte": flyte},
        tags={
            "dagster/asset_partition_range_start": "2024-04-01",
            "dagster/asset_partition_range_end": "2024-04-02",
        },
    )

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    backfill = client.sync(client.fetch_execution(metadata["flyte/execution_id"].value))
    assert backfill.launch_plan.name != "daily_report", "not launched as a Flyte backfill"
    children = [node.child_execution for node in backfill.node_executions.values()]
    assert sorted(client.fetch_outputs(child)["o0"] for child in children) == [
        "report us 2024-04-01: 10 events",
        "report us 2024-04-02: 20 events",
    ]


def test_partitions_at_other_times_than_the_schedule_run_a_range_once_per_partition(flyte, client):
    midnight_report = build_flyte_assets_definition(
        DAILY_REPORT,
        partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"),
        name="daily_report_at_midnight",
    )

    result = dg.materialize(
        [midnight_report],
        resources={"flyte": flyte},
        tags={
            "dagster/asset_partition_range_start": "2024-06-01",
            "dagster/asset_partition_range_end": "2024-06-02",
        },
    )

    kickoffs = {}
    for event in result.get_asset_materialization_events():
        execution = client.fetch_execution(
            event.materialization.metadata["flyte/execution_id"].value
        )
        assert execution.launch_plan.name == "daily_report", "launched as a Flyte backfill"
        kickoffs[event.materialization.partition] = client.fetch_inputs(execution)["kickoff_time"]
    assert kickoffs == {
        "2024-06-01": dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc),
        "2024-06-02": dt.datetime(2024, 6, 2, tzinfo=dt.timezone.utc),
    }


def test_partition_range_per_partition_reports_each_partition_with_its_own_execution(flyte, client):
    result = dg.materialize(
        [daily_report_per_partition],
        resources={"flyte": flyte},
        tags={
            "dagster/asset_partition_range_start": "2024-01-02",
            "dagster/asset_partition_range_end": "2024-01-04",
        },
    )

    events = {
        event.materialization.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert sorted(events) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    ids = {
        partition: metadata["flyte/execution_id"].value for partition, metadata in events.items()
    }
    assert len(set(ids.values())) == 3, f"partitions share an execution: {ids}"
    for partition, metadata in events.items():
        execution = client.fetch_execution(ids[partition])
        day = dt.date.fromisoformat(partition)
        assert execution.launch_plan.name == "daily_report"
        assert execution.labels["dagster-run-id"] == result.run_id
        assert client.fetch_inputs(execution)["kickoff_time"] == dt.datetime(
            day.year, day.month, day.day, 6, tzinfo=dt.timezone.utc
        )
        assert metadata["flyte/execution_url"].value == client.console_url(execution)
        assert metadata["flyte/output_preview"].value == (
            f"report eu {partition}: {day.day * 10} events"
        )
        assert metadata["flyte/execution_ids"].value.split(", ") == [
            ids["2024-01-02"],
            ids["2024-01-03"],
            ids["2024-01-04"],
        ]


def test_an_output_the_launch_plan_lacks_fails_before_anything_is_launched(flyte, client):
    wrong = build_flyte_assets_definition(
        FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"greeting": "STRING"}),
        inputs={"name": "nobody"},
    )

    result = dg.materialize([wrong], resources={"flyte": flyte}, raise_on_error=False)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.user_failure_data
    assert "no output 'greeting'" in error.description
    assert "its outputs are 'o0'" in error.description
    assert error.metadata["flyte/declared_outputs"].value == ["o0"]
    hellos = client.list_executions(filters="eq(launch_plan.name,hello.hello_wf)")
    assert [str(e.id) for e in hellos if e.labels.get("dagster-run-id") == result.run_id] == []


def test_a_subset_of_the_outputs_is_materialized_from_one_run(flyte, client):
    parse = build_flyte_assets_definition(
        FlyteLaunchPlanProps(
            name="map_pipeline.tolerant_parse_wf", outputs={"o0": "LIST", "o1": "INTEGER"}
        )
    )
    total_key = dg.AssetKey(["map_pipeline", "tolerant_parse_wf", "o1"])

    result = dg.materialize([parse], resources={"flyte": flyte}, selection=[total_key])

    assert parse.can_subset
    materialization = _only_materialization(result)
    assert materialization.asset_key == total_key
    assert materialization.metadata["flyte/output_preview"].value == "7"
    execution = client.fetch_execution(materialization.metadata["flyte/execution_id"].value)
    assert client.fetch_outputs(execution) == {"o0": [1, 2, None, 4], "o1": 7}


LONG_SLEEP = FlyteLaunchPlanProps(name="long_sleep.long_sleep_wf", outputs={"o0": "STRING"})


def _executions_of_run(client, run_id: str) -> list:
    """The ids of the recent executions labelled with the Dagster run."""
    recent = client.recent_executions(limit=50)
    return [e.id for e in recent if e.labels.get("dagster-run-id") == run_id]


def test_a_retried_asset_step_follows_the_run_its_earlier_try_left_running(flyte, client):
    earlier = []

    @flyte_assets(
        launch_plan=LONG_SLEEP, name="sleep_with_retry", retry_policy=dg.RetryPolicy(max_retries=1)
    )
    def sleep_with_retry(context: dg.AssetExecutionContext, flyte: FlyteResource):
        if context.retry_number == 0:
            # The first try launches the step's run, as materialize does, and is then lost
            # (its process killed, Flyte unreachable) while the run goes on.
            op_name = context.op_execution_context.op.name
            name = client.step_execution_name("dagster", context.run.run_id, op_name, None)
            earlier.append(client.launch(LONG_SLEEP.name, inputs={"seconds": 2}, name=name))
            raise RuntimeError("the first try was lost")
        yield from flyte.materialize(context, inputs={"seconds": 2})

    with dg.instance_for_test() as instance:
        result = dg.materialize([sleep_with_retry], resources={"flyte": flyte}, instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]

    (execution,) = earlier
    assert result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1
    metadata = _only_materialization(result).metadata
    assert metadata["flyte/execution_id"].value == str(execution.id)
    assert metadata["flyte/output_preview"].value == "slept 2s"
    # Running when the retry looks, or (on a loaded machine) already finished: followed either way.
    followed = (
        f"Reattached to Flyte execution {execution.id}",
        f"Found Flyte execution {execution.id}",
    )
    assert any(m.startswith(followed) for m in messages)
    assert not any(m.startswith("Launched Flyte execution") for m in messages)


def test_a_retry_of_a_built_asset_after_a_failed_run_launches_the_next(flyte, client):
    failing = build_flyte_assets_definition(
        FlyteLaunchPlanProps(name="failures.failing_wf"),
        inputs={"reason": "fails every try"},
        name="failing_with_retry",
        retry_policy=dg.RetryPolicy(max_retries=1),
    )

    result = dg.materialize([failing], resources={"flyte": flyte}, raise_on_error=False)

    assert not result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1
    tries = [
        client.fetch_execution(
            client.step_execution_name(
                "dagster", result.run_id, "failing_with_retry", None, generation=generation
            )
        )
        for generation in (0, 1)
    ]
    assert [execution.phase_name for execution in tries] == ["FAILED", "FAILED"]
    assert sorted(_executions_of_run(client, result.run_id), key=str) == sorted(
        (execution.id for execution in tries), key=str
    )
