"""pytest plugin: a ``flyte_sandbox`` fixture, one sandbox per test session (per xdist worker).

Registered through the ``pytest11`` entry point, so any project that installs flyte-bridge can
use the fixture. Importing this module loads no grpc server and no flytekit; the sandbox starts
when a test first asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flyte_bridge.sandbox.api import Sandbox


@pytest.fixture(scope="session")
def flyte_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A running sandbox on a free port with a fresh data directory for this session.

    The sandbox has the project ``flytesnacks`` with the domains development, staging and
    production. ``flyte_sandbox.endpoint`` is the plaintext gRPC address and
    ``flyte_sandbox.write_flytekit_config(path)`` writes a flytekit config pointing at it.
    """
    from flyte_bridge.sandbox.api import start_sandbox

    data_dir = tmp_path_factory.mktemp("flyte-sandbox")
    sandbox = start_sandbox(port=0, data_dir=data_dir)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def flyte_sandbox_config(flyte_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory):
    """Path of a flytekit config file pointing at the session's sandbox."""
    return flyte_sandbox.write_flytekit_config(
        tmp_path_factory.mktemp("flyte-config") / "config.yaml"
    )


@pytest.fixture
def flyte_sandbox_faults(flyte_sandbox: Sandbox):
    """Fault injection of the session's sandbox, for one test; every fault is off afterwards.

    ``flyte_sandbox_faults.set(failure_rate=0.5, methods=["GetExecution"])`` or
    ``with flyte_sandbox_faults.injected(black_hole=True): ...``. Restrict faults to the methods
    the test is about: the session's other clients share the sandbox.
    """
    try:
        yield flyte_sandbox.faults
    finally:
        flyte_sandbox.faults.clear()
