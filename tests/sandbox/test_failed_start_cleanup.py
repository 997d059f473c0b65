"""A sandbox start that fails leaves nothing behind it created, and everything that was there.

A start refused for a taken port used to leave a new data directory behind, with a database, a
lock file and a store in it. Ports are now checked before anything is created; a port taken
between that check and the bind (played here by skipping the check) is cleaned up after.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc
from recording_engine import RecordingEngine

from flyte_bridge.sandbox import server, start_sandbox
from flyte_bridge.sandbox.exclusive import PortUnavailableError


@pytest.fixture
def taken_port():
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture(params=["checked first", "taken after the check"])
def when(request, monkeypatch):
    """Where the start fails: at the check before anything is created, or at the bind itself."""
    if request.param == "taken after the check":
        monkeypatch.setattr(server, "_check_ports", lambda port, http_port: None)
    return request.param


def _ports(purpose: str, taken: int) -> dict[str, int]:
    return {"port": taken, "http_port": 0} if purpose == "gRPC" else {"port": 0, "http_port": taken}


def _tree(root: Path) -> dict[str, str | None]:
    """Every path below ``root``, with the text of the files that are not the sandbox's own."""
    tree = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        own = relative.startswith(("sandbox.", "store"))
        tree[relative] = None if path.is_dir() or own else path.read_text()
    return tree


@pytest.mark.parametrize("purpose", ["gRPC", "HTTP"])
def test_a_refused_start_leaves_no_new_data_dir_nor_its_new_parents(
    tmp_path, taken_port, when, purpose
):
    data_dir = tmp_path / "x" / "new"

    with pytest.raises(PortUnavailableError, match=f"{purpose} port 127.0.0.1:{taken_port}"):
        start_sandbox(data_dir=data_dir, engine=RecordingEngine(), **_ports(purpose, taken_port))

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("purpose", ["gRPC", "HTTP"])
def test_a_refused_start_keeps_an_empty_data_dir_and_adds_nothing_to_it(
    tmp_path, taken_port, when, purpose
):
    with pytest.raises(PortUnavailableError):
        start_sandbox(data_dir=tmp_path, engine=RecordingEngine(), **_ports(purpose, taken_port))

    assert tmp_path.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_a_refused_start_keeps_a_previous_sandbox_and_its_records(tmp_path, taken_port, when):
    (tmp_path / "notes.txt").write_text("mine\n")
    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as first:
        with grpc.insecure_channel(first.endpoint) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            project = project_pb2.Project(id="kept", name="kept")
            admin.RegisterProject(project_pb2.ProjectRegisterRequest(project=project))
    before = _tree(tmp_path)
    assert {"notes.txt", "sandbox.db", "sandbox.lock", "store"} <= set(before)

    with pytest.raises(PortUnavailableError):
        start_sandbox(data_dir=tmp_path, engine=RecordingEngine(), port=taken_port)

    assert _tree(tmp_path) == before
    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as again:
        with grpc.insecure_channel(again.endpoint) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            got = admin.GetProject(project_pb2.ProjectGetRequest(id="kept"))
    assert got.name == "kept"


def test_a_refused_temporary_start_removes_its_temporary_dir(
    tmp_path, taken_port, when, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    with pytest.raises(PortUnavailableError):
        start_sandbox(temporary=True, engine=RecordingEngine(), port=taken_port)

    assert list(tmp_path.iterdir()) == []


def test_a_start_refused_on_a_data_dir_in_use_removes_nothing_of_it(tmp_path):
    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as first:
        before = _tree(tmp_path)

        with pytest.raises(Exception, match="is in use by another sandbox"):
            start_sandbox(data_dir=tmp_path, engine=RecordingEngine())

        assert _tree(tmp_path) == before
        assert os.path.getsize(tmp_path / "sandbox.lock") > 0
        with grpc.insecure_channel(first.endpoint) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            assert len(admin.GetDomains(project_pb2.GetDomainRequest()).domains) == 3
