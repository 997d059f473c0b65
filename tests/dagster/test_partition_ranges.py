"""A Dagster run over a range of partitions where one Flyte tick fails records the partitions
whose runs succeeded, then fails naming the others, as one Flyte backfill or one execution per
partition (``tick_lp`` of tests/dagster/workflows/dagster_checks.py fails on ``fail_day``)."""

import dagster as dg
import pytest

from dagster_resources import FlyteLaunchPlanProps, build_flyte_assets_definition

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("dagster_checks")]

TICKS = FlyteLaunchPlanProps(
    name="tick_lp",
    outputs={"o0": "STRING"},
    kickoff_time_input="kickoff",
    cron_schedule="0 0 * * *",
)
DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")
RANGE = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-04",
}


def _ticks(strategy: str, **inputs) -> dg.AssetsDefinition:
    return build_flyte_assets_definition(
        TICKS,
        inputs=inputs,
        partitions_def=DAYS,
        backfill_strategy=strategy,
        name=f"ticks_{strategy}",
    )


def _run(assets: dg.AssetsDefinition, flyte) -> tuple[dict, dg.Failure]:
    """The materializations by partition and the step's failure data."""
    result = dg.materialize([assets], resources={"flyte": flyte}, tags=RANGE, raise_on_error=False)
    materialized = {
        event.materialization.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    failures = [event for event in result.all_events if event.is_step_failure]
    return result, materialized, failures


def test_a_failed_tick_of_a_flyte_backfill_keeps_the_partitions_that_succeeded(flyte, client):
    result, materialized, failures = _run(_ticks("flyte_backfill", fail_day=3), flyte)

    assert not result.success
    assert sorted(materialized) == ["2024-01-01", "2024-01-02"]
    (failure,) = failures
    data = failure.step_failure_data.user_failure_data
    backfill = client.sync(client.fetch_execution(data.metadata["flyte/execution_id"].value))
    assert backfill.phase_name == "FAILED"
    child = {node.node_id: node.child_execution for node in backfill.node_executions.values()}
    assert data.description.startswith(
        f"Flyte backfill {backfill.id} ended FAILED ({client.console_url(backfill)}): 2 of 4 "
        "partitions did not succeed; the 2 that succeeded are materialized (2024-01-01, "
        "2024-01-02). Not succeeded: partition 2024-01-03 "
    )
    assert (
        f"partition 2024-01-03 (tick 2024-01-03T00:00:00+00:00): Flyte execution {child['n2'].id} "
        "ended FAILED: "
    ) in data.description
    assert "tick 2024-01-03 fails on purpose" in data.description
    assert "partition 2024-01-04 (tick 2024-01-04T00:00:00+00:00): not run" in data.description
    failed = data.metadata["flyte/failed_partitions"].value
    assert failed["2024-01-03"]["execution_id"] == str(child["n2"].id)
    assert sorted(failed) == ["2024-01-03", "2024-01-04"]
    for partition, node in (("2024-01-01", "n0"), ("2024-01-02", "n1")):
        metadata = materialized[partition]
        assert metadata["flyte/execution_id"].value == str(backfill.id)
        assert metadata["flyte/tick_execution_id"].value == str(child[node].id)
        assert metadata["flyte/backfill_node"].value == node
        assert client.fetch_outputs(child[node]) == {"o0": f"tick {partition}"}


def test_a_failed_partition_of_a_per_partition_range_keeps_the_others(flyte, client):
    result, materialized, failures = _run(_ticks("per_partition", fail_day=3), flyte)

    assert not result.success
    assert sorted(materialized) == ["2024-01-01", "2024-01-02", "2024-01-04"]
    for partition, metadata in materialized.items():
        assert metadata["flyte/output_preview"].value == f"tick {partition}"
        execution = client.fetch_execution(metadata["flyte/execution_id"].value)
        assert execution.phase_name == "SUCCEEDED"
    (failure,) = failures
    data = failure.step_failure_data.user_failure_data
    failed = data.metadata["flyte/failed_partitions"].value
    assert sorted(failed) == ["2024-01-03"]
    execution_id = failed["2024-01-03"]["execution_id"]
    assert data.description.startswith(
        "1 of 4 partitions failed; the 3 that succeeded are materialized (2024-01-01, "
        f"2024-01-02, 2024-01-04). Failed: partition 2024-01-03: Flyte execution {execution_id} "
        "ended FAILED: "
    )
    assert "tick 2024-01-03 fails on purpose" in data.description


def test_each_partition_of_a_flyte_backfill_names_its_tick(flyte, client):
    result, materialized, failures = _run(_ticks("flyte_backfill"), flyte)

    assert result.success and not failures
    assert sorted(materialized) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    for index, (partition, metadata) in enumerate(sorted(materialized.items())):
        assert metadata["flyte/backfill_tick"].value == f"{partition}T00:00:00+00:00"
        assert metadata["flyte/backfill_node"].value == f"n{index}"
    backfill = client.sync(
        client.fetch_execution(materialized["2024-01-02"]["flyte/execution_id"].value)
    )
    node = backfill.node_executions[materialized["2024-01-02"]["flyte/backfill_node"].value]
    assert client.fetch_outputs(node.child_execution) == {"o0": "tick 2024-01-02"}


def test_a_retry_of_a_failed_flyte_backfill_recovers_it_reusing_the_ticks_that_succeeded(
    flyte, client
):
    assets = build_flyte_assets_definition(
        TICKS,
        inputs={"fail_day": 3},
        partitions_def=DAYS,
        backfill_strategy="flyte_backfill",
        name="ticks_retried",
        retry_policy=dg.RetryPolicy(max_retries=1),
    )
    result, materialized, failures = _run(assets, flyte)

    assert not result.success
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1
    first, retry = (
        client.sync(
            client.fetch_execution(
                client.step_execution_name(
                    "dagster", result.run_id, "ticks_retried", "backfill", generation=generation
                )
            )
        )
        for generation in (0, 1)
    )
    assert first.phase_name == retry.phase_name == "FAILED"
    phases = {node.node_id: node.phase.name for node in retry.node_executions.values()}
    assert phases["n0"] == phases["n1"] == "RECOVERED"
    assert phases["n2"] == "FAILED"
    # Each try's failure names the partitions that succeeded as materialized.
    assert len(failures) == 1
    description = failures[0].step_failure_data.user_failure_data.description
    assert description.startswith(f"Flyte backfill {retry.id} ended FAILED")
    assert "the 2 that succeeded are materialized (2024-01-01, 2024-01-02)" in description
    assert sorted(materialized) == ["2024-01-01", "2024-01-02"]


def test_a_flyte_backfill_whose_schedule_misses_the_partitions_fails_before_launching(
    flyte, client
):
    # The props' cron is stale: Flyte's tick_lp ticks at midnight, the partitions start at 6.
    stale = FlyteLaunchPlanProps(
        name="tick_lp",
        outputs={"o0": "STRING"},
        kickoff_time_input="kickoff",
        cron_schedule="0 6 * * *",
    )
    assets = build_flyte_assets_definition(
        stale,
        partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6),
        backfill_strategy="flyte_backfill",
        name="ticks_stale_cron",
    )
    backfills_before = _backfills_of_tick_lp(client)

    result, materialized, failures = _run(assets, flyte)

    assert not result.success and materialized == {}
    message = failures[0].step_failure_data.user_failure_data.description
    assert "its schedule ticks (2024-01-02T00:00:00+00:00" in message
    assert "4 partition(s) without a tick, such as ['2024-01-01', '2024-01-02'," in message
    assert "backfill_strategy='per_partition'" in message
    assert _backfills_of_tick_lp(client) == backfills_before, "nothing was launched"


def _backfills_of_tick_lp(client) -> int:
    from flyte_bridge.filters import Filter

    return sum(
        1 for _ in client.list_executions(filters=Filter.contains("launch_plan.name", "tick_lp"))
    )
