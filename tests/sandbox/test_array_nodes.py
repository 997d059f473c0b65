"""Array nodes (flytekit ``map_task``) end to end, read back as clients of a cluster read them.

``examples/flyte/map_pipeline.py`` runs with ``pyflyte run --remote`` and from its registered
launch plans; ``tests/sandbox/workflows/array_checks.py`` makes concurrency, ``min_successes`` and
aborts observable. Each module fixture launches its executions once; the tests only read.
"""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest
from flyte_examples import (
    DOMAIN,
    EXAMPLES,
    EXAMPLES_VERSION,
    PROJECT,
    processes_of_execution,
    register_modules,
    unique_name,
    wait_until,
)
from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2, identifier_pb2
from flytekit.models.core.execution import NodeExecutionPhase
from flytekit.models.core.execution import WorkflowExecutionPhase as Phase
from test_pyflyte_run import run_remote

pytestmark = pytest.mark.slow

TaskPhase = execution_pb2.TaskExecution.Phase
CHECKS = "tests/sandbox/workflows/array_checks.py"
CHECKS_VERSION = "array-checks-v1"
WAIT = {"timeout": timedelta(seconds=180), "poll_interval": timedelta(seconds=0.5)}


def node_id(name: str, node: str = "n0") -> identifier_pb2.NodeExecutionIdentifier:
    return identifier_pb2.NodeExecutionIdentifier(
        node_id=node,
        execution_id=identifier_pb2.WorkflowExecutionIdentifier(
            project=PROJECT, domain=DOMAIN, name=name
        ),
    )


def array_task_executions(admin, name: str) -> list:
    return list(
        admin.ListTaskExecutions(
            task_execution_pb2.TaskExecutionListRequest(node_execution_id=node_id(name), limit=100)
        ).task_executions
    )


def items(task_execution) -> dict[tuple[int, int], int]:
    """(index, retry attempt) -> phase of every item entry of the array's task execution."""
    return {
        (resource.index, resource.retry_attempt): resource.phase
        for resource in task_execution.closure.metadata.external_resources
    }


@pytest.fixture(scope="module")
def score_batch(flyte_sandbox_config) -> str:
    """A finished ``score_batch_wf`` run by ``pyflyte run --remote`` with its defaults."""
    name = unique_name("map")
    result = run_remote(
        flyte_sandbox_config,
        str(EXAMPLES / "map_pipeline.py"),
        "score_batch_wf",
        [],
        wait=True,
        name=name,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return name


@pytest.fixture(scope="module")
def runs(flyte_examples_remote, flyte_sandbox_config, tmp_path_factory) -> dict[str, object]:
    """Finished executions of the tolerant example and the checks, launched all at once."""
    remote = flyte_examples_remote
    register_modules(flyte_sandbox_config, CHECKS_VERSION, CHECKS)

    def launch(launch_plan: str, version: str, **inputs):
        entity = remote.fetch_launch_plan(name=launch_plan, version=version)
        return remote.execute(entity, inputs=inputs, execution_name=unique_name("arr"))

    markers = tmp_path_factory.mktemp("array-markers")
    launched = {
        "tolerant": launch(
            "map_pipeline.tolerant_parse_wf", EXAMPLES_VERSION, records=["a=1", "b=2", "c", "d=4"]
        ),
        "too_many_broken": launch(
            "map_pipeline.tolerant_parse_wf", EXAMPLES_VERSION, records=["a=1", "x", "y", "b=2"]
        ),
        "overlap": launch(
            "array_checks.overlap_wf",
            CHECKS_VERSION,
            indexes=list(range(6)),
            marker_dir=str(markers),
            seconds=1.0,
        ),
        "two_of_three": launch("array_checks.at_least_two_wf", CHECKS_VERSION, xs=[3, -1, 5]),
        "one_of_three": launch("array_checks.at_least_two_wf", CHECKS_VERSION, xs=[3, -1, -5]),
        "empty": launch("array_checks.all_positive_wf", CHECKS_VERSION, xs=[]),
    }
    return {key: remote.wait(execution, **WAIT) for key, execution in launched.items()}


# pyflyte run --remote of the example


def test_pyflyte_run_remote_runs_the_map_example_to_its_gathered_result(
    flyte_examples_remote, score_batch
):
    execution = flyte_examples_remote.fetch_execution(name=score_batch)

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == "4 documents, best #2 with 1.0"


def test_array_node_reports_is_array_and_one_task_execution_with_an_entry_per_item_attempt(
    admin, score_batch
):
    node = admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=node_id(score_batch))
    )
    (task_execution,) = array_task_executions(admin, score_batch)

    assert node.metadata.is_array
    assert node.closure.phase == execution_pb2.NodeExecution.SUCCEEDED
    assert task_execution.id.retry_attempt == 0
    assert task_execution.closure.phase == TaskPhase.SUCCEEDED
    assert task_execution.closure.task_type == "container_array"
    assert items(task_execution) == {
        (0, 0): TaskPhase.SUCCEEDED,
        (1, 0): TaskPhase.SUCCEEDED,
        (2, 0): TaskPhase.FAILED,
        (2, 1): TaskPhase.SUCCEEDED,
        (3, 0): TaskPhase.SUCCEEDED,
    }


