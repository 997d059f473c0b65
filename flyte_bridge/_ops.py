"""The client operations, written once for both clients (see :mod:`flyte_bridge._runtime`)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    launch_plan_pb2,
    project_pb2,
    signal_pb2,
)
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, security_pb2, types_pb2
from flyteidl.service import dataproxy_pb2

from flyte_bridge._checks import require_bool, require_int
from flyte_bridge._requests import (
    ADMIN,
    DATA_PROXY,
    PAGE_SIZE,
    SIGNAL,
    data_call,
    get_execution_call,
    list_executions_request,
    literal_map_op,
    paginate,
    signals_op,
    to_python_op,
    walk_literal,
)
from flyte_bridge._runtime import Blocking, Call, Gather, Notify, Op, Sleep
from flyte_bridge._tree import TreeCache, template_op
from flyte_bridge.errors import (
    FlyteAlreadyExistsError,
    FlyteBridgeError,
    FlyteConflictError,
    FlyteFailedPreconditionError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
    FlyteNotReadyError,
    FlyteServerError,
    FlyteTimeoutError,
    FlyteTransientError,
)
from flyte_bridge.models import (
    EntityId,
    Execution,
    ExecutionId,
    NodeExecution,
    Project,
    Signal,
    TaskExecution,
    TerminateResult,
    WorkflowPhase,
)

logger = logging.getLogger(__name__)

UNKNOWN_PHASE_GRACE = 60.0
"""Seconds a wait tolerates a phase this client does not know before it gives up."""

ERROR_PAUSE = 1.0
"""Seconds a wait pauses at least after a poll that failed, whatever its poll interval; the
pause doubles with each failed poll in a row, up to MAX_ERROR_PAUSE."""

MAX_ERROR_PAUSE = 30.0
"""Longest pause of a wait after failed polls (unless the poll interval is longer)."""

GATE_POLL_INTERVAL = 1.0
"""Seconds between ListSignals calls while waiting for a gate to be reached."""

_UPLOAD_PLACEHOLDER = "flyte-bridge-upload://"


# Fetching and listing -----------------------------------------------------------------------


def fetch_op(execution_id: ExecutionId) -> Op[Execution]:
    return Execution((yield get_execution_call(execution_id)))


def list_page_op(
    project: str, domain: str, filters: str, sort: Any, limit: int, token: str, org: str = ""
) -> Op[tuple[list[Execution], str]]:
    """One page of ListExecutions and the token of the next (empty at the end)."""
    request = list_executions_request(project, domain, filters, sort, limit, token, org)
    response = yield Call(ADMIN, "ListExecutions", request)
    return [Execution(pb) for pb in response.executions], response.token


def data_op(target: Execution | NodeExecution | TaskExecution, side: str) -> Op[dict[str, Any]]:
    """Inputs (``side="inputs"``) or outputs as Python values, stored on the target too.

    Outputs of an unfinished target raise FlyteNotReadyError, of a failed one
    FlyteExecutionFailedError, before any data is read.
    """
    if side == "outputs":
        target.check_outputs_available()
    response = yield data_call(target)
    full = response.full_inputs if side == "inputs" else response.full_outputs
    blob = response.inputs if side == "inputs" else response.outputs
    literal_map = yield from literal_map_op(full, blob)
    if not literal_map.literals:
        literal_map = yield from _flyte_url_fallback_op(response, side, literal_map)
    values = yield from to_python_op(literal_map)
    setattr(target, f"_{side}", values)
    return values


def _flyte_url_fallback_op(
    response: Any, side: str, empty: literals_pb2.LiteralMap
) -> Op[literals_pb2.LiteralMap]:
    """Asks the data proxy for the map when admin returned it neither inline nor signed."""
    # Only the node and task execution responses carry flyte_urls; the execution one does not.
    has_urls = "flyte_urls" in response.DESCRIPTOR.fields_by_name and response.HasField(
        "flyte_urls"
    )
    flyte_url = getattr(response.flyte_urls, side, "") if has_urls else ""
    if not flyte_url:
        return empty
    try:
        data = yield Call(DATA_PROXY, "GetData", dataproxy_pb2.GetDataRequest(flyte_url=flyte_url))
    except FlyteBridgeError as error:
        logger.debug("GetData %s failed: %s", flyte_url, error)
        return empty
    return data.literal_map if data.HasField("literal_map") else empty


# Waiting ------------------------------------------------------------------------------------


def wait_op(
    execution_id: ExecutionId,
    timeout: float | None,
    poll_interval: float,
    rpc_timeout: float,
    on_update: Callable[[Execution], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Op[Execution]:
    """Polls GetExecution until the execution is terminal or the budget is spent.

    Each poll's deadline is clipped to what is left of ``timeout``; once it is spent, one last
    poll with a full RPC deadline decides (success found then wins), so the whole wait ends
    within ``timeout`` plus one RPC deadline even when the server stops answering. Transient
    errors and per-call deadlines inside the budget are retried at the next poll, after a pause
    that backs off (ERROR_PAUSE doubling up to MAX_ERROR_PAUSE) while the polls keep failing.
    """
    if poll_interval < 0:
        raise FlyteInvalidInputError(f"poll_interval must be 0 or more, got {poll_interval}")
    if timeout is not None and timeout < 0:
        raise FlyteInvalidInputError(f"timeout must be 0 or more, got {timeout}")

    deadline = None if timeout is None else clock() + timeout
    last_phase: int | None = None
    unknown_since: float | None = None
    execution: Execution | None = None
    failures = 0
    while True:
        remaining = None if deadline is None else deadline - clock()
        final = remaining is not None and remaining <= 0
        call_timeout = rpc_timeout if remaining is None or final else min(rpc_timeout, remaining)
        try:
            # Sent once (not idempotent for the transport): this loop is the retry, and a
            # transport retry would add deadlines beyond the budget.
            poll = get_execution_call(execution_id, call_timeout, idempotent=False)
            execution = Execution((yield poll))
        except (FlyteTimeoutError, FlyteTransientError) as error:
            if final:
                raise _wait_timeout(execution_id, timeout, execution) from error
            logger.info("polling %s failed (%s); polling again", execution_id, error)
            if deadline is not None and clock() >= deadline:
                continue  # the budget ran out during this poll: the last poll decides
            failures += 1
        else:
            failures = 0
            if execution.proto.closure.phase != last_phase:
                last_phase = execution.proto.closure.phase
                logger.info("execution %s is %s", execution_id, execution.phase.name)
                if on_update is not None:
                    yield Notify(on_update, execution)
            if execution.is_done:
                return execution
            if not execution.phase.is_known:
                unknown_since = unknown_since if unknown_since is not None else clock()
                if clock() - unknown_since >= UNKNOWN_PHASE_GRACE:
                    raise FlyteServerError(
                        f"execution {execution_id} reports phase {int(execution.phase)}, which "
                        f"this client does not know, for {UNKNOWN_PHASE_GRACE:.0f}s; upgrade "
                        "flyteidl or check the server",
                        subject=str(execution_id),
                    )
            else:
                unknown_since = None
        if final:
            raise _wait_timeout(execution_id, timeout, execution)

        pause = poll_interval
        if failures:
            backoff = min(ERROR_PAUSE * 2 ** (failures - 1), MAX_ERROR_PAUSE)
            pause = max(poll_interval, backoff)
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - clock()))
        if pause > 0:
            yield Sleep(pause)


def _wait_timeout(
    execution_id: ExecutionId, timeout: float | None, execution: Execution | None
) -> FlyteTimeoutError:
    phase = execution.phase.name if execution is not None else "unknown (no answer)"
    error = FlyteTimeoutError(
        f"execution {execution_id} did not finish within {timeout:g}s; last phase {phase}",
        subject=str(execution_id),
    )
    error.last_phase = execution.phase.name if execution is not None else None
    return error


# Terminate, relaunch, recover ---------------------------------------------------------------


def terminate_op(
    execution_id: ExecutionId, cause: str, timeout: float | None = None
) -> Op[TerminateResult]:
    """Aborts an execution; one that has already ended gives ``already_terminal=True``.

    With ``timeout`` the whole call, retries included, takes at most that long (plus one
    scheduling slice), for a caller that must go on soon (after a wait ran out of time, or
    while its task is being killed). If the phase cannot be read within it after an accepted
    terminate, the result says ABORTING.

    A terminate whose answer was lost is sent again; the second meets FAILED_PRECONDITION once
    the run is ABORTED. A run aborted with this very cause is then reported as ended by this
    call, not as one that had already ended.
    """
    from flyte_bridge.transport import Deadline

    request = execution_pb2.ExecutionTerminateRequest(id=execution_id.to_proto(), cause=cause)
    budget = None if timeout is None else Deadline(timeout)

    def call(step: Call) -> Call:
        return step if budget is None else dataclasses.replace(step, deadline=budget)

    try:
        yield call(Call(ADMIN, "TerminateExecution", request, subject=str(execution_id)))
    except FlyteFailedPreconditionError:
        current = Execution((yield call(get_execution_call(execution_id))))
        if not current.is_done:
            raise
        if cause and current.phase == WorkflowPhase.ABORTED and _abort_cause(current) == cause:
            logger.info("terminated %s (an earlier attempt's answer was lost)", execution_id)
            return TerminateResult(execution_id, current.phase, already_terminal=False)
        logger.info("execution %s had already ended %s", execution_id, current.phase.name)
        return TerminateResult(execution_id, current.phase, already_terminal=True)
    try:
        current = Execution((yield call(get_execution_call(execution_id))))
    except (FlyteTimeoutError, FlyteTransientError):
        if budget is None:
            raise
        logger.info("terminated %s; its phase could not be read in time", execution_id)
        return TerminateResult(execution_id, WorkflowPhase.ABORTING, already_terminal=False)
    logger.info("terminated %s (now %s)", execution_id, current.phase.name)
    return TerminateResult(execution_id, current.phase, already_terminal=False)


def _abort_cause(execution: Execution) -> str:
    closure = execution.proto.closure
    return closure.abort_metadata.cause or closure.abort_cause


def generated_name() -> str:
    """A fresh execution name chosen by the client, so that a retried create stays single."""
    return "f" + uuid.uuid4().hex[:19]


def relaunch_op(
    execution_id: ExecutionId, name: str | None, overwrite_cache: bool
) -> Op[Execution]:
    name = _checked_name(name)
    request = execution_pb2.ExecutionRelaunchRequest(
        id=execution_id.to_proto(), name=name, overwrite_cache=overwrite_cache
    )
    return (yield from _derived_op(execution_id, name, "RelaunchExecution", request, "RELAUNCH"))


def recover_op(execution_id: ExecutionId, name: str | None) -> Op[Execution]:
    name = _checked_name(name)
    request = execution_pb2.ExecutionRecoverRequest(id=execution_id.to_proto(), name=name)
    return (yield from _derived_op(execution_id, name, "RecoverExecution", request, "RECOVERED"))


def _derived_op(
    source: ExecutionId, name: str, method: str, request: Any, mode: str
) -> Op[Execution]:
    """Relaunch or recover, reattaching to a same-named run only if it came from ``source``."""
    target = ExecutionId(source.project, source.domain, name, source.org)
    try:
        response = yield Call(ADMIN, method, request, idempotent=True)
    except FlyteAlreadyExistsError as error:
        existing = yield from fetch_op(target)
        reference = ExecutionId.from_proto(existing.proto.spec.metadata.reference_execution)
        if reference != source or existing.mode != mode:
            what = "relaunch" if mode == "RELAUNCH" else "recovery"
            raise FlyteConflictError(
                f"execution name {name!r} is taken by {target}, which is not a {what} of {source}",
                subject=str(target),
            ) from error
        return existing
    created = ExecutionId.from_proto(response.id)
    return (yield from _read_created_op(created, f"call it again with name={created.name!r}"))


def _checked_name(name: str | None) -> str:
    from flyte_bridge.naming import validate_execution_name

    return generated_name() if name is None else validate_execution_name(name)


# Projects -----------------------------------------------------------------------------------


def list_projects_op(org: str, deadline: Any = None) -> Op[list[Project]]:
    """Every project admin has (archived ones excluded, as admin lists them), every page."""

    def request(token: str) -> project_pb2.ProjectListRequest:
        return project_pb2.ProjectListRequest(limit=PAGE_SIZE, token=token, org=org)

    found = yield from paginate("ListProjects", request, lambda r: r.projects, deadline=deadline)
    return [Project(pb.id, pb.name, tuple(domain.id for domain in pb.domains)) for pb in found]


def check_scope_op(
    project: str | None, domain: str | None, org: str, deadline: Any = None
) -> Op[list[Project]]:
    """The registered projects, after checking that ``project`` is one of them and ``domain``
    one of its domains (of any project's, without ``project``); either may be None.

    Admin answers a list in an unknown project with nothing rather than an error, so a
    mistyped project would otherwise look like one with no executions.

    Raises:
        FlyteNotFoundError: naming the unknown project or domain and the registered ones.
    """
    projects = yield from list_projects_op(org, deadline)
    if project:
        matching = [p for p in projects if p.id == project]
        if not matching:
            known = ", ".join(sorted(p.id for p in projects)) or "none"
            raise FlyteNotFoundError(
                f"project {project!r} is not registered; registered projects: {known}",
                subject=project,
            )
        domains = matching[0].domains
    else:
        domains = tuple(dict.fromkeys(d for p in projects for d in p.domains))
    if domain and domains and domain not in domains:
        where = f"project {project!r}" if project else "any project"
        raise FlyteNotFoundError(
            f"domain {domain!r} is not a domain of {where}; its domains: {', '.join(domains)}",
            subject=domain,
        )
    return projects


# Signals ------------------------------------------------------------------------------------


def _signal(pb: signal_pb2.Signal) -> Signal:
    from flyte_bridge import literals

    is_set = pb.HasField("value")
    value = literals.to_python(pb.value, pb.type) if is_set else None
    return Signal(
        signal_id=pb.id.signal_id,
        execution_id=ExecutionId.from_proto(pb.id.execution_id),
        type=pb.type,
        value=value,
        is_set=is_set,
    )


def list_signals_op(execution_id: ExecutionId) -> Op[list[Signal]]:
    """Every signal of an execution; a gate's signal appears only once the gate is reached.

    An empty answer is checked with one GetExecution, so that an execution that does not exist
    raises FlyteNotFoundError instead of looking like one that has reached no gate yet.
    """
    signals = [_signal(pb) for pb in (yield from signals_op(execution_id))]
    if not signals:
        yield from fetch_op(execution_id)
    return signals


def gate_op(
    execution_id: ExecutionId,
    signal_id: str,
    timeout: float | None,
    cache: TreeCache,
    poll_interval: float = GATE_POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    check: Callable[[types_pb2.LiteralType], object] | None = None,
) -> Op[signal_pb2.Signal]:
    """The signal of a gate once the execution has reached it, polling for up to ``timeout``
    seconds (None: look once).

    A signal id that no gate of the workflow declares fails at once: waiting for a misspelt
    gate would last as long as the execution. Gates inside dynamic nodes are not in the
    compiled closure, so an id is waited for unchecked only when the closure declares no gate.
    ``check`` is called with the gate's declared type before any wait, so that a value that
    cannot fit it fails at once rather than when the gate is reached.

    Raises:
        FlyteNotFoundError: No gate declares the id, or the execution ended without it.
        FlyteNotReadyError: The gate was not reached within ``timeout`` (or, with None, yet).
    """
    deadline = None if timeout is None else clock() + timeout
    while True:
        found = [pb for pb in (yield from signals_op(execution_id)) if pb.id.signal_id == signal_id]
        if found:
            return found[0]
        execution = yield from fetch_op(execution_id)
        _, gates = yield from template_op(execution, cache)
        if execution.is_done or (gates and signal_id not in gates):
            raise _missing_gate(execution_id, signal_id, execution, gates)
        if check is not None and signal_id in gates:
            check(gates[signal_id])
            check = None
        if deadline is None or clock() >= deadline:
            hint = (
                "pass wait_for_gate=<seconds> to wait for it"
                if timeout is None
                else f"waited {timeout:g}s"
            )
            unchecked = (
                ""
                if gates
                else "; its workflow declares no gate outside dynamic nodes, so the id is "
                "unchecked: a gate a dynamic node makes shows up only once reached"
            )
            not_reached = FlyteNotReadyError(
                f"gate {signal_id!r} of execution {execution_id} has not been reached yet "
                f"(execution is {execution.phase.name}){unchecked}; {hint}",
                subject=f"{execution_id}/{signal_id}",
            )
            not_reached.hint = hint
            raise not_reached
        yield Sleep(max(0.0, min(poll_interval, deadline - clock())))


def wait_for_gate_op(
    execution_id: ExecutionId,
    signal_id: str,
    timeout: float | None,
    poll_interval: float,
    cache: TreeCache,
) -> Op[Signal]:
    """Waits until the execution reaches the gate; None waits as long as the execution runs."""
    try:
        pb = yield from gate_op(
            execution_id,
            signal_id,
            float("inf") if timeout is None else timeout,
            cache,
            poll_interval,
        )
    except FlyteNotReadyError as error:
        raise FlyteTimeoutError(error.message, subject=error.subject) from error
    return _signal(pb)


def set_signal_op(
    execution_id: ExecutionId,
    signal_id: str,
    value: Any,
    wait_for_gate: float | None,
    cache: TreeCache,
    verb: str,
    from_text: bool = False,
) -> Op[Signal]:
    """Sets a gate's signal after converting ``value`` to the signal's declared type (a str
    read as text of that type first, with ``from_text``).

    The signal must exist (its gate reached); with ``wait_for_gate`` the call waits that many
    seconds for it. A signal id that no gate of the workflow declares raises FlyteNotFoundError.
    A signal that already holds the same value is left alone (so a retried call succeeds); one
    that holds another value, or whose execution has ended, raises
    FlyteFailedPreconditionError: flyteadmin would overwrite it, but the gate has already
    passed, and the new value would change nothing but the record. The check and the set are
    two calls: two callers answering at the same moment with different values can both pass
    the check, and admin keeps the later value.
    """
    from flyte_bridge import literals

    subject = f"{execution_id}/{signal_id}"

    def convert(declared: types_pb2.LiteralType) -> literals_pb2.Literal:
        if verb in ("approve", "reject") and not _is_boolean(declared):
            raise FlyteInvalidInputError(
                f"signal {signal_id!r} expects {literals.describe_type(declared)}; {verb} fits "
                "only an approve gate (BOOLEAN); use set_input",
                subject=subject,
            )
        try:
            given = literals.from_loose_value(value, declared) if from_text else value
            return literals.to_literal(given, declared)
        except FlyteInvalidInputError as error:
            raise FlyteInvalidInputError(
                f"signal {signal_id!r} of {execution_id} expects "
                f"{literals.describe_type(declared)}: {error.message}",
                subject=subject,
            ) from error

    # The workflow's declared type is checked before waiting; the reached signal's own type
    # is the one the value is converted to.
    pb = yield from gate_op(execution_id, signal_id, wait_for_gate, cache, check=convert)
    literal = convert(pb.type)
    wanted = literals.to_python(literal, pb.type)
    if pb.HasField("value"):
        held = literals.to_python(pb.value, pb.type)
        if pb.value == literal or held == wanted:
            logger.info("signal %s of %s already holds %r", signal_id, execution_id, held)
            return Signal(signal_id, execution_id, pb.type, held, True, changed=False)
        raise FlyteFailedPreconditionError(
            f"signal {signal_id!r} of {execution_id} was already given {held!r}; the gate has "
            f"passed and cannot take {wanted!r}",
            subject=subject,
        )
    execution = yield from fetch_op(execution_id)
    if execution.is_done:
        raise FlyteFailedPreconditionError(
            f"execution {execution_id} ended {execution.phase.name}; its gate {signal_id!r} can "
            "no longer be answered",
            subject=subject,
        )
    request = signal_pb2.SignalSetRequest(id=pb.id, value=literal)
    yield Call(SIGNAL, "SetSignal", request, idempotent=True)
    logger.info("%s signal %s of %s", verb, signal_id, execution_id)
    return Signal(signal_id, execution_id, pb.type, wanted, True, changed=True)


def _is_boolean(literal_type: types_pb2.LiteralType) -> bool:
    return (
        literal_type.WhichOneof("type") == "simple"
        and literal_type.simple == types_pb2.SimpleType.BOOLEAN
    )


def _missing_gate(
    execution_id: ExecutionId, signal_id: str, execution: Execution, gates: Mapping[str, object]
) -> FlyteNotFoundError:
    subject = f"{execution_id}/{signal_id}"
    if signal_id in gates:  # declared, but the run ended before it got there
        return FlyteNotFoundError(
            f"execution {execution_id} ended {execution.phase.name} without reaching its gate "
            f"{signal_id!r}; the gate can no longer be answered",
            subject=subject,
        )
    declared = ", ".join(sorted(gates)) or "none found"
    state = f"it ended {execution.phase.name}" if execution.is_done else "it is still running"
    return FlyteNotFoundError(
        f"execution {execution_id} has no signal {signal_id!r} ({state}); gates declared by "
        f"its workflow: {declared}",
        subject=subject,
    )


# Launching ----------------------------------------------------------------------------------


def _named(project: str, domain: str, name: str, org: str = "") -> common_pb2.NamedEntityIdentifier:
    return common_pb2.NamedEntityIdentifier(project=project, domain=domain, name=name, org=org)


def _latest_op(kind: str, project: str, domain: str, name: str, org: str = "") -> Op[Any]:
    """The newest version of a task or launch plan (ListTasks / ListLaunchPlans, limit 1)."""
    method = "ListTasks" if kind == "TASK" else "ListLaunchPlans"
    request = common_pb2.ResourceListRequest(
        id=_named(project, domain, name, org),
        limit=1,
        sort_by=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.Direction.DESCENDING),
    )
    response = yield Call(ADMIN, method, request)
    found = list(response.tasks if kind == "TASK" else response.launch_plans)
    if not found:
        what = "task" if kind == "TASK" else "launch plan"
        reason = yield from _scope_reason(project, domain, org)
        raise FlyteNotFoundError(
            f"no {what} {project}/{domain}/{name} is registered{reason or ''}",
            subject=f"{project}/{domain}/{name}",
        )
    return found[0]


SCOPE_CHECK_SECONDS = 10.0
"""Budget of the project check that explains a lookup which found nothing: it only improves
an error already in hand, so a slow admin must not hold that error back for long."""


def _scope_reason(project: str, domain: str, org: str) -> Op[str | None]:
    """``": <why>"`` when the project or domain itself is unknown, ``""`` when both exist, and
    None when that could not be told (a server that refuses or fails ListProjects within
    :data:`SCOPE_CHECK_SECONDS`). One more call, made only once something was not found."""
    from flyte_bridge.transport import Deadline

    try:
        yield from check_scope_op(project, domain, org, Deadline(SCOPE_CHECK_SECONDS))
    except FlyteNotFoundError as error:
        return f": {error.message}"
    except FlyteBridgeError as error:
        logger.debug("could not list projects to check %s/%s: %s", project, domain, error)
        return None
    return ""


def explain_not_found(
    op: Op[Any], execution_id: ExecutionId, known_scopes: set[tuple[str, str, str]]
) -> Op[Any]:
    """Runs ``op``; when it finds no execution because the project or domain itself is unknown,
    its FlyteNotFoundError says so (as a list or launch there does) instead of admin's bare
    "missing entity". Scopes found to exist are added to ``known_scopes`` and not checked again,
    so a client that looks up names before launching them pays the check once."""
    try:
        return (yield from op)
    except FlyteNotFoundError as error:
        scope = (execution_id.project, execution_id.domain, execution_id.org)
        if scope in known_scopes:
            raise
        reason = yield from _scope_reason(*scope)
        if not reason:
            if reason == "":
                known_scopes.add(scope)
            raise
        explained = FlyteNotFoundError(
            f"no execution {execution_id}{reason}",
            subject=str(execution_id),
            grpc_code=error.grpc_code,
        )
        explained.rpc_error = error.rpc_error
        raise explained from None


def _get_entity_call(
    kind: str, project: str, domain: str, name: str, version: str, org: str = ""
) -> Call:
    """GetTask or GetLaunchPlan of one version."""
    identifier = identifier_pb2.Identifier(
        resource_type=identifier_pb2.ResourceType.Value(kind),
        project=project,
        domain=domain,
        name=name,
        version=version,
        org=org,
    )
    method = "GetTask" if kind == "TASK" else "GetLaunchPlan"
    return Call(ADMIN, method, common_pb2.ObjectGetRequest(id=identifier))


def _version_op(kind: str, project: str, domain: str, name: str, version: str, org: str) -> Op[Any]:
    """One version of a task or launch plan; a version that does not exist is a
    FlyteNotFoundError naming the newest one (or why there is none)."""
    try:
        return (yield _get_entity_call(kind, project, domain, name, version, org))
    except FlyteNotFoundError as error:
        what = "task" if kind == "TASK" else "launch plan"
        try:
            newest = yield from _latest_op(kind, project, domain, name, org)
        except FlyteNotFoundError as none_at_all:
            raise none_at_all from None
        except FlyteBridgeError as unreadable:
            # The version is missing all the same; say so rather than how the listing failed.
            logger.debug("could not read the newest version of %s: %s", name, unreadable)
            raise error from None
        explained = FlyteNotFoundError(
            f"{what} {project}/{domain}/{name} has no version {version!r}; the newest is "
            f"{newest.id.version!r}",
            subject=f"{project}/{domain}/{name}",
            grpc_code=error.grpc_code,
        )
        explained.rpc_error = error.rpc_error
        raise explained from None


def launch_plan_op(
    project: str, domain: str, name: str, version: str | None, org: str = ""
) -> Op[Any]:
    """A launch plan: the given version, else the active one, else the newest."""
    if version:
        return (yield from _version_op("LAUNCH_PLAN", project, domain, name, version, org))
    try:
        return (
            yield Call(
                ADMIN,
                "GetActiveLaunchPlan",
                launch_plan_pb2.ActiveLaunchPlanRequest(id=_named(project, domain, name, org)),
            )
        )
    except FlyteNotFoundError:
        return (yield from _latest_op("LAUNCH_PLAN", project, domain, name, org))


def launch_target_op(
    kind: str, project: str, domain: str, name: str, version: str | None, org: str = ""
) -> Op[tuple[identifier_pb2.Identifier, dict[str, Any], literals_pb2.LiteralMap]]:
    """Resolves what to launch: its identifier, its expected inputs and its fixed inputs.

    A launch plan without a version resolves to the active one, else the newest; a task to the
    newest. Expected inputs are ``{name: core.Parameter}`` (a task's are all required).
    """
    if kind == "LAUNCH_PLAN":
        launch_plan = yield from launch_plan_op(project, domain, name, version, org)
        parameters = dict(launch_plan.closure.expected_inputs.parameters)
        return launch_plan.id, parameters, launch_plan.spec.fixed_inputs

    if version:
        task = yield from _version_op("TASK", project, domain, name, version, org)
    else:
        task = yield from _latest_op(kind, project, domain, name, org)
    variables = task.closure.compiled_task.template.interface.inputs.variables
    parameters = {
        key: interface_pb2.Parameter(var=var, required=True) for key, var in variables.items()
    }
    return task.id, parameters, literals_pb2.LiteralMap()


def convert_inputs(
    subject: str,
    parameters: Mapping[str, Any],
    fixed: literals_pb2.LiteralMap,
    values: Mapping[str, Any],
    from_text: bool = False,
    only_given: bool = False,
) -> tuple[dict[str, literals_pb2.Literal], list[str]]:
    """Converts launch inputs against the expected inputs, every problem reported at once.

    With ``from_text``, str values are first read as text of their declared type, and numbers
    for a duration as seconds (:func:`flyte_bridge.literals.from_loose_value`): what a template
    renders to, or what text-only configuration such as YAML holds.

    Returns the literals (defaults filled in) and the local paths to upload; their literals
    carry placeholders until :func:`upload_op` has run. With ``only_given`` (a backfill's
    inputs, which its nodes bind beside the defaults) only the given values are converted:
    nothing is reported missing and no default is filled in.

    Raises:
        FlyteInvalidInputError: Unknown names, fixed inputs given, required inputs missing, or
            values that do not fit their type, all listed in one message.
    """
    from flyte_bridge import literals

    problems: list[str] = []
    overridden = sorted(set(values) & set(fixed.literals))
    unknown = sorted(set(values) - set(parameters) - set(fixed.literals))
    if overridden:
        problems.append(f"fixed inputs cannot be overridden: {', '.join(overridden)}")
    if unknown:
        expected = ", ".join(sorted(parameters)) or "(none)"
        problems.append(f"unknown inputs {', '.join(unknown)} (expected: {expected})")
    missing = sorted(
        key
        for key, parameter in parameters.items()
        if not only_given
        and key not in values
        and parameter.WhichOneof("behavior") == "required"
        and parameter.required
    )
    if missing:
        problems.append(f"missing required inputs: {', '.join(missing)}")

    local_paths: list[str] = []

    def record_upload(path: str) -> str:
        if path not in local_paths:
            local_paths.append(path)
        return f"{_UPLOAD_PLACEHOLDER}{local_paths.index(path)}"

    converted: dict[str, literals_pb2.Literal] = {}
    for key, value in values.items():
        if key not in parameters or key in fixed.literals:
            continue
        declared = parameters[key].var.type
        try:
            if from_text:
                value = literals.from_loose_value(value, declared)
            converted[key] = literals.to_literal(value, declared, upload=record_upload)
        except FlyteInvalidInputError as error:
            problems.append(f"input {key!r}: {error.message}")
    if problems:
        raise FlyteInvalidInputError(
            f"cannot launch {subject}: " + "; ".join(problems), subject=subject
        )

    for key, parameter in parameters.items():
        if only_given:
            break
        if key not in converted and parameter.WhichOneof("behavior") == "default":
            converted[key] = parameter.default
    return converted, local_paths


def _upload_file_op(project: str, domain: str, file: Path, filename: str, root: str) -> Op[str]:
    """Uploads one file to a data-proxy signed URL; returns its native URI."""
    from flyte_bridge import download

    digest = yield Blocking(download.file_md5, (file,))
    location = yield Call(
        DATA_PROXY,
        "CreateUploadLocation",
        dataproxy_pb2.CreateUploadLocationRequest(
            project=project,
            domain=domain,
            filename=filename,
            filename_root=root,
            content_md5=digest,
            add_content_md5_metadata=True,
        ),
    )
    yield Blocking(download.put_file, (location.signed_url, file, digest, dict(location.headers)))
    return location.native_url


def upload_op(project: str, domain: str, local: str) -> Op[str]:
    """Uploads a local file or directory through the data proxy; returns its remote URI.

    A directory's files share one upload root named after their contents, so the directory's
    URI is the common prefix of its files.
    """
    from flyte_bridge import download

    path = Path(local)
    if path.is_file():
        return (yield from _upload_file_op(project, domain, path, path.name, ""))

    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise FlyteInvalidInputError(
            f"directory {local} is empty; nothing to upload", subject=local
        )
    digests = []
    for file in files:
        digests.append((yield Blocking(download.file_md5, (file,))))
    root = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    relatives = [file.relative_to(path).as_posix() for file in files]
    uris = yield Gather(
        [
            _upload_file_op(project, domain, file, relative, root)
            for file, relative in zip(files, relatives, strict=True)
        ]
    )
    return uris[0][: -len(relatives[0])].rstrip("/")


def _replace_placeholders(literal: literals_pb2.Literal, uris: list[str]) -> None:
    """Puts the uploaded URIs where :func:`convert_inputs` left placeholders."""
    for item in walk_literal(literal):
        if item.WhichOneof("value") != "scalar":
            continue
        which = item.scalar.WhichOneof("value")
        if which in ("blob", "structured_dataset"):
            holder = getattr(item.scalar, which)
            if holder.uri.startswith(_UPLOAD_PLACEHOLDER):
                holder.uri = uris[int(holder.uri[len(_UPLOAD_PLACEHOLDER) :])]


def launch_op(
    kind: str,
    project: str,
    domain: str,
    entity_name: str,
    version: str | None,
    inputs: Mapping[str, Any],
    name: str | None,
    spec_options: Mapping[str, Any],
    org: str = "",
    from_text: bool = False,
) -> Op[Execution]:
    """Validates and converts the inputs, uploads local files, then creates the execution.

    The execution name is chosen here when the caller gives none, so CreateExecution can be
    retried safely. On ALREADY_EXISTS the existing execution is returned only if it ran the
    same entity with the same inputs; otherwise FlyteConflictError.
    """
    name = _checked_name(name)
    entity_id, parameters, fixed = yield from launch_target_op(
        kind, project, domain, entity_name, version, org
    )
    subject = str(EntityId.from_proto(entity_id))
    converted, local_paths = convert_inputs(subject, parameters, fixed, inputs, from_text)

    if local_paths:
        uris = yield Gather([upload_op(project, domain, path) for path in local_paths])
        for literal in converted.values():
            _replace_placeholders(literal, uris)

    literal_map = literals_pb2.LiteralMap(literals=converted)
    request = execution_pb2.ExecutionCreateRequest(
        project=project,
        domain=domain,
        name=name,
        spec=_execution_spec(entity_id, spec_options),
        inputs=literal_map,
        org=org,
    )
    target = ExecutionId(project, domain, name, org)
    try:
        yield Call(ADMIN, "CreateExecution", request, idempotent=True, subject=str(target))
    except FlyteConflictError:
        raise
    except (FlyteTimeoutError, FlyteTransientError) as error:
        if "connection refused" in error.message:
            raise  # nothing reached admin: no run can have been made
        # Every attempt went unanswered or failed in transit, yet one may have been applied.
        raise _naming_the_run(
            error,
            f"execution {target} may have been created all the same: launch again with "
            f"name={name!r} to follow it instead of starting another",
            target,
        ) from None
    except FlyteAlreadyExistsError as error:
        # With no version named, a run of another version matches on the inputs given: a retry
        # after a new registration follows the run it launched.
        existing, difference = yield from _same_launch_op(
            target, entity_id, literal_map, fixed, given=set(inputs) if version is None else None
        )
        if difference is not None:
            raise FlyteConflictError(
                f"execution name {name!r} is taken by {target}, which {difference}; choose "
                "another name",
                subject=str(target),
            ) from error
        logger.info("reattached to existing execution %s (%s)", target, existing.phase.name)
        return existing
    logger.info("launched %s as %s", subject, target)
    return (yield from _read_created_op(target, f"launch again with name={name!r}"))


def _read_created_op(target: ExecutionId, how_to_follow: str) -> Op[Execution]:
    """The execution admin just created; a failed read says the run exists, so that a caller
    retrying does not start a second one."""
    try:
        return (yield from fetch_op(target))
    except (FlyteTimeoutError, FlyteTransientError) as error:
        raise _naming_the_run(
            error,
            f"execution {target} was created, but reading it back failed: {how_to_follow} "
            "(or fetch it) to follow it instead of starting another",
            target,
        ) from None


def _naming_the_run(
    error: FlyteTimeoutError | FlyteTransientError, note: str, target: ExecutionId
) -> FlyteTimeoutError | FlyteTransientError:
    """The same kind of error as ``error``, its message followed by ``note``."""
    named = type(error)(f"{error.message}; {note}", subject=str(target), grpc_code=error.grpc_code)
    named.rpc_error = error.rpc_error
    return named


def _same_launch_op(
    target: ExecutionId,
    entity_id: identifier_pb2.Identifier,
    inputs: literals_pb2.LiteralMap,
    fixed: literals_pb2.LiteralMap,
    given: set[str] | None = None,
) -> Op[tuple[Execution, str | None]]:
    """The existing execution, and None if it ran ``entity_id`` with these inputs, else what
    differs (``"ran launch plan p/d/n@v2"``, ``"had other inputs: x, y"``). With ``given``,
    any version of the entity matches and only the inputs named there are compared (the
    defaults and fixed inputs of another version may differ)."""
    existing = yield from fetch_op(target)
    launched = existing.proto.spec.launch_plan
    compared = slice(0, 5) if given is None else slice(0, 4)
    if _entity_key(launched)[compared] != _entity_key(entity_id)[compared]:
        return existing, f"ran {_entity_text(launched)}, not {_entity_text(entity_id)}"
    data = yield data_call(existing)
    stored = yield from literal_map_op(data.full_inputs, data.inputs)
    expected = dict(inputs.literals)
    expected.update(fixed.literals)
    if given is not None:
        expected = {key: literal for key, literal in expected.items() if key in given}
    stored_literals = dict(stored.literals)
    differing = sorted(
        key
        for key, literal in expected.items()
        if (key in stored_literals and stored_literals[key] != literal)
        or (key not in stored_literals and key in inputs.literals)
    )
    if differing:
        return existing, f"had other inputs: {', '.join(differing)}"
    return existing, None


def _entity_key(entity: identifier_pb2.Identifier) -> tuple[int, str, str, str, str]:
    return (entity.resource_type, entity.project, entity.domain, entity.name, entity.version)


def _entity_text(entity: identifier_pb2.Identifier) -> str:
    kind = "task" if entity.resource_type == identifier_pb2.ResourceType.TASK else "launch plan"
    return f"{kind} {entity.project}/{entity.domain}/{entity.name}@{entity.version}"


def _execution_spec(
    entity_id: identifier_pb2.Identifier, options: Mapping[str, Any]
) -> execution_pb2.ExecutionSpec:
    spec = execution_pb2.ExecutionSpec(
        launch_plan=entity_id,
        metadata=execution_pb2.ExecutionMetadata(
            mode=execution_pb2.ExecutionMetadata.ExecutionMode.MANUAL, principal="flyte-bridge"
        ),
        labels=common_pb2.Labels(values=dict(options.get("labels") or {})),
        annotations=common_pb2.Annotations(values=dict(options.get("annotations") or {})),
        overwrite_cache=bool(options.get("overwrite_cache")),
    )
    if options.get("max_parallelism") is not None:
        spec.max_parallelism = int(options["max_parallelism"])
    if options.get("raw_output_prefix"):
        spec.raw_output_data_config.output_location_prefix = options["raw_output_prefix"]
    if options.get("service_account"):
        spec.security_context.CopyFrom(
            security_pb2.SecurityContext(
                run_as=security_pb2.Identity(k8s_service_account=options["service_account"])
            )
        )
    envs = options.get("envs") or {}
    if envs:
        spec.envs.values.extend(
            literals_pb2.KeyValuePair(key=k, value=str(v)) for k, v in envs.items()
        )
    spec.tags.extend(options.get("tags") or [])
    return spec


def execution_spec_options(**options: Any) -> dict[str, Any]:
    """The launch options, checked for shape before anything is sent."""
    from flyte_bridge.naming import label_problem

    for key in ("labels", "annotations", "envs"):
        value = options.get(key)
        if value is not None:
            options[key] = _string_map(key, value)
    problems = [label_problem(k, v) for k, v in (options.get("labels") or {}).items()]
    if any(problems):
        raise FlyteInvalidInputError("; ".join(p for p in problems if p))
    parallelism = options.get("max_parallelism")
    if parallelism is not None:
        require_int("max_parallelism", parallelism, least=0)
    tags = options.get("tags")
    if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
        raise FlyteInvalidInputError(f"tags must be a list of str, got {tags!r}")
    return options


def _string_map(key: str, value: Any) -> dict[str, str]:
    """Labels, annotations and envs as str -> str. Numbers and booleans become their text (a
    template rendered as native objects turns ``{{ ds_nodash }}`` into an int); anything else
    is refused, naming the entry."""
    if not isinstance(value, Mapping):
        raise FlyteInvalidInputError(f"{key} must be a mapping of str to str, got {value!r}")
    strings: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise FlyteInvalidInputError(f"{key} keys must be non-empty str, got {name!r}")
        if isinstance(item, bool):
            strings[name] = "true" if item else "false"
        elif isinstance(item, (str, int, float)):
            strings[name] = str(item)
        else:
            raise FlyteInvalidInputError(
                f"{key}[{name!r}] must be a str (or a number or bool, sent as text), "
                f"got {type(item).__name__} {item!r}"
            )
    return strings


def entity_of(value: Any, kind: str) -> tuple[str | None, str | None, str, str | None]:
    """Reads a launch target: a name, ``"project/domain/name"``, an EntityId or Identifier."""
    if isinstance(value, EntityId):
        return value.project, value.domain, value.name, value.version or None
    if isinstance(value, identifier_pb2.Identifier):
        return value.project, value.domain, value.name, value.version or None
    if isinstance(value, str) and value:
        parts = value.split("/")
        if len(parts) == 3 and all(parts):
            return parts[0], parts[1], parts[2], None
        if len(parts) == 1:
            return None, None, value, None
    raise FlyteInvalidInputError(
        f"expected a {kind} name, 'project/domain/name' or EntityId, got {value!r}"
    )


# Backfill -----------------------------------------------------------------------------------


def backfill_op(
    project: str,
    domain: str,
    launch_plan_name: str,
    version: str | None,
    start: Any,
    end: Any,
    parallel: bool,
    failure_policy: Any,
    dry_run: bool,
    name: str | None,
    spec_options: Mapping[str, Any] | None = None,
    org: str = "",
    plan_options: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    from_text: bool = False,
) -> Op[Any]:
    """Plans a backfill; unless ``dry_run``, registers its workflow and launch plan and runs it.

    The generated entities' version is a hash of every setting, so registering them again with
    the same settings meets ALREADY_EXISTS for an identical entity, which is fine.
    ``spec_options`` (labels, annotations) go on the backfill execution itself; the child
    executions its launch-plan nodes start get what the engine gives them (in the sandbox, the
    launch plan's own). ``inputs`` (Python values) are converted as a launch converts them and
    bound on every tick's node (str values read as text of their type with ``from_text``);
    local files among them are uploaded, except on a dry run.
    """
    from flyte_bridge import backfill

    require_bool("dry_run", dry_run)
    launch_plan = yield from launch_plan_op(project, domain, launch_plan_name, version, org)
    converted = yield from _backfill_inputs_op(
        launch_plan, inputs or {}, project, domain, dry_run, from_text
    )
    plan = backfill.plan_backfill(
        launch_plan,
        start,
        end,
        parallel=parallel,
        failure_policy=failure_policy,
        project=project,
        domain=domain,
        inputs=converted,
        **(plan_options or {}),
    )
    if dry_run:
        return backfill.BackfillResult.from_plan(plan)

    for method, request in (
        ("CreateWorkflow", plan.workflow_create_request()),
        ("CreateLaunchPlan", plan.launch_plan_create_request()),
    ):
        try:
            yield Call(ADMIN, method, request, idempotent=True)
        except FlyteAlreadyExistsError:
            logger.debug("%s: %s already registered", method, plan.version)
    generated = plan.backfill_launch_plan_id
    execution = yield from launch_op(
        "LAUNCH_PLAN",
        project,
        domain,
        generated.name,
        generated.version,
        {},
        name,
        spec_options or {},
        org,
    )
    return backfill.BackfillResult.from_plan(plan, execution)


def _backfill_inputs_op(
    launch_plan: Any,
    inputs: Mapping[str, Any],
    project: str,
    domain: str,
    dry_run: bool,
    from_text: bool = False,
) -> Op[dict[str, literals_pb2.Literal]]:
    """A backfill's inputs as literals, converted against the launch plan's inputs.

    The kickoff-time input is refused before anything is converted: each tick sets it.
    """
    from flyte_bridge import backfill

    if not inputs:
        return {}
    if not isinstance(inputs, Mapping):
        raise FlyteInvalidInputError(
            f"backfill inputs must be a mapping of input names to values, got "
            f"{type(inputs).__name__}"
        )
    subject = str(EntityId.from_proto(launch_plan.id))
    backfill.refuse_kickoff_input(backfill.kickoff_input(launch_plan), inputs, subject)
    converted, local_paths = convert_inputs(
        subject,
        backfill.expected_inputs(launch_plan).parameters,
        launch_plan.spec.fixed_inputs,
        inputs,
        from_text=from_text,
        only_given=True,
    )
    if local_paths and not dry_run:
        uris = yield Gather([upload_op(project, domain, path) for path in local_paths])
        for literal in converted.values():
            _replace_placeholders(literal, uris)
    return converted


# Metrics ------------------------------------------------------------------------------------


def metrics_op(execution_id: ExecutionId, depth: int) -> Op[Any]:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth < 2**31:
        raise FlyteInvalidInputError(
            f"depth must be an int from 0 to 2**31 - 1 (the levels of spans to break down), "
            f"got {depth!r}",
            subject=str(execution_id),
        )
    request = execution_pb2.WorkflowExecutionGetMetricsRequest(
        id=execution_id.to_proto(), depth=depth
    )
    response = yield Call(ADMIN, "GetExecutionMetrics", request)
    return response.span
