"""``FlyteResource``: where the Flyte control plane is and how to talk to it.

The resource holds configuration only; the gRPC work is done by the core
:class:`flyte_bridge.client.FlyteClient`, built once per resource instance by
:meth:`FlyteResource.get_client`. Secrets are meant to be given as ``dg.EnvVar("...")`` so that
Dagster shows the variable's name, never its value.
"""

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr, field_validator

if TYPE_CHECKING:
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

AUTH_MODES = ("none", "client_credentials", "external_command", "bearer", "api_key")


class FlyteResource(dg.ConfigurableResource):
    """Connection to a Flyte control plane, shared by the Flyte assets, ops and sensors.

    Every field left empty falls back to the flytekit config file named by ``flytekit_config``
    (and, when that is empty too, to flytekit's usual ``FLYTECTL_CONFIG`` / ``~/.flyte`` file and
    ``FLYTE_*`` variables) when ``endpoint`` is not set.

    Examples:
        .. code-block:: python

            import dagster as dg
            from dagster_resources import FlyteResource

            flyte = FlyteResource(
                endpoint="flyte.example.com:443",
                auth_mode="client_credentials",
                client_id="dagster",
                client_secret=dg.EnvVar("FLYTE_CLIENT_SECRET"),
                default_project="flytesnacks",
                default_domain="development",
            )
    """

    endpoint: str | None = Field(
        default=None,
        description="gRPC endpoint of flyteadmin, host:port. Empty: read the flytekit config.",
    )
    insecure: bool | None = Field(
        default=None,
        description="Plain-text gRPC (no TLS). Empty: TLS, or what the flytekit config says.",
    )
    ca_cert_path: str | None = Field(
        default=None, description="PEM bundle of the certificate authorities to trust."
    )
    flytekit_config: str | None = Field(
        default=None,
        description="Path of a flytekit config file to read when endpoint is empty.",
    )
    auth_mode: str | None = Field(
        default=None,
        description=(
            "How to authenticate: none, client_credentials, external_command, bearer or "
            "api_key. Empty: none, or what the flytekit config says."
        ),
    )
    client_id: str | None = Field(default=None, description="OAuth2 client id.")
    client_secret: str | None = Field(
        default=None, description="OAuth2 client secret; pass it as an EnvVar."
    )
    token: str | None = Field(
        default=None, description="Static bearer token or API key; pass it as an EnvVar."
    )
    auth_command: list[str] | None = Field(
        default=None, description="Command printing an access token (external_command mode)."
    )
    scopes: list[str] | None = Field(default=None, description="OAuth2 scopes to request.")
    audience: str | None = Field(default=None, description="OAuth2 audience, if required.")
    token_endpoint: str | None = Field(
        default=None, description="OAuth2 token endpoint; discovered from the server if empty."
    )
    default_project: str | None = Field(
        default=None, description="Project used when an asset or op names none."
    )
    default_domain: str | None = Field(
        default=None, description="Domain used when an asset or op names none."
    )
    console_url: str | None = Field(
        default=None,
        description="Base URL of the Flyte console; derived from the endpoint if empty.",
    )
    poll_interval: float = Field(
        default=5.0, description="Seconds between two status checks of a running execution."
    )
    wait_timeout: float | None = Field(
        default=None,
        description="Seconds to wait for an execution before giving up (and terminating it).",
    )
    terminate_on_interrupt: bool = Field(
        default=True,
        description="Terminate the Flyte execution when the Dagster run is stopped.",
    )

    _client: "FlyteClient | None" = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("auth_mode")
    @classmethod
    def _known_auth_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in AUTH_MODES:
            raise ValueError(f"auth_mode must be one of {', '.join(AUTH_MODES)}; got {value!r}")
        return value

    @classmethod
    def from_flytekit_config(cls, path: str | None = None, **overrides: Any) -> "FlyteResource":
        """A resource that reads its connection from a flytekit config file.

        The file is read when the client is first built, so its secrets never enter Dagster's
        configuration.

        Args:
            path: The config file; ``None`` uses the file and variables flytekit would use.
            **overrides: Any other field, which wins over the file.
        """
        return cls(flytekit_config=path, **overrides)

    def get_client_config(self) -> "ClientConfig":
        """The core client configuration these fields describe."""
        from dagster_resources._config import build_client_config

        return build_client_config(self)

    def get_client(self) -> "FlyteClient":
        """The core client, built on first use and shared by every later call."""
        with self._lock:
            if self._client is None:
                from flyte_bridge.client import FlyteClient

                self._client = FlyteClient(self.get_client_config())
            return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Closes the client's channel at the end of the run."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def materialize(
        self,
        context: dg.AssetExecutionContext,
        inputs: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> Iterator[dg.MaterializeResult]:
        """Launches the launch plan behind the selected assets, waits, and reports each output.

        Meant to be called from a function decorated with :func:`flyte_assets`. Partitions are
        passed on: a time partition fills the launch plan's kickoff-time input; a range of time
        partitions becomes one Flyte backfill or one execution per partition, as the assets were
        defined. Other partitions (static, dynamic) are not passed on by themselves: read
        ``context.partition_key`` in the decorated function and put it in ``inputs``.

        Args:
            context: The asset execution context.
            inputs: Inputs of the launch plan, as Python values.
            labels: Extra labels for the execution.

        Yields:
            One ``MaterializeResult`` per selected asset.

        Raises:
            dagster.Failure: The execution failed, was aborted or timed out.
        """
        from dagster_resources.run_handler import materialize_launch_plan

        yield from materialize_launch_plan(context, self, inputs=inputs, labels=labels)

    def load_launch_plan_props(
        self, names: Sequence[str], project: str | None = None, domain: str | None = None
    ) -> list[Any]:
        """Reads launch plans from Flyte as :class:`FlyteLaunchPlanProps` (see the translator)."""
        from dagster_resources.launch_plans import load_flyte_launch_plan_props

        return load_flyte_launch_plan_props(self, names, project=project, domain=domain)
