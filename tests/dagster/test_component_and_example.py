"""The YAML component and the example definitions against the sandbox."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from dagster_resources import FlyteLaunchPlansComponent

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "dagster" / "definitions.py"


def test_component_reads_outputs_from_flyte_and_materializes(flyte_sandbox, flyte_examples):
    attributes = {
        "flyte": {
            "endpoint": flyte_sandbox.endpoint,
            "insecure": True,
            "default_project": "flytesnacks",
            "default_domain": "development",
            "poll_interval": 0.2,
        },
        "launch_plans": [{"name": "hello.hello_wf", "inputs": {"name": "YAML"}}],
    }
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(component_cls=FlyteLaunchPlansComponent)
        (defs_path / "defs.yaml").write_text(
            yaml.safe_dump(
                {"type": "dagster_resources.FlyteLaunchPlansComponent", "attributes": attributes}
            )
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            key = dg.AssetKey(["hello", "hello_wf", "o0"])
            result = dg.materialize([defs.resolve_assets_def(key)])

    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["flyte/output_preview"].value == "hello YAML"


def test_a_scaffolded_component_with_insecure_reaches_the_sandbox(flyte_sandbox, flyte_examples):
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent,
            scaffold_params={
                "endpoint": flyte_sandbox.endpoint,
                "insecure": True,
                "project": "flytesnacks",
                "launch_plans": ["hello.hello_wf"],
            },
        )
        scaffolded = yaml.safe_load((defs_path / "defs.yaml").read_text())
        assert scaffolded["attributes"]["flyte"]["insecure"] is True
        scaffolded["attributes"]["launch_plans"][0]["inputs"] = {"name": "scaffold"}
        (defs_path / "defs.yaml").write_text(yaml.safe_dump(scaffolded))
        # No outputs listed: loading reads them from the sandbox, over plaintext.
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            key = dg.AssetKey(["hello", "hello_wf", "o0"])
            result = dg.materialize([defs.resolve_assets_def(key)])

    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["flyte/output_preview"].value == "hello scaffold"


def test_example_definitions_validate(dagster_home):
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-f",
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        timeout=120,
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "All code locations passed validation" in output
    assert "does not match" not in output, "the code location names of dg.toml and -f differ"


def test_example_release_job_approves_the_gate_and_sets_the_input(flyte, client):
    import runpy

    example = runpy.run_path(str(EXAMPLE))
    job = example["release_job"]

    result = job.execute_in_process(resources={"flyte": flyte})

    assert result.success
    execution = client.fetch_execution(result.output_for_node("wait_for_flyte_execution"))
    assert client.fetch_outputs(execution) == {"o0": "release 2 at 25%"}


def test_resource_from_flytekit_config_reaches_the_sandbox(
    flyte_sandbox, flyte_sandbox_config, flyte_examples
):
    from dagster_resources import FlyteResource

    resource = FlyteResource.from_flytekit_config(
        str(flyte_sandbox_config), default_project="flytesnacks", default_domain="development"
    )

    assert resource.get_client_config().endpoint == flyte_sandbox.endpoint
    assert resource.load_launch_plan_props(["daily_report"])[0].kickoff_time_input == (
        "kickoff_time"
    )


def test_example_sensor_reports_daily_report_runs_for_their_partition_only(
    flyte_sandbox_config, flyte_examples, client, monkeypatch
):
    import datetime as dt
    import runpy

    # The example's resource reads the flytekit config, here the sandbox's.
    monkeypatch.delenv("_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE", raising=False)
    monkeypatch.setenv("FLYTECTL_CONFIG", str(flyte_sandbox_config))
    sensor = runpy.run_path(str(EXAMPLE))["outside_runs"]
    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        inside = client.launch(
            "daily_report",
            inputs={"kickoff_time": dt.datetime(2024, 3, 8, 6, tzinfo=dt.timezone.utc)},
        )
        before = client.launch(
            "daily_report",
            inputs={"kickoff_time": dt.datetime(2023, 6, 1, 6, tzinfo=dt.timezone.utc)},
        )
        for execution in (inside, before):
            client.wait(execution, timeout=120, poll_interval=0.2)
        second = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )

    ours = {str(inside.id), str(before.id)}
    reported = [
        (event.metadata["flyte/execution_id"].value, event.partition)
        for event in second.asset_events
        if event.metadata["flyte/execution_id"].value in ours
    ]
    assert reported == [(str(inside.id), "2024-03-08")]


def test_launch_plan_props_load_through_a_resource_whose_endpoint_is_an_env_var(
    flyte_sandbox, flyte_examples, monkeypatch
):
    import dagster as dg

    from dagster_resources import FlyteResource

    monkeypatch.setenv("MY_FLYTE_ENDPOINT", flyte_sandbox.endpoint)
    resource = FlyteResource(
        endpoint=dg.EnvVar("MY_FLYTE_ENDPOINT"),
        insecure=True,
        default_project="flytesnacks",
        default_domain="development",
    )

    props = resource.load_launch_plan_props(["daily_report"])

    assert props[0].kickoff_time_input == "kickoff_time"
    assert resource._client is None, "the resolved copy's client is closed, none kept here"
