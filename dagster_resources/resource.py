"""``FlyteResource``: where the Flyte control plane is and how to talk to it.

The resource holds configuration only; the gRPC work is done by the core
:class:`flyte_bridge.client.FlyteClient`, built once per resource instance by
:meth:`FlyteResource.get_client`. Secrets are meant to be given as ``dg.EnvVar("...")`` so that
Dagster shows the variable's name, never its value.
"""

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import dagster as dg
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from flyte_bridge.errors import FlyteBridgeError, FlyteConfigError

if TYPE_CHECKING:
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

AUTH_MODES = ("none", "client_credentials", "external_command", "bearer", "api_key")

SECRET_FIELDS = frozenset({"client_secret", "token"})
"""Fields holding a secret: their value never shows in a ``repr`` or ``str``."""

MASK = "**********"

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A positive, finite number of seconds."""

Retries = Annotated[int, Field(ge=0)]
"""A number of retries, 0 or more."""

NameLength = Annotated[int, Field(ge=20, le=63)]
"""An execution name length limit: flyteadmin's 63, down to old admins' 20."""


def masked_repr_args(args: Iterable[tuple[str | None, Any]]) -> Iterator[tuple[str | None, Any]]:
    """Pydantic ``__repr_args__`` with the values of :data:`SECRET_FIELDS` masked.

    An ``EnvVar`` not resolved yet shows its variable's name, which is not secret.
    """
    for name, value in args:
        if name in SECRET_FIELDS and value is not None:
            if isinstance(value, dg.EnvVar):
                value = f"EnvVar({value.env_var_name!r})"
            else:
                value = MASK
        yield name, value


def is_env_var(value: Any) -> bool:
    """Whether ``value`` names an environment variable not read yet (``dg.EnvVar``, or
    Dagster's ``IntEnvVar`` for an int field)."""
    return isinstance(value, dg.EnvVar) or hasattr(value, "env_var_name")


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` when the core takes it (a host name or IP address, and a valid port).

    Raises:
        FlyteConfigError: Saying what an endpoint looks like.
    """
    from flyte_bridge.config import ClientConfig

    ClientConfig(endpoint=endpoint)
    return endpoint


def check_console_url(console_url: str) -> str:
    """``console_url`` when the core takes it (an http(s) URL naming a host, a valid port, no
    query or user info).

    Raises:
        FlyteConfigError: Saying what is wrong and what a console URL looks like.
    """
    from flyte_bridge.console import normalize_console_endpoint

    try:
        normalize_console_endpoint(console_url)
    except FlyteBridgeError as error:
        raise FlyteConfigError(f"console_url: {error.message}") from error
    return console_url


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
            "api_key. Empty: client_credentials when client_id and client_secret are set, "
            "external_command when auth_command is, else what the flytekit config says."
        ),
    )
    client_id: str | None = Field(default=None, description="OAuth2 client id.")
    client_secret: str | None = Field(
        default=None, description="OAuth2 client secret; pass it as an EnvVar."
    )
    token: str | None = Field(
        default=None, description="Static bearer token or API key; pass it as an EnvVar."
    )
    client_secret_env_var: str | None = Field(
        default=None,
        description="Name of an environment variable holding the OAuth2 client secret, read "
        "when the client is built (instead of client_secret): Dagster only ever sees the name.",
    )
    token_env_var: str | None = Field(
        default=None,
        description="Name of an environment variable holding the token (instead of token), "
        "read when the client is built.",
    )
    auth_command: list[str] | None = Field(
        default=None, description="Command printing an access token (external_command mode)."
    )
    scopes: list[str] | None = Field(default=None, description="OAuth2 scopes to request.")
    audience: str | None = Field(default=None, description="OAuth2 audience, if required.")
    token_endpoint: str | None = Field(
        default=None, description="OAuth2 token endpoint; discovered from the server if empty."
    )
    allow_plaintext: bool = Field(
        default=False,
        description="Let credentials cross an insecure (plaintext) connection; honoured for a "
        "loopback endpoint only (a local sandbox with auth switched on).",
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
    rpc_timeout: Seconds | None = Field(
        default=None,
        description="Deadline of each gRPC call attempt, in seconds. Empty: 30, or what the "
        "flytekit config says.",
    )
    max_retries: Retries | None = Field(
        default=None,
        description="Retries of a call that failed transiently (0: fail at the first error). "
        "Empty: 5, or what the flytekit config says.",
    )
    max_execution_name_length: NameLength | None = Field(
        default=None,
        description="Longest execution name admin accepts: 63 (the default), or 20 for admins "
        "older than 1.1; the names the ops and assets choose fit it.",
    )
    poll_interval: Seconds = Field(
        default=5.0, description="Seconds between two status checks of a running execution."
    )
    wait_timeout: Seconds | None = Field(
        default=None,
        description="Seconds to wait for an execution before the step fails; the execution is "
        "then terminated, unless terminate_on_interrupt is False.",
    )
    terminate_on_interrupt: bool = Field(
        default=True,
        description="Terminate the Flyte execution when the Dagster run is stopped or "
        "wait_timeout passes; False leaves it running (the log and the error say so).",
    )

    # Validation errors would otherwise quote the input, secrets included.
    model_config = ConfigDict(hide_input_in_errors=True)

    _client: "FlyteClient | None" = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_host_port(cls, value: str | None) -> str | None:
        # An empty endpoint (an EnvVar set to "") would otherwise read the flytekit config in
        # silence, as if none were given; None is the way to ask for that. A malformed one
        # would only fail at the first call, as a retried connection error.
        if not isinstance(value, str) or is_env_var(value):
            return value
        if not value.strip():
            raise ValueError(
                f"endpoint {value!r} is empty; expected a gRPC target host:port such as "
                "flyte.example.com:443, or no endpoint at all (None) to read the flytekit config"
            )
        check_endpoint(value)
        return value

    @field_validator("console_url")
    @classmethod
    def _console_url_is_a_url(cls, value: str | None) -> str | None:
        if isinstance(value, str) and not is_env_var(value):
            check_console_url(value)
        return value

    @field_validator("auth_mode")
    @classmethod
    def _known_auth_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in AUTH_MODES:
            raise ValueError(f"auth_mode must be one of {', '.join(AUTH_MODES)}; got {value!r}")
        return value

    @field_validator("client_secret_env_var", "token_env_var")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                "expected the name of an environment variable (letters, digits and _, such as "
                "FLYTE_CLIENT_SECRET), not its value"
            )
        return value

    @model_validator(mode="after")
    def _credentials_are_used(self) -> "FlyteResource":
        """Refuses credentials that would be dropped or sent in the clear."""
        from dagster_resources._config import effective_auth_mode

        for given, by_name in (
            ("client_secret", "client_secret_env_var"),
            ("token", "token_env_var"),
        ):
            if getattr(self, given) and getattr(self, by_name):
                raise ValueError(f"give {given} or {by_name}, not both")

        mode = effective_auth_mode(self)
        if self.insecure and mode not in (None, "none") and not self.allow_plaintext:
            raise ValueError(
                f"insecure=True would send credentials (auth mode {mode}) over plaintext; use "
                "TLS, or set allow_plaintext=True on the FlyteResource (honoured for a loopback "
                "endpoint only)"
            )
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        return masked_repr_args(super().__repr_args__())

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
        inputs_from_text: bool = False,
    ) -> Iterator[dg.MaterializeResult]:
        """Launches the launch plan behind the selected assets, waits, and reports each output.

        Meant to be called from a function decorated with :func:`flyte_assets`. Partitions are
        passed on: a time partition fills the launch plan's kickoff-time input; a range of time
        partitions becomes one Flyte backfill or one execution per partition, as the assets were
        defined. Other partitions (static, dynamic) are not passed on by themselves: read
        ``context.partition_key`` in the decorated function and put it in ``inputs``.

        Executions are named from the Dagster run (its root run), the op and the partition, so
        a retry of the step (a ``retry_policy``) or a re-execution of the run (from failure, or
        of chosen steps) follows the execution an earlier try left running, reports it if it
        succeeded, and launches a new one only after it failed or was aborted (a Flyte backfill
        is recovered instead, so its ticks that succeeded are not run again).

        Args:
            context: The asset execution context.
            inputs: Inputs of the launch plan, as Python values; every run of a Flyte backfill
                gets them too. With time partitions they cannot hold the kickoff-time input.
            labels: Extra labels for the execution.
            inputs_from_text: Read str values of ``inputs`` as text of their declared type
                (``"2024-01-01T00:00:00Z"`` for a datetime, ``"PT1H"`` for a duration, JSON for
                a list), as values from YAML or run config must be; other values are kept as
                they are. False, for Python values, gives a str only to str-typed inputs.

        Yields:
            One ``MaterializeResult`` per selected asset.

        Raises:
            dagster.Failure: The execution failed, was aborted or timed out; or, before anything
                is launched, the launch plan is not registered or lacks an output the assets name.
                Over a range of partitions the partitions whose runs (or backfill ticks)
                succeeded are materialized first, and the error names the others with their
                executions.
        """
        from dagster_resources.run_handler import materialize_launch_plan

        yield from materialize_launch_plan(
            context, self, inputs=inputs, labels=labels, inputs_from_text=inputs_from_text
        )

    def load_launch_plan_props(
        self, names: Sequence[str], project: str | None = None, domain: str | None = None
    ) -> list[Any]:
        """Reads launch plans from Flyte as :class:`FlyteLaunchPlanProps` (see the translator)."""
        from dagster_resources.launch_plans import load_flyte_launch_plan_props

        return load_flyte_launch_plan_props(self, names, project=project, domain=domain)


@contextlib.contextmanager
def resolved_resource(resource: FlyteResource) -> Iterator[FlyteResource]:
    """``resource`` with its ``dg.EnvVar`` fields read from the environment, for the block.

    Dagster reads them only for the resources it gives a run or a sensor through resource
    injection; code holding the resource object itself (a sensor built around it) sees the
    variables' names instead. A resource with no such field is yielded as it is, its client
    kept; otherwise a resolved copy is made (an unset variable raises Dagster's config error,
    naming it), and its client is closed when the block ends.
    """
    if not any(is_env_var(getattr(resource, name)) for name in type(resource).model_fields):
        yield resource
        return
    with resource.process_config_and_initialize_cm() as resolved:
        yield resolved
