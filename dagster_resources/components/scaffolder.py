"""``dg scaffold defs dagster_resources.FlyteLaunchPlansComponent <path>``: a starter defs.yaml."""

from typing import Any

import dagster as dg
from pydantic import BaseModel, Field


class FlyteLaunchPlansScaffoldParams(BaseModel):
    """What ``dg scaffold`` may be told: ``--endpoint``, ``--launch-plans``..."""

    endpoint: str | None = Field(default=None, description="flyteadmin gRPC endpoint.")
    insecure: bool | None = Field(
        default=None, description="Plain-text gRPC (no TLS), as a local sandbox needs."
    )
    project: str | None = Field(default=None, description="Default project.")
    domain: str | None = Field(default=None, description="Default domain.")
    launch_plans: list[str] | None = Field(default=None, description="Launch plan names.")


class FlyteLaunchPlansScaffolder(dg.Scaffolder[FlyteLaunchPlansScaffoldParams]):
    """Writes a defs.yaml naming the connection (from env vars) and the launch plans."""

    @classmethod
    def get_scaffold_params(cls) -> type[FlyteLaunchPlansScaffoldParams]:
        """The parameters dg scaffold accepts."""
        return FlyteLaunchPlansScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[FlyteLaunchPlansScaffoldParams]) -> None:
        """Writes defs.yaml with the connection settings it was given.

        Without ``--endpoint`` or ``--project`` neither is written, so the resource reads
        flytekit's config (``FLYTE_PLATFORM_URL``, ``FLYTE_DEFAULT_PROJECT``, ``FLYTECTL_CONFIG``)
        and its errors name those; a template of an unset variable would turn into that same
        fallback unannounced, and its errors would name a variable the user never set."""
        params = request.params or FlyteLaunchPlansScaffoldParams()
        flyte: dict[str, Any] = {}
        if params.endpoint:
            flyte["endpoint"] = params.endpoint
        if params.project:
            flyte["default_project"] = params.project
        flyte["default_domain"] = params.domain or "development"
        if params.insecure is not None:
            flyte["insecure"] = params.insecure
        launch_plans = [{"name": name} for name in (params.launch_plans or ["my.launch_plan"])]
        dg.scaffold_component(
            request, {"flyte": flyte, "launch_plans": launch_plans, "create_sensor": False}
        )
