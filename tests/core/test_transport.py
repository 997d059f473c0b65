"""SyncTransport and AsyncTransport against a scripted flyteidl server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time

import grpc
import pytest
from _transport_fakes import ScriptedServer, Stall
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.core import identifier_pb2

from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import (
    FlyteAlreadyExistsError,
    FlyteAuthError,
    FlyteConfigError,
    FlyteFailedPreconditionError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
    FlyteServerError,
    FlyteTimeoutError,
    FlyteTransientError,
)
from flyte_bridge.transport import AsyncTransport, Deadline, SyncTransport

EXECUTION_ID = identifier_pb2.WorkflowExecutionIdentifier(
    project="flytesnacks", domain="development", name="abc123"
)


def get_request() -> execution_pb2.WorkflowExecutionGetRequest:
    return execution_pb2.WorkflowExecutionGetRequest(id=EXECUTION_ID)


def execution() -> execution_pb2.Execution:
    return execution_pb2.Execution(id=EXECUTION_ID)


def create_request() -> execution_pb2.ExecutionCreateRequest:
    return execution_pb2.ExecutionCreateRequest(
        project="flytesnacks", domain="development", name="abc123"
    )


@pytest.fixture
def server():
    fake = ScriptedServer().start()
    yield fake
    fake.stop()


def fast_config(endpoint: str, **changes) -> ClientConfig:
    values = dict(
        rpc_timeout=2.0, max_retries=3, retry_initial_backoff=0.01, retry_max_backoff=0.05
    )
    values.update(changes)
    return ClientConfig.for_sandbox(endpoint, **values)


@pytest.fixture
def transport(server):
    with SyncTransport(fast_config(server.endpoint)) as sync_transport:
        yield sync_transport


def test_unary_returns_the_server_response(server, transport):
    server.script("GetExecution", execution())

    response = transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert response.id.name == "abc123"
    assert server.calls_to("GetExecution")[0].request.id.name == "abc123"


def test_c27_read_is_retried_through_an_unavailable_burst(server, transport):
    server.script(
        "GetExecution", grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, execution()
    )

    response = transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert response.id.name == "abc123"
    assert len(server.calls_to("GetExecution")) == 3


def test_unavailable_after_every_retry_is_a_transient_error(server, transport):
    server.defaults["GetExecution"] = grpc.StatusCode.UNAVAILABLE

    with pytest.raises(FlyteTransientError) as raised:
        transport.unary(
            "admin", "GetExecution", get_request(), idempotent=True, subject="p/d/abc123"
        )

    assert len(server.calls_to("GetExecution")) == 4  # max_retries=3, so 4 attempts
    assert raised.value.grpc_code == "UNAVAILABLE"
    assert raised.value.subject == "p/d/abc123"
    assert "after 4 attempts" in str(raised.value)


def test_resource_exhausted_is_retried(server, transport):
    server.script(
        "ListExecutions", grpc.StatusCode.RESOURCE_EXHAUSTED, execution_pb2.ExecutionList()
    )

    transport.unary("admin", "ListExecutions", common_pb2.ResourceListRequest(), idempotent=True)

    assert len(server.calls_to("ListExecutions")) == 2


def test_call_not_marked_idempotent_is_never_retried(server, transport):
    server.script("CreateExecution", grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(FlyteTransientError):
        transport.unary("admin", "CreateExecution", create_request(), idempotent=False)

    assert len(server.calls_to("CreateExecution")) == 1


def test_c27_named_create_marked_idempotent_is_retried_and_lands_on_already_exists(
    server, transport
):
    # C27: admin created the execution but the answer was lost; the retry finds it.
    server.script(
        "CreateExecution",
        grpc.StatusCode.UNAVAILABLE,
        (grpc.StatusCode.ALREADY_EXISTS, "execution abc123 already exists"),
    )

    with pytest.raises(FlyteAlreadyExistsError) as raised:
        transport.unary("admin", "CreateExecution", create_request(), idempotent=True)

    assert len(server.calls_to("CreateExecution")) == 2
    assert raised.value.grpc_code == "ALREADY_EXISTS"


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (grpc.StatusCode.NOT_FOUND, FlyteNotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, FlyteAlreadyExistsError),
        (grpc.StatusCode.INVALID_ARGUMENT, FlyteInvalidInputError),
        (grpc.StatusCode.FAILED_PRECONDITION, FlyteFailedPreconditionError),
        (grpc.StatusCode.PERMISSION_DENIED, FlyteAuthError),
        (grpc.StatusCode.INTERNAL, FlyteServerError),
        (grpc.StatusCode.UNKNOWN, FlyteServerError),
    ],
)
def test_permanent_error_maps_to_its_type_after_one_attempt(server, transport, code, error_type):
    server.script("GetExecution", (code, "the server's own words"))

    with pytest.raises(error_type) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True, subject="x/y/z")

    assert len(server.calls_to("GetExecution")) == 1
    assert raised.value.grpc_code == code.name
    assert raised.value.subject == "x/y/z"
    assert "the server's own words" in raised.value.message
    assert isinstance(raised.value.rpc_error, grpc.RpcError)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_read_that_times_out_is_retried_then_raises_timeout(server):
    server.defaults["GetExecution"] = Stall(1.0)
    config = fast_config(server.endpoint, rpc_timeout=0.2, max_retries=1)

    with SyncTransport(config) as transport, pytest.raises(FlyteTimeoutError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert raised.value.grpc_code == "DEADLINE_EXCEEDED"
    assert "within 0.2s" in raised.value.message
    assert len(server.calls_to("GetExecution")) == 2


def test_idempotent_write_that_times_out_is_retried_and_lands_on_already_exists(server):
    # The first attempt's answer came too late: admin may have created the run, and only a
    # second attempt under the same name can tell.
    server.script(
        "CreateExecution", Stall(1.0), (grpc.StatusCode.ALREADY_EXISTS, "execution exists")
    )
    config = fast_config(server.endpoint, rpc_timeout=0.2, max_retries=2)

    with SyncTransport(config) as transport, pytest.raises(FlyteAlreadyExistsError):
        transport.unary("admin", "CreateExecution", create_request(), idempotent=True)

    assert len(server.calls_to("CreateExecution")) == 2


def test_write_not_marked_idempotent_that_times_out_is_sent_once(server):
    server.defaults["CreateExecution"] = Stall(1.0)
    config = fast_config(server.endpoint, rpc_timeout=0.2, max_retries=2)

    with SyncTransport(config) as transport, pytest.raises(FlyteTimeoutError):
        transport.unary("admin", "CreateExecution", create_request(), idempotent=False)

    assert len(server.calls_to("CreateExecution")) == 1


def test_a_deadline_error_the_server_answers_says_so_with_its_words(server, transport):
    server.script("GetExecution", (grpc.StatusCode.DEADLINE_EXCEEDED, "database query timed out"))

    with pytest.raises(FlyteTimeoutError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=False)

    assert "timed out on the server: database query timed out" in raised.value.message
    assert "got no answer" not in raised.value.message


def test_c05_deadline_bounds_a_call_to_a_server_that_stopped_answering(server):
    # C05: the per-RPC deadline is 5 s and retries are allowed, yet the budget of 0.5 s holds.
    server.defaults["GetExecution"] = Stall(3.0)
    config = fast_config(server.endpoint, rpc_timeout=5.0, max_retries=5)
    budget = Deadline(0.5)
    started = time.monotonic()

    with SyncTransport(config) as transport, pytest.raises(FlyteTimeoutError):
        transport.unary("admin", "GetExecution", get_request(), idempotent=True, deadline=budget)

    assert time.monotonic() - started < 1.0
    assert len(server.calls_to("GetExecution")) == 1


def test_budget_spent_between_retries_names_the_last_failure(server):
    server.defaults["GetExecution"] = grpc.StatusCode.UNAVAILABLE
    config = fast_config(server.endpoint, retry_initial_backoff=5.0, retry_max_backoff=5.0)

    with SyncTransport(config) as transport, pytest.raises(FlyteTimeoutError) as raised:
        transport.unary(
            "admin", "GetExecution", get_request(), idempotent=True, deadline=Deadline(0.3)
        )

    assert "last attempt ended with UNAVAILABLE" in str(raised.value)
    assert len(server.calls_to("GetExecution")) == 1


def test_spent_deadline_sends_nothing(server, transport):
    budget = Deadline(0.0)

    with pytest.raises(FlyteTimeoutError, match="time budget"):
        transport.unary("admin", "GetExecution", get_request(), idempotent=True, deadline=budget)

    assert server.calls_to("GetExecution") == []


def test_deadline_sleep_never_passes_the_budget():
    budget = Deadline(0.1)
    started = time.monotonic()

    budget.sleep(5.0)

    assert time.monotonic() - started < 0.5
    assert budget.expired()


def test_unbounded_deadline_never_expires():
    budget = Deadline(None)

    assert budget.remaining() is None
    assert not budget.expired()
    assert budget.cap(7.0) == 7.0


def test_unreachable_endpoint_is_a_transient_error():
    config = fast_config("127.0.0.1:1", max_retries=1)

    with SyncTransport(config) as transport, pytest.raises(FlyteTransientError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "127.0.0.1:1" in str(raised.value)
    assert "nothing listens there: connection refused" in str(raised.value)
    assert "ipv4:" not in str(raised.value)


def test_an_http_port_given_as_the_endpoint_fails_at_once_saying_it_is_not_grpc(flyte_sandbox):
    http_host_port = flyte_sandbox.http_url.split("//", 1)[1].rstrip("/")
    config = fast_config(http_host_port, max_retries=5)
    started = time.monotonic()

    with SyncTransport(config) as transport, pytest.raises(FlyteConfigError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "answered in HTTP/1, not gRPC" in str(raised.value)
    assert time.monotonic() - started < 2, "not retried"


def test_tls_to_a_plaintext_server_fails_at_once_saying_to_set_insecure(flyte_sandbox):
    config = ClientConfig(endpoint=flyte_sandbox.endpoint, insecure=False, max_retries=5)

    with SyncTransport(config) as transport, pytest.raises(FlyteConfigError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "does not speak TLS; set insecure" in str(raised.value)
    assert "attempts" not in str(raised.value)


def test_unauthenticated_without_credentials_explains_what_to_configure(server, transport):
    server.script("GetExecution", grpc.StatusCode.UNAUTHENTICATED)

    with pytest.raises(FlyteAuthError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "no credentials are set" in raised.value.message
    assert len(server.calls_to("GetExecution")) == 1


def test_unknown_method_is_refused_before_any_call(server, transport):
    with pytest.raises(FlyteInvalidInputError, match="GetExecutionz"):
        transport.unary("admin", "GetExecutionz", get_request(), idempotent=True)


def test_unknown_service_is_refused(transport):
    with pytest.raises(FlyteInvalidInputError, match="expected one of admin"):
        transport.unary("nope", "GetExecution", get_request(), idempotent=True)


def test_signal_and_dataproxy_services_are_reachable(server, transport):
    from flyteidl.admin import signal_pb2
    from flyteidl.service import dataproxy_pb2

    server.script("ListSignals", signal_pb2.SignalList())
    server.script("CreateDownloadLink", dataproxy_pb2.CreateDownloadLinkResponse())

    transport.unary("signal", "ListSignals", signal_pb2.SignalListRequest(), idempotent=True)
    transport.unary(
        "dataproxy",
        "CreateDownloadLink",
        dataproxy_pb2.CreateDownloadLinkRequest(),
        idempotent=True,
    )

    assert [c.method for c in server.calls] == ["ListSignals", "CreateDownloadLink"]


def test_closed_transport_refuses_calls(server):
    transport = SyncTransport(fast_config(server.endpoint))
    transport.close()

    with pytest.raises(Exception, match="closed"):
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)


def test_retries_are_logged_without_payloads(server, transport, caplog):
    server.script("GetExecution", grpc.StatusCode.UNAVAILABLE, execution())

    with caplog.at_level(logging.DEBUG, logger="flyte_bridge"):
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    retry_lines = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retry_lines and "AdminService/GetExecution failed with UNAVAILABLE" in retry_lines[0]


def test_async_unary_retries_and_returns(server):
    server.script("GetExecution", grpc.StatusCode.UNAVAILABLE, execution())

    async def run():
        async with AsyncTransport(fast_config(server.endpoint)) as transport:
            return await transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    response = asyncio.run(run())

    assert response.id.name == "abc123"
    assert len(server.calls_to("GetExecution")) == 2


def test_async_error_maps_to_the_same_type(server):
    server.script("GetExecution", (grpc.StatusCode.NOT_FOUND, "missing entity"))

    async def run():
        async with AsyncTransport(fast_config(server.endpoint)) as transport:
            await transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    with pytest.raises(FlyteNotFoundError, match="missing entity"):
        asyncio.run(run())


def test_async_deadline_bounds_a_stalled_call(server):
    server.defaults["GetExecution"] = Stall(3.0)
    config = fast_config(server.endpoint, rpc_timeout=5.0)

    async def run():
        async with AsyncTransport(config) as transport:
            await transport.unary(
                "admin", "GetExecution", get_request(), idempotent=True, deadline=Deadline(0.5)
            )

    started = time.monotonic()
    with pytest.raises(FlyteTimeoutError):
        asyncio.run(run())
    assert time.monotonic() - started < 1.0


def test_async_transport_survives_a_new_event_loop(server):
    server.defaults["GetExecution"] = execution()
    transport = AsyncTransport(fast_config(server.endpoint))

    async def call():
        return await transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    asyncio.run(call())
    asyncio.run(call())
    asyncio.run(transport.close())

    assert len(server.calls_to("GetExecution")) == 2


def test_importing_the_transport_loads_neither_grpc_nor_flyteidl():
    code = (
        "import sys, flyte_bridge.transport, flyte_bridge.auth, flyte_bridge.config;"
        "print(','.join(m for m in ('grpc', 'flyteidl', 'tenacity', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# Large messages


def test_responses_above_grpcs_4_mib_default_are_received(server, transport):
    # flytekit accepts 20 MiB; a big execution closure (error messages, spec) must get through.
    big = execution_pb2.Execution(id=EXECUTION_ID)
    big.closure.abort_metadata.cause = "x" * (21 * 1024 * 1024)
    server.script("GetExecution", big)

    response = transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert len(response.closure.abort_metadata.cause) == 21 * 1024 * 1024


def test_admins_longest_error_message_arrives_whole(server, transport):
    # Admin truncates status messages at 32,000 bytes; they travel as metadata.
    server.script("CreateExecution", (grpc.StatusCode.INVALID_ARGUMENT, "e" * 32_000))

    with pytest.raises(FlyteInvalidInputError) as raised:
        transport.unary("admin", "CreateExecution", create_request(), idempotent=False)

    assert raised.value.message.count("e") >= 32_000


# Connections that die


def test_c05_black_hole_server_is_bounded_by_the_rpc_deadline():
    # C05: a peer that accepts TCP but never speaks gRPC (a dead NAT entry looks the same).
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    endpoint = f"127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()
    try:
        config = fast_config(endpoint, rpc_timeout=0.5, max_retries=1)
        with SyncTransport(config) as transport, pytest.raises(FlyteTimeoutError):
            transport.unary(
                "admin", "GetExecution", get_request(), idempotent=True, deadline=Deadline(1.5)
            )
    finally:
        listener.close()

    assert time.monotonic() - started < 2.5


def test_c05_transport_reconnects_after_the_server_comes_back():
    first = ScriptedServer().start()
    first.defaults["GetExecution"] = execution()
    port = first.port
    config = fast_config(
        first.endpoint, max_retries=8, retry_initial_backoff=0.2, retry_max_backoff=1.0
    )
    transport = SyncTransport(config)
    try:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)
        first.stop()
        with pytest.raises((FlyteTransientError, FlyteTimeoutError)):
            transport.unary(
                "admin", "GetExecution", get_request(), idempotent=True, deadline=Deadline(0.3)
            )

        second = ScriptedServer(port=port)
        second.defaults["GetExecution"] = execution()
        second.start()
        try:
            transport.unary("admin", "GetExecution", get_request(), idempotent=True)
        finally:
            second.stop()
    finally:
        transport.close()

    assert len(second.calls_to("GetExecution")) == 1


# TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1 (key PEM, certificate PEM, path)."""
    import datetime
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    path.write_bytes(cert_pem)
    return key_pem, cert_pem, str(path)


