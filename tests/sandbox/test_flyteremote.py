"""flytekit's FlyteRemote, unmodified, reading from the sandbox (real executions, real tasks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flyte_examples import DOMAIN, EXAMPLES_VERSION, PROJECT, unique_name, wait_until
from flytekit.models import filters
from flytekit.models.core.execution import NodeExecutionPhase, TaskExecutionPhase
from flytekit.models.core.execution import WorkflowExecutionPhase as Phase

pytestmark = pytest.mark.slow


def _full_name(remote, short: str, kind: str = "launch_plan") -> str:
    """The registered name of an example entity (its module path depends on packaging)."""
    list_ids = getattr(remote.client, f"list_{kind}_ids_paginated")
    names = [entity.name for entity in list_ids(PROJECT, DOMAIN, limit=1000)[0]]
    return next(n for n in names if n == short or n.endswith(f".{short}"))


def _run(remote, launch_plan: str, **inputs):
    name = _full_name(remote, launch_plan)
    entity = remote.fetch_launch_plan(name=name, version=EXAMPLES_VERSION)
    return remote.execute(entity, inputs=inputs, execution_name=unique_name("remote"))


@pytest.fixture(scope="module")
def hello(flyte_examples_remote):
    """A finished execution of ``hello.hello_wf`` with name "sandbox"."""
    remote = flyte_examples_remote
    execution = _run(remote, "hello.hello_wf", name="sandbox")
    return remote.wait(
        execution, timeout=timedelta(seconds=120), poll_interval=timedelta(seconds=0.3)
    )


def test_fetch_execution_returns_inputs_and_outputs(flyte_examples_remote, hello):
    fetched = flyte_examples_remote.fetch_execution(name=hello.id.name)

    assert fetched.closure.phase == Phase.SUCCEEDED
    assert fetched.inputs["name"] == "sandbox"
    assert fetched.outputs["o0"] == "hello sandbox"
    assert fetched.closure.started_at is not None and fetched.closure.duration.total_seconds() > 0


def test_sync_with_nodes_returns_each_node_and_task_attempt_with_data(flyte_examples_remote, hello):
    synced = flyte_examples_remote.sync(hello, sync_nodes=True)

    assert set(synced.node_executions) == {"start-node", "n0", "end-node"}
    node = synced.node_executions["n0"]
    assert node.closure.phase == NodeExecutionPhase.SUCCEEDED
    assert node.inputs["name"] == "sandbox"
    assert node.outputs["o0"] == "hello sandbox"
    (attempt,) = node.task_executions
    assert attempt.closure.phase == TaskExecutionPhase.SUCCEEDED
    assert attempt.outputs["o0"] == "hello sandbox"


def test_recent_executions_filtered_by_launch_plan(flyte_examples_remote, hello):
    name = _full_name(flyte_examples_remote, "hello.hello_wf")
    by_launch_plan = [filters.Equal("launch_plan.name", name)]

    recent = flyte_examples_remote.recent_executions(
        project=PROJECT, domain=DOMAIN, limit=100, filters=by_launch_plan
    )

    assert hello.id.name in [e.id.name for e in recent]
    assert {e.spec.launch_plan.name for e in recent} == {name}


def test_console_url_points_at_the_sandbox_console_endpoint(flyte_examples_remote, hello):
    url = flyte_examples_remote.generate_console_url(hello)

    assert url.endswith(f"/console/projects/{PROJECT}/domains/{DOMAIN}/executions/{hello.id.name}")
    assert url.startswith("http://127.0.0.1:")


def test_console_url_serves_a_page_with_the_phase_nodes_and_outputs(flyte_examples_remote, hello):
    import urllib.request

    url = flyte_examples_remote.generate_console_url(hello)

    with urllib.request.urlopen(url) as response:
        page = response.read().decode()
    assert "SUCCEEDED" in page
    assert "<td>n0</td>" in page
    assert "hello sandbox" in page


def test_single_task_execution_runs_the_task_and_is_recognised_as_one(flyte_examples_remote):
    remote = flyte_examples_remote
    name = _full_name(remote, "hello.say_hello", kind="task")
    task = remote.fetch_task(name=name, version=EXAMPLES_VERSION)

    execution = remote.execute(task, inputs={"name": "task"}, execution_name=unique_name("task"))
    execution = remote.wait(
        execution, timeout=timedelta(seconds=120), poll_interval=timedelta(seconds=0.3)
    )

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == "hello task"
    assert execution.spec.launch_plan.resource_type == 1  # TASK


def test_list_signals_shows_the_gate_once_it_is_reached(flyte_examples_remote):
    remote = flyte_examples_remote
    execution = _run(remote, "approvals.approval_wf", version=7)

    signals = wait_until(lambda: remote.list_signals(execution.id.name), what="the review gate")
    remote.terminate(execution, cause="listed")

    assert [s.id.signal_id for s in signals] == ["review"]
    assert signals[0].type.simple == 4  # BOOLEAN


def test_terminate_leaves_aborting_then_aborted_with_the_cause(flyte_examples_remote):
    remote = flyte_examples_remote
    execution = _run(remote, "long_sleep.long_sleep_wf", seconds=600)

    remote.terminate(execution, cause="enough")
    right_after = remote.fetch_execution(name=execution.id.name)
    done = remote.wait(
        execution, timeout=timedelta(seconds=60), poll_interval=timedelta(seconds=0.3)
    )

    assert right_after.closure.phase in (Phase.ABORTING, Phase.ABORTED)
    assert done.closure.phase == Phase.ABORTED
    assert done.closure.abort_metadata.cause == "enough"


def _backfill(remote, **options):
    return remote.launch_backfill(
        project=PROJECT,
        domain=DOMAIN,
        from_date=datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc),
        to_date=datetime(2026, 1, 3, 0, 0, tzinfo=timezone.utc),
        launchplan="daily_report",
        launchplan_version=EXAMPLES_VERSION,
        **options,
    )


def test_backfill_dry_run_builds_one_node_per_cron_tick(flyte_examples_remote):
    workflow = _backfill(flyte_examples_remote, dry_run=True)

    assert len(workflow.nodes) == 2


def test_executed_backfill_runs_a_child_execution_per_tick(flyte_examples_remote):
    remote = flyte_examples_remote

    execution = _backfill(remote, execution_name=unique_name("backfill"), version=unique_name("v"))
    execution = remote.wait(
        execution, timeout=timedelta(seconds=180), poll_interval=timedelta(seconds=0.5)
    )

    assert execution.closure.phase == Phase.SUCCEEDED
    children = [
        node.closure.target_metadata.execution_id.name
        for node_id, node in execution.node_executions.items()
        if node_id not in ("start-node", "end-node")
    ]
    assert len(children) == 2
    for child in children:
        assert remote.fetch_execution(name=child).closure.phase == Phase.SUCCEEDED


def _operations(span) -> list[str]:
    found = [span.operation_id] if span.operation_id else []
    for child in span.spans:
        found.extend(_operations(child))
    return found


def test_execution_metrics_break_the_run_into_setup_runtime_and_teardown(
    flyte_examples_remote, hello
):
    from flyteidl.admin import execution_pb2

    response = flyte_examples_remote.client._stub.GetExecutionMetrics(
        execution_pb2.WorkflowExecutionGetMetricsRequest(id=hello.id.to_flyte_idl(), depth=10)
    )

    span = response.span
    assert span.workflow_id.name == hello.id.name
    (node_span,) = [s for s in span.spans if s.node_id.node_id == "n0"]
    assert node_span.spans[1].task_id.node_execution_id.node_id == "n0"
    operations = _operations(span)
    for expected in ("WORKFLOW_SETUP", "NODE_TRANSITION", "NODE_SETUP", "TASK_RUNTIME"):
        assert expected in operations
    assert span.end_time.ToNanoseconds() >= span.start_time.ToNanoseconds()


def test_flytekit_explains_the_metrics_of_a_workflow_with_a_sub_workflow(flyte_examples_remote):
    remote = flyte_examples_remote
    execution = _run(remote, "composition.composed_wf", x=2)
    execution = remote.wait(
        execution, timeout=timedelta(seconds=120), poll_interval=timedelta(seconds=0.3)
    )

    metrics = remote.get_execution_metrics(execution.id)
    metrics.explain()

    assert execution.closure.phase == Phase.SUCCEEDED
    operations = _operations(metrics.to_flyte_idl())
    # double and add run in the sub-workflow node, square in the launch-plan node's child.
    assert operations.count("TASK_RUNTIME") == 3
    assert "WORKFLOW_TEARDOWN" in operations


def test_pyflyte_run_remote_uploads_a_file_input_the_task_can_read(
    flyte_examples_remote, flyte_sandbox_config, tmp_path
):
    from flyte_examples import pyflyte

    data = tmp_path / "payload.bin"
    data.write_bytes(b"x" * 4321)
    name = unique_name("file")

    result = pyflyte(
        flyte_sandbox_config,
        "run",
        "--remote",
        "--name",
        name,
        "tests/sandbox/workflows/file_inputs.py",
        "file_size_wf",
        "--f",
        str(data),
    )
    execution = flyte_examples_remote.wait(
        flyte_examples_remote.fetch_execution(name=name),
        timeout=timedelta(seconds=120),
        poll_interval=timedelta(seconds=0.3),
    )

    assert result.returncode == 0, result.stderr
    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == 4321
