"""Fixtures shared by the whole suite; ``flyte_sandbox`` itself comes from the pytest11 plugin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

# tests/sandbox/flyte_examples.py holds the helpers that register and run the example workflows.
sys.path.insert(0, str(Path(__file__).resolve().parent / "sandbox"))


@pytest.fixture(scope="session")
def sandbox_channel(flyte_sandbox) -> Iterator[grpc.Channel]:
    """A plaintext gRPC channel to the session's sandbox."""
    channel = grpc.insecure_channel(flyte_sandbox.endpoint)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture(scope="session")
def admin(sandbox_channel):
    """An AdminService stub talking to the session's sandbox."""
    from flyteidl.service import admin_pb2_grpc

    return admin_pb2_grpc.AdminServiceStub(sandbox_channel)


@pytest.fixture(scope="session")
def signals(sandbox_channel):
    """A SignalService stub talking to the session's sandbox."""
    from flyteidl.service import signal_pb2_grpc

    return signal_pb2_grpc.SignalServiceStub(sandbox_channel)


@pytest.fixture(scope="session")
def dataproxy(sandbox_channel):
    """A DataProxyService stub talking to the session's sandbox."""
    from flyteidl.service import dataproxy_pb2_grpc

    return dataproxy_pb2_grpc.DataProxyServiceStub(sandbox_channel)


@pytest.fixture(scope="session")
def bare_sandbox(tmp_path_factory):
    """A second sandbox whose engine only records calls: for event-level admin-side tests."""
    from recording_engine import RecordingEngine

    from flyte_bridge.sandbox.api import start_sandbox

    engine = RecordingEngine()
    sandbox = start_sandbox(port=0, data_dir=tmp_path_factory.mktemp("bare-sandbox"), engine=engine)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def bare_admin(bare_sandbox):
    """An AdminService stub for the recording-engine sandbox."""
    from flyteidl.service import admin_pb2_grpc

    channel = grpc.insecure_channel(bare_sandbox.endpoint)
    try:
        yield admin_pb2_grpc.AdminServiceStub(channel)
    finally:
        channel.close()


@pytest.fixture(scope="session")
def bare_signals(bare_sandbox):
    """A SignalService stub for the recording-engine sandbox."""
    from flyteidl.service import signal_pb2_grpc

    channel = grpc.insecure_channel(bare_sandbox.endpoint)
    try:
        yield signal_pb2_grpc.SignalServiceStub(channel)
    finally:
        channel.close()


@pytest.fixture(scope="session")
def bare_engine(bare_sandbox):
    """The recording engine of ``bare_sandbox``."""
    return bare_sandbox.server.executions.engine


@pytest.fixture(scope="session")
def flyte_examples(flyte_sandbox_config) -> str:
    """Every module of ``examples/flyte`` registered in flytesnacks/development with pyflyte,
    launch plans activated, once per session (per xdist worker); the version registered.

    The only registration of the examples the suite shares: core, sandbox, Airflow and Dagster
    tests all launch ``hello.hello_wf``, ``daily_report`` and the rest from it.
    """
    from flyte_examples import EXAMPLES_VERSION, register_examples

    register_examples(flyte_sandbox_config)
    return EXAMPLES_VERSION


@pytest.fixture(scope="session")
def flyte_examples_remote(flyte_sandbox_config, flyte_examples):
    """flytekit's FlyteRemote on the session's sandbox, with ``examples/flyte`` registered."""
    from flyte_examples import remote_for

    return remote_for(flyte_sandbox_config)


@pytest.fixture(scope="session")
def large_data_runs(tmp_path_factory):
    """A third sandbox with small data limits and two finished runs whose data is large for it
    (see ``tests/sandbox/large_data_runs.py``); started once, for the sandbox and core tests."""
    from large_data_runs import start_large_data_runs

    runs = start_large_data_runs(tmp_path_factory.mktemp("large-data"))
    try:
        yield runs
    finally:
        runs.sandbox.stop()
