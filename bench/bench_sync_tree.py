"""Prints how much faster ``FlyteClient.sync`` walks a 1,000-node tree than flytekit's FlyteRemote.

The tree is one execution of a generated workflow: 10 sub-workflow nodes, each running 99 task
nodes (1,000 node executions, 990 task executions). It is seeded into a sandbox whose executor
runs nothing and writes, for every node and attempt, the events propagator would send, with real
(empty) input and output documents in the store. Every RPC then gets 20 ms of latency from the
sandbox's fault injection, as from a remote admin. Both clients sync the finished execution with
its whole node tree; the figure is the ratio of their wall times, and the RPC counts of each.

The tree has sub-workflow children only: dynamic and array nodes wait for the sandbox's part two,
and a launch-plan child is one more execution synced the same way.

Run: ``.venv/bin/python bench/bench_sync_tree.py`` (about two minutes, most of it FlyteRemote).
Last run: 1,000 node executions, flyte_bridge 2.9 s (1,003 RPCs), FlyteRemote 95.8 s (3,988 RPCs),
33.5x.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.event import event_pb2
from google.protobuf import timestamp_pb2

SUBWORKFLOWS = 10
TASKS_PER_SUBWORKFLOW = 99
LATENCY = 0.02
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "bench-tree-v1"
NodePhase = core_execution_pb2.NodeExecution.Phase
TaskPhase = core_execution_pb2.TaskExecution.Phase
WorkflowPhase = core_execution_pb2.WorkflowExecution.Phase

WORKFLOW_MODULE = textwrap.dedent(
    f"""
    from flytekit import task, workflow

    @task
    def echo(x: int) -> int:
        return x

    @workflow
    def inner(x: int) -> int:
        results = [echo(x=x) for _ in range({TASKS_PER_SUBWORKFLOW})]
        return results[-1]

    @workflow
    def outer(x: int = 1) -> int:
        results = [inner(x=x) for _ in range({SUBWORKFLOWS})]
        return results[-1]
    """
)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class SeedingEngine:
    """An executor that runs nothing: it records a finished tree for every execution started."""

    def __init__(self) -> None:
        self.server = None

    def start(self, execution_id, closure, inputs, spec) -> None:
        executions = self.server.executions
        store = self.server.store
        key = f"bench/{execution_id.name}"
        empty_uri = store.uri(key, "empty.pb")
        store.write_bytes(empty_uri, literals_pb2.LiteralMap().SerializeToString())
        subworkflows = {sub.template.id.name: sub.template for sub in closure.sub_workflows}

        def node_event(unique_id, spec_id, phase, parent=None, is_parent=False):
            event = event_pb2.NodeExecutionEvent(
                id=identifier_pb2.NodeExecutionIdentifier(
                    node_id=unique_id, execution_id=execution_id
                ),
                producer_id="bench",
                phase=phase,
                occurred_at=_now(),
                reported_at=_now(),
                spec_node_id=spec_id,
                node_name=spec_id,
                input_uri=empty_uri,
                is_parent=is_parent,
            )
            if phase == NodePhase.SUCCEEDED:
                event.output_uri = empty_uri
            if parent is not None:
                event.parent_node_metadata.node_id = parent
            executions.record_node_event(event)

        def task_event(unique_id, task_id, phase):
            event = event_pb2.TaskExecutionEvent(
                task_id=task_id,
                parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                    node_id=unique_id, execution_id=execution_id
                ),
                retry_attempt=0,
                phase=phase,
                producer_id="bench",
                occurred_at=_now(),
                reported_at=_now(),
                input_uri=empty_uri,
            )
            if phase == TaskPhase.SUCCEEDED:
                event.output_uri = empty_uri
            executions.record_task_event(event)

        def workflow_event(phase):
            event = event_pb2.WorkflowExecutionEvent(
                execution_id=execution_id, producer_id="bench", phase=phase, occurred_at=_now()
            )
            if phase == WorkflowPhase.SUCCEEDED:
                event.output_uri = empty_uri
            executions.record_workflow_event(event)

        workflow_event(WorkflowPhase.RUNNING)
        for node in closure.primary.template.nodes:
            if node.id in ("start-node", "end-node"):
                continue
            node_event(node.id, node.id, NodePhase.RUNNING, is_parent=True)
            template = subworkflows[node.workflow_node.sub_workflow_ref.name]
            for child in template.nodes:
                if child.id in ("start-node", "end-node"):
                    continue
                unique_id = f"{node.id}-0-{child.id}"
                task_id = child.task_node.reference_id
                node_event(unique_id, child.id, NodePhase.RUNNING, parent=node.id)
                task_event(unique_id, task_id, TaskPhase.RUNNING)
                task_event(unique_id, task_id, TaskPhase.SUCCEEDED)
                node_event(unique_id, child.id, NodePhase.SUCCEEDED, parent=node.id)
            node_event(node.id, node.id, NodePhase.SUCCEEDED, is_parent=True)
        workflow_event(WorkflowPhase.SUCCEEDED)

    def __getattr__(self, name: str):
        """abort, notify_* and shutdown: nothing runs, so there is nothing to do."""
        return lambda *args, **kwargs: None


def main() -> None:
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig
    from flyte_bridge.sandbox.api import start_sandbox

    engine = SeedingEngine()
    with tempfile.TemporaryDirectory() as work:
        sandbox = start_sandbox(data_dir=Path(work) / "sandbox", engine=engine)
        engine.server = sandbox.server
        try:
            module = Path(work) / "code" / "bench_tree.py"
            module.parent.mkdir()
            module.write_text(WORKFLOW_MODULE)
            config = sandbox.write_flytekit_config(Path(work) / "config.yaml")
            pyflyte = str(Path(sys.executable).with_name("pyflyte"))
            subprocess.run(
                [pyflyte, "--config", str(config), "register", "--project", PROJECT,
                 "--domain", DOMAIN, "--version", VERSION, "bench_tree.py"],
                cwd=module.parent, check=True, capture_output=True, timeout=300,
            )  # fmt: skip

            client_config = ClientConfig.for_sandbox(sandbox.endpoint, rpc_timeout=60)
            with FlyteClient(client_config) as client:
                execution = client.launch("bench_tree.outer")
                assert client.fetch_execution(execution.id).is_successful

                sandbox.faults.set(latency=LATENCY)
                before = sandbox.rpc_counts.snapshot()
                started = time.perf_counter()
                synced = client.sync(execution)
                ours = time.perf_counter() - started
                our_calls = sum(sandbox.rpc_counts.since(before).values())
                nodes = sum(1 for _ in synced.iter_nodes())
                attempts = sum(len(n.task_executions) for n in synced.iter_nodes())

            remote = _flytekit_remote(config)
            before = sandbox.rpc_counts.snapshot()
            started = time.perf_counter()
            flyte_execution = remote.fetch_execution(name=execution.id.name)
            remote.sync_execution(flyte_execution, sync_nodes=True)
            theirs = time.perf_counter() - started
            their_calls = sum(sandbox.rpc_counts.since(before).values())
        finally:
            sandbox.stop()

    print(f"tree: {nodes} node executions, {attempts} task executions; {LATENCY * 1000:.0f} ms/RPC")
    print(f"flyte_bridge FlyteClient.sync: {ours:7.2f} s  {our_calls:5d} RPCs")
    print(f"flytekit FlyteRemote.sync:     {theirs:7.2f} s  {their_calls:5d} RPCs")
    print(f"speed-up: {theirs / ours:.1f}x (target: at least 10x)")


def _flytekit_remote(config: Path):
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    return FlyteRemote(
        Config.auto(config_file=str(config)), default_project=PROJECT, default_domain=DOMAIN
    )


if __name__ == "__main__":
    main()
