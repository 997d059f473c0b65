"""Prints the ListExecutions calls a tick costs when 200 deferred Flyte sensors wait at once.

An Airflow triggerer runs every deferred task's trigger in one event loop. The provider's
``FlyteExecutionTrigger`` waits through the core's shared ``AsyncExecutionWatcher``, so 200 of them
should cost ceil(200/100) = 2 ListExecutions a tick for one project and domain, not 200
GetExecution calls. The bench starts a sandbox whose executor never runs anything (executions stay
non-terminal), launches 200 executions, runs 200 triggers built exactly as the sensor builds them
(serialized and rebuilt, as the triggerer does) for a few ticks, and counts the RPCs the client
sends.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAITS = 200
POLL_INTERVAL = 1.0
TICKS = 5
REPO = Path(__file__).resolve().parents[1]


class IdleEngine:
    """An executor that accepts executions and never runs them."""

    def start(self, execution_id, closure, inputs, spec) -> None:
        pass

    def abort(self, execution_id, cause) -> None:
        pass

    def notify_signal_set(self, signal_id) -> None:
        pass

    def notify_execution_done(self, execution_id) -> None:
        pass

    def shutdown(self, timeout: float = 10.0) -> None:
        pass


async def wait_in_triggerer(execution_ids: list[str]) -> tuple[int, collections.Counter]:
    """Runs the sensors' triggers for TICKS poll intervals; returns ticks and RPCs by method."""
    from airflow_provider.triggers.flyte import FlyteExecutionTrigger
    from flyte_bridge.transport import AsyncTransport
    from flyte_bridge.watcher import AsyncExecutionWatcher

    calls: collections.Counter = collections.Counter()
    unary = AsyncTransport.unary

    async def counted(self, service, method, request, **kwargs):
        calls[method] += 1
        return await unary(self, service, method, request, **kwargs)

    AsyncTransport.unary = counted
    triggers = []
    for execution_id in execution_ids:
        classpath, kwargs = FlyteExecutionTrigger(
            execution_id=execution_id,
            poll_interval=POLL_INTERVAL,
            terminate_on_kill=False,
            terminate_on_timeout=False,
        ).serialize()
        triggers.append(FlyteExecutionTrigger(**json.loads(json.dumps(kwargs))))

    async def drain(trigger):
        async for event in trigger.run():
            return event

    tasks = [asyncio.create_task(drain(trigger)) for trigger in triggers]
    await asyncio.sleep(POLL_INTERVAL * TICKS)
    finished = sum(task.done() for task in tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    AsyncTransport.unary = unary
    if finished:
        raise SystemExit(f"{finished} triggers fired although no execution ended")
    loop_watchers = AsyncExecutionWatcher._shared.get(asyncio.get_running_loop(), {})
    return sum(w.ticks for w in loop_watchers.values()), calls


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-home-"))
    os.environ.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")

    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig
    from flyte_bridge.sandbox.api import start_sandbox

    sandbox = start_sandbox(port=0, temporary=True, engine=IdleEngine())
    try:
        config_file = sandbox.write_flytekit_config(home / "flyte.yaml")
        subprocess.run(
            [str(Path(sys.executable).parent / "pyflyte"), "--config", str(config_file),
             "register", "--project", "flytesnacks", "--domain", "development",
             "--version", "bench", "long_sleep.py"],
            cwd=REPO / "examples" / "flyte", check=True, capture_output=True,
        )  # fmt: skip
        host, port = sandbox.endpoint.rsplit(":", 1)
        os.environ["AIRFLOW_CONN_FLYTE_DEFAULT"] = json.dumps(
            {"conn_type": "flyte", "host": host, "port": int(port),
             "extra": {"insecure": True, "project": "flytesnacks", "domain": "development"}}
        )  # fmt: skip
        with FlyteClient(ClientConfig.for_sandbox(sandbox.endpoint)) as client:
            ids = [
                str(client.launch("long_sleep.long_sleep_wf", name=f"bench-{i}").id)
                for i in range(WAITS)
            ]
        started = time.monotonic()
        ticks, calls = asyncio.run(wait_in_triggerer(ids))
        elapsed = time.monotonic() - started
    finally:
        sandbox.stop()

    expected = math.ceil(WAITS / 100)
    per_tick = calls["ListExecutions"] / max(ticks, 1)
    print(
        f"{WAITS} deferred sensors, poll interval {POLL_INTERVAL:g}s, {elapsed:.1f}s, {ticks} ticks"
    )
    print(f"  ListExecutions: {calls['ListExecutions']} ({per_tick:g} a tick; expected {expected})")
    print(f"  GetExecution:   {calls['GetExecution']} (one trigger per execution polling alone: "
          f"{WAITS} a tick)")  # fmt: skip
    print(f"  all RPCs:       {dict(calls)}")
    return 0 if per_tick <= expected else 1


if __name__ == "__main__":
    sys.exit(main())
