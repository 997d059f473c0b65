"""A sensor that reports executions of launch plans started outside Dagster."""

import datetime as dt
import heapq
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from dagster_resources.resource import FlyteResource, resolved_resource
from dagster_resources.run_handler import (
    DAGSTER_RUN_LABEL,
    EXECUTION_ID_KEY,
    PREVIEW_KEY,
    execution_metadata,
    output_preview,
)
from dagster_resources.translator import (
    DagsterFlyteTranslator,
    FlyteLaunchPlanProps,
    check_launch_plan_props,
    metadata_key,
    output_props,
)
from flyte_bridge._runtime import seconds_of
from flyte_bridge.errors import (
    FlyteBridgeError,
    FlyteInvalidInputError,
    FlyteTimeoutError,
    FlyteTransientError,
    is_permanent,
)
from flyte_bridge.filters import Filter, Sort

if TYPE_CHECKING:
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.models import Execution

logger = logging.getLogger(__name__)

SensorMode = Literal["materializations", "run_requests"]

DEFAULT_OVERLAP = dt.timedelta(seconds=120)
"""How far before the newest reported update each tick looks again.

Update times come from the engine's events, which can be recorded a little after they happened;
looking back this far catches an execution recorded late, and the cursor's list of recently
reported executions keeps it from being reported twice.
"""

TICKS_PER_EXECUTION = 3
"""Ticks that may fail to read one execution (for any reason a retry may cure: see
:func:`flyte_bridge.errors.is_permanent`) before it is reported without what could not be read,
or skipped. A tick that meets such a failure stops there, so the next tick starts again from
that execution."""

OUTPUTS_ERROR_KEY = metadata_key("outputs_error")