@pytest.fixture
def tls_server(certificate):
    key_pem, cert_pem, _ = certificate
    fake = ScriptedServer().start(grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    fake.defaults["GetExecution"] = execution()
    yield fake
    fake.stop()


def tls_config(server: ScriptedServer, **changes) -> ClientConfig:
    values = dict(endpoint=f"localhost:{server.port}", rpc_timeout=3.0, max_retries=0)
    values.update(changes)
    return ClientConfig(**values)


def test_tls_with_a_ca_bundle(tls_server, certificate):
    config = tls_config(tls_server, ca_cert_path=certificate[2])

    with SyncTransport(config) as transport:
        response = transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert response.id.name == "abc123"


def test_tls_with_skip_verify_trusts_the_presented_certificate(tls_server):
    config = tls_config(tls_server, insecure_skip_verify=True)

    with SyncTransport(config) as transport:
        response = transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert response.id.name == "abc123"


def test_tls_with_an_unknown_certificate_fails_at_once_saying_to_give_its_ca(tls_server):
    config = tls_config(tls_server, max_retries=5)
    started = time.monotonic()

    with SyncTransport(config) as transport, pytest.raises(FlyteConfigError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "is not trusted" in raised.value.message and "ca_cert_path" in raised.value.message
    assert time.monotonic() - started < 2, "not retried"
    assert tls_server.calls_to("GetExecution") == []


def test_async_tls_with_skip_verify(tls_server):
    async def run():
        async with AsyncTransport(tls_config(tls_server, insecure_skip_verify=True)) as transport:
            return await transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert asyncio.run(run()).id.name == "abc123"


def test_concurrent_first_async_calls_open_one_tls_channel(tls_server):
    opened = []

    class CountingTransport(AsyncTransport):
        def _open_channel(self):
            opened.append(1)
            return super()._open_channel()

    async def run():
        config = tls_config(tls_server, insecure_skip_verify=True)
        async with CountingTransport(config) as transport:
            calls = [
                transport.unary("admin", "GetExecution", get_request(), idempotent=True)
                for _ in range(8)
            ]
            return await asyncio.gather(*calls)

    assert len(asyncio.run(run())) == 8
    assert len(opened) == 1


def test_token_travels_over_tls_without_plaintext_permission(tls_server, certificate):
    from flyte_bridge.config import AuthConfig, Secret

    auth = AuthConfig(mode="bearer", token=Secret.from_value("over-tls"))
    config = tls_config(tls_server, ca_cert_path=certificate[2], auth=auth)

    with SyncTransport(config) as transport:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert tls_server.calls_to("GetExecution")[0].metadata["authorization"] == "Bearer over-tls"


# Against the sandbox


def test_sandbox_not_found_is_typed_and_sent_once(flyte_sandbox):
    config = ClientConfig.for_sandbox(flyte_sandbox.endpoint)
    request = execution_pb2.WorkflowExecutionGetRequest(
        id=identifier_pb2.WorkflowExecutionIdentifier(
            project="flytesnacks", domain="development", name="doesnotexist"
        )
    )

    with SyncTransport(config) as transport, pytest.raises(FlyteNotFoundError) as raised:
        transport.unary("admin", "GetExecution", request, idempotent=True, subject="doesnotexist")

    assert raised.value.grpc_code == "NOT_FOUND"
    assert raised.value.subject == "doesnotexist"


def test_sandbox_flytekit_config_drives_both_transports(flyte_sandbox, flyte_sandbox_config):
    from flyteidl.admin import project_pb2

    config = ClientConfig.from_flytekit_config(flyte_sandbox_config)

    with SyncTransport(config) as transport:
        projects = transport.unary(
            "admin", "ListProjects", project_pb2.ProjectListRequest(), idempotent=True
        )

    async def run():
        async with AsyncTransport(config) as transport:
            return await transport.unary(
                "admin", "ListProjects", project_pb2.ProjectListRequest(), idempotent=True
            )

    assert "flytesnacks" in [p.id for p in projects.projects]
    assert asyncio.run(run()) == projects


def test_threads_share_one_channel_opened_once(server):
    from concurrent.futures import ThreadPoolExecutor

    server.defaults["GetExecution"] = execution()
    opened = []

    class CountingTransport(SyncTransport):
        def _open_channel(self):
            opened.append(1)
            return super()._open_channel()

    with CountingTransport(fast_config(server.endpoint)) as transport:
        with ThreadPoolExecutor(16) as pool:
            calls = [
                pool.submit(
                    transport.unary, "admin", "GetExecution", get_request(), idempotent=True
                )
                for _ in range(32)
            ]
            names = {call.result().id.name for call in calls}

    assert names == {"abc123"}
    assert len(opened) == 1
    assert len(server.calls_to("GetExecution")) == 32


def test_an_unreachable_endpoint_without_a_port_says_which_port_grpc_used():
    config = fast_config("127.0.0.1", max_retries=0)

    with SyncTransport(config) as transport, pytest.raises(FlyteTransientError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "no port given, so gRPC used 443" in str(raised.value)


@pytest.mark.parametrize(
    ("endpoint", "has_port"),
    [
        ("localhost:30080", True),
        ("[::1]:30080", True),
        ("dns:///admin.example.com", True),
        ("localhost", False),
        ("[::1]", False),
        ("admin.example.com", False),
    ],
)
def test_endpoints_without_a_port_are_told_apart(endpoint, has_port):
    from flyte_bridge._grpc_errors import _has_port

    assert _has_port(endpoint) is has_port


def test_plaintext_to_a_tls_server_says_not_to_set_insecure(tls_server):
    config = tls_config(tls_server, insecure=True)

    with SyncTransport(config) as transport, pytest.raises(FlyteTransientError) as raised:
        transport.unary("admin", "GetExecution", get_request(), idempotent=True)

    assert "if admin serves TLS, do not set insecure" in raised.value.message
