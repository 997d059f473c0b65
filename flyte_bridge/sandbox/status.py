"""Errors the sandbox's admin side raises, each carrying the gRPC status code a client sees.

Handlers raise :class:`AdminError`; the server turns it into the status code and message, and
turns any other exception into INTERNAL (never UNKNOWN, which would start flytekit's login flow).
The executor receives the same errors from the ``ControlPlane`` methods (for example
ALREADY_EXISTS for an event that repeats the current phase).
"""

from __future__ import annotations

import grpc


class AdminError(Exception):
    """A refusal with the gRPC status code flyteadmin would answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"AdminError({self.code.name}, {self.message!r})"


def invalid(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.ALREADY_EXISTS, message)


def failed_precondition(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.FAILED_PRECONDITION, message)


def resource_exhausted(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def internal(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.INTERNAL, message)


def missing(field: str) -> AdminError:
    """INVALID_ARGUMENT for an empty required field, worded as flyteadmin words it."""
    return invalid(f"missing {field}")
