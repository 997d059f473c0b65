"""Prints how much faster ``FlyteClient.sync`` walks a 1,000-node tree than flytekit's FlyteRemote.

The tree is one finished execution of a generated workflow with every kind of parent node (see
``tree_seed.py``): 4 sub-workflow nodes of 99 task nodes, 3 dynamic nodes whose generated
workflows run 99 task nodes each, 20 array nodes of 10 items (one task execution each, listing
its items), and 3 launch-plan nodes whose child executions run 99 task nodes each: 1,020 node
executions. It is seeded into a sandbox whose executor runs nothing and records the events
propeller would send, with real (empty) input and output documents in the store. Every RPC then
gets 20 ms of latency from the sandbox's fault injection, as from a remote admin. Both clients
sync the finished execution with its whole node tree; the figure is the ratio of their wall
times, and the RPC counts of each.

Run: ``.venv/bin/python bench/bench_sync_tree.py`` (a few minutes, most of it FlyteRemote).
Last runs (2 cores shared with other work): 1,020 node executions, flyte_bridge 2.75 s
(1,032 RPCs) against FlyteRemote 93.9 s (4,085 RPCs), 34.1x; on a busier machine 4.2 s against
96.6 s, 22.9x.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tree_seed import DOMAIN, MODULE, PROJECT, SeedingEngine, TreeShape, register

LATENCY = 0.02
VERSION = "bench-tree-v2"


def main() -> None:
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig
    from flyte_bridge.sandbox.api import start_sandbox

    shape = TreeShape()
    engine = SeedingEngine(shape)
    with tempfile.TemporaryDirectory() as work:
        sandbox = start_sandbox(data_dir=Path(work) / "sandbox", engine=engine)
        engine.server = sandbox.server
        try:
            config = sandbox.write_flytekit_config(Path(work) / "config.yaml")
            register(config, Path(work), shape, VERSION)

            client_config = ClientConfig.for_sandbox(sandbox.endpoint, rpc_timeout=60)
            with FlyteClient(client_config) as client:
                execution = client.launch(f"{MODULE}.outer")
                assert client.fetch_execution(execution.id).is_successful

                sandbox.faults.set(latency=LATENCY)
                before = sandbox.rpc_counts.snapshot()
                started = time.perf_counter()
                synced = client.sync(execution)
                ours = time.perf_counter() - started
                our_calls = sum(sandbox.rpc_counts.since(before).values())
            nodes = list(synced.iter_nodes())
            attempts = sum(len(n.task_executions) for n in nodes)
            kinds = {
                "dynamic": sum(n.is_dynamic for n in nodes),
                "array": sum(n.is_array for n in nodes),
                "sub-workflow": sum(n.kind == "workflow" for n in nodes),
                "launch-plan": sum(n.child_execution is not None for n in nodes),
            }

            remote = _flytekit_remote(config)
            before = sandbox.rpc_counts.snapshot()
            started = time.perf_counter()
            flyte_execution = remote.fetch_execution(name=execution.id.name)
            remote.sync_execution(flyte_execution, sync_nodes=True)
            theirs = time.perf_counter() - started
            their_calls = sum(sandbox.rpc_counts.since(before).values())
        finally:
            sandbox.stop()

    parents = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    print(f"tree: {len(nodes)} node executions ({parents} parents), {attempts} task executions")
    print(f"latency: {LATENCY * 1000:.0f} ms per RPC")
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
