"""Runs one attempt of a flytekit Python task as a local subprocess, as a propeller pod would.

The task template's container args are rendered (``{{.input}}``, ``{{.outputPrefix}}``, ...),
the process gets propeller's environment, and what it leaves behind (``outputs.pb``,
``error.pb``, ``futures.pb``) is turned into an :class:`AttemptOutcome`.

``pyflyte-fast-execute`` is not run as such: it would download and unpack the code tarball on
every attempt and then start a second interpreter. The runner unpacks each tarball once into a
shared code directory and starts the wrapped ``pyflyte-execute`` directly with the arguments and
``PYTHONPATH`` that ``pyflyte-fast-execute`` would have given it. Deviation from propeller: the
unpacked code is shared by every attempt that uses the same tarball, and the task's working
directory is a fresh scratch directory rather than the directory the code was unpacked into.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import tarfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flyteidl.core import errors_pb2, execution_pb2, literals_pb2, tasks_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from flyte_bridge.sandbox.storage import DataStore

logger = logging.getLogger(__name__)

PYTHON_ENTRYPOINTS = ("pyflyte-fast-execute", "pyflyte-execute", "pyflyte-map-execute")
FORKABLE_ENTRYPOINTS = ("pyflyte-execute", "pyflyte-map-execute")
"""Commands the fork server can run in-process (see ``task_zygote.py``)."""
FSSPEC_LOCAL_CONFIG = {"FSSPEC_LOCAL": json.dumps({"auto_mkdir": True})}
"""fsspec's configuration from the environment: defaults for its local filesystem's arguments."""
_TEMPLATE_VARIABLE = re.compile(r"\{\{\s*[.$]\s*([A-Za-z_][\w.]*)\s*\}\}")
_LOG_TAIL_BYTES = 2000


class OutcomeKind(enum.Enum):
    """How an attempt ended, as the engine classifies it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DYNAMIC = "dynamic"


@dataclasses.dataclass(frozen=True)
class AttemptPaths:
    """Where one attempt reads and writes its data."""

    inputs_uri: str
    input_prefix: str
    output_prefix: str
    raw_output_prefix: str
    previous_checkpoint: str | None
    scratch_dir: Path
    log_path: Path

    @property
    def checkpoint_prefix(self) -> str:
        return f"{self.raw_output_prefix}/_flytecheckpoints"


@dataclasses.dataclass(frozen=True)
class AttemptOutcome:
    """The engine's reading of a finished attempt."""

    kind: OutcomeKind
    output_uri: str | None = None
    deck_uri: str | None = None
    futures_uri: str | None = None
    error: execution_pb2.ExecutionError | None = None
    retryable: bool = False

    @property
    def is_system_error(self) -> bool:
        return self.error is not None and self.error.kind == execution_pb2.ExecutionError.SYSTEM


def is_python_task(template: tasks_pb2.TaskTemplate) -> bool:
    """Whether the template is a flytekit Python task (its container runs pyflyte-execute)."""
    if not template.HasField("container"):
        return False
    argv = list(template.container.command) + list(template.container.args)
    return bool(argv) and argv[0] in PYTHON_ENTRYPOINTS


