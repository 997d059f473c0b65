"""A fork server for task processes: imports flytekit once, then forks one child per attempt.

Starting ``pyflyte-execute`` costs most of a second of CPU, nearly all of it importing flytekit.
This script runs in the task environment's interpreter (it imports nothing from flyte-bridge, so
that environment only needs flytekit), imports flytekit's entrypoint once and forks a child for
every task attempt. Each child starts its own session (process group), points stdout and stderr
at the attempt's log, takes the attempt's environment, working directory and ``PYTHONPATH``, and
runs ``pyflyte-execute`` (or ``pyflyte-map-execute`` for an item of a map task) in-process with
the attempt's arguments.

Protocol: one JSON object per line. Requests on stdin:
``{"id": n, "argv": [...], "env": {...}, "cwd": "...", "log": "..."}``. Replies on stdout:
``{"id": n, "pid": p}`` or ``{"id": n, "error": "..."}``, and ``{"exited": p, "status": code}``
when a child ends. When stdin closes (the server stopped or died), every child's process group is
killed and the server exits, so no task outlives the sandbox.

Deviation from a fresh ``pyflyte-execute``: flytekit's modules are shared from the parent, so
flytekit settings read from the environment at import time (logging level and format) are the
server's rather than the task's.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import sys
import traceback

# The entrypoints a child can run, by program name: flytekit's click commands behind them.
_COMMANDS = {
    "pyflyte-execute": "execute_task_cmd",
    "pyflyte-map-execute": "map_execute_task_cmd",
}


def _run_child(request: dict, channels: list[int]) -> None:
    """Runs in the forked child: becomes the task process; never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        for fd in channels:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        for position, path in enumerate(extra_paths, start=1):
            if path not in sys.path:
                sys.path.insert(position, path)
        argv = request["argv"]
        sys.argv = [argv[0], *argv[1:]]
        _reseed_random_generators()
        from flytekit.bin import entrypoint

        program = os.path.basename(argv[0])
        command = _COMMANDS.get(program)
        if command is None:
            raise ValueError(f"the fork server cannot run {program}")
        try:
            getattr(entrypoint, command).main(args=argv[1:], prog_name=program)
            code = 0
        except SystemExit as exit_request:
            code = exit_request.code if isinstance(exit_request.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must end with an exit code, whatever happens
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reseed_random_generators() -> None:
    """Gives the child fresh random state, as a new process would have.

    Python reseeds its global ``random`` after a fork, but not other ``Random`` instances:
    flytekit's own (``flytekit.interfaces.random.random``, behind its random file and
    directory names) would otherwise draw the same values in every task.
    """
    from flytekit.interfaces import random as flytekit_random

    flytekit_random.random.seed()


def main() -> None:
    """Serves spawn requests until stdin closes."""
    import flytekit.bin.entrypoint  # noqa: F401 - the whole point: import flytekit once

    requests = os.dup(0)
    replies = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)

    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ, "requests")
    selector.register(wake_read, selectors.EVENT_READ, "children")
    children: set[int] = set()
    buffer = b""

    def reply(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            written = os.write(replies, data)
            data = data[written:]

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)
            reply({"exited": pid, "status": os.waitstatus_to_exitcode(status)})

    open_requests = True
    while open_requests:
        for key, _ in selector.select():
            if key.data == "children":
                try:
                    while os.read(wake_read, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
                continue
            chunk = os.read(requests, 65536)
            if not chunk:
                open_requests = False
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                try:
                    pid = os.fork()
                except OSError as error:
                    reply({"id": request["id"], "error": str(error)})
                    continue
                if pid == 0:
                    _run_child(request, [requests, replies, wake_read, wake_write])
                children.add(pid)
                reply({"id": request["id"], "pid": pid})
        reap()

    for pid in list(children):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main()
