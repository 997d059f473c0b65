"""An async on_update is awaited by the async client and watcher (and refused by the blocking
client), and the watchers and listings refuse bad arguments as ``client.wait`` does."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from flyte_bridge.aio import AsyncFlyteClient
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteInvalidInputError
from flyte_bridge.models import Execution


def _config(flyte_sandbox: Any) -> ClientConfig:
    return ClientConfig.for_sandbox(flyte_sandbox.endpoint, rpc_timeout=10.0)


@pytest.mark.parametrize("how", ["watcher", "wait"])
def test_the_async_client_awaits_an_async_on_update(flyte_sandbox, sandbox_client, how) -> None:
    launched = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 1})
    seen: list[str] = []

    async def on_update(execution: Execution) -> None:
        await asyncio.sleep(0.05)
        seen.append(execution.phase.name)

    async def scenario() -> Execution:
        async with AsyncFlyteClient(_config(flyte_sandbox)) as client:
            if how == "watcher":
                return await client.watcher().wait_for(
                    launched, timeout=120, poll_interval=0.2, on_update=on_update
                )
            return await client.wait(launched, timeout=120, poll_interval=0.2, on_update=on_update)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "coroutine ... was never awaited"
        finished = asyncio.run(scenario())

    assert finished.phase.name == "SUCCEEDED"
    assert seen and seen[-1] == "SUCCEEDED"  # the last callback ran before the wait ended
    assert len(seen) == len(set(seen))


def test_an_error_of_an_async_on_update_ends_the_watcher_wait(flyte_sandbox, finished_runs):
    async def on_update(execution: Execution) -> None:
        raise ValueError(f"refused {execution.phase.name}")

    async def scenario() -> None:
        async with AsyncFlyteClient(_config(flyte_sandbox)) as client:
            with pytest.raises(ValueError, match="refused SUCCEEDED"):
                await client.watcher().wait_for(
                    finished_runs["hello"], timeout=30, poll_interval=0.2, on_update=on_update
                )

    asyncio.run(scenario())


def test_the_blocking_client_refuses_an_async_on_update_at_call_time(
    flyte_sandbox, finished_runs
) -> None:
    async def on_update(execution: Execution) -> None:
        pass

    with FlyteClient(_config(flyte_sandbox)) as client:
        with pytest.raises(FlyteInvalidInputError, match="is async"):
            client.wait(finished_runs["hello"], timeout=10, on_update=on_update)
        with pytest.raises(FlyteInvalidInputError, match="is async"):
            client.watcher().wait([finished_runs["hello"]], timeout=10, on_update=on_update)


@pytest.mark.parametrize("argument", [{"timeout": "10"}, {"poll_interval": "1"}])
def test_the_async_watcher_reads_durations_as_client_wait_does(
    flyte_sandbox, finished_runs, argument
) -> None:
    async def scenario() -> None:
        async with AsyncFlyteClient(_config(flyte_sandbox)) as client:
            with pytest.raises(FlyteInvalidInputError, match="expected seconds or a timedelta"):
                await client.watcher().wait_for(finished_runs["hello"], **argument)

    asyncio.run(scenario())


@pytest.mark.parametrize("limit", [2.5, True, 0, "3"])
def test_recent_executions_refuses_a_limit_that_is_not_a_whole_number(client, limit) -> None:
    with pytest.raises(FlyteInvalidInputError, match="limit must be a whole number of 1 or more"):
        client.recent_executions(limit=limit)


@pytest.mark.parametrize("poll_interval", [0, 0.0, -1, float("nan"), float("inf")])
def test_every_wait_refuses_a_poll_interval_that_would_poll_back_to_back_or_never(
    flyte_sandbox, finished_runs, poll_interval
) -> None:
    running = finished_runs["hello"]
    expected = "poll_interval must be a positive number of seconds or a timedelta"
    calls = flyte_sandbox.rpc_counts["GetExecution"]

    with FlyteClient(_config(flyte_sandbox)) as client:
        with pytest.raises(FlyteInvalidInputError, match=expected):
            client.wait(running, timeout=1, poll_interval=poll_interval)
        with pytest.raises(FlyteInvalidInputError, match=expected):
            client.watcher().wait([running], timeout=1, poll_interval=poll_interval)

    async def scenario() -> None:
        async with AsyncFlyteClient(_config(flyte_sandbox)) as async_client:
            with pytest.raises(FlyteInvalidInputError, match=expected):
                await async_client.wait(running, timeout=1, poll_interval=poll_interval)
            with pytest.raises(FlyteInvalidInputError, match=expected):
                await async_client.watcher().wait_for(
                    running, timeout=1, poll_interval=poll_interval
                )

    asyncio.run(scenario())
    assert flyte_sandbox.rpc_counts["GetExecution"] == calls


def test_a_wait_refuses_a_timeout_that_is_not_a_number(client, finished_runs) -> None:
    with pytest.raises(FlyteInvalidInputError, match="expected seconds or a timedelta, got nan"):
        client.wait(finished_runs["hello"], timeout=float("nan"))
