"""Starting, stopping and restarting the sandbox: CLI, Python API, pytest plugin, persistence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from admin_builders import WF, integer, launch, simple_launch_plan, workflow_event
from flyteidl.admin import common_pb2, event_pb2, execution_pb2, project_pb2
from flyteidl.service import admin_pb2_grpc

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox import start_sandbox

CLI = str(Path(sys.executable).parent / "flyte-bridge")


def _admin(sandbox):
    channel = grpc.insecure_channel(sandbox.endpoint)
    return channel, admin_pb2_grpc.AdminServiceStub(channel)


def test_importing_the_pytest_plugin_loads_neither_flytekit_nor_a_grpc_server():
    code = (
        "import sys, flyte_bridge.sandbox.pytest_plugin;"
        "print(','.join(m for m in ('flytekit', 'grpc', 'flyte_bridge.sandbox.server')"
        " if m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""


def test_registrations_survive_a_restart_on_the_same_data_dir(tmp_path):
    with start_sandbox(data_dir=tmp_path) as first:
        channel, admin = _admin(first)
        launch_plan_id, _ = simple_launch_plan(admin, "durable")
        channel.close()

    with start_sandbox(data_dir=tmp_path) as second:
        channel, admin = _admin(second)
        launch_plan = admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=launch_plan_id))
        projects = admin.ListProjects(project_pb2.ProjectListRequest())
        channel.close()

    assert launch_plan.id == launch_plan_id
    assert [p.id for p in projects.projects] == ["flytesnacks"]


def test_an_execution_left_running_by_a_stopped_sandbox_is_failed_on_restart(tmp_path):
    from recording_engine import RecordingEngine

    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as first:
        channel, admin = _admin(first)
        launch_plan_id, _ = simple_launch_plan(admin, "interrupted")
        execution_id = launch(admin, launch_plan_id, x=integer(1))
        admin.CreateWorkflowEvent(
            event_pb2.WorkflowExecutionEventRequest(
                event=workflow_event(execution_id, WF.RUNNING, time.time())
            )
        )
        channel.close()

    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as second:
        channel, admin = _admin(second)
        execution = admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id))
        channel.close()

    assert execution.closure.phase == WF.FAILED
    assert execution.closure.error.code == "SandboxRestarted"


def test_cli_start_prints_the_endpoint_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
    process = subprocess.Popen(
        [CLI, "sandbox", "start", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        while not any("Press Ctrl-C" in line for line in lines):
            line = process.stdout.readline()
            assert line, "the CLI exited before it was ready:\n" + "".join(lines)
            lines.append(line)
        endpoint = next(line for line in lines if "serving gRPC on" in line).split()[5]
        with grpc.insecure_channel(endpoint) as channel:
            domains = admin_pb2_grpc.AdminServiceStub(channel).GetDomains(
                project_pb2.GetDomainRequest(), timeout=10
            )
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert len(domains.domains) == 3
    assert any("endpoint: dns:///" in line for line in lines)
    assert returncode == 0


@pytest.mark.parametrize(("name", "value"), [("port", 70000), ("port", -1), ("http_port", 65536)])
def test_start_sandbox_refuses_a_port_outside_0_to_65535(tmp_path, name, value):
    with pytest.raises(FlyteConfigError, match=f"{name} must be a port number from 0 to 65535"):
        start_sandbox(data_dir=tmp_path, **{name: value})
