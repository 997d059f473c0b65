"""The Dagster half of the main job: runs the Dagster example against Flyte, in one process.

``scripts/main_job.py`` starts this in a subprocess whose ``FLYTECTL_CONFIG`` points at the
sandbox (the example's resource reads the flytekit config). It materializes the example's
``daily_report`` asset for one day and for a week (one Flyte backfill), runs its
``release_job`` (approve the gate, set the input) and a job that launches the long sleep and
terminates it. Each step writes the Flyte execution it drove, as Dagster reported it, to the JSON
file given as the only argument; ``main_job.py`` reads the executions back from Flyte.

Before each step a line ``step <name>`` goes to standard output, for the progress display.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_resources import launch_flyte_execution, terminate_flyte_execution

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dagster" / "definitions.py"
DAY = "2026-01-07"
WEEK = ("2026-01-01", "2026-01-07")
STOP_CAUSE = "stopped by the main job's Dagster job"


@dg.job(
    config={
        "ops": {
            "launch_flyte_execution": {
                "config": {
                    "launch_plan": "long_sleep.long_sleep_wf",
                    "inputs": {"seconds": 600},
                    "wait": False,
                }
            },
            "terminate_flyte_execution": {"config": {"cause": STOP_CAUSE}},
        }
    }
)
def stop_long_run_job():
    """Launches the ten-minute sleep without waiting, then terminates it."""
    terminate_flyte_execution(launch_flyte_execution())


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The execution id and output preview of the first materialization of a run."""
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    preview = metadata.get("flyte/output_preview")
    return {
        "execution_id": metadata["flyte/execution_id"].value,
        "preview": preview.value if preview is not None else None,
        "dagster_run_id": result.run_id,
    }


def run_steps(example: dict[str, Any]) -> dict[str, Callable[[], dict[str, Any]]]:
    """The steps, in order, each returning what Dagster reported about its execution."""
    flyte = example["flyte"]
    daily_report = example["daily_report"]

    def daily() -> dict[str, Any]:
        result = dg.materialize([daily_report], resources={"flyte": flyte}, partition_key=DAY)
        return _materialized(result)

    def backfill() -> dict[str, Any]:
        result = dg.materialize(
            [daily_report],
            resources={"flyte": flyte},
            tags={
                "dagster/asset_partition_range_start": WEEK[0],
                "dagster/asset_partition_range_end": WEEK[1],
            },
        )
        return _materialized(result)

    def release() -> dict[str, Any]:
        result = example["release_job"].execute_in_process(resources={"flyte": flyte})
        return {
            "execution_id": result.output_for_node("wait_for_flyte_execution"),
            "dagster_run_id": result.run_id,
        }

    def stop() -> dict[str, Any]:
        result = stop_long_run_job.execute_in_process(resources={"flyte": flyte})
        return {
            "execution_id": result.output_for_node("launch_flyte_execution"),
            "phase_after_terminate": result.output_for_node("terminate_flyte_execution"),
            "dagster_run_id": result.run_id,
        }

    return {"daily_report": daily, "backfill": backfill, "release": release, "stop": stop}


def main(out: Path) -> int:
    """Runs every step, records each one's result or error in ``out``; 1 if any step failed."""
    example = runpy.run_path(str(EXAMPLE))
    results: dict[str, Any] = {}
    for name, step in run_steps(example).items():
        print(f"step {name}", flush=True)
        try:
            results[name] = step()
        except Exception as error:  # noqa: BLE001 - reported per step, the others still run
            traceback.print_exc()
            results[name] = {"error": f"{type(error).__name__}: {error}"}
        out.write_text(json.dumps(results, indent=2))
    return 1 if any("error" in result for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
