"""A sensor that reports executions of launch plans started outside Dagster."""

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from dagster_resources.resource import FlyteResource
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
    output_props,
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


@dataclass
class FlyteSensorCursor:
    """Where the sensor stands: the newest update time seen and what it reported near it.

    Attributes:
        newest: The latest ``updated_at`` of an execution handled so far.
        recent: Execution ids handled within the overlap before ``newest``, with their update
            times (ISO 8601), so the overlap is never reported twice.
    """

    newest: dt.datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The cursor as the text Dagster stores."""
        return json.dumps(
            {"newest": self.newest.isoformat() if self.newest else None, "recent": self.recent},
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
        except (ValueError, KeyError, TypeError):
            logger.warning("Unreadable Flyte sensor cursor %r; starting over", text[:200])
            return None
        return cls(newest=newest, recent=recent)

    def query_start(self, overlap: dt.timedelta) -> dt.datetime | None:
        """The update time to list from: ``overlap`` before the newest one handled."""
        return self.newest - overlap if self.newest else None

    def is_new(self, execution_id: str) -> bool:
        """Whether the execution was not handled within the overlap yet."""
        return execution_id not in self.recent

    def mark(self, execution_id: str, updated_at: dt.datetime, overlap: dt.timedelta) -> None:
        """Records an execution as handled and forgets what fell out of the overlap."""
        self.recent[execution_id] = updated_at.isoformat()
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
    overlap: dt.timedelta = DEFAULT_OVERLAP,
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

    Args:
        flyte: The resource to list executions through.
        launch_plans: The launch plans to watch (same props as the asset definitions).
        translator: Must be the one the assets use, so the keys match.
        partitions_def: The assets' time partitions (one for all, or by launch plan name): a
            materialization is then reported for the partition holding the execution's
            kickoff time.
        mode: ``"materializations"`` or ``"run_requests"``.
        target: What a run request runs (a job, or assets); required for ``"run_requests"``.
        name: The sensor's name; derived from the launch plans when empty.
        minimum_interval_seconds: Seconds between two ticks.
        tick_budget_seconds: Time one tick may spend before it stops and saves its cursor.
        overlap: See :data:`DEFAULT_OVERLAP`.
        default_status: Whether the sensor starts running.
    """
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
        for execution in _succeeded_since(client, flyte, launch_plans, since):
            execution_id = str(execution.id)
            if not cursor.is_new(execution_id):
                continue
            if not first_tick and not _launched_by_dagster(client, execution, parents):
                if mode == "materializations":
                    events.extend(
                        _materializations(
                            client, execution, keys_by_launch_plan, launch_plans, partitions
                        )
                    )
                else:
                    run_requests.append(_run_request(execution))
            cursor.mark(execution_id, execution.updated_at, overlap)
            if not first_tick and time.monotonic() > deadline:
                context.log.info("Tick budget spent; the next tick carries on from here")
                break
        if first_tick:
            # Everything updated up to now was seen: the next tick starts from here.
            cursor.newest = max(cursor.newest or tick_time, tick_time)

        return dg.SensorResult(
            asset_events=events, run_requests=run_requests, cursor=cursor.to_json()
        )

    return _sensor


def _succeeded_since(
    client: "FlyteClient",
    flyte: FlyteResource,
    launch_plans: Sequence[FlyteLaunchPlanProps],
    since: dt.datetime | None,
) -> Iterator["Execution"]:
    """SUCCEEDED executions of the launch plans updated at ``since`` or later, oldest first."""
    scopes: dict[tuple[str | None, str | None], list[str]] = {}
    for props in launch_plans:
        scope = (props.project or flyte.default_project, props.domain or flyte.default_domain)
        scopes.setdefault(scope, []).append(props.name)
    found: list[Execution] = []
    for (project, domain), names in scopes.items():
        filters = Filter.value_in("launch_plan.name", sorted(set(names))) & Filter.eq(
            "phase", "SUCCEEDED"
        )
        if since is not None:
            filters &= Filter.gte("execution_updated_at", since)
        found.extend(
            client.list_executions(
                project=project,
                domain=domain,
                filters=filters,
                sort=Sort.asc("execution_updated_at"),
            )
        )
    found.sort(key=lambda execution: execution.updated_at)
    return iter(found)


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
    client: "FlyteClient",
    execution: "Execution",
    keys_by_launch_plan: Mapping[str, Sequence[dg.AssetKey]],
    launch_plans: Sequence[FlyteLaunchPlanProps],
    partitions_defs: Mapping[str, dg.PartitionsDefinition],
) -> list[dg.AssetMaterialization]:
    """One materialization per asset of the execution's launch plan."""
    launch_plan_name = execution.launch_plan.name
    props = next(p for p in launch_plans if p.name == launch_plan_name)
    outputs = client.fetch_outputs(execution)
    metadata = execution_metadata(client, execution)
    partition = _partition_of(client, execution, props, partitions_defs.get(props.name))
    events = []
    for item, key in zip(output_props(props), keys_by_launch_plan[launch_plan_name], strict=True):
        event_metadata = dict(metadata)
        if item.output_name is not None and item.output_name in outputs:
            event_metadata[PREVIEW_KEY] = output_preview(outputs[item.output_name])
        events.append(
            dg.AssetMaterialization(asset_key=key, metadata=event_metadata, partition=partition)
        )
    return events


def _partition_of(
    client: "FlyteClient",
    execution: "Execution",
    props: FlyteLaunchPlanProps,
    partitions_def: dg.PartitionsDefinition | None,
) -> str | None:
    """The time partition holding the execution's kickoff time, for partitioned assets."""
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return None
    if not props.kickoff_time_input:
        return None
    kickoff = client.fetch_inputs(execution).get(props.kickoff_time_input)
    if not isinstance(kickoff, dt.datetime):
        return None
    if kickoff.tzinfo is None:
        kickoff = kickoff.replace(tzinfo=dt.timezone.utc)
    return partitions_def.get_partition_key_for_timestamp(kickoff.timestamp())


def _run_request(execution: "Execution") -> dg.RunRequest:
    return dg.RunRequest(
        run_key=str(execution.id),
        tags={EXECUTION_ID_KEY: str(execution.id)},
    )
