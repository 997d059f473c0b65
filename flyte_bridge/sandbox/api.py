"""Start a sandbox from Python: in-process, on a free port, stopped by a context manager."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flyte_bridge.sandbox.auth_server import AuthSettings, SandboxAuth
    from flyte_bridge.sandbox.faults import FaultInjector, FaultSettings, RpcCounts

DEFAULT_DATA_DIR = Path("~/.flyte-bridge/sandbox")


def default_data_dir() -> Path:
    """The per-user data directory: ``$FLYTE_BRIDGE_SANDBOX_DIR`` or ``~/.flyte-bridge/sandbox``."""
    return Path(os.environ.get("FLYTE_BRIDGE_SANDBOX_DIR", str(DEFAULT_DATA_DIR))).expanduser()


class Sandbox:
    """A running sandbox control plane.

    Use :func:`start_sandbox` to make one. ``endpoint`` is the gRPC address (``127.0.0.1:port``,
    plaintext), ``http_url`` the plain-HTTP endpoint signed URLs point to.
    """

    def __init__(self, server: Any, temporary_dir: tempfile.TemporaryDirectory | None) -> None:
        self._server = server
        self._temporary_dir = temporary_dir

    @property
    def endpoint(self) -> str:
        return self._server.endpoint

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def http_url(self) -> str:
        return self._server.http_url

    @property
    def data_dir(self) -> Path:
        return self._server.data_dir

    @property
    def faults(self) -> FaultInjector:
        """Fault injection of the running server: ``sandbox.faults.set(latency=0.02)``."""
        return self._server.faults

    @property
    def rpc_counts(self) -> RpcCounts:
        """Calls received per method, always counted: ``sandbox.rpc_counts["GetExecution"]``."""
        return self._server.faults.rpc_counts

    @property
    def auth(self) -> SandboxAuth | None:
        """The token endpoint and issuer when auth is on (``auth.token_endpoint``), else None."""
        return self._server.auth

    @property
    def ca_cert_path(self) -> Path | None:
        """The certificate clients should trust when the sandbox serves TLS, else None."""
        tls = self._server.tls
        return tls.cert_path if tls is not None else None

    @property
    def server(self) -> Any:
        """The :class:`~flyte_bridge.sandbox.server.SandboxServer` behind this handle."""
        return self._server

    def flytekit_config(self, project: str = "flytesnacks", domain: str = "development") -> str:
        """A flytekit config file (YAML) that points flytekit at this sandbox."""
        admin = f"  endpoint: dns:///{self.endpoint}\n"
        if self.ca_cert_path is None:
            admin += "  insecure: true\n"
        else:
            admin += f"  insecure: false\n  caCertFilePath: {self.ca_cert_path}\n"
        if self.auth is not None:
            # The secret is never written out; flytekit reads it from the environment.
            admin += (
                f"  authType: ClientSecret\n  clientId: {self.auth.settings.client_id}\n"
                "  # client secret: set FLYTE_CREDENTIALS_CLIENT_SECRET\n"
            )
        console = f"console:\n  endpoint: {self.http_url}\n"
        defaults = f"# pyflyte defaults: --project {project} --domain {domain}\n"
        return "admin:\n" + admin + console + defaults

    def write_flytekit_config(self, path: str | os.PathLike[str]) -> Path:
        """Writes :meth:`flytekit_config` to ``path`` and returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.flytekit_config())
        return target

    def stop(self) -> None:
        """Stops the server and the engine, unlocks the data directory, deletes a temporary one."""
        self._server.stop()
        if self._temporary_dir is not None:
            self._temporary_dir.cleanup()
            self._temporary_dir = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Sandbox(endpoint={self.endpoint!r}, data_dir={str(self.data_dir)!r})"


def _sandbox_auth(settings: AuthSettings | None) -> SandboxAuth | None:
    """The auth server for ``settings``; its module (and cryptography) loads only when asked."""
    if settings is None:
        return None
    from flyte_bridge.sandbox.auth_server import SandboxAuth

    return SandboxAuth(settings)


