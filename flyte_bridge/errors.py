"""The one error hierarchy of flyte-bridge.

Every error carries ``subject``: the execution, node, signal or entity it is about, written as a
plain string (``project/domain/name`` for executions), so a caller can log or show it without
knowing which call raised. The adapters map these to ``AirflowException`` subclasses and Dagster
``Failure``; nothing else should be raised across the public API.
"""

from __future__ import annotations

NO_SCOPE_HINT = (
    "pass project and domain (an operator's or op's project= and domain=), or give the client "
    "a default: default_project/default_domain in ClientConfig, FLYTE_DEFAULT_PROJECT and "
    "FLYTE_DEFAULT_DOMAIN, the Airflow connection's project and domain extras, or the Dagster "
    "resource's default_project and default_domain"
)
"""Where a project and domain can come from, for errors about a call that has neither."""


class FlyteBridgeError(Exception):
    """Base class of every error raised by flyte-bridge.

    Args:
        message: What went wrong and, where it helps, what was expected instead.
        subject: The execution, node, signal or entity the error is about.
        grpc_code: Name of the gRPC status code behind the error (``"NOT_FOUND"``), if any.

    Attributes:
        rpc_error: The ``grpc.RpcError`` of the failed call, when there was one (kept here, not
            chained as the cause, so tracebacks stay short).
    """

    def __init__(
        self, message: str, *, subject: str | None = None, grpc_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.subject = subject
        self.grpc_code = grpc_code
        self.rpc_error: BaseException | None = None

    def __str__(self) -> str:
        if self.subject and self.subject not in self.message:
            return f"{self.message} [{self.subject}]"
        return self.message


class FlyteNotFoundError(FlyteBridgeError, LookupError):
    """The execution, entity or signal does not exist (NOT_FOUND)."""


class FlyteAlreadyExistsError(FlyteBridgeError):
    """An entity or execution with this identifier already exists (ALREADY_EXISTS)."""


class FlyteConflictError(FlyteAlreadyExistsError):
    """The name is taken by an execution that ran something else or with other inputs."""


class FlyteInvalidInputError(FlyteBridgeError, ValueError):
    """A request or a value was rejected before or by the server (INVALID_ARGUMENT)."""


class FlyteNoScheduleTickError(FlyteInvalidInputError):
    """No tick of the launch plan's schedule falls in a backfill's window, so there is nothing
    to run; an adapter whose window has a default can say how to choose another."""


class FlyteNotReadyError(FlyteBridgeError):
    """The thing asked for does not exist yet: outputs of an unfinished run, a gate not reached.

    Attributes:
        hint: The advice that ends the message (``"pass wait_for_gate=<seconds> to wait for
            it"``), so that an adapter can give its own in its own parameters; None without one.
    """

    hint: str | None = None


class FlyteFailedPreconditionError(FlyteBridgeError):
    """The server refused the call in the current state (FAILED_PRECONDITION)."""


class FlyteExecutionFailedError(FlyteBridgeError):
    """An execution ended in FAILED, ABORTED or TIMED_OUT where success was required.

    Attributes:
        phase: The terminal phase name, e.g. ``"FAILED"``.
        error_code: The execution error's code, when the server gave one.
        failed_node: Id of the first node that failed, when known.
        console_url: Where a person can look at the run.
    """

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        phase: str | None = None,
        error_code: str | None = None,
        failed_node: str | None = None,
        console_url: str | None = None,
    ) -> None:
        super().__init__(message, subject=subject)
        self.phase = phase
        self.error_code = error_code
        self.failed_node = failed_node
        self.console_url = console_url


class FlyteTimeoutError(FlyteBridgeError, TimeoutError):
    """A wait or a call did not finish within its time budget (also DEADLINE_EXCEEDED).

    Attributes:
        last_phase: For a wait on an execution, the phase it was last read in (``"RUNNING"``),
            or None when it was never read or the error is about a call.
    """

    last_phase: str | None = None


class FlyteTransientError(FlyteBridgeError):
    """The server stayed unavailable after every retry (UNAVAILABLE, RESOURCE_EXHAUSTED...)."""


class FlyteAuthError(FlyteBridgeError):
    """Credentials were missing, wrong or refused (UNAUTHENTICATED, PERMISSION_DENIED)."""


class FlyteServerError(FlyteBridgeError):
    """The server failed in a way that is neither transient nor the caller's fault (INTERNAL)."""


class FlyteClientClosedError(FlyteBridgeError):
    """The client was closed before or during the call (a wait ends at once when it is)."""


class FlyteConfigError(FlyteBridgeError, ValueError):
    """The client configuration is incomplete or contradictory."""


class FlyteDataError(FlyteBridgeError):
    """Stored data (an offloaded literal, a blob, a URL) could not be read or decoded."""


def is_permanent(error: BaseException) -> bool:
    """Whether the same call would fail the same way if tried again: a bad input or setting,
    something that does not exist, a state that refuses the call, a name taken by another run.

    Everything else (an unreachable or overloaded server, a deadline, a server or auth failure
    that may pass, an unexpected error) may go away, so callers try again within their budget.
    """
    return isinstance(
        error,
        (
            FlyteInvalidInputError,
            FlyteNotFoundError,
            FlyteConfigError,
            FlyteFailedPreconditionError,
            FlyteConflictError,
        ),
    )
