"""One client logic, two call layers.

Every client operation (fetch, sync, wait, launch...) is written once, as a generator that yields
*steps* and receives their results: an RPC (:class:`Call`), several sub-operations at once
(:class:`Gather`), a pause (:class:`Sleep`), blocking I/O such as an HTTP download
(:class:`Blocking`) or a user callback (:class:`Notify`). Two drivers run these generators:
:func:`run_sync` on a :class:`SyncTransport` with a bounded thread pool, :func:`run_async` on an
:class:`AsyncTransport` with ``asyncio.gather`` under a semaphore. The drivers are the only code
that differs between :class:`~flyte_bridge.client.FlyteClient` and
:class:`~flyte_bridge.aio.AsyncFlyteClient`.

A :class:`~flyte_bridge.errors.FlyteClientClosedError` is never handed back to an operation
(a wait would take it for a failed poll and try again): it ends the whole operation at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import heapq
import inspect
import itertools
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from flyte_bridge.errors import FlyteBridgeError, FlyteClientClosedError, FlyteInvalidInputError

T = TypeVar("T")

Op = Generator[Any, Any, T]
"""An operation: a generator of steps that returns its result."""


@dataclass(frozen=True)
class Call:
    """One unary RPC: ``service`` is the transport's service name, e.g. ``"admin"``.

    ``deadline`` (a transport ``Deadline``) bounds every attempt and the retries together,
    when several calls of one operation share a time budget.
    """

    service: str
    method: str
    request: Message
    idempotent: bool = True
    timeout: float | None = None
    subject: str | None = None
    deadline: Any = None


@dataclass(frozen=True)
class Gather:
    """Runs operations (or single calls) concurrently; the result is their results, in order.

    Every operation runs to its end; the first error (in order) is then raised.
    """

    ops: Sequence[Any]


@dataclass(frozen=True)
class Sleep:
    """Pauses the operation for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Blocking:
    """Runs blocking I/O (an HTTP transfer, a file copy) off the event loop or the scheduler."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Notify:
    """Calls a user callback; an async client awaits it when it returns an awaitable."""

    fn: Callable[[Any], Any]
    arg: Any


def _single(step: Any) -> Op[Any]:
    """Wraps one step as an operation, so a Gather can mix calls and operations."""
    return (yield step)


def _as_op(item: Any) -> Op[Any]:
    return item if inspect.isgenerator(item) else _single(item)


def _first_error(outcomes: list[tuple[Any, BaseException | None]]) -> BaseException | None:
    return next((error for _, error in outcomes if error is not None), None)


def _bound(transport: Any, step: Call) -> Callable[[], Any]:
    """The transport's ``unary`` call for a step, ready to be called (sync) or awaited (async)."""
    return functools.partial(
        transport.unary,
        step.service,
        step.method,
        step.request,
        idempotent=step.idempotent,
        timeout=step.timeout,
        subject=step.subject,
        deadline=step.deadline,
    )


class _Task:
    """A running operation inside the sync scheduler."""

    __slots__ = ("gen", "parent", "slot", "outcomes", "pending")

    def __init__(self, gen: Op[Any], parent: _Task | None, slot: int) -> None:
        self.gen = gen
        self.parent = parent
        self.slot = slot
        self.outcomes: list[tuple[Any, BaseException | None]] = []
        self.pending = 0


