"""Errors a retry cannot fix (a misspelt input, a launch plan, gate or execution that does not
exist, wrong connection extras, a connection that is not defined) fail the task on its first try
whatever its retries; transient ones (an unreachable endpoint) keep Airflow's retries."""

import json

import pytest

pytestmark = pytest.mark.slow


def connection(port: int, **extra) -> str:
    extra = {"insecure": True, "project": "flytesnacks", "domain": "development", **extra}
    return json.dumps({"conn_type": "flyte", "host": "127.0.0.1", "port": port, "extra": extra})


@pytest.fixture(scope="module")
def permanent_errors_run(airflow_db, flyte_connection, flyte_examples, flyte_sandbox):
    import flyte_test_dags

    sandbox_port = int(flyte_sandbox.endpoint.rsplit(":", 1)[1])
    with pytest.MonkeyPatch.context() as env:
        env.setenv(
            f"AIRFLOW_CONN_{flyte_test_dags.UNREACHABLE_CONNECTION.upper()}",
            connection(9, rpc_timeout=1, max_retries=0),
        )
        env.setenv(
            f"AIRFLOW_CONN_{flyte_test_dags.BAD_EXTRAS_CONNECTION.upper()}",
            connection(sandbox_port, rpc_timeout="abc"),
        )
        flyte_test_dags.FAILURES.clear()
        run = flyte_test_dags.permanent_errors.test()
    # The failure callback runs once, when the task fails for good: try 1 means no retry.
    tries = {}
    for task_id, try_number, reason in flyte_test_dags.FAILURES:
        tries.setdefault(task_id, {})[try_number] = reason
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run, states, tries


@pytest.mark.parametrize(
    ("task_id", "error", "detail"),
    [
        ("misspelt_input", "FlyteInvalidInputError", "nmae"),
        ("inputs_not_a_mapping", "FlyteInvalidInputError", "must be a mapping"),
        ("missing_launch_plan", "FlyteNotFoundError", "no_such_wf"),
        ("missing_gate", "FlyteNotFoundError", "no_such_gate"),
        ("missing_execution", "FlyteNotFoundError", "no-such-execution"),
        ("bad_extras", "FlyteConfigError", "extra 'rpc_timeout' must be a positive number"),
        *[
            (task_id, "FlyteConnectionNotFoundError", "connection 'flyte_nosuch_conn' is not")
            for task_id in (
                "missing_conn_launch",
                "missing_conn_backfill",
                "missing_conn_signal",
                "missing_conn_terminate",
                "missing_conn_sensor",
                "missing_conn_sensor_deferred",
            )
        ],
    ],
)
def test_a_permanent_error_fails_the_task_on_its_first_try(
    permanent_errors_run, task_id, error, detail
):
    _, states, tries = permanent_errors_run

    assert states[task_id] == "failed"
    assert list(tries[task_id]) == [1], tries[task_id]
    assert tries[task_id][1].startswith(f"{error}: ")
    assert detail in tries[task_id][1]


@pytest.mark.parametrize(
    "task_id", ["never_pushed_sensor", "never_pushed_signal", "never_pushed_terminate"]
)
def test_an_execution_template_of_an_xcom_never_pushed_fails_at_once_naming_the_field(
    permanent_errors_run, task_id
):
    _, states, tries = permanent_errors_run

    assert states[task_id] == "failed"
    assert list(tries[task_id]) == [1], tries[task_id]
    reason = tries[task_id][1]
    assert "field 'execution'" in reason
    assert "task_ids='launch_relaese'" in reason  # the template, as written in the DAG
    assert "rendered to 'None'" in reason
    assert "XCom that was never pushed" in reason
    assert "FlyteNotFoundError" not in reason


def test_a_transient_error_is_retried(permanent_errors_run):
    _, states, tries = permanent_errors_run

    assert states["unreachable"] == "failed"
    assert list(tries["unreachable"]) == [2]


def test_a_signal_to_a_missing_gate_sets_nothing_and_the_run_is_terminated_after(
    permanent_errors_run, xcoms, flyte_client
):
    run, states, _ = permanent_errors_run

    release = flyte_client.fetch_execution(xcoms(run, "launch_release")["execution_id"])

    assert states["stop_release"] == "success"
    assert release.phase_name == "ABORTED"
    signals = flyte_client.list_signals(release)
    assert "no_such_gate" not in {signal.signal_id for signal in signals}
    assert not any(signal.is_set for signal in signals)
