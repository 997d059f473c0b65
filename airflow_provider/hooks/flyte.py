"""The Flyte hook: flyte-bridge clients (sync and asyncio) built from an Airflow connection.

The module imports nothing of flyte-bridge's client or gRPC at import time; they load the first
time a client is asked for, on the worker or the triggerer, never when a DAG file is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import shlex
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider.errors import FlyteConnectionNotFoundError
from airflow_provider.provider_info import AUTH_MODES

if TYPE_CHECKING:
    from flyte_bridge.aio import AsyncFlyteClient
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

logger = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_UI_PREFIX = "extra__flyte__"

_SECRET_EXTRAS = frozenset({"client_secret", "token", "password", "command"})
"""Extras whose values an error message never quotes."""

_WARNED_UNKNOWN: set[tuple[str, tuple[str, ...]]] = set()
"""(connection id, unknown extras) already warned about in this process."""


class FlyteHook(BaseHook):
    """Builds flyte-bridge clients from a ``flyte`` connection.

    The connection's host and port are the admin endpoint (or the ``endpoint`` extra). Login and
    password hold the OAuth2 client id and secret (``client_credentials``) or the token
    (``bearer``, ``api_key``); the extras hold ``insecure``, ``allow_plaintext`` (credentials
    over ``insecure``, to a loopback host only), ``ca_cert_path``,
    ``insecure_skip_verify``, ``auth_mode``, ``scopes``, ``audience``, ``token_endpoint``,
    ``command``, ``project``, ``domain``, ``console_url``, ``rpc_timeout``, ``max_retries`` and
    ``max_execution_name_length`` (checked by :func:`config_from_connection`). With
    ``flyte_conn_id=None`` the hook reads flytekit's config file and ``FLYTE_*`` variables
    instead of a connection.

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
                conn = _connection(self, self.flyte_conn_id)
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

    def get_conn(self) -> FlyteClient:
        """The sync client, as Airflow's hook convention names it (same as :meth:`get_client`)."""
        return self.get_client()

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
        """Lists admin's projects: reachable and authorised, with no default project needed;
        a ``project`` or ``domain`` the connection (or hook) sets must be registered there.

        A connection without a default project or domain passes (operators may set their own),
        but the message says that every operator on it must then set ``project`` and ``domain``:
        otherwise each launch fails with an execution that names no project and domain.

        Airflow 3 disables the UI's test button by default; ``airflow connections test <id>`` or
        ``FlyteHook("<id>").test_connection()`` run the same check.
        """
        from flyte_bridge.errors import FlyteNotFoundError

        try:
            config = self.get_config()
            with self.new_client() as client:
                projects = client.check_scope(config.default_project, config.default_domain)
        except FlyteNotFoundError as exc:
            return False, f"Connected to {config.endpoint}, but {exc.message}"
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        message = f"Connected to {config.endpoint}"
        if config.default_project and config.default_domain:
            return True, f"{message} ({config.default_project}/{config.default_domain})"
        names = ", ".join(sorted(project.id for project in projects)) or "none"
        missing = [
            field
            for field, value in (
                ("project", config.default_project),
                ("domain", config.default_domain),
            )
            if not value
        ]
        advice = (
            f"The connection has no default {' and '.join(missing)} (extra "
            f"{', '.join(map(repr, missing))}), so every Flyte operator and sensor on it must set "
            f"{' and '.join(f'{f}=' for f in missing)} (a sensor, signal or terminate may instead "
            "name its execution project/domain/name)"
        )
        # The UI shows the message of a successful test, `airflow connections test` only the
        # success: the warning reaches the command's output.
        logger.warning("Connection %s: %s", self.flyte_conn_id, advice)
        return True, f"{message} ({len(projects)} projects registered: {names}). {advice}"

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


def _is_ipv6_address(host: str) -> bool:
    """Whether the host field holds a bare IPv6 address (not ``host:port`` or a URL)."""
    import ipaddress

    try:
        return isinstance(ipaddress.ip_address(host.split("%")[0]), ipaddress.IPv6Address)
    except ValueError:
        return False


