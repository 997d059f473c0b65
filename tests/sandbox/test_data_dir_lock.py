"""One sandbox per data directory: a second start on a directory in use fails and changes nothing.

Without the lock a second sandbox resumed the first one's in-flight executions (failing or
re-running them) and killed its task processes. The lock must still let a sandbox start on the
directory once the first one stopped or was killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import grpc
import pytest
from admin_builders import WF, integer, launch, simple_launch_plan, workflow_event
from cli_runs import run_sandbox_start
from flyteidl.admin import event_pb2, execution_pb2, project_pb2
from flyteidl.service import admin_pb2_grpc
from recording_engine import RecordingEngine

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox import start_sandbox
from flyte_bridge.sandbox.exclusive import DataDirInUseError


def _admin(sandbox):
    channel = grpc.insecure_channel(sandbox.endpoint)
    return channel, admin_pb2_grpc.AdminServiceStub(channel)


def _running_execution(admin):
    """An execution the first sandbox has in flight (RUNNING, as propeller reported it)."""
    launch_plan_id, _ = simple_launch_plan(admin, "locked")
    execution_id = launch(admin, launch_plan_id, x=integer(1))
    admin.CreateWorkflowEvent(
        event_pb2.WorkflowExecutionEventRequest(
            event=workflow_event(execution_id, WF.RUNNING, time.time())
        )
    )
    return execution_id


def _phase(admin, execution_id) -> int:
    request = execution_pb2.WorkflowExecutionGetRequest(id=execution_id)
    return admin.GetExecution(request).closure.phase


@pytest.fixture
def first(tmp_path):
    engine = RecordingEngine()
    sandbox = start_sandbox(data_dir=tmp_path / "data", engine=engine)
    channel, admin = _admin(sandbox)
    try:
        yield sandbox, admin, engine
    finally:
        channel.close()
        sandbox.stop()


def test_a_second_start_in_the_same_process_fails_naming_the_holder_and_changes_nothing(first):
    sandbox, admin, engine = first
    execution_id = _running_execution(admin)

    with pytest.raises(DataDirInUseError) as caught:
        start_sandbox(data_dir=sandbox.data_dir, engine=RecordingEngine())

    error = caught.value
    assert isinstance(error, FlyteConfigError)
    assert error.data_dir == sandbox.data_dir
    assert str(sandbox.data_dir) in str(error)
    assert error.holder_pid == os.getpid()
    assert error.holder_endpoint == sandbox.endpoint
    assert sandbox.endpoint in str(error)
    # A second sandbox that got in would have ended it as SandboxRestarted.
    assert _phase(admin, execution_id) == WF.RUNNING
    assert engine.aborted == []
    assert len(admin.GetDomains(project_pb2.GetDomainRequest()).domains) == 3


def test_the_cli_refuses_a_data_dir_in_use_with_one_line_and_leaves_its_executions(first):
    sandbox, admin, _ = first
    execution_id = _running_execution(admin)

    result = run_sandbox_start("--port", "0", "--data-dir", str(sandbox.data_dir))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: data directory {sandbox.data_dir} is in use by another sandbox (pid "
        f"{os.getpid()}, serving {sandbox.endpoint}); stop that one or use another data directory"
    ]
    assert _phase(admin, execution_id) == WF.RUNNING


def test_a_stopped_sandbox_unlocks_its_data_dir(tmp_path):
    start_sandbox(data_dir=tmp_path, engine=RecordingEngine()).stop()

    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as second:
        channel, admin = _admin(second)
        with channel:
            assert len(admin.GetDomains(project_pb2.GetDomainRequest()).domains) == 3

    assert (tmp_path / "sandbox.lock").read_text() == ""


def test_a_sandbox_that_could_not_bind_its_port_unlocks_its_data_dir(tmp_path):
    with start_sandbox(data_dir=tmp_path / "first", engine=RecordingEngine()) as running:
        with pytest.raises(FlyteConfigError, match=f"127.0.0.1:{running.port}"):
            start_sandbox(data_dir=tmp_path / "second", port=running.port)

        start_sandbox(data_dir=tmp_path / "second", engine=RecordingEngine()).stop()


_HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from flyte_bridge.sandbox import start_sandbox

    sandbox = start_sandbox(data_dir=sys.argv[1])
    child = os.fork()
    # Each line is one write(2) of under PIPE_BUF bytes, so the two processes' lines never
    # interleave (print may write a line and its newline separately).
    if child == 0:
        # Written after the fork hooks ran: only then has the child let go of the descriptor.
        os.write(1, b"forked\\n")
        time.sleep(120)
        os._exit(0)
    os.write(1, f"{child} {sandbox.endpoint}\\n".encode())
    time.sleep(120)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_sandbox_killed_with_sigkill_leaves_no_lock_even_with_a_forked_child_alive(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    child = 0
    try:
        lines = [holder.stdout.readline(), holder.stdout.readline()]
        assert all(lines), f"the sandbox in the subprocess did not start: {lines}"
        assert "forked\n" in lines, lines
        lines.remove("forked\n")
        child_text, endpoint = lines[0].split()
        child = int(child_text)
        with pytest.raises(DataDirInUseError) as caught:
            start_sandbox(data_dir=tmp_path, engine=RecordingEngine())
        assert caught.value.holder_pid == holder.pid
        assert caught.value.holder_endpoint == endpoint

        holder.kill()
        holder.wait(timeout=30)
        os.kill(child, 0)  # the forked child still runs, with the lock file's descriptor

        with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as second:
            channel, admin = _admin(second)
            with channel:
                assert len(admin.GetDomains(project_pb2.GetDomainRequest()).domains) == 3
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if child:
            os.kill(child, signal.SIGKILL)
