"""From ``FlyteResource`` fields to the core's ``ClientConfig``."""

from typing import TYPE_CHECKING, Any

import dagster as dg

from flyte_bridge.config import AuthConfig, ClientConfig, Secret, endpoint_source
from flyte_bridge.errors import FlyteConfigError

if TYPE_CHECKING:
    from dagster_resources.resource import FlyteResource

AUTH_FIELDS = (
    "client_id",
    "client_secret",
    "client_secret_env_var",
    "token",
    "token_env_var",
    "auth_command",
    "scopes",
    "audience",
    "token_endpoint",
)
"""Fields that only mean something with an auth mode."""


def build_client_config(resource: "FlyteResource") -> ClientConfig:
    """The client configuration: the fields, over the flytekit config when no endpoint is set."""
    values: dict[str, Any] = {
        "insecure": resource.insecure,
        "ca_cert_path": resource.ca_cert_path,
        "console_endpoint": resource.console_url,
        "default_project": resource.default_project,
        "default_domain": resource.default_domain,
        "rpc_timeout": resource.rpc_timeout,
        "max_retries": resource.max_retries,
        "max_execution_name_length": resource.max_execution_name_length,
        "auth": _auth_config(resource),
    }
    values = {name: value for name, value in values.items() if value is not None}
    try:
        if resource.endpoint:
            return ClientConfig(endpoint=resource.endpoint, **values)
        _log_endpoint_source(resource.flytekit_config)
        return ClientConfig.from_flytekit_config(resource.flytekit_config, **values)
    except FlyteConfigError as error:
        # The core names its own AuthConfig field; here it is the resource's (the flytekit
        # config, read only now, can make the connection plaintext).
        if "allow_plaintext" in error.message and not resource.allow_plaintext:
            raise FlyteConfigError(
                f"{error.message} (on a FlyteResource: allow_plaintext=True)",
                subject=error.subject,
            ) from error
        raise


def _log_endpoint_source(path: str | None) -> None:
    """Says where a resource without an endpoint connects to: a variable, a file or the
    default (a warning, as a default of localhost is rarely what a deployment wants)."""
    where = endpoint_source(path)
    log = dg.get_dagster_logger(__name__)
    if where.startswith("the default"):
        log.warning("FlyteResource has no endpoint; using %s", where)
    else:
        log.info("FlyteResource has no endpoint; using the one from %s", where)


def effective_auth_mode(resource: "FlyteResource") -> str | None:
    """The auth mode set, else the one the credentials imply; ``None`` keeps the flytekit config's.

    As the Airflow connection does, a client id with a client secret means client credentials;
    an auth command alone means external command.

    Raises:
        FlyteConfigError: Credentials are set without a mode and imply none (a token could be a
            bearer token or an API key), so they would be dropped.
    """
    if resource.auth_mode is not None:
        return resource.auth_mode
    given = [name for name in AUTH_FIELDS if getattr(resource, name)]
    if not given:
        return None
    if set(given) <= {
        "client_id",
        "client_secret",
        "client_secret_env_var",
        "scopes",
        "audience",
        "token_endpoint",
    } and (resource.client_id and (resource.client_secret or resource.client_secret_env_var)):
        return "client_credentials"
    if set(given) <= {"auth_command", "scopes", "audience", "token_endpoint"} and (
        resource.auth_command
    ):
        return "external_command"
    raise FlyteConfigError(
        f"FlyteResource sets {', '.join(given)} but no auth_mode, and no mode follows from them, "
        "so no credentials would be sent; set auth_mode: client_credentials (with client_id and "
        "client_secret), bearer or api_key (with token), or external_command (with auth_command)"
    )


def _auth_config(resource: "FlyteResource") -> AuthConfig | None:
    """The auth settings, or ``None`` to keep what the flytekit config says."""
    mode = effective_auth_mode(resource)
    if mode is None:
        return None
    return AuthConfig(
        mode=mode,
        client_id=resource.client_id,
        client_secret=_secret(resource.client_secret, resource.client_secret_env_var),
        scopes=tuple(resource.scopes or ()),
        audience=resource.audience,
        token_endpoint=resource.token_endpoint,
        command=tuple(resource.auth_command or ()),
        token=_secret(resource.token, resource.token_env_var),
        allow_plaintext=resource.allow_plaintext,
    )


def _secret(value: str | None, variable: str | None = None) -> Secret | None:
    """The secret given, or the one the named variable holds (read now, when the client is
    built; an unset variable is a FlyteConfigError naming it)."""
    if value:
        return Secret.from_value(value)
    return Secret.from_env(variable) if variable else None
