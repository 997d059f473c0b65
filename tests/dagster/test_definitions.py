"""Definition-time behaviour: specs, strategies, cursor and component loading, no Flyte needed."""

import datetime as dt
import logging
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
    build_flyte_assets_definition,
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

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'0 0 \\* \\* \\*'.*'0 6"):
        flyte_assets(
            launch_plan=REPORT, partitions_def=midnight, backfill_strategy="flyte_backfill"
        )


def test_partitions_ticking_at_other_times_default_to_one_launch_per_partition(caplog):
    midnight = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    with caplog.at_level(logging.INFO, logger="dagster_resources.asset_decorator"):

        @flyte_assets(launch_plan=REPORT, partitions_def=midnight)
        def report(context: dg.AssetExecutionContext, flyte: FlyteResource):
            yield from flyte.materialize(context)

    assert report.backfill_policy == dg.BackfillPolicy.multi_run(1)
    (spec,) = report.specs
    assert spec.metadata["flyte/backfill_strategy"] == "per_partition"
    reason = spec.metadata["flyte/backfill_strategy_reason"]
    assert "'0 0 * * *'" in reason and "'0 6 * * *'" in reason
    assert reason in caplog.text


@pytest.mark.parametrize(
    ("partitions_cron", "schedule_cron"),
    [("@daily", "0 0 * * *"), ("0  6 * * *", "0 6 * * *"), ("0 6 * * mon-fri", "0 6 * * 1-5")],
)
def test_crons_that_name_the_same_times_allow_a_flyte_backfill(partitions_cron, schedule_cron):
    partitions = dg.TimeWindowPartitionsDefinition(
        cron_schedule=partitions_cron, start="2024-01-01", fmt="%Y-%m-%d"
    )
    scheduled = REPORT._replace(cron_schedule=schedule_cron)

    def body(context: dg.AssetExecutionContext, flyte: FlyteResource):
        yield from flyte.materialize(context)

    by_default = flyte_assets(launch_plan=scheduled, partitions_def=partitions)(body)
    explicit = flyte_assets(
        launch_plan=scheduled,
        partitions_def=partitions,
        backfill_strategy="flyte_backfill",
        name="explicit",
    )(body)

    for assets in (by_default, explicit):
        assert assets.backfill_policy == dg.BackfillPolicy.single_run()
        (spec,) = assets.specs
        assert "flyte/backfill_strategy_reason" not in spec.metadata


def test_partitions_in_a_time_zone_other_than_utc_do_not_tick_with_the_schedule():
    london = dg.DailyPartitionsDefinition(
        start_date="2024-01-01", hour_offset=6, timezone="Europe/London"
    )

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'Europe/London'.*in UTC"):
        flyte_assets(launch_plan=REPORT, partitions_def=london, backfill_strategy="flyte_backfill")

    @flyte_assets(launch_plan=REPORT, partitions_def=london)
    def default(context: dg.AssetExecutionContext, flyte: FlyteResource):
        yield from flyte.materialize(context)

    assert default.backfill_policy == dg.BackfillPolicy.multi_run(1)


def test_scheduled_launch_plan_with_matching_partitions_backfills_in_one_run():
    six_am = dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6)

    @flyte_assets(launch_plan=REPORT, partitions_def=six_am)
    def report(context: dg.AssetExecutionContext, flyte: FlyteResource):
        yield from flyte.materialize(context)

    assert report.backfill_policy == dg.BackfillPolicy.single_run()
    assert report.can_subset


