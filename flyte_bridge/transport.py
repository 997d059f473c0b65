"""The gRPC layer under the clients: one channel, deadlines, retries, credentials, typed errors.

:class:`SyncTransport` and :class:`AsyncTransport` (grpc.aio) share everything except the call
itself: channel options and TLS, which failures are retried, the credential metadata, and the
mapping of gRPC status codes to :mod:`flyte_bridge.errors`.

Policy:

* TLS unless ``insecure`` is set; a CA bundle, or the server's own certificate fetched on first
  connection when ``insecure_skip_verify`` is set (its host name must still match).
* Every attempt has a deadline (``rpc_timeout``, or the call's ``timeout``), capped by an
  optional :class:`Deadline` shared by a whole operation such as a wait.
* Only calls marked ``idempotent`` (reads, and writes idempotent by construction such as a
  named CreateExecution) are retried, with exponential backoff and jitter, on UNAVAILABLE,
  RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED.
* UNAUTHENTICATED makes a refreshable authenticator fetch a new token, then the call is sent
  once more (the server did not act on it). UNKNOWN never does.
* ``proxy_command`` adds ``proxy-authorization`` to every call (and token request) for a proxy
  in front of admin.

grpc, flyteidl and tenacity are imported on first use, not when this module is imported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args

from flyte_bridge import _grpc_errors
from flyte_bridge.auth import (
    Authenticator,
    Metadata,
    ServerAuthInfo,
    create_authenticator,
    create_proxy_authenticator,
)
from flyte_bridge.auth import unauthenticated_hint as _unauthenticated_hint
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import (
    FlyteBridgeError,
    FlyteClientClosedError,
    FlyteInvalidInputError,
    FlyteTimeoutError,
    FlyteTransientError,
)

if TYPE_CHECKING:
    import asyncio

    import grpc
    import grpc.aio

logger = logging.getLogger(__name__)

Service = Literal["admin", "signal", "dataproxy", "auth", "identity"]
SERVICES: tuple[str, ...] = get_args(Service)

MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024
# Admin's error messages reach 32,000 bytes and arrive as metadata.
MAX_METADATA_BYTES = 64 * 1024
_USER_AGENT = "flyte-bridge"

# module, stub class, full service name
_STUBS: dict[str, tuple[str, str, str]] = {
    "admin": ("flyteidl.service.admin_pb2_grpc", "AdminServiceStub", "AdminService"),
    "signal": ("flyteidl.service.signal_pb2_grpc", "SignalServiceStub", "SignalService"),
    "dataproxy": (
        "flyteidl.service.dataproxy_pb2_grpc",
        "DataProxyServiceStub",
        "DataProxyService",
    ),
    "auth": ("flyteidl.service.auth_pb2_grpc", "AuthMetadataServiceStub", "AuthMetadataService"),
    "identity": ("flyteidl.service.identity_pb2_grpc", "IdentityServiceStub", "IdentityService"),
}


class Deadline:
    """A wall-clock budget (monotonic clock) shared by several RPCs and sleeps.

    Passed to ``unary(..., deadline=...)``, it caps each attempt's own deadline and stops
    retries, so a loop such as ``wait`` built on it ends within its budget even when the server
    stops answering.

    Args:
        seconds: The budget; ``None`` means unbounded.
    """

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic):
        if seconds is not None and seconds < 0:
            raise FlyteInvalidInputError(f"a time budget must be 0 or more seconds, got {seconds}")
        self.seconds = seconds
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None when unbounded."""
        if self._end is None:
            return None
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        """Whether the budget is spent."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0

    def cap(self, seconds: float) -> float:
        """``seconds``, shortened to what is left of the budget."""
        remaining = self.remaining()
        return seconds if remaining is None else min(seconds, remaining)

    def sleep(self, seconds: float) -> None:
        """Sleeps ``seconds`` or until the budget is spent, whichever is first."""
        time.sleep(max(0.0, self.cap(seconds)))

    async def asleep(self, seconds: float) -> None:
        """Async :meth:`sleep`."""
        import asyncio

        await asyncio.sleep(max(0.0, self.cap(seconds)))

    def __repr__(self) -> str:
        return f"Deadline(seconds={self.seconds}, remaining={self.remaining()})"


class _TransportBase:
    """Config, channel settings, retry policy and error mapping shared by both transports."""

    def __init__(self, config: ClientConfig, *, authenticator: Authenticator | None = None):
        if not isinstance(config, ClientConfig):
            raise FlyteInvalidInputError(
                f"a transport needs a ClientConfig, got {type(config).__name__}"
            )
        self.config = config
        self._authenticator = (
            authenticator if authenticator is not None else create_authenticator(config)
        )
        self._proxy_authenticator = create_proxy_authenticator(config)
        if self._authenticator is not None and self._proxy_authenticator is not None:
            proxy = self._proxy_authenticator
            self._authenticator.request_headers = lambda: {
                "Proxy-Authorization": proxy.metadata()[0][1]
            }
        self._closed = False

    @property
    def authenticator(self) -> Authenticator | None:
        """The credential source, or None when calls carry no credentials."""
        return self._authenticator

    def _channel_options(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            # Finds a dead connection (idle NAT or load balancer drop) within 40 s even
            # between polls; the same settings flytekit uses against admin.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # After an outage the channel tries to reconnect at least every 5 s (gRPC's own
            # default grows to 120 s, and calls fail at once until it does).
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 5_000),
            ("grpc.primary_user_agent", _USER_AGENT),
            *self.config.grpc_options,
        ]

    def _root_certificates(self) -> bytes | None:
        """The PEM roots to trust (blocking: may fetch the server's certificate)."""
        config = self.config
        if config.insecure_skip_verify:
            import ssl

            address = (config.host, config.port or 443)
            logger.debug("fetching the server certificate of %s:%s to trust it", *address)
            try:
                return ssl.get_server_certificate(address, timeout=config.rpc_timeout).encode()
            except OSError as exc:
                raise FlyteTransientError(
                    f"cannot fetch the TLS certificate of {config.endpoint} "
                    f"(insecure_skip_verify): {exc}"
                ) from None
        if config.ca_cert_path:
            from pathlib import Path

            return Path(config.ca_cert_path).expanduser().read_bytes()
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> FlyteClientClosedError:
        return FlyteClientClosedError(
            "the client is closed; open a new client to call admin", subject=self.config.endpoint
        )

    def _check_service(self, service: str, method: str) -> tuple[str, str, str]:
        try:
            return _STUBS[service]
        except KeyError:
            raise FlyteInvalidInputError(
                f"unknown service {service!r} for {method}; expected one of {', '.join(SERVICES)}"
            ) from None

    def credential_sources(self, service: str) -> list[Authenticator]:
        """Who adds metadata to a call of ``service``: the proxy's, then admin's credential."""
        sources = [self._proxy_authenticator] if self._proxy_authenticator else []
        # AuthMetadataService is how a client learns to authenticate; admin serves it
        # anonymously (a proxy in front still wants its own credential).
        if self._authenticator is not None and service != "auth":
            sources.append(self._authenticator)
        return sources

    def _must_discover(self, sources: list[Authenticator]) -> bool:
        return any(s is self._authenticator and s.needs_discovery for s in sources) and not (
            self._discovered
        )

    @staticmethod
    def _discovery_requests() -> list[tuple[str, Any]]:
        from flyteidl.service import auth_pb2

        return [
            ("GetPublicClientConfig", auth_pb2.PublicClientAuthConfigRequest()),
            ("GetOAuth2Metadata", auth_pb2.OAuth2MetadataRequest()),
        ]

    def _absent_auth_metadata(self, exc: FlyteBridgeError) -> None:
        """None when AuthMetadataService cannot help; re-raises when its answer is needed.

        Admin with auth off does not serve it (UNIMPLEMENTED). A gateway that refuses it
        anonymously only matters when the token endpoint must come from it.
        """
        if exc.grpc_code in ("UNIMPLEMENTED", "NOT_FOUND"):
            return None
        assert self._authenticator is not None
        refused = exc.grpc_code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        if refused and not self._authenticator.needs_token_endpoint:
            logger.debug("AuthMetadataService refused an anonymous call; using default header")
            return None
        raise exc

    def _apply_discovery(self, public_client_config: Any | None, oauth2_metadata: Any | None):
        info = None
        if public_client_config is not None or oauth2_metadata is not None:
            info = ServerAuthInfo.from_protos(public_client_config, oauth2_metadata)
        assert self._authenticator is not None
        self._authenticator.apply_discovery(info)
        self._discovered = True

    def _stub_class(self, service: str) -> Any:
        import importlib

        module_name, class_name, _ = self._check_service(service, "")
        return getattr(importlib.import_module(module_name), class_name)


class _EqualJitter:
    """Exponential backoff with "equal jitter": half of each step fixed, half random.

    The fixed half makes the retries of a call span a predictable time (long enough for the
    channel to reconnect after a blip); the random half spreads many clients apart.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, attempt_number: int) -> float:
        import random

        step = min(self.maximum, self.initial * 2 ** (attempt_number - 1))
        return step / 2 + random.uniform(0, step / 2)


class _Call:
    """One logical call: its attempts, their deadlines, the retry policy and the final error."""

    def __init__(
        self,
        transport: _TransportBase,
        service: str,
        method: str,
        idempotent: bool,
        timeout: float | None,
        deadline: Deadline | None,
        subject: str | None,
    ) -> None:
        _, _, service_name = transport._check_service(service, method)
        self.transport = transport
        self.config = transport.config
        self.service = service
        self.method = method
        self.rpc = f"{service_name}/{method}"
        self.idempotent = idempotent
        self.timeout = timeout if timeout is not None else self.config.rpc_timeout
        self.deadline = deadline
        self.subject = subject
        self.attempts = 0
        self.last_timeout: float | None = None
        self.reauthenticated = False
        self.last_code: str | None = None

    def multicallable(self, stub: Any) -> Any:
        found = getattr(stub, self.method, None)
        if found is None:
            raise FlyteInvalidInputError(f"{self.rpc.split('/')[0]} has no method {self.method!r}")
        return found

    def next_timeout(self) -> float:
        """Starts an attempt and returns its deadline; raises when the budget is spent."""
        timeout = self.timeout
        if self.deadline is not None:
            if self.deadline.expired():
                after = f" (the last attempt ended with {self.last_code})" if self.last_code else ""
                raise FlyteTimeoutError(
                    f"{self.rpc} not sent: the time budget of {self.deadline.seconds:g}s is "
                    f"spent{after}",
                    subject=self.subject,
                    grpc_code=self.last_code,
                )
            timeout = self.deadline.cap(timeout)
        self.attempts += 1
        self.last_timeout = timeout
        logger.debug("%s attempt %d (timeout %.1fs)", self.rpc, self.attempts, timeout)
        return timeout

    def resend_after(self, exc: BaseException, sent: Metadata | None) -> bool:
        """Whether to send again at once: once, after UNAUTHENTICATED, with a fresh token."""
        self.last_code = _code_name(exc)
        if self.reauthenticated or sent is None or self.last_code != "UNAUTHENTICATED":
            return False
        refreshed = [s.invalidate(sent) for s in self.transport.credential_sources(self.service)]
        self.reauthenticated = any(refreshed)
        return self.reauthenticated

    def retrying_kwargs(self) -> dict[str, Any]:
        """tenacity settings (the same for sync and async)."""
        import grpc
        import tenacity

        config, deadline, rpc = self.config, self.deadline, self.rpc
        backoff = _EqualJitter(config.retry_initial_backoff, config.retry_max_backoff)

        def should_retry(exc: BaseException) -> bool:
            return (
                isinstance(exc, grpc.RpcError)
                and _grpc_errors.is_retryable(_code_name(exc), idempotent=self.idempotent)
                and not _grpc_errors.permanent_connection_failure(_details(exc))
            )

        def wait(state: tenacity.RetryCallState) -> float:
            seconds = backoff(state.attempt_number)
            return seconds if deadline is None else deadline.cap(seconds)

        stop: Any = tenacity.stop_after_attempt(config.max_retries + 1)
        if deadline is not None:
            stop = stop | (lambda state: deadline.expired())

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "%s failed with %s; retry %d of %d in %.2fs",
                rpc,
                _code_name(exc) if exc is not None else "?",
                state.attempt_number,
                config.max_retries,
                state.upcoming_sleep,
            )

        return dict(
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception(should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )

    def error(self, exc: BaseException) -> FlyteBridgeError:
        """The typed error for the final failure."""
        code = _code_name(exc)
        details = _details(exc)
        if details.startswith("Received http2 header with status"):
            details += " (an HTTP proxy or load balancer answered, not admin)"
        if code == "UNAUTHENTICATED":
            hint = _unauthenticated_hint(self.config)
            details = f"{hint}: {details}" if details else hint
        logger.debug("%s failed: %s after %d attempt(s)", self.rpc, code, self.attempts)
        return _grpc_errors.error_for_status(
            code,
            details,
            rpc=self.rpc,
            subject=self.subject,
            attempts=self.attempts,
            timeout=self.last_timeout,
            endpoint=self.config.endpoint,
            insecure=self.config.insecure,
        )


def _without_grpc_traceback(error: FlyteBridgeError, rpc_error: BaseException) -> FlyteBridgeError:
    """The typed error, with the gRPC error kept as ``rpc_error`` rather than as its cause.

    The message already holds the method, the status code's meaning and the server's words; a
    chained cause would print gRPC's and tenacity's frames above it in every task log.
    """
    error.rpc_error = rpc_error
    return error


class SyncTransport(_TransportBase):
    """Blocking gRPC calls to admin over one channel (thread-safe).

    Args:
        config: Where admin is and how to reach it.
        authenticator: A credential source to use instead of the one ``config.auth`` describes.

    Example:
        >>> with SyncTransport(ClientConfig.for_sandbox()) as transport:
        ...     transport.unary("admin", "GetExecution", request, idempotent=True)
    """

    def __init__(self, config: ClientConfig, *, authenticator: Authenticator | None = None):
        super().__init__(config, authenticator=authenticator)
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stubs: dict[str, Any] = {}
        self._discovered = False

    def channel(self) -> grpc.Channel:
        """The channel, opened on first use."""
        self._check_open()
        with self._lock:
            if self._channel is None:
                self._channel = self._open_channel()
            return self._channel

    def _open_channel(self) -> grpc.Channel:
        import grpc

        options = self._channel_options()
        if self.config.insecure:
            logger.debug("opening a plaintext channel to %s", self.config.endpoint)
            return grpc.insecure_channel(self.config.endpoint, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self._root_certificates())
        logger.debug("opening a TLS channel to %s", self.config.endpoint)
        return grpc.secure_channel(self.config.endpoint, credentials, options=options)

    def stub(self, service: Service) -> Any:
        """The flyteidl stub of ``service`` on this channel, created on first use."""
        stub = self._stubs.get(service)
        if stub is None:
            stub = self._stubs.setdefault(service, self._stub_class(service)(self.channel()))
        return stub

    def unary(
        self,
        service: Service,
        method: str,
        request: Any,
        *,
        idempotent: bool,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        subject: str | None = None,
    ) -> Any:
        """Sends one unary RPC and returns its response.

        Args:
            service: Which flyteidl service.
            method: Method name as in the proto (``"GetExecution"``).
            request: The request message.
            idempotent: Whether sending it twice is harmless. Only then is it retried.
            timeout: Deadline of each attempt in seconds; default ``config.rpc_timeout``.
            deadline: A budget shared with other calls; caps attempts and retries.
            subject: What the call is about, carried on any error raised.

        Raises:
            FlyteBridgeError: The subclass for the final status (FlyteNotFoundError...).
        """
        import grpc
        import tenacity

        call = _Call(self, service, method, idempotent, timeout, deadline, subject)
        multicallable = call.multicallable(self.stub(service))

        def attempt() -> Any:
            while True:
                self._check_open()
                attempt_timeout = call.next_timeout()
                metadata = self._credentials(service, attempt_timeout)
                try:
                    return multicallable(request, timeout=attempt_timeout, metadata=metadata)
                except (grpc.RpcError, ValueError) as exc:
                    if self._closed:  # close() cancelled the call (or the channel is gone)
                        raise self._closed_error() from None
                    if not isinstance(exc, grpc.RpcError) or not call.resend_after(exc, metadata):
                        raise

        try:
            return tenacity.Retrying(**call.retrying_kwargs())(attempt)
        except grpc.RpcError as exc:
            raise _without_grpc_traceback(call.error(exc), exc) from None

    def _credentials(self, service: str, timeout: float | None = None) -> Metadata | None:
        """The call's metadata; a token command or request is bounded by ``timeout`` too."""
        sources = self.credential_sources(service)
        if self._must_discover(sources):
            self._discover()
        metadata: Metadata = ()
        for source in sources:
            metadata += source.cached_metadata() or source.metadata(timeout)
        return metadata or None

    def _discover(self) -> None:
        answers = []
        for method, request in self._discovery_requests():
            try:
                answers.append(self.unary("auth", method, request, idempotent=True))
            except FlyteBridgeError as exc:
                answers.append(self._absent_auth_metadata(exc))
        self._apply_discovery(*answers)

    def close(self) -> None:
        """Closes the channel; the transport cannot be used afterwards."""
        with self._lock:
            self._closed = True
            if self._channel is not None:
                self._channel.close()
                self._channel = None
            self._stubs.clear()

    def __enter__(self) -> SyncTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTransport(_TransportBase):
    """asyncio gRPC calls to admin (grpc.aio) with the same policy as :class:`SyncTransport`.

    The channel belongs to the event loop that first used it; used from another loop, the
    transport opens a new channel there. Token requests (HTTP) and token commands run in a
    worker thread so they do not block the loop.

    Args:
        config: Where admin is and how to reach it.
        authenticator: A credential source to use instead of the one ``config.auth`` describes.
    """

    def __init__(self, config: ClientConfig, *, authenticator: Authenticator | None = None):
        super().__init__(config, authenticator=authenticator)
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stubs: dict[str, Any] = {}
        self._discovered = False
        self._root_certs: bytes | None = None

    async def channel(self) -> grpc.aio.Channel:
        """The channel of the running event loop, opened on first use."""
        import asyncio

        self._check_open()
        loop = asyncio.get_running_loop()
        if self._channel is not None and self._loop is loop:
            return self._channel
        needs_roots = self.config.insecure_skip_verify or self.config.ca_cert_path
        if not self.config.insecure and needs_roots and self._root_certs is None:
            self._root_certs = await asyncio.to_thread(self._root_certificates)
        # Checked again: another task may have opened the channel during the await.
        if self._channel is None or self._loop is not loop:
            if self._channel is not None:
                logger.debug("event loop changed; new channel to %s", self.config.endpoint)
            self._stubs = {}
            self._channel = self._open_channel()
            self._loop = loop
        return self._channel

    def _open_channel(self) -> grpc.aio.Channel:
        import grpc
        import grpc.aio

        options = self._channel_options()
        if self.config.insecure:
            return grpc.aio.insecure_channel(self.config.endpoint, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self._root_certs)
        return grpc.aio.secure_channel(self.config.endpoint, credentials, options=options)

    async def stub(self, service: Service) -> Any:
        """The flyteidl stub of ``service`` on this loop's channel, created on first use."""
        channel = await self.channel()
        stub = self._stubs.get(service)
        if stub is None:
            stub = self._stubs.setdefault(service, self._stub_class(service)(channel))
        return stub

    async def unary(
        self,
        service: Service,
        method: str,
        request: Any,
        *,
        idempotent: bool,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        subject: str | None = None,
    ) -> Any:
        """Sends one unary RPC and returns its response; see :meth:`SyncTransport.unary`."""
        import asyncio

        import grpc
        import tenacity

        call = _Call(self, service, method, idempotent, timeout, deadline, subject)
        multicallable = call.multicallable(await self.stub(service))

        async def attempt() -> Any:
            while True:
                self._check_open()
                attempt_timeout = call.next_timeout()
                metadata = await self._credentials(service, attempt_timeout)
                try:
                    return await multicallable(request, timeout=attempt_timeout, metadata=metadata)
                except asyncio.CancelledError:
                    # close() cancels the calls in flight; a cancel of the caller's task stays one.
                    task = asyncio.current_task()
                    if self._closed and (task is None or not task.cancelling()):
                        raise self._closed_error() from None
                    raise
                except grpc.RpcError as exc:
                    if self._closed:
                        raise self._closed_error() from None
                    if not call.resend_after(exc, metadata):
                        raise

        try:
            return await tenacity.AsyncRetrying(**call.retrying_kwargs())(attempt)
        except grpc.RpcError as exc:
            raise _without_grpc_traceback(call.error(exc), exc) from None

    async def _credentials(self, service: str, timeout: float | None = None) -> Metadata | None:
        import asyncio

        sources = self.credential_sources(service)
        if self._must_discover(sources):
            await self._discover()
        metadata: Metadata = ()
        for source in sources:
            # A token request or token command blocks; it runs off the event loop.
            cached = source.cached_metadata()
            metadata += cached or await asyncio.to_thread(source.metadata, timeout)
        return metadata or None

    async def _discover(self) -> None:
        answers = []
        for method, request in self._discovery_requests():
            try:
                answers.append(await self.unary("auth", method, request, idempotent=True))
            except FlyteBridgeError as exc:
                answers.append(self._absent_auth_metadata(exc))
        self._apply_discovery(*answers)

    async def close(self) -> None:
        """Closes the channel; the transport cannot be used afterwards."""
        self._closed = True
        channel, self._channel = self._channel, None
        self._stubs = {}
        if channel is not None:
            try:
                await channel.close()
            except RuntimeError:
                # The channel's loop is gone (it was opened under another asyncio.run).
                logger.debug("channel to %s closed with its event loop", self.config.endpoint)

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _code_name(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    try:
        value = code() if callable(code) else None
    except Exception:
        value = None
    return getattr(value, "name", None) or "UNKNOWN"


def _details(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    try:
        value = details() if callable(details) else None
    except Exception:
        value = None
    return value or ""
