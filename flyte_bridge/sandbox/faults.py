"""Fault injection and call counting for the sandbox's gRPC server.

A :class:`FaultInjector` is a gRPC server interceptor. It always counts the calls it receives, per
method (:class:`RpcCounts`), and, only when asked, makes the server misbehave the way a real
deployment sometimes does:

* ``latency``: every matching call waits before it is handled (fixed, or uniform in a range);
* ``failure_rate`` / ``fail_next``: calls are answered with UNAVAILABLE (or another code), either
  before the handler runs or, with ``fail_after_handling``, after it did its work and the answer
  was lost;
* ``black_hole``: calls are accepted and never answered. Each held call is let go when its
  deadline passes or the client cancels it (the client sees DEADLINE_EXCEEDED), when the black
  hole is switched off (the call is then handled normally), or after ``black_hole_limit``
  seconds (answered UNAVAILABLE), so no server thread is held forever;
* ``drop_rate`` / ``drop_next`` / :meth:`FaultInjector.drop_connections`: the client's TCP
  connection is shut down under the HTTP/2 transport, so the client sees a transport failure
  (UNAVAILABLE, "Socket closed") and reconnects. A call the client sends right after the drop,
  before its channel has noticed, can fail the same way on the dead connection.

Faults are off by default and apply to every method unless ``methods`` names some. The
interceptor itself runs on grpcio's single serving thread, so it only counts and wraps; every
wait happens in the handler's worker thread. At most ``max_held_calls`` calls wait at once (in
latency or the black hole), on worker threads the server adds for them, so calls the faults do
not hold are always answered. A call beyond that is answered at once as its fault would end: a
black-holed call with UNAVAILABLE, a delayed call without its delay.

Dropping a connection finds the server side of the client's socket through the process's open
file descriptors (``/dev/fd``). Where that directory does not exist (Windows), a dropped call is
only answered UNAVAILABLE "connection dropped" and the connection stays open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import math
import os
import random
import socket
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from flyte_bridge._checks import require_bool
from flyte_bridge.errors import FlyteConfigError

logger = logging.getLogger(__name__)

DEFAULT_BLACK_HOLE_LIMIT = 30.0
DEFAULT_MAX_HELD_CALLS = 32
_FD_DIR = "/dev/fd"


@dataclass(frozen=True, repr=False)
class FaultSettings:
    """Which faults the sandbox injects; the defaults inject none.

    Args:
        latency: Seconds added before each matching call is handled; a ``(low, high)`` pair
            draws a uniform random delay per call.
        failure_rate: Share of matching calls (0 to 1) answered with ``failure_code``.
        fail_next: The next this many matching calls fail (counts down to 0), for tests that
            need an exact number of failures.
        failure_code: Name of the gRPC status code of injected failures (``"UNAVAILABLE"``).
        fail_after_handling: Fail after the handler ran, so its effect (a created execution)
            stays but the client never gets the answer.
        black_hole: Accept matching calls and never answer them (see the module docstring).
        black_hole_limit: Longest time, in seconds, a black-holed call holds a server thread.
        drop_rate: Share of matching calls (0 to 1) whose client connection is dropped.
        drop_next: The next this many matching calls have their connection dropped.
        methods: Method names (``"GetExecution"``) the faults apply to; ``None`` means all.
            Each must be a method the sandbox serves (:func:`~flyte_bridge.sandbox.services.
            served_methods`).
    """

    latency: float | tuple[float, float] = 0.0
    failure_rate: float = 0.0
    fail_next: int = 0
    failure_code: str = "UNAVAILABLE"
    fail_after_handling: bool = False
    black_hole: bool = False
    black_hole_limit: float = DEFAULT_BLACK_HOLE_LIMIT
    drop_rate: float = 0.0
    drop_next: int = 0
    methods: frozenset[str] | None = None

    def __post_init__(self) -> None:
        latency = self.latency
        if isinstance(latency, (list, tuple)):
            if len(latency) != 2 or not all(_is_seconds(value) for value in latency):
                raise FlyteConfigError(
                    f"latency range must be two numbers of seconds (low, high), got {latency!r}"
                )
            low, high = float(latency[0]), float(latency[1])
            if low > high:
                raise FlyteConfigError(f"latency range {latency!r} has low above high")
            object.__setattr__(self, "latency", (low, high))
        elif not _is_seconds(latency):
            raise FlyteConfigError(
                f"latency must be seconds (>= 0) or a (low, high) range, got {latency!r}"
            )
        for name in ("failure_rate", "drop_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FlyteConfigError(f"{name} must be a number from 0 to 1, got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise FlyteConfigError(f"{name} must be from 0 to 1, got {value!r}")
        for name in ("fail_after_handling", "black_hole"):
            require_bool(name, getattr(self, name), FlyteConfigError)
        for name in ("fail_next", "drop_next"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FlyteConfigError(f"{name} must be a whole number >= 0, got {value!r}")
        code = str(self.failure_code).upper()
        if code not in grpc.StatusCode.__members__ or code == "OK":
            raise FlyteConfigError(
                f"failure_code must name a gRPC error status such as 'UNAVAILABLE', got "
                f"{self.failure_code!r}"
            )
        object.__setattr__(self, "failure_code", code)
        if not _is_seconds(self.black_hole_limit) or self.black_hole_limit <= 0:
            raise FlyteConfigError(
                f"black_hole_limit must be a positive number of seconds, got "
                f"{self.black_hole_limit!r}"
            )
        if self.methods is not None:
            if isinstance(self.methods, str):
                raise FlyteConfigError(
                    f"methods must be a collection of method names, got the string "
                    f"{self.methods!r}; write methods=[{self.methods!r}]"
                )
            methods = frozenset(self.methods)
            if not methods or not all(isinstance(m, str) and m for m in methods):
                raise FlyteConfigError(
                    f"methods must be non-empty method names such as 'GetExecution', got "
                    f"{sorted(map(repr, methods))}"
                )
            _check_served(methods)
            object.__setattr__(self, "methods", methods)

    @property
    def active(self) -> bool:
        """Whether any fault is switched on."""
        return bool(
            self.latency
            or self.failure_rate
            or self.fail_next
            or self.black_hole
            or self.drop_rate
            or self.drop_next
        )

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={sorted(value) if f.name == 'methods' else value!r}"
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) != f.default
        ]
        return f"FaultSettings({', '.join(changed)})"

    def applies_to(self, method: str) -> bool:
        """Whether the faults apply to ``method`` (a short name like ``"ListExecutions"``)."""
        return self.active and (self.methods is None or method in self.methods)

    @property
    def holds_calls(self) -> bool:
        """Whether matching calls wait in their worker thread (latency or black hole)."""
        return self.black_hole or self.latency not in (0.0, (0.0, 0.0))


def _is_seconds(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and 0 <= value < math.inf  # nan fails both
    )


def _check_served(methods: frozenset[str]) -> None:
    """Refuses method names the sandbox does not serve: faults aimed at them would never fire."""
    from flyte_bridge.sandbox.services import served_methods

    served = served_methods()
    unknown = sorted(methods - served)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, served, n=1)
        if close:
            hints.append(f"{close[0]!r} for {name!r}" if len(unknown) > 1 else repr(close[0]))
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    raise FlyteConfigError(
        f"methods: the sandbox serves no method {', '.join(map(repr, unknown))}{hint}; expected "
        f"short RPC names, one of: {', '.join(sorted(served))}"
    )


class RpcCounts(Mapping[str, int]):
    """Calls received per method, counted before auth and faults (so refused calls count too).

    ``counts["ListExecutions"]`` is 0 for a method never called. Thread-safe and cheap enough
    to stay on always.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def record(self, method: str) -> None:
        """Counts one call of ``method``."""
        with self._lock:
            self._counts[method] = self._counts.get(method, 0) + 1

    def __getitem__(self, method: str) -> int:
        with self._lock:
            return self._counts.get(method, 0)

    def __contains__(self, method: object) -> bool:
        with self._lock:
            return method in self._counts

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    @property
    def total(self) -> int:
        """Calls received of every method."""
        with self._lock:
            return sum(self._counts.values())

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts as they are now."""
        with self._lock:
            return dict(self._counts)

    def since(self, earlier: Mapping[str, int]) -> dict[str, int]:
        """Calls received since ``earlier`` (a :meth:`snapshot`), methods with none left out."""
        now = self.snapshot()
        deltas = {method: count - earlier.get(method, 0) for method, count in now.items()}
        return {method: delta for method, delta in deltas.items() if delta}

    def reset(self) -> None:
        """Forgets every count."""
        with self._lock:
            self._counts.clear()

    def __repr__(self) -> str:
        return f"RpcCounts({self.snapshot()!r})"


class FaultInjector(grpc.ServerInterceptor):
    """Counts calls and injects the faults of its current :class:`FaultSettings`.

    Change the faults of a running sandbox with :meth:`set`, :meth:`clear` or, scoped to a
    block, :meth:`injected`; they apply to calls received afterwards.

    Args:
        settings: The faults to start with; none by default.
        seed: Seed of the random draws (failure and drop rates, latency ranges).
        max_held_calls: Most calls held at once by latency or the black hole; the server adds
            this many worker threads for them (see the module docstring).

    Example:
        >>> with sandbox.faults.injected(failure_rate=0.5, methods=["GetExecution"]):
        ...     client.wait(execution, timeout=30)
        >>> sandbox.rpc_counts["GetExecution"]
    """

    def __init__(
        self,
        settings: FaultSettings | None = None,
        *,
        seed: int | None = None,
        max_held_calls: int = DEFAULT_MAX_HELD_CALLS,
    ) -> None:
        if isinstance(max_held_calls, bool) or not isinstance(max_held_calls, int):
            raise FlyteConfigError(f"max_held_calls must be a whole number, got {max_held_calls!r}")
        if max_held_calls < 1:
            raise FlyteConfigError(f"max_held_calls must be at least 1, got {max_held_calls}")
        self.max_held_calls = max_held_calls
        self._holding = 0
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._random = random.Random(seed)
        self._held: set[threading.Event] = set()
        self._stopping = threading.Event()
        self._injected = {"latency": 0, "failure": 0, "black_hole": 0, "drop": 0}
        self.rpc_counts = RpcCounts()
        self.port = 0

    @property
    def settings(self) -> FaultSettings:
        """The faults in force now."""
        return self._settings

    @property
    def injected_counts(self) -> dict[str, int]:
        """How many calls got each kind of fault: latency, failure, black_hole, drop."""
        with self._lock:
            return dict(self._injected)

    @property
    def held_calls(self) -> int:
        """Calls held in the black hole right now."""
        with self._lock:
            return len(self._held)

    def set(self, **changes: Any) -> FaultSettings:
        """Changes some fault settings (the others stay) and returns the new settings.

        Raises:
            FlyteConfigError: A setting is unknown or out of range.
        """
        with self._lock:
            settings = _replace(self._settings, changes)
            self._settings = settings
        if not settings.black_hole:
            self._release_held()
        logger.info("fault injection now %s", settings)
        return settings

    def clear(self) -> None:
        """Switches every fault off; calls held in the black hole are handled."""
        with self._lock:
            self._settings = FaultSettings()
        self._release_held()

    @contextlib.contextmanager
    def injected(self, **changes: Any) -> Iterator[FaultSettings]:
        """Applies ``changes`` for the duration of a ``with`` block, then restores the settings."""
        previous = self._settings
        try:
            yield self.set(**changes)
        finally:
            with self._lock:
                self._settings = previous
            if not previous.black_hole:
                self._release_held()

    def bind(self, port: int) -> None:
        """Tells the injector which local port the gRPC server serves (to find connections)."""
        self.port = port

    def drop_connections(self) -> int:
        """Drops every client connection to the gRPC server now; returns how many."""
        dropped = _shut_down_sockets(self.port, peer_port=None)
        if dropped:
            with self._lock:
                self._injected["drop"] += dropped
        logger.info("dropped %s client connections", dropped)
        return dropped

    def shutdown(self) -> None:
        """Ends every delay and black hole at once; the server calls this when it stops."""
        self._stopping.set()
        self._release_held()

    # the interceptor

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method.rpartition("/")[2]
        self.rpc_counts.record(method)
        handler = continuation(handler_call_details)
        if handler is None or not self._settings.applies_to(method):
            return handler
        return wrap_handler(handler, lambda behaviour: self._faulty(method, behaviour))

    def _faulty(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def handle(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
            settings = self._settings
            if not settings.applies_to(method):
                return behaviour(request_or_iterator, context)
            holding = settings.holds_calls and self._start_holding()
            try:
                if holding:
                    self._delay(settings)
                elif settings.holds_calls:
                    self._overflow(method, settings, context)
                if self._take(method, "drop_next", "drop_rate"):
                    self._drop(method, context)
                if holding and settings.black_hole:
                    self._hold(method, settings, context)
            finally:
                if holding:
                    with self._lock:
                        self._holding -= 1
            fail = self._take(method, "fail_next", "failure_rate")
            if fail is not None and not fail.fail_after_handling:
                self._fail(method, fail, context)
            response = behaviour(request_or_iterator, context)
            if fail is not None and fail.fail_after_handling:
                self._fail(method, fail, context)
            return response

        return handle

    def _start_holding(self) -> bool:
        """Takes one of the ``max_held_calls`` places; False when all are taken."""
        with self._lock:
            if self._holding >= self.max_held_calls:
                return False
            self._holding += 1
            return True

    def _overflow(self, method: str, settings: FaultSettings, context: grpc.ServicerContext):
        """Answers a call no place is left to hold as its fault would end, without the wait."""
        logger.debug("%s calls held already: %s is not held", self.max_held_calls, method)
        if settings.black_hole:
            self._count("black_hole")
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"injected fault: {method} was held in a black hole ({self.max_held_calls} "
                "calls held already)",
            )

    def _delay(self, settings: FaultSettings) -> None:
        latency = settings.latency
        seconds = self._random.uniform(*latency) if isinstance(latency, tuple) else latency
        if seconds > 0:
            self._count("latency")
            self._stopping.wait(seconds)

    def _draw(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self._random.random() < rate)

    def _take(self, method: str, countdown: str, rate: str) -> FaultSettings | None:
        """The settings if this call gets the fault, else None; counts ``countdown`` down."""
        with self._lock:
            settings = self._settings
            if not settings.applies_to(method):
                return None
            remaining = getattr(settings, countdown)
            if remaining:
                self._settings = dataclasses.replace(settings, **{countdown: remaining - 1})
                return settings
        return settings if self._draw(getattr(settings, rate)) else None

    def _fail(self, method: str, settings: FaultSettings, context: grpc.ServicerContext) -> None:
        self._count("failure")
        code = grpc.StatusCode[settings.failure_code]
        logger.debug("injecting %s into %s", code.name, method)
        context.abort(code, f"injected fault: {method} failed with {code.name}")

    def _drop(self, method: str, context: grpc.ServicerContext) -> None:
        self._count("drop")
        peer_port = _peer_port(context.peer())
        dropped = _shut_down_sockets(self.port, peer_port) if peer_port else 0
        logger.debug("dropping the connection of %s from %s (%s)", method, context.peer(), dropped)
        context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault: connection dropped")

    def _hold(self, method: str, settings: FaultSettings, context: grpc.ServicerContext) -> None:
        """Holds a call in the black hole; returns only if it should then be handled normally."""
        self._count("black_hole")
        released = threading.Event()
        limit = settings.black_hole_limit
        if context.add_callback(released.set) and not self._stopping.is_set():
            with self._lock:
                self._held.add(released)
            try:
                remaining = context.time_remaining()
                wait = limit if remaining is None else min(limit, remaining + 0.1)
                logger.debug("holding %s in the black hole for up to %.1f s", method, wait)
                released.wait(wait)
            finally:
                with self._lock:
                    self._held.discard(released)
        if not context.is_active():
            # Over already (deadline, cancellation): this status reaches nobody.
            context.abort(grpc.StatusCode.CANCELLED, "the call ended in the black hole")
        if self._stopping.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the sandbox is stopping")
        current = self._settings
        if current.black_hole and current.applies_to(method):
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"injected fault: {method} was held in a black hole for {limit:.1f} s",
            )

    def _release_held(self) -> None:
        with self._lock:
            held = list(self._held)
        for event in held:
            event.set()

    def _count(self, kind: str) -> None:
        with self._lock:
            self._injected[kind] += 1

    def __repr__(self) -> str:
        return f"FaultInjector({self._settings!r})"


def fault_settings(value: FaultSettings | Mapping[str, Any] | None) -> FaultSettings:
    """A :class:`FaultSettings` from settings, a mapping of its fields, or None (no faults)."""
    if value is None:
        return FaultSettings()
    if isinstance(value, FaultSettings):
        return value
    if isinstance(value, Mapping):
        return _replace(FaultSettings(), value)
    raise FlyteConfigError(
        f"faults must be FaultSettings or a mapping of its fields, got {type(value).__name__}"
    )


def _replace(settings: FaultSettings, changes: Mapping[str, Any]) -> FaultSettings:
    names = {f.name for f in dataclasses.fields(FaultSettings)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise FlyteConfigError(
            f"unknown fault setting {', '.join(unknown)}; expected some of "
            + ", ".join(sorted(names))
        )
    return dataclasses.replace(settings, **changes)


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> grpc.RpcMethodHandler:
    """The same method handler with its behaviour passed through ``wrap``."""
    kinds: Iterable[tuple[str, Callable[..., grpc.RpcMethodHandler]]] = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    )
    for attribute, build in kinds:
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            return build(
                wrap(behaviour),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _peer_port(peer: str) -> int | None:
    """The client's port from a gRPC peer string such as ``ipv4:127.0.0.1:50512``."""
    try:
        return int(peer.rpartition(":")[2])
    except ValueError:
        return None


def _shut_down_sockets(local_port: int, peer_port: int | None) -> int:
    """Shuts down this process's accepted TCP connections on ``local_port``.

    Only the connection from ``peer_port`` when given, else all of them. gRPC notices the
    closed socket and tears the HTTP/2 connection down; the client reconnects on its next call.
    """
    if not local_port or not os.path.isdir(_FD_DIR):
        return 0
    import fcntl

    dropped = 0
    for name in os.listdir(_FD_DIR):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            # A socket object may switch the shared file status flags to non-blocking (with a
            # default timeout set); put them back so no other socket of the process changes.
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            sock = socket.socket(fileno=os.dup(fd))
            if fcntl.fcntl(fd, fcntl.F_GETFL) != flags:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        except (ValueError, OSError):
            continue
        with sock:
            try:
                if sock.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                local, remote = sock.getsockname(), sock.getpeername()
            except OSError:
                continue  # a listening or unconnected socket
            if local[1] != local_port or (peer_port is not None and remote[1] != peer_port):
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
                dropped += 1
            except OSError:
                pass
    return dropped
