"""The sandbox's local executor: plays flytepropeller for the embedded control plane.

It walks a compiled workflow, runs task nodes as local ``pyflyte-execute`` processes, waits on
gates, evaluates branches, runs subworkflows in place and launch plans as child executions, and
reports every phase change to the admin side as the flyteidl events propeller would send, so that
the closures clients read are built exactly as flyteadmin builds them.

Concurrency model: every execution has a mailbox. Everything that changes an execution's state
(start, a process exiting, a timer firing, a signal being set, a child execution finishing, an
abort) is posted to the mailbox and handled one message at a time on a small control pool, so no
execution is ever touched by two threads at once and calls into the admin side never hold a lock
another execution needs. Task processes are waited on by a bounded pool whose size caps how many
task processes run at once; timers (sleep gates, gate and node timeouts) share one thread.

Deviations from propeller, on purpose:
- Array nodes (map tasks) run as described in ``array_nodes.py``, which lists their own
  deviations.
- Dynamic nodes (``futures.pb``) run as described in ``dynamic_nodes.py``, which lists their own
  deviations.
- Non-Python task types (SQL, plugins, raw containers) fail with ``PluginNotFound``.
- Caching (``cache=True``) is ignored: every task runs.
- Task resources, secrets, pod templates and the interruptible flag are ignored: tasks run as
  local processes of the server's user, with the server's environment minus its Flyte settings.
- Literal offloading is off unless the sandbox starts with it (``task_environment`` then carries
  ``_F_L_MIN_SIZE_MB``); offloaded literals are passed through unchanged and read only where the
  engine must look inside: attribute paths and branch conditions.
- Gate timeouts fail the node at the timeout (``RetriesExhausted|TimeoutExpired``); there is no
  second, TIMED_OUT deadline for gates.
- Subworkflow and branch nodes are never retried, so their children's retry group is always "0".
- Shutting the executor down (or killing the sandbox) stops task processes without reporting
  events; when the sandbox starts again on the same data directory, the admin side hands every
  execution left in flight to :meth:`LocalExecutor.resume`, which continues it from its records
  as ``resume.py`` describes. Unlike propeller, which finds its pods still running, a task
  attempt that was running is marked FAILED (``SandboxRestarted``, a system error) and retried
  against the system-retry budget; dynamic and array nodes in flight fail with a
  ``SandboxRestarted`` error instead of resuming.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import heapq
import itertools
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flyteidl.admin import execution_pb2 as admin_execution_pb2
from flyteidl.core import (
    catalog_pb2,
    compiler_pb2,
    execution_pb2,
    identifier_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)
from flyteidl.event import event_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from flyte_bridge.sandbox import array_nodes, dynamic_nodes, task_runner
from flyte_bridge.sandbox.bindings import (
    START_NODE,
    BindingError,
    evaluate_condition,
    resolve_bindings,
    upstream_node_ids,
)
from flyte_bridge.sandbox.interfaces import ControlPlane, RecordedProgress
from flyte_bridge.sandbox.resume import Resumption, kill_orphaned_tasks, record_task_process
from flyte_bridge.sandbox.storage import DataStore

logger = logging.getLogger(__name__)

END_NODE = "end-node"
PRODUCER_ID = "flyte-bridge-sandbox"
DEFAULT_SYSTEM_RETRIES = 3
DEFAULT_MAX_PARALLEL_TASKS = 16

NodePhase = execution_pb2.NodeExecution.Phase
TaskPhase = execution_pb2.TaskExecution.Phase
WorkflowPhase = execution_pb2.WorkflowExecution.Phase
ErrorKind = execution_pb2.ExecutionError.ErrorKind

_DONE_NODE_PHASES = {
    NodePhase.SUCCEEDED,
    NodePhase.FAILED,
    NodePhase.ABORTED,
    NodePhase.SKIPPED,
    NodePhase.TIMED_OUT,
    NodePhase.RECOVERED,
}
_SUCCESS_NODE_PHASES = {NodePhase.SUCCEEDED, NodePhase.RECOVERED}
_TERMINAL_WORKFLOW_PHASES = {
    WorkflowPhase.SUCCEEDED,
    WorkflowPhase.FAILED,
    WorkflowPhase.ABORTED,
    WorkflowPhase.TIMED_OUT,
}
_BASE32_TO_FLYTE = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "abcdefghijklmnopqrstuvwxyz123456"
)


def _fnv1a(data: bytes, bits: int) -> bytes:
    if bits == 32:
        value, prime, mask = 0x811C9DC5, 0x01000193, 0xFFFFFFFF
    else:
        value, prime, mask = 0xCBF29CE484222325, 0x100000001B3, 0xFFFFFFFFFFFFFFFF
    for byte in data:
        value = ((value ^ byte) * prime) & mask
    return value.to_bytes(bits // 8, "big")


def fixed_length_id(text: str, bits: int = 32) -> str:
    """Propeller's short form of a long id: ``f`` + base32 of its FNV-1a hash."""
    encoded = base64.b32encode(_fnv1a(text.encode(), bits)).decode().rstrip("=")
    return "f" + encoded.translate(_BASE32_TO_FLYTE)


def child_node_id(parent_unique_id: str, attempt: int, spec_node_id: str) -> str:
    """The unique id of a node nested in a subworkflow or branch (propeller's rule)."""
    unique_id = f"{parent_unique_id}-{attempt}-{spec_node_id}"
    return unique_id if len(unique_id) <= 20 else fixed_length_id(unique_id)


def child_execution_name(execution_name: str, node_unique_id: str, attempt: int) -> str:
    """The name of the child execution a launch-plan node starts (propeller's rule)."""
    name = f"{execution_name}-{node_unique_id}-{attempt}"
    return name if len(name) <= 20 else fixed_length_id(name, bits=64)


def _now() -> Timestamp:
    timestamp = Timestamp()
    timestamp.GetCurrentTime()
    return timestamp


def _key(identifier: Any) -> tuple[str, ...]:
    return (
        identifier.project,
        identifier.domain,
        identifier.name,
        getattr(identifier, "version", ""),
    )


def _error(code: str, message: str, kind: int = ErrorKind.USER) -> execution_pb2.ExecutionError:
    return task_runner.make_error(code, message, kind)


def _format_duration(seconds: float) -> str:
    """A duration written as propeller's Go code writes one in its messages: 1h0m0s, 1m30s, 1.5s."""
    if seconds <= 0:
        return "0s"
    if seconds < 1e-3:
        return _trimmed(seconds * 1e6) + "µs"
    if seconds < 1:
        return _trimmed(seconds * 1e3) + "ms"
    whole_minutes, remainder = divmod(round(seconds, 6), 60)
    hours, minutes = divmod(int(whole_minutes), 60)
    text = _trimmed(remainder) + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def _trimmed(value: float) -> str:
    """A number with up to six decimals and no trailing zeros: 1.5, 90, 0.25."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


class _Timers:
    """One thread running callbacks at given monotonic times."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _TimerHandle]] = []
        self._condition = threading.Condition()
        self._counter = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="flyte-engine-timers", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _TimerHandle:
        handle = _TimerHandle(callback)
        with self._condition:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), handle))
            self._condition.notify()
        return handle

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                try:
                    handle.callback()
                except Exception:
                    logger.exception("timer callback failed")


