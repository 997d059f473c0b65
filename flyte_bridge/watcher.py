"""Waiting on many executions at once, at a cost that does not grow with each wait.

A tick lists the executions still awaited with one ListExecutions per project and domain and
per 100 names (a ``value_in`` filter on the name), so N waits cost ceil(N/100) calls a tick
instead of N GetExecution calls. :class:`ExecutionWatcher` blocks; :class:`AsyncExecutionWatcher`
is shared by the coroutines of one event loop (an Airflow triggerer runs many triggers in one
loop): each ``await watcher.wait_for(...)`` joins the next tick of one polling task.

As ``client.wait``, every wait ends within its timeout plus one RPC deadline even when admin
stops answering: a tick's calls are sent once (the next tick is the retry) with deadlines cut to
the time left to the waits they serve, and at the deadline one last read with one RPC deadline
decides between the result and the wait's FlyteTimeoutError.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flyteidl.admin import common_pb2

from flyte_bridge import _ops
from flyte_bridge._requests import ExecutionLike, get_execution_call, list_executions_request
from flyte_bridge._runtime import (
    Call,
    Gather,
    Notify,
    Op,
    Sleep,
    check_callback,
    closed_error,
    poll_seconds,
    seconds_of,
)
from flyte_bridge.errors import (
    FlyteBridgeError,
    FlyteClientClosedError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
    FlyteTimeoutError,
    FlyteTransientError,
)
from flyte_bridge.models import Execution, ExecutionId
from flyte_bridge.transport import Deadline

if TYPE_CHECKING:
    from flyte_bridge.aio import AsyncFlyteClient
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

logger = logging.getLogger(__name__)

NAMES_PER_CALL = 100
"""Names in one ``value_in`` filter (and the page size of that call)."""

MIN_TICK = 0.1
"""Seconds between ticks at least, whatever poll interval a waiter asks for."""

DEADLINE_READ_WINDOW = 0.05
"""Seconds the read at a wait's deadline waits for other waits running out, to share a call."""


def tick_calls(execution_ids: Iterable[ExecutionId], timeout: float | None = None) -> list[Call]:
    """The ListExecutions calls of one tick: one per project+domain and per 100 names.

    Each is sent once (not idempotent for the transport): the watcher's next tick is the retry,
    and a transport retry would run past the time left to the waits.
    """
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
                str(Filter.value_in("execution_name", chunk)),
                common_pb2.Sort(key="created_at"),
                len(chunk),
                org=org,
            )
            calls.append(
                Call(
                    "admin",
                    "ListExecutions",
                    request,
                    idempotent=False,
                    timeout=timeout,
                    subject=f"{project}/{domain}",
                )
            )
    return calls


def tick_op(
    execution_ids: Iterable[ExecutionId],
    rpc_timeout: float | None = None,
    budget: Deadline | None = None,
) -> Op[dict[ExecutionId, Execution]]:
    """One tick: the current state of every given execution that admin lists.

    An execution missing from the lists (archived, or a wrong name) is fetched with
    GetExecution, so a wrong name raises FlyteNotFoundError instead of waiting forever. Every
    call is sent once, its deadline ``rpc_timeout`` cut to what is left of ``budget``.

    Raises:
        FlyteTimeoutError: A call got no answer in time, or the budget was spent before the
            GetExecution calls.
    """
    wanted = set(execution_ids)
    by_name = {(i.project, i.domain, i.name): i for i in wanted}
    responses = yield Gather(tick_calls(wanted, _call_timeout(rpc_timeout, budget, wanted)))
    found: dict[ExecutionId, Execution] = {}
    for response in responses:
        for pb in response.executions:
            execution_id = by_name.get((pb.id.project, pb.id.domain, pb.id.name))
            if execution_id is not None:
                found[execution_id] = Execution(pb)
    missing = sorted(wanted - set(found))
    if missing:
        timeout = _call_timeout(rpc_timeout, budget, missing)
        calls = [get_execution_call(i, timeout, idempotent=False) for i in missing]
        fetched = yield Gather(calls)
        for execution_id, pb in zip(missing, fetched, strict=True):
            found[execution_id] = Execution(pb)
    return found


