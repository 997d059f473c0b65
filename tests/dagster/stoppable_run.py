"""Materializes the long-sleep asset in this process, to be stopped with SIGINT by a test.

Usage: ``python stoppable_run.py <endpoint>``; the run is stored in ``$DAGSTER_HOME``.
"""

import sys

import dagster as dg

from dagster_resources import FlyteLaunchPlanProps, FlyteResource, build_flyte_assets_definition

LONG_SLEEP = FlyteLaunchPlanProps(name="long_sleep.long_sleep_wf", outputs={"o0": "STRING"})


def main(endpoint: str) -> None:
    flyte = FlyteResource(
        endpoint=endpoint,
        insecure=True,
        default_project="flytesnacks",
        default_domain="development",
        poll_interval=0.2,
    )
    sleeper = build_flyte_assets_definition(LONG_SLEEP, inputs={"seconds": 600})
    with dg.DagsterInstance.get() as instance:
        dg.materialize(
            [sleeper], resources={"flyte": flyte}, instance=instance, raise_on_error=False
        )


if __name__ == "__main__":
    main(sys.argv[1])
