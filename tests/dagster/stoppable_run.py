"""Runs the long sleep from Dagster in this process, to be stopped with SIGINT by a test.

Usage: ``python stoppable_run.py <endpoint> asset|op``: materializes the long-sleep asset, or
runs a job of the launch op; the run is stored in ``$DAGSTER_HOME``.
"""

import sys

import dagster as dg

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteResource,
    build_flyte_assets_definition,
    launch_flyte_execution,
)

LONG_SLEEP = FlyteLaunchPlanProps(name="long_sleep.long_sleep_wf", outputs={"o0": "STRING"})


def main(endpoint: str, kind: str) -> None:
    flyte = FlyteResource(
        endpoint=endpoint,
        insecure=True,
        default_project="flytesnacks",
        default_domain="development",
        poll_interval=0.2,
    )
    with dg.DagsterInstance.get() as instance:
        if kind == "asset":
            sleeper = build_flyte_assets_definition(LONG_SLEEP, inputs={"seconds": 600})
            dg.materialize(
                [sleeper], resources={"flyte": flyte}, instance=instance, raise_on_error=False
            )
            return

        @dg.job
        def sleep_job():
            launch_flyte_execution()

        sleep_job.execute_in_process(
            resources={"flyte": flyte},
            instance=instance,
            raise_on_error=False,
            run_config={
                "ops": {
                    "launch_flyte_execution": {
                        "config": {"launch_plan": LONG_SLEEP.name, "inputs": {"seconds": 600}}
                    }
                }
            },
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
