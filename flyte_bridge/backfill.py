"""Backfill planning: the schedule's ticks in a window and one workflow that launches them all.

These are pure functions over protos; the client fetches the launch plan, registers the
generated workflow and launch plan, and starts the execution.

The window is INCLUSIVE at both ends: a tick at exactly ``start`` or exactly ``end`` is part of
the backfill. Ticks are computed in UTC, as Flyte's scheduler does; naive datetimes are taken as
UTC. Supported schedules:

* ``cron_schedule{schedule, offset}``: standard 5-field cron (and ``@daily``-style aliases) read
  by croniter; an ISO 8601 ``offset`` (``PT1H``, ``-P1D``) is added to every tick.
* the legacy ``cron_expression``: standard cron, or the AWS 6-field form (``0 10 * * ? *``) whose
  year field must be ``*`` and whose day-of-week numbers (1 = Sunday) are shifted to cron's.
* ``rate{value, unit}``: every ``value`` minutes, hours or days. A fixed rate has no wall-clock
  anchor in the schedule itself, so ticks start at ``anchor`` (default: the window's start).

One launch-plan node is generated per tick, so very long windows make very large workflows;
``max_ticks`` (1,000 through the clients) bounds them and the error asks for a narrower window.
Other inputs of the launch plan can be given once for the whole backfill: every node binds them,
beside its tick's time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from croniter import croniter
from flyteidl.admin import launch_plan_pb2, schedule_pb2, workflow_pb2
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2
from google.protobuf import duration_pb2

from flyte_bridge._checks import require_bool, require_int
from flyte_bridge.errors import FlyteInvalidInputError, FlyteNoScheduleTickError
from flyte_bridge.literals import to_literal

FailurePolicy = Literal["fail_fast", "continue"]

_FAILURE_POLICIES = {
    "fail_fast": core_workflow_pb2.WorkflowMetadata.FAIL_IMMEDIATELY,
    "continue": core_workflow_pb2.WorkflowMetadata.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE,
}
_RATE_UNITS = {
    schedule_pb2.MINUTE: dt.timedelta(minutes=1),
    schedule_pb2.HOUR: dt.timedelta(hours=1),
    schedule_pb2.DAY: dt.timedelta(days=1),
}
_ISO_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UTC = dt.timezone.utc
DEFAULT_MAX_TICKS = 1000


def _utc(moment: dt.datetime, what: str) -> dt.datetime:
    """A datetime in UTC; naive ones are taken as UTC."""
    if not isinstance(moment, dt.datetime):
        raise FlyteInvalidInputError(f"{what}: expected a datetime, got {type(moment).__name__}")
    return moment.replace(tzinfo=_UTC) if moment.tzinfo is None else moment.astimezone(_UTC)


def _window(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Checks and normalises the inclusive window."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if start > end:
        raise FlyteInvalidInputError(
            f"the backfill window starts after it ends ({start.isoformat()} > {end.isoformat()})"
        )
    return start, end


def parse_window_bound(text: str, *, end: bool) -> dt.datetime:
    """Reads one bound of a backfill window from ISO 8601 text, as an aware UTC datetime.

    A bare date as the window's end means the end of that day (its last microsecond), so that
    ``2024-01-01 .. 2024-01-07`` holds the ticks of all seven days; as the start it means the
    day's first instant. Naive datetimes are UTC.

    Raises:
        FlyteInvalidInputError: The text is not an ISO 8601 date or datetime.
    """
    stripped = str(text).strip()
    try:
        moment = dt.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise FlyteInvalidInputError(
            f"{'end' if end else 'start'} {text!r} is not an ISO 8601 date or datetime"
        ) from None
    moment = _utc(moment, "end" if end else "start")
    if end and _is_bare_date(stripped):
        return moment + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    return moment


def _is_bare_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) <= 10


def parse_iso_duration(text: str) -> dt.timedelta:
    """Parses an ISO 8601 duration in weeks, days, hours, minutes and seconds (``-PT1H30M``).

    Raises:
        FlyteInvalidInputError: for another shape, and for years or months, whose length varies.
    """
    match = _ISO_DURATION.match(text.strip()) if text.strip() not in ("P", "PT") else None
    if match is None:
        raise FlyteInvalidInputError(
            f"schedule offset {text!r}: expected an ISO 8601 duration in weeks, days, hours, "
            "minutes or seconds, e.g. PT1H or -P1D"
        )
    parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = dt.timedelta(**parts)
    return -delta if match.group("sign") == "-" else delta


def _standard_cron(expression: str) -> str:
    """Turns a legacy AWS 6-field expression into standard cron; 5-field ones pass unchanged."""
    fields = expression.split()
    if len(fields) != 6:
        return expression
    minute, hour, day_of_month, month, day_of_week, year = fields
    if year != "*":
        raise FlyteInvalidInputError(
            f"cron expression {expression!r}: a year other than * is not supported"
        )
    day_of_week = re.sub(r"(?<![/\d])\d+", lambda m: str(int(m.group()) - 1), day_of_week)
    standard = [minute, hour, day_of_month, month, day_of_week]
    return " ".join("*" if field == "?" else field for field in standard)


def same_cron(first: str, second: str) -> bool:
    """True when two cron expressions name the same times, in the same time zone.

    Both are expanded field by field with croniter first, so whitespace, ``@daily``-style
    aliases, month and weekday names, ranges and steps (``*/15`` and ``0,15,30,45``) and ``7``
    for Sunday do not matter; a legacy AWS 6-field expression is read as :func:`cron_ticks`
    reads it. Expressions croniter cannot read are compared as whitespace-normalised text.
    """
    try:
        return _expanded_cron(first) == _expanded_cron(second)
    except ValueError:  # croniter's errors and FlyteInvalidInputError both are
        return first.split() == second.split()


def _expanded_cron(expression: str) -> Any:
    return croniter.expand(_standard_cron(" ".join(expression.split())))


def cron_ticks(
    expression: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    offset: dt.timedelta = dt.timedelta(0),
    max_ticks: int = DEFAULT_MAX_TICKS,
) -> list[dt.datetime]:
    """Returns the cron ticks (plus ``offset``) with ``start <= tick <= end``, in UTC.

    Raises:
        FlyteInvalidInputError: for an invalid expression, a reversed window, or more than
            ``max_ticks`` ticks.
    """
    start, end = _window(start, end)
    expression = _standard_cron(expression.strip())
    if not croniter.is_valid(expression):
        raise FlyteInvalidInputError(
            f"cron expression {expression!r}: expected standard 5-field cron, e.g. '0 0 * * *'"
        )
    iterator = croniter(expression, start - offset - dt.timedelta(seconds=1))
    ticks: list[dt.datetime] = []
    while True:
        tick = iterator.get_next(dt.datetime).astimezone(_UTC) + offset
        if tick > end:
            return ticks
        if tick >= start:
            ticks.append(tick)
            _check_count(ticks, max_ticks)


def fixed_rate_ticks(
    every: dt.timedelta,
    start: dt.datetime,
    end: dt.datetime,
    *,
    anchor: dt.datetime | None = None,
    max_ticks: int = DEFAULT_MAX_TICKS,
) -> list[dt.datetime]:
    """Returns ``anchor + k * every`` with ``start <= tick <= end``; ``anchor`` defaults to start.

    Raises:
        FlyteInvalidInputError: for a non-positive rate, a reversed window, or too many ticks.
    """
    start, end = _window(start, end)
    if every <= dt.timedelta(0):
        raise FlyteInvalidInputError(f"fixed rate {every}: expected a positive interval")
    origin = start if anchor is None else _utc(anchor, "anchor")
    steps = -((origin - start) // every)
    tick = origin + steps * every
    ticks: list[dt.datetime] = []
    while tick <= end:
        ticks.append(tick)
        _check_count(ticks, max_ticks)
        tick += every
    return ticks


def _check_count(ticks: Sequence[dt.datetime], max_ticks: int) -> None:
    """Refuses windows with more ticks than one generated workflow should hold."""
    if len(ticks) > max_ticks:
        raise FlyteInvalidInputError(
            f"the backfill window holds more than {max_ticks} schedule ticks; one workflow node "
            f"is generated per tick, so split the window into backfills of at most {max_ticks} "
            "ticks each"
        )


def tick_node_id(index: int) -> str:
    """The id of the backfill workflow's node that runs tick ``index`` (0 for the first) as a
    child execution: ``n0``, ``n1``..., as flytekit's backfill names them."""
    return f"n{index}"


