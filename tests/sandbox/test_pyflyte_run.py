"""``pyflyte run --remote`` (flytekit 1.16) runs every example workflow on the sandbox.

Each run packages the module, uploads it through the data proxy, registers it and launches it,
exactly as against a real Flyte; the result is then read back with FlyteRemote.
"""

from __future__ import annotations

import pytest
from flyte_examples import (
    EXAMPLES,
    processes_of_execution,
    pyflyte,
    remote_for,
    unique_name,
    wait_until,
)
from flytekit.models.core.execution import WorkflowExecutionPhase

pytestmark = pytest.mark.slow

SELF_TERMINATING = [
    pytest.param(
        "hello.py",
        "hello_wf",
        ["--name", "e2e"],
        WorkflowExecutionPhase.SUCCEEDED,
        "hello e2e",
        id="hello",
    ),
    pytest.param(
        "daily_report.py",
        "daily_report_wf",
        ["--kickoff_time", "2026-03-15T06:00:00", "--region", "us"],
        WorkflowExecutionPhase.SUCCEEDED,
        "report us 2026-03-15: 150 events",
        id="daily_report",
    ),
    pytest.param(
        "composition.py",
        "composed_wf",
        ["--x", "3"],
        WorkflowExecutionPhase.SUCCEEDED,
        49,
        id="composition",
    ),
    pytest.param(
        "branching.py",
        "branch_wf",
        ["--x", "5"],
        WorkflowExecutionPhase.SUCCEEDED,
        "5 is positive",
        id="branch",
    ),
    pytest.param(
        "failures.py",
        "retry_wf",
        [],
        WorkflowExecutionPhase.SUCCEEDED,
        "value 7 after 1 retry",
        id="retry",
    ),
    pytest.param(
        "failures.py", "failing_wf", [], WorkflowExecutionPhase.FAILED, None, id="always_fails"
    ),
    pytest.param(
        "failures.py",
        "keep_going_wf",
        ["--seconds", "0.5"],
        WorkflowExecutionPhase.FAILED,
        None,
        id="fail_after_executable_nodes",
    ),
]


def run_remote(config, module: str, workflow: str, inputs: list[str], *, wait: bool, name: str):
    flags = ["--wait", "--poll-interval", "1"] if wait else []
    return pyflyte(
        config,
        "run",
        "--remote",
        "--project",
        "flytesnacks",
        "--domain",
        "development",
        "--name",
        name,
        *flags,
        str(EXAMPLES / module),
        workflow,
        *inputs,
    )


@pytest.mark.parametrize(("module", "workflow", "inputs", "phase", "output"), SELF_TERMINATING)
def test_pyflyte_run_remote_reaches_expected_phase_and_outputs(
    flyte_sandbox_config, module, workflow, inputs, phase, output
):
    name = unique_name("run")

    result = run_remote(flyte_sandbox_config, module, workflow, inputs, wait=True, name=name)

    execution = remote_for(flyte_sandbox_config).fetch_execution(name=name)
    assert execution.closure.phase == phase, result.stdout + result.stderr
    if phase == WorkflowExecutionPhase.SUCCEEDED:
        assert result.returncode == 0, result.stderr
        assert execution.outputs["o0"] == output
    else:
        assert execution.closure.error.message


def test_pyflyte_run_remote_approval_pipeline_completes_after_approve_and_input(
    flyte_sandbox_config,
):
    name = unique_name("gate")
    result = run_remote(
        flyte_sandbox_config,
        "approvals.py",
        "approval_wf",
        ["--version", "1"],
        wait=False,
        name=name,
    )
    assert result.returncode == 0, result.stderr
    remote = remote_for(flyte_sandbox_config)

    wait_until(lambda: remote.list_signals(name), what="the review gate")
    remote.approve("review", name)
    wait_until(
        lambda: any(s.id.signal_id == "rollout_percent" for s in remote.list_signals(name)),
        what="the rollout_percent gate",
    )
    remote.set_input("rollout_percent", name, 25.0, python_type=float)

    execution = remote.wait(remote.fetch_execution(name=name), timeout=120, poll_interval=0.5)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert execution.outputs["o0"] == "release 2 at 25%"


def test_pyflyte_run_remote_long_sleep_is_aborted_and_its_process_killed(flyte_sandbox_config):
    name = unique_name("sleep")
    result = run_remote(
        flyte_sandbox_config, "long_sleep.py", "long_sleep_wf", [], wait=False, name=name
    )
    assert result.returncode == 0, result.stderr
    remote = remote_for(flyte_sandbox_config)
    wait_until(lambda: processes_of_execution(name), what="the sleeping task process")

    remote.terminate(remote.fetch_execution(name=name), cause="test is done with it")

    execution = remote.wait(remote.fetch_execution(name=name), timeout=60, poll_interval=0.5)
    assert execution.closure.phase == WorkflowExecutionPhase.ABORTED
    assert processes_of_execution(name) == []


