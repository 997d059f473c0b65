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

# Methods that only read. A read that ran out of time is retried; a write is not, because the
# server may still be applying it.
_READ_PREFIXES = ("Get", "List")
_NOT_READS = frozenset({"GetOrCreateSignal"})

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


def is_read(method: str) -> bool:
    """Whether ``method`` only reads (``GetExecution``, ``ListNodeExecutions``...)."""
    return method.startswith(_READ_PREFIXES) and method not in _NOT_READS


def is_retryable(code: str, *, idempotent: bool, read: bool) -> bool:
    """Whether a failed attempt with ``code`` may be sent again.

    Only idempotent calls are ever retried. UNAVAILABLE and RESOURCE_EXHAUSTED are retried for
    them; DEADLINE_EXCEEDED only for reads.
    """
    if not idempotent:
        return False
    if code in TRANSIENT_CODES:
        return True
    return code == "DEADLINE_EXCEEDED" and read


def is_plaintext_server(details: str) -> bool:
    """Whether a connection failure says the TLS handshake met a server that speaks plaintext
    (a retry cannot help: the client's ``insecure`` setting is wrong)."""
    lowered = details.lower()
    return "handshake failed" in lowered and "wrong_version_number" in lowered


def error_for_status(
    code: str,
    details: str,
    *,
    rpc: str,
    subject: str | None,
    attempts: int = 1,
    timeout: float | None = None,
    endpoint: str | None = None,
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
    """
    details = details.strip()
    if code == "UNAVAILABLE" and is_plaintext_server(details):
        where = f"at {endpoint} " if endpoint else ""
        return FlyteConfigError(
            f"{rpc} failed: admin {where}does not speak TLS; set insecure (ClientConfig "
            "insecure=True, FLYTE_PLATFORM_INSECURE=True, or insecure: true in the flytekit "
            f"config) if it serves plaintext, as the sandbox does ({details})",
            subject=subject,
            grpc_code=code,
        )
    if code == "DEADLINE_EXCEEDED":
        within = f" within {timeout:g}s" if timeout is not None else ""
        message = f"{rpc} got no answer{within}"
    elif code in TRANSIENT_CODES:
        where = f" at {endpoint}" if endpoint else ""
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
