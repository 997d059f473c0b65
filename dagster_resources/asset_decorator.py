"""Flyte launch plans as subsettable Dagster multi-assets."""

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from dagster_resources.resource import FlyteResource
from dagster_resources.run_handler import BACKFILL_STRATEGY_KEY
from dagster_resources.translator import (
    DagsterFlyteTranslator,
    FlyteLaunchPlanProps,
    metadata_key,
    output_props,
)
from flyte_bridge.backfill import same_cron

logger = logging.getLogger(__name__)

BackfillStrategy = Literal["flyte_backfill", "per_partition"]

BACKFILL_STRATEGY_REASON_KEY = metadata_key("backfill_strategy_reason")
"""Metadata saying why the default strategy is one launch per partition, when it is not the
Flyte backfill a scheduled launch plan would otherwise get."""


def flyte_assets(
    *,
    launch_plan: FlyteLaunchPlanProps,
    translator: DagsterFlyteTranslator | None = None,
    name: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    backfill_strategy: BackfillStrategy | None = None,
    op_tags: Mapping[str, Any] | None = None,
    pool: str | None = None,
    required_resource_keys: set[str] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """Makes a multi-asset with one asset per output of a launch plan.

    The decorated function runs the launch plan, usually by yielding from
    :meth:`FlyteResource.materialize`. The multi-asset can be subset: a run that selects some
    outputs launches the whole launch plan and reports only the selected ones.

    Args:
        launch_plan: The launch plan, e.g. from :func:`load_flyte_launch_plan_props`.
        translator: Builds each output's ``AssetSpec``; :class:`DagsterFlyteTranslator` by default.
        name: The op's name; the launch plan's name with dots as underscores by default.
        partitions_def: Partitions of every asset. With time-window partitions each run passes
            its partition's start to the launch plan's kickoff-time input.
        backfill_strategy: How a run over a range of partitions is executed:
            ``"flyte_backfill"`` makes the range one Flyte backfill under a single-run backfill
            policy; ``"per_partition"`` launches one execution per partition, one Dagster run
            each (a multi-run backfill policy, so ``dagster asset materialize
            --partition-range``, which runs a range in one run, refuses such assets). A Flyte
            backfill runs the schedule's ticks, so it needs partitions that tick when the
            schedule does: the same cron (compared as :func:`flyte_bridge.backfill.same_cron`
            does, ``@daily`` equal to ``0 0 * * *``) in a time zone at UTC+0, as Flyte
            schedules in UTC. By default it is chosen for a scheduled launch plan with a
            kickoff-time input and such partitions; when the partitions tick at other times the
            default is ``"per_partition"``, logged and written in the assets'
            ``flyte/backfill_strategy_reason`` metadata, and an explicit ``"flyte_backfill"``
            is refused.
        op_tags: Tags of the op.
        pool: Concurrency pool of the op.
        required_resource_keys: Resources the function reads from ``context.resources``.
        retry_policy: Dagster's retries of the step (as ``multi_asset`` takes them). A retry
            launches nothing while the Flyte execution of an earlier try of the step runs: it
            waits for that one, and reports it if it succeeded; it launches a new execution only
            after the earlier one failed or was aborted (see :meth:`FlyteResource.materialize`).
            A re-execution of the run (from failure, or of chosen steps) does the same.

    Examples:
        .. code-block:: python

            import dagster as dg
            from dagster_resources import FlyteLaunchPlanProps, FlyteResource, flyte_assets

            hello = FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "string"})

            @flyte_assets(launch_plan=hello)
            def hello_assets(context: dg.AssetExecutionContext, flyte: FlyteResource):
                yield from flyte.materialize(context, inputs={"name": "Dagster"})
    """
    translator = translator or DagsterFlyteTranslator()
    if _time_partitions_without_kickoff(launch_plan, partitions_def):
        # The body may pass the partition on itself (context.partition_key in inputs).
        logger.warning(
            "Flyte assets of %s have time partitions but the launch plan props name no "
            "kickoff_time_input, so no partition's time reaches Flyte unless the decorated "
            "function passes it in inputs; set kickoff_time_input to the datetime input that "
            "takes the partition's start",
            launch_plan.name,
        )
    strategy, reason = _backfill_strategy(launch_plan, partitions_def, backfill_strategy)
    strategy_metadata: dict[str, Any] = {BACKFILL_STRATEGY_KEY: strategy}
    if reason is not None:
        strategy_metadata[BACKFILL_STRATEGY_REASON_KEY] = reason
    specs = [
        spec.merge_attributes(metadata=strategy_metadata)
        for spec in (translator.get_asset_spec(props) for props in output_props(launch_plan))
    ]
    backfill_policy = None
    if partitions_def is not None:
        backfill_policy = (
            dg.BackfillPolicy.single_run()
            if strategy == "flyte_backfill"
            else dg.BackfillPolicy.multi_run(1)
        )

    return dg.multi_asset(
        name=name or launch_plan.name.replace(".", "_").replace("-", "_"),
        specs=specs,
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        op_tags=op_tags,
        pool=pool,
        required_resource_keys=required_resource_keys,
        retry_policy=retry_policy,
    )


def build_flyte_assets_definition(
    launch_plan: FlyteLaunchPlanProps,
    *,
    inputs: Mapping[str, Any] | None = None,
    inputs_from_text: bool = False,
    resource_key: str = "flyte",
    translator: DagsterFlyteTranslator | None = None,
    name: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    backfill_strategy: BackfillStrategy | None = None,
    op_tags: Mapping[str, Any] | None = None,
    pool: str | None = None,
    retry_policy: dg.RetryPolicy | None = None,
) -> dg.AssetsDefinition:
    """A ready multi-asset that launches ``launch_plan`` with fixed ``inputs``.

    The same as :func:`flyte_assets` (``retry_policy`` included) with a body that calls
    :meth:`FlyteResource.materialize` on the resource bound to ``resource_key``. The ``inputs``
    go to every execution, each run of a Flyte backfill included; with time partitions they
    cannot hold the kickoff-time input, which each partition sets. ``inputs_from_text=True``
    reads their str values as text of the declared types (``"2024-01-01T00:00:00Z"`` for a
    datetime), for values from YAML or config (the component sets it); Python values need not.
    """
    fixed_inputs = dict(inputs or {})
    if _time_partitions_without_kickoff(launch_plan, partitions_def):
        raise dg.DagsterInvalidDefinitionError(
            f"Launch plan {launch_plan.name} has time partitions but no kickoff_time_input, so "
            "every partition would launch the same execution; set kickoff_time_input to the "
            "datetime input that takes the partition's start (in the component's YAML: "
            "kickoff_time_input under the launch plan), or use @flyte_assets and pass the "
            "partition in inputs yourself"
        )
    kickoff = launch_plan.kickoff_time_input
    if (
        kickoff
        and kickoff in fixed_inputs
        and isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    ):
        raise dg.DagsterInvalidDefinitionError(
            f"inputs of launch plan {launch_plan.name} give {kickoff!r}, its kickoff-time "
            "input, which each time partition sets to its start; remove it from the inputs"
        )

    def _materialize(context: dg.AssetExecutionContext):
        flyte = getattr(context.resources, resource_key)
        if not isinstance(flyte, FlyteResource):
            raise dg.DagsterInvariantViolationError(
                f"Resource {resource_key!r} must be a FlyteResource, got {type(flyte).__name__}"
            )
        yield from flyte.materialize(
            context, inputs=fixed_inputs, inputs_from_text=inputs_from_text
        )

    return flyte_assets(
        launch_plan=launch_plan,
        translator=translator,
        name=name,
        partitions_def=partitions_def,
        backfill_strategy=backfill_strategy,
        op_tags=op_tags,
        pool=pool,
        required_resource_keys={resource_key},
        retry_policy=retry_policy,
    )(_materialize)


def _time_partitions_without_kickoff(
    launch_plan: FlyteLaunchPlanProps, partitions_def: dg.PartitionsDefinition | None
) -> bool:
    """Whether time partitions have no kickoff-time input to pass their start through."""
    return (
        isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
        and not launch_plan.kickoff_time_input
    )


def _backfill_strategy(
    launch_plan: FlyteLaunchPlanProps,
    partitions_def: dg.PartitionsDefinition | None,
    requested: BackfillStrategy | None,
) -> tuple[BackfillStrategy, str | None]:
    """The strategy to use, checked against the launch plan and the partitions, and why the
    default is one launch per partition when a scheduled launch plan's ticks do not match the
    partitions (else None)."""
    if requested is None:
        scheduled = launch_plan.cron_schedule and launch_plan.kickoff_time_input
        if not scheduled or not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            return "per_partition", None
        mismatch = _schedule_mismatch(launch_plan, partitions_def)
        if mismatch is None:
            return "flyte_backfill", None
        reason = f"{mismatch}, so a range of partitions is launched once per partition"
        logger.info("Flyte assets of %s: %s", launch_plan.name, reason)
        return "per_partition", reason
    if requested not in ("flyte_backfill", "per_partition"):
        raise dg.DagsterInvalidDefinitionError(
            f"backfill_strategy must be 'flyte_backfill' or 'per_partition', got {requested!r}"
        )
    if requested == "flyte_backfill":
        if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            raise dg.DagsterInvalidDefinitionError(
                "backfill_strategy='flyte_backfill' needs time-window partitions "
                f"(launch plan {launch_plan.name})"
            )
        if not launch_plan.kickoff_time_input:
            raise dg.DagsterInvalidDefinitionError(
                f"backfill_strategy='flyte_backfill' needs the kickoff_time_input of launch plan "
                f"{launch_plan.name}: each tick of a Flyte backfill passes its time through it"
            )
        if not launch_plan.cron_schedule:
            raise dg.DagsterInvalidDefinitionError(
                f"backfill_strategy='flyte_backfill' needs a cron schedule on launch plan "
                f"{launch_plan.name}: a Flyte backfill runs the schedule's ticks"
            )
        mismatch = _schedule_mismatch(launch_plan, partitions_def)
        if mismatch is not None:
            raise dg.DagsterInvalidDefinitionError(
                f"backfill_strategy='flyte_backfill' cannot be used: {mismatch}, so a Flyte "
                "backfill would run other times than the partitions. Align them, or use "
                "backfill_strategy='per_partition'."
            )
    return requested, None


def _schedule_mismatch(
    launch_plan: FlyteLaunchPlanProps, partitions_def: dg.TimeWindowPartitionsDefinition
) -> str | None:
    """Why the partitions tick at other times than the launch plan's schedule, or None."""
    partitions_cron = partitions_def.cron_schedule
    schedule_cron = launch_plan.cron_schedule or ""
    if not same_cron(partitions_cron, schedule_cron):
        return (
            f"the partitions tick at {partitions_cron!r} but launch plan {launch_plan.name} is "
            f"scheduled at {schedule_cron!r}"
        )
    if not _is_utc(partitions_def.timezone):
        return (
            f"the partitions tick at {partitions_cron!r} in time zone "
            f"{partitions_def.timezone!r} but Flyte runs the schedule {schedule_cron!r} of "
            f"launch plan {launch_plan.name} in UTC"
        )
    return None


def _is_utc(timezone: str | None) -> bool:
    """True for a time zone at UTC+0 in winter and in summer (UTC, Etc/UTC, GMT...)."""
    if not timezone:
        return True
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return all(zone.utcoffset(dt.datetime(2024, month, 1)) == dt.timedelta(0) for month in (1, 7))
