"""The sandbox's gRPC server: flyteidl's admin-side services over one insecure port.

Every handler runs inside :func:`_guard`, which turns an :class:`AdminError` into its status code
and any other exception into INTERNAL. flytekit treats UNKNOWN and UNAUTHENTICATED as "log in
again" and would start a browser flow, so the server never answers with either.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import os
import shutil
import sys
import threading
import types
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from flyteidl.admin import (
    common_pb2,
    event_pb2,
    execution_pb2,
    launch_plan_pb2,
    project_pb2,
    signal_pb2,
    task_pb2,
    version_pb2,
    workflow_pb2,
)
from flyteidl.core import identifier_pb2
from flyteidl.service import auth_pb2, identity_pb2

from flyte_bridge.sandbox.data_limits import DataLimits
from flyte_bridge.sandbox.dataproxy import DataProxy, HttpEndpoint, UrlSigner, download_link
from flyte_bridge.sandbox.db import Database
from flyte_bridge.sandbox.exclusive import (
    LOCK_FILE,
    DataDirInUseError,
    DataDirLock,
    PortUnavailableError,
    check_port_free,
)
from flyte_bridge.sandbox.executions import Executions
from flyte_bridge.sandbox.faults import FaultInjector
from flyte_bridge.sandbox.metrics import ExecutionMetrics
from flyte_bridge.sandbox.projects import Projects
from flyte_bridge.sandbox.registry import LAUNCH_PLAN, TASK, WORKFLOW, Registry, check_identifier
from flyte_bridge.sandbox.services import SERVICES, rpc_names
from flyte_bridge.sandbox.signals import Signals
from flyte_bridge.sandbox.status import AdminError, missing
from flyte_bridge.sandbox.storage import DataStore

logger = logging.getLogger(__name__)

DEFAULT_PORT = 30080
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_MAX_STATUS_MESSAGE = 32_000
VERSION = "v1.16.8-flyte-bridge-sandbox"

# flytekit pings every 30 s even when idle; a default grpc server answers that with GOAWAY.
SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_metadata_size", 64 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.so_reuseport", 0),
]


def _guard(rpc: str, method: Any) -> Any:
    """Wraps one handler so that it can only answer with the codes flyteadmin uses."""

    @functools.wraps(method)
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(request, context)
        except AdminError as err:
            logger.debug("%s refused: %s %s", rpc, err.code.name, err.message)
            context.abort(err.code, err.message[:_MAX_STATUS_MESSAGE])
        except Exception as err:  # noqa: BLE001 - the boundary where every failure gets a code
            logger.exception("%s failed", rpc)
            context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {rpc}: {type(err).__name__}: {err}"
            )

    return handler


def _unimplemented(rpc: str) -> Any:
    """UNIMPLEMENTED for the RPCs the sandbox lacks: matchable attributes (project, domain and
    workflow attributes), description entities and ListMatchableAttributes."""

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is not implemented by the sandbox")

    return handler


def _add_service(server: grpc.Server, service: str, impl: object) -> None:
    """Registers ``impl``'s methods for every RPC of ``service`` (a key of ``SERVICES``)."""
    add_to_server, base = SERVICES[service]
    handlers = {}
    for rpc in rpc_names(base):
        method = getattr(impl, rpc, None)
        handlers[rpc] = _guard(rpc, method) if method else _unimplemented(rpc)
    add_to_server(types.SimpleNamespace(**handlers), server)


class AuthMetadata:
    """Harmless AuthMetadataService answers; the sandbox never asks a client to log in."""

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url

    def GetPublicClientConfig(self, request, context):
        return auth_pb2.PublicClientAuthConfigResponse(
            client_id="flytectl",
            redirect_uri="http://localhost:53593/callback",
            scopes=["all", "offline"],
            authorization_metadata_key="flyte-authorization",
        )

    def GetOAuth2Metadata(self, request, context):
        url = self.public_url
        return auth_pb2.OAuth2MetadataResponse(
            issuer=url,
            authorization_endpoint=f"{url}/oauth2/authorize",
            token_endpoint=f"{url}/oauth2/token",
            jwks_uri=f"{url}/oauth2/jwks",
            code_challenge_methods_supported=["S256"],
            response_types_supported=["code", "token", "code token"],
            grant_types_supported=["client_credentials", "refresh_token", "authorization_code"],
            scopes_supported=["all"],
            token_endpoint_auth_methods_supported=["client_secret_basic"],
        )