def schedule_ticks(
    schedule: schedule_pb2.Schedule,
    start: dt.datetime,
    end: dt.datetime,
    *,
    anchor: dt.datetime | None = None,
    max_ticks: int = DEFAULT_MAX_TICKS,
) -> list[dt.datetime]:
    """Returns the ticks of a launch plan's ``admin.Schedule`` in the inclusive window, in UTC.

    Raises:
        FlyteInvalidInputError: for a schedule with no cron expression or rate, an invalid one,
            a reversed window, or too many ticks. An empty result is returned as an empty list.
    """
    kind = schedule.WhichOneof("ScheduleExpression")
    if kind == "cron_schedule":
        offset = schedule.cron_schedule.offset
        return cron_ticks(
            schedule.cron_schedule.schedule,
            start,
            end,
            offset=parse_iso_duration(offset) if offset else dt.timedelta(0),
            max_ticks=max_ticks,
        )
    if kind == "cron_expression":
        return cron_ticks(schedule.cron_expression, start, end, max_ticks=max_ticks)
    if kind == "rate":
        if schedule.rate.value <= 0 or schedule.rate.unit not in _RATE_UNITS:
            raise FlyteInvalidInputError(
                f"fixed rate {schedule.rate.value} {schedule.rate.unit}: expected a positive "
                "number of MINUTE, HOUR or DAY"
            )
        every = schedule.rate.value * _RATE_UNITS[schedule.rate.unit]
        return fixed_rate_ticks(every, start, end, anchor=anchor, max_ticks=max_ticks)
    raise FlyteInvalidInputError("the schedule has neither a cron expression nor a fixed rate")


