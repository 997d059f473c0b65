"""The two drivers run the same operation the same way (unit tests with an in-memory transport)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from flyte_bridge._runtime import Blocking, Call, Gather, Notify, Sleep, run_async, run_sync


class EchoTransport:
    """Answers every call with its request after ``delay``; counts calls in flight."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.in_flight = 0
        self.most = 0
        self._lock = threading.Lock()

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def unary(self, service, method, request, **kwargs):
        self._enter()
        try:
            time.sleep(self.delay)
            if request == "boom":
                raise ValueError("boom")
            return request
        finally:
            self._leave()


class AsyncEchoTransport(EchoTransport):
    async def unary(self, service, method, request, **kwargs):
        self._enter()
        try:
            await asyncio.sleep(self.delay)
            if request == "boom":
                raise ValueError("boom")
            return request
        finally:
            self._leave()


def leaf(value):
    return (yield Call("admin", "Get", value))


def tree(depth: int, width: int, label: str = "r"):
    """A nested gather ``depth`` levels deep: returns the leaves' labels in order."""
    if depth == 0:
        return [(yield Call("admin", "Get", label))]
    parts = yield Gather([tree(depth - 1, width, f"{label}.{i}") for i in range(width)])
    return [item for part in parts for item in part]


def run_both(op_factory, max_concurrency: int = 2):
    sync_transport = EchoTransport()
    with ThreadPoolExecutor(max_concurrency) as pool:
        sync_result = run_sync(op_factory(), sync_transport, pool)
    async_transport = AsyncEchoTransport()

    async def main():
        return await run_async(op_factory(), async_transport, asyncio.Semaphore(max_concurrency))

    return sync_result, asyncio.run(main()), sync_transport, async_transport


def test_nested_gathers_finish_in_order_on_a_pool_smaller_than_the_tree():
    sync_result, async_result, sync_t, async_t = run_both(lambda: tree(3, 3), max_concurrency=2)

    expected = [f"r.{a}.{b}.{c}" for a in range(3) for b in range(3) for c in range(3)]
    assert sync_result == async_result == expected
    assert sync_t.most == async_t.most == 2


def test_a_failing_branch_raises_after_the_other_branches_finished():
    finished = []

    def branch(value):
        result = yield Call("admin", "Get", value)
        finished.append(result)
        return result

    def op():
        return (yield Gather([branch("a"), leaf("boom"), branch("c")]))

    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="boom"):
        run_sync(op(), EchoTransport(), pool)
    assert sorted(finished) == ["a", "c"]


def test_an_operation_can_catch_the_error_of_its_call():
    def op():
        try:
            yield Call("admin", "Get", "boom")
        except ValueError as error:
            return f"caught {error}"

    sync_result, async_result, _, _ = run_both(op)

    assert sync_result == async_result == "caught boom"


def test_sleep_blocking_and_notify_steps_run_in_both_drivers():
    seen = []

    def op():
        yield Sleep(0.01)
        value = yield Blocking(lambda x: x * 2, (21,))
        yield Notify(seen.append, value)
        return value

    sync_result, async_result, _, _ = run_both(op)

    assert sync_result == async_result == 42
    assert seen == [42, 42]


def test_sleeping_branches_do_not_hold_the_others():
    def sleeper():
        yield Sleep(0.3)
        return "slept"

    def op():
        return (yield Gather([sleeper(), tree(1, 5)]))

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        result = run_sync(op(), EchoTransport(), pool)

    assert result == ["slept", ["r.0", "r.1", "r.2", "r.3", "r.4"]]
    assert time.monotonic() - started < 0.3 + 0.2
