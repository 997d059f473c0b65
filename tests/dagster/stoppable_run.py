"""Runs a long Flyte wait from Dagster in this process, to be stopped with SIGINT by a test.

Usage: ``python stoppable_run.py <endpoint> asset|op|gate``: materializes the long-sleep asset;
runs a job of the launch op waiting on the long sleep; or runs a job that launches the approval
pipeline without waiting and then waits, in ``set_flyte_input``, for a gate that is never
reached (its ``review`` gate is never approved). The run is stored in ``$DAGSTER_HOME``.
"""

import sys

import dagster as dg

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteResource,
    build_flyte_assets_definition,
    launch_flyte_execution,
    set_flyte_input,
    wait_for_flyte_execution,
)

LONG_SLEEP = FlyteLaunchPlanProps(name="long_sleep.long_sleep_wf", outputs={"o0": "STRING"})
GATE_WAIT_MESSAGE = "Waiting up to"
"""The start of what ``set_flyte_input`` logs as it starts waiting for the gate."""


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
        if kind == "gate":

            @dg.job
            def gate_job():
                wait_for_flyte_execution(set_flyte_input(launch_flyte_execution()))

            gate_job.execute_in_process(
                resources={"flyte": flyte},
                instance=instance,
                raise_on_error=False,
                run_config={
                    "ops": {
                        "launch_flyte_execution": {
                            "config": {"launch_plan": "approvals.approval_wf", "wait": False}
                        },
                        "set_flyte_input": {
                            "config": {
                                "signal_id": "rollout_percent",
                                "value": 25.0,
                                "wait_for_gate": 600,
                            }
                        },
                    }
                },
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