def config_from_connection(conn: Any, extra: Mapping[str, Any]) -> ClientConfig:
    """Maps a ``flyte`` connection (and its already-read extra) onto a client config.

    Every extra is checked for its type: booleans are ``true``/``false`` (or ``1``/``0``,
    ``yes``/``no``, ``on``/``off``), ``rpc_timeout`` a positive number of seconds,
    ``max_retries`` an integer of 0 or more, ``max_execution_name_length`` an integer from 20 to
    63. Extras the provider does not know are logged and ignored.

    Raises:
        FlyteConfigError: The connection has no endpoint, an extra has a value of the wrong
            kind (the message names the extra and what it expects), or the values contradict
            each other.
    """
    from flyte_bridge.config import AuthConfig, ClientConfig, Secret
    from flyte_bridge.errors import FlyteConfigError

    conn_type = getattr(conn, "conn_type", None)
    if conn_type and conn_type != FlyteHook.conn_type:
        logger.warning(
            "connection %r has type %r, not %r; reading it as a Flyte connection",
            conn.conn_id,
            conn_type,
            FlyteHook.conn_type,
        )
    extras = _Extras(conn.conn_id, extra)
    endpoint = extras.text("endpoint")
    if not endpoint:
        if not conn.host:
            raise FlyteConfigError(
                f"connection {conn.conn_id!r} has no host; expected the Flyte admin endpoint "
                "in host (and port) or in the 'endpoint' extra",
                subject=conn.conn_id,
            )
        host = conn.host
        if _is_ipv6_address(host):
            host = f"[{host}]"  # bracketed so that the port stays apart
        endpoint = f"{host}:{conn.port}" if conn.port else host
    elif conn.host:
        logger.warning(
            "connection %r has both host %s and the 'endpoint' extra; using the extra, %s",
            conn.conn_id,
            conn.host,
            endpoint,
        )
    insecure = extras.boolean("insecure")
    allow_plaintext = extras.boolean("allow_plaintext")

    # Every extra is read (and checked), whether or not the login and password win over it.
    extra_client_id = extras.text("client_id")
    extra_client_secret = extras.text("client_secret")
    extra_token = extras.text("token")
    secret = conn.password or extra_client_secret or extra_token
    if conn.password and (extra_client_secret or extra_token):
        logger.warning(
            "connection %r has a password and the %s extra; using the password",
            conn.conn_id,
            "client_secret" if extra_client_secret else "token",
        )
    client_id = conn.login or extra_client_id
    mode = extras.text("auth_mode") or ("client_credentials" if client_id and secret else "none")
    if mode not in AUTH_MODES:
        raise extras.invalid("auth_mode", mode, f"one of {', '.join(AUTH_MODES)}")
    if secret and not extras.text("auth_mode") and mode == "none":
        # A secret with no client id and no mode would be dropped without a word, and the
        # server's refusal would then not say which field of the connection was missing.
        where = "a password" if conn.password else "a client_secret or token extra"
        raise FlyteConfigError(
            f"connection {conn.conn_id!r} has {where} but no login and no 'auth_mode' extra; "
            "set login to the client id for client credentials, or auth_mode to 'bearer' or "
            "'api_key' for a token",
            subject=conn.conn_id,
        )
    # Read and checked whatever the mode: a wrong value fails now, not after a mode change.
    settings = {
        "client_id": client_id,
        "scopes": extras.words("scopes"),
        "audience": extras.text("audience"),
        "token_endpoint": extras.text("token_endpoint"),
        "command": extras.command("command"),
    }
    auth = None
    if mode != "none":
        if insecure and not allow_plaintext:
            # As the Python client and Dagster: credentials cross plaintext only when asked to.
            raise FlyteConfigError(
                f"connection {conn.conn_id!r}: 'insecure' is true (plaintext) but auth mode "
                f"{mode!r} would send credentials over it; use TLS, or set the extra "
                "'allow_plaintext' to true (honoured for a loopback host only, such as a local "
                "sandbox with auth on)",
                subject=conn.conn_id,
            )
        with _naming(conn.conn_id):
            auth = AuthConfig(
                mode=mode,
                client_secret=Secret.from_value(secret)
                if mode == "client_credentials" and secret
                else None,
                token=Secret.from_value(secret)
                if mode in ("bearer", "api_key") and secret
                else None,
                allow_plaintext=allow_plaintext,
                **settings,
            )

    values: dict[str, Any] = {
        "endpoint": endpoint,
        "insecure": insecure,
        "ca_cert_path": extras.text("ca_cert_path"),
        "insecure_skip_verify": extras.boolean("insecure_skip_verify"),
        "console_endpoint": extras.console_url("console_url", insecure),
        "default_project": extras.text("project"),
        "default_domain": extras.text("domain"),
        "auth": auth,
    }
    timeout = extras.seconds("rpc_timeout")
    if timeout is not None:
        values["rpc_timeout"] = timeout
    retries = extras.integer("max_retries", "an integer of 0 or more", minimum=0)
    if retries is not None:
        values["max_retries"] = retries
    name_length = extras.integer(
        "max_execution_name_length", "an integer from 20 to 63", minimum=20, maximum=63
    )
    if name_length is not None:
        values["max_execution_name_length"] = name_length
    extras.warn_unknown()
    with _naming(conn.conn_id):
        return ClientConfig(**values)


@contextlib.contextmanager
def _naming(conn_id: str) -> Iterator[None]:
    """Prefixes the config errors of the block with the connection they come from."""
    from flyte_bridge.errors import FlyteConfigError

    try:
        yield
    except FlyteConfigError as exc:
        raise FlyteConfigError(f"connection {conn_id!r}: {exc.message}", subject=conn_id) from exc


