"""Waiting on many executions at once, at a cost that does not grow with each wait.

A tick lists the executions still awaited with one ListExecutions per project and domain and
per 100 names (a ``value_in`` filter on the name), so N waits cost ceil(N/100) calls a tick
instead of N GetExecution calls. :class:`ExecutionWatcher` blocks; :class:`AsyncExecutionWatcher`
is shared by the coroutines of one event loop (an Airflow triggerer runs many triggers in one
loop): each ``await watcher.wait_for(...)`` joins the next tick of one polling task.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flyteidl.admin import common_pb2

from flyte_bridge._requests import ExecutionLike, get_execution_call, list_executions_request
from flyte_bridge._runtime import Call, Gather, Notify, Op, Sleep
from flyte_bridge.errors import FlyteBridgeError, FlyteInvalidInputError, FlyteTimeoutError
from flyte_bridge.models import Execution, ExecutionId

if TYPE_CHECKING:
    from flyte_bridge.aio import AsyncFlyteClient
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

logger = logging.getLogger(__name__)

NAMES_PER_CALL = 100
"""Names in one ``value_in`` filter (and the page size of that call)."""

MIN_TICK = 0.1
"""Seconds between ticks at least, whatever poll interval a waiter asks for."""


def tick_calls(execution_ids: Iterable[ExecutionId]) -> list[Call]:
    """The ListExecutions calls of one tick: one per project+domain and per 100 names."""
    from flyte_bridge.filters import Filter

    by_scope: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for execution_id in sorted(set(execution_ids)):
        scope = (execution_id.project, execution_id.domain, execution_id.org)
        by_scope[scope].append(execution_id.name)
    calls = []
    for (project, domain, org), names in by_scope.items():
        for start in range(0, len(names), NAMES_PER_CALL):
            chunk = names[start : start + NAMES_PER_CALL]
            request = list_executions_request(
                project,
                domain,
                str(Filter.value_in("name", chunk)),
                common_pb2.Sort(key="created_at"),
                len(chunk),
                org=org,
            )
            calls.append(Call("admin", "ListExecutions", request, subject=f"{project}/{domain}"))
    return calls


def tick_op(execution_ids: Iterable[ExecutionId]) -> Op[dict[ExecutionId, Execution]]:
    """One tick: the current state of every given execution that admin lists.

    An execution missing from the lists (archived, or a wrong name) is fetched with
    GetExecution, so a wrong name raises FlyteNotFoundError instead of waiting forever.
    """
    wanted = set(execution_ids)
    by_name = {(i.project, i.domain, i.name): i for i in wanted}
    responses = yield Gather(tick_calls(wanted))
    found: dict[ExecutionId, Execution] = {}
    for response in responses:
        for pb in response.executions:
            execution_id = by_name.get((pb.id.project, pb.id.domain, pb.id.name))
            if execution_id is not None:
                found[execution_id] = Execution(pb)
    missing = sorted(wanted - set(found))
    if missing:
        fetched = yield Gather([get_execution_call(execution_id) for execution_id in missing])
        for execution_id, pb in zip(missing, fetched, strict=True):
            found[execution_id] = Execution(pb)
    return found


def watch_op(
    execution_ids: list[ExecutionId],
    timeout: float | None,
    poll_interval: float,
    on_update: Callable[[Execution], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Op[dict[ExecutionId, Execution]]:
    """Ticks until every execution is terminal; returns them all, in their terminal state."""
    deadline = None if timeout is None else clock() + timeout
    done: dict[ExecutionId, Execution] = {}
    pending = list(dict.fromkeys(execution_ids))
    phases: dict[ExecutionId, int] = {}
    while True:
        states = yield from tick_op(pending)
        for execution_id, execution in states.items():
            if phases.get(execution_id) != execution.proto.closure.phase:
                phases[execution_id] = execution.proto.closure.phase
                if on_update is not None:
                    yield Notify(on_update, execution)
            if execution.is_done:
                done[execution_id] = execution
        pending = [execution_id for execution_id in pending if execution_id not in done]
        if not pending:
            return {execution_id: done[execution_id] for execution_id in execution_ids}
        if deadline is not None and clock() >= deadline:
            raise _timeout(pending, states, timeout)
        pause = poll_interval if deadline is None else min(poll_interval, deadline - clock())
        yield Sleep(max(MIN_TICK, pause))


def _timeout(
    pending: list[ExecutionId], states: dict[ExecutionId, Execution], timeout: float | None
) -> FlyteTimeoutError:
    listed = ", ".join(
        f"{execution_id} ({states[execution_id].phase.name})"
        if execution_id in states
        else str(execution_id)
        for execution_id in pending[:10]
    )
    more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
    return FlyteTimeoutError(
        f"{len(pending)} executions did not finish within {timeout:g}s: {listed}{more}",
        subject=str(pending[0]),
    )


def _seconds(value: float | dt.timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, dt.timedelta) else value


class ExecutionWatcher:
    """Waits on many executions with one ListExecutions per project+domain per 100 names a tick.

    Args:
        client: The client whose transport the watcher uses.
    """

    def __init__(self, client: FlyteClient) -> None:
        self.client = client

    def wait(
        self,
        executions: Iterable[ExecutionLike],
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 5.0,
        on_update: Callable[[Execution], Any] | None = None,
    ) -> dict[ExecutionId, Execution]:
        """Blocks until every execution is terminal and returns them by id.

        Raises:
            FlyteTimeoutError: Some were not terminal within ``timeout``; the message lists them.
            FlyteNotFoundError: One of them does not exist.
        """
        ids = [self.client.execution_id(e) for e in executions]
        interval = _seconds(poll_interval) or 0.0
        return self.client._run(watch_op(ids, _seconds(timeout), interval, on_update))


class _Waiter:
    __slots__ = ("future", "poll_interval")

    def __init__(self, future: asyncio.Future[Execution], poll_interval: float) -> None:
        self.future = future
        self.poll_interval = poll_interval


class AsyncExecutionWatcher:
    """Many coroutines wait on their executions through one polling task.

    Get the one of an event loop with :meth:`shared` (keyed by endpoint), then
    ``await watcher.wait_for(execution_id, timeout, poll_interval)`` from any coroutine. The
    polling task runs while someone waits and stops when nobody does. Each tick is as cheap as
    :class:`ExecutionWatcher`'s; the tick interval is the smallest poll interval asked for. A
    tick that fails transiently is retried at the next one; a wrong execution name fails only
    its own waiters. The client of a shared watcher stays open as long as its event loop.

    Args:
        client: The async client whose transport the watcher uses.
    """

    _shared: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[tuple[Any, ...], AsyncExecutionWatcher]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, client: AsyncFlyteClient) -> None:
        self.client = client
        self._waiters: dict[ExecutionId, list[_Waiter]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0

    @classmethod
    def shared(cls, config: ClientConfig) -> AsyncExecutionWatcher:
        """The watcher of the running event loop for this endpoint, created on first use."""
        from flyte_bridge.aio import AsyncFlyteClient

        loop = asyncio.get_running_loop()
        per_loop = cls._shared.setdefault(loop, {})
        key = (config.endpoint, config.insecure, config.default_project, config.default_domain)
        watcher = per_loop.get(key)
        if watcher is None:
            watcher = per_loop[key] = cls(AsyncFlyteClient(config))
        return watcher

    async def wait_for(
        self,
        execution: ExecutionLike,
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 5.0,
    ) -> Execution:
        """Waits until the execution is terminal and returns it (failed ones too).

        At the deadline one last GetExecution decides, so a run that finished just before it
        is returned rather than reported as a timeout.

        Raises:
            FlyteTimeoutError: Not terminal within ``timeout``; the message names it.
        """
        execution_id = self.client.execution_id(execution)
        seconds = _seconds(timeout)
        interval = max(MIN_TICK, _seconds(poll_interval) or 0.0)
        if seconds is not None and seconds < 0:
            raise FlyteInvalidInputError(f"timeout must be 0 or more, got {seconds}")

        waiter = _Waiter(asyncio.get_running_loop().create_future(), interval)
        self._waiters[execution_id].append(waiter)
        self._ensure_running()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), seconds)
        except asyncio.TimeoutError:
            last = await self.client.fetch_execution(execution_id)
            if last.is_done:
                return last
            raise FlyteTimeoutError(
                f"execution {execution_id} did not finish within {seconds:g}s; last phase "
                f"{last.phase.name}",
                subject=str(execution_id),
            ) from None
        finally:
            self._forget(execution_id, waiter)

    def _forget(self, execution_id: ExecutionId, waiter: _Waiter) -> None:
        waiters = self._waiters.get(execution_id)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[execution_id]
        if not waiter.future.done():
            waiter.future.cancel()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="flyte-watch")

    async def _poll(self) -> None:
        await asyncio.sleep(MIN_TICK)  # waiters registering together share the first tick
        while self._waiters:
            ids = list(self._waiters)
            try:
                states = await self.client._run(tick_op(ids))
            except FlyteBridgeError as error:
                self._fail(ids, error)
                states = {}
            except Exception as error:  # noqa: BLE001 - a bug must not leave waiters hanging
                for waiter in (w for ws in self._waiters.values() for w in ws):
                    if not waiter.future.done():
                        waiter.future.set_exception(error)
                raise
            self.ticks += 1
            for execution_id, execution in states.items():
                if execution.is_done:
                    for waiter in self._waiters.get(execution_id, []):
                        if not waiter.future.done():
                            waiter.future.set_result(execution)
            if not self._waiters:
                break
            await asyncio.sleep(min(w.poll_interval for ws in self._waiters.values() for w in ws))

    def _fail(self, ids: list[ExecutionId], error: FlyteBridgeError) -> None:
        """A tick failed: a missing execution fails its waiters; other errors are retried."""
        from flyte_bridge.errors import FlyteNotFoundError

        if isinstance(error, FlyteNotFoundError) and error.subject:
            for execution_id in ids:
                if str(execution_id) == error.subject:
                    for waiter in self._waiters.get(execution_id, []):
                        if not waiter.future.done():
                            waiter.future.set_exception(error)
                    return
        logger.warning("watch tick over %d executions failed: %s", len(ids), error)

    @property
    def waiting(self) -> int:
        """How many executions are awaited now."""
        return len(self._waiters)
