"""Reading executions: fetch, list every page, recent, inputs and outputs (sync and async)."""

from __future__ import annotations

import pytest

from flyte_bridge.errors import (
    FlyteExecutionFailedError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
    FlyteNotReadyError,
)
from flyte_bridge.filters import Filter
from flyte_bridge.models import ExecutionId, WorkflowPhase


def test_fetch_execution_by_bare_name_uses_the_default_project_and_domain(client, finished_runs):
    hello = finished_runs["hello"]

    fetched = client.fetch_execution(hello.id.name)

    assert fetched.id == hello.id
    assert fetched.phase is WorkflowPhase.SUCCEEDED
    assert fetched.is_done and fetched.is_successful and fetched.error is None
    assert fetched.launch_plan.name == "hello.hello_wf"
    assert fetched.workflow is not None and fetched.workflow.name == "hello.hello_wf"
    assert fetched.started_at is not None and fetched.duration is not None


def test_fetch_execution_of_a_missing_name_raises_not_found_naming_it(client, registered_examples):
    with pytest.raises(FlyteNotFoundError) as caught:
        client.fetch_execution("flytesnacks/development/no-such-run")

    assert "no-such-run" in str(caught.value)


def test_an_execution_argument_of_the_wrong_shape_is_refused_before_any_call(client):
    with pytest.raises(FlyteInvalidInputError, match="project/domain/name"):
        client.fetch_execution("a/b")


def test_list_executions_follows_every_page(client, finished_runs):
    only_failures = Filter.eq("launch_plan.name", "failures.failing_wf")
    expected = {finished_runs["failing"].id}

    listed = client.list_executions(filters=only_failures, page_size=1)

    names = [e.id for e in listed]
    assert expected <= set(names)
    assert len(names) == len(set(names))


def test_recent_executions_returns_at_most_limit_newest_first(client, finished_runs):
    recent = client.recent_executions(limit=2)

    assert len(recent) == 2
    assert recent[0].created_at >= recent[1].created_at


def test_fetch_inputs_and_outputs_are_python_values(client, finished_runs):
    hello = finished_runs["hello"]

    assert client.fetch_inputs(hello) == {"name": "core"}
    assert client.fetch_outputs(hello.id) == {"o0": "hello core"}


def test_an_execution_without_inputs_or_outputs_reads_as_empty_dicts(client, finished_runs):
    ping = finished_runs["ping"]

    assert ping.phase.name == "SUCCEEDED"
    assert client.fetch_inputs(ping) == {}
    assert client.fetch_outputs(ping.id) == {}


def test_outputs_of_a_failed_run_raise_execution_failed_with_its_error(client, finished_runs):
    failing = finished_runs["failing"]

    with pytest.raises(FlyteExecutionFailedError) as caught:
        client.fetch_outputs(failing)

    assert caught.value.phase == "FAILED"
    assert caught.value.error_code == failing.error.code
    assert failing.error.kind == "USER"
    assert failing.error.code in str(caught.value)


def test_outputs_of_a_running_execution_raise_not_ready(client, sandbox_client):
    running = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 60})
    try:
        with pytest.raises(FlyteNotReadyError, match="has finished"):
            client.fetch_outputs(running.id)
    finally:
        sandbox_client.terminate(running, "test done")


def test_execution_ids_read_every_accepted_form(client):
    expected = ExecutionId("flytesnacks", "development", "x1")

    assert client.execution_id("x1") == expected
    assert client.execution_id("flytesnacks/development/x1") == expected
    assert client.execution_id(expected) == expected
