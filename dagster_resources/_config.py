"""From ``FlyteResource`` fields to the core's ``ClientConfig``."""

from typing import TYPE_CHECKING, Any

from flyte_bridge.config import AuthConfig, ClientConfig, Secret

if TYPE_CHECKING:
    from dagster_resources.resource import FlyteResource


def build_client_config(resource: "FlyteResource") -> ClientConfig:
    """The client configuration: the fields, over the flytekit config when no endpoint is set."""
    values: dict[str, Any] = {
        "insecure": resource.insecure,
        "ca_cert_path": resource.ca_cert_path,
        "console_endpoint": resource.console_url,
        "default_project": resource.default_project,
        "default_domain": resource.default_domain,
        "auth": _auth_config(resource),
    }
    values = {name: value for name, value in values.items() if value is not None}
    if resource.endpoint:
        return ClientConfig(endpoint=resource.endpoint, **values)
    return ClientConfig.from_flytekit_config(resource.flytekit_config, **values)


def _auth_config(resource: "FlyteResource") -> AuthConfig | None:
    """The auth settings, or ``None`` to keep what the flytekit config says."""
    if resource.auth_mode is None:
        return None
    return AuthConfig(
        mode=resource.auth_mode,
        client_id=resource.client_id,
        client_secret=_secret(resource.client_secret),
        scopes=tuple(resource.scopes or ()),
        audience=resource.audience,
        token_endpoint=resource.token_endpoint,
        command=tuple(resource.auth_command or ()),
        token=_secret(resource.token),
    )


def _secret(value: str | None) -> Secret | None:
    return Secret.from_value(value) if value else None
