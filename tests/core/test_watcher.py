"""Watchers: N waits cost ceil(N/100) ListExecutions a tick, sync and shared async."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from flyteidl.core.execution_pb2 import WorkflowExecution

from flyte_bridge import _ops
from flyte_bridge._runtime import Gather, Sleep
from flyte_bridge.aio import AsyncFlyteClient
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteNotFoundError, FlyteTimeoutError
from flyte_bridge.models import Execution, ExecutionId
from flyte_bridge.watcher import AsyncExecutionWatcher, tick_calls, watch_op

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


def test_shared_async_watcher_reads_many_waits_running_out_together_one_call_per_hundred(
    scripted_admin,
):
    admin, config = scripted_admin
    ids = _ids(150)
    for execution_id in ids:
        admin.script[execution_id.name] = [RUNNING]

    async def main() -> tuple[list, int]:
        client = AsyncFlyteClient(config)
        watcher = client.watcher()
        try:
            outcomes = await asyncio.gather(
                *(watcher.wait_for(i, timeout=0.5, poll_interval=0.1) for i in ids),
                return_exceptions=True,
            )
            return outcomes, watcher.ticks
        finally:
            await client.close()

    outcomes, ticks = asyncio.run(main())

    assert all(isinstance(outcome, FlyteTimeoutError) for outcome in outcomes)
    assert outcomes[7].subject == str(ids[7]) and outcomes[7].last_phase == "RUNNING"
    assert admin.calls.get("GetExecution", 0) == 0
    assert admin.calls["ListExecutions"] == 2 * ticks + 2, "the reads at the deadline shared 2"


def test_c20_a_shared_wait_returns_a_run_that_ended_just_before_its_deadline(scripted_admin):
    admin, config = scripted_admin
    admin.script["last-minute"] = [RUNNING, SUCCEEDED]  # the first tick reads RUNNING

    async def main() -> Execution:
        client = AsyncFlyteClient(config)
        try:
            return await client.watcher().wait_for("last-minute", timeout=0.5, poll_interval=30)
        finally:
            await client.close()

    execution = asyncio.run(main())

    assert execution.phase.name == "SUCCEEDED"
    assert (admin.calls["ListExecutions"], admin.calls["GetExecution"]) == (1, 1)
    assert "TerminateExecution" not in admin.calls


def test_a_wrong_name_among_waits_running_out_together_fails_only_its_own(scripted_admin):
    admin, config = scripted_admin
    admin.script["ended-a"] = [SUCCEEDED]
    admin.script["ended-b"] = [SUCCEEDED]

    async def main() -> list:
        client = AsyncFlyteClient(config)
        watcher = client.watcher()
        try:
            names = ["ended-a", "nope", "ended-b"]  # out of time before the first tick
            waits = (watcher.wait_for(name, timeout=0.01, poll_interval=1) for name in names)
            return await asyncio.gather(*waits, return_exceptions=True)
        finally:
            await client.close()

    ended_a, nope, ended_b = asyncio.run(main())

    assert (ended_a.phase.name, ended_b.phase.name) == ("SUCCEEDED", "SUCCEEDED")
    assert isinstance(nope, FlyteNotFoundError)


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


# When admin stops answering ---------------------------------------------------------------
# The scripted admin answers the first tick (RUNNING), then freezes like a SIGSTOPped server;
# its config has 2 s RPC deadlines and 2 transport retries, which a tick must not spend.

SLACK = 1.0


def test_sync_watcher_ends_within_timeout_plus_one_deadline_when_admin_stops_answering(
    scripted_admin,
):
    admin, config = scripted_admin
    admin.script["frozen"] = [RUNNING]
    admin.stop_answering(after=1)
    started = time.monotonic()

    with FlyteClient(config) as client, pytest.raises(FlyteTimeoutError) as caught:
        client.watcher().wait(["frozen"], timeout=2.0, poll_interval=0.2)

    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 2.0 + config.rpc_timeout + SLACK
    error = caught.value
    assert (error.subject, error.grpc_code) == ("flytesnacks/development/frozen", None)
    assert str(error).startswith(
        "1 execution did not finish within 2s: flytesnacks/development/frozen (RUNNING); "
        "the last watch tick failed: AdminService/ListExecutions "
    )
    assert admin.calls["GetExecution"] == 0


def test_sync_watcher_keeps_waiting_through_ticks_that_fail_inside_its_timeout(
    scripted_admin, monkeypatch
):
    admin, config = scripted_admin
    monkeypatch.setattr(_ops, "ERROR_PAUSE", 0.1)
    short = ClientConfig.for_sandbox(config.endpoint, rpc_timeout=0.5, max_retries=1)
    admin.script["thawed"] = [RUNNING, SUCCEEDED]
    admin.stop_answering(after=1)
    # Longer than a call with its transport retries (2 attempts of 0.5 s and a backoff).
    thaw = threading.Timer(2.5, admin.answer_again)
    thaw.start()
    try:
        with FlyteClient(short) as client:
            finished = client.watcher().wait(["thawed"], timeout=20, poll_interval=0.1)
    finally:
        thaw.cancel()

    (execution,) = finished.values()
    assert execution.phase.name == "SUCCEEDED"
    assert admin.calls["ListExecutions"] >= 4  # answered, at least two hung, answered


def test_shared_async_watcher_ends_within_timeout_plus_one_deadline_when_admin_stops_answering(
    scripted_admin,
):
    admin, config = scripted_admin
    admin.script["frozen"] = [RUNNING]
    admin.stop_answering(after=1)
    seen = []

    async def main() -> tuple[float, FlyteTimeoutError, int, bool]:
        client = AsyncFlyteClient(config)
        watcher = client.watcher()
        started = time.monotonic()
        try:
            with pytest.raises(FlyteTimeoutError) as caught:
                await watcher.wait_for(
                    "frozen", timeout=2.0, poll_interval=0.2, on_update=seen.append
                )
            elapsed = time.monotonic() - started
            lists = admin.calls["ListExecutions"]
            await asyncio.sleep(1.0)  # no tick keeps retrying for the wait that has left
            assert admin.calls["ListExecutions"] == lists
            return elapsed, caught.value, watcher.waiting, watcher._task.done()
        finally:
            await client.close()

    elapsed, error, waiting, stopped = asyncio.run(main())

    assert 2.0 <= elapsed < 2.0 + config.rpc_timeout + SLACK
    assert (error.subject, error.grpc_code) == ("flytesnacks/development/frozen", None)
    assert error.last_phase == "RUNNING"
    assert str(error).startswith(
        "execution flytesnacks/development/frozen did not finish within 2s; last phase RUNNING; "
        "the last status read failed: "
    )
    assert [e.phase.name for e in seen] == ["RUNNING"]
    assert (waiting, stopped) == (0, True)
    assert admin.calls["GetExecution"] == 1  # the last read, sent once


def test_shared_async_watcher_ticks_through_failures_and_serves_a_wait_without_limit(
    scripted_admin, monkeypatch
):
    admin, config = scripted_admin
    monkeypatch.setattr(_ops, "ERROR_PAUSE", 0.1)
    short = ClientConfig.for_sandbox(config.endpoint, rpc_timeout=0.5, max_retries=1)
    admin.script["thawed"] = [RUNNING, SUCCEEDED]
    admin.stop_answering(after=1)

    async def main() -> tuple[Execution, int]:
        client = AsyncFlyteClient(short)
        watcher = client.watcher()
        loop = asyncio.get_running_loop()
        loop.call_later(2.5, admin.answer_again)
        try:
            done = await asyncio.wait_for(watcher.wait_for("thawed", poll_interval=0.1), 15)
            return done, watcher.ticks
        finally:
            await client.close()

    execution, ticks = asyncio.run(main())

    assert execution.phase.name == "SUCCEEDED"
    assert ticks >= 4 and admin.calls["ListExecutions"] == ticks
    assert admin.calls["GetExecution"] == 0


def test_watch_op_cuts_each_tick_to_the_time_left_and_gives_the_last_one_one_deadline():
    """Drives the sync watcher's operation with a fake clock, as the reviewer's frozen sandbox:
    timeout 6 s, RPC deadline 5 s, and every call ends at its deadline without an answer."""
    now = [0.0]
    op = watch_op([ExecutionId("p", "d", "x")], 6.0, 1.0, clock=lambda: now[0], rpc_timeout=5.0)
    sent = []
    step = next(op)
    with pytest.raises(FlyteTimeoutError) as caught:
        while True:
            if isinstance(step, Sleep):
                now[0] += step.seconds
                step = op.send(None)
                continue
            assert isinstance(step, Gather)
            (call,) = step.ops
            sent.append((now[0], call.method, call.timeout, call.idempotent))
            now[0] += call.timeout
            step = op.throw(FlyteTimeoutError("no answer", grpc_code="DEADLINE_EXCEEDED"))

    assert sent == [(0.0, "ListExecutions", 5.0, False), (6.0, "ListExecutions", 5.0, False)]
    assert now[0] == 6.0 + 5.0
    assert (caught.value.subject, caught.value.grpc_code) == ("p/d/x", None)
    assert str(caught.value) == (
        "1 execution did not finish within 6s: p/d/x (no answer); "
        "the last watch tick failed: no answer"
    )
