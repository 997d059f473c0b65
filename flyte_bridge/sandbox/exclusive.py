"""What a sandbox must have to itself: its data directory and its ports.

Two sandboxes on one data directory would each resume the other's in-flight executions, kill its
task processes and run the tasks again. So a sandbox holds an exclusive ``flock`` on
``<data dir>/sandbox.lock`` from before it opens its database until it stops, and a second one
fails at once with :class:`DataDirInUseError`. The kernel drops the lock when the holding process
dies, however it dies, so a sandbox killed with SIGKILL leaves no stale lock behind; a process
forked from the sandbox's closes its copy of the lock's descriptor, so that it cannot keep the
lock after the sandbox died. The lock file names its holder (pid and endpoint) for that error; it
is emptied, not deleted, on stop. Only a start that fails deletes it, if it created it, and does
so before it unlocks.

Where ``fcntl`` does not exist (Windows), only sandboxes within one process are kept apart: a
second process can start a sandbox on a data directory that another process's sandbox is using.
On a filesystem that refuses locks, the sandbox logs a warning and starts with that same
in-process check only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from flyte_bridge.errors import FlyteConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_FILE = "sandbox.lock"

_guard = threading.Lock()
_held: dict[Path, DataDirLock] = {}


class DataDirInUseError(FlyteConfigError):
    """Another sandbox is serving this data directory.

    Attributes:
        data_dir: The directory asked for.
        holder_pid: Process id of the sandbox holding it, when its lock file says.
        holder_endpoint: gRPC endpoint of that sandbox, when its lock file says.
    """

    def __init__(self, data_dir: Path, holder: dict[str, Any] | None) -> None:
        holder = holder or {}
        self.data_dir = data_dir
        self.holder_pid: int | None = holder.get("pid")
        self.holder_endpoint: str | None = holder.get("endpoint")
        details = []
        if self.holder_pid is not None:
            own = " in this process" if self.holder_pid == os.getpid() else ""
            details.append(f"pid {self.holder_pid}{own}")
        if self.holder_endpoint:
            details.append(f"serving {self.holder_endpoint}")
        by = f" ({', '.join(details)})" if details else ""
        super().__init__(
            f"data directory {data_dir} is in use by another sandbox{by}; stop that one or use "
            "another data directory",
            subject=str(data_dir),
        )


class PortUnavailableError(FlyteConfigError):
    """A port the sandbox was asked to serve on cannot be bound (in use, or not allowed).

    Attributes:
        port: The port asked for.
        purpose: ``"gRPC"`` or ``"HTTP"``.
    """

    def __init__(self, purpose: str, port: int, reason: str) -> None:
        self.port = port
        self.purpose = purpose
        super().__init__(
            f"{purpose} port 127.0.0.1:{port} is not available ({reason}); choose another port, "
            "or 0 for a free one",
            subject=f"127.0.0.1:{port}",
        )


def check_port_number(name: str, port: object) -> None:
    """Raises FlyteConfigError unless ``port`` is a TCP port number, 0 to 65535 (0: any free)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise FlyteConfigError(
            f"{name} must be a port number from 0 to 65535 (0 picks a free one), got {port!r}"
        )


def check_port_free(purpose: str, port: int) -> None:
    """Raises :class:`PortUnavailableError` if nothing could listen on 127.0.0.1:``port`` now.

    Checked before gRPC binds, whose own failure is a bare RuntimeError with a log line on
    stderr. Port 0 (any free port) is always fine. ``SO_REUSEADDR`` is set as the servers set it,
    so a port whose old connections linger in TIME_WAIT (a restart) counts as free.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            raise PortUnavailableError(purpose, port, err.strerror or str(err)) from None


class DataDirLock:
    """The exclusive lock of one sandbox on its data directory; see the module docstring.

    Use :meth:`acquire`; :meth:`release` (safe to call twice) gives it up.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Locks ``data_dir`` (an existing, resolved directory) for this process.

        Raises:
            DataDirInUseError: Another sandbox, in this process or another, holds it.
        """
        lock = cls(data_dir)
        with _guard:
            if data_dir in _held:
                raise DataDirInUseError(data_dir, _read_holder(lock.path))
            # Not inherited by task processes (Python opens file descriptors close-on-exec).
            fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_file(fd, lock.path)
            except BaseException:
                os.close(fd)
                raise
            lock._fd = fd
            _held[data_dir] = lock
        lock.describe()
        return lock

    def describe(self, **details: Any) -> None:
        """Writes the holder's pid and ``details`` (``endpoint=...``) into the lock file."""
        fd = self._fd
        if fd is None:
            return
        text = json.dumps({"pid": os.getpid(), **details}).encode()
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, text)
        except OSError as err:
            logger.debug("cannot write the lock file %s: %s", self.path, err)

    def release(self) -> None:
        """Empties the lock file and unlocks the directory."""
        with _guard:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if _held.get(self.data_dir) is self:
                del _held[self.data_dir]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            if fcntl is not None:
                # Explicitly: a process forked from this one may share the descriptor.
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "released"
        return f"DataDirLock({str(self.data_dir)!r}, {state})"


def _lock_file(fd: int, path: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataDirInUseError(path.parent, _read_holder(path)) from None
        logger.warning(
            "cannot lock %s (%s): a sandbox in another process could use the same data directory",
            path,
            err,
        )


def _read_holder(path: Path) -> dict[str, Any] | None:
    """What the holder wrote into its lock file, or None if it is empty or unreadable."""
    try:
        holder = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _forget_in_child() -> None:
    """In a process forked from a sandbox's: let go of the lock's descriptors, not the lock.

    Otherwise a child that outlives a killed sandbox would keep its data directory locked.
    Closing a shared descriptor does not unlock it while the parent keeps its own.
    """
    global _guard
    _guard = threading.Lock()  # another thread of the parent may have held it at the fork
    for lock in list(_held.values()):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