def render_args(
    args: Sequence[str], paths: AttemptPaths, inputs: literals_pb2.LiteralMap | None = None
) -> list[str]:
    """Substitutes propeller's template variables in the container args (case-insensitive)."""
    values = {
        "input": paths.inputs_uri,
        "inputprefix": paths.input_prefix,
        "outputprefix": paths.output_prefix,
        "rawoutputdataprefix": paths.raw_output_prefix,
        "checkpointoutputprefix": paths.checkpoint_prefix,
        "prevcheckpointprefix": paths.previous_checkpoint or '""',
        "perretryuniquekey": hashlib.sha1(paths.output_prefix.encode()).hexdigest()[:20],
        "namespace": "flyte-bridge-sandbox",
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.lower().startswith("inputs.") and inputs is not None:
            literal = inputs.literals.get(name.split(".", 1)[1])
            if literal is not None and literal.scalar.HasField("primitive"):
                primitive = literal.scalar.primitive
                return str(getattr(primitive, primitive.WhichOneof("value")))
        return values.get(name.lower(), match.group(0))

    return [_TEMPLATE_VARIABLE.sub(replace, arg) for arg in args]


class CodeCache:
    """Unpacks each fast-registration tarball once, into a directory named by its URI."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def directory(self, store: DataStore, distribution_uri: str) -> Path:
        """The directory holding the unpacked code of ``distribution_uri``."""
        key = hashlib.sha256(distribution_uri.encode()).hexdigest()[:32]
        target = self._root / key
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if target.is_dir():
                return target
            staging = self._root / f".{key}.{os.getpid()}.{threading.get_ident()}"
            staging.mkdir(parents=True, exist_ok=True)
            with tarfile.open(store.local_path(distribution_uri), "r:*") as archive:
                archive.extractall(staging, filter=_as_a_pod_unpacks)
            os.replace(staging, target)
            return target


def _as_a_pod_unpacks(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """Unpacks a fast-registration member as ``pyflyte-fast-execute``'s GNU tar does in a pod.

    pyflyte puts what it finds beside the code into the tarball, with the path it was given:
    run from a subdirectory as ``../../.venv/bin/pyflyte``, that includes ``../../`` entries.
    GNU tar strips leading ``/`` and ``../`` from member names and goes on, so the task runs;
    a member with ``..`` further in is skipped, as tar skips it. Links and modes are then
    checked by tarfile's ``data`` filter (nothing may point outside the directory).
    """
    parts = member.name.split("/")
    while parts and parts[0] in ("", ".", ".."):
        parts.pop(0)
    if not parts or ".." in parts:
        logger.debug("skipping tarball member %s", member.name)
        return None
    if len(parts) != len(member.name.split("/")):
        member = member.replace(name="/".join(parts), deep=False)
    try:
        return tarfile.data_filter(member, destination)
    except tarfile.FilterError as error:
        logger.warning("skipping tarball member %s: %s", member.name, error)
        return None


def fast_execute_argv(
    argv: Sequence[str], store: DataStore, code_cache: CodeCache
) -> tuple[list[str], Path | None]:
    """Turns a ``pyflyte-fast-execute ... -- pyflyte-execute ...`` command into its inner command.

    Returns the command to run and the code directory to put on ``PYTHONPATH``. A command that is
    not a fast-execute one, or whose tarball is not in the local store, is returned unchanged.
    """
    if not argv or argv[0] != "pyflyte-fast-execute" or "--" not in argv:
        return list(argv), None
    separator = argv.index("--")
    outer, inner = list(argv[1:separator]), list(argv[separator + 1 :])
    distribution = _option_value(outer, "--additional-distribution")
    if not distribution or urlparse(distribution).scheme not in ("", "file"):
        return list(argv), None
    if not store.exists(distribution):
        return list(argv), None
    code_dir = code_cache.directory(store, distribution)
    command: list[str] = []
    for arg in inner:
        if arg == "--resolver":
            command += ["--dynamic-addl-distro", distribution, "--dynamic-dest-dir", str(code_dir)]
        command.append(arg)
    return command, code_dir


def _option_value(args: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def task_environment(
    base: Mapping[str, str],
    *,
    python_bin_dir: Path,
    code_dir: Path | None,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The environment of a task process: the server's minus Flyte settings, plus propeller's.

    It also has fsspec create parent directories on writes to ``local://`` URIs, the store's raw
    data (see ``storage.py``), as a bucket needs none: flytekit asks that only of ``file://``.
    """
    env = {
        key: value
        for key, value in base.items()
        if not key.startswith(("FLYTE_", "_F_", "PYTEST_", "COV_CORE_"))
    }
    env["PATH"] = os.pathsep.join(filter(None, [str(python_bin_dir), env.get("PATH", "")]))
    env.update(FSSPEC_LOCAL_CONFIG)
    env.update(extra)
    if code_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(code_dir)]))
    return env