def test_time_partitioned_assets_refuse_fixed_inputs_that_set_the_kickoff_time():
    six_am = dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6)

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'kickoff_time', its kickoff"):
        build_flyte_assets_definition(
            REPORT, inputs={"kickoff_time": "2024-01-01T06:00:00Z"}, partitions_def=six_am
        )


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
        self.pulled = 0
        """Executions the sensor took from the listing, as a client listing page by page
        lazily would fetch them."""

    def list_executions(self, project, domain, filters, sort):
        since = re.search(r"gte\(execution_updated_at,([^)]+)\)", str(filters)).group(1)
        start = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        for execution in self.executions:
            if execution.updated_at >= start:
                self.pulled += 1
                yield execution

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
    sensor = build_flyte_execution_sensor(
        flyte=flyte, launch_plans=[hello], tick_budget_seconds=1e-9
    )
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


def test_a_tick_whose_budget_is_spent_lists_no_further_than_it_reported():
    listing = _ListingClient()
    flyte = FlyteResource(
        endpoint="127.0.0.1:1", default_project="flytesnacks", default_domain="development"
    )
    flyte._client = listing
    hello = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
    sensor = build_flyte_execution_sensor(
        flyte=flyte, launch_plans=[hello], tick_budget_seconds=1e-9
    )
    backlog = 50
    with dg.instance_for_test() as instance:
        cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
        listing.executions = [
            _succeeded(f"e{i}", soon + dt.timedelta(seconds=i)) for i in range(backlog)
        ]
        pulled, reported = [], []
        for _ in range(3):
            listing.pulled = 0
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
            cursor = result.cursor
            pulled.append(listing.pulled)
            reported += [
                event.metadata["flyte/execution_id"].value for event in result.asset_events
            ]

    assert reported == [f"flytesnacks/development/e{i}" for i in range(3)]
    # Each tick takes what it handled (and, from the second on, the one it re-reads in the
    # overlap), not the whole backlog.
    assert pulled == [1, 2, 3]


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ("o0", "must map each output name to its type"),
        (["o0"], "must map each output name to its type"),
        ({"o0": "NOTATYPE"}, "has type 'NOTATYPE'; expected a Flyte type"),
        ({"o0": 3}, "has type 3; expected a Flyte type"),
    ],
)
def test_malformed_outputs_are_refused_when_the_assets_are_defined(outputs, expected):
    props = FlyteLaunchPlanProps(name="hello.hello_wf", outputs=outputs)

    with pytest.raises(dg.DagsterInvalidDefinitionError, match=re.escape(expected)):
        flyte_assets(launch_plan=props)(lambda context, flyte: None)
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=re.escape(expected)):
        build_flyte_execution_sensor(flyte=FlyteResource(), launch_plans=[props])


@pytest.mark.parametrize(
    "type_text",
    ["STRING", "integer", "List[STRING]", "Dict[str, FLOAT]", "file<csv>", "STRUCT(Metrics)"],
)
def test_output_types_as_flyte_writes_them_are_accepted(type_text):
    props = FlyteLaunchPlanProps(name="pipes.train", outputs={"o0": type_text})

    (spec,) = [DagsterFlyteTranslator().get_asset_spec(p) for p in output_props(props)]

    assert spec.metadata["flyte/output_type"] == type_text


def test_the_component_refuses_an_unknown_output_type_when_it_loads():
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(component_cls=FlyteLaunchPlansComponent)
        (defs_path / "defs.yaml").write_text(
            yaml.safe_dump(
                {
                    "type": "dagster_resources.FlyteLaunchPlansComponent",
                    "attributes": {
                        "launch_plans": [{"name": "hello.hello_wf", "outputs": {"o0": "WORDS"}}]
                    },
                }
            )
        )
        with pytest.raises(Exception) as raised:
            with sandbox.load_component_and_build_defs(defs_path=defs_path):
                pass

    assert "has type 'WORDS'" in _messages(raised.value)