def expected_inputs(launch_plan: launch_plan_pb2.LaunchPlan) -> interface_pb2.ParameterMap:
    """The inputs a launch plan still takes: its closure's, else its spec's default inputs."""
    if len(launch_plan.closure.expected_inputs.parameters) > 0:
        return launch_plan.closure.expected_inputs
    return launch_plan.spec.default_inputs


def kickoff_input(launch_plan: launch_plan_pb2.LaunchPlan) -> str | None:
    """Returns the input that receives each tick's time (the schedule's
    ``kickoff_time_input_arg``), or None when the schedule names none.

    Raises:
        FlyteInvalidInputError: if the named input is not an input of the launch plan, is a
            fixed input, or is not a datetime.
    """
    name = launch_plan.spec.entity_metadata.schedule.kickoff_time_input_arg
    if not name:
        return None
    subject = _subject(launch_plan.id)
    if name in launch_plan.spec.fixed_inputs.literals:
        raise FlyteInvalidInputError(
            f"the schedule's kickoff input {name!r} is a fixed input of the launch plan",
            subject=subject,
        )
    parameters = expected_inputs(launch_plan).parameters
    if name not in parameters:
        raise FlyteInvalidInputError(
            f"the schedule's kickoff input {name!r} is not an input of the launch plan; its "
            f"inputs are {', '.join(sorted(parameters)) or '(none)'}",
            subject=subject,
        )
    try:
        to_literal(dt.datetime(2000, 1, 1, tzinfo=_UTC), parameters[name].var.type)
    except FlyteInvalidInputError as exc:
        raise FlyteInvalidInputError(
            f"the schedule's kickoff input {name!r} does not take a datetime: {exc.message}",
            subject=subject,
        ) from exc
    return name


def _subject(identifier: identifier_pb2.Identifier) -> str:
    """``project/domain/name:version`` for error messages."""
    text = f"{identifier.project}/{identifier.domain}/{identifier.name}"
    return f"{text}:{identifier.version}" if identifier.version else text


