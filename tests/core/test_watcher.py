"""Watchers: N waits cost ceil(N/100) ListExecutions a tick, sync and shared async."""

from __future__ import annotations

import asyncio
import math

import pytest
from flyteidl.core.execution_pb2 import WorkflowExecution

from flyte_bridge.aio import AsyncFlyteClient
from flyte_bridge.client import FlyteClient
from flyte_bridge.errors import FlyteNotFoundError, FlyteTimeoutError
from flyte_bridge.models import ExecutionId
from flyte_bridge.watcher import AsyncExecutionWatcher, tick_calls

RUNNING = WorkflowExecution.RUNNING
SUCCEEDED = WorkflowExecution.SUCCEEDED


def _ids(count: int) -> list[ExecutionId]:
    return [ExecutionId("flytesnacks", "development", f"w{i}") for i in range(count)]


def test_a_tick_is_one_call_per_scope_and_hundred_names():
    ids = _ids(250) + [ExecutionId("other", "production", f"x{i}") for i in range(3)]

    calls = tick_calls(ids)

    assert len(calls) == math.ceil(250 / 100) + 1
    assert max(c.request.filters.count(";") + 1 for c in calls) == 100
    assert {c.request.id.project for c in calls} == {"flytesnacks", "other"}


def test_sync_watcher_waits_on_250_executions_with_three_calls_a_tick(scripted_admin):
    admin, config = scripted_admin
    ids = _ids(250)
    for execution_id in ids:
        admin.script[execution_id.name] = [RUNNING, RUNNING, SUCCEEDED]

    with FlyteClient(config) as client:
        finished = client.watcher().wait(ids, timeout=30, poll_interval=0.05)

    assert set(finished) == set(ids)
    assert all(e.phase.name == "SUCCEEDED" for e in finished.values())
    assert admin.calls["ListExecutions"] == 3 * 3  # 3 ticks, ceil(250/100) calls each
    assert "GetExecution" not in admin.calls


def test_sync_watcher_timeout_names_the_executions_still_running(scripted_admin):
    admin, config = scripted_admin
    admin.script["w0"] = [SUCCEEDED]
    admin.script["w1"] = [RUNNING]

    with FlyteClient(config) as client, pytest.raises(FlyteTimeoutError) as caught:
        client.watcher().wait(_ids(2), timeout=0.5, poll_interval=0.1)

    assert "flytesnacks/development/w1 (RUNNING)" in str(caught.value)
    assert "w0" not in str(caught.value)


def test_sync_watcher_raises_not_found_for_an_unknown_execution(scripted_admin):
    _, config = scripted_admin

    with FlyteClient(config) as client, pytest.raises(FlyteNotFoundError):
        client.watcher().wait(["flytesnacks/development/nope"], timeout=5, poll_interval=0.1)


def test_shared_async_watcher_serves_many_coroutines_with_one_call_per_hundred(scripted_admin):
    admin, config = scripted_admin
    ids = _ids(150)
    for execution_id in ids:
        admin.script[execution_id.name] = [RUNNING, SUCCEEDED]

    async def main() -> tuple[list, AsyncExecutionWatcher, bool]:
        watcher = AsyncExecutionWatcher.shared(config)
        same = AsyncExecutionWatcher.shared(config) is watcher
        results = await asyncio.gather(
            *(watcher.wait_for(execution_id, timeout=30, poll_interval=0.1) for execution_id in ids)
        )
        await watcher.client.close()
        return results, watcher, same

    results, watcher, same = asyncio.run(main())

    assert same
    assert [r.id for r in results] == ids
    assert all(r.is_successful for r in results)
    assert admin.calls["ListExecutions"] == 2 * watcher.ticks == 4
    assert watcher.waiting == 0


def test_shared_async_watcher_times_out_one_waiter_after_a_last_check(scripted_admin):
    admin, config = scripted_admin
    admin.script["slow"] = [RUNNING]

    async def main() -> None:
        client = AsyncFlyteClient(config)
        try:
            await client.watcher().wait_for("slow", timeout=0.5, poll_interval=0.1)
        finally:
            await client.close()

    with pytest.raises(FlyteTimeoutError, match="flytesnacks/development/slow"):
        asyncio.run(main())
    assert admin.calls["GetExecution"] == 1  # the last check at the deadline


def test_both_watchers_wait_on_sandbox_executions_with_one_list_call_a_tick(
    sandbox_client, registered_examples, flyte_sandbox
):
    launched = [
        sandbox_client.launch("hello.hello_wf", inputs={"name": f"watch-{i}"}) for i in range(3)
    ]
    ids = [e.id for e in launched]

    finished = sandbox_client.watcher().wait(ids, timeout=120, poll_interval=0.3)

    async def wait_async():
        client = AsyncFlyteClient(sandbox_client.config)
        try:
            watcher = client.watcher()
            return await asyncio.gather(
                *(watcher.wait_for(i, timeout=60, poll_interval=0.3) for i in ids)
            ), watcher.ticks
        finally:
            await client.close()

    before = flyte_sandbox.rpc_counts.snapshot()
    awaited, ticks = asyncio.run(wait_async())
    calls = flyte_sandbox.rpc_counts.since(before)

    assert [finished[i].phase.name for i in ids] == ["SUCCEEDED"] * 3
    assert [e.id for e in awaited] == ids and all(e.is_successful for e in awaited)
    assert calls.get("ListExecutions") == ticks == 1
    assert "GetExecution" not in calls
