"""The main job (README's first command, without the venv set-up) runs and every step ends well;
when a stage fails, its last frame says so and claims nothing for what did not run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
MAIN_JOB = REPO / "scripts" / "main_job.py"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
"""rich's default spinner: a stage still drawn with one in the last frame never ended."""


def step_rows(output: str, step: str) -> list[str]:
    """The summary's rows of one step (one per orchestrator)."""
    return [line for line in output.splitlines() if f"│ {step} " in line]


def test_the_main_job_drives_every_step_from_airflow_and_dagster(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(MAIN_JOB)],
        capture_output=True,
        text=True,
        timeout=540,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )

    output = completed.stdout
    assert completed.returncode == 0, output[-6000:] + completed.stderr[-3000:]
    assert "All 10 steps ended as expected" in output
    expected = {
        "launch + wait daily report": "SUCCEEDED",
        "read outputs": "SUCCEEDED",
        "approve gate + set input": "SUCCEEDED",
        "backfill a week": "SUCCEEDED",
        "terminate a long run": "ABORTED",
    }
    for step, phase in expected.items():
        rows = step_rows(output, step)
        assert len(rows) == 2, (step, rows)
        for row in rows:
            assert "✓" in row and f"│ {phase} " in row and "/console/projects/flytesnacks/" in row
    assert "o0 = 'release 2 at 25%'" in output
    assert "stopped by the example DAG" in output
    assert not list(tmp_path.glob("flyte-bridge-main-job-*")), "the job left its directory"


def test_a_failed_registration_is_shown_failed_and_nothing_after_it_claims_success(tmp_path):
    # A copy of the job and its examples, with a module of examples/flyte that does not parse.
    copy = tmp_path / "repo"
    for part in ("scripts", "examples"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "examples" / "flyte" / "hello_broken.py").write_text("def oops(:\n")
    work = tmp_path / "tmp"
    work.mkdir()

    completed = subprocess.run(
        [sys.executable, str(copy / "scripts" / "main_job.py")],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TMPDIR": str(work)},
    )

    output = completed.stdout
    assert completed.returncode == 2, output + completed.stderr[-3000:]
    assert "✗ pyflyte register examples/flyte: failed" in output
    assert "– Airflow: not run, the registration failed" in output
    assert "– Dagster: not run, the registration failed" in output
    assert "– Flyte: no execution ran" in output
    assert "✓ Flyte" not in output
    assert not set(SPINNER_FRAMES) & set(output), output
    # The error itself, from the end of pyflyte's log, and the kept logs.
    assert "hello_broken.py" in output and "SyntaxError" in output
    assert "The main job could not run: pyflyte-register failed (exit code 1)" in output
    assert list(work.glob("flyte-bridge-main-job-*/logs/pyflyte-register.log"))