def _messages(error: BaseException | None) -> str:
    """The messages of an error and of what caused it, as a traceback shows them: Dagster wraps
    load errors in its own."""
    texts = []
    while error is not None:
        texts.append(str(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return "\n".join(texts)


def _component_resource(flyte_block: dict) -> FlyteResource:
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(component_cls=FlyteLaunchPlansComponent)
        attributes = {
            "flyte": flyte_block,
            "launch_plans": [{"name": "hello.hello_wf", "outputs": {"o0": "STRING"}}],
        }
        (defs_path / "defs.yaml").write_text(
            yaml.safe_dump(
                {"type": "dagster_resources.FlyteLaunchPlansComponent", "attributes": attributes}
            )
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            return defs.resources["flyte"]


def test_the_component_flyte_block_takes_every_field_of_the_resource():
    from dagster_resources.components.launch_plans_component import FlyteConnectionModel

    resource = _component_resource(
        {
            "endpoint": "127.0.0.1:1",
            "terminate_on_interrupt": False,
            "rpc_timeout": 2.5,
            "max_retries": 1,
        }
    )

    assert set(FlyteConnectionModel.model_fields) == set(FlyteResource.model_fields)
    assert resource.terminate_on_interrupt is False
    assert (resource.rpc_timeout, resource.max_retries) == (2.5, 1)
    assert resource.poll_interval == FlyteResource.model_fields["poll_interval"].default


@pytest.mark.parametrize(("field", "value"), [("poll_interval", -1), ("wait_timeout", -5)])
def test_the_component_refuses_bad_waiting_settings_when_it_loads(field, value):
    with pytest.raises(Exception) as raised:
        _component_resource({"endpoint": "127.0.0.1:1", field: value})

    assert f"{field}" in _messages(raised.value)
    assert "greater than 0" in _messages(raised.value)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("poll_interval", -1, "poll_interval: Input should be greater than 0 (Seconds between"),
        ("poll_interval", [1], "poll_interval: Input should be a valid number"),
        ("insecure", 5, "insecure: Input should be a valid boolean"),
        ("poll_intervl", 1, "poll_intervl is not a field of FlyteResource (did you mean "),
    ],
)
def test_one_bad_field_of_the_flyte_block_is_one_error_naming_it(field, value, expected):
    with pytest.raises(Exception) as raised:
        _component_resource({"endpoint": "127.0.0.1:1", field: value})

    messages = _messages(raised.value)
    assert f"the flyte block has a bad field: {expected}" in messages
    assert "validation error" not in messages


def test_every_bad_field_of_the_flyte_block_is_named_in_one_error():
    with pytest.raises(Exception) as raised:
        _component_resource({"poll_interval": 0, "wait_timeout": "soon"})

    assert "the flyte block has 2 bad fields: poll_interval: " in _messages(raised.value)
    assert "; wait_timeout: Input should be a valid number" in _messages(raised.value)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            {"endpoint": "flyte.example.com:443"},
            "FlyteResource sets client_secret but no auth_mode, and no mode follows from them",
        ),
        (
            {"endpoint": "127.0.0.1:1", "insecure": True, "client_id": "dagster"},
            "insecure=True would send credentials (auth mode client_credentials) over plaintext",
        ),
    ],
)
def test_fields_of_the_flyte_block_that_do_not_fit_together_are_one_located_error(
    monkeypatch, block, expected
):
    secret = "s3cr3t-of-the-test"
    monkeypatch.setenv("TEST_FLYTE_CLIENT_SECRET", secret)
    block = {**block, "client_secret": "{{ env.TEST_FLYTE_CLIENT_SECRET }}"}

    with pytest.raises(Exception) as raised:
        _component_resource(block)

    from dagster.components.resolved.errors import ResolutionException

    messages = _messages(raised.value)
    located = raised.value.__cause__
    assert isinstance(located, ResolutionException), messages  # not a bare ValidationError
    shown = str(located)  # the YAML location and excerpt, then the error
    assert f"the flyte block's fields do not fit together: {expected}" in shown
    assert "defs.yaml:" in shown and "attributes.flyte" in shown, shown
    assert "validation error" not in messages
    assert "Value error" not in messages
    assert secret not in messages


