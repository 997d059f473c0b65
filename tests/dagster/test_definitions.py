"""Definition-time behaviour: specs, strategies, cursor and component loading, no Flyte needed."""

import datetime as dt
import re

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from dagster_resources import (
    DagsterFlyteTranslator,
    FlyteLaunchPlanProps,
    FlyteLaunchPlansComponent,
    FlyteResource,
    build_flyte_execution_sensor,
    flyte_assets,
)
from dagster_resources.sensor_builder import FlyteSensorCursor
from dagster_resources.translator import output_props

REPORT = FlyteLaunchPlanProps(
    name="daily_report.daily_report",
    outputs={"o0": "STRING"},
    kickoff_time_input="kickoff_time",
    cron_schedule="0 6 * * *",
)


def test_translator_makes_one_spec_per_output_keyed_by_launch_plan_and_output():
    props = FlyteLaunchPlanProps(name="pipes.train", outputs={"model": "File", "score": "FLOAT"})

    specs = [DagsterFlyteTranslator().get_asset_spec(p) for p in output_props(props)]

    assert [spec.key for spec in specs] == [
        dg.AssetKey(["pipes", "train", "model"]),
        dg.AssetKey(["pipes", "train", "score"]),
    ]
    assert specs[1].metadata["flyte/launch_plan"] == "pipes.train"
    assert specs[1].metadata["flyte/output"] == "score"
    assert specs[1].kinds == {"flyte"}


def test_flyte_backfill_refuses_partitions_that_tick_at_other_times_than_the_schedule():
    midnight = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="0 6"):
        flyte_assets(
            launch_plan=REPORT, partitions_def=midnight, backfill_strategy="flyte_backfill"
        )


def test_scheduled_launch_plan_with_matching_partitions_backfills_in_one_run():
    six_am = dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6)

    @flyte_assets(launch_plan=REPORT, partitions_def=six_am)
    def report(context: dg.AssetExecutionContext, flyte: FlyteResource):
        yield from flyte.materialize(context)

    assert report.backfill_policy == dg.BackfillPolicy.single_run()
    assert report.can_subset


def test_cursor_never_reports_an_execution_twice_inside_the_overlap():
    overlap = dt.timedelta(minutes=2)
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    cursor = FlyteSensorCursor()
    cursor.mark("flytesnacks/development/a", at, overlap)

    restored = FlyteSensorCursor.from_json(cursor.to_json())

    assert restored.query_start(overlap) == at - overlap
    assert not restored.is_new("flytesnacks/development/a")
    restored.mark("flytesnacks/development/b", at + dt.timedelta(minutes=5), overlap)
    assert restored.recent == {"flytesnacks/development/b": "2024-05-01T12:05:00+00:00"}


def test_unreadable_cursor_starts_over():
    assert FlyteSensorCursor.from_json("{not json") is None


def test_resource_never_shows_its_secret():
    resource = FlyteResource(
        endpoint="flyte.example.com:443", auth_mode="bearer", token="t0ps3cr3t"
    )

    config = resource.get_client_config()

    assert config.auth.token.reveal() == "t0ps3cr3t"
    assert "t0ps3cr3t" not in repr(config)


def test_a_secret_given_as_an_env_var_is_read_at_run_time_and_the_client_is_cached(monkeypatch):
    monkeypatch.setenv("FLYTE_TEST_TOKEN", "t0ps3cr3t")
    resource = FlyteResource(
        endpoint="flyte.example.com:443", auth_mode="bearer", token=dg.EnvVar("FLYTE_TEST_TOKEN")
    )
    seen = {}

    @dg.asset
    def probe(flyte: FlyteResource) -> None:
        seen["config"] = flyte.get_client_config()
        seen["same_client"] = flyte.get_client() is flyte.get_client()

    assert dg.materialize([probe], resources={"flyte": resource}).success

    assert seen["config"].auth.token.reveal() == "t0ps3cr3t"
    assert seen["same_client"]
    assert "t0ps3cr3t" not in repr(resource) + repr(seen["config"])


def test_component_loads_from_yaml_without_calling_flyte(tmp_path):
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent,
            scaffold_params={"endpoint": "127.0.0.1:1", "launch_plans": ["hello.hello_wf"]},
        )
        scaffolded = yaml.safe_load((defs_path / "defs.yaml").read_text())
        assert scaffolded["attributes"]["launch_plans"] == [{"name": "hello.hello_wf"}]

        scaffolded["attributes"]["launch_plans"][0]["outputs"] = {"o0": "STRING"}
        scaffolded["attributes"]["create_sensor"] = True
        scaffolded["attributes"]["translation"] = {"group_name": "greetings"}
        (defs_path / "defs.yaml").write_text(yaml.safe_dump(scaffolded))

        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert isinstance(component, FlyteLaunchPlansComponent)
            spec = defs.resolve_assets_def(dg.AssetKey(["hello", "hello_wf", "o0"])).specs
            (only,) = spec
            assert only.group_name == "greetings"
            assert [s.name for s in defs.sensors] == ["flyte_hello_wf__execution_sensor"]
            assert isinstance(defs.resources["flyte"], FlyteResource)


def test_component_type_is_registered_where_the_dg_cli_looks():
    from dagster.components.core.package_entry import discover_entry_point_package_objects

    registered = discover_entry_point_package_objects()

    assert any(
        key.namespace == "dagster_resources" and key.name == "FlyteLaunchPlansComponent"
        for key in registered
    )


class _ListingClient:
    """Answers the sensor's listing from a list, honouring the update-time filter."""

    def __init__(self) -> None:
        self.executions = []

    def list_executions(self, project, domain, filters, sort):
        since = re.search(r"gte\(execution_updated_at,([^)]+)\)", str(filters)).group(1)
        start = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        return [e for e in self.executions if e.updated_at >= start]

    def fetch_outputs(self, execution):
        return {"o0": f"output of {execution.id.name}"}

    def console_url(self, execution):
        return f"http://console.example/{execution.id.name}"


def _succeeded(name: str, updated_at: dt.datetime):
    from flyteidl.admin import execution_pb2
    from flyteidl.core import execution_pb2 as core_execution_pb2

    from flyte_bridge.models import Execution

    proto = execution_pb2.Execution()
    proto.id.project, proto.id.domain, proto.id.name = "flytesnacks", "development", name
    proto.spec.launch_plan.name = "hello.hello_wf"
    proto.closure.phase = core_execution_pb2.WorkflowExecution.SUCCEEDED
    proto.closure.updated_at.FromDatetime(updated_at)
    return Execution(proto=proto)


def test_a_spent_tick_budget_leaves_the_rest_to_the_next_tick():
    listing = _ListingClient()
    flyte = FlyteResource(
        endpoint="127.0.0.1:1", default_project="flytesnacks", default_domain="development"
    )
    flyte._client = listing
    hello = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
    sensor = build_flyte_execution_sensor(flyte=flyte, launch_plans=[hello], tick_budget_seconds=0)
    with dg.instance_for_test() as instance:
        cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
        listing.executions = [
            _succeeded(name, soon + dt.timedelta(seconds=i)) for i, name in enumerate("abc")
        ]
        reported = []
        for _ in range(4):
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
            cursor = result.cursor
            reported.append(
                [event.metadata["flyte/execution_id"].value for event in result.asset_events]
            )

    assert reported == [
        ["flytesnacks/development/a"],
        ["flytesnacks/development/b"],
        ["flytesnacks/development/c"],
        [],
    ]
