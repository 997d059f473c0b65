"""The example DAGs, end to end with ``dag.test()`` against the sandbox over real gRPC."""

import pytest

from flyte_bridge.naming import execution_name

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dag_id", ["flyte_daily_report", "flyte_daily_report_sync"])
def test_the_example_dag_runs_every_flyte_step(
    dag_id, airflow_db, flyte_connection, flyte_examples, flyte_client
):
    import flyte_daily_report

    run = getattr(flyte_daily_report, dag_id).test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states

    def execution_of(task_id):
        return flyte_client.fetch_execution(execution_name(dag_id, task_id, run.run_id, -1))

    report = execution_of("launch_daily_report")
    assert report.phase_name == "SUCCEEDED"
    assert flyte_client.fetch_outputs(report)["o0"].startswith("report eu ")
    assert report.labels["airflow-dag"] == dag_id
    assert execution_of("launch_release").phase_name == "SUCCEEDED"
    assert flyte_client.fetch_outputs(execution_of("launch_release")) == {"o0": "release 2 at 25%"}
    backfill = execution_of("backfill_week")
    assert backfill.phase_name == "SUCCEEDED"
    assert backfill.labels["airflow-dag"] == dag_id
    assert len(flyte_client.sync(backfill).node_executions) == 7  # a week of daily ticks
    long_run = execution_of("launch_long_run")
    assert long_run.phase_name == "ABORTED"
    assert "stopped by the example DAG" in long_run.error.message