def _partitioned_component_defs(partitions: dict) -> dg.Definitions:
    """The definitions of a component whose one launch plan has ``partitions``, with a
    ``FlyteResource`` bound, checked as ``dagster definitions validate`` checks them."""
    attributes = {
        "launch_plans": [
            {
                "name": "tick_lp",
                "outputs": {"o0": "STRING"},
                "kickoff_time_input": "kickoff",
                "partitions": partitions,
            }
        ]
    }
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent, defs_yaml_contents=_component_yaml(attributes)
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            resource = dg.Definitions(resources={"flyte": FlyteResource()})
            merged = dg.Definitions.merge(defs, resource)
            dg.Definitions.validate_loadable(merged)
            return merged


@pytest.mark.parametrize(
    ("cron", "fmt", "first_key"),
    [
        ("0 * * * *", "%Y-%m-%d-%H:%M", "2024-01-01-00:00"),
        ("*/15 * * * *", "%Y-%m-%d-%H:%M", "2024-01-01-00:00"),
        ("0 6,18 * * *", "%Y-%m-%d-%H:%M", "2024-01-01-06:00"),
        ("0 6 * * *", "%Y-%m-%d", "2024-01-01"),
        ("@weekly", "%Y-%m-%d", "2024-01-07"),
    ],
)
def test_component_partitions_get_a_key_format_fine_enough_for_their_cron(cron, fmt, first_key):
    defs = _partitioned_component_defs({"cron_schedule": cron, "start": "2024-01-01"})

    (assets,) = defs.assets
    assert assets.partitions_def.fmt == fmt
    assert assets.partitions_def.get_first_partition_key() == first_key


def test_component_partitions_take_a_given_fmt_start_and_timezone():
    defs = _partitioned_component_defs(
        {
            "cron_schedule": "0 * * * *",
            "start": "2024-01-01T06:00:00+00:00",
            "fmt": "%Y%m%d%H",
            "timezone": "Europe/Paris",
        }
    )

    (assets,) = defs.assets
    partitions = assets.partitions_def
    assert (partitions.fmt, partitions.timezone) == ("%Y%m%d%H", "Europe/Paris")
    assert partitions.get_first_partition_key() == "2024010107"


def test_a_component_partitions_fmt_too_coarse_for_the_cron_is_refused_naming_it():
    with pytest.raises(Exception) as raised:
        _partitioned_component_defs(
            {"cron_schedule": "0 * * * *", "start": "2024-01-01", "fmt": "%Y-%m-%d"}
        )

    messages = _messages(raised.value)
    assert "attributes.launch_plans.0.partitions" in messages
    assert (
        "fmt '%Y-%m-%d' is not fine enough for cron_schedule '0 * * * *': the ticks "
        "2024-01-01T00:00:00+00:00 and 2024-01-01T01:00:00+00:00 both have the partition key "
        "'2024-01-01'; use '%Y-%m-%d-%H:%M' (or leave fmt out)"
    ) in messages


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        (
            {"cron_schedule": "0 * * * *", "start": "2024-01-01", "timezone": "Mars/Olympus"},
            "timezone 'Mars/Olympus' is not a time zone name",
        ),
        ({"cron_schedule": "hourly", "start": "2024-01-01"}, "cron_schedule 'hourly' is not"),
        (
            {"cron_schedule": "0 * * * *", "start": "1st of January"},
            "start '1st of January' is neither in the format '%Y-%m-%d-%H:%M' nor an ISO 8601",
        ),
    ],
)
def test_bad_component_partitions_are_refused_when_the_yaml_loads(partitions, expected):
    with pytest.raises(Exception) as raised:
        _partitioned_component_defs(partitions)

    messages = _messages(raised.value)
    assert "attributes.launch_plans.0.partitions" in messages
    assert expected in messages


def _component_yaml(attributes: dict) -> dict:
    return {"type": "dagster_resources.FlyteLaunchPlansComponent", "attributes": attributes}


