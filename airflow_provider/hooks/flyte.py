"""The Flyte hook: flyte-bridge clients (sync and asyncio) built from an Airflow connection.

The module imports nothing of flyte-bridge's client or gRPC at import time; they load the first
time a client is asked for, on the worker or the triggerer, never when a DAG file is parsed.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from flyte_bridge.aio import AsyncFlyteClient
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

_TRUE = {"1", "true", "yes", "on"}


class FlyteHook(BaseHook):
    """Builds flyte-bridge clients from a ``flyte`` connection.

    The connection's host and port are the admin endpoint (or the ``endpoint`` extra). Login and
    password hold the OAuth2 client id and secret (``client_credentials``) or the token
    (``bearer``, ``api_key``); the extras hold ``insecure``, ``ca_cert_path``, ``auth_mode``,
    ``scopes``, ``audience``, ``token_endpoint``, ``command``, ``project``, ``domain`` and
    ``console_url``. With ``flyte_conn_id=None`` the hook reads flytekit's config file and
    ``FLYTE_*`` variables instead of a connection.

    Args:
        flyte_conn_id: The connection id, or None for flytekit's config.
        project: Default project, over the connection's.
        domain: Default domain, over the connection's.
    """

    conn_name_attr = "flyte_conn_id"
    default_conn_name = "flyte_default"
    conn_type = "flyte"
    hook_name = "Flyte"

    def __init__(
        self,
        flyte_conn_id: str | None = default_conn_name,
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> None:
        super().__init__()
        self.flyte_conn_id = flyte_conn_id
        self.project = project
        self.domain = domain
        self._config: ClientConfig | None = None
        self._client: FlyteClient | None = None

    def get_config(self) -> ClientConfig:
        """The client config of the connection (looked up once per hook)."""
        if self._config is None:
            if self.flyte_conn_id is None:
                self._config = self._from_flytekit()
            else:
                conn = self.get_connection(self.flyte_conn_id)
                self._config = self._with_defaults(config_from_connection(conn, conn.extra_dejson))
        return self._config

    async def aget_config(self) -> ClientConfig:
        """The client config, looked up without blocking the triggerer's event loop."""
        if self._config is None:
            if self.flyte_conn_id is None:
                self._config = await asyncio.to_thread(self._from_flytekit)
            else:
                conn, extra = await _connection_async(self, self.flyte_conn_id)
                self._config = self._with_defaults(config_from_connection(conn, extra))
        return self._config

    def get_client(self) -> FlyteClient:
        """The sync client (one per hook); closed by :meth:`close`."""
        if self._client is None:
            from flyte_bridge.client import FlyteClient

            self._client = FlyteClient(self.get_config())
        return self._client

    def new_client(self) -> FlyteClient:
        """A sync client of its own (for kill handlers that must not share a busy channel)."""
        from flyte_bridge.client import FlyteClient

        return FlyteClient(self.get_config())

    async def aget_client(self) -> AsyncFlyteClient:
        """A new asyncio client; the caller closes it (``await client.close()``)."""
        from flyte_bridge.aio import AsyncFlyteClient

        return AsyncFlyteClient(await self.aget_config())

    def close(self) -> None:
        """Closes the sync client, if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> tuple[bool, str]:
        """Lists one execution of the default project and domain: reachable and authorised.

        Airflow 3 disables the UI's test button by default; ``airflow connections test <id>`` or
        ``FlyteHook("<id>").test_connection()`` run the same check.
        """
        try:
            config = self.get_config()
            with self.new_client() as client:
                client.recent_executions(limit=1)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, (
            f"Connected to {config.endpoint} ({config.default_project}/{config.default_domain})"
        )

    def _with_defaults(self, config: ClientConfig) -> ClientConfig:
        changes = {}
        if self.project:
            changes["default_project"] = self.project
        if self.domain:
            changes["default_domain"] = self.domain
        return config.replace(**changes) if changes else config

    def _from_flytekit(self) -> ClientConfig:
        from flyte_bridge.config import ClientConfig

        return self._with_defaults(ClientConfig.from_flytekit_config())


def config_from_connection(conn: Any, extra: Mapping[str, Any]) -> ClientConfig:
    """Maps a ``flyte`` connection (and its already-read extra) onto a client config.

    Raises:
        FlyteConfigError: The connection has no endpoint, or the values contradict each other.
    """
    from flyte_bridge.config import AuthConfig, ClientConfig, Secret
    from flyte_bridge.errors import FlyteConfigError

    def get(key: str) -> Any:
        value = extra.get(key)
        if value in (None, ""):
            value = extra.get(f"extra__flyte__{key}")
        return None if value == "" else value

    endpoint = get("endpoint")
    if not endpoint:
        if not conn.host:
            raise FlyteConfigError(
                f"connection {conn.conn_id!r} has no host; expected the Flyte admin endpoint "
                "in host (and port) or in the 'endpoint' extra"
            )
        endpoint = f"{conn.host}:{conn.port}" if conn.port else conn.host
    insecure = _boolean(get("insecure"))

    secret = conn.password or get("client_secret") or get("token")
    mode = get("auth_mode") or ("client_credentials" if conn.login and secret else "none")
    auth = None
    if mode != "none":
        command = get("command") or ()
        if isinstance(command, str):
            command = shlex.split(command)
        auth = AuthConfig(
            mode=mode,
            client_id=conn.login or get("client_id"),
            client_secret=Secret.from_value(secret)
            if mode == "client_credentials" and secret
            else None,
            token=Secret.from_value(secret) if mode in ("bearer", "api_key") and secret else None,
            scopes=_strings(get("scopes")),
            audience=get("audience"),
            token_endpoint=get("token_endpoint"),
            command=tuple(command),
            allow_plaintext=insecure,
        )

    values: dict[str, Any] = {
        "endpoint": endpoint,
        "insecure": insecure,
        "ca_cert_path": get("ca_cert_path"),
        "insecure_skip_verify": _boolean(get("insecure_skip_verify")),
        "console_endpoint": get("console_url"),
        "default_project": get("project"),
        "default_domain": get("domain"),
        "auth": auth,
    }
    if get("rpc_timeout") is not None:
        values["rpc_timeout"] = float(get("rpc_timeout"))
    if get("max_retries") is not None:
        values["max_retries"] = int(get("max_retries"))
    return ClientConfig(**values)


async def _connection_async(hook: BaseHook, conn_id: str) -> tuple[Any, dict[str, Any]]:
    """Looks a connection and its extra up on an event loop.

    Airflow 3.3.2 masks secrets asynchronously (``Connection.aextra_dejson``); before it the sync
    lookup talks to the supervisor synchronously and deadlocks the triggerer's loop, so it runs in
    a thread instead.
    """
    from airflow.sdk import Connection

    if hasattr(Connection, "aextra_dejson"):
        conn = await hook.aget_connection(conn_id)
        return conn, await conn.aextra_dejson()

    def lookup() -> tuple[Any, dict[str, Any]]:
        conn = hook.get_connection(conn_id)
        return conn, conn.extra_dejson

    return await asyncio.to_thread(lookup)


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def _strings(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(part for part in re.split(r"[\s,]+", value) if part)
    return tuple(str(part) for part in value)
