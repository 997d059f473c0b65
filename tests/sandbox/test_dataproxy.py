"""DataProxyService: signed uploads checked against Content-MD5, downloads, flyte:// data."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import grpc
import pytest
from admin_builders import (
    DOMAIN,
    NODE,
    PROJECT,
    integer,
    launch,
    node_event,
    simple_launch_plan,
    unique,
)
from flyteidl.admin import event_pb2
from flyteidl.core import literals_pb2
from flyteidl.service import dataproxy_pb2, dataproxy_pb2_grpc
from google.protobuf import duration_pb2


@pytest.fixture(scope="module")
def proxy(bare_sandbox):
    channel = grpc.insecure_channel(bare_sandbox.endpoint)
    yield dataproxy_pb2_grpc.DataProxyServiceStub(channel)
    channel.close()


def _put(url: str, body: bytes, md5: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="PUT")
    if md5 is not None:
        request.add_header("Content-MD5", base64.b64encode(md5).decode())
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _location(proxy, body: bytes, **fields):
    return proxy.CreateUploadLocation(
        dataproxy_pb2.CreateUploadLocationRequest(
            project=PROJECT, domain=DOMAIN, content_md5=hashlib.md5(body).digest(), **fields
        )
    )


def test_fast_register_upload_lands_at_the_native_url(proxy, bare_sandbox):
    body = b"tarball bytes"

    location = _location(proxy, body, filename="fastabc.tar.gz")
    status = _put(location.signed_url, body, hashlib.md5(body).digest())

    assert status == 200
    assert location.signed_url.startswith("http://127.0.0.1:")
    assert location.native_url.startswith(str(bare_sandbox.data_dir))
    prefix = base64.b32encode(hashlib.md5(body).digest()).decode()
    assert location.native_url.endswith(f"/{PROJECT}/{DOMAIN}/{prefix}/fastabc.tar.gz")
    stored = bare_sandbox.data_dir / "store" / "uploads" / PROJECT / DOMAIN / prefix
    assert (stored / "fastabc.tar.gz").read_bytes() == body


def test_a_body_that_does_not_match_the_bound_md5_is_refused_with_400(proxy):
    location = _location(proxy, b"expected", filename="x.bin")

    assert _put(location.signed_url, b"something else") == 400


def test_a_tampered_signed_url_is_refused_with_403(proxy):
    location = _location(proxy, b"data", filename="y.bin")

    assert _put(location.signed_url.replace("y.bin", "z.bin"), b"data") == 403


def test_an_expired_upload_url_is_refused_with_403(proxy):
    location = _location(
        proxy, b"late", filename="late.bin", expires_in=duration_pb2.Duration(seconds=1)
    )
    time.sleep(2.1)

    assert _put(location.signed_url, b"late") == 403


def test_upload_without_md5_or_filename_root_is_invalid_argument(proxy):
    with pytest.raises(grpc.RpcError) as caught:
        proxy.CreateUploadLocation(
            dataproxy_pb2.CreateUploadLocationRequest(project=PROJECT, domain=DOMAIN, filename="f")
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "content_md5 or filename_root is a required parameter"


def test_an_expiry_over_an_hour_is_invalid_argument(proxy):
    with pytest.raises(grpc.RpcError) as caught:
        _location(proxy, b"x", expires_in=duration_pb2.Duration(seconds=7200))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_matching_md5_may_rewrite_an_existing_upload(proxy):
    body = b"same content"
    root = unique("root")
    first = _location(proxy, body, filename="f.txt", filename_root=root)
    _put(first.signed_url, body)

    again = _location(proxy, body, filename="f.txt", filename_root=root)

    assert again.native_url == first.native_url


def test_download_location_serves_the_uploaded_bytes(proxy):
    body = b"download me"
    location = _location(proxy, body, filename="d.txt")
    _put(location.signed_url, body)

    link = proxy.CreateDownloadLocation(
        dataproxy_pb2.CreateDownloadLocationRequest(native_url=location.native_url)
    )

    with urllib.request.urlopen(link.signed_url) as response:
        assert response.read() == body


@pytest.fixture(scope="module")
def node_with_data(bare_admin, bare_sandbox):
    """An execution whose node n0 succeeded with inputs {x: 3} and outputs {y: 6}."""
    launch_plan_id, _ = simple_launch_plan(bare_admin, "data")
    execution_id = launch(bare_admin, launch_plan_id, x=integer(3))
    store = bare_sandbox.data_dir / "store" / "t" / execution_id.name
    store.mkdir(parents=True)
    (store / "inputs.pb").write_bytes(
        literals_pb2.LiteralMap(literals={"x": integer(3)}).SerializeToString()
    )
    (store / "outputs.pb").write_bytes(
        literals_pb2.LiteralMap(literals={"y": integer(6)}).SerializeToString()
    )
    now = time.time()
    for event in (
        node_event(execution_id, "n0", NODE.QUEUED, now, input_uri=(store / "inputs.pb").as_uri()),
        node_event(
            execution_id, "n0", NODE.SUCCEEDED, now + 1, output_uri=(store / "outputs.pb").as_uri()
        ),
    ):
        bare_admin.CreateNodeEvent(event_pb2.NodeExecutionEventRequest(event=event))
    return f"flyte://v1/{PROJECT}/{DOMAIN}/{execution_id.name}/n0"


def test_get_data_returns_a_node_output_map(proxy, node_with_data):
    response = proxy.GetData(dataproxy_pb2.GetDataRequest(flyte_url=f"{node_with_data}/o"))

    assert response.literal_map.literals["y"].scalar.primitive.integer == 6


def test_get_data_returns_one_input_variable(proxy, node_with_data):
    response = proxy.GetData(dataproxy_pb2.GetDataRequest(flyte_url=f"{node_with_data}/i/x"))

    assert response.literal.scalar.primitive.integer == 3


@pytest.mark.parametrize(
    "suffix", ["/o/nope", "/7/o"], ids=["unknown-variable", "attempt-without-task-execution"]
)
def test_get_data_for_something_missing_is_invalid_argument(proxy, node_with_data, suffix):
    with pytest.raises(grpc.RpcError) as caught:
        proxy.GetData(dataproxy_pb2.GetDataRequest(flyte_url=node_with_data + suffix))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "attempt",
    ["99999999999999999999", str(2**32), "-1", "\u0663"],
    ids=["beyond-int64", "beyond-uint32", "negative", "non-ascii-digit"],
)
def test_get_data_with_an_attempt_out_of_range_is_invalid_argument_naming_the_url(
    proxy, node_with_data, attempt
):
    url = f"{node_with_data}/{attempt}/o"

    with pytest.raises(grpc.RpcError) as caught:
        proxy.GetData(dataproxy_pb2.GetDataRequest(flyte_url=url))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert url in caught.value.details()


@pytest.mark.parametrize("length", ["-1", "ten", "1e3"])
def test_an_upload_with_a_malformed_content_length_is_refused_with_400(proxy, length):
    upload_url = urlparse(_location(proxy, b"abc", filename="len.txt").signed_url)
    request = (
        f"PUT {upload_url.path}?{upload_url.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {length}\r\n\r\nabc"
    )
    with socket.create_connection((upload_url.hostname, upload_url.port), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.makefile("rb").readline()

    assert status_line.split()[1] == b"400"


def test_get_data_of_an_unknown_node_is_not_found(proxy):
    url = f"flyte://v1/{PROJECT}/{DOMAIN}/nosuchexec/n0/o"

    with pytest.raises(grpc.RpcError) as caught:
        proxy.GetData(dataproxy_pb2.GetDataRequest(flyte_url=url))

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
