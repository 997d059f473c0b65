"""Client configuration: where admin is, how to reach it, and how to authenticate.

:class:`ClientConfig` is a frozen value; build it directly, with :meth:`ClientConfig.for_sandbox`,
or with :meth:`ClientConfig.from_flytekit_config`, which reads the same config file and ``FLYTE_*``
environment variables as flytekit so that an existing setup works unchanged.

Secrets (client secrets, static tokens) are held in :class:`Secret`, which never shows its value
in a ``repr``, ``str`` or log line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flyte_bridge._checks import require_bool
from flyte_bridge.errors import FlyteConfigError, FlyteInvalidInputError

logger = logging.getLogger(__name__)

AuthMode = Literal["none", "client_credentials", "external_command", "bearer", "api_key"]
AUTH_MODES: tuple[str, ...] = typing.get_args(AuthMode)

_MASK = "**********"


class Secret:
    """A secret string (client secret, token, API key) that never shows itself.

    The value is stripped of surrounding whitespace (a trailing newline in a mounted file is the
    usual case). A secret read from a file is read again on every :meth:`reveal`, so a rotated
    secret file is picked up without a restart.
    """

    __slots__ = ("_source", "_value", "_path")

    def __init__(self, value: str, *, source: str = "value", path: str | None = None) -> None:
        stripped = value.strip()
        if not stripped:
            raise FlyteConfigError(f"secret from {source} is empty; expected a non-empty string")
        self._value = stripped
        self._source = source
        self._path = path

    @classmethod
    def from_value(cls, value: str) -> Secret:
        """A secret given directly."""
        if not isinstance(value, str):
            raise FlyteConfigError(f"secret must be a string, got {type(value).__name__}")
        return cls(value)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Secret:
        """A secret read from a file (for example a mounted Kubernetes secret)."""
        path = os.fspath(Path(path).expanduser())
        return cls(_read_secret_file(path), source=f"file {path}", path=path)

    @classmethod
    def from_env(cls, variable: str) -> Secret:
        """A secret read from the environment variable named ``variable``."""
        value = os.environ.get(variable)
        if value is None:
            raise FlyteConfigError(
                f"environment variable {variable} is not set; expected it to hold a secret"
            )
        return cls(value, source=f"env {variable}")

    @property
    def source(self) -> str:
        """Where the secret came from (``value``, ``file <path>`` or ``env <NAME>``), never it."""
        return self._source

    def reveal(self) -> str:
        """The secret value. Call only where it is sent; never log the result."""
        if self._path is not None:
            return Secret(_read_secret_file(self._path), source=self._source)._value
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK}, source={self._source!r})"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self._source, self._value) == (other._source, other._value)

    def __hash__(self) -> int:
        return hash((self._source, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling would write the secret out; configs travel by their source instead.
        raise TypeError("Secret cannot be pickled; rebuild it from its source")


def _read_secret_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FlyteConfigError(
            f"cannot read secret file {path}: {exc.strerror or exc}; expected a readable file"
        ) from None


@dataclass(frozen=True)
class AuthConfig:
    """How to authenticate to admin.

    Only non-interactive flows are supported: flyte-bridge runs in Airflow workers and Dagster
    run pods, where no browser or person can answer a PKCE or device-code prompt.

    Args:
        mode: ``"client_credentials"`` (OAuth2 client credentials grant), ``"external_command"``
            (a command that prints a token), ``"bearer"`` (a static token sent as
            ``Bearer <token>``), ``"api_key"`` (a static key sent verbatim) or ``"none"``.
        client_id: OAuth2 client id (client credentials).
        client_secret: OAuth2 client secret (client credentials).
        scopes: Scopes to ask for; empty means the scopes admin advertises for public clients.
        audience: Audience to ask for; ``None`` means admin's advertised audience, if any.
        token_endpoint: Token URL; ``None`` means discovered from admin's AuthMetadataService.
        command: Argument list of the token command (external command).
        token: The static token or API key (bearer, api_key).
        header: gRPC metadata key for the credential. ``None`` means the key admin advertises
            (``authorization_metadata_key``), falling back to ``authorization``; for ``api_key``
            it falls back to ``x-api-key``.
        allow_plaintext: Let tokens and client secrets cross a plaintext connection. Honoured only
            for loopback hosts (127.0.0.1, ::1, localhost), for the sandbox and tests; a
            non-loopback plaintext endpoint with credentials is always refused.
        interactive_flow_requested: Set by :meth:`ClientConfig.from_flytekit_config` when the
            flytekit config asks for ``Pkce`` or ``DeviceFlow``; such configs run without
            credentials and the error raised on UNAUTHENTICATED says why.
    """

    mode: AuthMode = "none"
    client_id: str | None = None
    client_secret: Secret | None = None
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    token_endpoint: str | None = None
    command: tuple[str, ...] = ()
    token: Secret | None = None
    header: str | None = None
    allow_plaintext: bool = False
    interactive_flow_requested: str | None = None

    def __post_init__(self) -> None:
        mode = self.mode
        alias = (
            _MODE_NAMES.get(mode.lower().replace("-", "").replace("_", ""))
            if isinstance(mode, str)
            else None
        )
        if alias in ("Pkce", "DeviceFlow"):
            raise FlyteConfigError(
                f"auth mode {mode!r} is an interactive flow (browser or device code), which "
                "flyte-bridge never runs because its workers are headless; use "
                "'client_credentials', 'external_command', 'bearer' or 'api_key'"
            )
        if mode not in AUTH_MODES and alias is not None:
            # flytekit's names for the same flows (ClientSecret, ExternalCommand...).
            mode = alias
            object.__setattr__(self, "mode", mode)
        if mode not in AUTH_MODES:
            raise FlyteConfigError(
                f"unknown auth mode {mode!r}; expected one of {', '.join(AUTH_MODES)}"
            )
        require_bool("AuthConfig.allow_plaintext", self.allow_plaintext, FlyteConfigError)
        object.__setattr__(self, "scopes", _words("scopes", self.scopes))
        object.__setattr__(self, "command", _arguments("command", self.command))
        for name in ("client_secret", "token"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                raise FlyteConfigError(
                    f"AuthConfig.{name} must be a Secret (Secret.from_value / from_file / "
                    f"from_env), got {type(value).__name__}"
                )
        if mode == "client_credentials":
            if not self.client_id:
                raise FlyteConfigError("client_credentials auth needs client_id")
            if self.client_secret is None:
                raise FlyteConfigError(
                    "client_credentials auth needs client_secret (a value, a file or an env var)"
                )
        elif mode == "external_command":
            if not self.command or not all(isinstance(a, str) and a for a in self.command):
                raise FlyteConfigError(
                    "external_command auth needs command: a non-empty list of arguments whose "
                    "standard output is the token"
                )
        elif mode in ("bearer", "api_key") and self.token is None:
            raise FlyteConfigError(f"{mode} auth needs token (a Secret)")
        if self.token_endpoint is not None and not re.match(r"https?://", self.token_endpoint):
            raise FlyteConfigError(
                f"token_endpoint {self.token_endpoint!r} is not a URL; expected https://host/path"
            )
        if self.header is not None and (not self.header or self.header != self.header.lower()):
            raise FlyteConfigError(
                f"auth header {self.header!r} is not a valid gRPC metadata key; expected a "
                "non-empty lower-case name such as 'authorization' or 'flyte-authorization'"
            )

    @property
    def sends_credentials(self) -> bool:
        """Whether calls carry a token or key."""
        return self.mode != "none"


def _words(name: str, value: Any) -> tuple[str, ...]:
    """Scopes as a tuple: a str is split on spaces and commas (``"all"``, ``"a b"``), as
    OAuth2 and flytekit's INI files write them, instead of into its characters."""
    if isinstance(value, str):
        return tuple(word for word in re.split(r"[\s,]+", value) if word)
    try:
        return tuple(value)
    except TypeError:
        raise FlyteConfigError(
            f"{name} must be a list of strings or one space-separated string, got {value!r}"
        ) from None