def _hello_component(resource_key: str, key_prefix: str, flyte_block: dict | None) -> dict:
    attributes = {
        "resource_key": resource_key,
        "launch_plans": [{"name": "hello.hello_wf", "outputs": {"o0": "STRING"}}],
        "translation": {"key": key_prefix + "/{{ output }}"},
    }
    if flyte_block is not None:
        attributes["flyte"] = flyte_block
    return _component_yaml(attributes)


def test_a_launch_plan_without_outputs_needs_the_components_flyte_block():
    attributes = {"launch_plans": [{"name": "hello.hello_wf"}]}
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent, defs_yaml_contents=_component_yaml(attributes)
        )
        with pytest.raises(Exception) as raised:
            with sandbox.load_component_and_build_defs(defs_path=defs_path):
                pass

    assert (
        "Launch plan hello.hello_wf lists no outputs, so they are read from Flyte at load time, "
        "which needs the component's flyte block"
    ) in _messages(raised.value)


def test_two_components_binding_their_resource_under_one_key_do_not_load():
    same = {"endpoint": "127.0.0.1:1", "insecure": True}
    with create_defs_folder_sandbox() as sandbox:
        for prefix in ("one", "two"):
            sandbox.scaffold_component(
                component_cls=FlyteLaunchPlansComponent,
                defs_yaml_contents=_hello_component("flyte", prefix, same),
            )
        with pytest.raises(Exception) as raised:
            with sandbox.build_all_defs():
                pass

    assert "different resources with same key 'flyte'" in _messages(raised.value)


def test_one_launch_plan_in_two_components_collides_on_its_op_name():
    with create_defs_folder_sandbox() as sandbox:
        sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent,
            defs_yaml_contents=_hello_component("flyte_one", "one", {"endpoint": "127.0.0.1:1"}),
        )
        sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent,
            defs_yaml_contents=_hello_component("flyte_two", "two", {"endpoint": "127.0.0.1:2"}),
        )
        with sandbox.build_all_defs() as defs:
            with pytest.raises(dg.DagsterInvalidDefinitionError, match='name "hello_hello_wf"'):
                dg.Definitions.validate_loadable(defs)


def test_a_yaml_load_error_quotes_a_literal_secret_but_only_the_template_of_an_env_one(
    monkeypatch,
):
    monkeypatch.setenv("FLYTE_TEST_TOKEN", "env-token-value")
    with pytest.raises(Exception) as literal:
        _component_resource({"token": "literal-token-value", "poll_interval": -1})
    with pytest.raises(Exception) as templated:
        _component_resource({"token": "{{ env.FLYTE_TEST_TOKEN }}", "poll_interval": -1})

    assert "literal-token-value" in _messages(literal.value)
    assert "env-token-value" not in _messages(templated.value)
    assert "TEST_TOKEN }}" in _messages(templated.value)


def test_sensor_refuses_partitions_it_cannot_find_from_a_kickoff_time():
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="time-window partitions"):
        build_flyte_execution_sensor(
            flyte=FlyteResource(),
            launch_plans=[REPORT],
            partitions_def=dg.StaticPartitionsDefinition(["eu", "us"]),
        )