def test_each_item_attempt_has_its_external_id_and_its_own_log(admin, score_batch):
    (task_execution,) = array_task_executions(admin, score_batch)
    resources = {
        (r.index, r.retry_attempt): r for r in task_execution.closure.metadata.external_resources
    }

    external_ids = {resource.external_id for resource in resources.values()}
    assert len(external_ids) == len(resources)
    first, retry = resources[(2, 0)], resources[(2, 1)]
    first_log = urllib.request.urlopen(first.logs[0].uri, timeout=10).read()
    retry_log = urllib.request.urlopen(retry.logs[0].uri, timeout=10).read()
    assert b"fails on its first attempt" in first_log
    assert b"fails on its first attempt" not in retry_log


def test_array_node_outputs_are_the_items_outputs_in_index_order(admin, score_batch):
    (task_execution,) = array_task_executions(admin, score_batch)
    data = admin.GetTaskExecutionData(
        task_execution_pb2.TaskExecutionGetDataRequest(id=task_execution.id)
    )

    scores = [
        literal.scalar.primitive.float_value
        for literal in data.full_outputs.literals["o0"].collection.literals
    ]
    assert scores == [0.89, 0.86, 1.0, 0.25]
    documents = data.full_inputs.literals["document"].collection.literals
    assert len(documents) == 4


def test_flyteremote_sync_sees_one_task_execution_carrying_the_items(
    flyte_examples_remote, score_batch
):
    remote = flyte_examples_remote
    synced = remote.sync(remote.fetch_execution(name=score_batch), sync_nodes=True)

    node = synced.node_executions["n0"]
    assert node.metadata.is_array
    assert node.closure.phase == NodeExecutionPhase.SUCCEEDED
    assert node.outputs["o0"] == [0.89, 0.86, 1.0, 0.25]
    (attempt,) = node.task_executions
    assert attempt.outputs["o0"] == [0.89, 0.86, 1.0, 0.25]
    indexes = [r.index for r in attempt.closure.metadata.external_resources]
    assert sorted(indexes) == [0, 1, 2, 2, 3]
    assert synced.node_executions["n1"].outputs["o0"] == "4 documents, best #2 with 1.0"


def test_core_client_sync_exposes_each_item_as_a_subtask(flyte_sandbox, score_batch):
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        node = client.sync(score_batch).node_executions["n0"]

    assert node.is_array and node.kind == "array"
    (attempt,) = node.task_executions
    subtasks = {(s.index, s.retry_attempt): s for s in attempt.subtasks}
    assert sorted(subtasks) == [(0, 0), (1, 0), (2, 0), (2, 1), (3, 0)]
    assert subtasks[(2, 0)].phase.name == "FAILED"
    assert subtasks[(2, 1)].phase.name == "SUCCEEDED"
    assert all(subtask.logs and subtask.external_id for subtask in subtasks.values())


def test_console_page_lists_each_item_attempt_with_its_log(flyte_examples_remote, score_batch):
    remote = flyte_examples_remote
    url = remote.generate_console_url(remote.fetch_execution(name=score_batch))

    with urllib.request.urlopen(url, timeout=10) as response:
        page = response.read().decode()
    assert "item 2 #0 FAILED" in page and "item 2 #1 SUCCEEDED" in page
    assert "Task log (index 2, attempt 1)" in page


