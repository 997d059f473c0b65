"""A failed, a rejected and an aborted Flyte run each fail their Airflow task with the reason;
a failed run is retried under the next deterministic name (pitfalls C01, C04)."""

import urllib.request

import pytest

from flyte_bridge.errors import FlyteNotFoundError
from flyte_bridge.naming import execution_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def failures_run(airflow_db, flyte_connection, flyte_examples):
    import flyte_test_dags

    flyte_test_dags.FAILURES.clear()
    run = flyte_test_dags.failures.test()
    reasons = {}
    for task_id, try_number, reason in flyte_test_dags.FAILURES:
        reasons.setdefault(task_id, {})[try_number] = reason
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run, states, reasons


def test_a_failed_run_fails_the_task_with_its_error_and_failed_node(failures_run):
    _, states, reasons = failures_run

    assert states["failing_launch"] == "failed"
    reason = reasons["failing_launch"][2]
    assert "ended FAILED" in reason
    assert "this task always fails" in reason
    assert "at node" in reason


def test_a_retry_after_a_failed_run_launches_exactly_one_new_generation(failures_run, flyte_client):
    run, _, _ = failures_run
    step = ("flyte_failures", "failing_launch", run.run_id, -1)

    first = flyte_client.fetch_execution(execution_name(*step))
    second = flyte_client.fetch_execution(execution_name(*step, generation=1))

    assert (first.phase_name, second.phase_name) == ("FAILED", "FAILED")
    with pytest.raises(FlyteNotFoundError):
        flyte_client.fetch_execution(execution_name(*step, generation=2))


def test_a_rejected_gate_fails_the_waiting_task_with_the_reason(failures_run):
    _, states, reasons = failures_run

    assert states["reject_review"] == "success"
    assert states["wait_gated"] == "failed"
    assert "ended FAILED" in reasons["wait_gated"][1]
    assert "reject" in reasons["wait_gated"][1].lower()


def test_an_aborted_run_fails_the_waiting_task_with_the_cause(failures_run):
    _, states, reasons = failures_run

    assert states["wait_doomed"] == "failed"
    assert "ended ABORTED" in reasons["wait_doomed"][1]
    assert "aborted by a test" in reasons["wait_doomed"][1]


def test_the_failed_task_still_links_its_flyte_execution(failures_run, xcoms, flyte_client):
    run, _, _ = failures_run

    pushed = xcoms(run, "failing_launch")

    execution = flyte_client.fetch_execution(pushed["execution_id"])
    assert execution.phase_name == "FAILED"
    assert pushed["console_url"] == flyte_client.console_url(execution)
    assert pushed["_link_FlyteExecutionLink"] == pushed["console_url"]
    with urllib.request.urlopen(pushed["console_url"], timeout=10) as page:  # noqa: S310
        assert page.status == 200
        assert execution.id.name in page.read().decode()


@pytest.mark.parametrize("mode", ["deferred", "on_worker"])
def test_soft_fail_skips_the_sensor_of_an_aborted_run(failures_run, mode):
    _, states, reasons = failures_run

    assert states[f"soft_wait_doomed_{mode}"] == "skipped"
    assert f"soft_wait_doomed_{mode}" not in reasons


def test_terminating_a_run_that_already_ended_succeeds_and_says_so(failures_run, xcoms):
    run, states, _ = failures_run

    assert states["abort_doomed_again"] == "success"
    result = xcoms(run, "abort_doomed_again")["return_value"]
    assert (result["phase"], result["already_terminal"]) == ("ABORTED", True)


def test_recover_on_retry_recovers_the_failed_run_without_rerunning_its_succeeded_nodes(
    failures_run, flyte_client
):
    run, states, reasons = failures_run
    step = ("flyte_failures", "recovering_launch", run.run_id, -1)

    first = flyte_client.fetch_execution(execution_name(*step))
    recovery = flyte_client.sync(flyte_client.fetch_execution(execution_name(*step, generation=1)))

    assert states["recovering_launch"] == "failed"
    assert "ended FAILED" in reasons["recovering_launch"][2]
    assert first.phase_name == "FAILED"
    assert recovery.mode == "RECOVERED"
    assert recovery.proto.spec.metadata.reference_execution.name == first.id.name
    phases = {n.spec_node_id: n.phase.name for n in recovery.node_executions.values()}
    assert phases == {"n0": "FAILED", "n1": "RECOVERED"}


def test_a_task_that_pushed_no_console_url_gets_no_link_and_no_xcom_error_in_its_log(
    airflow_db, flyte_connection, flyte_examples, xcoms, capfd
):
    import flyte_test_dags

    run = flyte_test_dags.no_console_url.test()
    output = "".join(capfd.readouterr())

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "launch_fails": "failed",
        "backfill_dry_run": "success",
        "sense_missing": "failed",
        "launch_succeeds": "success",
    }
    # The Task SDK logs every XCom it does not find at error level; the link looks none up.
    assert "XCom not found" not in output
    for task_id in ("launch_fails", "backfill_dry_run", "sense_missing"):
        pushed = xcoms(run, task_id)
        assert "console_url" not in pushed
        assert pushed.get("_link_FlyteExecutionLink") == "", (task_id, pushed)
    pushed = xcoms(run, "launch_succeeds")
    assert pushed["console_url"].startswith("http")
    assert pushed["_link_FlyteExecutionLink"] == pushed["console_url"]
