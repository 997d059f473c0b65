"""Dagster integration of flyte-bridge: Flyte launch plans as assets, ops, a sensor, a component.

Every name below is public. The orchestration itself (launching, waiting, terminating, literals)
is done by the core :mod:`flyte_bridge`; this package translates between it and Dagster.
"""

from dagster_resources.asset_decorator import (
    build_flyte_assets_definition as build_flyte_assets_definition,
)
from dagster_resources.asset_decorator import flyte_assets as flyte_assets
from dagster_resources.components.launch_plans_component import (
    FlyteLaunchPlansComponent as FlyteLaunchPlansComponent,
)
from dagster_resources.launch_plans import (
    load_flyte_launch_plan_props as load_flyte_launch_plan_props,
)
from dagster_resources.ops import approve_flyte_gate as approve_flyte_gate
from dagster_resources.ops import backfill_flyte_launch_plan as backfill_flyte_launch_plan
from dagster_resources.ops import launch_flyte_execution as launch_flyte_execution
from dagster_resources.ops import reject_flyte_gate as reject_flyte_gate
from dagster_resources.ops import set_flyte_input as set_flyte_input
from dagster_resources.ops import terminate_flyte_execution as terminate_flyte_execution
from dagster_resources.ops import wait_for_flyte_execution as wait_for_flyte_execution
from dagster_resources.resource import FlyteResource as FlyteResource
from dagster_resources.run_handler import DAGSTER_RUN_LABEL as DAGSTER_RUN_LABEL
from dagster_resources.sensor_builder import (
    build_flyte_execution_sensor as build_flyte_execution_sensor,
)
from dagster_resources.translator import DagsterFlyteTranslator as DagsterFlyteTranslator
from dagster_resources.translator import FlyteLaunchPlanProps as FlyteLaunchPlanProps
from dagster_resources.translator import FlyteOutputProps as FlyteOutputProps