def test_pyflyte_run_remote_passes_a_file_and_a_directory_from_task_to_task(
    flyte_sandbox_config,
):
    from flytekit.types.file import FlyteFile

    name = unique_name("files")

    result = pyflyte(
        flyte_sandbox_config,
        "run",
        "--remote",
        "--name",
        name,
        "--wait",
        "--poll-interval",
        "1",
        "tests/sandbox/workflows/file_passing.py",
        "file_pass_wf",
        "--text",
        "hello file",
        "--count",
        "3",
    )

    execution = remote_for(flyte_sandbox_config).fetch_execution(name=name)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, (
        result.stdout + result.stderr
    )
    assert result.returncode == 0, result.stderr
    assert execution.outputs["o0"] == "hello file"
    assert execution.outputs["o1"] == "nested/part-0.txt=0,part-1.txt=1,part-2.txt=2"
    with open(execution.outputs.get("o2", as_type=FlyteFile)) as handle:
        assert handle.read() == "hello file"


@pytest.mark.parametrize("style", ["file-uri", "bare-path"])
def test_a_raw_output_prefix_given_as_file_uri_or_path_passes_files_between_tasks(
    flyte_sandbox_config, tmp_path, style
):
    name = unique_name("rawpfx")
    target = tmp_path / "raw data"
    prefix = target.as_uri() if style == "file-uri" else str(target)

    result = pyflyte(
        flyte_sandbox_config,
        "run",
        "--remote",
        "--name",
        name,
        "--raw-output-data-prefix",
        prefix,
        "--wait",
        "--poll-interval",
        "1",
        "tests/sandbox/workflows/file_passing.py",
        "file_pass_wf",
        "--text",
        "raw prefix",
        "--count",
        "2",
    )

    execution = remote_for(flyte_sandbox_config).fetch_execution(name=name)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, (
        result.stdout + result.stderr + execution.closure.error.message
    )
    assert execution.outputs["o0"] == "raw prefix"
    assert execution.outputs["o1"] == "nested/part-0.txt=0,part-1.txt=1"
    assert execution.spec.raw_output_data_config.output_location_prefix == prefix
    assert list(target.rglob("x.txt")), "the task's file was not written under the prefix"


def test_pyflyte_run_remote_called_by_a_relative_path_from_a_subdirectory_succeeds(
    flyte_sandbox_config,
):
    """Run so, pyflyte packs ``../../<venv>/bin/pyflyte`` into the code tarball; a pod's tar
    strips the leading ``../`` and runs the task, and so does the sandbox."""
    import os
    import subprocess

    from flyte_examples import PYFLYTE

    name = unique_name("relative")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE_", "PYTEST_"))}
    result = subprocess.run(
        [os.path.relpath(PYFLYTE, EXAMPLES), "--config", str(flyte_sandbox_config), "run"]
        + ["--remote", "--project", "flytesnacks", "--domain", "development", "--name", name]
        + ["--wait", "--poll-interval", "1", "hello.py", "hello_wf", "--name", "relative"],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    execution = remote_for(flyte_sandbox_config).fetch_execution(
        project="flytesnacks", domain="development", name=name
    )
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED


RANDOM_MODULE = """
from flytekit import task, workflow
from flytekit.interfaces import random as flytekit_random


@task
def draw() -> int:
    return flytekit_random.random.getrandbits(62)


@workflow
def draw_wf() -> int:
    return draw()
"""


def test_tasks_forked_from_one_interpreter_draw_different_random_values(
    flyte_sandbox_config, tmp_path
):
    """flytekit names random files and directories from its own generator; each task must have
    fresh random state, as a new pod has, not the forking interpreter's."""
    module = tmp_path / "random_draws.py"
    module.write_text(RANDOM_MODULE)
    names = [unique_name("draw") for _ in range(2)]
    for name in names:
        result = pyflyte(
            flyte_sandbox_config,
            "run",
            "--remote",
            "--project",
            "flytesnacks",
            "--domain",
            "development",
            "--name",
            name,
            "--wait",
            "--poll-interval",
            "1",
            str(module),
            "draw_wf",
        )
        assert result.returncode == 0, result.stdout + result.stderr
    remote = remote_for(flyte_sandbox_config)
    draws = [
        remote.fetch_execution(project="flytesnacks", domain="development", name=name)
        for name in names
    ]
    values = [remote.sync_execution(e).outputs["o0"] for e in draws]

    assert values[0] != values[1]
