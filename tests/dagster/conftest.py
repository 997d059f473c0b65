"""Fixtures of the Dagster tests: a Dagster home per test, the example workflows registered."""

import subprocess
import sys
from pathlib import Path

import pytest

from dagster_resources import FlyteResource

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_WORKFLOWS = REPO / "examples" / "flyte"
PROJECT, DOMAIN = "flytesnacks", "development"


@pytest.fixture(autouse=True)
def dagster_home(tmp_path, monkeypatch) -> Path:
    """Each test gets its own DAGSTER_HOME, so parallel workers never share run storage."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def flyte_examples(flyte_sandbox, flyte_sandbox_config) -> str:
    """Registers the example workflows the tests launch, with pyflyte as a user would."""
    version = "dagster-tests"
    files = ["hello.py", "daily_report.py", "failures.py", "long_sleep.py", "approvals.py"]
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pyflyte"),
            "--config",
            str(flyte_sandbox_config),
            "register",
            "--project",
            PROJECT,
            "--domain",
            DOMAIN,
            "--version",
            version,
            "--activate-launchplans",
            *files,
        ],
        check=True,
        capture_output=True,
        cwd=EXAMPLE_WORKFLOWS,
        timeout=300,
    )
    return version


@pytest.fixture(scope="session")
def flyte(flyte_sandbox, flyte_examples) -> FlyteResource:
    """The resource on the session's sandbox, polling fast."""
    return FlyteResource(
        endpoint=flyte_sandbox.endpoint,
        insecure=True,
        default_project=PROJECT,
        default_domain=DOMAIN,
        poll_interval=0.2,
        wait_timeout=240,
    )


@pytest.fixture(scope="session")
def client(flyte):
    """A core client on the sandbox, for launching outside Dagster and checking results."""
    return flyte.get_client()