class _FlakyOutputsClient(_ListingClient):
    """Fails to read the outputs of ``a`` for a transient reason, ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def fetch_outputs(self, execution):
        from flyte_bridge.errors import FlyteTransientError

        if execution.id.name == "a" and self.failures:
            self.failures -= 1
            raise FlyteTransientError("admin is unavailable")
        return super().fetch_outputs(execution)


def _ticks(listing: _ListingClient, count: int) -> list[list[tuple[str, bool]]]:
    """What ``count`` ticks after the first report: (execution name, has a preview) each."""
    flyte = FlyteResource(
        endpoint="127.0.0.1:1", default_project="flytesnacks", default_domain="development"
    )
    flyte._client = listing
    hello = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
    sensor = build_flyte_execution_sensor(
        flyte=flyte, launch_plans=[hello], tick_budget_seconds=3600
    )
    with dg.instance_for_test() as instance:
        cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
        listing.executions = [
            _succeeded(name, soon + dt.timedelta(seconds=i)) for i, name in enumerate("ab")
        ]
        reported = []
        for _ in range(count):
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
            cursor = result.cursor
            reported.append(
                [
                    (
                        event.metadata["flyte/execution_id"].value.rsplit("/", 1)[-1],
                        "flyte/output_preview" in event.metadata,
                    )
                    for event in result.asset_events
                ]
            )
    return reported


def test_a_transient_failure_to_read_one_execution_is_tried_again_next_tick():
    assert _ticks(_FlakyOutputsClient(failures=1), 3) == [[], [("a", True), ("b", True)], []]


def test_an_execution_that_keeps_failing_is_reported_without_outputs_after_its_last_try():
    from dagster_resources.sensor_builder import TICKS_PER_EXECUTION

    reported = _ticks(_FlakyOutputsClient(failures=100), TICKS_PER_EXECUTION + 1)

    assert reported == [[]] * (TICKS_PER_EXECUTION - 1) + [[("a", False), ("b", True)], []]


class _FailingLinkClient(_ListingClient):
    """Fails once to build the console link of ``a`` with the given error."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error: Exception | None = error

    def console_url(self, execution):
        if execution.id.name == "a" and self.error is not None:
            error, self.error = self.error, None
            raise error
        return super().console_url(execution)


def test_a_server_error_reading_one_execution_is_tried_again_next_tick():
    from flyte_bridge.errors import FlyteServerError

    reported = _ticks(_FailingLinkClient(FlyteServerError("database is restarting")), 3)

    assert reported == [[], [("a", True), ("b", True)], []]


def test_a_permanent_error_reading_one_execution_skips_it_at_once():
    from flyte_bridge.errors import FlyteNotFoundError

    reported = _ticks(_FailingLinkClient(FlyteNotFoundError("gone")), 2)

    assert reported == [[("b", True)], []]


NO_KICKOFF = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
MIDNIGHTS = dg.DailyPartitionsDefinition(start_date="2024-01-01")


def test_time_partitions_without_a_kickoff_time_input_are_refused_by_the_builder():
    with pytest.raises(
        dg.DagsterInvalidDefinitionError,
        match="Launch plan hello.hello_wf has time partitions but no kickoff_time_input, so "
        "every partition would launch the same execution",
    ):
        build_flyte_assets_definition(NO_KICKOFF, partitions_def=MIDNIGHTS)
    with pytest.raises(
        dg.DagsterInvalidDefinitionError, match="'flyte_backfill' needs the kickoff_time_input"
    ):
        flyte_assets(
            launch_plan=NO_KICKOFF._replace(cron_schedule="0 0 * * *"),
            partitions_def=MIDNIGHTS,
            backfill_strategy="flyte_backfill",
        )(lambda context, flyte: None)
    # Other partitions are the function's to pass on; so they are for a builder.
    static = dg.StaticPartitionsDefinition(["eu", "us"])
    assert build_flyte_assets_definition(NO_KICKOFF, partitions_def=static).partitions_def


def test_time_partitions_without_a_kickoff_time_input_are_a_warning_on_the_decorator(caplog):
    with caplog.at_level(logging.WARNING):

        @flyte_assets(launch_plan=NO_KICKOFF, partitions_def=MIDNIGHTS)
        def passes_the_partition_itself(context: dg.AssetExecutionContext, flyte: FlyteResource):
            yield from flyte.materialize(context, inputs={"name": context.partition_key})

    assert any(
        "have time partitions but the launch plan props name no kickoff_time_input" in r.message
        for r in caplog.records
    )


