"""Closing a client while something waits, or calling it afterwards: one typed error, at once.

Against the session sandbox over real gRPC; the in-flight case holds GetExecution in the
sandbox's black hole.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from flyte_bridge.aio import AsyncFlyteClient
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteClientClosedError


@pytest.fixture
def running(sandbox_client: FlyteClient) -> Any:
    """An execution that runs for a minute (terminated after the test)."""
    execution = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 60})
    yield execution
    sandbox_client.terminate(execution, "test finished")


def _config(flyte_sandbox: Any, **overrides: Any) -> ClientConfig:
    return ClientConfig.for_sandbox(flyte_sandbox.endpoint, rpc_timeout=10.0, **overrides)


async def _close_soon(client: AsyncFlyteClient, after: float) -> float:
    await asyncio.sleep(after)
    await client.close()
    return time.monotonic()


@pytest.mark.parametrize("timeout", [None, 30])
def test_closing_the_async_client_ends_a_watcher_wait_at_once(
    flyte_sandbox, running, timeout
) -> None:
    async def scenario() -> tuple[BaseException, float]:
        client = AsyncFlyteClient(_config(flyte_sandbox))
        watcher = client.watcher()
        wait = asyncio.ensure_future(watcher.wait_for(running, timeout=timeout, poll_interval=0.5))
        closed_at = await _close_soon(client, 1.5)
        with pytest.raises(FlyteClientClosedError) as caught:
            await asyncio.wait_for(wait, 5)
        return caught.value, time.monotonic() - closed_at

    error, after_close = asyncio.run(scenario())

    assert after_close < 1.0
    assert f"closed while waiting for {running.id}" in str(error)
    assert error.subject == str(running.id)


def test_closing_the_async_client_during_an_rpc_of_wait_raises_the_typed_error(
    flyte_sandbox, running
) -> None:
    async def scenario() -> tuple[BaseException, float]:
        client = AsyncFlyteClient(_config(flyte_sandbox))
        with flyte_sandbox.faults.injected(black_hole=True, methods=["GetExecution"]):
            wait = asyncio.ensure_future(client.wait(running, poll_interval=0.2))
            closed_at = await _close_soon(client, 1.0)  # the first GetExecution is held
            with pytest.raises(FlyteClientClosedError) as caught:
                await asyncio.wait_for(wait, 5)
        return caught.value, time.monotonic() - closed_at

    error, after_close = asyncio.run(scenario())

    assert after_close < 1.0
    assert f"closed while waiting for {running.id}" in str(error)


def test_closing_the_async_client_wakes_a_wait_in_its_pause(flyte_sandbox, running) -> None:
    async def scenario() -> float:
        client = AsyncFlyteClient(_config(flyte_sandbox))
        wait = asyncio.ensure_future(client.wait(running, poll_interval=30))
        closed_at = await _close_soon(client, 1.0)
        with pytest.raises(FlyteClientClosedError, match="closed while waiting for"):
            await asyncio.wait_for(wait, 5)
        return time.monotonic() - closed_at

    assert asyncio.run(scenario()) < 1.0


def test_a_cancelled_wait_stays_cancelled(flyte_sandbox, running) -> None:
    async def scenario() -> None:
        async with AsyncFlyteClient(_config(flyte_sandbox)) as client:
            wait = asyncio.ensure_future(client.wait(running, poll_interval=0.2))
            await asyncio.sleep(0.5)
            wait.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait

    asyncio.run(scenario())


def test_closing_the_sync_client_ends_a_wait_of_another_thread_at_once(
    flyte_sandbox, running
) -> None:
    client = FlyteClient(_config(flyte_sandbox))
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            client.wait(running, poll_interval=30)
        except BaseException as error:  # noqa: BLE001 - recorded for the test
            outcome.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(1.0)
    closed_at = time.monotonic()
    client.close()
    thread.join(5)

    assert time.monotonic() - closed_at < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], FlyteClientClosedError)
    assert f"closed while waiting for {running.id}" in str(outcome[0])


def test_every_call_on_a_closed_client_raises_the_typed_error(flyte_sandbox, finished_runs):
    hello = finished_runs["hello"]
    sync = FlyteClient(_config(flyte_sandbox))
    sync.fetch_execution(hello.id)
    sync.close()

    assert sync.closed
    with pytest.raises(FlyteClientClosedError, match="the client is closed"):
        sync.fetch_execution(hello.id)
    with pytest.raises(FlyteClientClosedError):
        sync.wait(hello.id, timeout=5)
    with pytest.raises(FlyteClientClosedError):
        sync.watcher().wait([hello.id], timeout=5)

    async def scenario() -> None:
        client = AsyncFlyteClient(_config(flyte_sandbox))
        await client.fetch_execution(hello.id)
        await client.close()
        assert client.closed
        with pytest.raises(FlyteClientClosedError, match="the client is closed"):
            await client.fetch_execution(hello.id)
        with pytest.raises(FlyteClientClosedError):
            await client.wait(hello.id, timeout=5)
        with pytest.raises(FlyteClientClosedError):
            await client.watcher().wait_for(hello.id, timeout=5)

    asyncio.run(scenario())
