"""Dagster definitions over the example Flyte workflows in ``examples/flyte``.

Load them with ``dagster dev -f examples/dagster/definitions.py`` (or check them with
``dagster definitions validate -f examples/dagster/definitions.py``). Flyte is reached through
the flytekit config (``FLYTECTL_CONFIG``, ``~/.flyte/config.yaml``...), e.g. the one
``flyte-bridge sandbox start`` prints. Nothing here calls Flyte while loading: the launch plans'
outputs are written down.

- ``hello``: one asset from ``hello.hello_wf``.
- ``daily_report``: a daily-partitioned asset; each partition's start is the launch plan's
  kickoff time, and a backfill over many days is one Flyte backfill.
- ``flyte_yaml/...``: the same kind of assets declared in YAML (``flyte_example_defs``).
- ``release_job``: ops that launch ``approvals.approval_wf``, approve its gate, set its input
  and wait.
- a sensor reporting runs of ``hello.hello_wf`` and ``daily_report`` started outside Dagster,
  the latter for the partition of its kickoff time.
"""

import importlib
import sys
from pathlib import Path

import dagster as dg

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteResource,
    approve_flyte_gate,
    build_flyte_execution_sensor,
    flyte_assets,
    launch_flyte_execution,
    set_flyte_input,
    wait_for_flyte_execution,
)

HELLO = FlyteLaunchPlanProps(
    name="hello.hello_wf",
    outputs={"o0": "STRING"},
    description="Greets someone.",
)
DAILY_REPORT = FlyteLaunchPlanProps(
    name="daily_report",
    outputs={"o0": "STRING"},
    description="The daily report line.",
    kickoff_time_input="kickoff_time",
    cron_schedule="0 6 * * *",
)

DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6)

flyte = FlyteResource.from_flytekit_config(
    default_project="flytesnacks", default_domain="development", poll_interval=1.0
)


@flyte_assets(launch_plan=HELLO)
def hello(context: dg.AssetExecutionContext, flyte: FlyteResource):
    """Launches hello.hello_wf for Dagster and reports its greeting."""
    yield from flyte.materialize(context, inputs={"name": "Dagster"})


@flyte_assets(
    launch_plan=DAILY_REPORT,
    partitions_def=DAILY_PARTITIONS,
    backfill_strategy="flyte_backfill",
)
def daily_report(context: dg.AssetExecutionContext, flyte: FlyteResource):
    """One report per day; the partition's start is the kickoff time."""
    yield from flyte.materialize(context)


RELEASE_RUN_CONFIG = {
    "ops": {
        "launch_flyte_execution": {
            "config": {
                "launch_plan": "approvals.approval_wf",
                "inputs": {"version": 1},
                "wait": False,
            }
        },
        "approve_flyte_gate": {"config": {"signal_id": "review", "wait_for_gate": 120}},
        "set_flyte_input": {
            "config": {"signal_id": "rollout_percent", "value": 25.0, "wait_for_gate": 120}
        },
    }
}


@dg.job(config=RELEASE_RUN_CONFIG)
def release_job():
    """Launches the approval pipeline, approves the review, sets the rollout and waits."""
    launched = launch_flyte_execution()
    approved = approve_flyte_gate(launched)
    wait_for_flyte_execution(set_flyte_input(approved))


# The assets' partitions: an outside daily_report run is reported for the partition of its
# kickoff time (and skipped, with a log line, when that is not one of the partitions).
outside_runs = build_flyte_execution_sensor(
    flyte=flyte,
    launch_plans=[HELLO, DAILY_REPORT],
    partitions_def={"daily_report": DAILY_PARTITIONS},
    minimum_interval_seconds=30,
)


def _component_defs() -> dg.Definitions:
    """The YAML components in ``flyte_example_defs``, loaded as a package next to this file.

    The tree is built from the module rather than from dg.toml: the code location name there
    is for the ``dg`` CLI, and ``dagster ... -f definitions.py`` names the location after the
    file, which would make Dagster warn that the two differ.
    """
    here = Path(__file__).resolve().parent
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    defs_module = importlib.import_module("flyte_example_defs")
    return dg.ComponentTree.from_module(defs_module=defs_module, project_root=here).build_defs()


defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[hello, daily_report],
        jobs=[release_job],
        sensors=[outside_runs],
        resources={"flyte": flyte},
    ),
    _component_defs(),
)
