"""A sandbox killed with SIGKILL and started again on its data dir continues what was in flight.

The sandbox runs as a ``flyte-bridge sandbox start`` subprocess, so the test can kill it the hard
way. While one execution waits on an approval gate, one sleeps in a sleep gate and one runs a
task, the process is killed; after the restart the gate is approved and all three must succeed,
continuing where they were, while a finished execution and every registration stay as they were.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from flyte_examples import (
    DOMAIN,
    PROJECT,
    REPO,
    processes_of_execution,
    register_modules,
    remote_for,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "flyte-bridge")
WORKFLOWS = "tests/sandbox/workflows/crash_recovery.py"
MODULE = "crash_recovery"
VERSION = "crash-v1"
SLEEP_SECONDS = 20  # crash_recovery.SLEEP_SECONDS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxProcess:
    """``flyte-bridge sandbox start`` on a fixed port and data dir, startable again after a kill."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.config = data_dir.parent / "flytekit.yaml"
        self.config.write_text(f"admin:\n  endpoint: dns:///127.0.0.1:{port}\n  insecure: true\n")

    def start(self) -> None:
        self.starts += 1
        log_path = self.data_dir.parent / f"sandbox-{self.starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE_", "PYTEST_"))}
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [CLI, "sandbox", "start", "--port", str(self.port), "--data-dir", self.data_dir],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
            )

        def ready() -> bool:
            assert self.process.poll() is None, "the sandbox exited:\n" + log_path.read_text()
            return "Press Ctrl-C" in log_path.read_text()

        wait_until(ready, timeout=60, what="the sandbox to serve")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the sandbox."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def sandbox_process(tmp_path):
    sandbox = SandboxProcess(tmp_path / "data", _free_port())
    sandbox.start()
    yield sandbox
    sandbox.stop()


def _launch(remote, workflow: str, x: int):
    launch_plan = remote.fetch_launch_plan(name=f"{MODULE}.{workflow}", version=VERSION)
    return remote.execute(launch_plan, inputs={"x": x}, execution_name=unique_name("crash"))


def _nodes(remote, execution):
    return remote.sync_execution(execution, sync_nodes=True).node_executions


def _phase_of_node(remote, execution, node_id: str) -> int | None:
    node = _nodes(remote, execution).get(node_id)
    return node.closure.phase if node is not None else None


def _registered(remote) -> dict[str, list[str]]:
    client = remote.client
    listings = {
        "tasks": client.list_task_ids_paginated,
        "workflows": client.list_workflow_ids_paginated,
        "launch_plans": client.list_launch_plan_ids_paginated,
    }
    return {
        kind: sorted(entity.name for entity in listing(PROJECT, DOMAIN, limit=200)[0])
        for kind, listing in listings.items()
    }


def test_in_flight_executions_resume_after_a_kill_9(sandbox_process):
    from flytekit.models.core.execution import NodeExecutionPhase as NodePhase
    from flytekit.models.core.execution import TaskExecutionPhase as TaskPhase
    from flytekit.models.core.execution import WorkflowExecutionPhase as Phase

    config = sandbox_process.config
    register_modules(config, VERSION, WORKFLOWS)
    remote = remote_for(config)
    finished = remote.wait(_launch(remote, "double_wf", 5), timeout=timedelta(seconds=120))
    assert finished.closure.phase == Phase.SUCCEEDED
    registered = _registered(remote)

    gate_run = _launch(remote, "gate_wf", 3)
    sleep_run = _launch(remote, "sleep_wf", 4)
    task_run = _launch(remote, "task_wf", 6)
    wait_until(
        lambda: _phase_of_node(remote, gate_run, "n1") == NodePhase.RUNNING,
        timeout=120,
        what="the gate to wait",
    )
    wait_until(
        lambda: _phase_of_node(remote, sleep_run, "n0") == NodePhase.RUNNING,
        what="the sleep gate to sleep",
    )
    wait_until(
        lambda: (
            processes_of_execution(task_run.id.name)
            and _phase_of_node(remote, task_run, "n0") == NodePhase.RUNNING
        ),
        timeout=120,
        what="the task to run",
    )
    gate_started = _nodes(remote, gate_run)["n1"].closure.started_at
    sleep_started = _nodes(remote, sleep_run)["n0"].closure.started_at
    assert _phase_of_node(remote, sleep_run, "n0") == NodePhase.RUNNING, "slept out before kill"

    sandbox_process.kill()
    sandbox_process.start()

    remote = remote_for(config)
    remote.approve("go", gate_run.id.name)
    runs = {
        name: remote.wait(run, timeout=timedelta(seconds=120), poll_interval=timedelta(seconds=0.5))
        for name, run in (("gate", gate_run), ("sleep", sleep_run), ("task", task_run))
    }

    assert {name: run.closure.phase for name, run in runs.items()} == {
        "gate": Phase.SUCCEEDED,
        "sleep": Phase.SUCCEEDED,
        "task": Phase.SUCCEEDED,
    }
    assert {name: run.outputs["o0"] for name, run in runs.items()} == {
        "gate": 12,
        "sleep": 8,
        "task": 7,
    }
    gate_node = runs["gate"].node_executions["n1"]
    assert gate_node.closure.started_at == gate_started
    sleep_node = runs["sleep"].node_executions["n0"]
    assert sleep_node.closure.started_at == sleep_started
    assert sleep_node.closure.duration >= timedelta(seconds=SLEEP_SECONDS)
    attempts = sorted(
        runs["task"].node_executions["n0"].task_executions, key=lambda t: t.id.retry_attempt
    )
    assert [(t.id.retry_attempt, t.closure.phase) for t in attempts] == [
        (0, TaskPhase.FAILED),
        (1, TaskPhase.SUCCEEDED),
    ]
    assert attempts[0].closure.error.code == "SandboxRestarted"
    assert "restarted" in attempts[0].closure.error.message
    wait_until(
        lambda: not processes_of_execution(task_run.id.name),
        what="the killed sandbox's task process to be gone",
    )
    survivor = remote.fetch_execution(name=finished.id.name)
    assert survivor.closure.phase == Phase.SUCCEEDED
    assert remote.sync_execution(survivor).outputs["o0"] == 10
    assert _registered(remote) == registered