@dataclasses.dataclass(frozen=True)
class BackfillPlan:
    """What a backfill registers and runs.

    Attributes:
        ticks: The scheduled times, in UTC, one per generated node.
        launch_plan_id: The (versioned) launch plan being backfilled.
        workflow: The generated ``core.WorkflowTemplate``: one launch-plan node per tick.
        launch_plan_spec: Spec of the generated workflow's default launch plan.
        version: Version of the generated workflow and launch plan; it changes with every
            setting, so re-planning with other settings never collides with an earlier one.
    """

    ticks: tuple[dt.datetime, ...]
    launch_plan_id: identifier_pb2.Identifier
    workflow: core_workflow_pb2.WorkflowTemplate
    launch_plan_spec: launch_plan_pb2.LaunchPlanSpec
    version: str

    @property
    def workflow_id(self) -> identifier_pb2.Identifier:
        """Identifier of the generated workflow."""
        return self.workflow.id

    @property
    def backfill_launch_plan_id(self) -> identifier_pb2.Identifier:
        """Identifier of the generated workflow's launch plan (same name and version)."""
        workflow_id = self.workflow.id
        return identifier_pb2.Identifier(
            resource_type=identifier_pb2.LAUNCH_PLAN,
            project=workflow_id.project,
            domain=workflow_id.domain,
            name=workflow_id.name,
            version=workflow_id.version,
            org=workflow_id.org,
        )

    def workflow_create_request(self) -> workflow_pb2.WorkflowCreateRequest:
        """The ``CreateWorkflow`` request that registers the generated workflow."""
        return workflow_pb2.WorkflowCreateRequest(
            id=self.workflow_id, spec=workflow_pb2.WorkflowSpec(template=self.workflow)
        )

    def launch_plan_create_request(self) -> launch_plan_pb2.LaunchPlanCreateRequest:
        """The ``CreateLaunchPlan`` request that registers its default launch plan."""
        return launch_plan_pb2.LaunchPlanCreateRequest(
            id=self.backfill_launch_plan_id, spec=self.launch_plan_spec
        )


@dataclasses.dataclass(frozen=True)
class BackfillResult:
    """What ``launch_backfill`` did.

    Attributes:
        plan: The scheduled times (UTC) that the backfill runs, one per generated node.
        execution: The backfill's execution, or None on a dry run.
        version: Version of the generated workflow and launch plan.
        backfill_plan: The full plan (generated workflow template and launch plan spec).
    """

    plan: tuple[dt.datetime, ...]
    execution: Any = None
    version: str = ""
    backfill_plan: BackfillPlan | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_plan(cls, backfill_plan: BackfillPlan, execution: Any = None) -> BackfillResult:
        """The result of running (or, with no execution, dry-running) ``backfill_plan``."""
        return cls(
            plan=backfill_plan.ticks,
            execution=execution,
            version=backfill_plan.version,
            backfill_plan=backfill_plan,
        )


