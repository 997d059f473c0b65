"""The step-by-step ops against the sandbox (launch, signals and waiting run in the example job)."""

import dagster as dg
import pytest

from dagster_resources import backfill_flyte_launch_plan, terminate_flyte_execution

pytestmark = pytest.mark.slow


def test_terminate_op_aborts_a_running_execution(flyte, client):
    execution = client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 600})

    @dg.job
    def stop():
        terminate_flyte_execution()

    result = stop.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {"terminate_flyte_execution": {"config": {"execution_id": str(execution.id)}}}
        },
    )

    assert result.success
    stopped = client.wait(execution, timeout=60, poll_interval=0.2)
    assert stopped.phase_name == "ABORTED"


def test_backfill_op_dry_run_lists_the_schedule_ticks_without_launching(flyte):
    @dg.job
    def plan():
        backfill_flyte_launch_plan()

    result = plan.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {
                "backfill_flyte_launch_plan": {
                    "config": {
                        "launch_plan": "daily_report",
                        "start": "2024-01-01T00:00:00+00:00",
                        "end": "2024-01-03T23:00:00+00:00",
                        "dry_run": True,
                    }
                }
            }
        },
    )

    assert result.output_for_node("backfill_flyte_launch_plan") == ""
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    ticks = output.step_output_data.metadata["flyte/backfill_ticks"].value
    assert ticks == [
        "2024-01-01T06:00:00+00:00",
        "2024-01-02T06:00:00+00:00",
        "2024-01-03T06:00:00+00:00",
    ]
