"""A Dagster re-execution of a run (a new run id, the same root run) finds the Flyte executions
its parent run launched, as a retry of the step does, instead of launching a second one.

``dg.execute_job`` re-executes only reconstructable jobs, so the definitions live at module level
and read the sandbox's endpoint from ``FLYTE_BRIDGE_TEST_ENDPOINT``."""

import dagster as dg
import pytest

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteResource,
    flyte_assets,
    launch_flyte_execution,
)

pytestmark = pytest.mark.slow

ENDPOINT_VARIABLE = "FLYTE_BRIDGE_TEST_ENDPOINT"
LONG_SLEEP = FlyteLaunchPlanProps(name="long_sleep.long_sleep_wf", outputs={"o0": "STRING"})

RESOURCE = FlyteResource(
    endpoint=dg.EnvVar(ENDPOINT_VARIABLE),
    insecure=True,
    default_project="flytesnacks",
    default_domain="development",
    poll_interval=0.2,
    wait_timeout=240,
)


@flyte_assets(launch_plan=LONG_SLEEP, name="sleep_reexecuted")
def sleep_reexecuted(context: dg.AssetExecutionContext, flyte: FlyteResource):
    if context.run.parent_run_id is None:
        # The first run launches the step's execution, as materialize does, and is then lost
        # (its process killed, Flyte unreachable for longer than the wait) while it goes on.
        client = flyte.get_client()
        name = client.step_execution_name(
            "dagster", context.run.run_id, context.op_execution_context.op.name, None
        )
        client.launch(LONG_SLEEP.name, inputs={"seconds": 2}, name=name)
        raise RuntimeError("the first run was lost")
    yield from flyte.materialize(context, inputs={"seconds": 2})


@dg.op
def fails_in_the_first_run(context: dg.OpExecutionContext, execution_id: str) -> str:
    if context.run.parent_run_id is None:
        raise RuntimeError("fails in the first run only")
    return execution_id


@dg.job(
    executor_def=dg.in_process_executor,
    config={
        "ops": {
            "launch_flyte_execution": {
                "config": {"launch_plan": "hello.hello_wf", "inputs": {"name": "again"}}
            }
        }
    },
)
def launch_then_fail():
    fails_in_the_first_run(launch_flyte_execution())


def asset_job() -> dg.JobDefinition:
    return dg.Definitions(
        assets=[sleep_reexecuted],
        jobs=[
            dg.define_asset_job(
                "sleep_job", selection=[sleep_reexecuted], executor_def=dg.in_process_executor
            )
        ],
        resources={"flyte": RESOURCE},
    ).resolve_job_def("sleep_job")


def op_job() -> dg.JobDefinition:
    return dg.Definitions(jobs=[launch_then_fail], resources={"flyte": RESOURCE}).resolve_job_def(
        "launch_then_fail"
    )


@pytest.fixture
def endpoint(flyte, monkeypatch) -> str:
    monkeypatch.setenv(ENDPOINT_VARIABLE, flyte.endpoint)
    return flyte.endpoint


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [event.user_message for event in instance.all_logs(run_id)]


def test_reexecuting_an_asset_from_failure_follows_the_execution_of_the_parent_run(
    endpoint, client
):
    with dg.instance_for_test() as instance:
        job = dg.reconstructable(asset_job)
        first = dg.execute_job(job, instance=instance)
        assert not first.success
        again = dg.execute_job(
            job,
            instance=instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance),
        )
        assert again.success
        (event,) = again.get_asset_materialization_events()
        messages = _messages(instance, again.run_id)

    earlier = client.fetch_execution(
        client.step_execution_name("dagster", first.run_id, "sleep_reexecuted", None)
    )
    assert event.materialization.metadata["flyte/execution_id"].value == str(earlier.id)
    assert not any(m.startswith("Launched Flyte execution") for m in messages)


def test_reexecuting_a_launch_op_reports_the_execution_of_the_parent_run(endpoint, client):
    with dg.instance_for_test() as instance:
        job = dg.reconstructable(op_job)
        with dg.execute_job(job, instance=instance) as first:
            assert not first.success
            launched = first.output_for_node("launch_flyte_execution")
        options = dg.ReexecutionOptions(
            parent_run_id=first.run_id, step_selection=["launch_flyte_execution*"]
        )
        with dg.execute_job(job, instance=instance, reexecution_options=options) as again:
            assert again.success
            assert again.output_for_node("launch_flyte_execution") == launched
        messages = _messages(instance, again.run_id)

    assert any(m.startswith(f"Found Flyte execution {launched}") for m in messages)
    assert not any(m.startswith("Launched Flyte execution") for m in messages)