class TaskProcess:
    """A running task process in its own process group, with its output captured in a log file."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._popen.pid

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None if the process is still running after ``timeout`` seconds."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_group(self, grace_seconds: float) -> None:
        """SIGTERM to the whole process group, then SIGKILL if it is still alive after the grace."""
        if self._popen.poll() is not None:
            self._signal_group(signal.SIGKILL)
            return
        self._signal_group(signal.SIGTERM)
        if self.wait(grace_seconds) is None:
            self._signal_group(signal.SIGKILL)
            self._popen.wait()

    def _signal_group(self, signum: int) -> None:
        _signal_group(self.pid, signum)


class ForkedTaskProcess:
    """A task process forked by the :class:`ForkServer`; same interface as :class:`TaskProcess`."""

    def __init__(self, pid: int, spawn_id: int, server: ForkServer) -> None:
        self.pid = pid
        self._spawn_id = spawn_id
        self._server = server
        self._exit_code: int | None = None
        weakref.finalize(self, server.forget, spawn_id)

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None if the process is still running after ``timeout`` seconds."""
        if self._exit_code is None:
            self._exit_code = self._server.wait_for_exit(self._spawn_id, self.pid, timeout)
        return self._exit_code

    def kill_group(self, grace_seconds: float) -> None:
        """SIGTERM to the whole process group, then SIGKILL if it is still alive after the grace."""
        if self.wait(0) is not None:
            _signal_group(self.pid, signal.SIGKILL)
            return
        _signal_group(self.pid, signal.SIGTERM)
        if self.wait(grace_seconds) is None:
            _signal_group(self.pid, signal.SIGKILL)
            # Bounded: the exit is reported by the fork server, which may be stuck itself.
            self.wait(max(grace_seconds, 5.0))


ZYGOTE_SCRIPT = Path(__file__).with_name("task_zygote.py")

# How long a spawn waits for the zygote's reply. It covers the zygote's own start (importing
# flytekit, seconds on a loaded machine) before the first fork; a zygote silent for longer is
# stuck, and tasks are better started as plain subprocesses than not at all.
DEFAULT_REPLY_TIMEOUT_SECONDS = 60.0