def _call_timeout(
    rpc_timeout: float | None, budget: Deadline | None, execution_ids: Iterable[ExecutionId]
) -> float | None:
    """The deadline of a tick's next calls: ``rpc_timeout`` cut to what is left of ``budget``."""
    if budget is None:
        return rpc_timeout
    if budget.expired():
        first = min(execution_ids)
        raise FlyteTimeoutError(
            f"the watch tick's time budget of {budget.seconds:g}s is spent", subject=str(first)
        )
    return budget.remaining() if rpc_timeout is None else budget.cap(rpc_timeout)


def watch_op(
    execution_ids: list[ExecutionId],
    timeout: float | None,
    poll_interval: float,
    on_update: Callable[[Execution], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rpc_timeout: float = 30.0,
) -> Op[dict[ExecutionId, Execution]]:
    """Ticks until every execution is terminal; returns them all, in their terminal state.

    As :func:`~flyte_bridge._ops.wait_op`: each tick's calls have deadlines cut to what is left
    of ``timeout``; once it is spent one last tick with one RPC deadline decides, so the wait
    ends within ``timeout`` plus one RPC deadline even when admin stops answering. A tick that
    fails transiently or runs out of time inside the budget is tried again at the next one,
    after a pause that backs off while ticks keep failing.
    """
    if timeout is not None and timeout < 0:
        raise FlyteInvalidInputError(f"timeout must be 0 or more, got {timeout}")
    end = None if timeout is None else clock() + timeout
    done: dict[ExecutionId, Execution] = {}
    pending = list(dict.fromkeys(execution_ids))
    states: dict[ExecutionId, Execution] = {}
    failures = 0
    while True:
        remaining = None if end is None else end - clock()
        final = remaining is not None and remaining <= 0
        budget = Deadline(rpc_timeout if final else remaining, clock=clock)
        try:
            tick = yield from tick_op(pending, rpc_timeout, budget)
        except (FlyteTimeoutError, FlyteTransientError) as error:
            if final:
                raise _timeout(pending, states, timeout, error) from error
            logger.info("watch tick over %d execution(s) failed (%s)", len(pending), error)
            failures += 1
        else:
            failures = 0
            for execution_id, execution in tick.items():
                before = states.get(execution_id)
                states[execution_id] = execution
                if before is None or before.proto.closure.phase != execution.proto.closure.phase:
                    if on_update is not None:
                        yield Notify(on_update, execution)
                if execution.is_done:
                    done[execution_id] = execution
            pending = [execution_id for execution_id in pending if execution_id not in done]
            if not pending:
                return {execution_id: done[execution_id] for execution_id in execution_ids}
        if final:
            raise _timeout(pending, states, timeout, None)
        if end is not None and clock() >= end:
            continue  # the budget ran out during this tick: the last tick decides
        pause = poll_interval
        if failures:
            backoff = min(_ops.ERROR_PAUSE * 2 ** (failures - 1), _ops.MAX_ERROR_PAUSE)
            pause = max(poll_interval, backoff)
        if end is not None:
            pause = min(pause, end - clock())
        yield Sleep(max(MIN_TICK, pause))


def _timeout(
    pending: list[ExecutionId],
    states: dict[ExecutionId, Execution],
    timeout: float | None,
    error: BaseException | None,
) -> FlyteTimeoutError:
    """The wait's timeout, naming the executions still awaited (and why the last tick failed)."""
    listed = ", ".join(
        f"{execution_id} ({states[execution_id].phase.name})"
        if execution_id in states
        else f"{execution_id} (no answer)"
        for execution_id in pending[:10]
    )
    more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
    count = "1 execution" if len(pending) == 1 else f"{len(pending)} executions"
    message = f"{count} did not finish within {_rounded(timeout):g}s: {listed}{more}"
    if error is not None:
        message += f"; the last watch tick failed: {error}"
    return FlyteTimeoutError(message, subject=str(pending[0]))


def _wait_timeout(
    execution_id: ExecutionId,
    timeout: float | None,
    last: Execution | None,
    error: BaseException | None,
) -> FlyteTimeoutError:
    """``client.wait``'s timeout for one execution, with why the last read failed, if it did."""
    timed_out = _ops._wait_timeout(execution_id, _rounded(timeout), last)
    if error is None:
        return timed_out
    explained = FlyteTimeoutError(
        f"{timed_out.message}; the last status read failed: {error}", subject=timed_out.subject
    )
    explained.last_phase = timed_out.last_phase
    return explained


def _rounded(seconds: float | None) -> float | None:
    """A timeout as written in a message: a remaining time such as 1.46691 reads 1.47."""
    return None if seconds is None else round(seconds, 2)


def _sharing_key(config: ClientConfig) -> Any:
    """The config itself (every field, secrets compared, never shown), made hashable when a
    gRPC option's value is not."""
    try:
        hash(config)
    except TypeError:
        options = tuple((name, repr(value)) for name, value in config.grpc_options)
        return dataclasses.replace(config, grpc_options=options)
    return config


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
            FlyteTimeoutError: Some were not terminal within ``timeout`` (plus at most one RPC
                deadline, whatever admin does); the message lists them.
            FlyteNotFoundError: One of them does not exist.
        """
        ids = [self.client.execution_id(e) for e in executions]
        interval = poll_seconds(poll_interval)
        check_callback(on_update, blocking=True)
        rpc_timeout = self.client.config.rpc_timeout
        op = watch_op(ids, seconds_of(timeout), interval, on_update, rpc_timeout=rpc_timeout)
        return self.client._run(op, ids)


def _fetch_op(execution_id: ExecutionId, timeout: float) -> Op[Execution]:
    """One GetExecution, sent once."""
    return Execution((yield get_execution_call(execution_id, timeout, idempotent=False)))


class _Waiter:
    __slots__ = ("future", "poll_interval", "end", "on_update", "last", "notifying")

    def __init__(
        self,
        future: asyncio.Future[Execution],
        poll_interval: float,
        end: float | None,
        on_update: Callable[[Execution], Any] | None,
    ) -> None:
        self.future = future
        self.poll_interval = poll_interval
        self.end = end
        self.on_update = on_update
        self.last: Execution | None = None
        # The async on_update calls still running, last one first: later reads wait for it.
        self.notifying: asyncio.Task[None] | None = None

    def left(self, now: float) -> float | None:
        """Seconds left to this wait (None: no limit)."""
        return None if self.end is None else self.end - now

    def see(self, execution: Execution) -> Any:
        """Records a state read; calls ``on_update`` when the phase changed and returns what
        it returned (an awaitable for an async callback)."""
        before, self.last = self.last, execution
        changed = before is None or before.proto.closure.phase != execution.proto.closure.phase
        if changed and self.on_update is not None:
            return self.on_update(execution)
        return None

    def deliver(self, execution: Execution) -> None:
        """A state read by a tick: notifies, then ends the wait if it is terminal. An async
        callback is awaited in a task of its own, in order, before the wait ends."""
        if self.future.done():
            return
        try:
            outcome = self.see(execution)
        except Exception as error:  # noqa: BLE001 - the waiter's callback ends its own wait
            self.future.set_exception(error)
            return
        if not inspect.isawaitable(outcome) and self.notifying is None:
            if execution.is_done:
                self.future.set_result(execution)
            return
        previous = self.notifying

        async def notify() -> None:
            if previous is not None:
                await previous
            if self.future.done():
                if inspect.iscoroutine(outcome):
                    outcome.close()
                return
            try:
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as error:  # noqa: BLE001 - ends this waiter's wait only
                if not self.future.done():
                    self.future.set_exception(error)
                return
            if execution.is_done and not self.future.done():
                self.future.set_result(execution)

        self.notifying = asyncio.get_running_loop().create_task(notify())


class AsyncExecutionWatcher:
    """Many coroutines wait on their executions through one polling task.

    Get the one of an event loop with :meth:`shared` (keyed by the client config), then
    ``await watcher.wait_for(execution_id, timeout, poll_interval)`` from any coroutine. The
    polling task runs while someone waits and stops when nobody does. Each tick is as cheap as
    :class:`ExecutionWatcher`'s; the tick interval is the smallest poll interval asked for, and
    its calls' deadlines are cut to the longest time left to the waits it serves. A tick that
    fails transiently is retried at the next one (backing off while ticks keep failing); a wrong
    execution name fails only its own waiters, and refused credentials fail all it served. The
    client of a shared watcher stays open as long as its event loop.

    Args:
        client: The async client whose transport the watcher uses.
    """

    _shared: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[Any, AsyncExecutionWatcher]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, client: AsyncFlyteClient) -> None:
        self.client = client
        self._waiters: dict[ExecutionId, list[_Waiter]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._deadline_reads: dict[ExecutionId, asyncio.Future[Execution]] = {}
        self._deadline_batch: asyncio.Task[None] | None = None
        self.ticks = 0
        watchers = getattr(client, "_watchers", None)
        if watchers is not None:
            watchers.add(self)  # so that closing the client ends the waits at once

    @classmethod
    def shared(cls, config: ClientConfig) -> AsyncExecutionWatcher:
        """The watcher of the running event loop for this client config, created on first use.

        Only waits under an equal config share one: a different credential, auth mode, TLS
        setting or deadline gets a watcher (and a client) of its own, so no wait ever reads or
        terminates a run with another connection's credentials, and a fixed secret is used by
        the next wait at once.
        """
        from flyte_bridge.aio import AsyncFlyteClient

        loop = asyncio.get_running_loop()
        per_loop = cls._shared.setdefault(loop, {})
        key = _sharing_key(config)
        watcher = per_loop.get(key)
        if watcher is None:
            watcher = per_loop[key] = cls(AsyncFlyteClient(config))
        return watcher

    async def wait_for(
        self,
        execution: ExecutionLike,
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 5.0,
        on_update: Callable[[Execution], Any] | None = None,
    ) -> Execution:
        """Waits until the execution is terminal and returns it (failed ones too).

        At the deadline one last GetExecution (sent once, within one RPC deadline) decides, so
        a run that finished just before it is returned rather than reported as a timeout, and
        the wait ends within ``timeout`` plus one RPC deadline even when admin stops answering.
        ``on_update`` is called with each new phase read (the last one is in the timeout's
        message); an error it raises ends the wait.

        Raises:
            FlyteTimeoutError: Not terminal within ``timeout``; the message names it and its
                last phase read.
        """
        execution_id = self.client.execution_id(execution)
        seconds = seconds_of(timeout)
        interval = max(MIN_TICK, poll_seconds(poll_interval))
        if seconds is not None and seconds < 0:
            raise FlyteInvalidInputError(f"timeout must be 0 or more, got {seconds}")
        check_callback(on_update, blocking=False)
        if getattr(self.client, "closed", False):
            raise closed_error(self.client)

        end = None if seconds is None else time.monotonic() + seconds
        future = asyncio.get_running_loop().create_future()
        waiter = _Waiter(future, interval, end, on_update)
        self._waiters[execution_id].append(waiter)
        self._ensure_running()
        try:
            return await asyncio.wait_for(asyncio.shield(future), seconds)
        except asyncio.TimeoutError:
            if future.done() and not future.cancelled():
                raise  # the wait's own error, a TimeoutError of some kind
            self._forget(execution_id, waiter)  # no tick serves it any more
            return await self._last_read(execution_id, seconds, waiter)
        except FlyteClientClosedError as error:
            if error.subject == str(execution_id):
                raise
            raise closed_error(self.client, execution_id, during=True) from None
        finally:
            self._forget(execution_id, waiter)

    async def _last_read(
        self, execution_id: ExecutionId, seconds: float | None, waiter: _Waiter
    ) -> Execution:
        """The read at the deadline: the execution if it is terminal, else the wait's timeout.

        Bounded by one RPC deadline of wall time, also while queued behind other calls.
        """
        rpc_timeout = self.client.config.rpc_timeout
        read = asyncio.shield(self._read_at_deadline(execution_id))
        try:
            last = await asyncio.wait_for(read, rpc_timeout)
        except (FlyteTimeoutError, FlyteTransientError) as error:
            raise _wait_timeout(execution_id, seconds, waiter.last, error) from error
        except asyncio.TimeoutError:
            error = FlyteTimeoutError(
                f"AdminService/GetExecution got no answer within {rpc_timeout:g}s",
                subject=str(execution_id),
            )
            raise _wait_timeout(execution_id, seconds, waiter.last, error) from None
        if waiter.notifying is not None:
            await waiter.notifying  # the callbacks of earlier reads end first
        outcome = waiter.see(last)
        if inspect.isawaitable(outcome):
            await outcome
        if last.is_done:
            return last
        raise _wait_timeout(execution_id, seconds, last, None)

    def _read_at_deadline(self, execution_id: ExecutionId) -> asyncio.Future[Execution]:
        """The execution's state, read together with those of the other waits whose time ran
        out within the same short window: at their common deadline, a thousand waits cost
        ceil(N/100) ListExecutions calls, not a thousand GetExecution."""
        loop = asyncio.get_running_loop()
        future = self._deadline_reads.get(execution_id)
        if future is None:
            future = self._deadline_reads[execution_id] = loop.create_future()
            # A waiter that gave up on it leaves nobody to read its error: mark it read.
            future.add_done_callback(lambda done: done.cancelled() or done.exception())
        if self._deadline_batch is None:
            self._deadline_batch = loop.create_task(self._read_deadline_batch())
        return future

    async def _read_deadline_batch(self) -> None:
        """Reads every state asked for by :meth:`_read_at_deadline` during the window, each
        call sent once and all within one RPC deadline of the first request: one GetExecution
        for one execution, a tick's ListExecutions for more."""
        rpc_timeout = self.client.config.rpc_timeout
        window = min(DEADLINE_READ_WINDOW, rpc_timeout / 2)
        await asyncio.sleep(window)
        batch, self._deadline_reads = self._deadline_reads, {}
        self._deadline_batch = None
        ids = list(batch)
        budget = Deadline(rpc_timeout - window)

        def read_one(execution_id: ExecutionId) -> Any:
            return self.client._run(_fetch_op(execution_id, budget.cap(rpc_timeout)))

        outcomes: dict[ExecutionId, Any]
        try:
            if len(ids) == 1:
                outcomes = {ids[0]: await read_one(ids[0])}
            else:
                outcomes = await self.client._run(tick_op(ids, rpc_timeout, budget))
        except FlyteNotFoundError as error:
            if len(ids) == 1:
                outcomes = {ids[0]: error}
            else:  # a wrong name among them: read each on its own
                reads = await asyncio.gather(*map(read_one, ids), return_exceptions=True)
                outcomes = dict(zip(ids, reads, strict=True))
        except Exception as error:  # noqa: BLE001 - each waiter reports it as its own
            outcomes = dict.fromkeys(ids, error)
        for execution_id, outcome in outcomes.items():
            future = batch[execution_id]
            if isinstance(outcome, BaseException):
                _settle(future, outcome)
            elif not future.done():
                future.set_result(outcome)

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
        failures = 0
        while self._waiters:
            ids, budget = self._served()
            if not ids:  # every waiter is out of time, reading the last state on its own
                await asyncio.sleep(MIN_TICK)
                continue
            try:
                states = await self._tick(ids, budget)
            except FlyteClientClosedError:
                self._client_closed()
                return
            except FlyteBridgeError as error:
                if not self._fail(ids, error):
                    failures += 1
                states = {}
            except Exception as error:  # noqa: BLE001 - a bug must not leave waiters hanging
                for waiter in (w for ws in self._waiters.values() for w in ws):
                    if not waiter.future.done():
                        waiter.future.set_exception(error)
                raise
            else:
                failures = 0
            self.ticks += 1
            for execution_id, execution in states.items():
                for waiter in list(self._waiters.get(execution_id, [])):
                    waiter.deliver(execution)
            if not self._waiters:
                break
            await asyncio.sleep(self._pause(failures))

    def _served(self) -> tuple[list[ExecutionId], float | None]:
        """The executions with a waiter still in time, and the longest time left to those
        waiters (None when one of them has no limit): the budget of the tick that serves them.
        """
        now = time.monotonic()
        ids: list[ExecutionId] = []
        unbounded = False
        longest = 0.0
        for execution_id, waiters in self._waiters.items():
            lefts = [w.left(now) for w in waiters if not w.future.done()]
            in_time = [left for left in lefts if left is None or left > 0]
            if not in_time:
                continue
            ids.append(execution_id)
            for left in in_time:
                if left is None:
                    unbounded = True
                else:
                    longest = max(longest, left)
        return ids, None if unbounded else longest

    async def _tick(
        self, ids: list[ExecutionId], budget: float | None
    ) -> dict[ExecutionId, Execution]:
        """One tick within ``budget`` seconds of wall time (queued behind other calls too)."""
        op = tick_op(ids, self.client.config.rpc_timeout, Deadline(budget))
        if budget is None:
            return await self.client._run(op)
        try:
            return await asyncio.wait_for(self.client._run(op), budget)
        except FlyteBridgeError:
            raise
        except asyncio.TimeoutError:
            raise FlyteTimeoutError(
                f"the watch tick got no answer within the {budget:.1f}s left to its waits",
                subject=str(min(ids)),
            ) from None

    def _client_closed(self) -> None:
        """The client was closed: every waiter fails at once, naming its execution."""
        for execution_id, waiters in list(self._waiters.items()):
            error = closed_error(self.client, execution_id, during=True)
            for waiter in waiters:
                _settle(waiter.future, error)
        task = self._task
        if task is not None and not task.done() and task is not _current_task():
            task.get_loop().call_soon_threadsafe(task.cancel)

    def _pause(self, failures: int) -> float:
        """The smallest poll interval asked for; longer while ticks keep failing."""
        pause = min(w.poll_interval for ws in self._waiters.values() for w in ws)
        if failures:
            backoff = min(_ops.ERROR_PAUSE * 2 ** (failures - 1), _ops.MAX_ERROR_PAUSE)
            pause = max(pause, backoff)
        return pause

    def _fail(self, ids: list[ExecutionId], error: FlyteBridgeError) -> bool:
        """A tick failed: a missing execution fails its waiters, and an error that trying again
        cannot mend (credentials refused, permission denied, a bad request) fails the waiters of
        every execution the tick served (True); transient errors and deadlines are retried at
        the next tick (False)."""
        if isinstance(error, FlyteNotFoundError) and error.subject:
            for execution_id in ids:
                if str(execution_id) == error.subject:
                    for waiter in self._waiters.get(execution_id, []):
                        if not waiter.future.done():
                            waiter.future.set_exception(error)
                    return True
        if not isinstance(error, (FlyteTimeoutError, FlyteTransientError)):
            logger.warning(
                "watch tick over %d execution(s) failed and will not be tried again: %s",
                len(ids),
                error,
            )
            for execution_id in ids:
                for waiter in self._waiters.get(execution_id, []):
                    _settle(waiter.future, error)
            return True
        logger.warning(
            "watch tick over %d execution(s) failed; trying again at the next tick: %s",
            len(ids),
            error,
        )
        return False

    @property
    def waiting(self) -> int:
        """How many executions are awaited now."""
        return len(self._waiters)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def _settle(future: asyncio.Future[Any], error: BaseException) -> None:
    """Fails a waiter's future, from its own loop's thread."""

    def fail() -> None:
        if not future.done():
            future.set_exception(error)

    loop = future.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is running:
        fail()
    else:
        try:
            loop.call_soon_threadsafe(fail)
        except RuntimeError:  # its loop is closed: nobody waits on it any more
            pass
