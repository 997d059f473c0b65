"""Flyte launch plans as subsettable Dagster multi-assets."""

from collections.abc import Callable, Mapping
from typing import Any, Literal

import dagster as dg

from dagster_resources.resource import FlyteResource
from dagster_resources.run_handler import BACKFILL_STRATEGY_KEY
from dagster_resources.translator import (
    DagsterFlyteTranslator,
    FlyteLaunchPlanProps,
    output_props,
)

BackfillStrategy = Literal["flyte_backfill", "per_partition"]


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
            ``"flyte_backfill"`` (the default for a scheduled launch plan) makes the range one Flyte
            backfill under a single-run backfill policy; ``"per_partition"`` launches one
            execution per partition, one Dagster run each.
        op_tags: Tags of the op.
        pool: Concurrency pool of the op.
        required_resource_keys: Resources the function reads from ``context.resources``.

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
    strategy = _backfill_strategy(launch_plan, partitions_def, backfill_strategy)
    specs = [
        spec.merge_attributes(metadata={BACKFILL_STRATEGY_KEY: strategy})
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
    )


def build_flyte_assets_definition(
    launch_plan: FlyteLaunchPlanProps,
    *,
    inputs: Mapping[str, Any] | None = None,
    resource_key: str = "flyte",
    translator: DagsterFlyteTranslator | None = None,
    name: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    backfill_strategy: BackfillStrategy | None = None,
    op_tags: Mapping[str, Any] | None = None,
    pool: str | None = None,
) -> dg.AssetsDefinition:
    """A ready multi-asset that launches ``launch_plan`` with fixed ``inputs``.

    The same as :func:`flyte_assets` with a body that calls :meth:`FlyteResource.materialize`
    on the resource bound to ``resource_key``. The ``inputs`` go to every execution, each run
    of a Flyte backfill included; with time partitions they cannot hold the kickoff-time input,
    which each partition sets.
    """
    fixed_inputs = dict(inputs or {})
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
        yield from flyte.materialize(context, inputs=fixed_inputs)

    return flyte_assets(
        launch_plan=launch_plan,
        translator=translator,
        name=name,
        partitions_def=partitions_def,
        backfill_strategy=backfill_strategy,
        op_tags=op_tags,
        pool=pool,
        required_resource_keys={resource_key},
    )(_materialize)


def _backfill_strategy(
    launch_plan: FlyteLaunchPlanProps,
    partitions_def: dg.PartitionsDefinition | None,
    requested: BackfillStrategy | None,
) -> BackfillStrategy:
    """The strategy to use, checked against the launch plan and the partitions."""
    if requested is None:
        scheduled = launch_plan.cron_schedule and launch_plan.kickoff_time_input
        time_partitioned = isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
        return "flyte_backfill" if scheduled and time_partitioned else "per_partition"
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
        if not launch_plan.cron_schedule:
            raise dg.DagsterInvalidDefinitionError(
                f"backfill_strategy='flyte_backfill' needs a cron schedule on launch plan "
                f"{launch_plan.name}: a Flyte backfill runs the schedule's ticks"
            )
        if partitions_def.cron_schedule.split() != launch_plan.cron_schedule.split():
            raise dg.DagsterInvalidDefinitionError(
                f"The partitions tick at {partitions_def.cron_schedule!r} but launch plan "
                f"{launch_plan.name} is scheduled at {launch_plan.cron_schedule!r}; a Flyte "
                "backfill would run other times than the partitions. Align them, or use "
                "backfill_strategy='per_partition'."
            )
    return requested
