"""Fixtures shared by the whole suite; ``flyte_sandbox`` itself comes from the pytest11 plugin."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest


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