class ForkServer:
    """Client of ``task_zygote.py``: starts task processes by forking a warm flytekit interpreter.

    The server process is started on first use with the task environment's interpreter. If it
    cannot start, dies or does not answer a spawn within ``reply_timeout`` seconds,
    :meth:`spawn` raises :class:`ForkServerUnavailable` and the caller starts the task as a
    plain subprocess instead.
    """

    def __init__(
        self,
        python_executable: str,
        log_path: Path,
        env: Mapping[str, str],
        *,
        reply_timeout: float = DEFAULT_REPLY_TIMEOUT_SECONDS,
    ) -> None:
        self._python = python_executable
        self._log_path = log_path
        self._env = dict(env)
        self._reply_timeout = reply_timeout
        self._lock = threading.Lock()
        self._exits = threading.Condition(self._lock)
        self._process: subprocess.Popen[bytes] | None = None
        self._pending: dict[int, list[Any]] = {}
        self._exit_codes: dict[int, int] = {}
        self._spawn_of_pid: dict[int, int] = {}
        # Spawns whose process object was collected. The finalizer only appends here (deque
        # appends need no lock): it can run in any thread, at any allocation, including one
        # made while that thread holds ``_lock``, so taking the lock there could deadlock.
        self._forgotten: collections.deque[int] = collections.deque()
        self._unwanted_exits: set[int] = set()
        self._ids = itertools.count()
        self._broken = False

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> ForkedTaskProcess:
        """Forks a task process running ``pyflyte-execute`` with these arguments."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        request_id = next(self._ids)
        request = {
            "id": request_id,
            "argv": list(argv),
            "env": dict(env),
            "cwd": str(cwd),
            "log": str(log_path),
        }
        slot: list[Any] = []
        with self._lock:
            process = self._ensure_started()
            self._pending[request_id] = slot
            try:
                assert process.stdin is not None
                process.stdin.write((json.dumps(request) + "\n").encode())
                process.stdin.flush()
            except OSError as error:
                self._broken = True
                raise ForkServerUnavailable(f"fork server is gone: {error}") from error
            self._exits.wait_for(lambda: slot or self._broken, self._reply_timeout)
            self._pending.pop(request_id, None)
            self._drop_forgotten()
            silent = not slot and not self._broken
            if silent:
                self._broken = True
                self._exits.notify_all()
        if silent:
            logger.warning(
                "the fork server did not answer a spawn within %s s; stopping it",
                self._reply_timeout,
            )
            self.close()
            # Stopped, not left running: a fork it made late would run a task twice. Closing
            # also ends the tasks it forked before, which then fail as system errors.
            raise ForkServerUnavailable(
                f"fork server did not answer within {self._reply_timeout:g} s"
            )
        if not slot:
            raise ForkServerUnavailable("fork server stopped answering")
        reply = slot[0]
        if "error" in reply:
            raise ForkServerUnavailable(f"fork failed: {reply['error']}")
        return ForkedTaskProcess(reply["pid"], request_id, self)

    def start_in_background(self) -> None:
        """Starts the server now, so that the first task does not wait for flytekit's import."""

        def start() -> None:
            with self._lock:
                try:
                    self._ensure_started()
                except ForkServerUnavailable as error:
                    logger.warning("%s", error)

        threading.Thread(target=start, name="flyte-fork-server-start", daemon=True).start()

    def wait_for_exit(self, spawn_id: int, pid: int, timeout: float | None) -> int | None:
        """The exit code of a forked task process, or None if it still runs after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._exits.wait_for(lambda: spawn_id in self._exit_codes or self._broken, timeout)
            if spawn_id in self._exit_codes:
                return self._exit_codes[spawn_id]
            if not self._broken:
                return None
        # The fork server died and can no longer report exits: ask the kernel until the process
        # is gone (its exit code is lost unless the server sent it before it went). This polls,
        # but only after the server has crashed or was stopped.
        while _process_alive(pid):
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
        with self._lock:
            return self._exit_codes.get(spawn_id, -1)

    def forget(self, spawn_id: int) -> None:
        """Drops the exit code of a process nobody can wait for any more (see ``_forgotten``)."""
        self._forgotten.append(spawn_id)

    def _drop_forgotten(self) -> None:
        """Drops what :meth:`forget` queued; called with ``_lock`` held."""
        while self._forgotten:
            spawn_id = self._forgotten.popleft()
            if self._exit_codes.pop(spawn_id, None) is None:
                self._unwanted_exits.add(spawn_id)

    def close(self) -> None:
        """Stops the fork server and every task process it started that still runs.

        A server that reads the end of its input kills its children itself; one that is stuck
        is killed after two seconds, and the process groups of the children it never reported
        as ended are killed here (each child has its own session, so none would end with it).
        """
        with self._lock:
            process, self._process = self._process, None
            self._broken = True
            self._exits.notify_all()
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        with self._lock:
            unreported = list(self._spawn_of_pid)
        for pid in unreported:
            _signal_group(pid, signal.SIGKILL)

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._broken:
            raise ForkServerUnavailable("fork server is not available")
        if self._process is not None:
            return self._process
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as log:
            try:
                self._process = subprocess.Popen(
                    [self._python, str(ZYGOTE_SCRIPT)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=self._env,
                    start_new_session=True,
                )
            except OSError as error:
                self._broken = True
                raise ForkServerUnavailable(f"cannot start the fork server: {error}") from error
        threading.Thread(
            target=self._read_replies, args=(self._process,), name="flyte-fork-server", daemon=True
        ).start()
        return self._process

    def _read_replies(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                # Exit codes are kept per spawn, not per pid, because pids are reused.
                self._drop_forgotten()
                if "exited" in reply:
                    spawn_id = self._spawn_of_pid.pop(reply["exited"], None)
                    if spawn_id in self._unwanted_exits:
                        self._unwanted_exits.discard(spawn_id)
                    elif spawn_id is not None:
                        self._exit_codes[spawn_id] = reply["status"]
                elif "pid" in reply:
                    self._spawn_of_pid[reply["pid"]] = reply["id"]
                if reply.get("id") in self._pending:
                    self._pending[reply["id"]].append(reply)
                self._exits.notify_all()
        with self._lock:
            self._broken = True
            self._exits.notify_all()
        logger.debug("fork server exited")


class ForkServerUnavailable(RuntimeError):
    """The fork server cannot start a task process; start it as a plain subprocess."""


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (ended, not reaped: its parent, the fork server, is gone
    and nobody adopted it) counts as ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != b"Z"


def read_outcome(
    store: DataStore,
    paths: AttemptPaths,
    *,
    exit_code: int,
    has_outputs: bool,
    max_output_bytes: int = 10 * 1024 * 1024,
) -> AttemptOutcome:
    """Interprets what a finished task process left in its output prefix (propeller's rules)."""
    error_uri = f"{paths.output_prefix}/error.pb"
    outputs_uri = f"{paths.output_prefix}/outputs.pb"
    futures_uri = f"{paths.output_prefix}/futures.pb"
    deck_uri = f"{paths.output_prefix}/deck.html"
    deck = deck_uri if store.exists(deck_uri) else None

    if store.exists(error_uri):
        return _outcome_from_error_document(store, error_uri)
    if store.exists(futures_uri):
        return AttemptOutcome(OutcomeKind.DYNAMIC, futures_uri=futures_uri, deck_uri=deck)
    if exit_code != 0:
        tail = log_tail(paths.log_path).strip()
        return AttemptOutcome(
            OutcomeKind.FAILED,
            error=make_error(
                "ProcessExited",
                f"task process exited with code {exit_code}"
                + (f"; last output:\n{tail}" if tail else " and wrote no output"),
                execution_pb2.ExecutionError.SYSTEM,
            ),
            retryable=True,
        )
    if store.exists(outputs_uri):
        if store.local_path(outputs_uri).stat().st_size > max_output_bytes:
            return AttemptOutcome(
                OutcomeKind.FAILED,
                error=make_error(
                    "OutputSizeExceeded",
                    f"outputs.pb is larger than {max_output_bytes} bytes",
                    execution_pb2.ExecutionError.USER,
                ),
            )
        return AttemptOutcome(OutcomeKind.SUCCEEDED, output_uri=outputs_uri, deck_uri=deck)
    if has_outputs:
        return AttemptOutcome(
            OutcomeKind.FAILED,
            error=make_error(
                "OutputsNotFound",
                "Outputs not generated by task execution",
                execution_pb2.ExecutionError.USER,
            ),
            retryable=True,
        )
    return AttemptOutcome(OutcomeKind.SUCCEEDED, deck_uri=deck)


def _outcome_from_error_document(store: DataStore, error_uri: str) -> AttemptOutcome:
    try:
        document = store.read_proto(error_uri, errors_pb2.ErrorDocument)
    except Exception:  # noqa: BLE001 - any unreadable document is the same engine error
        return AttemptOutcome(
            OutcomeKind.FAILED,
            error=make_error(
                "ErrorFileBadFormat",
                f"could not read the error document {error_uri}",
                execution_pb2.ExecutionError.SYSTEM,
            ),
            retryable=True,
        )
    container_error = document.error
    error = execution_pb2.ExecutionError(
        code=container_error.code,
        message=container_error.message,
        error_uri=error_uri,
        kind=container_error.origin,
        worker=container_error.worker,
    )
    if container_error.HasField("timestamp"):
        error.timestamp.CopyFrom(container_error.timestamp)
    return AttemptOutcome(
        OutcomeKind.FAILED,
        error=error,
        retryable=container_error.kind == errors_pb2.ContainerError.RECOVERABLE,
    )


def make_error(code: str, message: str, kind: int) -> execution_pb2.ExecutionError:
    """An ExecutionError stamped with the current time."""
    timestamp = Timestamp()
    timestamp.GetCurrentTime()
    return execution_pb2.ExecutionError(code=code, message=message, kind=kind, timestamp=timestamp)


def log_tail(path: Path) -> str:
    """The last couple of kilobytes of a log file, or an empty string."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