def test_component_partitions_without_a_kickoff_time_input_fail_when_the_yaml_loads():
    attributes = {
        "launch_plans": [
            {
                "name": "tick_lp",
                "outputs": {"o0": "STRING"},
                "partitions": {"cron_schedule": "0 0 * * *", "start": "2024-01-01"},
            }
        ]
    }
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent, defs_yaml_contents=_component_yaml(attributes)
        )
        with pytest.raises(Exception) as raised:
            with sandbox.load_component_and_build_defs(defs_path=defs_path):
                pass

    assert "Launch plan tick_lp has time partitions but no kickoff_time_input" in _messages(
        raised.value
    )


def test_a_sensor_with_partitions_for_a_launch_plan_without_kickoff_time_input_is_refused():
    with pytest.raises(
        dg.DagsterInvalidDefinitionError,
        match="Launch plan hello.hello_wf has partitions in the sensor but its props name no "
        "kickoff_time_input",
    ):
        build_flyte_execution_sensor(
            flyte=FlyteResource(), launch_plans=[REPORT, NO_KICKOFF], partitions_def=MIDNIGHTS
        )
    assert build_flyte_execution_sensor(
        flyte=FlyteResource(),
        launch_plans=[REPORT, NO_KICKOFF],
        partitions_def={REPORT.name: MIDNIGHTS},
    )


def test_a_sensor_with_partitions_for_a_launch_plan_it_does_not_watch_names_it():
    with pytest.raises(
        dg.DagsterInvalidDefinitionError,
        match=r"partitions_def names launch plan 'daily_reprot', which is not one of the "
        r"sensor's launch_plans \(",
    ):
        build_flyte_execution_sensor(
            flyte=FlyteResource(), launch_plans=[REPORT], partitions_def={"daily_reprot": MIDNIGHTS}
        )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"overlap": -5}, "overlap must be 0 or more seconds"),
        ({"overlap": dt.timedelta(seconds=-1)}, "overlap must be 0 or more seconds"),
        ({"overlap": "30"}, "overlap must be a number of seconds or a datetime.timedelta"),
        ({"overlap": float("nan")}, "overlap must be a number of seconds"),
        ({"tick_budget_seconds": 0}, "tick_budget_seconds must be a positive number"),
        ({"tick_budget_seconds": -1.5}, "tick_budget_seconds must be a positive number"),
        ({"tick_budget_seconds": True}, "tick_budget_seconds must be a number of seconds"),
        ({"minimum_interval_seconds": -1}, "minimum_interval_seconds must be a whole number"),
        ({"minimum_interval_seconds": 2.5}, "minimum_interval_seconds must be a whole number"),
        ({"launch_plans": "hello.hello_wf"}, "launch_plans must be a list of FlyteLaunchPlanProps"),
        ({"launch_plans": ["hello.hello_wf"]}, "Expected FlyteLaunchPlanProps, got str"),
        ({"launch_plans": NO_KICKOFF}, "launch_plans must be a list of FlyteLaunchPlanProps"),
        ({"flyte": "flyte"}, "flyte must be a FlyteResource, got str"),
    ],
)
def test_bad_sensor_arguments_are_refused_when_the_sensor_is_defined(arguments, expected):
    given = {"flyte": FlyteResource(), "launch_plans": [NO_KICKOFF], **arguments}

    with pytest.raises(dg.DagsterInvalidDefinitionError, match=re.escape(expected)):
        build_flyte_execution_sensor(**given)


def test_a_sensor_overlap_may_be_a_number_of_seconds():
    listing = _ListingClient()
    flyte = FlyteResource(
        endpoint="127.0.0.1:1", default_project="flytesnacks", default_domain="development"
    )
    flyte._client = listing
    sensor = build_flyte_execution_sensor(flyte=flyte, launch_plans=[NO_KICKOFF], overlap=30)
    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        listing.executions = [_succeeded("late", dt.datetime.now(dt.timezone.utc))]
        second = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )

    assert [e.metadata["flyte/execution_id"].value for e in second.asset_events] == [
        "flytesnacks/development/late"
    ]
