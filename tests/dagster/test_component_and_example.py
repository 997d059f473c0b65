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

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "All code locations passed validation" in completed.stdout + completed.stderr


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