def start_sandbox(
    port: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    temporary: bool = False,
    http_port: int = 0,
    engine: Any = None,
    faults: FaultSettings | Mapping[str, Any] | None = None,
    auth: AuthSettings | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
    max_inline_data_bytes: int | None = None,
    literal_offloading_min_mb: int | None = None,
    literal_offloading_max_mb: int | None = None,
) -> Sandbox:
    """Starts a sandbox control plane in this process and returns once it answers.

    Args:
        port: gRPC port on 127.0.0.1; 0 (the default) picks a free one.
        data_dir: Where the database and the blob store live; defaults to the per-user directory
            (see :func:`default_data_dir`), or a new temporary directory if ``temporary``.
            The sandbox locks it until it stops, so that no second sandbox runs its executions.
        temporary: Use a temporary data directory that :meth:`Sandbox.stop` deletes.
        http_port: Port of the plain-HTTP endpoint for signed URLs and logs; 0 picks one.
        engine: An executor to use instead of the local executor (tests of the admin side).
        faults: Faults to inject from the start (:class:`~flyte_bridge.sandbox.faults.
            FaultSettings` or a mapping of its fields); change them later with
            ``sandbox.faults``. None injects none.
        auth: Switches auth on: a client-credentials token endpoint, and a bearer token
            required on every RPC (:class:`~flyte_bridge.sandbox.auth_server.AuthSettings`).
        tls_cert: PEM certificate to serve gRPC and the token endpoint over TLS (with
            ``tls_key``).
        tls_key: PEM private key of ``tls_cert``.
        max_inline_data_bytes: GetExecutionData, GetNodeExecutionData and GetTaskExecutionData
            return a stored LiteralMap inline only when it is smaller than this; above it,
            ``full_inputs``/``full_outputs`` are empty and clients follow the ``UrlBlob`` link.
            Defaults to flyteadmin's ``maxSizeInBytes`` (2 MiB); 0 inlines everything.
        literal_offloading_min_mb: Switches propeller's literal offloading on: task outputs of
            at least this many MiB are written apart and passed as offloaded literals. Off by
            default, as in Flyte's release configurations; propeller's own default is 10.
        literal_offloading_max_mb: Task outputs of this many MiB or more fail the task
            (propeller's default 1000); needs ``literal_offloading_min_mb``.

    A start that fails leaves no data directory behind that it created, and removes the
    database, store and lock file it added to an existing one; what was there before stays.

    Raises:
        FlyteConfigError: A port, a data limit, a fault setting or the TLS files are not usable.
        DataDirInUseError: Another sandbox, in this process or another, serves ``data_dir``
            (:mod:`~flyte_bridge.sandbox.exclusive`); a subclass of FlyteConfigError.
        PortUnavailableError: ``port`` or ``http_port`` is in use or not allowed; a subclass
            of FlyteConfigError.
        SandboxDatabaseError: ``data_dir`` holds a ``sandbox.db`` that is corrupt or another
            program's (left as it was); a subclass of FlyteConfigError.

    Returns:
        The running :class:`Sandbox`; use it as a context manager or call ``stop()``.
    """
    from flyte_bridge.sandbox.data_limits import data_limits
    from flyte_bridge.sandbox.exclusive import check_port_number
    from flyte_bridge.sandbox.faults import FaultInjector, fault_settings
    from flyte_bridge.sandbox.server import SandboxServer
    from flyte_bridge.sandbox.tls import tls_files

    check_port_number("port", port)
    check_port_number("http_port", http_port)
    limits = data_limits(
        max_inline_data_bytes, literal_offloading_min_mb, literal_offloading_max_mb
    )
    injector = FaultInjector(fault_settings(faults))
    tls = tls_files(tls_cert, tls_key)
    sandbox_auth = _sandbox_auth(auth)
    temporary_dir = None
    if data_dir is None:
        if temporary:
            temporary_dir = tempfile.TemporaryDirectory(prefix="flyte-bridge-sandbox-")
            data_dir = temporary_dir.name
        else:
            data_dir = default_data_dir()
    try:
        # A failed start (a port taken, the directory in use) removes what it created for
        # ``data_dir`` itself, and nothing that was there before.
        server = SandboxServer(
            Path(data_dir),
            port=port,
            http_port=http_port,
            engine=engine,
            faults=injector,
            auth=sandbox_auth,
            tls=tls,
            data_limits=limits,
        )
        server.start()
    except BaseException:
        if temporary_dir is not None:
            temporary_dir.cleanup()
        raise
    return Sandbox(server, temporary_dir)
