"""The fork server's client: it never deadlocks, and a zygote that stops answering is given up on.

These run fake zygotes (small Python scripts speaking the line protocol) so that each failure
mode is certain, not a race.
"""

from __future__ import annotations

import gc
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from flyte_bridge.sandbox import task_runner
from flyte_bridge.sandbox.task_runner import ForkedTaskProcess, ForkServer, ForkServerUnavailable


def _server(tmp_path: Path, **kwargs) -> ForkServer:
    return ForkServer(sys.executable, tmp_path / "fork-server.log", {}, **kwargs)


def _fake_zygote(tmp_path: Path, monkeypatch, body: str) -> None:
    script = tmp_path / "fake_zygote.py"
    script.write_text(textwrap.dedent(body))
    monkeypatch.setattr(task_runner, "ZYGOTE_SCRIPT", script)


def _in_thread(target, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread


def _wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


class _Cycle:
    """Keeps a forked process alive until the cyclic garbage collector runs."""

    def __init__(self, process: ForkedTaskProcess) -> None:
        self.process = process
        self.me = self


def test_a_process_collected_while_the_servers_lock_is_held_does_not_deadlock(tmp_path):
    server = _server(tmp_path)
    server._exit_codes[7] = 0

    def collect_under_the_lock() -> None:
        with server._lock:
            _Cycle(ForkedTaskProcess(pid=1, spawn_id=7, server=server))
            gc.collect()  # a collection can run at any allocation, in any thread

    thread = _in_thread(collect_under_the_lock, seconds=5)

    assert not thread.is_alive(), "the finalizer waited for a lock its own thread held"
    with server._lock:
        server._drop_forgotten()
    assert 7 not in server._exit_codes, "the forgotten exit code is dropped afterwards"


def test_a_zygote_that_never_answers_a_spawn_is_given_up_on(tmp_path, monkeypatch):
    _fake_zygote(
        tmp_path,
        monkeypatch,
        """
        import sys, time
        sys.stdin.readline()
        time.sleep(600)
        """,
    )
    server = _server(tmp_path, reply_timeout=0.5)
    started = time.monotonic()

    with pytest.raises(ForkServerUnavailable, match="did not answer within 0.5 s"):
        server.spawn(["pyflyte-execute"], {}, tmp_path / "cwd", tmp_path / "task.log")

    assert time.monotonic() - started < 5
    with pytest.raises(ForkServerUnavailable):
        server.spawn(["pyflyte-execute"], {}, tmp_path / "cwd", tmp_path / "task.log")
    closing = _in_thread(server.close, seconds=10)
    assert not closing.is_alive(), "close ends a zygote that stopped answering"


def test_close_wakes_a_spawn_waiting_for_its_reply(tmp_path, monkeypatch):
    _fake_zygote(
        tmp_path,
        monkeypatch,
        """
        import sys, time
        sys.stdin.readline()
        time.sleep(600)
        """,
    )
    server = _server(tmp_path, reply_timeout=60)
    outcome: list[BaseException] = []

    def spawn() -> None:
        try:
            server.spawn(["pyflyte-execute"], {}, tmp_path / "cwd", tmp_path / "task.log")
        except BaseException as error:  # noqa: BLE001 - the test looks at what was raised
            outcome.append(error)

    waiting = threading.Thread(target=spawn, daemon=True)
    waiting.start()
    _wait_until(lambda: server._pending, seconds=10)  # the request is sent, its reply awaited
    closing = _in_thread(server.close, seconds=10)
    waiting.join(5)

    assert not closing.is_alive() and not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ForkServerUnavailable)


def test_a_spawn_answered_in_time_returns_the_forked_pid(tmp_path, monkeypatch):
    _fake_zygote(
        tmp_path,
        monkeypatch,
        """
        import json, sys
        for line in sys.stdin:
            request = json.loads(line)
            print(json.dumps({"id": request["id"], "pid": 4242}), flush=True)
            print(json.dumps({"exited": 4242, "status": 3}), flush=True)
        """,
    )
    server = _server(tmp_path, reply_timeout=30)
    try:
        process = server.spawn(["pyflyte-execute"], {}, tmp_path / "cwd", tmp_path / "task.log")
        assert process.pid == 4242
        assert process.wait(10) == 3
    finally:
        server.close()


def test_close_kills_the_tasks_of_a_stuck_zygote_it_had_to_kill(tmp_path, monkeypatch):
    _fake_zygote(
        tmp_path,
        monkeypatch,
        """
        import json, os, sys, time
        request = json.loads(sys.stdin.readline())
        pid = os.fork()
        if pid == 0:
            os.setsid()  # as a real task: its own session, so it outlives its parent
            time.sleep(600)
            os._exit(0)
        print(json.dumps({"id": request["id"], "pid": pid}), flush=True)
        time.sleep(600)  # stuck: it never reads the end of its input
        """,
    )
    server = _server(tmp_path, reply_timeout=30)
    task = server.spawn(["pyflyte-execute"], {}, tmp_path / "cwd", tmp_path / "task.log")
    assert task_runner._process_alive(task.pid)

    server.close()

    _wait_until(lambda: not task_runner._process_alive(task.pid), seconds=10)
    assert task.wait(10) == -1, "its exit code is lost with the zygote, but the wait ends"
