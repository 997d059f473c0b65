"""The main job (README's first command, without the venv set-up) runs and every step ends well."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MAIN_JOB = Path(__file__).resolve().parents[1] / "scripts" / "main_job.py"


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
