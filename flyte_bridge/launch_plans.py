"""Reading a registered launch plan: its interface, schedule and state.

A small module of its own until :class:`~flyte_bridge.client.FlyteClient` grows a
``fetch_launch_plan`` method (requested in the adapters' notes); the Dagster translator reads
launch plans' outputs and schedules through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flyteidl.admin import common_pb2, launch_plan_pb2

from flyte_bridge._ops import launch_target_op
from flyte_bridge._requests import ADMIN
from flyte_bridge._runtime import Call, Op

if TYPE_CHECKING:
    from flyte_bridge.client import FlyteClient


def fetch_launch_plan_op(
    project: str, domain: str, name: str, version: str | None
) -> Op[launch_plan_pb2.LaunchPlan]:
    """The launch plan: the given version, else the active one, else the newest."""
    identifier, _, _ = yield from launch_target_op("LAUNCH_PLAN", project, domain, name, version)
    launch_plan: Any = yield Call(
        ADMIN, "GetLaunchPlan", common_pb2.ObjectGetRequest(id=identifier)
    )
    return launch_plan


def fetch_launch_plan(
    client: FlyteClient,
    name: str,
    *,
    version: str | None = None,
    project: str | None = None,
    domain: str | None = None,
) -> launch_plan_pb2.LaunchPlan:
    """Fetches a launch plan (``admin.LaunchPlan`` proto) with a blocking client.

    Args:
        client: The client to call through.
        name: The launch plan's name.
        version: A version; ``None`` means the active version, else the newest.
        project: Its project; the client's default when ``None``.
        domain: Its domain; the client's default when ``None``.

    Raises:
        FlyteNotFoundError: No launch plan of that name (and version) is registered.
    """
    project, domain = client._scope(project, domain)
    return client._run(fetch_launch_plan_op(project, domain, name, version))
