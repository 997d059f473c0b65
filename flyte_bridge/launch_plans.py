"""Reading a registered launch plan: its interface, schedule and state.

:meth:`FlyteClient.fetch_launch_plan <flyte_bridge.client.FlyteClient.fetch_launch_plan>` (and
its async twin) is the client method; :func:`fetch_launch_plan` stays for the callers that import
it from here (the Dagster translator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flyteidl.admin import launch_plan_pb2

    from flyte_bridge.client import FlyteClient


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
    return client.fetch_launch_plan(name, version=version, project=project, domain=domain)