@dataclasses.dataclass(eq=False)
class _TimerHandle:
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class _Mailbox:
    """Runs posted handlers one at a time, in order, on a shared pool."""

    def __init__(self, pool: ThreadPoolExecutor, on_error: Callable[[BaseException], None]) -> None:
        self._pool = pool
        self._on_error = on_error
        self._queue: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._lock = threading.Lock()
        self._scheduled = False
        self.closed = False

    def post(self, handler: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self.closed:
                return
            self._queue.append((handler, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._pool.submit(self._drain)
        except RuntimeError:
            logger.debug("engine is shut down; dropped %s", handler.__name__)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue or self.closed:
                    self._scheduled = False
                    return
                handler, args = self._queue.popleft()
            try:
                handler(*args)
            except Exception as error:
                logger.exception("engine handler %s failed", handler.__name__)
                try:
                    self._on_error(error)
                except Exception:
                    logger.exception("could not fail the execution after an engine error")


@dataclasses.dataclass(eq=False)
class _Attempt:
    """One attempt of a task node: its number, paths and process."""

    number: int
    paths: task_runner.AttemptPaths
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    process: task_runner.TaskProcess | None = None
    cancelled: bool = False
    started: bool = False
    log_uri: str = ""


@dataclasses.dataclass(eq=False)
class _NodeRun:
    """The state of one node execution."""

    scope: _Scope
    node: workflow_pb2.Node
    unique_id: str
    parent: _NodeRun | None
    on_done: Callable[[_NodeRun], None]
    phase: int = NodePhase.UNDEFINED
    inputs_uri: str = ""
    output_uri: str = ""
    error: execution_pb2.ExecutionError | None = None
    inputs: literals_pb2.LiteralMap | None = None
    attempts: list[_Attempt] = dataclasses.field(default_factory=list)
    user_failures: int = 0
    system_failures: int = 0
    timers: list[_TimerHandle] = dataclasses.field(default_factory=list)
    child_scope: _Scope | None = None
    branch_child: _NodeRun | None = None
    child_execution: identifier_pb2.WorkflowExecutionIdentifier | None = None
    signal_key: tuple[str, ...] | None = None
    holds_slot: bool = False
    slot_start: Callable[[_NodeRun], None] | None = None
    reported_running: bool = False
    aborting: bool = False
    child_attempt: int = 0  # the attempt whose children run (a dynamic node's futures attempt)

    @property
    def kind(self) -> str:
        return self.node.WhichOneof("target") or ""

    @property
    def retry_group(self) -> str:
        return str(self.parent.child_attempt) if self.parent is not None else ""

    @property
    def done(self) -> bool:
        return self.phase in _DONE_NODE_PHASES


class _Scope:
    """One workflow body being run: the top-level workflow or a subworkflow node's workflow."""

    def __init__(
        self,
        run: _Run,
        workflow: compiler_pb2.CompiledWorkflow,
        parent: _NodeRun | None,
        inputs_uri: str,
        on_done: Callable[[_Scope], None],
    ) -> None:
        self.run = run
        self.template = workflow.template
        self.parent = parent
        self.on_done = on_done
        self.nodes = {
            node.id: node for node in self.template.nodes if node.id not in (START_NODE, END_NODE)
        }
        self.upstream = self._upstream_map(workflow)
        self.node_runs: dict[str, _NodeRun] = {}
        self.output_uris: dict[str, str] = {START_NODE: inputs_uri}
        self.outputs_cache: dict[str, literals_pb2.LiteralMap] = {}
        self.error: execution_pb2.ExecutionError | None = None
        self.error_node_id = ""
        self.fail_fast = (
            self.template.metadata.on_failure
            != workflow_pb2.WorkflowMetadata.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE
        )
        self.finished = False
        self.scheduling = False
        self.reschedule = False
        self.output_uri = ""

    def _upstream_map(self, workflow: compiler_pb2.CompiledWorkflow) -> dict[str, set[str]]:
        connections = workflow.connections.upstream
        upstream: dict[str, set[str]] = {}
        for node_id, node in self.nodes.items():
            if node_id in connections:
                ids = set(connections[node_id].ids)
            else:
                ids = set(node.upstream_node_ids) | upstream_node_ids(node.inputs)
            upstream[node_id] = {i for i in ids if i not in ("", START_NODE) and i in self.nodes}
        return upstream

    def unique_id(self, spec_node_id: str) -> str:
        if self.parent is None:
            return spec_node_id
        return child_node_id(self.parent.unique_id, self.parent.child_attempt, spec_node_id)

    def outputs_of(self, node_id: str) -> literals_pb2.LiteralMap:
        if node_id not in self.outputs_cache:
            uri = self.output_uris.get(node_id)
            if uri is None:
                raise BindingError(f"node [{node_id}] has not produced outputs")
            store = self.run.engine.store
            self.outputs_cache[node_id] = (
                store.read_proto(uri, literals_pb2.LiteralMap)
                if uri and store.exists(uri)
                else literals_pb2.LiteralMap()
            )
        return self.outputs_cache[node_id]


class _Run:
    """One execution: its compiled workflow, its mailbox and its top-level scope."""

    def __init__(
        self,
        engine: LocalExecutor,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        closure: compiler_pb2.CompiledWorkflowClosure,
        inputs: literals_pb2.LiteralMap,
        spec: admin_execution_pb2.ExecutionSpec,
    ) -> None:
        self.engine = engine
        self.id = execution_id
        self.key = (execution_id.project, execution_id.domain, execution_id.name)
        self.closure = closure
        self.inputs = inputs
        self.spec = spec
        self.mailbox = _Mailbox(engine._control_pool, lambda error: engine._fail_run(self, error))
        self.tasks = {_key(task.template.id): task.template for task in closure.tasks}
        self.subworkflows = {_key(sub.template.id): sub for sub in closure.sub_workflows}
        self.dir_name = f"{execution_id.project}-{execution_id.domain}-{execution_id.name}"
        self.phase = WorkflowPhase.UNDEFINED
        self.root: _Scope | None = None
        self.error: execution_pb2.ExecutionError | None = None
        self.aborting = False
        self.max_parallelism = spec.max_parallelism
        self.slots_in_use = 0
        self.slot_waiters: collections.deque[_NodeRun] = collections.deque()
        self.resume: Resumption | None = None  # set when a restarted sandbox continues the run
        metadata = spec.metadata
        self.reference = (
            metadata.reference_execution
            if metadata.mode == admin_execution_pb2.ExecutionMetadata.RECOVERED
            and metadata.reference_execution.name
            else None
        )

    @property
    def finished(self) -> bool:
        return self.phase in _TERMINAL_WORKFLOW_PHASES

    def uri(self, *parts: str) -> str:
        return self.engine.store.uri("executions", self.dir_name, *parts)

    def path(self, *parts: str) -> Path:
        return self.engine.store.path("executions", self.dir_name, *parts)


class LocalExecutor:
    """Runs sandbox executions locally and reports them to the admin side as propeller would.

    Args:
        control_plane: The admin side: records events, hands out signals and child executions.
        store: The blob store every execution's data is written to.
        python_executable: The interpreter of the environment that has flytekit; its directory
            provides ``pyflyte-execute``.
        max_parallel_tasks: How many task processes may run at once across all executions
            (default 16); further attempts wait, their nodes QUEUED.
        platform_endpoint: ``host:port`` of the sandbox's gRPC server, given to task processes
            as ``FLYTE_PLATFORM_URL`` so that tasks talking to Flyte reach the sandbox.
        http_url: Base URL of the sandbox's HTTP endpoint; task logs are linked below it.
        kill_grace_seconds: How long a killed task process gets between SIGTERM and SIGKILL.
        system_retries: Attempts allowed for system failures (crashes), beyond user retries.
        fork_server: Start task processes by forking an interpreter that has already imported
            flytekit (see ``task_zygote.py``) instead of starting ``pyflyte-execute`` afresh.
            Linux only: elsewhere forking after imports is not safe and tasks start afresh.
        task_environment: Variables propeller's configuration gives every task process (literal
            offloading's ``_F_L_MIN_SIZE_MB`` and ``_F_L_MAX_SIZE_MB``); the task's own ``env``
            and the execution's ``envs`` override them.
    """

    def __init__(
        self,
        control_plane: ControlPlane,
        store: DataStore,
        python_executable: str = sys.executable,
        *,
        max_parallel_tasks: int | None = None,
        platform_endpoint: str | None = None,
        http_url: str | None = None,
        kill_grace_seconds: float = 3.0,
        system_retries: int = DEFAULT_SYSTEM_RETRIES,
        fork_server: bool = True,
        task_environment: dict[str, str] | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.store = store
        self._python_bin_dir = Path(os.path.abspath(python_executable)).parent
        self._platform_endpoint = platform_endpoint
        self._http_url = http_url.rstrip("/") if http_url else None
        self._kill_grace = kill_grace_seconds
        self._system_retries = system_retries
        self._task_environment = dict(task_environment or {})
        workers = max_parallel_tasks or DEFAULT_MAX_PARALLEL_TASKS
        self._task_pool = ThreadPoolExecutor(workers, thread_name_prefix="flyte-task")
        self._control_pool = ThreadPoolExecutor(4, thread_name_prefix="flyte-engine")
        self._timers = _Timers()
        self._code_cache = task_runner.CodeCache(store.path("code-cache"))
        self._fork_server = (
            task_runner.ForkServer(
                str(Path(os.path.abspath(python_executable))),
                store.path("engine", "fork-server.log"),
                task_runner.task_environment(
                    os.environ, python_bin_dir=self._python_bin_dir, code_dir=None, extra={}
                ),
            )
            if fork_server and sys.platform.startswith("linux")
            else None
        )
        if self._fork_server is not None:
            self._fork_server.start_in_background()
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str, str], _Run] = {}
        self._signal_waiters: dict[tuple[str, ...], _Run] = {}
        self._child_waiters: dict[tuple[str, str, str], _Run] = {}
        self._live_attempts: set[_Attempt] = set()
        self._closed = False
        self._array_nodes = array_nodes.ArrayNodes(self)
        self._dynamic_nodes = dynamic_nodes.DynamicNodes(self)

    # Engine API (called by the admin side; every call returns at once).

    def start(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        closure: compiler_pb2.CompiledWorkflowClosure,
        inputs: literals_pb2.LiteralMap,
        spec: admin_execution_pb2.ExecutionSpec,
    ) -> None:
        """Begins running a committed execution in the background."""
        self._admit(_Run(self, execution_id, closure, inputs, spec))

    def resume(
        self,
        execution_id: identifier_pb2.WorkflowExecutionIdentifier,
        closure: compiler_pb2.CompiledWorkflowClosure,
        inputs: literals_pb2.LiteralMap,
        spec: admin_execution_pb2.ExecutionSpec,
        progress: RecordedProgress,
    ) -> None:
        """Continues an execution a previous sandbox process left in flight (see ``resume.py``)."""
        run = _Run(self, execution_id, closure, inputs, spec)
        run.resume = Resumption(progress)
        kill_orphaned_tasks(run.path())
        self._admit(run)

    def _admit(self, run: _Run) -> None:
        with self._lock:
            if self._closed or run.key in self._runs:
                return
            self._runs[run.key] = run
        run.mailbox.post(self._begin, run)

    def abort(self, execution_id: identifier_pb2.WorkflowExecutionIdentifier, cause: str) -> None:
        """Stops a running execution: kills its task processes and reports ABORTED."""
        key = (execution_id.project, execution_id.domain, execution_id.name)
        with self._lock:
            run = self._runs.get(key)
        if run is None:
            self._report_unknown_abort(execution_id)
            return
        run.mailbox.post(self._abort_run, run, cause)

    def notify_signal_set(self, signal_id: identifier_pb2.SignalIdentifier) -> None:
        """Wakes the gate waiting on this signal."""
        key = (*_key(signal_id.execution_id)[:3], signal_id.signal_id)
        with self._lock:
            run = self._signal_waiters.get(key)
        if run is not None:
            run.mailbox.post(self._on_signal_set, run, key)

    def notify_execution_done(
        self, execution_id: identifier_pb2.WorkflowExecutionIdentifier
    ) -> None:
        """Wakes the launch-plan node waiting on this child execution."""
        key = (execution_id.project, execution_id.domain, execution_id.name)
        with self._lock:
            parent = self._child_waiters.get(key)
        if parent is not None:
            parent.mailbox.post(self._on_child_execution_done, parent, key)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Kills every running task process and stops the executor's threads."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
            attempts = list(self._live_attempts)
        for run in runs:
            run.mailbox.closed = True
        self._task_pool.shutdown(wait=False, cancel_futures=True)
        for attempt in attempts:
            self._kill_attempt(attempt, grace=min(self._kill_grace, timeout))
        self._timers.stop()
        # Before waiting for the task threads: a spawn waiting for the fork server's reply is
        # woken by its close (and, the executor being closed, starts nothing instead).
        fork_server = self._fork_server  # read once: a failing spawn may set it to None
        if fork_server is not None:
            fork_server.close()
        self._task_pool.shutdown(wait=True)
        self._control_pool.shutdown(wait=True, cancel_futures=True)

    def is_running(self, execution_id: identifier_pb2.WorkflowExecutionIdentifier) -> bool:
        """Whether the executor still runs this execution (it has not reported a terminal phase)."""
        key = (execution_id.project, execution_id.domain, execution_id.name)
        with self._lock:
            return key in self._runs

    # Execution lifecycle.

    def _begin(self, run: _Run) -> None:
        if run.aborting or run.finished:
            return
        inputs_uri = run.uri(START_NODE, "data", "0", "outputs.pb")
        self.store.write_proto(inputs_uri, run.inputs)
        primary = run.closure.primary
        run.root = _Scope(run, primary, None, inputs_uri, self._on_root_done)
        if run.resume is not None and run.resume.workflow_started:
            run.phase, run.error = run.resume.progress.phase, run.resume.progress.error
        else:
            self._workflow_event(run, WorkflowPhase.RUNNING)
        self._begin_scope(run.root)

    def _on_root_done(self, scope: _Scope) -> None:
        run = scope.run
        if run.aborting or run.finished:
            return
        if scope.error is not None:
            if run.phase != WorkflowPhase.FAILING:
                self._workflow_event(run, WorkflowPhase.FAILING, error=scope.error)
            if scope.template.HasField("failure_node"):
                self._start_failure_node(scope)
                return
            self._workflow_event(run, WorkflowPhase.FAILED, error=scope.error)
        else:
            self._workflow_event(run, WorkflowPhase.SUCCEEDING)
            self._workflow_event(run, WorkflowPhase.SUCCEEDED, output_uri=scope.output_uri)
        self._forget(run)

    def _start_failure_node(self, scope: _Scope) -> None:
        """Runs the workflow's failure node (flytekit ``on_failure``) while the run is FAILING.

        Its ``err`` input, bound to None at registration, is given the error that failed the run,
        as propeller does.
        """
        node = workflow_pb2.Node()
        node.CopyFrom(scope.template.failure_node)
        template = scope.run.tasks.get(_key(node.task_node.reference_id))
        err_type = template.interface.inputs.variables["err"].type if template else None
        if err_type is not None and any(b.var == "err" for b in node.inputs):
            error_literal = literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    error=types_pb2.Error(
                        failed_node_id=scope.error_node_id, message=scope.error.message
                    )
                )
            )
            variants = [v for v in err_type.union_type.variants if v.simple == types_pb2.ERROR]
            for binding in node.inputs:
                if binding.var != "err":
                    continue
                if variants:
                    binding.binding.scalar.union.value.CopyFrom(error_literal)
                    binding.binding.scalar.union.type.CopyFrom(variants[0])
                else:
                    binding.binding.scalar.CopyFrom(error_literal.scalar)
        failure_run = _NodeRun(scope, node, node.id, None, self._on_failure_node_done)
        scope.node_runs[node.id] = failure_run
        self._start_node(failure_run)

    def _on_failure_node_done(self, node_run: _NodeRun) -> None:
        run = node_run.scope.run
        if run.aborting or run.finished:
            return
        self._workflow_event(run, WorkflowPhase.FAILED, error=node_run.scope.error)
        self._forget(run)

    def _fail_run(self, run: _Run, error: BaseException) -> None:
        """Ends a run the engine itself broke on: FAILED with a system error, never a hang."""
        if run.finished:
            return
        run.aborting = True
        failure = _error("EngineError", f"the sandbox executor failed: {error!r}", ErrorKind.SYSTEM)
        if run.root is not None:
            self._abort_scope(run.root, "the sandbox executor failed")
        if run.phase != WorkflowPhase.FAILING:
            self._workflow_event(run, WorkflowPhase.FAILING, error=failure)
        self._workflow_event(run, WorkflowPhase.FAILED, error=failure)
        self._forget(run)

    def _abort_run(self, run: _Run, cause: str) -> None:
        if run.finished:
            return
        run.aborting = True
        if run.root is not None:
            self._abort_scope(run.root, cause)
        self._workflow_event(run, WorkflowPhase.ABORTED)
        self._forget(run)

    def _report_unknown_abort(
        self, execution_id: identifier_pb2.WorkflowExecutionIdentifier
    ) -> None:
        # An execution this executor never started (or already forgot) still has to end ABORTED.
        event = event_pb2.WorkflowExecutionEvent(
            execution_id=execution_id,
            producer_id=PRODUCER_ID,
            phase=WorkflowPhase.ABORTED,
            occurred_at=_now(),
        )
        self._record(self.control_plane.record_workflow_event, event)

    def _forget(self, run: _Run) -> None:
        run.mailbox.closed = True
        if run.resume is not None:
            run.resume.close_leftovers(self, run)
        with self._lock:
            self._runs.pop(run.key, None)
            for key in [k for k, v in self._signal_waiters.items() if v is run]:
                del self._signal_waiters[key]
            for key in [k for k, v in self._child_waiters.items() if v is run]:
                del self._child_waiters[key]
        # The admin side also calls notify_execution_done; telling the parent twice is harmless.
        parent = run.spec.metadata.parent_node_execution
        if parent.execution_id.name:
            with self._lock:
                parent_run = self._runs.get(_key(parent.execution_id)[:3])
            if parent_run is not None:
                parent_run.mailbox.post(self._on_child_execution_done, parent_run, run.key)

    # Scopes: a workflow body.

    def _begin_scope(self, scope: _Scope) -> None:
        start = event_pb2.NodeExecutionEvent(phase=NodePhase.SUCCEEDED)
        start.output_uri = scope.output_uris[START_NODE]
        self._structural_node_event(scope, START_NODE, start)
        self._schedule(scope)

    def _schedule(self, scope: _Scope) -> None:
        """Starts every node whose upstream nodes are done; finishes the scope when all are.

        Nodes that finish at once (recovered, skipped, refused) ask for another pass; that pass
        runs in this loop rather than recursively, so long chains cannot exhaust the stack.
        """
        if scope.scheduling:
            scope.reschedule = True
            return
        scope.scheduling = True
        try:
            scope.reschedule = True
            while scope.reschedule:
                scope.reschedule = False
                self._schedule_pass(scope)
        finally:
            scope.scheduling = False

    def _schedule_pass(self, scope: _Scope) -> None:
        if scope.finished or scope.run.aborting:
            return
        progressed = True
        while progressed:
            progressed = False
            for node_id, node in scope.nodes.items():
                if node_id in scope.node_runs:
                    continue
                upstream = [scope.node_runs.get(u) for u in scope.upstream[node_id]]
                if any(u is None or not u.done for u in upstream):
                    continue
                if scope.error is not None and scope.fail_fast:
                    break
                node_run = _NodeRun(
                    scope, node, scope.unique_id(node_id), scope.parent, self._on_node_done
                )
                scope.node_runs[node_id] = node_run
                if all(u.phase in _SUCCESS_NODE_PHASES for u in upstream):
                    self._start_node(node_run)
                else:
                    self._finish_node(node_run, NodePhase.SKIPPED)
                progressed = True
        if all(r.done for r in scope.node_runs.values()):
            if (scope.error is not None and scope.fail_fast) or len(scope.node_runs) == len(
                scope.nodes
            ):
                self._finish_scope(scope)

    def _on_node_done(self, node_run: _NodeRun) -> None:
        scope = node_run.scope
        if node_run.phase in _SUCCESS_NODE_PHASES:
            scope.output_uris[node_run.node.id] = node_run.output_uri
        elif node_run.phase in (NodePhase.FAILED, NodePhase.TIMED_OUT) and scope.error is None:
            scope.error = node_run.error or _error("UnknownError", "node failed")
            scope.error_node_id = node_run.node.id
            if scope.parent is None and scope.fail_fast:
                self._workflow_event(scope.run, WorkflowPhase.FAILING, error=scope.error)
            if scope.fail_fast:
                self._abort_running_nodes(scope, "node failed; aborting the rest of the workflow")
        self._schedule(scope)

    def _finish_scope(self, scope: _Scope) -> None:
        if scope.finished:
            return
        scope.finished = True
        if scope.error is None:
            try:
                outputs = resolve_bindings(scope.template.outputs, scope.outputs_of)
            except BindingError as error:
                scope.error = _error(error.code, str(error))
            else:
                end_dir = scope.unique_id(END_NODE)
                inputs_uri = scope.run.uri(end_dir, "data", "inputs.pb")
                outputs_uri = scope.run.uri(end_dir, "data", "0", "outputs.pb")
                self.store.write_proto(inputs_uri, outputs)
                self.store.write_proto(outputs_uri, outputs)
                queued = event_pb2.NodeExecutionEvent(phase=NodePhase.QUEUED, input_uri=inputs_uri)
                self._structural_node_event(scope, END_NODE, queued)
                succeeded = event_pb2.NodeExecutionEvent(
                    phase=NodePhase.SUCCEEDED, input_uri=inputs_uri
                )
                self._structural_node_event(scope, END_NODE, succeeded)
                scope.output_uri = outputs_uri
        scope.on_done(scope)

    def _abort_scope(self, scope: _Scope, cause: str) -> None:
        scope.finished = True
        self._abort_running_nodes(scope, cause)

    def _abort_running_nodes(self, scope: _Scope, cause: str) -> None:
        for node_run in list(scope.node_runs.values()):
            if not node_run.done:
                self._abort_node(node_run, cause)

    # Nodes.

    def _start_node(self, node_run: _NodeRun) -> None:
        resume = node_run.scope.run.resume
        if resume is not None and resume.resume_node(self, node_run):
            return
        if self._recover_node(node_run):
            return
        kind = node_run.kind
        starter = {
            "task_node": self._start_task_node,
            "gate_node": self._start_gate_node,
            "branch_node": self._start_branch_node,
            "workflow_node": self._start_workflow_node,
            "array_node": self._array_nodes.start,
        }.get(kind)
        if starter is None:
            self._fail_unsupported(
                node_run, f"{kind or 'empty'} nodes are not supported by the sandbox executor yet"
            )
            return
        try:
            inputs = resolve_bindings(node_run.node.inputs, node_run.scope.outputs_of)
        except BindingError as error:
            node_run.error = _error(error.code, f"[{node_run.node.id}] {error}")
            self._finish_node(node_run, NodePhase.FAILED)
            return
        node_run.inputs = inputs
        node_run.inputs_uri = node_run.scope.run.uri(node_run.unique_id, "data", "inputs.pb")
        self.store.write_proto(node_run.inputs_uri, inputs)
        starter(node_run)

    def _fail_unsupported(
        self, node_run: _NodeRun, message: str, code: str = "NotSupported"
    ) -> None:
        node_run.error = _error(code, message, ErrorKind.SYSTEM)
        self._finish_node(node_run, NodePhase.FAILED)

    def _recover_node(self, node_run: _NodeRun) -> bool:
        run = node_run.scope.run
        if run.reference is None:
            return False
        get_node_execution = getattr(self.control_plane, "get_node_execution", None)
        if get_node_execution is None:
            return False
        reference_id = identifier_pb2.NodeExecutionIdentifier(
            node_id=node_run.unique_id, execution_id=run.reference
        )
        try:
            reference = get_node_execution(reference_id)
        except Exception:  # noqa: BLE001 - a node the reference never ran is simply re-run
            return False
        if reference.closure.phase not in _SUCCESS_NODE_PHASES:
            return self._dynamic_nodes.recover(node_run, reference)
        node_run.inputs_uri = run.uri(node_run.unique_id, "data", "inputs.pb")
        node_run.output_uri = run.uri(node_run.unique_id, "data", "0", "outputs.pb")
        for source, target in (
            (reference.input_uri, node_run.inputs_uri),
            (reference.closure.output_uri, node_run.output_uri),
        ):
            data = self.store.read_bytes(source) if source and self.store.exists(source) else b""
            self.store.write_bytes(target, data or literals_pb2.LiteralMap().SerializeToString())
        self._node_event(node_run, NodePhase.RECOVERED, output_uri=node_run.output_uri)
        node_run.phase = NodePhase.RECOVERED
        node_run.on_done(node_run)
        return True

    def _finish_node(self, node_run: _NodeRun, phase: int, **fields: Any) -> None:
        """Reports a node's terminal phase, releases what it held and tells its owner."""
        if node_run.done:
            return
        for timer in node_run.timers:
            timer.cancel()
        node_run.timers.clear()
        self._release_slot(node_run)
        if node_run.signal_key is not None:
            with self._lock:
                self._signal_waiters.pop(node_run.signal_key, None)
        if node_run.child_execution is not None:
            with self._lock:
                self._child_waiters.pop(_key(node_run.child_execution)[:3], None)
        if phase in _SUCCESS_NODE_PHASES:
            fields.setdefault("output_uri", node_run.output_uri)
        elif phase != NodePhase.SKIPPED and node_run.error is not None:
            fields.setdefault("error", node_run.error)
        node_run.phase = phase
        self._node_event(node_run, phase, **fields)
        node_run.on_done(node_run)

    def _abort_node(self, node_run: _NodeRun, cause: str) -> None:
        if node_run.done or node_run.phase == NodePhase.UNDEFINED:
            return
        node_run.aborting = True
        if node_run.kind == "array_node":
            self._array_nodes.abort(node_run, cause)
        for attempt in node_run.attempts:
            self._abort_attempt(node_run, attempt, cause)
        if node_run.child_scope is not None and not node_run.child_scope.finished:
            self._abort_scope(node_run.child_scope, cause)
        if node_run.branch_child is not None:
            self._abort_node(node_run.branch_child, cause)
        if node_run.child_execution is not None:
            reason = (
                f"cascading abort as parent execution id [{node_run.scope.run.id.name}] "
                f"aborted, reason [{cause}]"
            )
            try:
                self.control_plane.terminate_execution(node_run.child_execution, reason)
            except Exception:
                logger.debug("child execution %s was already done", node_run.child_execution.name)
        node_run.error = _error("NodeAborted", cause)
        self._finish_node(node_run, NodePhase.ABORTED)

    def _acquire_slot(self, node_run: _NodeRun, start: Callable[[_NodeRun], None]) -> None:
        run = node_run.scope.run
        # Propeller limits only when max_parallelism > 0 (admin resolves <= 0 to its default, but
        # a run recorded before that, or an engine started directly, may still carry one).
        if run.max_parallelism > 0 and run.slots_in_use >= run.max_parallelism:
            node_run.slot_start = start
            run.slot_waiters.append(node_run)
            return
        run.slots_in_use += 1
        node_run.holds_slot = True
        start(node_run)

    def _release_slot(self, node_run: _NodeRun) -> None:
        run = node_run.scope.run
        if node_run in run.slot_waiters:
            run.slot_waiters.remove(node_run)
        if not node_run.holds_slot:
            return
        node_run.holds_slot = False
        run.slots_in_use -= 1
        while run.slot_waiters and not run.aborting:
            waiter = run.slot_waiters.popleft()
            if not waiter.done and waiter.slot_start is not None:
                run.slots_in_use += 1
                waiter.holds_slot = True
                run.mailbox.post(waiter.slot_start, waiter)
                break

    # Task nodes.

    def _start_task_node(self, node_run: _NodeRun) -> None:
        run = node_run.scope.run
        template = run.tasks.get(_key(node_run.node.task_node.reference_id))
        self._node_event(node_run, NodePhase.QUEUED, input_uri=node_run.inputs_uri)
        node_run.phase = NodePhase.QUEUED
        if template is None:
            self._fail_unsupported(
                node_run,
                f"task {node_run.node.task_node.reference_id.name} is not in the compiled workflow",
                code="TaskNotFound",
            )
            return
        if not task_runner.is_python_task(template):
            self._fail_unsupported(
                node_run,
                f"task type [{template.type}] cannot run in the sandbox: only flytekit Python "
                "tasks (pyflyte-execute containers) are supported",
                code="PluginNotFound",
            )
            return
        self._acquire_slot(node_run, self._start_attempt)

    def _node_timeout(self, node_run: _NodeRun, template: tasks_pb2.TaskTemplate | None) -> float:
        """The node's timeout in seconds; 0 for none (propeller ignores a deadline that is <= 0)."""
        seconds = 0.0
        if node_run.node.metadata.HasField("timeout"):
            seconds = node_run.node.metadata.timeout.ToTimedelta().total_seconds()
        elif template is not None and template.metadata.HasField("timeout"):
            seconds = template.metadata.timeout.ToTimedelta().total_seconds()
        return max(seconds, 0.0)

    def _max_attempts(self, node_run: _NodeRun, template: tasks_pb2.TaskTemplate) -> int:
        if node_run.node.metadata.HasField("retries"):
            retries = node_run.node.metadata.retries.retries
        else:
            retries = template.metadata.retries.retries
        return retries + 1

    def _start_attempt(self, node_run: _NodeRun) -> None:
        run = node_run.scope.run
        if node_run.done or run.aborting:
            return
        attempt = self._new_attempt(run, node_run, len(node_run.attempts))
        node_run.attempts.append(attempt)
        with self._lock:
            self._live_attempts.add(attempt)
        self._task_pool.submit(self._run_attempt, run, node_run, attempt)

    def _new_attempt(self, run: _Run, node_run: _NodeRun, number: int) -> _Attempt:
        """Attempt ``number`` of a task node with its own directories; no process yet."""
        data_parts = (node_run.unique_id, "data")
        previous = node_run.attempts[-1].paths.checkpoint_prefix if node_run.attempts else None
        raw_prefix = self.store.task_raw_prefix(
            run.spec.raw_output_data_config.output_location_prefix
        )
        paths = task_runner.AttemptPaths(
            inputs_uri=node_run.inputs_uri,
            input_prefix=run.uri(*data_parts),
            output_prefix=run.uri(*data_parts, str(number)),
            raw_output_prefix=f"{raw_prefix.rstrip('/')}/{run.dir_name}/{node_run.unique_id}/{number}",
            previous_checkpoint=previous,
            scratch_dir=self.store.path("scratch", run.dir_name, f"{node_run.unique_id}-{number}"),
            log_path=run.path(node_run.unique_id, "logs", f"attempt-{number}.log"),
        )
        attempt = _Attempt(number, paths)
        attempt.log_uri = self._log_link(paths.log_path)
        return attempt

    def _log_link(self, path: Path) -> str:
        if self._http_url:
            relative = path.relative_to(self.store.root).as_posix()
            return f"{self._http_url}/store/{relative}"
        return path.as_uri()

    def _run_attempt(self, run: _Run, node_run: _NodeRun, attempt: _Attempt) -> None:
        """Runs on the task pool: spawns the process, waits for it, posts the results."""
        template = run.tasks[_key(node_run.node.task_node.reference_id)]
        self.run_process(
            run,
            attempt,
            lambda: self._command(run, node_run, template, attempt),
            self._node_timeout(node_run, template) or None,
            on_started=self._on_attempt_started,
            on_exited=self._on_attempt_exited,
            context=(node_run,),
        )

    def run_process(
        self,
        run: _Run,
        attempt: _Attempt,
        command: Callable[[], tuple[list[str], dict[str, str]]],
        timeout: float | None,
        *,
        on_started: Callable[..., None],
        on_exited: Callable[..., None],
        context: tuple[Any, ...],
    ) -> None:
        """Runs on the task pool: spawns an attempt's process, waits for it, posts the results.

        ``on_started(*context, attempt)`` and ``on_exited(*context, attempt, exit_code,
        start_error, timed_out)`` are posted to the run's mailbox.
        """
        try:
            argv, env = command()
            with attempt.lock:
                if attempt.cancelled or self._closed:
                    return
            # Spawned without the attempt's lock, so that an abort or a shutdown never waits
            # for a spawn; one that came meanwhile is seen below and the new process killed.
            process = self._spawn(argv, env, attempt.paths)
            with attempt.lock:
                attempt.process = process
                cancelled = attempt.cancelled or self._closed
            record_task_process(attempt.paths.log_path, process.pid)
        except Exception as error:  # noqa: BLE001 - any failure to start is a system error
            logger.warning("could not start a task process: %s", error)
            run.mailbox.post(on_exited, *context, attempt, None, str(error), False)
            return
        if cancelled:
            # Aborted while it was being spawned: end it, and let the handler (which ignores
            # a cancelled attempt's outcome) clean its scratch directory up.
            process.kill_group(self._kill_grace)
            run.mailbox.post(on_exited, *context, attempt, None, None, False)
            return
        run.mailbox.post(on_started, *context, attempt)
        exit_code = process.wait(timeout)
        timed_out = exit_code is None
        if timed_out:
            process.kill_group(self._kill_grace)
        run.mailbox.post(on_exited, *context, attempt, exit_code, None, timed_out)

    def _spawn(
        self, argv: list[str], env: dict[str, str], paths: task_runner.AttemptPaths
    ) -> task_runner.TaskProcess | task_runner.ForkedTaskProcess:
        fork_server = self._fork_server  # read once: another spawn may set it to None
        if fork_server is not None and Path(argv[0]).name in task_runner.FORKABLE_ENTRYPOINTS:
            try:
                return fork_server.spawn(argv, env, paths.scratch_dir, paths.log_path)
            except task_runner.ForkServerUnavailable as error:
                if self._closed:
                    raise
                logger.warning("starting task processes without the fork server: %s", error)
                self._fork_server = None
        return task_runner.TaskProcess(argv, env, paths.scratch_dir, paths.log_path)

    def _command(
        self,
        run: _Run,
        node_run: _NodeRun,
        template: tasks_pb2.TaskTemplate,
        attempt: _Attempt,
    ) -> tuple[list[str], dict[str, str]]:
        container = template.container
        rendered = task_runner.render_args(
            list(container.command) + list(container.args), attempt.paths, node_run.inputs
        )
        argv, code_dir = task_runner.fast_execute_argv(rendered, self.store, self._code_cache)
        executable = self._python_bin_dir / argv[0]
        if executable.exists():
            argv[0] = str(executable)
        launch_plan = run.spec.launch_plan
        extra = {
            "FLYTE_INTERNAL_EXECUTION_ID": run.id.name,
            "FLYTE_INTERNAL_EXECUTION_PROJECT": run.id.project,
            "FLYTE_INTERNAL_EXECUTION_DOMAIN": run.id.domain,
            "FLYTE_INTERNAL_EXECUTION_WORKFLOW": run.closure.primary.template.id.name,
            "FLYTE_INTERNAL_EXECUTION_LAUNCHPLAN": launch_plan.name,
            "FLYTE_ATTEMPT_NUMBER": str(attempt.number),
            "FLYTE_INTERNAL_TASK_PROJECT": template.id.project,
            "FLYTE_INTERNAL_TASK_DOMAIN": template.id.domain,
            "FLYTE_INTERNAL_TASK_NAME": template.id.name,
            "FLYTE_INTERNAL_TASK_VERSION": template.id.version,
            "FLYTE_INTERNAL_NODE_ID": node_run.unique_id,
        }
        if self._platform_endpoint:
            extra["FLYTE_PLATFORM_URL"] = self._platform_endpoint
            extra["FLYTE_PLATFORM_INSECURE"] = "true"
        extra.update(self._task_environment)
        extra.update({pair.key: pair.value for pair in container.env})
        extra.update({pair.key: pair.value for pair in run.spec.envs.values})
        env = task_runner.task_environment(
            os.environ, python_bin_dir=self._python_bin_dir, code_dir=code_dir, extra=extra
        )
        return argv, env

    def _on_attempt_started(self, node_run: _NodeRun, attempt: _Attempt) -> None:
        if attempt.cancelled or node_run.done:
            return
        attempt.started = True
        self._task_event(node_run, attempt, TaskPhase.QUEUED, reason="task process created")
        self._task_event(node_run, attempt, TaskPhase.RUNNING, reason="task process running")
        if not node_run.reported_running:
            node_run.reported_running = True
            node_run.phase = NodePhase.RUNNING
            self._node_event(node_run, NodePhase.RUNNING)
            self._start_node_deadline(node_run)

    def _start_node_deadline(self, node_run: _NodeRun) -> None:
        """Propeller's active deadline: twice the per-attempt timeout.

        Deviation from propeller: it counts from the first attempt's start rather than from
        QUEUED, so that time spent waiting for a free task slot does not count.
        """
        run = node_run.scope.run
        template = run.tasks[_key(node_run.node.task_node.reference_id)]
        timeout = self._node_timeout(node_run, template)
        if timeout:
            delay = max(0.0, 2 * timeout - self._elapsed_before_restart(node_run))
            node_run.timers.append(
                self._timers.call_later(
                    delay, lambda: run.mailbox.post(self._on_node_deadline, node_run)
                )
            )

    def _elapsed_before_restart(self, node_run: _NodeRun) -> float:
        """Seconds a resumed node had been running before the restart (0 otherwise)."""
        resume = node_run.scope.run.resume
        return resume.elapsed(node_run.unique_id) if resume is not None else 0.0

    def _on_attempt_exited(
        self,
        node_run: _NodeRun,
        attempt: _Attempt,
        exit_code: int | None,
        start_error: str | None,
        timed_out: bool,
    ) -> None:
        with self._lock:
            self._live_attempts.discard(attempt)
        shutil.rmtree(attempt.paths.scratch_dir, ignore_errors=True)
        if attempt.cancelled or node_run.done:
            return
        template = node_run.scope.run.tasks[_key(node_run.node.task_node.reference_id)]
        outcome = self.attempt_outcome(
            attempt,
            exit_code,
            start_error,
            timed_out,
            timeout=self._node_timeout(node_run, template),
            has_outputs=bool(template.interface.outputs.variables),
        )
        if not attempt.started:
            self._on_attempt_started(node_run, attempt)
        if outcome.kind is task_runner.OutcomeKind.SUCCEEDED:
            self._task_event(
                node_run, attempt, TaskPhase.SUCCEEDED, output_uri=outcome.output_uri or ""
            )
            node_run.output_uri = outcome.output_uri or ""
            if not node_run.output_uri:
                node_run.output_uri = f"{attempt.paths.output_prefix}/outputs.pb"
                self.store.write_proto(node_run.output_uri, literals_pb2.LiteralMap())
            self._finish_node(node_run, NodePhase.SUCCEEDED, deck_uri=outcome.deck_uri or "")
            return
        if outcome.kind is task_runner.OutcomeKind.DYNAMIC:
            self._dynamic_nodes.on_futures(node_run, attempt, outcome.futures_uri or "")
            return
        self._task_event(node_run, attempt, TaskPhase.FAILED, error=outcome.error)
        self._after_failed_attempt(node_run, template, outcome)

    def _after_failed_attempt(
        self,
        node_run: _NodeRun,
        template: tasks_pb2.TaskTemplate,
        outcome: task_runner.AttemptOutcome,
    ) -> None:
        error = self.failure_verdict(node_run, outcome, self._max_attempts(node_run, template))
        if error is None:
            if not node_run.scope.run.aborting:
                self._start_attempt(node_run)
            return
        node_run.error = error
        self._finish_node(node_run, NodePhase.FAILED)

    def attempt_outcome(
        self,
        attempt: _Attempt,
        exit_code: int | None,
        start_error: str | None,
        timed_out: bool,
        *,
        timeout: float,
        has_outputs: bool,
    ) -> task_runner.AttemptOutcome:
        """How a finished attempt ended: from its start error, its timeout or what it wrote."""
        if start_error is not None:
            return task_runner.AttemptOutcome(
                task_runner.OutcomeKind.FAILED,
                error=_error("ProcessStartFailed", start_error, ErrorKind.SYSTEM),
                retryable=True,
            )
        if timed_out:
            return task_runner.AttemptOutcome(
                task_runner.OutcomeKind.FAILED,
                error=_error(
                    "TimeoutExpired",
                    f"task execution timeout [{_format_duration(timeout)}] expired",
                ),
                retryable=True,
            )
        return task_runner.read_outcome(
            self.store, attempt.paths, exit_code=exit_code or 0, has_outputs=has_outputs
        )

    def failure_verdict(
        self, counts: Any, outcome: task_runner.AttemptOutcome, allowed_attempts: int
    ) -> execution_pb2.ExecutionError | None:
        """Counts a failed attempt against its budget (propeller's retry policy).

        ``counts`` carries ``user_failures`` and ``system_failures`` (a node run, or one item of
        an array node). Returns None when another attempt may run, else the final error.
        """
        error = outcome.error or _error("UnknownError", "task failed", ErrorKind.UNKNOWN)
        if not outcome.retryable:
            return error
        if outcome.is_system_error:
            counts.system_failures += 1
            used, allowed = counts.system_failures, self._system_retries + 1
            budget_left = counts.system_failures <= self._system_retries
        else:
            counts.user_failures += 1
            used, allowed = counts.user_failures, allowed_attempts
            budget_left = used < allowed
        if budget_left:
            return None
        kind_name = ErrorKind.Name(error.kind)
        final = _error(
            f"RetriesExhausted|{error.code}",
            f"[{used}/{allowed}] currentAttempt done. Last Error: {kind_name}::{error.message}",
        )
        final.error_uri = error.error_uri
        return final

    def _on_node_deadline(self, node_run: _NodeRun) -> None:
        if node_run.done:
            return
        for attempt in node_run.attempts:
            self._abort_attempt(node_run, attempt, "node timed out")
        if node_run.child_scope is not None and not node_run.child_scope.finished:
            self._abort_scope(node_run.child_scope, "node timed out")
        node_run.error = _error("Timeout", "Timeout in node")
        self._finish_node(node_run, NodePhase.TIMED_OUT)

    def _abort_attempt(self, node_run: _NodeRun, attempt: _Attempt, cause: str) -> None:
        with attempt.lock:
            if attempt.cancelled:
                return
            attempt.cancelled = True
            was_running = attempt.process is not None
        self._kill_attempt(attempt, self._kill_grace)
        with self._lock:
            live = attempt in self._live_attempts
            self._live_attempts.discard(attempt)
        if was_running and live:
            if not attempt.started:
                attempt.started = True
                self._task_event(node_run, attempt, TaskPhase.QUEUED, reason="task process created")
                self._task_event(
                    node_run, attempt, TaskPhase.RUNNING, reason="task process running"
                )
            self._task_event(
                node_run, attempt, TaskPhase.ABORTED, error=_error("TaskAborted", cause)
            )

    def _kill_attempt(self, attempt: _Attempt, grace: float) -> None:
        with attempt.lock:
            attempt.cancelled = True
            process = attempt.process
        if process is not None:
            process.kill_group(grace)

    # Gate nodes.

    def _start_gate_node(self, node_run: _NodeRun) -> None:
        run = node_run.scope.run
        gate = node_run.node.gate_node
        self._node_event(node_run, NodePhase.QUEUED, input_uri=node_run.inputs_uri)
        node_run.phase = NodePhase.QUEUED
        flavour = gate.WhichOneof("condition")
        if flavour == "sleep":
            seconds = gate.sleep.duration.ToTimedelta().total_seconds()
            seconds -= self._elapsed_before_restart(node_run)
            self._mark_running(node_run)
            node_run.timers.append(
                self._timers.call_later(
                    max(0.0, seconds), lambda: run.mailbox.post(self._on_sleep_done, node_run)
                )
            )
            return
        if flavour not in ("signal", "approve"):
            self._fail_unsupported(node_run, f"gate nodes of kind {flavour} are not supported")
            return
        timeout = self._node_timeout(node_run, None)
        if timeout:
            delay = max(0.0, timeout - self._elapsed_before_restart(node_run))
            node_run.timers.append(
                self._timers.call_later(
                    delay, lambda: run.mailbox.post(self._on_gate_timeout, node_run, timeout)
                )
            )
        signal_id = gate.signal.signal_id if flavour == "signal" else gate.approve.signal_id
        node_run.signal_key = (*run.key, signal_id)
        with self._lock:
            self._signal_waiters[node_run.signal_key] = run
        self._evaluate_gate(node_run, first=True)

    def _signal_type(self, node_run: _NodeRun) -> types_pb2.LiteralType:
        gate = node_run.node.gate_node
        if gate.HasField("signal"):
            return gate.signal.type
        return types_pb2.LiteralType(simple=types_pb2.BOOLEAN)

    def _evaluate_gate(self, node_run: _NodeRun, first: bool = False) -> None:
        if node_run.done:
            return
        gate = node_run.node.gate_node
        run = node_run.scope.run
        signal_name = node_run.signal_key[-1] if node_run.signal_key else ""
        signal_id = identifier_pb2.SignalIdentifier(signal_id=signal_name, execution_id=run.id)
        try:
            value = self.control_plane.get_or_create_signal(signal_id, self._signal_type(node_run))
        except Exception as error:  # noqa: BLE001 - reported on the node
            node_run.error = _error("SignalUnavailable", str(error), ErrorKind.SYSTEM)
            self._finish_node(node_run, NodePhase.FAILED)
            return
        if first:
            self._mark_running(node_run)
        if value is None:
            return
        outputs_uri = run.uri(node_run.unique_id, "data", "0", "outputs.pb")
        if gate.HasField("signal"):
            outputs = literals_pb2.LiteralMap()
            outputs.literals[gate.signal.output_variable_name].CopyFrom(value)
        else:
            primitive = value.scalar.primitive
            if primitive.WhichOneof("value") != "boolean":
                node_run.error = _error(
                    "RuntimeExecutionError",
                    f"received a non-boolean approve signal value [{value}]",
                    ErrorKind.UNKNOWN,
                )
                self._finish_node(node_run, NodePhase.FAILED)
                return
            if not primitive.boolean:
                node_run.error = _error(
                    "ReceivedRejectSignal",
                    "received a reject signal to disapprove the node input values",
                )
                self._finish_node(node_run, NodePhase.FAILED)
                return
            outputs = node_run.inputs or literals_pb2.LiteralMap()
        self.store.write_proto(outputs_uri, outputs)
        node_run.output_uri = outputs_uri
        self._finish_node(node_run, NodePhase.SUCCEEDED)

    def _on_signal_set(self, run: _Run, key: tuple[str, ...]) -> None:
        for node_run in self._all_node_runs(run):
            if node_run.signal_key == key and not node_run.done:
                self._evaluate_gate(node_run)

    def _on_sleep_done(self, node_run: _NodeRun) -> None:
        if node_run.done:
            return
        node_run.output_uri = node_run.scope.run.uri(node_run.unique_id, "data", "0", "outputs.pb")
        self.store.write_proto(node_run.output_uri, literals_pb2.LiteralMap())
        self._finish_node(node_run, NodePhase.SUCCEEDED)

    def _on_gate_timeout(self, node_run: _NodeRun, seconds: float) -> None:
        if node_run.done:
            return
        node_run.error = _error(
            "RetriesExhausted|TimeoutExpired",
            "[1/1] currentAttempt done. Last Error: USER::task execution timeout "
            f"[{_format_duration(seconds)}] expired",
        )
        self._finish_node(node_run, NodePhase.FAILED)

    def _mark_running(self, node_run: _NodeRun, **fields: Any) -> None:
        if not node_run.reported_running:
            node_run.reported_running = True
            node_run.phase = NodePhase.RUNNING
            self._node_event(node_run, NodePhase.RUNNING, **fields)

    # Branch nodes.

    def _start_branch_node(self, node_run: _NodeRun) -> None:
        self._node_event(node_run, NodePhase.QUEUED, input_uri=node_run.inputs_uri)
        node_run.phase = NodePhase.QUEUED
        self._mark_running(node_run, is_parent=True)
        if_else = node_run.node.branch_node.if_else
        chosen: workflow_pb2.Node | None = None
        try:
            for case in [if_else.case, *if_else.other]:
                if evaluate_condition(case.condition, node_run.inputs or literals_pb2.LiteralMap()):
                    chosen = case.then_node
                    break
        except BindingError as error:
            node_run.error = _error(error.code, str(error))
            self._finish_node(node_run, NodePhase.FAILED)
            return
        if chosen is None and if_else.HasField("else_node"):
            chosen = if_else.else_node
        if chosen is None:
            message = if_else.error.message if if_else.HasField("error") else "no branch was taken"
            node_run.error = _error("UserProvidedError", message)
            self._finish_node(node_run, NodePhase.FAILED)
            return
        # The cases not taken are skipped without events, as propeller does.
        child = _NodeRun(
            node_run.scope,
            chosen,
            child_node_id(node_run.unique_id, 0, chosen.id),
            node_run,
            self._on_branch_child_done,
        )
        node_run.branch_child = child
        self._start_node(child)

    def _on_branch_child_done(self, child: _NodeRun) -> None:
        branch = child.parent
        if branch is None or branch.done or branch.aborting:
            return
        if child.phase in _SUCCESS_NODE_PHASES:
            branch.output_uri = self._copy_outputs(branch, child.output_uri)
            self._finish_node(branch, NodePhase.SUCCEEDED)
        else:
            branch.error = child.error or _error("BranchFailed", "the chosen branch failed")
            self._finish_node(branch, NodePhase.FAILED)

    def _copy_outputs(self, node_run: _NodeRun, source_uri: str) -> str:
        target = node_run.scope.run.uri(node_run.unique_id, "data", "0", "outputs.pb")
        data = (
            self.store.read_bytes(source_uri)
            if source_uri and self.store.exists(source_uri)
            else b""
        )
        self.store.write_bytes(target, data)
        return target

    # Workflow nodes: subworkflows and launch plans.

    def _start_workflow_node(self, node_run: _NodeRun) -> None:
        workflow_node = node_run.node.workflow_node
        self._node_event(node_run, NodePhase.QUEUED, input_uri=node_run.inputs_uri)
        node_run.phase = NodePhase.QUEUED
        if workflow_node.HasField("launchplan_ref"):
            self._acquire_slot(node_run, self._launch_child_execution)
            return
        run = node_run.scope.run
        subworkflow = run.subworkflows.get(_key(workflow_node.sub_workflow_ref))
        if subworkflow is None:
            self._fail_unsupported(
                node_run,
                f"subworkflow {workflow_node.sub_workflow_ref.name} is not in the compiled closure",
                code="SubWorkflowNotFound",
            )
            return
        self._mark_running(node_run, is_parent=True)
        node_run.child_scope = _Scope(
            run, subworkflow, node_run, node_run.inputs_uri, self._on_subworkflow_done
        )
        self._begin_scope(node_run.child_scope)

    def _on_subworkflow_done(self, scope: _Scope) -> None:
        node_run = scope.parent
        if node_run is None or node_run.done:
            return
        if scope.error is None:
            node_run.output_uri = self._copy_outputs(node_run, scope.output_uri)
            self._finish_node(node_run, NodePhase.SUCCEEDED)
        else:
            node_run.error = scope.error
            self._finish_node(node_run, NodePhase.FAILED)

    def _launch_child_execution(self, node_run: _NodeRun) -> None:
        run = node_run.scope.run
        if node_run.done or run.aborting:
            return
        name = child_execution_name(run.id.name, node_run.unique_id, 0)
        parent_id = identifier_pb2.NodeExecutionIdentifier(
            node_id=node_run.unique_id, execution_id=run.id
        )
        try:
            child_id = self.control_plane.create_child_execution(
                node_run.node.workflow_node.launchplan_ref,
                node_run.inputs or literals_pb2.LiteralMap(),
                parent_id,
                name,
            )
        except Exception as error:  # noqa: BLE001 - reported on the node
            node_run.error = _error("ChildExecutionFailed", f"could not launch: {error}")
            self._finish_node(node_run, NodePhase.FAILED)
            return
        node_run.child_execution = child_id
        with self._lock:
            self._child_waiters[_key(child_id)[:3]] = run
        metadata = event_pb2.WorkflowNodeMetadata(execution_id=child_id)
        self._mark_running(node_run, workflow_node_metadata=metadata)
        self._on_child_execution_done(run, _key(child_id)[:3])

    def _on_child_execution_done(self, run: _Run, child_key: tuple[str, ...]) -> None:
        node_run = next(
            (
                n
                for n in self._all_node_runs(run)
                if n.child_execution is not None and _key(n.child_execution)[:3] == child_key
            ),
            None,
        )
        if node_run is None or node_run.done:
            return
        try:
            child = self.control_plane.get_execution(node_run.child_execution)
        except Exception:  # noqa: BLE001 - asked again when the child reports done
            logger.debug("child execution %s not readable yet", child_key)
            return
        phase = child.closure.phase
        if phase not in _TERMINAL_WORKFLOW_PHASES:
            return
        if phase == WorkflowPhase.SUCCEEDED:
            node_run.output_uri = self._copy_outputs(node_run, child.closure.outputs.uri)
            self._finish_node(node_run, NodePhase.SUCCEEDED)
            return
        if phase == WorkflowPhase.ABORTED:
            node_run.error = _error(
                "RemoteChildWorkflowExecutionFailed",
                f"child execution [{node_run.child_execution.name}] was aborted",
            )
        else:
            node_run.error = execution_pb2.ExecutionError()
            node_run.error.CopyFrom(child.closure.error)
        self._finish_node(node_run, NodePhase.FAILED)

    def _all_node_runs(self, run: _Run) -> list[_NodeRun]:
        found: list[_NodeRun] = []

        def visit(scope: _Scope | None) -> None:
            if scope is None:
                return
            for node_run in scope.node_runs.values():
                visit_node(node_run)

        def visit_node(node_run: _NodeRun) -> None:
            found.append(node_run)
            visit(node_run.child_scope)
            if node_run.branch_child is not None:
                visit_node(node_run.branch_child)

        visit(run.root)
        return found

    # Events.

    def _record(self, record: Callable[[Any], None], event: Any) -> None:
        try:
            record(event)
        except Exception as error:  # noqa: BLE001 - the admin side's refusals are expected
            code = getattr(getattr(error, "code", None), "name", "")
            if code in ("ALREADY_EXISTS", "FAILED_PRECONDITION"):
                logger.debug("event refused (%s): %s", code, error)
            else:
                logger.warning("event %s refused: %r", type(event).__name__, error)

    def _workflow_event(self, run: _Run, phase: int, **fields: Any) -> None:
        run.phase = phase
        event = event_pb2.WorkflowExecutionEvent(
            execution_id=run.id, producer_id=PRODUCER_ID, phase=phase, occurred_at=_now(), **fields
        )
        if phase == WorkflowPhase.FAILING:
            run.error = fields.get("error")
        self._record(self.control_plane.record_workflow_event, event)

    def _node_event(self, node_run: _NodeRun, phase: int, **fields: Any) -> None:
        resume = node_run.scope.run.resume
        if resume is not None and resume.already_recorded(node_run.unique_id, phase):
            return
        now = _now()
        node = node_run.node
        event = event_pb2.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(
                node_id=node_run.unique_id, execution_id=node_run.scope.run.id
            ),
            producer_id=PRODUCER_ID,
            phase=phase,
            occurred_at=now,
            reported_at=now,
            spec_node_id=node.id,
            node_name=node.metadata.name or node.id,
            retry_group=node_run.retry_group,
            **{key: value for key, value in fields.items() if value not in (None, "")},
        )
        if node_run.parent is not None:
            event.parent_node_metadata.node_id = node_run.parent.unique_id
        if node_run.kind == "task_node":
            event.target_entity.CopyFrom(node.task_node.reference_id)
            if phase not in (NodePhase.QUEUED, NodePhase.SKIPPED) and not event.WhichOneof(
                "target_metadata"
            ):
                # Propeller's task handler reports the cache status (and the attempt's
                # checkpoint) on every transition after QUEUED; clients tell task nodes by it.
                event.task_node_metadata.cache_status = catalog_pb2.CACHE_DISABLED
                if node_run.attempts:
                    checkpoint = node_run.attempts[-1].paths.checkpoint_prefix
                    event.task_node_metadata.checkpoint_uri = checkpoint
        elif node_run.kind == "array_node":
            event.is_array = True
        elif node_run.kind == "workflow_node":
            reference = node.workflow_node
            event.target_entity.CopyFrom(
                reference.launchplan_ref
                if reference.HasField("launchplan_ref")
                else reference.sub_workflow_ref
            )
        if node_run.kind in ("branch_node",) or (
            node_run.kind == "workflow_node" and node.workflow_node.HasField("sub_workflow_ref")
        ):
            event.is_parent = True
        if phase != NodePhase.SKIPPED and node_run.inputs_uri and not event.input_uri:
            event.input_uri = node_run.inputs_uri
        self._record(self.control_plane.record_node_event, event)

    def _structural_node_event(
        self, scope: _Scope, spec_node_id: str, event: event_pb2.NodeExecutionEvent
    ) -> None:
        """Reports a start-node or end-node event of a scope."""
        now = _now()
        event.id.CopyFrom(
            identifier_pb2.NodeExecutionIdentifier(
                node_id=scope.unique_id(spec_node_id), execution_id=scope.run.id
            )
        )
        event.producer_id = PRODUCER_ID
        event.occurred_at.CopyFrom(now)
        event.reported_at.CopyFrom(now)
        event.spec_node_id = spec_node_id
        event.node_name = spec_node_id
        if scope.parent is not None:
            event.parent_node_metadata.node_id = scope.parent.unique_id
            event.retry_group = str(scope.parent.child_attempt)
        self._record(self.control_plane.record_node_event, event)

    def _task_event(
        self,
        node_run: _NodeRun,
        attempt: _Attempt,
        phase: int,
        *,
        reason: str = "",
        output_uri: str = "",
        error: execution_pb2.ExecutionError | None = None,
    ) -> None:
        run = node_run.scope.run
        template = run.tasks[_key(node_run.node.task_node.reference_id)]
        now = _now()
        event = event_pb2.TaskExecutionEvent(
            task_id=template.id,
            parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=node_run.unique_id, execution_id=run.id
            ),
            retry_attempt=attempt.number,
            phase=phase,
            producer_id=PRODUCER_ID,
            occurred_at=now,
            reported_at=now,
            input_uri=node_run.inputs_uri,
            reason=reason,
            task_type=template.type,
            logs=[
                execution_pb2.TaskLog(
                    uri=attempt.log_uri,
                    name=f"Task log (attempt {attempt.number})",
                    message_format=execution_pb2.TaskLog.UNKNOWN,
                )
            ],
            metadata=event_pb2.TaskExecutionMetadata(
                generated_name=f"{run.id.name}-{node_run.unique_id}-{attempt.number}",
                plugin_identifier="local-process",
            ),
        )
        if output_uri:
            event.output_uri = output_uri
        if error is not None:
            event.error.CopyFrom(error)
        self._record(self.control_plane.record_task_event, event)