@dataclass
class FlyteSensorCursor:
    """Where the sensor stands: the newest update time seen and what it reported near it.

    Attributes:
        newest: The latest ``updated_at`` of an execution handled so far.
        recent: Execution ids handled within the overlap before ``newest``, with their update
            times (ISO 8601), so the overlap is never reported twice.
        failed: Execution ids not handled yet, with the number of ticks that failed to read
            them for a transient reason.
    """

    newest: dt.datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        """The cursor as the text Dagster stores."""
        return json.dumps(
            {
                "newest": self.newest.isoformat() if self.newest else None,
                "recent": self.recent,
                "failed": self.failed,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> "FlyteSensorCursor | None":
        """The cursor in ``text``; ``None`` when there is none or it cannot be read."""
        if not text:
            return None
        try:
            data = json.loads(text)
            newest = dt.datetime.fromisoformat(data["newest"]) if data["newest"] else None
            recent = {str(k): str(v) for k, v in dict(data["recent"]).items()}
            failed = {str(k): int(v) for k, v in dict(data.get("failed") or {}).items()}
        except (ValueError, KeyError, TypeError):
            logger.warning("Unreadable Flyte sensor cursor %r; starting over", text[:200])
            return None
        return cls(newest=newest, recent=recent, failed=failed)

    def query_start(self, overlap: dt.timedelta) -> dt.datetime | None:
        """The update time to list from: ``overlap`` before the newest one handled."""
        return self.newest - overlap if self.newest else None

    def is_new(self, execution_id: str) -> bool:
        """Whether the execution was not handled within the overlap yet."""
        return execution_id not in self.recent

    def mark(self, execution_id: str, updated_at: dt.datetime, overlap: dt.timedelta) -> None:
        """Records an execution as handled and forgets what fell out of the overlap."""
        self.recent[execution_id] = updated_at.isoformat()
        self.failed.pop(execution_id, None)
        if self.newest is None or updated_at > self.newest:
            self.newest = updated_at
        horizon = self.newest - overlap
        self.recent = {
            key: value
            for key, value in self.recent.items()
            if dt.datetime.fromisoformat(value) >= horizon
        }


def build_flyte_execution_sensor(
    *,
    flyte: FlyteResource,
    launch_plans: Sequence[FlyteLaunchPlanProps],
    translator: DagsterFlyteTranslator | None = None,
    partitions_def: dg.PartitionsDefinition
    | Mapping[str, dg.PartitionsDefinition | None]
    | None = None,
    mode: SensorMode = "materializations",
    target: Any = None,
    name: str | None = None,
    minimum_interval_seconds: int = 30,
    tick_budget_seconds: float = 40.0,
    overlap: dt.timedelta | float = DEFAULT_OVERLAP,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A sensor that turns executions started outside Dagster into Dagster events.

    Each tick lists the SUCCEEDED executions of the launch plans updated since the cursor,
    oldest update first, and either reports an ``AssetMaterialization`` for each of their
    assets (``mode="materializations"``) or requests a run of ``target`` keyed by the execution
    id (``mode="run_requests"``). Executions launched by Dagster carry the
    ``dagster-run-id`` label and are skipped, as are children of such executions (a Dagster
    backfill's runs). The first tick only records where it starts: executions that finished
    before it are not reported. A tick stops after ``tick_budget_seconds`` and the next one
    carries on where it stopped. Update times are the Flyte server's; the ``overlap`` also
    absorbs that much clock difference between it and the Dagster daemon.

    One execution that cannot be read never stops the others from being reported: outputs
    that cannot be read are left out of its materializations (``flyte/outputs_error`` says
    why), and an execution whose labels, parent or kickoff time cannot be read is logged and
    skipped at once when the failure is permanent (not found, bad input). Any other failure
    (server unavailable, a deadline, a server error) stops the tick instead, and the next one
    tries that execution again, :data:`TICKS_PER_EXECUTION` times in all. An
    execution of a partitioned launch plan whose kickoff time falls outside the partitions
    (before their start, or not a partition yet) is logged and skipped.

    Args:
        flyte: The resource to list executions through. Fields given as ``dg.EnvVar`` are read
            from the environment at each tick (Dagster resolves a run's resources, not one a
            sensor holds), and the client built from them is closed at the end of the tick.
        launch_plans: The launch plans to watch (same props as the asset definitions).
        translator: Must be the one the assets use, so the keys match.
        partitions_def: The assets' time partitions (one for all, or by launch plan name): a
            materialization (or run request) is then reported for the partition holding the
            execution's kickoff time, and none for an execution outside the partitions.
            Pass the assets' own, or the events name partitions they lack.
            Only time-window partitions can be found from a kickoff time; others are refused.
        mode: ``"materializations"`` or ``"run_requests"``.
        target: What a run request runs (a job, or assets); required for ``"run_requests"``.
        name: The sensor's name; derived from the launch plans when empty.
        minimum_interval_seconds: Seconds between two ticks.
        tick_budget_seconds: Time one tick may spend before it stops and saves its cursor.
        overlap: See :data:`DEFAULT_OVERLAP`; a timedelta or a number of seconds, 0 or more.
        default_status: Whether the sensor starts running.
    """
    if not isinstance(flyte, FlyteResource):
        raise dg.DagsterInvalidDefinitionError(
            f"flyte must be a FlyteResource, got {type(flyte).__name__}"
        )
    if isinstance(launch_plans, (str, FlyteLaunchPlanProps)) or not isinstance(
        launch_plans, Sequence
    ):
        raise dg.DagsterInvalidDefinitionError(
            "launch_plans must be a list of FlyteLaunchPlanProps (such as "
            f"[FlyteLaunchPlanProps(name='hello.hello_wf')]), got {launch_plans!r}"
        )
    for props in launch_plans:
        check_launch_plan_props(props)
    overlap = _overlap(overlap)
    tick_budget_seconds = _positive_seconds("tick_budget_seconds", tick_budget_seconds)
    if (
        isinstance(minimum_interval_seconds, bool)
        or not isinstance(minimum_interval_seconds, int)
        or minimum_interval_seconds < 0
    ):
        raise dg.DagsterInvalidDefinitionError(
            "minimum_interval_seconds must be a whole number of seconds, 0 or more, got "
            f"{minimum_interval_seconds!r}"
        )
    if mode not in ("materializations", "run_requests"):
        raise dg.DagsterInvalidDefinitionError(
            f"mode must be 'materializations' or 'run_requests', got {mode!r}"
        )
    if mode == "run_requests" and target is None:
        raise dg.DagsterInvalidDefinitionError("mode='run_requests' needs a target to run")
    if not launch_plans:
        raise dg.DagsterInvalidDefinitionError("build_flyte_execution_sensor needs launch plans")
    translator = translator or DagsterFlyteTranslator()
    if isinstance(partitions_def, Mapping):
        partitions = {name: part for name, part in partitions_def.items() if part is not None}
    elif partitions_def is not None:
        partitions = {props.name: partitions_def for props in launch_plans}
    else:
        partitions = {}
    for launch_plan_name, part in partitions.items():
        if not isinstance(part, dg.TimeWindowPartitionsDefinition):
            raise dg.DagsterInvalidDefinitionError(
                f"The sensor finds an execution's partition from its kickoff time, which needs "
                f"time-window partitions; launch plan {launch_plan_name} has "
                f"{type(part).__name__}"
            )
    kickoff_inputs = {props.name: props.kickoff_time_input for props in launch_plans}
    for launch_plan_name in partitions:
        if launch_plan_name not in kickoff_inputs:
            raise dg.DagsterInvalidDefinitionError(
                f"partitions_def names launch plan {launch_plan_name!r}, which is not one of the "
                f"sensor's launch_plans ({', '.join(sorted(kickoff_inputs))})"
            )
        if not kickoff_inputs[launch_plan_name]:
            raise dg.DagsterInvalidDefinitionError(
                f"Launch plan {launch_plan_name} has partitions in the sensor but its props name "
                "no kickoff_time_input, from which the sensor finds an execution's partition; "
                "set it, or give partitions_def by launch plan name to the partitioned ones only"
            )
    keys_by_launch_plan = {
        props.name: [translator.get_asset_spec(item).key for item in output_props(props)]
        for props in launch_plans
    }
    sensor_name = (
        name
        or "flyte_"
        + "_".join(props.short_name.replace("-", "_") for props in launch_plans)[:100]
        + "__execution_sensor"
    )

    @dg.sensor(
        name=sensor_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        target=target,
        description="Reports executions of Flyte launch plans started outside Dagster.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        with resolved_resource(flyte) as resource:
            return _tick(context, resource)

    def _tick(context: dg.SensorEvaluationContext, flyte: FlyteResource) -> dg.SensorResult:
        client = flyte.get_client()
        cursor = FlyteSensorCursor.from_json(context.cursor)
        first_tick = cursor is None
        cursor = cursor or FlyteSensorCursor()
        since = cursor.query_start(overlap)
        tick_time = dt.datetime.now(dt.timezone.utc)
        if first_tick:
            since = tick_time - overlap

        deadline = time.monotonic() + tick_budget_seconds
        events: list[dg.AssetMaterialization] = []
        run_requests: list[dg.RunRequest] = []
        parents: dict[str, bool] = {}
        seen = own = 0
        for execution in _succeeded_since(client, flyte, launch_plans, since):
            execution_id = str(execution.id)
            if not cursor.is_new(execution_id):
                continue
            seen += 1
            if not first_tick:
                last_try = cursor.failed.get(execution_id, 0) + 1 >= TICKS_PER_EXECUTION
                try:
                    if _launched_by_dagster(client, execution, parents):
                        own += 1
                    elif mode == "materializations":
                        events.extend(
                            _materializations(
                                context.log,
                                client,
                                execution,
                                keys_by_launch_plan,
                                launch_plans,
                                partitions,
                                last_try=last_try,
                            )
                        )
                    else:
                        request = _run_request(
                            context.log, client, execution, launch_plans, partitions
                        )
                        if request is not None:
                            run_requests.append(request)
                except Exception as error:  # noqa: BLE001 - one execution must not wedge the rest
                    if not last_try and not is_permanent(error):
                        cursor.failed[execution_id] = cursor.failed.get(execution_id, 0) + 1
                        context.log.warning(
                            "Could not read Flyte execution %s (%s); the next tick tries again",
                            execution_id,
                            error,
                        )
                        break
                    context.log.warning(
                        "Skipping Flyte execution %s, which could not be read%s: %s",
                        execution_id,
                        "" if is_permanent(error) else f" in {TICKS_PER_EXECUTION} ticks",
                        error,
                        exc_info=not isinstance(error, FlyteBridgeError),
                    )
            cursor.mark(execution_id, execution.updated_at, overlap)
            if not first_tick and time.monotonic() > deadline:
                context.log.info("Tick budget spent; the next tick carries on from here")
                break
        if first_tick:
            # Everything updated up to now was seen: the next tick starts from here.
            cursor.newest = max(cursor.newest or tick_time, tick_time)
            context.log.info(
                "First tick: reporting Flyte executions that succeed from now on; %s that "
                "succeeded in the last %gs are not reported",
                seen,
                overlap.total_seconds(),
            )
        else:
            context.log.info(
                "%s newly succeeded Flyte execution(s): %s %s, %s launched by Dagster itself",
                seen,
                len(events) if mode == "materializations" else len(run_requests),
                "materialization(s)" if mode == "materializations" else "run request(s)",
                own,
            )

        return dg.SensorResult(
            asset_events=events, run_requests=run_requests, cursor=cursor.to_json()
        )

    return _sensor


def _seconds(name: str, value: Any) -> float:
    """``value`` (a number of seconds or a timedelta) in seconds, finite."""
    try:
        seconds = seconds_of(value)
    except FlyteInvalidInputError:
        seconds = None
    if seconds is None or not math.isfinite(seconds):
        raise dg.DagsterInvalidDefinitionError(
            f"{name} must be a number of seconds or a datetime.timedelta, got {value!r}"
        )
    return seconds


def _positive_seconds(name: str, value: Any) -> float:
    seconds = _seconds(name, value)
    if seconds <= 0:
        raise dg.DagsterInvalidDefinitionError(
            f"{name} must be a positive number of seconds, got {value!r}"
        )
    return seconds


def _overlap(value: Any) -> dt.timedelta:
    """The overlap as a timedelta: 0 or more seconds (a negative one would skip every run)."""
    seconds = _seconds("overlap", value)
    if seconds < 0:
        raise dg.DagsterInvalidDefinitionError(
            f"overlap must be 0 or more seconds (how far back each tick looks again), got {value!r}"
        )
    return dt.timedelta(seconds=seconds)


def _succeeded_since(
    client: "FlyteClient",
    flyte: FlyteResource,
    launch_plans: Sequence[FlyteLaunchPlanProps],
    since: dt.datetime | None,
) -> Iterator["Execution"]:
    """SUCCEEDED executions of the launch plans updated at ``since`` or later, oldest first.

    Lazy: each scope's listing fetches its next page only when the tick reaches it, and the
    scopes are merged by update time, so a tick that spends its budget early has listed little
    more than it handled (a large backlog is caught up a budget at a time, not re-listed whole
    by every tick)."""
    scopes: dict[tuple[str | None, str | None], list[str]] = {}
    for props in launch_plans:
        scope = (props.project or flyte.default_project, props.domain or flyte.default_domain)
        scopes.setdefault(scope, []).append(props.name)
    listings = []
    for (project, domain), names in scopes.items():
        filters = Filter.value_in("launch_plan.name", sorted(set(names))) & Filter.eq(
            "phase", "SUCCEEDED"
        )
        if since is not None:
            filters &= Filter.gte("execution_updated_at", since)
        listings.append(
            client.list_executions(
                project=project,
                domain=domain,
                filters=filters,
                sort=Sort.asc("execution_updated_at"),
            )
        )
    return heapq.merge(*listings, key=lambda execution: execution.updated_at)


def _launched_by_dagster(
    client: "FlyteClient", execution: "Execution", parents: dict[str, bool]
) -> bool:
    """Whether Dagster launched the execution or the execution it is a child of."""
    if DAGSTER_RUN_LABEL in execution.labels:
        return True
    parent_node = execution.parent_node_execution
    if parent_node is None:
        return False
    parent_id = str(parent_node.execution_id)
    if parent_id not in parents:
        parent = client.fetch_execution(parent_node.execution_id)
        parents[parent_id] = _launched_by_dagster(client, parent, parents)
    return parents[parent_id]


def _materializations(
    log: Any,
    client: "FlyteClient",
    execution: "Execution",
    keys_by_launch_plan: Mapping[str, Sequence[dg.AssetKey]],
    launch_plans: Sequence[FlyteLaunchPlanProps],
    partitions_defs: Mapping[str, dg.TimeWindowPartitionsDefinition],
    *,
    last_try: bool,
) -> list[dg.AssetMaterialization]:
    """One materialization per asset of the execution's launch plan; none outside the partitions.

    Outputs that cannot be read are left out, with the reason in ``flyte/outputs_error``; a
    transient failure to read them is raised instead unless this is the ``last_try``.
    """
    launch_plan_name = execution.launch_plan.name
    props = next(p for p in launch_plans if p.name == launch_plan_name)
    partition = None
    partitions_def = partitions_defs.get(props.name)
    if partitions_def is not None:
        partition = _partition_of(log, client, execution, props, partitions_def)
        if partition is None:
            return []
    metadata = execution_metadata(client, execution)
    outputs: Mapping[str, Any] = {}
    try:
        outputs = client.fetch_outputs(execution)
    except Exception as error:  # noqa: BLE001 - report the run without what cannot be read
        # Only a failure of the server may pass by the next tick; data that cannot be read or
        # decoded stays so, and the run is reported without it.
        if isinstance(error, (FlyteTransientError, FlyteTimeoutError)) and not last_try:
            raise
        log.warning("Could not read the outputs of Flyte execution %s: %s", execution.id, error)
        metadata[OUTPUTS_ERROR_KEY] = dg.MetadataValue.text(str(error))
    events = []
    for item, key in zip(output_props(props), keys_by_launch_plan[launch_plan_name], strict=True):
        event_metadata = dict(metadata)
        if item.output_name is not None and item.output_name in outputs:
            event_metadata[PREVIEW_KEY] = output_preview(outputs[item.output_name])
        elif item.output_name is not None and OUTPUTS_ERROR_KEY not in metadata:
            log.warning(
                "Flyte execution %s has no output %r (it has %s); check the launch plan's props",
                execution.id,
                item.output_name,
                ", ".join(map(repr, outputs)) or "none",
            )
        events.append(
            dg.AssetMaterialization(asset_key=key, metadata=event_metadata, partition=partition)
        )
    return events


def _partition_of(
    log: Any,
    client: "FlyteClient",
    execution: "Execution",
    props: FlyteLaunchPlanProps,
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> str | None:
    """The partition holding the execution's kickoff time; ``None`` (logged) when there is none.

    An execution skipped because its kickoff time is not a partition yet (in the future) is
    never reported, even once that partition exists: the cursor has moved past it.
    """
    if not props.kickoff_time_input:
        log.warning(
            "Skipping Flyte execution %s: launch plan %s has partitions but no "
            "kickoff_time_input to find the partition from",
            execution.id,
            props.name,
        )
        return None
    kickoff = client.fetch_inputs(execution).get(props.kickoff_time_input)
    if not isinstance(kickoff, dt.datetime):
        log.warning(
            "Skipping Flyte execution %s: its input %s is %r, not a kickoff time",
            execution.id,
            props.kickoff_time_input,
            kickoff,
        )
        return None
    if kickoff.tzinfo is None:
        kickoff = kickoff.replace(tzinfo=dt.timezone.utc)
    key = partitions_def.get_partition_key_for_timestamp(kickoff.timestamp())
    if not partitions_def.has_partition_key(key):
        log.warning(
            "Skipping Flyte execution %s: its kickoff time %s falls in %s, which is not a "
            "partition of its assets",
            execution.id,
            kickoff.isoformat(),
            key,
        )
        return None
    return key


def _run_request(
    log: Any,
    client: "FlyteClient",
    execution: "Execution",
    launch_plans: Sequence[FlyteLaunchPlanProps],
    partitions_defs: Mapping[str, dg.TimeWindowPartitionsDefinition],
) -> dg.RunRequest | None:
    """A run request keyed by the execution id, for the partition of its kickoff time when its
    launch plan has partitions (as a materialization is); ``None`` (logged) when it falls in
    none, as a run of a partitioned target without a partition fails."""
    partition = None
    partitions_def = partitions_defs.get(execution.launch_plan.name)
    if partitions_def is not None:
        props = next(p for p in launch_plans if p.name == execution.launch_plan.name)
        partition = _partition_of(log, client, execution, props, partitions_def)
        if partition is None:
            return None
    return dg.RunRequest(
        run_key=str(execution.id),
        tags={EXECUTION_ID_KEY: str(execution.id)},
        partition_key=partition,
    )