class Identity:
    """IdentityService: a fixed local identity, the OS user."""

    def UserInfo(self, request, context):
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in some containers
            user = "sandbox"
        return identity_pb2.UserInfoResponse(subject=user, name=user, preferred_username=user)


class SandboxServer:
    """The whole control plane: database, store, services, HTTP endpoint and engine.

    Args:
        data_dir: Directory holding ``sandbox.db`` and the blob store (``store/``).
        port: gRPC port on 127.0.0.1; 0 picks a free one.
        http_port: Port of the plain-HTTP endpoint for signed URLs and logs; 0 picks one.
        engine: The executor; by default the local executor, if it can be imported.
        max_workers: Worker threads for calls no fault holds; the injector's
            ``max_held_calls`` are added for those it holds.
        faults: Call counting and fault injection (none injected by default).
        auth: Token endpoint and bearer-token check (``SandboxAuth``); None serves without auth.
        tls: Certificate and key (``TlsFiles``); None serves plaintext.
        data_limits: flyteadmin's inline limit for Get*Data and propeller's literal offloading
            (:class:`~flyte_bridge.sandbox.data_limits.DataLimits`); None keeps their defaults.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = DEFAULT_PORT,
        http_port: int = 0,
        engine: Any = None,
        projects: tuple[str, ...] = ("flytesnacks",),
        max_workers: int = 32,
        faults: FaultInjector | None = None,
        auth: Any = None,
        tls: Any = None,
        data_limits: DataLimits | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._new_paths = _NewPaths(self.data_dir)
        if self._new_paths.top is not None:
            # No sandbox can hold a directory that does not exist yet: check the ports first, so
            # that a taken one fails the start before anything is created.
            _check_ports(port, http_port)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # Before the database opens: a second sandbox must not touch the first one's records.
            self._lock = DataDirLock.acquire(self.data_dir)
        except DataDirInUseError:
            raise  # another sandbox's directory: nothing in it is this start's to remove
        except BaseException:
            self._new_paths.remove()
            raise
        try:
            if self._new_paths.top is None:
                # After the lock, so that a second start on a directory in use says so; before
                # the database, so that a taken port leaves nothing behind.
                _check_ports(port, http_port)
            self._open(projects, data_limits)
        except BaseException:
            try:
                db = getattr(self, "db", None)
                if db is not None:
                    with contextlib.suppress(Exception):
                        db.close()
                self._new_paths.remove()
            finally:
                self._lock.release()
            raise
        self._http: HttpEndpoint | None = None
        self._requested_port = port
        self._requested_http_port = http_port
        self._max_workers = max_workers
        self._engine = engine
        self._grpc: grpc.Server | None = None
        self._stopped = threading.Event()
        self.faults = faults or FaultInjector()
        self.auth = auth
        self.tls = tls
        self.port = 0
        self.http_port = 0

    def _open(self, projects: tuple[str, ...], data_limits: DataLimits | None) -> None:
        """Opens the database and the store and builds the components on them."""
        self.db = Database(self.data_dir / "sandbox.db")
        self.store = DataStore(self.data_dir / "store")
        self.projects = Projects(self.db)
        self.projects.seed(projects)
        self.registry = Registry(self.db, self.projects)
        self.signals = Signals(self.db)
        self.data_limits = data_limits or DataLimits()
        self.signer = UrlSigner()
        self.executions = Executions(
            self.db,
            self.store,
            self.projects,
            self.registry,
            self.signals,
            data_limits=self.data_limits,
            download_link=functools.partial(download_link, self.signer, self.store),
        )
        self.dataproxy = DataProxy(self.db, self.store, self.signer, self.executions)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        """Binds both ports and starts serving.

        A start that fails stops the server and removes what this server created in and above
        its data directory (see :class:`_NewPaths`); what was there before stays.

        Raises:
            PortUnavailableError: The gRPC or HTTP port asked for is in use or not allowed.
        """
        try:
            self._serve()
        except BaseException:
            self._shutdown(2.0, discard=True)
            raise

    def _serve(self) -> None:
        self._grpc = grpc.server(
            # Calls held by faults get threads of their own, so that the others are answered.
            futures.ThreadPoolExecutor(
                max_workers=self._max_workers + self.faults.max_held_calls,
                thread_name_prefix="admin",
            ),
            options=SERVER_OPTIONS,
            interceptors=[self.faults] + ([self.auth.interceptor] if self.auth else []),
        )
        requested = self._requested_port
        check_port_free("gRPC", requested)
        address = f"127.0.0.1:{requested}"
        try:
            if self.tls is not None:
                self.port = self._grpc.add_secure_port(address, self.tls.server_credentials())
            else:
                self.port = self._grpc.add_insecure_port(address)
        except RuntimeError:  # grpc's "Failed to bind": taken between the check and the bind
            self.port = 0
        if not self.port:
            raise PortUnavailableError("gRPC", requested, "gRPC could not bind it")
        self.faults.bind(self.port)
        check_port_free("HTTP", self._requested_http_port)
        try:
            self._http = HttpEndpoint(
                self.store, self.signer, self._requested_http_port, console=self._console_page
            )
        except OSError as err:
            reason = err.strerror or str(err)
            raise PortUnavailableError("HTTP", self._requested_http_port, reason) from None
        self.http_port = self._http.port
        self._lock.describe(endpoint=self.endpoint, http_url=self.http_url)
        self._http.start()
        if self.auth is not None:
            self.auth.start(self.tls)
        self.executions.engine = self._engine or self._default_engine()
        # Before serving, so that no call sees an execution between the two processes' hands.
        resumed, ended = self.executions.resume_unfinished()
        if resumed or ended:
            logger.warning(
                "resumed %s executions left in flight by a previous run; ended %s", resumed, ended
            )
        auth_metadata = (
            self.auth.metadata_service() if self.auth else AuthMetadata(f"http://{self.endpoint}")
        )
        _add_service(self._grpc, "AdminService", AdminService(self))
        _add_service(self._grpc, "SignalService", SignalService(self))
        _add_service(self._grpc, "DataProxyService", DataProxyService(self.dataproxy))
        _add_service(self._grpc, "AuthMetadataService", auth_metadata)
        _add_service(self._grpc, "IdentityService", Identity())
        self._grpc.start()
        logger.info("sandbox serving on %s (data in %s)", self.endpoint, self.data_dir)

    def stop(self, grace: float = 2.0) -> None:
        """Stops serving, the engine and the database, then unlocks the data directory.

        Safe to call twice.
        """
        self._shutdown(grace, discard=False)

    def _shutdown(self, grace: float, discard: bool) -> None:
        """Stops everything; with ``discard`` (a failed start), removes what this server created
        before it unlocks the data directory, so that no other sandbox is in it meanwhile."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self.faults.shutdown()
            if self._grpc is not None:
                self._grpc.stop(grace).wait(grace + 1)
            engine = self.executions.engine
            if engine is not None:
                try:
                    engine.shutdown(timeout=10.0)
                except Exception:  # noqa: BLE001 - stopping must go on
                    logger.exception("the executor did not shut down cleanly")
            if self._http is not None:
                self._http.stop()
            if self.auth is not None:
                self.auth.stop()
            self.db.close()
        finally:
            try:
                if discard:
                    self._new_paths.remove()
            finally:
                # Last: the task processes are gone and the database closed before another may
                # open.
                self._lock.release()

    def _console_page(self, path: str) -> tuple[int, bytes]:
        """The HTML page of a console link (an execution), rendered from the records."""
        from flyte_bridge.sandbox import console

        status, body = console.render(self.executions, path)
        return status, console.page(body)

    def _default_engine(self) -> Any:
        """The local executor, or None while it cannot be imported."""
        try:
            from flyte_bridge.sandbox.executor import LocalExecutor
        except ImportError:
            logger.warning("the local executor is not available: executions will not run")
            return None
        try:
            return LocalExecutor(
                self.executions,
                self.store,
                python_executable=sys.executable,
                platform_endpoint=self.endpoint,
                http_url=self.http_url,
                task_environment=self.data_limits.task_environment(),
            )
        except TypeError:
            return LocalExecutor(self.executions, self.store, python_executable=sys.executable)

    def wait(self) -> None:
        if self._grpc is not None:
            self._grpc.wait_for_termination()


