"""Datetime and duration values given as text through op config and component YAML, which hold
no such values, reach Flyte as the declared types; Python values in code keep working."""

import datetime as dt

import dagster as dg
import pytest
from dagster.components.testing import create_defs_folder_sandbox

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteLaunchPlansComponent,
    build_flyte_assets_definition,
    launch_flyte_execution,
    set_flyte_input,
    wait_for_flyte_execution,
)

pytestmark = pytest.mark.slow

UTC = dt.timezone.utc
WINDOW = "dagster_checks.window_wf"


def test_the_launch_op_reads_datetime_and_duration_text_from_config(flyte, client, dagster_checks):
    @dg.job
    def launch():
        launch_flyte_execution()

    result = launch.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {
                "launch_flyte_execution": {
                    "config": {
                        "launch_plan": WINDOW,
                        "inputs": {"start": "2024-01-01T00:00:00Z", "length": "PT1H30M"},
                    }
                }
            }
        },
    )

    execution = client.fetch_execution(result.output_for_node("launch_flyte_execution"))
    assert client.fetch_inputs(execution) == {
        "start": dt.datetime(2024, 1, 1, tzinfo=UTC),
        "length": dt.timedelta(hours=1, minutes=30),
    }
    assert client.fetch_outputs(execution) == {"o0": "2024-01-01T00:00:00+00:00 for 5400s"}


def test_set_flyte_input_reads_a_datetime_gate_value_from_config(flyte, client, dagster_checks):
    @dg.job
    def gated():
        wait_for_flyte_execution(set_flyte_input(launch_flyte_execution()))

    result = gated.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {
                "launch_flyte_execution": {
                    "config": {"launch_plan": "dagster_checks.datetime_gate_wf", "wait": False}
                },
                "set_flyte_input": {
                    "config": {
                        "signal_id": "not_before",
                        "value": "2024-03-04T05:06:00+00:00",
                        "wait_for_gate": 120,
                    }
                },
            }
        },
    )

    assert result.success
    execution = client.fetch_execution(result.output_for_node("wait_for_flyte_execution"))
    assert client.fetch_outputs(execution) == {"o0": "2024-03-04T05:06:00+00:00 for 0s"}


@pytest.mark.parametrize("length", ["PT1M30S", "90", '"90"'])
def test_component_yaml_inputs_are_read_as_their_declared_types(
    flyte, client, dagster_checks, length
):
    # Written as a user writes the file: Dagster's YAML loader keeps the timestamp as text. A
    # number of seconds is a number even quoted (the component renders every string as a
    # template with native types), which a duration takes as seconds.
    defs_yaml = f"""
type: dagster_resources.FlyteLaunchPlansComponent
attributes:
  launch_plans:
    - name: dagster_checks.window_wf
      outputs: {{o0: STRING}}
      inputs:
        start: 2024-01-01T00:00:00Z
        length: {length}
"""
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(component_cls=FlyteLaunchPlansComponent)
        (defs_path / "defs.yaml").write_text(defs_yaml)
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            (assets,) = defs.assets
            result = dg.materialize([assets], resources={"flyte": flyte})

    (event,) = result.get_asset_materialization_events()
    execution = client.fetch_execution(event.materialization.metadata["flyte/execution_id"].value)
    assert client.fetch_inputs(execution) == {
        "start": dt.datetime(2024, 1, 1, tzinfo=UTC),
        "length": dt.timedelta(seconds=90),
    }


def test_python_values_of_assets_in_code_are_passed_as_they_are(flyte, client, dagster_checks):
    window = build_flyte_assets_definition(
        FlyteLaunchPlanProps(name=WINDOW, outputs={"o0": "STRING"}),
        inputs={"start": dt.datetime(2024, 2, 1, 12, tzinfo=UTC), "length": dt.timedelta(0)},
    )

    result = dg.materialize([window], resources={"flyte": flyte})

    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["flyte/output_preview"].value == (
        "2024-02-01T12:00:00+00:00 for 0s"
    )


def test_text_for_a_datetime_in_python_assets_is_still_refused(flyte):
    window = build_flyte_assets_definition(
        FlyteLaunchPlanProps(name=WINDOW, outputs={"o0": "STRING"}),
        inputs={"start": "2024-02-01"},
        name="window_text_in_code",
    )

    result = dg.materialize([window], resources={"flyte": flyte}, raise_on_error=False)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "expected DATETIME, got str" in failure.step_failure_data.error.to_string()
