"""sync(): the whole node tree, concurrently bounded, finished parts fetched once (C06, C08)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

from flyte_bridge.client import FlyteClient
from flyte_bridge.transport import SyncTransport


class CountingTransport:
    """A SyncTransport that counts calls per method and the most calls in flight at once."""

    def __init__(self, inner: SyncTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def unary(self, service: str, method: str, request: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls[method] += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.005)  # a little latency, so overlapping calls do overlap
            return self.inner.unary(service, method, request, **kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def composed(sandbox_client):
    """A finished composed_wf: sub-workflow node n0 (two task nodes), launch-plan node n1."""
    execution = sandbox_client.launch("composition.composed_wf", inputs={"x": 3})
    return sandbox_client.wait(execution, timeout=180, poll_interval=0.3)


@pytest.fixture
def counting(sandbox_config):
    transport = CountingTransport(SyncTransport(sandbox_config))
    with FlyteClient(sandbox_config, transport=transport, max_concurrency=3) as client:
        yield client, transport


def test_sync_walks_sub_workflow_and_launch_plan_children(client, composed):
    synced = client.sync(composed)

    subworkflow, launch_plan_node = synced.node_executions["n0"], synced.node_executions["n1"]
    assert composed.is_successful
    assert subworkflow.kind == "workflow" and subworkflow.is_parent
    assert [(c.spec_node_id, c.kind) for c in subworkflow.children.values()] == [
        ("n0", "task"),
        ("n1", "task"),
    ]
    assert all(len(c.task_executions) == 1 for c in subworkflow.children.values())
    child = launch_plan_node.child_execution
    assert launch_plan_node.kind == "launch_plan"
    assert child is not None and child.mode == "CHILD_WORKFLOW" and child.is_successful
    assert [t.phase.name for t in child.node_executions["n0"].task_executions] == ["SUCCEEDED"]


def test_sync_without_nodes_fetches_only_the_execution(client, composed):
    synced = client.sync(composed, sync_nodes=False)

    assert synced.node_executions == {}
    assert synced.is_successful


def test_every_retry_attempt_is_listed(client, finished_runs):
    synced = client.sync(finished_runs["retry"])

    attempts = synced.node_executions["n0"].task_executions
    assert [a.retry_attempt for a in attempts] == [0, 1]
    assert attempts[0].is_done and not attempts[0].is_successful
    assert attempts[1].is_successful


def test_c08_a_run_paused_at_a_gate_syncs_with_the_gate_node_running(sandbox_client):
    execution = sandbox_client.launch("approvals.approval_wf", inputs={"version": 1})
    try:
        deadline = time.monotonic() + 60
        while not sandbox_client.list_signals(execution) and time.monotonic() < deadline:
            time.sleep(0.3)

        synced = sandbox_client.sync(execution)
    finally:
        sandbox_client.terminate(execution, "test finished")

    gates = [n for n in synced.iter_nodes() if n.is_gate]
    assert [g.spec_node_id for g in gates] == ["n1"]
    assert gates[0].phase.name == "RUNNING" and gates[0].task_executions == []


def test_c06_a_second_sync_of_a_finished_run_fetches_nothing_below_the_top(counting, composed):
    client, transport = counting
    client.sync(composed)
    transport.calls.clear()

    again = client.sync(composed)

    assert dict(transport.calls) == {"GetExecution": 1, "ListNodeExecutions": 1}
    assert again.node_executions["n1"].child_execution.is_successful


def test_sync_keeps_at_most_max_concurrency_calls_in_flight(counting, composed):
    client, transport = counting

    client.sync(composed)

    assert 2 <= transport.most_in_flight <= 3


def test_c06_wait_with_sync_nodes_lists_nodes_once_at_the_end(counting, finished_runs):
    client, transport = counting

    finished = client.wait(finished_runs["hello"], timeout=30, sync_nodes=True)

    assert list(finished.node_executions) == ["n0"]
    assert transport.calls["ListNodeExecutions"] == 1


def test_c06_waiting_on_a_running_run_with_sync_nodes_lists_its_nodes_once(
    counting, sandbox_client
):
    client, transport = counting
    running = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 2})

    finished = client.wait(running, timeout=120, poll_interval=0.2, sync_nodes=True)

    assert finished.is_successful and list(finished.node_executions) == ["n0"]
    assert transport.calls["GetExecution"] >= 5, "it polled while the run went on"
    assert transport.calls["ListNodeExecutions"] == 1, "the nodes were synced once, at the end"


def test_c11_a_dataclass_output_of_a_real_task_reads_as_a_dict_and_downloads_as_json(
    client, sandbox_client, tmp_path
):
    report = sandbox_client.launch(
        "daily_report", inputs={"kickoff_time": dt.datetime(2026, 3, 7, 6, tzinfo=dt.timezone.utc)}
    )
    synced = client.sync(sandbox_client.wait(report, timeout=120, poll_interval=0.3))

    outputs = client.fetch_outputs(synced.node_executions["n0"])
    written = client.download(outputs, tmp_path / "metrics")

    assert outputs == {"o0": {"region": "eu", "day": "2026-03-07", "total": 70}}
    assert json.loads((written / "o0.json").read_text()) == outputs["o0"]


@pytest.fixture(scope="module")
def fanout(sandbox_client):
    """A finished fanout_wf: dynamic n0 starting two dynamics, each starting four task nodes."""
    execution = sandbox_client.launch("dynamic_fanout.fanout_wf")
    return sandbox_client.wait(execution, timeout=180, poll_interval=0.3)


def test_nodes_made_by_dynamics_have_their_kinds_and_no_start_or_end_nodes(client, fanout):
    synced = client.sync(fanout)

    def walk(nodes):
        for node in nodes.values():
            yield node
            yield from walk(node.children)

    every = list(walk(synced.node_executions))
    inner = [node for node in every if node.node_id.count("-0-") == 2]
    assert len(inner) == 8  # two regions, three count_events and one total each
    assert {node.spec_node_id for node in inner} == {"dn0", "dn1", "dn2", "dn3"}
    assert all(node.kind == "task" for node in every), [(n.node_id, n.kind) for n in every]
    assert not [node for node in every if "start-node" in (node.node_id, node.spec_node_id)]


def test_a_dynamic_node_costs_one_more_call_to_read_what_it_made(counting, fanout):
    client, transport = counting

    client.sync(fanout)

    assert transport.calls["GetDynamicNodeWorkflow"] == 3  # n0 and the two dynamics it started
