"""Helpers for the end-to-end tests that run ``examples/flyte`` on the sandbox with flytekit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "flyte"
PROJECT = "flytesnacks"
DOMAIN = "development"
EXAMPLES_VERSION = "examples-v1"
PYFLYTE = str(Path(sys.executable).parent / "pyflyte")


def unique_name(prefix: str) -> str:
    """An execution name that no other test (or xdist worker) uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def pyflyte(config: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Runs ``pyflyte --config <config> <args>`` from the repository root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE_", "PYTEST_"))}
    return subprocess.run(
        [PYFLYTE, "--config", str(config), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def register_examples(config: Path) -> None:
    """Registers every example module, explicitly versioned, with ``pyflyte register``.

    Called once per test session (per xdist worker) by the ``flyte_examples`` fixture of
    ``tests/conftest.py``. The modules are globbed, so a new example is registered too, and
    passed one by one so that flytekit takes ``examples/flyte`` as the source root and names
    entities ``<module>.<name>`` (``hello.hello_wf``), as ``pyflyte run`` does. Launch plans are
    activated: a launch without a version then gets this one, whatever other versions tests
    register (the sandbox runs no schedules).
    """
    modules = sorted(str(path) for path in EXAMPLES.glob("*.py"))
    register_modules(config, EXAMPLES_VERSION, "--activate-launchplans", *modules)


def register_modules(config: Path, version: str, *modules_and_flags: str) -> None:
    """``pyflyte register`` of workflow modules in flytesnacks/development at ``version``."""
    result = pyflyte(
        config,
        "register",
        "--project",
        PROJECT,
        "--domain",
        DOMAIN,
        "--version",
        version,
        *modules_and_flags,
    )
    assert result.returncode == 0, f"pyflyte register failed:\n{result.stdout}\n{result.stderr}"


def remote_for(config: Path):
    """A flytekit FlyteRemote for the sandbox behind ``config``."""
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    return FlyteRemote(
        Config.auto(config_file=str(config)), default_project=PROJECT, default_domain=DOMAIN
    )


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Polls ``predicate`` until it returns something truthy; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def processes_of_execution(execution_name: str) -> list[int]:
    """Pids of live task processes of this execution (Linux /proc only).

    The executor runs every attempt in a scratch directory named after the execution
    (``.../scratch/<project>-<domain>-<name>/<node>-<attempt>``), so a process belongs to the
    execution if its working directory is below that one.
    """
    marker = f"-{execution_name}/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "/scratch/" in cwd and marker in cwd + "/" and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found
