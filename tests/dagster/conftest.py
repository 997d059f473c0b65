"""Fixtures of the Dagster tests: a Dagster home per test, the resource on the session's sandbox
(where ``flyte_examples`` of tests/conftest.py registered the example workflows)."""

from pathlib import Path

import pytest

from dagster_resources import FlyteResource

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


CHECKS = "tests/dagster/workflows/dagster_checks.py"
CHECKS_VERSION = "dagster-checks-v1"


@pytest.fixture(scope="session")
def dagster_checks(flyte_sandbox_config, flyte_examples) -> str:
    """``tests/dagster/workflows/dagster_checks.py`` registered with its launch plans active
    (``tick_lp``, ``dagster_checks.window_wf``...), once per session."""
    from flyte_examples import register_modules

    register_modules(flyte_sandbox_config, CHECKS_VERSION, "--activate-launchplans", CHECKS)
    return CHECKS_VERSION
