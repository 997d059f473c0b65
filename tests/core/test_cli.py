"""The ``flyte-bridge`` commands, run with click's CliRunner against the session's sandbox."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from flyteidl.core import types_pb2

from flyte_bridge.cli import cli
from flyte_bridge.cli._common import UtcDateTime, format_duration, parse_value, type_label
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def registered(flyte_sandbox_config, flyte_examples) -> Path:
    """The sandbox config path; ``flyte_examples`` registered the example workflows."""
    return flyte_sandbox_config


@pytest.fixture(scope="module")
def sandbox_client(flyte_sandbox, registered):
    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        yield client


@pytest.fixture(scope="module")
def hello_execution(sandbox_client):
    """A finished ``hello_wf`` run with ``name="cli"``."""
    execution = sandbox_client.launch("hello.hello_wf", inputs={"name": "cli"})
    return sandbox_client.wait(execution, timeout=120, poll_interval=0.5)


def run(registered: Path, *args: str):
    """Runs ``flyte-bridge <group> <command> --config <sandbox config> <rest>``."""
    split = 2 if args[0] in ("executions", "signals") else 1
    command = [*args[:split], "--config", str(registered), *args[split:]]
    return CliRunner().invoke(cli, command, catch_exceptions=False)


# -------------------------------------------------------------------------- against the sandbox


def test_list_shows_a_finished_execution_with_its_phase(registered, hello_execution):
    result = run(registered, "executions", "list", "--launch-plan", "hello.hello_wf", "-n", "50")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if hello_execution.id.name in line)
    assert "hello.hello_wf" in line and "SUCCEEDED" in line


def test_list_takes_a_launch_plan_by_full_id_and_version(registered, hello_execution):
    version = hello_execution.launch_plan.version
    full = "flytesnacks/development/hello.hello_wf"

    by_id = run(registered, "executions", "list", "--launch-plan", full, "-n", "50", "--json")
    by_version = run(
        registered, "executions", "list", "--launch-plan", f"{full}@{version}", "-n", "50", "--json"
    )
    other_version = run(registered, "executions", "list", "--launch-plan", f"{full}@nosuch")
    no_version = run(registered, "executions", "list", "--launch-plan", "hello.hello_wf@")

    assert str(hello_execution.id) in {item["id"] for item in json.loads(by_id.output)}
    assert str(hello_execution.id) in {item["id"] for item in json.loads(by_version.output)}
    assert "No executions found." in other_version.stdout
    assert f"Note: launch plan {full} has no version 'nosuch'" in other_version.stderr
    assert no_version.exit_code == 2 and "no version after '@'" in no_version.output


def test_list_json_filters_by_phase_and_links_the_console(registered, hello_execution):
    result = run(registered, "executions", "list", "--phase", "succeeded", "--json", "-n", "100")
    assert result.exit_code == 0, result.output
    listed = {item["id"]: item for item in json.loads(result.output)}
    item = listed[str(hello_execution.id)]
    assert item["phase"] == "SUCCEEDED"
    assert item["console_url"].endswith(
        f"/console/projects/flytesnacks/domains/development/executions/{hello_execution.id.name}"
    )
    assert all(entry["phase"] == "SUCCEEDED" for entry in listed.values())


def test_list_of_an_unknown_project_fails_naming_the_known_ones(registered):
    result = run(registered, "executions", "list", "-p", "nosuchproj")

    assert result.exit_code == 1, result.output
    assert "Usage:" not in result.output
    assert "No executions found." not in result.output
    assert "project 'nosuchproj' is not registered;" in result.output
    assert "registered projects: " in result.output and "flytesnacks" in result.output


def test_list_json_of_an_unknown_domain_fails_naming_the_projects_domains(registered):
    result = run(registered, "executions", "list", "-d", "qa", "--json")

    assert result.exit_code == 1, result.output
    assert "domain 'qa' is not a domain of project 'flytesnacks'" in result.output
    assert "development" in result.output


def test_list_of_a_known_project_without_matches_says_none_were_found(registered):
    result = run(registered, "executions", "list", "--launch-plan", "no.such.plan")

    assert result.exit_code == 0, result.output
    assert "No executions found." in result.stdout
    assert "Note: no launch plan flytesnacks/development/no.such.plan is registered" in (
        result.stderr
    )


def test_rpc_timeout_and_max_retries_bound_a_command_on_a_server_that_never_answers(
    registered, flyte_sandbox_faults
):
    with flyte_sandbox_faults.injected(black_hole=True, methods=["ListExecutions"]):
        started = time.monotonic()
        result = run(registered, "executions", "list", "--rpc-timeout", "0.5", "--max-retries", "0")
        took = time.monotonic() - started

    assert result.exit_code == 1, result.output
    assert "ListExecutions" in result.output and "0.5" in result.output
    assert took < 20, f"one attempt of 0.5 s took {took:.1f} s"


def test_get_in_an_unknown_project_fails_like_list_there(registered):
    result = run(registered, "executions", "get", "some-run", "-p", "nosuchproj")

    assert result.exit_code == 1, result.output
    assert "no execution nosuchproj/development/some-run: project 'nosuchproj' is not " in (
        result.output
    )


def test_get_shows_inputs_and_outputs(registered, hello_execution):
    result = run(registered, "executions", "get", hello_execution.id.name, "--inputs", "--outputs")
    assert result.exit_code == 0, result.output
    assert "name = 'cli'" in result.output
    assert "o0 = 'hello cli'" in result.output


def test_get_outputs_of_a_running_execution_shows_it_and_why_there_are_none(
    registered, sandbox_client
):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 300})
    try:
        shown = run(registered, "executions", "get", execution.id.name, "--outputs")
        as_json = run(registered, "executions", "get", execution.id.name, "--outputs", "--json")
    finally:
        sandbox_client.terminate(execution, cause="test over")

    assert shown.exit_code == 0, shown.output
    assert any(
        line.split() == ["execution", str(execution.id)] for line in shown.output.splitlines()
    )
    assert "outputs not available: " in shown.output
    assert "outputs exist once it has finished" in shown.output
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output)
    assert summary["id"] == str(execution.id)
    assert summary["outputs"] is None
    assert "outputs exist once it has finished" in summary["outputs_error"]


def test_get_outputs_of_a_failed_execution_shows_its_error_and_exits_as_get_does(
    registered, sandbox_client
):
    execution = sandbox_client.launch("failures.failing_wf")
    sandbox_client.wait(execution, timeout=120, poll_interval=0.3)

    plain = run(registered, "executions", "get", execution.id.name)
    shown = run(registered, "executions", "get", execution.id.name, "--outputs")
    as_json = run(registered, "executions", "get", execution.id.name, "--outputs", "--json")

    assert shown.exit_code == plain.exit_code == 0, shown.output
    assert shown.output.startswith(plain.output)
    assert any(line.strip().startswith("error") for line in shown.output.splitlines())
    assert "outputs not available: " in shown.output and "ended FAILED" in shown.output
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output)
    assert summary["phase"] == "FAILED" and summary["error"] is not None
    assert summary["outputs"] is None
    assert "ended FAILED" in summary["outputs_error"]


def test_get_json_of_a_finished_execution_has_no_outputs_error(registered, hello_execution):
    result = run(registered, "executions", "get", hello_execution.id.name, "--outputs", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["outputs"] == {"o0": "hello cli"} and summary["outputs_error"] is None


def test_get_unknown_execution_fails_with_a_not_found_message(registered):
    result = run(registered, "executions", "get", "no-such-execution")
    assert result.exit_code == 1
    assert "FlyteNotFoundError" in result.output


def test_watch_of_a_finished_execution_prints_the_node_tree_and_exits_zero(
    registered, hello_execution
):
    result = run(registered, "executions", "watch", hello_execution.id.name, "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert f"execution {hello_execution.id}" in result.output
    node_line = next(line for line in result.output.splitlines() if "n0" in line)
    assert "SUCCEEDED" in node_line


def test_watch_exits_one_when_the_execution_fails(registered, sandbox_client):
    execution = sandbox_client.launch("failures.failing_wf")
    result = run(registered, "executions", "watch", execution.id.name, "--interval", "0.3")
    assert result.exit_code == 1
    assert "ended FAILED" in result.output


def test_an_aborted_execution_is_shown_with_its_cause_and_the_phase_once(
    registered, sandbox_client
):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 300})
    sandbox_client.terminate(execution, cause="not needed")
    sandbox_client.wait(execution, timeout=60, poll_interval=0.3)

    watched = run(registered, "executions", "watch", execution.id.name, "--interval", "0.2")
    shown = run(registered, "executions", "get", execution.id.name)

    assert watched.exit_code == 1
    assert f"{execution.id} ended ABORTED: not needed" in watched.output
    assert "ABORTED: ABORTED" not in watched.output
    assert shown.exit_code == 0, shown.output
    error_line = next(
        line for line in shown.output.splitlines() if line.strip().startswith("error")
    )
    assert error_line.split() == ["error", "not", "needed"]


def test_watch_gives_up_at_its_timeout_with_exit_code_two(registered, sandbox_client):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 300})
    try:
        result = run(
            registered,
            "executions",
            "watch",
            execution.id.name,
            "--interval",
            "0.2",
            "--timeout",
            "1",
        )
        assert result.exit_code == 2
        assert "when --timeout ran out" in result.output
        assert f"execution {execution.id}" in result.output
    finally:
        sandbox_client.terminate(execution, cause="test over")


def test_terminate_of_a_finished_execution_says_it_had_ended(registered, hello_execution):
    result = run(registered, "executions", "terminate", hello_execution.id.name)
    assert result.exit_code == 0, result.output
    assert f"{hello_execution.id} had already ended: SUCCEEDED" in result.output


def test_terminate_aborts_a_running_execution(registered, sandbox_client):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 300})
    result = run(registered, "executions", "terminate", execution.id.name, "--cause", "cli test")
    assert result.exit_code == 0, result.output
    assert "is being aborted (cli test)" in result.output
    ended = sandbox_client.wait(execution, timeout=60, poll_interval=0.3)
    assert ended.phase_name == "ABORTED"


def test_approve_and_set_through_the_cli_complete_the_approval_workflow(registered, sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf")
    name = execution.id.name
    approved = run(registered, "signals", "approve", name, "review", "--wait", "60")
    assert approved.exit_code == 0, approved.output
    refused = run(registered, "signals", "set", name, "rollout_percent", "lots", "--wait", "60")
    # Read by the command (gate reached) or the client (not yet): either says what it expects.
    assert refused.exit_code != 0 and "'lots' is not a float" in refused.output.lower()
    answered = run(registered, "signals", "set", name, "rollout_percent", "25", "--wait", "60")
    assert answered.exit_code == 0, answered.output
    assert "set rollout_percent = 25.0" in answered.output
    listed = run(registered, "signals", "list", name)
    assert "rollout_percent" in listed.output and "float" in listed.output
    done = sandbox_client.wait(execution, timeout=120, poll_interval=0.3)
    assert sandbox_client.fetch_outputs(done) == {"o0": "release 2 at 25%"}


def test_signals_list_shows_the_declared_gates_not_reached_yet(registered, sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf")
    try:
        sandbox_client.wait_for_gate(execution, "review", timeout=60)
        listed = run(registered, "signals", "list", execution.id.name)
    finally:
        sandbox_client.terminate(execution, cause="test over")

    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.output.splitlines()[1:] if line.strip()}
    assert "(not set)" in rows["review"] and "bool" in rows["review"]
    assert "(gate not reached yet)" in rows["rollout_percent"]
    assert "float" in rows["rollout_percent"]
    gates = sandbox_client.declared_gates(execution)
    assert sorted(gates) == ["review", "rollout_percent"]


def test_giving_a_gate_the_value_it_holds_again_says_nothing_changed(registered, sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf")
    name = execution.id.name
    sandbox_client.approve(execution, "review", wait_for_gate=60)
    sandbox_client.set_input(execution, "rollout_percent", 25.0, wait_for_gate=60)

    approved_again = run(registered, "signals", "approve", name, "review")
    set_again = run(registered, "signals", "set", name, "rollout_percent", "25")

    assert approved_again.exit_code == 0, approved_again.output
    assert approved_again.output == "review was already approved; nothing changed\n"
    assert set_again.exit_code == 0, set_again.output
    assert set_again.output == "rollout_percent was already set to 25.0; nothing changed\n"
    done = sandbox_client.wait(execution, timeout=120, poll_interval=0.3)
    assert sandbox_client.fetch_outputs(done) == {"o0": "release 2 at 25%"}


def test_set_with_wait_reads_the_value_as_the_type_of_a_gate_not_reached_yet(
    registered, sandbox_client
):
    execution = sandbox_client.launch("approvals.approval_wf")
    # rollout_percent is reached only once review is approved: a second from now, after the
    # command has listed the signals and found no rollout_percent among them.
    approver = threading.Timer(1.0, sandbox_client.approve, (execution, "review", 60))
    approver.start()
    try:
        answered = run(
            registered,
            "signals",
            "set",
            execution.id.name,
            "rollout_percent",
            "+25",
            "--wait",
            "60",
        )
    finally:
        approver.join()

    assert answered.exit_code == 0, answered.output
    assert answered.output == "set rollout_percent = 25.0\n"
    done = sandbox_client.wait(execution, timeout=120, poll_interval=0.3)
    assert sandbox_client.fetch_outputs(done) == {"o0": "release 2 at 25%"}


def test_a_negative_number_is_a_value_and_an_unknown_option_is_still_refused(
    registered, sandbox_client
):
    execution = sandbox_client.launch("approvals.approval_wf")
    name = execution.id.name
    sandbox_client.approve(execution, "review", wait_for_gate=60)
    # The typo is refused before anything is sent; the gate is still open afterwards.
    typo = run(registered, "signals", "set", name, "rollout_percent", "-5", "--wiat", "60")
    answered = run(registered, "signals", "set", name, "rollout_percent", "-5", "--wait", "60")

    assert typo.exit_code == 2, typo.output
    assert "No such option '--wiat'" in typo.output
    assert answered.exit_code == 0, answered.output
    assert answered.output == "set rollout_percent = -5.0\n"
    done = sandbox_client.wait(execution, timeout=120, poll_interval=0.3)
    assert sandbox_client.fetch_outputs(done) == {"o0": "release 2 at -5%"}


def test_signal_errors_give_hints_in_command_line_terms(registered, sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf")
    name = execution.id.name
    try:
        not_boolean = run(registered, "signals", "approve", name, "rollout_percent")
        # rollout_percent comes after the review gate, which nobody approved.
        not_reached = run(registered, "signals", "set", name, "rollout_percent", "25")
    finally:
        sandbox_client.terminate(execution, cause="test over")

    assert not_boolean.exit_code == 1
    assert "approve fits only an approve gate" in not_boolean.output
    assert f"use `flyte-bridge signals set {name} rollout_percent VALUE`" in not_boolean.output
    assert "set_input" not in not_boolean.output
    assert not_reached.exit_code == 1
    assert "has not been reached yet" in not_reached.output
    assert "pass --wait SECONDS to wait for it" in not_reached.output
    assert "wait_for_gate" not in not_reached.output


def test_signals_list_of_a_workflow_without_gates_says_it_declares_none(
    registered, sandbox_client, hello_execution
):
    running = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 300})
    try:
        still_running = run(registered, "signals", "list", running.id.name)
        declared = sandbox_client.declared_gates(running)
    finally:
        sandbox_client.terminate(running, cause="test over")
    ended = run(registered, "signals", "list", hello_execution.id.name)

    assert declared == {}
    assert still_running.exit_code == 0, still_running.output
    assert still_running.output.startswith(
        "No signals yet: its workflow declares no approve or input gates; only gates made at "
        "run time"
    )
    assert ended.exit_code == 0, ended.output
    assert ended.output == (
        "No signals: its workflow declares no approve or input gates (the execution ended "
        "SUCCEEDED).\n"
    )
    assert "reaching a gate" not in ended.output


def test_backfill_dry_run_prints_the_inclusive_ticks(registered):
    result = run(
        registered,
        "backfill",
        "daily_report",
        "--from",
        "2024-01-01T06:00",
        "--to",
        "2024-01-03T06:00",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "3 ticks:" in result.output
    assert "2024-01-01T06:00:00+00:00" in result.output
    assert "2024-01-03T06:00:00+00:00" in result.output
    assert "dry run" in result.output


def test_backfill_to_a_bare_date_includes_that_whole_day(registered):
    result = run(
        registered,
        "backfill",
        "daily_report",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-07",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "7 ticks:" in result.output
    assert "2024-01-07T06:00:00+00:00" in result.output
    assert "2024-01-08" not in result.output


def test_backfill_runs_every_tick_with_its_kickoff_time_as_one_execution(
    registered, sandbox_client
):
    result = run(
        registered, "backfill", "daily_report", "--from", "2024-03-01", "--to", "2024-03-02T06:00"
    )
    assert result.exit_code == 0, result.output
    assert "2 ticks:" in result.output
    assert "/console/projects/flytesnacks/domains/development/executions/" in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("execution "))
    done = sandbox_client.wait(line.split()[1], timeout=180, poll_interval=0.5, sync_nodes=True)
    assert done.phase_name == "SUCCEEDED"
    reports = [
        sandbox_client.fetch_outputs(done.node_executions[node_id].child_execution)["o0"]
        for node_id in ("n0", "n1")
    ]
    assert reports == ["report eu 2024-03-01: 10 events", "report eu 2024-03-02: 20 events"]


def _backfill_execution(result) -> str:
    line = next(line for line in result.output.splitlines() if line.startswith("execution "))
    return line.split()[1]


def test_backfill_again_under_its_name_says_it_found_the_running_or_ended_execution(
    registered, sandbox_client
):
    name = f"bf-cli-{uuid.uuid4().hex[:8]}"
    # Half a year of ticks, one after another: still running when the command runs again.
    window = ("--from", "2023-01-01", "--to", "2023-06-30", "--name", name)
    first = run(registered, "backfill", "daily_report", *window)
    try:
        again = run(registered, "backfill", "daily_report", *window)
    finally:
        sandbox_client.terminate(_backfill_execution(first), cause="test over")
    sandbox_client.wait(_backfill_execution(first), timeout=60, poll_interval=0.3)
    after_abort = run(registered, "backfill", "daily_report", *window)

    assert first.exit_code == 0, first.output
    assert "nothing new was launched" not in first.output
    assert again.exit_code == 0, again.output
    assert _backfill_execution(again) == _backfill_execution(first)
    assert (
        f"reattached to backfill execution {_backfill_execution(first)}, still RUNNING: it "
        f"already existed under --name {name}, so nothing new was launched"
    ) in again.output
    assert after_abort.exit_code == 1
    assert f"already ended ABORTED under --name {name}; nothing new was launched" in (
        after_abort.output
    )


def test_backfill_again_under_the_name_of_one_that_succeeded_says_so(registered, sandbox_client):
    name = f"bf-cli-{uuid.uuid4().hex[:8]}"
    window = ("--from", "2023-01-01", "--to", "2023-01-01", "--name", name)
    first = run(registered, "backfill", "daily_report", *window)
    sandbox_client.wait(_backfill_execution(first), timeout=120, poll_interval=0.3)
    again = run(registered, "backfill", "daily_report", *window)

    assert again.exit_code == 0, again.output
    assert "1 tick:" in again.output
    assert (
        f"backfill execution {_backfill_execution(first)} already SUCCEEDED under --name {name}; "
        "nothing new was launched"
    ) in again.output


def test_backfill_inputs_are_read_as_text_of_their_type_and_checked(registered):
    window = ("--from", "2024-03-01", "--to", "2024-03-02", "--dry-run")
    plain = run(registered, "backfill", "daily_report", *window)
    given = run(registered, "backfill", "daily_report", *window, "--input", "region=us")
    unknown = run(registered, "backfill", "daily_report", *window, "--input", "zone=us")

    assert given.exit_code == 0, given.output
    assert given.output.splitlines()[0] != plain.output.splitlines()[0], "inputs change the version"
    assert unknown.exit_code != 0
    assert "unknown inputs zone (expected:" in unknown.output


def test_endpoint_and_insecure_flags_work_without_a_config_file(
    flyte_sandbox, hello_execution, tmp_path
):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = CliRunner().invoke(
        cli,
        [
            "executions",
            "get",
            "--config",
            str(empty),
            "--endpoint",
            flyte_sandbox.endpoint,
            "--insecure",
            "--project",
            "flytesnacks",
            "--domain",
            "development",
            hello_execution.id.name,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output


def test_metrics_of_a_sandbox_execution_show_its_task_runtime(registered, hello_execution):
    table = run(registered, "metrics", hello_execution.id.name)
    assert table.exit_code == 0, table.output
    assert f"workflow/{hello_execution.id.name}" in table.output
    assert any("TASK_RUNTIME" in line for line in table.output.splitlines())
    summary = run(registered, "metrics", hello_execution.id.name, "--yaml")
    node = yaml.safe_load(summary.output)[f"workflow/{hello_execution.id.name}"]["nodes"]["n0"]
    assert node["breakdown"]["TASK_RUNTIME"] > 0


# -------------------------------------------------------------------------- metrics


@pytest.fixture
def metrics_server():
    """A scripted admin on 127.0.0.1 answering GetExecutionMetrics with the metrics test tree,
    whose times are fixed so the table can be checked to the microsecond, for a finished run."""
    from _transport_fakes import ScriptedServer
    from flyteidl.admin import execution_pb2
    from flyteidl.core import execution_pb2 as core_execution_pb2
    from flyteidl.core import identifier_pb2
    from test_metrics import example_tree

    server = ScriptedServer().start()
    server.defaults["GetExecutionMetrics"] = execution_pb2.WorkflowExecutionGetMetricsResponse(
        span=example_tree()
    )
    server.defaults["GetExecution"] = execution_pb2.Execution(
        id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="f8a2c1"),
        closure=execution_pb2.ExecutionClosure(
            phase=core_execution_pb2.WorkflowExecution.SUCCEEDED
        ),
    )
    try:
        yield server
    finally:
        server.stop()


def run_metrics(server, *args: str):
    options = ["--endpoint", server.endpoint, "--insecure", "-p", "p", "-d", "d"]
    return CliRunner().invoke(cli, ["metrics", *options, *args], catch_exceptions=False)


def test_metrics_prints_the_span_table_and_asks_admin_for_the_depth(metrics_server):
    result = run_metrics(metrics_server, "f8a2c1", "--depth", "4")
    assert result.exit_code == 0, result.output
    runtime = next(line for line in result.output.splitlines() if "TASK_RUNTIME" in line)
    assert "2024-01-02 00:00:04.000000" in runtime and runtime.endswith("9.250s")
    (call,) = metrics_server.calls_to("GetExecutionMetrics")
    assert call.request.depth == 4
    assert (call.request.id.project, call.request.id.domain, call.request.id.name) == (
        "p",
        "d",
        "f8a2c1",
    )


def test_metrics_of_a_running_execution_say_its_spans_end_at_the_last_update(metrics_server):
    from flyteidl.core import execution_pb2 as core_execution_pb2

    metrics_server.defaults[
        "GetExecution"
    ].closure.phase = core_execution_pb2.WorkflowExecution.RUNNING
    result = CliRunner().invoke(
        cli,
        [
            "metrics",
            "--endpoint",
            metrics_server.endpoint,
            "--insecure",
            "-p",
            "p",
            "-d",
            "d",
            "f8a2c1",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "f8a2c1 is still RUNNING: spans of what has not finished end at its last update" in (
        result.stderr
    )
    assert "TASK_RUNTIME" in result.stdout and "still RUNNING" not in result.stdout


def test_metrics_of_a_finished_execution_add_no_note(metrics_server):
    result = run_metrics(metrics_server, "f8a2c1")
    assert result.exit_code == 0, result.output
    assert "last update" not in result.output


def test_metrics_yaml_summarises_the_breakdown(metrics_server):
    result = run_metrics(metrics_server, "f8a2c1", "--yaml")
    assert result.exit_code == 0, result.output
    summary = yaml.safe_load(result.output)["workflow/f8a2c1"]
    assert summary["breakdown"]["TASK_RUNTIME"] == 9.25
    assert summary["nodes"]["n0"]["task_attempts"][0]["duration"] == 11.5


# -------------------------------------------------------------------------- value parsing


@pytest.mark.parametrize(
    ("text", "simple", "expected"),
    [
        ("25", types_pb2.FLOAT, 25.0),
        ("7", types_pb2.INTEGER, 7),
        ("yes", types_pb2.BOOLEAN, True),
        ("False", types_pb2.BOOLEAN, False),
        ("42", types_pb2.STRING, "42"),
        ("2024-01-02T06:00Z", types_pb2.DATETIME, dt.datetime(2024, 1, 2, 6, tzinfo=UTC)),
        ("90", types_pb2.DURATION, dt.timedelta(seconds=90)),
        ("PT1M30S", types_pb2.DURATION, dt.timedelta(seconds=90)),
    ],
)
def test_values_are_read_as_the_declared_type(text, simple, expected):
    assert parse_value(text, types_pb2.LiteralType(simple=simple)) == expected


@pytest.mark.parametrize(
    ("text", "simple", "message"),
    [
        ("abc", types_pb2.INTEGER, "'abc' is not an int: expected a whole number such as 25"),
        ("lots", types_pb2.FLOAT, "'lots' is not a float: expected a number such as 2.5"),
        ("maybe", types_pb2.BOOLEAN, "'maybe' is not a bool: expected true or false"),
        ("soon", types_pb2.DATETIME, "'soon' is not a datetime: expected an ISO 8601 date"),
        ("long", types_pb2.DURATION, "'long' is not a timedelta: expected seconds such as 90"),
    ],
)
def test_value_that_is_not_the_declared_type_is_a_usage_error_naming_its_python_type(
    text, simple, message
):
    import click

    with pytest.raises(click.BadParameter) as raised:
        parse_value(text, types_pb2.LiteralType(simple=simple))

    assert raised.value.message.startswith(message)


def test_declared_types_are_shown_as_a_python_workflow_writes_them():
    def simple(kind):
        return types_pb2.LiteralType(simple=kind)

    listed = types_pb2.LiteralType(collection_type=simple(types_pb2.INTEGER))
    mapped = types_pb2.LiteralType(map_value_type=simple(types_pb2.FLOAT))
    optional = types_pb2.LiteralType(
        union_type=types_pb2.UnionType(variants=[simple(types_pb2.STRING), simple(types_pb2.NONE)])
    )

    assert [type_label(t) for t in (listed, mapped, optional)] == [
        "list[int]",
        "dict[str, float]",
        "str | None",
    ]
    assert type_label(simple(types_pb2.DURATION)) == "timedelta"


def test_collections_are_read_as_json_and_bare_words_without_a_type_stay_strings():
    listed = types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=types_pb2.INTEGER))
    assert parse_value("[1, 2]", listed) == [1, 2]
    record = types_pb2.LiteralType(simple=types_pb2.STRUCT)
    assert parse_value('{"a": 1, "b": [1, 2]}', record) == {"a": 1, "b": [1, 2]}
    assert parse_value("hello", None) == "hello"
    assert parse_value("3.5", None) == 3.5


def test_command_line_datetimes_are_utc():
    assert UtcDateTime().convert("2024-01-02", None, None) == dt.datetime(2024, 1, 2, tzinfo=UTC)
    plus_two = UtcDateTime().convert("2024-01-02T02:00+02:00", None, None)
    assert plus_two == dt.datetime(2024, 1, 2, tzinfo=UTC) and plus_two.tzinfo is UTC


@pytest.mark.parametrize(("seconds", "text"), [(6.24, "6.2s"), (245, "4m05s"), (3723, "1h02m03s")])
def test_durations_are_short(seconds, text):
    assert format_duration(dt.timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("executions", "list", "--phase", "BOGUS"), "--phase"),
        (("executions", "list", "-n", "0"), "--limit"),
        (("executions", "watch", "x", "--timeout", "-5"), "--timeout"),
        (("executions", "watch", "x", "--timeout", "0"), "--timeout"),
        (("signals", "set", "x", "gate", "1", "--wait", "-3"), "--wait"),
        (("signals", "approve", "x", "gate", "--wait", "-3"), "--wait"),
        (("metrics", "x", "--depth", "-1"), "--depth"),
        (("metrics", "x", "--max-depth", "-1"), "--max-depth"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error_naming_it(registered, args, named):
    result = run(registered, *args)

    assert result.exit_code == 2, result.output
    assert named in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("executions", "list", "-p", ""), "'--project' / '-p': an empty value ('') is no project"),
        (
            ("executions", "get", "x", "-d", ""),
            "'--domain' / '-d': an empty value ('') is no domain",
        ),
        (("executions", "list", "--project", " "), "an empty value (' ') is no project"),
        (("signals", "list", "x", "--domain", ""), "an empty value ('') is no domain"),
        (("metrics", "x", "-p", ""), "an empty value ('') is no project"),
        (("executions", "list", "--endpoint", ""), "an empty value ('') is no endpoint"),
    ],
)
def test_an_empty_project_or_domain_is_a_usage_error_not_the_default(registered, args, named):
    result = run(registered, *args)

    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "config's or the default" in result.output


def test_watch_of_an_admin_that_does_not_answer_ends_at_its_timeout_with_exit_code_two(
    registered,
):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()

    result = CliRunner().invoke(
        cli,
        ["executions", "watch", "--config", str(registered), "--endpoint", f"127.0.0.1:{port}"]
        + ["--insecure", "some-run", "--timeout", "2"],
        catch_exceptions=False,
    )

    assert result.exit_code == 2, result.output
    assert "--timeout ran out before admin answered" in result.output
    assert time.monotonic() - started < 6  # not the 8-15 s its retries would take