def _arguments(name: str, value: Any) -> tuple[str, ...]:
    """A command as a tuple of arguments: a str is split as a shell would split it
    (``"my-tool print --quiet"``), instead of into its characters."""
    if isinstance(value, str):
        import shlex

        try:
            return tuple(shlex.split(value))
        except ValueError as error:
            raise FlyteConfigError(
                f"{name} {value!r} cannot be split into arguments: {error}"
            ) from None
    try:
        return tuple(value)
    except TypeError:
        raise FlyteConfigError(
            f"{name} must be a list of arguments or one command line, got {value!r}"
        ) from None


def _check_pem_bundle(path: str) -> None:
    """Refuses a CA file that is missing, unreadable or holds no PEM certificate: gRPC would
    only fail the TLS handshake, which reads like an outage of the server."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FlyteConfigError(f"ca_cert_path {path} is not a file; expected a PEM bundle")
    try:
        text = file.read_bytes()
    except OSError as error:
        raise FlyteConfigError(f"ca_cert_path {path} cannot be read: {error}") from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise FlyteConfigError(
            f"ca_cert_path {path} holds no PEM certificate; expected a bundle of "
            "'-----BEGIN CERTIFICATE-----' blocks (convert a DER file with `openssl x509 "
            "-inform der -in ca.der -out ca.pem`)"
        )


def _without_password(url: str | None) -> str | None:
    """A URL with the password of its user part masked, for reprs and messages."""
    if not url or "@" not in url:
        return url
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:**********@", url)


@dataclass(frozen=True)
class ClientConfig:
    """Everything a transport needs to reach admin.

    Args:
        endpoint: gRPC target ``host:port`` (a ``dns:///`` prefix is stripped).
        insecure: Plaintext gRPC. Must be asked for explicitly; the default is TLS.
        ca_cert_path: PEM file of root certificates to trust instead of the system roots.
        insecure_skip_verify: Trust whatever certificate the server presents (fetched on first
            connection). The host name must still match it.
        console_endpoint: Base URL of the Flyte console; ``None`` derives it from the endpoint.
        default_project: Project used when a call does not name one.
        default_domain: Domain used when a call does not name one.
        default_org: Organization of a multi-tenant deployment, sent with executions named by
            string, listings and launches; empty (the default) for open-source Flyte. Ids read
            from admin keep their own org. It must be the org admin stores: an admin that drops
            it makes reattaching to a named execution see a different id and refuse.
        rpc_timeout: Deadline of each RPC attempt, in seconds.
        max_retries: Retries of a transient failure (so at most ``max_retries + 1`` attempts).
        retry_initial_backoff: First backoff between attempts, in seconds. It doubles with each
            retry, and each wait is between half of it and all of it (jitter); with the
            defaults, the retries of one call span 8 to 15 seconds.
        retry_max_backoff: Longest backoff between attempts, in seconds.
        auth: How to authenticate; ``None`` sends no credentials.
        http_proxy_url: Proxy for the OAuth2 token requests (not for gRPC), as flytekit.
        proxy_command: Argument list of a command printing a token for a proxy in front of admin
            (an identity-aware proxy); sent as ``proxy-authorization: Bearer <token>`` on every
            call and token request, and run again when a call fails with UNAUTHENTICATED.
        grpc_options: Extra gRPC channel options, appended after the defaults.
        max_execution_name_length: The longest execution name admin accepts: 63 since
            flyteadmin 1.1, 20 before. Names given to ``launch``, ``relaunch`` and ``recover``
            are checked against it before any RPC; the names the client makes up are 20 long.
    """

    endpoint: str = "localhost:30080"
    insecure: bool = False
    ca_cert_path: str | None = None
    insecure_skip_verify: bool = False
    console_endpoint: str | None = None
    default_project: str | None = None
    default_domain: str | None = None
    default_org: str = ""
    rpc_timeout: float = 30.0
    max_retries: int = 5
    retry_initial_backoff: float = 0.5
    retry_max_backoff: float = 10.0
    auth: AuthConfig | None = None
    http_proxy_url: str | None = None
    proxy_command: tuple[str, ...] = ()
    grpc_options: tuple[tuple[str, Any], ...] = field(default=())
    max_execution_name_length: int = 63

    def __repr__(self) -> str:
        """The fields as the dataclass would show them, the proxy URL's password masked."""
        shown = (
            f"{item.name}="
            + repr(
                _without_password(self.http_proxy_url)
                if item.name == "http_proxy_url"
                else getattr(self, item.name)
            )
            for item in dataclasses.fields(self)
        )
        return f"{type(self).__name__}({', '.join(shown)})"

    def __post_init__(self) -> None:
        for flag in ("insecure", "insecure_skip_verify"):
            require_bool(flag, getattr(self, flag), FlyteConfigError)
        object.__setattr__(self, "endpoint", _normalise_endpoint(self.endpoint))
        object.__setattr__(self, "proxy_command", _arguments("proxy_command", self.proxy_command))
        options = self.grpc_options
        options = options.items() if isinstance(options, Mapping) else options
        if not all(isinstance(o, (tuple, list)) and len(o) == 2 for o in options):
            raise FlyteConfigError("grpc_options must be (name, value) pairs or a mapping")
        object.__setattr__(self, "grpc_options", tuple(tuple(o) for o in options))
        for name in ("rpc_timeout", "retry_initial_backoff", "retry_max_backoff"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise FlyteConfigError(
                    f"{name} must be a positive, finite number of seconds, got {value!r}"
                )
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise FlyteConfigError(f"max_retries must be an integer, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise FlyteConfigError(f"max_retries must be 0 or more, got {self.max_retries}")
        limit = self.max_execution_name_length
        if isinstance(limit, bool) or not isinstance(limit, int) or not 20 <= limit <= 63:
            raise FlyteConfigError(
                f"max_execution_name_length must be an integer from 20 to 63, got {limit!r}"
            )
        if self.auth is not None and not isinstance(self.auth, AuthConfig):
            raise FlyteConfigError(f"auth must be an AuthConfig, got {type(self.auth).__name__}")
        object.__setattr__(self, "proxy_command", tuple(self.proxy_command))
        if not all(isinstance(a, str) and a for a in self.proxy_command):
            raise FlyteConfigError("proxy_command must be a list of non-empty arguments")
        sends_credentials = bool(self.proxy_command) or (
            self.auth is not None and self.auth.sends_credentials
        )
        if self.insecure and sends_credentials:
            if not is_loopback_host(self.host):
                raise FlyteConfigError(
                    f"credentials are never sent over plaintext to a non-loopback host "
                    f"({self.host}); use TLS for {self.endpoint}"
                )
            if self.auth is None or not self.auth.allow_plaintext:
                what = f"auth mode {self.auth.mode!r}" if self.auth else "proxy_command"
                raise FlyteConfigError(
                    f"endpoint {self.endpoint} is insecure (plaintext) but {what} would send "
                    "credentials over it; use TLS, or set AuthConfig(allow_plaintext=True) for a "
                    "loopback sandbox"
                )
        if self.ca_cert_path is not None:
            _check_pem_bundle(self.ca_cert_path)
        if self.console_endpoint:
            from flyte_bridge.console import normalize_console_endpoint

            try:
                normalize_console_endpoint(self.console_endpoint, self.insecure)
            except FlyteInvalidInputError as error:
                raise FlyteConfigError(error.message) from None

    @property
    def host(self) -> str:
        """Host part of the endpoint (without brackets for IPv6)."""
        return split_host_port(self.endpoint)[0]

    @property
    def port(self) -> int | None:
        """Port part of the endpoint, if given."""
        return split_host_port(self.endpoint)[1]

    def replace(self, **changes: Any) -> ClientConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_sandbox(
        cls,
        endpoint: str = "localhost:30080",
        *,
        project: str = "flytesnacks",
        domain: str = "development",
        **overrides: Any,
    ) -> ClientConfig:
        """A config for a local sandbox: plaintext, no auth, ``flytesnacks/development``."""
        values: dict[str, Any] = dict(
            endpoint=endpoint, insecure=True, default_project=project, default_domain=domain
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_flytekit_config(
        cls, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> ClientConfig:
        """Reads flytekit's config file and ``FLYTE_*`` variables, as flytekit does.

        The file is ``path`` if given, else the first of ``$_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE``,
        ``$FLYTECTL_CONFIG``, ``./flytekit.config``, ``~/.flyte/config`` and
        ``~/.flyte/config.yaml`` that exists. YAML files use flytectl's keys (``admin.endpoint``,
        ``admin.authType``...), other files flytekit's INI sections. An environment variable
        (``FLYTE_PLATFORM_URL``, ``FLYTE_CREDENTIALS_CLIENT_ID``...) wins over the file. The
        default project and domain come from ``FLYTE_DEFAULT_PROJECT`` / ``FLYTE_DEFAULT_DOMAIN``
        (as pyflyte), else ``task.project`` / ``task.domain``.

        Credentials in a file that says ``insecure: true`` are sent over plaintext only to a
        loopback endpoint (a local sandbox with auth on, whose printed config looks like that);
        to any other host they are refused, as everywhere.

        ``Pkce`` and ``DeviceFlow`` (flytekit's default is ``Pkce``) are interactive; they give a
        config without credentials, which works against servers with auth off (the sandbox) and
        explains itself with a :class:`~flyte_bridge.errors.FlyteAuthError` otherwise.

        Args:
            path: Config file to read instead of the lookup above.
            **overrides: ClientConfig fields that replace what was read (``rpc_timeout=10``).

        Raises:
            FlyteConfigError: The file cannot be read or a value is malformed.
        """
        source = _ConfigSource.load(path)
        # An auth override replaces the file's auth settings without them being checked.
        values = _values_from_source(source, read_auth="auth" not in overrides)
        values.update(overrides)
        auth = values.get("auth")
        if (
            "auth" not in overrides
            and isinstance(auth, AuthConfig)
            and auth.sends_credentials
            and values.get("insecure")
            and _is_loopback_endpoint(values.get("endpoint"))
        ):
            # flytekit sends these credentials over plaintext too; to a loopback address (a
            # local sandbox with auth on) they never cross a network, so the file is taken as
            # it is. Elsewhere plaintext credentials stay refused.
            values["auth"] = dataclasses.replace(auth, allow_plaintext=True)
        return cls(**values)


def endpoint_source(path: str | os.PathLike[str] | None = None) -> str:
    """Where :meth:`ClientConfig.from_flytekit_config` takes the endpoint from, for a log line:
    ``FLYTE_PLATFORM_URL``, ``admin.endpoint in <file>`` (``[platform] url in <file>``), or
    the default ``localhost:30080`` (saying that no file or no endpoint in it was found).

    Raises:
        FlyteConfigError: The file cannot be read (as ``from_flytekit_config`` would).
    """
    source = _ConfigSource.load(path)
    if source.text(_URL) is not None:
        return source.where(_URL)
    default = ClientConfig.endpoint
    if source.path is None:
        return (
            f"the default {default} (no flytekit config file was found and "
            f"{_URL.env_name} is not set)"
        )
    return f"the default {default} ({source.path} names no endpoint)"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host_port(endpoint: str) -> tuple[str, int | None]:
    """Splits ``host:port`` / ``[v6]:port`` / ``host``."""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif endpoint.count(":") == 1:
        host, _, port = endpoint.partition(":")
    else:
        host, port = endpoint, ""
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise FlyteConfigError(f"endpoint {endpoint!r} has a bad port; expected host:port")
    return host, int(port)


def _is_loopback_endpoint(endpoint: Any) -> bool:
    try:
        return is_loopback_host(split_host_port(_normalise_endpoint(endpoint))[0])
    except FlyteConfigError:
        return False


def _normalise_endpoint(endpoint: Any) -> str:
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise FlyteConfigError(f"endpoint must be a non-empty 'host:port' string, got {endpoint!r}")
    value = endpoint.strip()
    for prefix in ("dns:///", "dns:"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    if "://" in value:
        raise FlyteConfigError(
            f"endpoint {endpoint!r} is a URL; expected a gRPC target 'host:port' (for example "
            "'flyte.example.com:443'), with insecure=True for plaintext"
        )
    if "/" in value or not value or any(character.isspace() for character in value):
        raise FlyteConfigError(f"endpoint {endpoint!r} is not a 'host:port' target")
    host, _port = split_host_port(value)
    if not is_host(host):
        raise FlyteConfigError(
            f"endpoint {endpoint!r}: {host!r} is not a host name or IP address; expected a gRPC "
            "target 'host:port' such as 'flyte.example.com:443' or '[::1]:30080'"
        )
    return value


# Dot-separated labels of letters, digits, '-' and '_' (not at either end); a DNS name or IPv4.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def is_host(host: str) -> bool:
    """A DNS name, an IPv4 address or an IPv6 address (without brackets)."""
    if _HOST_NAME.fullmatch(host):
        return True
    try:
        ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


# Reading flytekit's configuration.

_FLYTECTL_CONFIG_OVERRIDE = "_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE"
_FLYTECTL_CONFIG = "FLYTECTL_CONFIG"


@dataclass(frozen=True)
class _Entry:
    """One setting: its ``FLYTE_<SECTION>_<OPTION>`` env name, INI place and YAML key."""

    section: str
    option: str
    yaml_key: str | None

    @property
    def env_name(self) -> str:
        return f"FLYTE_{self.section.upper()}_{self.option.upper()}"


_URL = _Entry("platform", "url", "admin.endpoint")
_INSECURE = _Entry("platform", "insecure", "admin.insecure")
_SKIP_VERIFY = _Entry("platform", "insecure_skip_verify", "admin.insecureSkipVerify")
_CA_CERT = _Entry("platform", "ca_cert_file_path", "admin.caCertFilePath")
_CONSOLE = _Entry("platform", "console_endpoint", "console.endpoint")
_HTTP_PROXY = _Entry("platform", "http_proxy_url", "admin.httpProxyURL")
_COMMAND = _Entry("credentials", "command", "admin.command")
_PROXY_COMMAND = _Entry("credentials", "proxy_command", "admin.proxyCommand")
_CLIENT_ID = _Entry("credentials", "client_id", "admin.clientId")
_CLIENT_SECRET = _Entry("credentials", "client_secret", None)
_SECRET_LOCATION = _Entry("credentials", "client_secret_location", "admin.clientSecretLocation")
_SECRET_ENV_VAR = _Entry("credentials", "client_secret_env_var", "admin.clientSecretEnvVar")
_SCOPES = _Entry("credentials", "scopes", "admin.scopes")
_AUTH_MODE = _Entry("credentials", "auth_mode", "admin.authType")
_AUDIENCE = _Entry("credentials", "audience", "admin.audience")
_PROJECT = _Entry("local", "project", "task.project")
_DOMAIN = _Entry("local", "domain", "task.domain")
# flytectl (Go) settings that flytekit ignores; read from YAML only.
_TOKEN_URL = _Entry("credentials", "token_url", "admin.tokenUrl")
_AUTH_HEADER = _Entry("credentials", "authorization_header", "admin.authorizationHeader")
_PER_RETRY_TIMEOUT = _Entry("platform", "per_retry_timeout", "admin.perRetryTimeout")
_MAX_RETRIES = _Entry("platform", "max_retries", "admin.maxRetries")


@dataclass
class _ConfigSource:
    """Environment plus the config file flytekit would pick, read the way flytekit reads them."""

    environ: Mapping[str, str]
    path: str | None = None
    yaml: dict[str, Any] | None = None
    ini: Any = None  # configparser.ConfigParser

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> _ConfigSource:
        environ = dict(os.environ)
        chosen = os.fspath(path) if path is not None else _find_config_file(environ)
        source = cls(environ=environ, path=chosen)
        if chosen is None:
            return source
        file = Path(chosen).expanduser()
        if file.is_dir():
            raise FlyteConfigError(
                f"flytekit config file {chosen} is a directory; give the YAML or INI file itself"
            )
        if not file.exists():
            raise FlyteConfigError(f"flytekit config file {chosen} does not exist")
        if file.suffix in (".yaml", ".yml"):
            source.yaml = _read_yaml(file)
        else:
            source.ini = _read_ini(file)
        logger.debug("reading flytekit configuration from %s", file)
        return source

    def raw(self, entry: _Entry, *, env: bool = True) -> Any:
        """The env value if set, else the file's (INI files never fall back to YAML keys)."""
        if env and entry.env_name in self.environ:
            return self.environ[entry.env_name]
        if self.ini is not None:
            if self.ini.has_option(entry.section, entry.option):
                return self.ini.get(entry.section, entry.option)
            return None
        if self.yaml is not None and entry.yaml_key is not None:
            node: Any = self.yaml
            parts = entry.yaml_key.split(".")
            for depth, part in enumerate(parts):
                if node is None:  # an empty section (``admin:``)
                    return None
                if not isinstance(node, dict):
                    # A section given as a value (``admin: host:443``) would hide every key in it.
                    section = ".".join(parts[:depth])
                    raise FlyteConfigError(
                        f"{section} in {self.path} must be a mapping of settings (such as "
                        f"{section}: {{{parts[depth]}: ...}}), got {node!r}"
                    )
                if part not in node:
                    return None
                node = node[part]
            if node is None or node == "" or node == []:
                return None
            return node
        return None

    def where(self, entry: _Entry) -> str:
        if entry.env_name in self.environ:
            return entry.env_name
        if self.ini is not None:
            return f"[{entry.section}] {entry.option} in {self.path}"
        return f"{entry.yaml_key} in {self.path}"

    def text(self, entry: _Entry) -> str | None:
        value = self.raw(entry)
        if value is None:
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise FlyteConfigError(f"{self.where(entry)} must be a string, got {value!r}")
        return str(value).strip() or None

    def boolean(self, entry: _Entry) -> bool | None:
        value = self.raw(entry)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on", "t", "y"):
            return True
        if text in ("false", "0", "no", "off", "f", "n", ""):
            return False
        raise FlyteConfigError(f"{self.where(entry)} is {value!r}; expected true or false")

    def strings(self, entry: _Entry) -> tuple[str, ...] | None:
        value = self.raw(entry)
        if value is None:
            return None
        if isinstance(value, str):
            items: Iterable[Any] = value.split(",")
        elif isinstance(value, list):
            items = value
        else:
            raise FlyteConfigError(
                f"{self.where(entry)} is {value!r}; expected a list or a comma-separated string"
            )
        return tuple(str(item).strip() for item in items if str(item).strip())

    def seconds(self, entry: _Entry) -> float | None:
        value = self.raw(entry)
        if value is None:
            return None
        return _parse_duration(value, self.where(entry))

    def integer(self, entry: _Entry) -> int | None:
        value = self.raw(entry)
        if value is None:
            return None
        try:
            return int(str(value).strip())
        except ValueError:
            raise FlyteConfigError(
                f"{self.where(entry)} is {value!r}; expected an integer"
            ) from None


def _find_config_file(environ: Mapping[str, str]) -> str | None:
    explicit = environ.get(_FLYTECTL_CONFIG_OVERRIDE) or environ.get(_FLYTECTL_CONFIG)
    if explicit:
        if Path(explicit).expanduser().is_file():
            return explicit
        logger.warning("flytectl config file %s does not exist, ignoring it", explicit)
    home = Path.home()
    for candidate in (
        Path("flytekit.config"),
        home / ".flyte" / "config",
        home / ".flyte" / "config.yaml",
    ):
        if candidate.is_file():
            return str(candidate.absolute())
    return None


def _read_yaml(file: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FlyteConfigError(f"cannot read YAML config {file}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise FlyteConfigError(f"YAML config {file} must be a mapping (admin:, console:, ...)")
    return loaded


def _read_ini(file: Path) -> Any:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(file, encoding="utf-8")
    except configparser.Error as exc:
        raise FlyteConfigError(f"cannot read INI config {file}: {exc}") from None
    return parser


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a Go duration string (``"15s"``, ``"1m30s"``, ``"500ms"``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise FlyteConfigError(f"{where} is {value!r}; expected a duration such as 30s or 1m")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


_MODE_NAMES: dict[str, str] = {
    "standard": "Pkce",
    "pkce": "Pkce",
    "deviceflow": "DeviceFlow",
    "basic": "client_credentials",
    "clientcredentials": "client_credentials",
    "clientsecret": "client_credentials",
    "externalprocess": "external_command",
    "externalcommand": "external_command",
    # flyte-bridge's own names, for users who set them in the file or environment.
    "none": "none",
    "bearer": "bearer",
    "apikey": "api_key",
}


def _auth_mode(text: str | None, where: str) -> str | None:
    if text is None:
        return None
    key = text.strip().lower().replace("_", "").replace("-", "")
    if key not in _MODE_NAMES:
        raise FlyteConfigError(
            f"{where} is {text!r}; expected one of ClientSecret (client_credentials, basic), "
            "ExternalCommand (external_process), Pkce (standard) or DeviceFlow"
        )
    return _MODE_NAMES[key]


def _values_from_source(source: _ConfigSource, *, read_auth: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if value is not None:
            values[name] = value

    put("endpoint", source.text(_URL))
    put("insecure", source.boolean(_INSECURE))
    put("insecure_skip_verify", source.boolean(_SKIP_VERIFY))
    put("ca_cert_path", source.text(_CA_CERT))
    put("console_endpoint", source.text(_CONSOLE))
    put("http_proxy_url", source.text(_HTTP_PROXY))
    # pyflyte's FLYTE_DEFAULT_PROJECT / FLYTE_DEFAULT_DOMAIN win over the file's task section.
    put("default_project", source.environ.get("FLYTE_DEFAULT_PROJECT") or source.text(_PROJECT))
    put("default_domain", source.environ.get("FLYTE_DEFAULT_DOMAIN") or source.text(_DOMAIN))
    put("rpc_timeout", source.seconds(_PER_RETRY_TIMEOUT))
    put("max_retries", source.integer(_MAX_RETRIES))
    put("proxy_command", source.strings(_PROXY_COMMAND))
    if read_auth:
        values["auth"] = _auth_from_source(source)
    return values


def _auth_from_source(source: _ConfigSource) -> AuthConfig | None:
    mode = _auth_mode(source.text(_AUTH_MODE), source.where(_AUTH_MODE))
    secret = _client_secret_from_source(source)
    forced_by_secret_source = secret is not None and secret[1]
    client_secret = secret[0] if secret is not None else None
    if forced_by_secret_source:
        # As flytekit: a secret file or secret env var means client credentials.
        mode = "client_credentials"

    common: dict[str, Any] = dict(
        scopes=source.strings(_SCOPES) or (),
        audience=source.text(_AUDIENCE),
        token_endpoint=source.text(_TOKEN_URL),
        header=_header_from(source.text(_AUTH_HEADER)),
    )
    if mode in (None, "Pkce", "DeviceFlow"):
        if mode is None:
            return None
        logger.debug("flytekit config asks for %s; flyte-bridge sends no credentials", mode)
        return AuthConfig(mode="none", interactive_flow_requested=mode)
    if mode == "none":
        return None
    if mode == "client_credentials":
        if client_secret is None:
            raise FlyteConfigError(_missing_secret(source))
        return AuthConfig(
            mode="client_credentials",
            client_id=source.text(_CLIENT_ID),
            client_secret=client_secret,
            **common,
        )
    if mode == "external_command":
        return AuthConfig(mode="external_command", command=source.strings(_COMMAND) or (), **common)
    raise FlyteConfigError(
        f"{source.where(_AUTH_MODE)} asks for {mode!r}, which needs a token that flytekit's "
        "configuration cannot hold; pass auth=AuthConfig(...) to from_flytekit_config"
    )


def _missing_secret(source: _ConfigSource) -> str:
    """Why a client-credentials config read from flytekit's settings has no secret, naming the
    setting that was read and the ones that could hold it."""
    asked = f"client_credentials auth ({source.where(_AUTH_MODE)}) needs a client secret"
    variable = source.text(_SECRET_ENV_VAR)
    if variable is not None:
        return (
            f"{asked}, to be read from the environment variable {variable} "
            f"({source.where(_SECRET_ENV_VAR)}), which is not set in this process"
        )
    return (
        f"{asked}: set {_CLIENT_SECRET.env_name}, or give clientSecretLocation (a file) or "
        f"clientSecretEnvVar (a variable's name) in the config file"
    )


def _header_from(text: str | None) -> str | None:
    return text.lower() if text else None


def _client_secret_from_source(source: _ConfigSource) -> tuple[Secret, bool] | None:
    """The client secret and whether it came from a file or a named env var."""
    location = source.text(_SECRET_LOCATION)
    if location is not None:
        return Secret.from_file(location), True
    variable = source.text(_SECRET_ENV_VAR)
    if variable is not None and os.environ.get(variable):
        return Secret.from_env(variable), True
    value = source.text(_CLIENT_SECRET)
    if value is not None:
        return Secret(value, source=source.where(_CLIENT_SECRET)), False
    return None