def run_sync(
    op: Op[T], transport: Any, pool: ThreadPoolExecutor, closed: Future[Any] | None = None
) -> T:
    """Runs an operation to its end on a sync transport.

    Operations interleave on the calling thread; only RPCs and blocking I/O go to ``pool``,
    whose size bounds the fan-out. Nested gathers therefore never wait on a full pool.
    ``closed`` is done once the client is closed: the operation then ends at once (also in a
    pause) with FlyteClientClosedError.
    """
    if closed is None:
        closed = Future()
    ready: deque[tuple[_Task, Any, BaseException | None]] = deque()
    in_flight: dict[Future[Any], _Task] = {}
    sleepers: list[tuple[float, int, _Task]] = []
    order = itertools.count()
    result: list[tuple[Any, BaseException | None]] = []

    def finish(task: _Task, value: Any, error: BaseException | None) -> None:
        parent = task.parent
        if parent is None:
            result.append((value, error))
            return
        parent.outcomes[task.slot] = (value, error)
        parent.pending -= 1
        if parent.pending == 0:
            failure = _first_error(parent.outcomes)
            values = None if failure else [value for value, _ in parent.outcomes]
            ready.append((parent, values, failure))

    def submit(task: _Task, fn: Callable[..., Any], *args: Any) -> None:
        try:
            in_flight[pool.submit(fn, *args)] = task
        except RuntimeError:  # the pool is shut down: the client was closed
            if not closed.done():
                raise
            raise _closed_during_call(transport) from None

    def dispatch(task: _Task, step: Any) -> None:
        if isinstance(step, Call):
            submit(task, _bound(transport, step))
        elif isinstance(step, Gather):
            if not step.ops:
                ready.append((task, [], None))
                return
            task.outcomes = [(None, None)] * len(step.ops)
            task.pending = len(step.ops)
            for slot, item in enumerate(step.ops):
                ready.append((_Task(_as_op(item), task, slot), None, None))
        elif isinstance(step, Sleep):
            heapq.heappush(sleepers, (time.monotonic() + step.seconds, next(order), task))
        elif isinstance(step, Blocking):
            submit(task, step.fn, *step.args)
        elif isinstance(step, Notify):
            try:
                outcome = step.fn(step.arg)
            except Exception as error:  # noqa: BLE001 - handed back to the operation
                ready.append((task, None, error))
                return
            if inspect.isawaitable(outcome):
                if inspect.iscoroutine(outcome):
                    outcome.close()  # never awaited, on purpose: no "never awaited" warning
                ready.append((task, None, _async_callback_error(step.fn)))
            else:
                ready.append((task, outcome, None))
        else:
            ready.append((task, None, TypeError(f"unknown step {step!r}")))

    ready.append((_Task(op, None, 0), None, None))
    while not result:
        if closed.done():
            raise _closed_during_call(transport)
        while ready:
            task, value, error = ready.popleft()
            if isinstance(error, FlyteClientClosedError):
                raise error
            try:
                step = task.gen.throw(error) if error is not None else task.gen.send(value)
            except StopIteration as stop:
                finish(task, stop.value, None)
                continue
            except Exception as raised:  # noqa: BLE001 - travels to the parent operation
                finish(task, None, raised)
                continue
            dispatch(task, step)
        if result:
            break

        now = time.monotonic()
        while sleepers and sleepers[0][0] <= now:
            ready.append((heapq.heappop(sleepers)[2], None, None))
        if ready:
            continue
        timeout = max(0.0, sleepers[0][0] - now) if sleepers else None
        done, _ = wait([*in_flight, closed], timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            if future is closed:
                continue
            task = in_flight.pop(future)
            try:
                ready.append((task, future.result(), None))
            except CancelledError:  # a queued call cancelled by the pool's shutdown
                ready.append((task, None, _closed_during_call(transport)))
            except Exception as raised:  # noqa: BLE001 - handed back to the operation
                ready.append((task, None, raised))

    value, error = result[0]
    if error is not None:
        raise error
    return value


async def run_async(op: Op[T], transport: Any, limit: asyncio.Semaphore) -> T:
    """Runs an operation to its end on an async transport; ``limit`` bounds concurrent RPCs."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = await _run_step(step, transport, limit)
        except FlyteClientClosedError:
            op.close()
            raise
        except Exception as raised:  # noqa: BLE001 - handed back to the operation
            error = raised


async def _run_step(step: Any, transport: Any, limit: asyncio.Semaphore) -> Any:
    if isinstance(step, Call):
        async with limit:
            return await _bound(transport, step)()
    if isinstance(step, Gather):
        outcomes = await asyncio.gather(
            *(run_async(_as_op(item), transport, limit) for item in step.ops),
            return_exceptions=True,
        )
        closed = next((o for o in outcomes if isinstance(o, FlyteClientClosedError)), None)
        failure = closed or next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            raise failure
        return list(outcomes)
    if isinstance(step, Sleep):
        await asyncio.sleep(max(0.0, step.seconds))
        return None
    if isinstance(step, Blocking):
        return await asyncio.to_thread(step.fn, *step.args)
    if isinstance(step, Notify):
        outcome = step.fn(step.arg)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return outcome
    raise TypeError(f"unknown step {step!r}")


def _closed_during_call(transport: Any) -> FlyteClientClosedError:
    endpoint = getattr(getattr(transport, "config", None), "endpoint", None)
    return FlyteClientClosedError("the client was closed during the call", subject=endpoint)


def _async_callback_error(fn: Any) -> FlyteInvalidInputError:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return FlyteInvalidInputError(
        f"on_update {name} is async, which the blocking client cannot await; expected a plain "
        "function (or use AsyncFlyteClient, which awaits it)"
    )


def check_callback(fn: Any, *, blocking: bool) -> None:
    """Refuses an ``on_update`` that is not callable, or async for the blocking client."""
    if fn is None:
        return
    if not callable(fn):
        raise FlyteInvalidInputError(f"on_update must be callable, got {type(fn).__name__}")
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    if blocking and (inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)):
        raise _async_callback_error(fn)


def closed_error(
    client: Any, waiting: Any = None, *, during: bool = False
) -> FlyteClientClosedError:
    """The error of a call on a closed client: ``waiting`` is what a wait waited for (an
    execution, or a list of execution ids); ``during`` says the close came during the call."""
    endpoint = client.config.endpoint
    if waiting is None:
        if during:
            return FlyteClientClosedError("the client was closed during the call", subject=endpoint)
        return FlyteClientClosedError(
            "the client is closed; open a new client to call admin", subject=endpoint
        )
    if isinstance(waiting, (list, tuple)):
        names = [str(item) for item in waiting]
        subject = names[0] if names else endpoint
        what = names[0] if len(names) == 1 else f"{len(names)} executions ({', '.join(names[:3])}"
        if len(names) > 1:
            what += ", ..." if len(names) > 3 else ""
            what += ")"
    else:
        try:
            subject = what = str(client.execution_id(waiting))
        except FlyteBridgeError:
            subject = what = str(waiting)
    return FlyteClientClosedError(
        f"the client was closed while waiting for {what}", subject=subject
    )


def seconds_of(value: float | dt.timedelta | None) -> float | None:
    """Seconds of a timeout or poll interval given as a number or a timedelta (None stays None)."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FlyteInvalidInputError(f"expected seconds or a timedelta, got {value!r}")
    if value != value:
        raise FlyteInvalidInputError("expected seconds or a timedelta, got nan")
    return float(value)


def poll_seconds(value: float | dt.timedelta) -> float:
    """A poll interval in seconds: a positive, finite number or timedelta. Zero is refused, as
    it would poll admin back to back."""
    seconds = None if isinstance(value, float) and value != value else seconds_of(value)
    if seconds is None or not 0 < seconds < float("inf"):
        raise FlyteInvalidInputError(
            f"poll_interval must be a positive number of seconds or a timedelta, got {value!r}"
        )
    return seconds


def within(op: Op[T], deadline: Any) -> Op[T]:
    """``op`` with every call it makes (in gathers too) bounded by ``deadline``, a transport
    ``Deadline``: together, retries included, they end when it is spent."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Call) and step.deadline is None:
            step = dataclasses.replace(step, deadline=deadline)
        elif isinstance(step, Gather):
            step = Gather([within(_as_op(item), deadline) for item in step.ops])
        try:
            value, error = (yield step), None
        except GeneratorExit:
            op.close()
            raise
        except BaseException as raised:  # noqa: BLE001 - handed to the operation, as the runtime does
            value, error = None, raised