def backfill_version(settings: dict[str, Any]) -> str:
    """A short version string derived from every backfill setting (``bf-`` + 20 hex digits)."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return "bf-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def plan_backfill(
    launch_plan: launch_plan_pb2.LaunchPlan,
    start: dt.datetime,
    end: dt.datetime,
    *,
    parallel: bool = False,
    failure_policy: FailurePolicy = "fail_fast",
    project: str | None = None,
    domain: str | None = None,
    version: str | None = None,
    node_retries: int = 0,
    node_timeout: dt.timedelta | None = None,
    max_parallelism: int | None = None,
    anchor: dt.datetime | None = None,
    max_ticks: int = DEFAULT_MAX_TICKS,
    inputs: Mapping[str, literals_pb2.Literal] | None = None,
) -> BackfillPlan:
    """Plans a backfill of a scheduled launch plan over the inclusive window [start, end].

    Args:
        launch_plan: The fetched ``admin.LaunchPlan``, with its version.
        start: First time of the window (included when it is a tick).
        end: Last time of the window (included when it is a tick).
        parallel: Launch every tick at once instead of one after the other.
        failure_policy: ``"fail_fast"`` stops at the first failed tick; ``"continue"`` lets every
            runnable tick finish before the backfill fails.
        project: Project of the generated workflow; defaults to the launch plan's.
        domain: Domain of the generated workflow; defaults to the launch plan's.
        version: Version of the generated entities; defaults to a hash of every setting.
        node_retries: Retries of each generated node.
        node_timeout: Timeout of each generated node.
        max_parallelism: Max parallelism of the generated launch plan (parallel mode).
        anchor: First tick of a fixed-rate schedule (default: ``start``).
        max_ticks: Most ticks allowed in one backfill.
        inputs: Other inputs of the launch plan, as converted literals (the clients convert
            Python values), bound on every tick's node; the rest keep the launch plan's
            defaults. They are part of the version. The kickoff-time input cannot be among
            them: each tick sets it.

    Returns:
        The plan: ticks, generated workflow template, launch plan spec and version.

    Raises:
        FlyteInvalidInputError: if the launch plan has no schedule, no tick falls in the window
            (``FlyteNoScheduleTickError``), the kickoff input is wrong or given in ``inputs``,
            an input is unknown or fixed, another required input has neither a default nor a
            value in ``inputs``, or a setting is invalid.
    """
    subject = _subject(launch_plan.id)
    if failure_policy not in _FAILURE_POLICIES:
        raise FlyteInvalidInputError(
            f"failure policy {failure_policy!r}: expected one of {', '.join(_FAILURE_POLICIES)}"
        )
    require_bool("parallel", parallel)
    require_int("node_retries", node_retries, least=0)
    require_int("max_ticks", max_ticks, least=1)
    if max_parallelism is not None:
        require_int("max_parallelism", max_parallelism, least=0)
    if node_timeout is not None and (
        not isinstance(node_timeout, dt.timedelta) or node_timeout <= dt.timedelta(0)
    ):
        raise FlyteInvalidInputError(
            f"node_timeout must be a positive datetime.timedelta or None, got {node_timeout!r}"
        )
    if not launch_plan.spec.entity_metadata.HasField("schedule"):
        raise FlyteInvalidInputError(
            "only launch plans with a schedule can be backfilled", subject=subject
        )
    schedule = launch_plan.spec.entity_metadata.schedule
    kickoff = kickoff_input(launch_plan)
    given = _checked_inputs(launch_plan, kickoff, inputs, subject)
    _check_other_inputs(launch_plan, kickoff, given, subject)
    ticks = schedule_ticks(schedule, start, end, anchor=anchor, max_ticks=max_ticks)
    if not ticks:
        window_start, window_end = _window(start, end)
        raise FlyteNoScheduleTickError(
            f"no schedule tick falls in the window {window_start.isoformat()} .. "
            f"{window_end.isoformat()} (both ends included)",
            subject=subject,
        )

    project = project or launch_plan.id.project
    domain = domain or launch_plan.id.domain
    settings = {
        "launch_plan": _subject(launch_plan.id),
        "schedule": schedule.SerializeToString(deterministic=True).hex(),
        "ticks": [tick.isoformat() for tick in ticks],
        "parallel": parallel,
        "failure_policy": failure_policy,
        "project": project,
        "domain": domain,
        "node_retries": node_retries,
        "node_timeout": node_timeout.total_seconds() if node_timeout is not None else None,
        "max_parallelism": max_parallelism,
    }
    if given:
        # Only when given, so that the versions of backfills without inputs stay as they were.
        settings["inputs"] = {
            name: literal.SerializeToString(deterministic=True).hex()
            for name, literal in sorted(given.items())
        }
    version = version or backfill_version(settings)
    workflow_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.WORKFLOW,
        project=project,
        domain=domain,
        name=f"backfill-{launch_plan.id.name}",
        version=version,
        org=launch_plan.id.org,
    )
    parameters = expected_inputs(launch_plan).parameters
    nodes = []
    for index, tick in enumerate(ticks):
        bindings = []
        if kickoff is not None:
            value = to_literal(tick, parameters[kickoff].var.type)
            bindings.append(literals_pb2.Binding(var=kickoff, binding=_binding_data(value)))
        for input_name, literal in sorted(given.items()):
            bindings.append(literals_pb2.Binding(var=input_name, binding=_binding_data(literal)))
        metadata = core_workflow_pb2.NodeMetadata(
            name=f"b-{tick.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            retries=literals_pb2.RetryStrategy(retries=node_retries),
        )
        if node_timeout is not None:
            metadata.timeout.CopyFrom(
                duration_pb2.Duration(seconds=int(node_timeout.total_seconds()))
            )
        nodes.append(
            core_workflow_pb2.Node(
                id=tick_node_id(index),
                metadata=metadata,
                inputs=bindings,
                upstream_node_ids=[] if parallel or index == 0 else [tick_node_id(index - 1)],
                workflow_node=core_workflow_pb2.WorkflowNode(launchplan_ref=launch_plan.id),
            )
        )
    template = core_workflow_pb2.WorkflowTemplate(
        id=workflow_id,
        metadata=core_workflow_pb2.WorkflowMetadata(on_failure=_FAILURE_POLICIES[failure_policy]),
        interface=interface_pb2.TypedInterface(
            inputs=interface_pb2.VariableMap(), outputs=interface_pb2.VariableMap()
        ),
        nodes=nodes,
    )
    spec = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=workflow_id,
        entity_metadata=launch_plan_pb2.LaunchPlanMetadata(),
        default_inputs=interface_pb2.ParameterMap(),
        fixed_inputs=literals_pb2.LiteralMap(),
    )
    if max_parallelism is not None:
        spec.max_parallelism = max_parallelism
    return BackfillPlan(
        ticks=tuple(ticks),
        launch_plan_id=launch_plan.id,
        workflow=template,
        launch_plan_spec=spec,
        version=version,
    )


def refuse_kickoff_input(kickoff: str | None, names: Iterable[str], subject: str) -> None:
    """Raises FlyteInvalidInputError when the kickoff-time input is among a backfill's inputs:
    each tick sets it, and a value given for the whole backfill would silently lose."""
    if kickoff is not None and kickoff in set(names):
        raise FlyteInvalidInputError(
            f"input {kickoff!r} is the schedule's kickoff-time input: the backfill sets it to "
            "each tick's time, so it cannot be given as an input",
            subject=subject,
        )


def _checked_inputs(
    launch_plan: launch_plan_pb2.LaunchPlan,
    kickoff: str | None,
    inputs: Mapping[str, literals_pb2.Literal] | None,
    subject: str,
) -> dict[str, literals_pb2.Literal]:
    """The backfill's own inputs, refused when one is the kickoff input, unknown or fixed."""
    given = dict(inputs or {})
    refuse_kickoff_input(kickoff, given, subject)
    fixed = sorted(set(given) & set(launch_plan.spec.fixed_inputs.literals))
    if fixed:
        raise FlyteInvalidInputError(
            f"fixed inputs of the launch plan cannot be overridden: {', '.join(fixed)}",
            subject=subject,
        )
    parameters = expected_inputs(launch_plan).parameters
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        raise FlyteInvalidInputError(
            f"unknown inputs {', '.join(unknown)} (expected: "
            f"{', '.join(sorted(parameters)) or '(none)'})",
            subject=subject,
        )
    for name, literal in given.items():
        if not isinstance(literal, literals_pb2.Literal):
            raise FlyteInvalidInputError(
                f"input {name!r}: expected a flyteidl Literal (the clients' launch_backfill "
                f"converts Python values), got {type(literal).__name__}",
                subject=subject,
            )
    return given


