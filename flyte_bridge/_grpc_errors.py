"""Which gRPC failures are retried, and how each becomes a :mod:`flyte_bridge.errors` type.

Codes are handled by name (``"UNAVAILABLE"``) so this module does not import grpc.
"""

from __future__ import annotations

from flyte_bridge.errors import (
    FlyteAlreadyExistsError,
    FlyteAuthError,
    FlyteBridgeError,
    FlyteConfigError,
    FlyteFailedPreconditionError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
    FlyteServerError,
    FlyteTimeoutError,
    FlyteTransientError,
)

# Retried for any call marked idempotent.
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})

_ERROR_BY_CODE: dict[str, type[FlyteBridgeError]] = {
    "NOT_FOUND": FlyteNotFoundError,
    "ALREADY_EXISTS": FlyteAlreadyExistsError,
    "INVALID_ARGUMENT": FlyteInvalidInputError,
    "OUT_OF_RANGE": FlyteInvalidInputError,
    "FAILED_PRECONDITION": FlyteFailedPreconditionError,
    "DEADLINE_EXCEEDED": FlyteTimeoutError,
    "UNAVAILABLE": FlyteTransientError,
    "RESOURCE_EXHAUSTED": FlyteTransientError,
    "UNAUTHENTICATED": FlyteAuthError,
    "PERMISSION_DENIED": FlyteAuthError,
}


def is_retryable(code: str, *, idempotent: bool) -> bool:
    """Whether a failed attempt with ``code`` may be sent again.

    Only idempotent calls are ever retried: reads, and writes that are idempotent by
    construction (a named CreateExecution meets ALREADY_EXISTS for the run the lost attempt
    made, a SetSignal sets the same value). For them UNAVAILABLE, RESOURCE_EXHAUSTED and
    DEADLINE_EXCEEDED are retried: a write whose answer did not come in time may have been
    applied, and sending it again is how the caller finds out, without a second effect.
    """
    return idempotent and (code in TRANSIENT_CODES or code == "DEADLINE_EXCEEDED")


def is_plaintext_server(details: str) -> bool:
    """Whether a connection failure says the TLS handshake met a server that speaks plaintext
    (a retry cannot help: the client's ``insecure`` setting is wrong)."""
    lowered = details.lower()
    return "handshake failed" in lowered and "wrong_version_number" in lowered


def is_not_grpc_server(details: str) -> bool:
    """Whether a connection failure says the server answered in HTTP/1, not gRPC's HTTP/2 (an
    HTTP port, such as the sandbox's console and data port): a retry cannot help."""
    return "Failed parsing HTTP/2" in details or "Expected SETTINGS frame" in details


def is_untrusted_certificate(details: str) -> bool:
    """Whether a connection failure says the server's TLS certificate was not trusted, or not
    issued for the host dialled: a retry cannot help, the CA settings must change."""
    lowered = details.lower()
    return (
        "certificate_verify_failed" in lowered
        or "certificate verify failed" in lowered
        or ("peer name" in lowered and "not in peer certificate" in lowered)
    )


def permanent_connection_failure(details: str) -> bool:
    """Whether a failed connection is a configuration mismatch no retry can fix."""
    return (
        is_plaintext_server(details)
        or is_not_grpc_server(details)
        or is_untrusted_certificate(details)
    )


def _has_port(endpoint: str) -> bool:
    """Whether ``host:port`` (or ``[v6]:port``, or a ``dns:``/``unix:`` target) names a port."""
    if "://" in endpoint or endpoint.startswith(("unix:", "dns:")):
        return True  # a target URI: left to gRPC
    host_port = endpoint.rsplit("]", 1)[-1]
    return ":" in host_port


def _connection_failure(details: str) -> str:
    """gRPC's connection failure text with its address-list preamble cut, for the message."""
    if "Connection refused" in details:
        return "nothing listens there: connection refused"
    _, found, last = details.partition("last error: ")
    return last if found else details


def error_for_status(
    code: str,
    details: str,
    *,
    rpc: str,
    subject: str | None,
    attempts: int = 1,
    timeout: float | None = None,
    endpoint: str | None = None,
    insecure: bool = False,
) -> FlyteBridgeError:
    """The typed error for a call that ended with ``code``.

    Args:
        code: gRPC status code name.
        details: The server's status message (may be empty).
        rpc: ``Service/Method`` for the message.
        subject: What the call was about (execution id, entity), carried on the error.
        attempts: How many attempts were made.
        timeout: The deadline of the last attempt, for DEADLINE_EXCEEDED.
        endpoint: The admin endpoint, for UNAVAILABLE.
        insecure: Whether the channel was plaintext, for the hint on a closed socket.
    """
    details = details.strip()
    if code == "UNAVAILABLE" and is_not_grpc_server(details):
        where = f"at {endpoint} " if endpoint else ""
        return FlyteConfigError(
            f"{rpc} failed: the server {where}answered in HTTP/1, not gRPC: point the endpoint "
            "at admin's gRPC port (the sandbox prints it as 'serving gRPC on'; its other port "
            "serves the console and data over HTTP)",
            subject=subject,
            grpc_code=code,
        )
    if code == "UNAVAILABLE" and is_untrusted_certificate(details):
        where = f"of {endpoint} " if endpoint else ""
        reason = _connection_failure(details)
        return FlyteConfigError(
            f"{rpc} failed: the TLS certificate {where}is not trusted ({reason}); "
            "give its CA bundle (ClientConfig ca_cert_path, caCertFilePath in the flytekit "
            "config, the Airflow connection's ca_cert_path extra), or insecure_skip_verify to "
            "trust what the server presents",
            subject=subject,
            grpc_code=code,
        )
    if code == "UNAVAILABLE":
        details = _connection_failure(details)
        if insecure and "socket closed" in details.lower():
            details += "; if admin serves TLS, do not set insecure"
    if code == "UNAVAILABLE" and is_plaintext_server(details):
        where = f"at {endpoint} " if endpoint else ""
        return FlyteConfigError(
            f"{rpc} failed: admin {where}does not speak TLS; set insecure (ClientConfig "
            "insecure=True, FLYTE_PLATFORM_INSECURE=True, or insecure: true in the flytekit "
            f"config) if it serves plaintext, as the sandbox does ({details})",
            subject=subject,
            grpc_code=code,
        )
    if code == "DEADLINE_EXCEEDED" and details and details.lower() != "deadline exceeded":
        # The server answered with its own deadline error, not the client's deadline passing.
        message = f"{rpc} timed out on the server: {details}"
    elif code == "DEADLINE_EXCEEDED":
        within = f" within {timeout:g}s" if timeout is not None else ""
        message = f"{rpc} got no answer{within}"
    elif code in TRANSIENT_CODES:
        where = f" at {endpoint}" if endpoint else ""
        if endpoint and code == "UNAVAILABLE" and not _has_port(endpoint):
            where += " (no port given, so gRPC used 443; the sandbox's is 30080 by default)"
        message = f"{rpc} failed: admin{where} is {code.lower().replace('_', ' ')}"
        if details:
            message += f" ({details})"
    elif code == "UNIMPLEMENTED":
        message = f"{rpc} is not implemented by the server" + (f": {details}" if details else "")
    else:
        message = f"{rpc}: {details}" if details else f"{rpc} failed with {code}"
    if attempts > 1:
        message += f" (after {attempts} attempts)"
    error_type = _ERROR_BY_CODE.get(code, FlyteServerError)
    return error_type(message, subject=subject, grpc_code=code)
