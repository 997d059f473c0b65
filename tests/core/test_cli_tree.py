"""More ``flyte-bridge`` commands against the session's sandbox: ``executions watch`` on running
executions, ``executions get --nodes``, ``signals reject`` and the backfill options."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyte_bridge.cli import cli


@pytest.fixture
def run_cli(flyte_sandbox_config, registered_examples):
    """Runs ``flyte-bridge <group> <command> --config <sandbox config> <rest>``."""

    def run(*args: str):
        split = 2 if args[0] in ("executions", "signals") else 1
        command = [*args[:split], "--config", str(Path(flyte_sandbox_config)), *args[split:]]
        return CliRunner().invoke(cli, command, catch_exceptions=False)

    return run


def _line(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if label in line)


def _wait_for_running_node(client, execution, node_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node = client.sync(execution).node_executions.get(node_id)
        if node is not None and node.phase.name == "RUNNING":
            return
        time.sleep(0.2)
    raise AssertionError(f"node {node_id} of {execution.id} did not start within {timeout}s")


def test_watch_follows_a_running_execution_to_its_end_with_the_node_tree(run_cli, sandbox_client):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 2})

    result = run_cli("executions", "watch", execution.id.name, "--interval", "0.2")

    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in _line(result.output, f"execution {execution.id}")
    node = _line(result.output, "n0 (task)")
    assert "SUCCEEDED" in node
    assert node.rstrip().endswith("s")  # its duration, e.g. "2.1s"


def test_watch_shows_the_running_node_when_its_timeout_runs_out(run_cli, sandbox_client):
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 300})
    try:
        _wait_for_running_node(sandbox_client, execution, "n0")
        result = run_cli(
            "executions", "watch", execution.id.name, "--interval", "0.2", "--timeout", "1"
        )
    finally:
        sandbox_client.terminate(execution, "test over")

    assert result.exit_code == 2
    assert "RUNNING" in _line(result.output, "n0 (task)")
    assert "still RUNNING when --timeout ran out" in result.output
    assert result.output.endswith("ran out\n")


def test_watch_piped_ends_the_last_tree_line_with_a_newline(run_cli, finished_runs):
    # CliRunner's stdout is no terminal, as when the output is piped or redirected.
    result = run_cli("executions", "watch", finished_runs["ping"].id.name)

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("\n")


def test_watch_piped_puts_the_failure_on_its_own_line(run_cli, finished_runs):
    failing = finished_runs["failing"]

    result = run_cli("executions", "watch", failing.id.name)

    assert result.exit_code == 1
    assert result.stdout.endswith("\n")
    error = _line(result.output, "Error: ")
    assert error.startswith(f"Error: {failing.id} ended FAILED")
    assert error.endswith("this task always fails (the whole error: --json)"), error
    assert "Traceback" not in result.output


def test_get_with_nodes_as_json_lists_the_tree_with_attempts(run_cli, finished_runs):
    retried = finished_runs["retry"]

    result = run_cli("executions", "get", str(retried.id), "--nodes", "--json")

    assert result.exit_code == 0, result.output
    (node,) = json.loads(result.output)["nodes"]
    assert (node["node_id"], node["phase"]) == ("n0", "SUCCEEDED")
    assert [(a["retry_attempt"], a["phase"]) for a in node["attempts"]] == [
        (0, "FAILED"),
        (1, "SUCCEEDED"),
    ]


def test_reject_through_the_cli_fails_the_execution(run_cli, sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf", inputs={"version": 1})

    result = run_cli("signals", "reject", execution.id.name, "review", "--wait", "60")
    finished = sandbox_client.wait(execution, timeout=120, poll_interval=0.3)

    assert result.exit_code == 0, result.output
    assert "rejected review" in result.output
    assert finished.phase.name == "FAILED"


def test_backfill_options_change_the_generated_version_and_labels_need_a_key(run_cli):
    window = ("daily_report", "--from", "2024-01-01T06:00", "--to", "2024-01-02T06:00")

    plain = run_cli("backfill", *window, "--dry-run")
    tuned = run_cli(
        "backfill", *window, "--dry-run", "--retries", "2", "--node-timeout", "600",
        "--label", "team=data",
    )  # fmt: skip
    refused = run_cli("backfill", *window, "--dry-run", "--label", "team")

    assert plain.exit_code == 0 and tuned.exit_code == 0, plain.output + tuned.output
    assert _line(plain.output, "version ") != _line(tuned.output, "version ")
    assert "2 ticks:" in tuned.output
    assert refused.exit_code == 2 and "expected KEY=VALUE" in refused.output


def test_backfill_refuses_a_key_given_twice_naming_both_values(run_cli):
    window = ("daily_report", "--from", "2024-01-01T06:00", "--to", "2024-01-02T06:00")

    result = run_cli(
        "backfill", *window, "--dry-run", "--input", "region=us", "--input", "region=eu"
    )

    assert result.exit_code == 2
    assert "'region' is given twice ('us' and 'eu'); give each key once" in result.output