def _connection(hook: BaseHook, conn_id: str) -> Any:
    """Looks a connection up; one that is not defined raises
    :class:`~airflow_provider.errors.FlyteConnectionNotFoundError`, which fails a task at once."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return hook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        raise FlyteConnectionNotFoundError(conn_id) from exc


async def _connection_async(hook: BaseHook, conn_id: str) -> tuple[Any, dict[str, Any]]:
    """Looks a connection and its extra up on an event loop.

    Airflow 3.3.2 masks secrets asynchronously (``Connection.aextra_dejson``); before it the sync
    lookup talks to the supervisor synchronously and deadlocks the triggerer's loop, so it runs in
    a thread instead. The in-process supervisor of ``airflow dags test`` (and ``dag.test()``)
    answers only synchronous requests, so there the async lookup finds environment-variable
    connections but not those of the metadata database: a connection it cannot find is looked up
    again synchronously, in a thread.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    def lookup() -> tuple[Any, dict[str, Any]]:
        conn = _connection(hook, conn_id)
        return conn, conn.extra_dejson

    if hasattr(Connection, "aextra_dejson"):
        try:
            conn = await hook.aget_connection(conn_id)
        except AirflowNotFoundException:
            logger.debug("Connection %s not found asynchronously; reading it in a thread", conn_id)
        else:
            return conn, await conn.aextra_dejson()
    return await asyncio.to_thread(lookup)


class _Extras:
    """Reads a connection's extras by name (plain or ``extra__flyte__`` prefixed), checking
    each value's kind and naming the extra in the error when it is wrong."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extra = extra
        self.read: set[str] = set()

    def get(self, key: str) -> Any:
        self.read.add(key)
        value = self.extra.get(key)
        if value in (None, ""):
            value = self.extra.get(f"{_UI_PREFIX}{key}")
        return None if value == "" else value

    def invalid(self, key: str, value: Any, expected: str) -> Exception:
        from flyte_bridge.errors import FlyteConfigError

        # A secret's value (or a command, which may hold one) is never quoted, only its type.
        shown = f"a {type(value).__name__}" if key in _SECRET_EXTRAS else repr(value)
        return FlyteConfigError(
            f"connection {self.conn_id!r}: extra {key!r} must be {expected}, got {shown}",
            subject=self.conn_id,
        )

    def text(self, key: str) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.invalid(key, value, "a string")
        return value.strip() or None

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self.invalid(key, value, "true or false")

    def seconds(self, key: str) -> float | None:
        value = self.get(key)
        if value is None:
            return None
        number: float | None = None
        if not isinstance(value, bool):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = None
        if number is None or not math.isfinite(number) or number <= 0:
            raise self.invalid(key, value, "a positive number of seconds")
        return number

    def integer(
        self, key: str, expected: str, *, minimum: int, maximum: int | None = None
    ) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        if number is None or number < minimum or (maximum is not None and number > maximum):
            raise self.invalid(key, value, expected)
        return number

    def words(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if not value:
            return ()
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[\s,]+", value) if part)
        if isinstance(value, (list, tuple)) and all(isinstance(part, str) for part in value):
            return tuple(value)
        raise self.invalid(key, value, "a string of words separated by spaces or commas")

    def command(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if not value:
            return ()
        if isinstance(value, str):
            return tuple(shlex.split(value))
        if isinstance(value, (list, tuple)) and all(isinstance(part, str) for part in value):
            return tuple(value)
        raise self.invalid(key, value, "a command line or a list of arguments")

    def console_url(self, key: str, insecure: bool) -> str | None:
        from flyte_bridge.console import normalize_console_endpoint
        from flyte_bridge.errors import FlyteInvalidInputError

        value = self.text(key)
        if value is None:
            return None
        try:
            normalize_console_endpoint(value, insecure)
        except FlyteInvalidInputError as error:
            from flyte_bridge.errors import FlyteConfigError

            # The core's message says what is wrong and never shows a user name or password.
            raise FlyteConfigError(
                f"connection {self.conn_id!r}: extra {key!r} must be an http(s) URL such as "
                f"https://flyte.example.com ({error.message.split('; expected')[0]})",
                subject=self.conn_id,
            ) from None
        return value

    def warn_unknown(self) -> None:
        unknown = sorted(
            name for key in self.extra if (name := key.removeprefix(_UI_PREFIX)) not in self.read
        )
        if unknown and (self.conn_id, tuple(unknown)) not in _WARNED_UNKNOWN:
            # Once per process and connection: clients are built at every poke and trigger.
            _WARNED_UNKNOWN.add((self.conn_id, tuple(unknown)))
            logger.warning(
                "Connection %s: ignoring extras the Flyte provider does not know: %s",
                self.conn_id,
                ", ".join(unknown),
            )
