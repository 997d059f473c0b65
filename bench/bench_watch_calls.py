"""Prints the RPCs a tick costs when one ExecutionWatcher waits on 1,000 running executions.

The bound is ceil(N/100) ListExecutions a tick for one project and domain (a ``value_in`` filter on
the name, at most 100 names a call). The bench starts a sandbox whose executor never runs anything,
so the executions stay non-terminal, launches 1,000 of them, lets the watcher tick a few times
until its timeout, and counts what it sent.

Beside it, flytekit's FlyteRemote: it waits on one execution at a time, so N waits are N
``FlyteRemote.wait`` loops, and each of their polls is one ``sync_execution`` (with nodes, its
default). The RPCs of one such poll are counted on a sample of the same executions and scaled to N.

Run: ``.venv/bin/python bench/bench_watch_calls.py`` (about a minute).
Last run: 1,000 executions, 5 ticks, 50 ListExecutions (10 a tick), no GetExecution; FlyteRemote
3 RPCs per execution per poll, so 3,000 a tick (300x).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

WAITS = 1000
TICKS = 5
POLL_INTERVAL = 0.5
REMOTE_SAMPLE = 20


def _idle_engine():
    """The never-running executor of the Airflow watch bench (this directory is on sys.path)."""
    from bench_airflow_watch import IdleEngine

    return IdleEngine()


def main() -> None:
    import subprocess
    import sys

    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig
    from flyte_bridge.errors import FlyteTimeoutError
    from flyte_bridge.sandbox.api import start_sandbox

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as work:
        sandbox = start_sandbox(data_dir=Path(work) / "sandbox", engine=_idle_engine())
        try:
            config = sandbox.write_flytekit_config(Path(work) / "config.yaml")
            pyflyte = str(Path(sys.executable).with_name("pyflyte"))
            subprocess.run(
                [pyflyte, "--config", str(config), "register", "--project", "flytesnacks",
                 "--domain", "development", "--version", "bench-watch", "examples/flyte"],
                cwd=repo, check=True, capture_output=True, timeout=300,
            )  # fmt: skip
            with FlyteClient(ClientConfig.for_sandbox(sandbox.endpoint)) as client:
                ids = [client.launch("flyte.hello.hello_wf").id for _ in range(WAITS)]
                before = sandbox.rpc_counts.snapshot()
                try:
                    client.watcher().wait(
                        ids, timeout=POLL_INTERVAL * (TICKS - 1), poll_interval=POLL_INTERVAL
                    )
                except FlyteTimeoutError:
                    pass
                calls = sandbox.rpc_counts.since(before)

            remote = _flytekit_remote(config)
            before = sandbox.rpc_counts.snapshot()
            for execution_id in ids[:REMOTE_SAMPLE]:
                flyte_execution = remote.fetch_execution(name=execution_id.name)
                sample_start = sandbox.rpc_counts.snapshot()
                remote.sync_execution(flyte_execution, sync_nodes=True)  # one poll of wait()
                poll_calls = sandbox.rpc_counts.since(sample_start)
            remote_calls = sandbox.rpc_counts.since(before)
        finally:
            sandbox.stop()

    lists = calls.get("ListExecutions", 0)
    ticks = max(1, round(lists / math.ceil(WAITS / 100)))
    print(f"{WAITS} running executions, {ticks} ticks")
    print(
        f"ListExecutions: {lists} ({lists / ticks:.1f} a tick; bound ceil(N/100) = {WAITS // 100})"
    )
    print(f"GetExecution:   {calls.get('GetExecution', 0)}")
    print(f"all RPCs:       {sum(calls.values())} ({sum(calls.values()) / ticks:.1f} a tick)")
    per_poll = sum(poll_calls.values())
    remote_tick = per_poll * WAITS
    print(
        f"FlyteRemote.wait, one poll of one execution: {per_poll} RPCs "
        f"({', '.join(f'{m} {n}' for m, n in sorted(poll_calls.items()))}; "
        f"{sum(remote_calls.values())} RPCs for fetch + one poll of {REMOTE_SAMPLE})"
    )
    print(
        f"FlyteRemote, {WAITS} waits: {remote_tick} RPCs a tick; "
        f"ratio {remote_tick / (lists / ticks):.0f}x more than the watcher"
    )


def _flytekit_remote(config: Path):
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    return FlyteRemote(
        Config.auto(config_file=str(config)),
        default_project="flytesnacks",
        default_domain="development",
    )


if __name__ == "__main__":
    main()