class AdminService:
    """AdminService handlers: thin translations from requests to the sandbox's components."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.projects = sandbox.projects
        self.registry = sandbox.registry
        self.executions = sandbox.executions
        self.metrics = ExecutionMetrics(sandbox.executions)

    def GetVersion(self, request, context):
        return version_pb2.GetVersionResponse(
            control_plane_version=version_pb2.Version(Version=VERSION, Build="sandbox")
        )

    def GetDomains(self, request, context):
        return project_pb2.GetDomainsResponse(domains=self.projects.domain_list())

    def ListProjects(self, request, context):
        return self.projects.list(request)

    def RegisterProject(self, request, context):
        if not request.HasField("project"):
            raise AdminError(grpc.StatusCode.INVALID_ARGUMENT, "missing project")
        self.projects.register(request.project)
        return project_pb2.ProjectRegisterResponse()

    def GetProject(self, request, context):
        return self.projects.get(request.id)

    def UpdateProject(self, request, context):
        self.projects.update(request)
        return project_pb2.ProjectUpdateResponse()

    # registration

    def CreateTask(self, request, context):
        self.registry.create_task(request)
        return task_pb2.TaskCreateResponse()

    def GetTask(self, request, context):
        # flyteadmin only logs a malformed id here and answers NOT_FOUND from the lookup.
        return self.registry.get_task(_filled(request.id, TASK))

    def ListTasks(self, request, context):
        return self.registry.list_tasks(request)

    def ListTaskIds(self, request, context):
        return self.registry.list_ids(TASK, request)

    def CreateWorkflow(self, request, context):
        self.registry.create_workflow(request)
        return workflow_pb2.WorkflowCreateResponse()

    def GetWorkflow(self, request, context):
        return self.registry.get_workflow(_filled(request.id, WORKFLOW))

    def ListWorkflows(self, request, context):
        return self.registry.list_workflows(request)

    def ListWorkflowIds(self, request, context):
        return self.registry.list_ids(WORKFLOW, request)

    def CreateLaunchPlan(self, request, context):
        self.registry.create_launch_plan(request)
        return launch_plan_pb2.LaunchPlanCreateResponse()

    def GetLaunchPlan(self, request, context):
        return self.registry.get_launch_plan(check_identifier(request.id, LAUNCH_PLAN))

    def GetActiveLaunchPlan(self, request, context):
        return self.registry.get_active_launch_plan(request)

    def ListActiveLaunchPlans(self, request, context):
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        return self.registry.list_active_launch_plans(request)

    def ListLaunchPlans(self, request, context):
        return self.registry.list_launch_plans(request)

    def ListLaunchPlanIds(self, request, context):
        return self.registry.list_ids(LAUNCH_PLAN, request)

    def UpdateLaunchPlan(self, request, context):
        self.registry.update_launch_plan(request)
        return launch_plan_pb2.LaunchPlanUpdateResponse()

    def GetNamedEntity(self, request, context):
        return self.registry.get_named_entity(request)

    def UpdateNamedEntity(self, request, context):
        self.registry.update_named_entity(request)
        return common_pb2.NamedEntityUpdateResponse()

    def ListNamedEntities(self, request, context):
        return self.registry.list_named_entities(request)

    # executions

    def CreateExecution(self, request, context):
        return execution_pb2.ExecutionCreateResponse(id=self.executions.create_execution(request))

    def RelaunchExecution(self, request, context):
        return execution_pb2.ExecutionCreateResponse(id=self.executions.relaunch(request))

    def RecoverExecution(self, request, context):
        return execution_pb2.ExecutionCreateResponse(id=self.executions.recover(request))

    def GetExecution(self, request, context):
        return self.executions.get_execution(request.id)

    def GetExecutionData(self, request, context):
        return self.executions.get_execution_data(request.id)

    def ListExecutions(self, request, context):
        return self.executions.list_executions(request)

    def TerminateExecution(self, request, context):
        self.executions.terminate(request.id, request.cause)
        return execution_pb2.ExecutionTerminateResponse()

    def UpdateExecution(self, request, context):
        self.executions.update(request)
        return execution_pb2.ExecutionUpdateResponse()

    def GetNodeExecution(self, request, context):
        return self.executions.get_node_execution(request.id)

    def GetNodeExecutionData(self, request, context):
        return self.executions.get_node_execution_data(request.id)

    def GetDynamicNodeWorkflow(self, request, context):
        return self.executions.get_dynamic_node_workflow(request.id)

    def ListNodeExecutions(self, request, context):
        return self.executions.list_node_executions_page(request)

    def ListNodeExecutionsForTask(self, request, context):
        return self.executions.list_node_executions_for_task(request)

    def GetTaskExecution(self, request, context):
        return self.executions.get_task_execution(request.id)

    def ListTaskExecutions(self, request, context):
        return self.executions.list_task_executions(request)

    def GetTaskExecutionData(self, request, context):
        return self.executions.get_task_execution_data(request.id)

    def GetExecutionMetrics(self, request, context):
        return self.metrics.get(request)

    # events, as propeller would send them

    def CreateWorkflowEvent(self, request, context):
        self.executions.record_workflow_event(request.event)
        return event_pb2.WorkflowExecutionEventResponse()

    def CreateNodeEvent(self, request, context):
        self.executions.record_node_event(request.event)
        return event_pb2.NodeExecutionEventResponse()

    def CreateTaskEvent(self, request, context):
        self.executions.record_task_event(request.event)
        return event_pb2.TaskExecutionEventResponse()


def _check_ports(port: int, http_port: int) -> None:
    """Raises PortUnavailableError unless both ports can be bound on 127.0.0.1 now."""
    check_port_free("gRPC", port)
    check_port_free("HTTP", http_port)


_DATABASE = "sandbox.db"
_DATABASE_SIDE_FILES = ("sandbox.db-wal", "sandbox.db-shm", "sandbox.db-journal")
_STORE = "store"


class _NewPaths:
    """What a sandbox start is about to create for its data directory, noted before it does.

    If the directory does not exist, that is the highest of it and its missing parents, removed
    whole by :meth:`remove`. If it exists, that is those of the sandbox's own entries (database,
    store, lock file) not in it yet; everything else in it, and any entry already there, is left
    alone. The database's WAL side files count only with a new database: those of an existing
    one may hold its last writes.
    """

    def __init__(self, data_dir: Path) -> None:
        self.top: Path | None = None
        for path in (data_dir, *data_dir.parents):
            if os.path.lexists(path):
                break
            self.top = path
        self.entries: list[Path] = []
        if self.top is None:
            names = [_STORE, LOCK_FILE]
            if not os.path.lexists(data_dir / _DATABASE):
                names += [_DATABASE, *_DATABASE_SIDE_FILES]
            self.entries = [data_dir / n for n in names if not os.path.lexists(data_dir / n)]

    def remove(self) -> None:
        """Removes what was noted, where it exists now; logs what it cannot remove."""
        for path in [self.top] if self.top is not None else self.entries:
            if not os.path.lexists(path):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as err:
                logger.warning("cannot remove %s after the failed start: %s", path, err)
            else:
                logger.debug("removed %s after the failed start", path)


def _filled(identifier: identifier_pb2.Identifier, resource_type: int):
    """The id with an unspecified resource type filled in, as the RPC layer does."""
    if identifier.resource_type == identifier_pb2.UNSPECIFIED:
        filled = identifier_pb2.Identifier()
        filled.CopyFrom(identifier)
        filled.resource_type = resource_type
        return filled
    return identifier


class SignalService:
    """SignalService handlers; SetSignal wakes the gate waiting on the signal."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox

    def GetOrCreateSignal(self, request, context):
        return self.sandbox.signals.get_or_create(request.id, request.type)

    def ListSignals(self, request, context):
        return self.sandbox.signals.list(request)

    def SetSignal(self, request, context):
        self.sandbox.signals.set(request.id, request.value)
        engine = self.sandbox.executions.engine
        if engine is not None:
            engine.notify_signal_set(request.id)
        return signal_pb2.SignalSetResponse()


class DataProxyService:
    """DataProxyService handlers."""

    def __init__(self, dataproxy: DataProxy) -> None:
        self.dataproxy = dataproxy

    def CreateUploadLocation(self, request, context):
        return self.dataproxy.create_upload_location(request)

    def CreateDownloadLocation(self, request, context):
        return self.dataproxy.create_download_location(request)

    def CreateDownloadLink(self, request, context):
        return self.dataproxy.create_download_link(request)

    def GetData(self, request, context):
        return self.dataproxy.get_data(request)
