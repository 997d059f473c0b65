"""Prints the RPCs a tick costs when one ExecutionWatcher waits on 1,000 running executions.

The bound is ceil(N/100) ListExecutions a tick for one project and domain (a ``value_in`` filter on
the name, at most 100 names a call), against N GetExecution calls for N separate waits. The bench
starts a sandbox whose executor never runs anything, so the executions stay non-terminal, launches
1,000 of them, lets the watcher tick a few times until its timeout, and counts what it sent.

Run: ``.venv/bin/python bench/bench_watch_calls.py`` (about half a minute).
Last run: 1,000 executions, 4 ticks, 40 ListExecutions (10 a tick), no GetExecution.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

WAITS = 1000
TICKS = 5
POLL_INTERVAL = 0.5


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
        finally:
            sandbox.stop()

    lists = calls.get("ListExecutions", 0)
    ticks = max(1, round(lists / math.ceil(WAITS / 100)))
    print(f"{WAITS} running executions, {ticks} ticks")
    print(
        f"ListExecutions: {lists} ({lists / ticks:.1f} a tick; bound ceil(N/100) = {WAITS // 100})"
    )
    print(f"GetExecution:   {calls.get('GetExecution', 0)}")
    print(f"all RPCs:       {sum(calls.values())}")


if __name__ == "__main__":
    main()