def test_flytekit_metrics_give_the_array_node_a_span_without_children(
    flyte_examples_remote, score_batch, capsys
):
    remote = flyte_examples_remote
    span = remote.get_execution_metrics(id=remote.fetch_execution(name=score_batch).id)

    nodes = {
        child.node_id.node_id: child
        for child in span.to_flyte_idl().spans
        if child.WhichOneof("id") == "node_id"
    }
    assert {"n0", "n1"} <= set(nodes)
    assert [c for c in nodes["n0"].spans if c.WhichOneof("id") != "operation_id"] == []
    assert nodes["n0"].end_time.ToNanoseconds() > nodes["n0"].start_time.ToNanoseconds()
    span.explain()  # flytekit lists leaf operations: the array node has none of its own
    assert "node/n1" in capsys.readouterr().out


def test_core_execution_metrics_explain_a_map_run(flyte_sandbox, score_batch):
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        span = client.execution_metrics(score_batch)

    table = span.explain()
    assert "node/n0" in table and "node/n1" in table
    assert "TASK_RUNTIME" in table


# min_success_ratio, min_successes, concurrency


def test_failed_items_under_the_ratio_leave_none_in_the_outputs(runs):
    execution = runs["tolerant"]

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == [1, 2, None, 4]
    assert execution.outputs["o1"] == 7


def test_more_failed_items_than_the_ratio_allows_fail_the_run_naming_them(admin, runs):
    execution = runs["too_many_broken"]
    (task_execution,) = array_task_executions(admin, execution.id.name)

    assert execution.closure.phase == Phase.FAILED
    error = execution.closure.error
    assert error.code == "ArrayNodeFailing"
    assert "at least 3 of 4 items must succeed, 2 failed" in error.message
    assert "malformed record 'x'" in error.message and "malformed record 'y'" in error.message
    assert task_execution.closure.phase == TaskPhase.FAILED
    assert items(task_execution)[(1, 0)] == TaskPhase.FAILED


def test_min_successes_is_the_number_of_items_that_must_succeed(admin, runs):
    assert runs["two_of_three"].closure.phase == Phase.SUCCEEDED
    assert runs["one_of_three"].closure.phase == Phase.FAILED
    outputs = (
        admin.GetTaskExecutionData(
            task_execution_pb2.TaskExecutionGetDataRequest(
                id=array_task_executions(admin, runs["two_of_three"].id.name)[0].id
            )
        )
        .full_outputs.literals["o0"]
        .collection.literals
    )
    assert [literal.WhichOneof("value") for literal in outputs] == ["scalar"] * 3
    assert outputs[1].scalar.HasField("none_type")
    assert outputs[2].scalar.primitive.integer == 5


def test_concurrency_caps_the_items_running_at_once(runs):
    execution = runs["overlap"]

    assert execution.closure.phase == Phase.SUCCEEDED
    seen = execution.outputs["o0"]
    assert len(seen) == 6
    assert max(seen) == 2


def test_an_empty_list_succeeds_with_empty_outputs(admin, runs):
    execution = runs["empty"]

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == []
    (task_execution,) = array_task_executions(admin, execution.id.name)
    assert items(task_execution) == {}


def test_terminating_a_map_run_kills_its_items_and_reports_them_aborted(
    admin, flyte_examples_remote, runs, tmp_path
):
    remote = flyte_examples_remote
    entity = remote.fetch_launch_plan(name="array_checks.overlap_wf", version=CHECKS_VERSION)
    execution = remote.execute(
        entity,
        inputs={"indexes": [0, 1, 2, 3], "marker_dir": str(tmp_path), "seconds": 600.0},
        execution_name=unique_name("arr"),
    )
    name = execution.id.name
    wait_until(lambda: len(processes_of_execution(name)) == 2, timeout=120, what="two items")

    remote.terminate(execution, cause="done with it")
    finished = remote.wait(execution, **WAIT)

    assert finished.closure.phase == Phase.ABORTED
    (task_execution,) = array_task_executions(admin, name)
    assert task_execution.closure.phase == TaskPhase.ABORTED
    phases = items(task_execution)
    assert sorted(phases.values()) == sorted(
        [TaskPhase.ABORTED, TaskPhase.ABORTED, TaskPhase.UNDEFINED, TaskPhase.UNDEFINED]
    )
    wait_until(lambda: processes_of_execution(name) == [], what="the item processes to end")
