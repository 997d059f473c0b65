"""Reading launch plans from Flyte into :class:`FlyteLaunchPlanProps`."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagster_resources.translator import FlyteLaunchPlanProps
from flyte_bridge.literals import describe_type

if TYPE_CHECKING:
    from dagster_resources.resource import FlyteResource


def launch_plan_props_from_proto(launch_plan: Any) -> FlyteLaunchPlanProps:
    """Props from an ``admin.LaunchPlan`` as GetLaunchPlan / ListLaunchPlans return it."""
    closure = launch_plan.closure
    schedule = launch_plan.spec.entity_metadata.schedule
    cron = schedule.cron_schedule.schedule or schedule.cron_expression or None
    return FlyteLaunchPlanProps(
        name=launch_plan.id.name,
        project=launch_plan.id.project,
        domain=launch_plan.id.domain,
        version=None,
        outputs={
            name: describe_type(variable.type)
            for name, variable in closure.expected_outputs.variables.items()
        },
        inputs={
            name: describe_type(parameter.var.type)
            for name, parameter in closure.expected_inputs.parameters.items()
        },
        description=None,
        kickoff_time_input=schedule.kickoff_time_input_arg or None,
        cron_schedule=cron,
    )


def load_flyte_launch_plan_props(
    flyte: "FlyteResource",
    names: Sequence[str],
    *,
    project: str | None = None,
    domain: str | None = None,
) -> list[FlyteLaunchPlanProps]:
    """Reads launch plans from Flyte, one GetLaunchPlan each, for the asset builders.

    The props keep no version, so the assets launch whatever version is active when they run.
    This calls Flyte when definitions load; write :class:`FlyteLaunchPlanProps` by hand (or in
    the component's YAML) to load definitions without a reachable Flyte.

    Args:
        flyte: The resource to read through (``dg.EnvVar`` fields are read from the
            environment here, as Dagster has not resolved them yet when definitions load).
        names: Launch plan names, e.g. ``["daily_report"]``.
        project: Their project; the resource's default when ``None``.
        domain: Their domain; the resource's default when ``None``.
    """
    from dagster_resources.resource import resolved_resource

    with resolved_resource(flyte) as resource:
        client = resource.get_client()
        return [
            launch_plan_props_from_proto(
                client.fetch_launch_plan(name, project=project, domain=domain)
            )
            for name in names
        ]