def _check_other_inputs(
    launch_plan: launch_plan_pb2.LaunchPlan,
    kickoff: str | None,
    given: Mapping[str, literals_pb2.Literal],
    subject: str,
) -> None:
    """Refuses launch plans with a required input (other than the kickoff one) that has neither
    a default nor a value given to the backfill."""
    missing = sorted(
        name
        for name, parameter in expected_inputs(launch_plan).parameters.items()
        if name != kickoff
        and name not in given
        and parameter.required
        and not parameter.HasField("default")
    )
    if missing:
        raise FlyteInvalidInputError(
            f"the launch plan has required inputs without defaults ({', '.join(missing)}); a "
            "backfill sets the kickoff time and the inputs it is given, so give them as inputs "
            "of the backfill or defaults in the launch plan",
            subject=subject,
        )


def _binding_data(literal: literals_pb2.Literal) -> literals_pb2.BindingData:
    """A constant binding that carries ``literal``: a scalar (a union keeps its variant type),
    or a list or map of them, item by item."""
    kind = literal.WhichOneof("value")
    if kind == "collection":
        return literals_pb2.BindingData(
            collection=literals_pb2.BindingDataCollection(
                bindings=[_binding_data(item) for item in literal.collection.literals]
            )
        )
    if kind == "map":
        return literals_pb2.BindingData(
            map=literals_pb2.BindingDataMap(
                bindings={key: _binding_data(item) for key, item in literal.map.literals.items()}
            )
        )
    if kind == "offloaded_metadata":
        return literals_pb2.BindingData(offloaded_metadata=literal.offloaded_metadata)
    return literals_pb2.BindingData(scalar=literal.scalar)
