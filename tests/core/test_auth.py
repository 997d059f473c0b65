"""Authenticators, token requests, and auth through the transports (pitfalls C23, C25).

The OAuth2 token endpoint is a local http.server and admin a scripted gRPC server, both on
127.0.0.1: the sandbox serves neither auth nor fault injection yet.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import threading
import time

import grpc
import pytest
from _transport_fakes import HtmlProxy, ScriptedServer, TokenServer
from flyteidl.admin import execution_pb2
from flyteidl.service import auth_pb2

from flyte_bridge.auth import (
    ClientCredentialsAuthenticator,
    ServerAuthInfo,
    create_authenticator,
)
from flyte_bridge.config import AuthConfig, ClientConfig, Secret
from flyte_bridge.errors import (
    FlyteAuthError,
    FlyteConfigError,
    FlyteServerError,
    FlyteTransientError,
)
from flyte_bridge.transport import AsyncTransport, SyncTransport

CLIENT_SECRET = "s3cr3t/with+chars"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_server():
    fake = TokenServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def admin():
    fake = ScriptedServer().start()
    yield fake
    fake.stop()


def client_credentials(token_url: str | None, **changes) -> AuthConfig:
    values = dict(
        mode="client_credentials",
        client_id="airflow bot",
        client_secret=Secret.from_value(CLIENT_SECRET),
        token_endpoint=token_url,
        allow_plaintext=True,
    )
    values.update(changes)
    return AuthConfig(**values)


def authenticator_for(auth: AuthConfig, endpoint: str = "127.0.0.1:1", clock=None):
    config = ClientConfig(endpoint=endpoint, insecure=True, auth=auth)
    authenticator = create_authenticator(config, clock=clock)
    authenticator.apply_discovery(None)
    return authenticator


# Client credentials


def test_client_credentials_request_is_a_standard_grant(token_server):
    auth = client_credentials(token_server.url, scopes=("all", "offline"), audience="flyte")

    metadata = authenticator_for(auth).metadata()

    assert metadata == (("authorization", "Bearer token-1"),)
    request = token_server.requests[0]
    assert request.form == {
        "grant_type": "client_credentials",
        "scope": "all offline",
        "audience": "flyte",
    }
    basic = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == "airflow+bot:s3cr3t%2Fwith%2Bchars"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_token_is_cached_between_calls(token_server):
    authenticator = authenticator_for(client_credentials(token_server.url))

    first = authenticator.metadata()
    second = authenticator.metadata()

    assert first == second
    assert len(token_server.requests) == 1


def test_token_is_renewed_before_it_expires(token_server):
    token_server.lifetime = 100
    clock = FakeClock()
    authenticator = authenticator_for(client_credentials(token_server.url), clock=clock)
    authenticator.metadata()

    clock.now += 70  # 30 s left of 100: still good
    assert authenticator.cached_metadata() == (("authorization", "Bearer token-1"),)
    clock.now += 10  # 20 s left: inside the last quarter, renew
    assert authenticator.cached_metadata() is None

    assert authenticator.metadata() == (("authorization", "Bearer token-2"),)
    assert len(token_server.requests) == 2


def test_discovered_header_scopes_and_audience_are_used(token_server):
    config = ClientConfig(endpoint="127.0.0.1:1", insecure=True, auth=client_credentials(None))
    authenticator = create_authenticator(config)
    authenticator.apply_discovery(
        ServerAuthInfo(
            header_key="flyte-authorization",
            token_endpoint=token_server.url,
            scopes=("all",),
            audience="https://flyte.example.com",
        )
    )

    metadata = authenticator.metadata()

    assert metadata == (("flyte-authorization", "Bearer token-1"),)
    assert token_server.requests[0].form["scope"] == "all"
    assert token_server.requests[0].form["audience"] == "https://flyte.example.com"


def test_no_token_endpoint_anywhere_says_how_to_set_one():
    authenticator = authenticator_for(client_credentials(None))

    with pytest.raises(FlyteAuthError, match="set AuthConfig.token_endpoint"):
        authenticator.metadata()


def test_unauthorized_token_request_names_the_oauth_error(token_server):
    body = json.dumps({"error": "invalid_client", "error_description": "bad secret"})
    token_server.answers.append((401, "application/json", body))

    with pytest.raises(FlyteAuthError) as raised:
        authenticator_for(client_credentials(token_server.url)).metadata()

    message = str(raised.value)
    assert "refused the client credentials: HTTP 401 (invalid_client: bad secret)" in message
    assert CLIENT_SECRET not in message
    assert len(token_server.requests) == 1


def test_forbidden_token_request_is_not_called_a_bad_secret(token_server):
    token_server.answers.append((403, "application/json", json.dumps({"error": "access_denied"})))

    with pytest.raises(FlyteAuthError, match="does not allow this client to get a token: HTTP 403"):
        authenticator_for(client_credentials(token_server.url)).metadata()


def test_c23_html_401_from_a_proxy_is_a_readable_auth_error(token_server):
    page = "<!DOCTYPE html><html><head><title>Sign in - Corp SSO</title></head><body/></html>"
    token_server.answers.append((401, "text/html; charset=utf-8", page))

    with pytest.raises(FlyteAuthError) as raised:
        authenticator_for(client_credentials(token_server.url)).metadata()

    assert "HTTP 401 with an HTML page ('Sign in - Corp SSO')" in str(raised.value)
    assert "proxy" in str(raised.value)


def test_html_login_page_with_status_200_is_not_taken_for_a_token(token_server):
    token_server.answers.append((200, "text/html", "<html><title>Login</title></html>"))

    with pytest.raises(FlyteAuthError, match="HTML page"):
        authenticator_for(client_credentials(token_server.url)).metadata()


def test_answer_without_access_token_is_refused(token_server):
    token_server.answers.append((200, "application/json", json.dumps({"token_type": "Bearer"})))

    with pytest.raises(FlyteAuthError, match="without an access_token"):
        authenticator_for(client_credentials(token_server.url)).metadata()


def test_token_endpoint_outage_is_retried(token_server):
    token_server.answers.extend([(503, "text/plain", "busy"), (502, "text/html", "<html/>")])

    metadata = authenticator_for(client_credentials(token_server.url)).metadata()

    assert metadata == (("authorization", "Bearer token-3"),)
    assert len(token_server.requests) == 3


def test_token_endpoint_down_for_good_is_a_transient_error(token_server):
    token_server.answers.extend([(503, "text/plain", "busy")] * 3)

    with pytest.raises(FlyteTransientError, match="HTTP 503"):
        authenticator_for(client_credentials(token_server.url)).metadata()


def test_plaintext_token_endpoint_is_refused_for_a_tls_admin(token_server):
    auth = client_credentials(token_server.url, allow_plaintext=False)
    config = ClientConfig(endpoint="flyte.example.com:443", auth=auth)
    authenticator = create_authenticator(config)
    authenticator.apply_discovery(None)

    with pytest.raises(FlyteConfigError, match="only sent over https"):
        authenticator.metadata()
    assert token_server.requests == []


def test_one_refused_token_is_fetched_again_once_for_many_callers(token_server):
    authenticator = authenticator_for(client_credentials(token_server.url))
    refused = authenticator.metadata()

    results = []

    def caller():
        authenticator.invalidate(refused)
        results.append(authenticator.metadata())

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(token_server.requests) == 2
    assert set(results) == {(("authorization", "Bearer token-2"),)}


def test_tokens_and_secrets_never_reach_the_log(token_server, caplog):
    authenticator = authenticator_for(client_credentials(token_server.url))

    with caplog.at_level(logging.DEBUG):
        authenticator.metadata()
        authenticator.invalidate(authenticator.metadata())
        authenticator.metadata()

    assert "token-1" not in caplog.text and "token-2" not in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert "token-1" not in repr(authenticator._token)


# External command and static tokens


def command_auth(script: str) -> AuthConfig:
    return AuthConfig(
        mode="external_command", command=(sys.executable, "-c", script), allow_plaintext=True
    )


def test_external_command_output_is_the_token():
    authenticator = authenticator_for(command_auth("print('  cmd-token  ')"))

    assert authenticator.metadata() == (("authorization", "Bearer cmd-token"),)


def test_failing_external_command_reports_its_status_but_never_its_output():
    script = "import sys; sys.stderr.write('token Sup3rTokenXYZ rejected'); sys.exit(3)"

    with pytest.raises(FlyteAuthError, match="exited with status 3") as raised:
        authenticator_for(command_auth(script)).metadata()

    assert "Sup3rTokenXYZ" not in str(raised.value)


def test_external_command_that_prints_nothing_is_an_error():
    with pytest.raises(FlyteAuthError, match="printed nothing"):
        authenticator_for(command_auth("pass")).metadata()


def test_missing_external_command_is_an_error():
    auth = AuthConfig(
        mode="external_command", command=("no-such-token-tool",), allow_plaintext=True
    )

    with pytest.raises(FlyteAuthError, match="was not found"):
        authenticator_for(auth).metadata()


def test_external_command_gets_no_terminal_input():
    # A command that waits for a person reads end-of-file at once instead of hanging.
    script = "import sys; print(sys.stdin.read() or 'no-input')"

    assert authenticator_for(command_auth(script)).metadata()[0][1] == "Bearer no-input"


def test_jwt_expiry_schedules_the_next_command_run():
    clock = FakeClock()
    claims = base64.urlsafe_b64encode(json.dumps({"exp": time.time() + 100}).encode()).decode()
    jwt = f"eyJhbGciOiJub25lIn0.{claims.rstrip('=')}.sig"
    authenticator = authenticator_for(command_auth(f"print({jwt!r})"), clock=clock)
    authenticator.metadata()

    clock.now += 90

    assert authenticator.cached_metadata() is None


def test_bearer_token_is_sent_and_never_renewed():
    auth = AuthConfig(mode="bearer", token=Secret.from_value("static"), allow_plaintext=True)
    authenticator = authenticator_for(auth)

    metadata = authenticator.metadata()

    assert metadata == (("authorization", "Bearer static"),)
    assert authenticator.invalidate(metadata) is False


def test_bearer_token_from_a_file_is_read_again_when_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text("first\n")
    auth = AuthConfig(mode="bearer", token=Secret.from_file(path), allow_plaintext=True)
    authenticator = authenticator_for(auth)
    refused = authenticator.metadata()

    path.write_text("rotated\n")

    assert authenticator.invalidate(refused) is True
    assert authenticator.metadata() == (("authorization", "Bearer rotated"),)


def test_api_key_is_sent_verbatim_under_its_header():
    auth = AuthConfig(mode="api_key", token=Secret.from_value("k-123"), allow_plaintext=True)
    config = ClientConfig(endpoint="127.0.0.1:1", insecure=True, auth=auth)
    authenticator = create_authenticator(config)

    assert authenticator.needs_discovery is False
    assert authenticator.metadata() == (("x-api-key", "k-123"),)


def test_no_auth_means_no_authenticator():
    assert create_authenticator(ClientConfig.for_sandbox()) is None


# Through the transport


def listening_sockets() -> set[tuple[str, int]]:
    psutil = pytest.importorskip("psutil")
    connections = psutil.Process().net_connections(kind="inet")
    return {tuple(c.laddr) for c in connections if c.status == psutil.CONN_LISTEN}


def advertise_auth(admin: ScriptedServer, token_url: str, header: str = "flyte-authorization"):
    admin.defaults["GetPublicClientConfig"] = auth_pb2.PublicClientAuthConfigResponse(
        client_id="flytectl", authorization_metadata_key=header, scopes=["all"]
    )
    admin.defaults["GetOAuth2Metadata"] = auth_pb2.OAuth2MetadataResponse(
        issuer="http://127.0.0.1", token_endpoint=token_url
    )
    admin.token_header = header


def transport_config(admin: ScriptedServer, auth: AuthConfig | None) -> ClientConfig:
    return ClientConfig(
        endpoint=admin.endpoint,
        insecure=True,
        auth=auth,
        rpc_timeout=5.0,
        max_retries=2,
        retry_initial_backoff=0.01,
        retry_max_backoff=0.05,
    )


def get_execution(transport: SyncTransport):
    request = execution_pb2.WorkflowExecutionGetRequest()
    return transport.unary("admin", "GetExecution", request, idempotent=True)


def test_client_credentials_end_to_end_with_discovered_endpoint_and_header(admin, token_server):
    advertise_auth(admin, token_server.url)
    admin.accepted_tokens = {"token-1"}
    admin.defaults["GetExecution"] = execution_pb2.Execution()

    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        get_execution(transport)
        get_execution(transport)

    calls = admin.calls_to("GetExecution")
    assert [c.metadata.get("flyte-authorization") for c in calls] == ["Bearer token-1"] * 2
    assert len(admin.calls_to("GetPublicClientConfig")) == 1
    assert "flyte-authorization" not in admin.calls_to("GetOAuth2Metadata")[0].metadata
    assert token_server.requests[0].form["scope"] == "all"


def test_c23_expired_token_is_renewed_once_and_the_call_succeeds(admin, token_server):
    # C23: the token expires mid-wait; one token request, the call goes through.
    advertise_auth(admin, token_server.url)
    admin.accepted_tokens = {"token-1"}
    admin.defaults["GetExecution"] = execution_pb2.Execution()

    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        get_execution(transport)
        admin.accepted_tokens = {"token-2"}
        get_execution(transport)

    assert len(token_server.requests) == 2
    assert all(r.form["grant_type"] == "client_credentials" for r in token_server.requests)
    sent = [c.metadata.get("flyte-authorization") for c in admin.calls_to("GetExecution")]
    assert sent == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_c23_token_refused_again_after_renewal_is_an_auth_error(admin, token_server):
    advertise_auth(admin, token_server.url)
    admin.accepted_tokens = set()

    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        with pytest.raises(FlyteAuthError, match="even after a fresh token"):
            get_execution(transport)

    assert len(token_server.requests) == 2
    assert len(admin.calls_to("GetExecution")) == 2


def test_c23_permission_denied_is_raised_without_touching_the_token(admin, token_server):
    advertise_auth(admin, token_server.url)
    admin.script("GetExecution", (grpc.StatusCode.PERMISSION_DENIED, "not in project"))

    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        with pytest.raises(FlyteAuthError, match="not in project") as raised:
            get_execution(transport)

    assert raised.value.grpc_code == "PERMISSION_DENIED"
    assert len(token_server.requests) == 1
    assert len(admin.calls_to("GetExecution")) == 1


def test_c23_unknown_status_never_triggers_a_token_refresh(admin, token_server):
    advertise_auth(admin, token_server.url)
    admin.script("GetExecution", (grpc.StatusCode.UNKNOWN, "handler crashed"))

    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        with pytest.raises(FlyteServerError):
            get_execution(transport)

    assert len(token_server.requests) == 1
    assert len(admin.calls_to("GetExecution")) == 1


def test_admin_without_auth_metadata_and_no_token_url_explains_the_setting(admin):
    # Real admin with auth off answers UNIMPLEMENTED for AuthMetadataService.
    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        with pytest.raises(FlyteAuthError, match="does not advertise a token endpoint"):
            get_execution(transport)

    assert admin.calls_to("GetExecution") == []


def test_bearer_token_works_when_auth_metadata_is_refused_anonymously(admin):
    admin.defaults["GetPublicClientConfig"] = grpc.StatusCode.UNAUTHENTICATED
    admin.defaults["GetExecution"] = execution_pb2.Execution()
    auth = AuthConfig(mode="bearer", token=Secret.from_value("tok"), allow_plaintext=True)

    with SyncTransport(transport_config(admin, auth)) as transport:
        get_execution(transport)

    assert admin.calls_to("GetExecution")[0].metadata["authorization"] == "Bearer tok"


def test_auth_metadata_outage_fails_the_call_and_is_asked_again(admin, token_server):
    admin.script("GetPublicClientConfig", *[grpc.StatusCode.UNAVAILABLE] * 3)
    advertise_auth(admin, token_server.url)
    admin.defaults["GetExecution"] = execution_pb2.Execution()

    with SyncTransport(transport_config(admin, client_credentials(None))) as transport:
        with pytest.raises(FlyteTransientError):
            get_execution(transport)
        get_execution(transport)

    assert len(admin.calls_to("GetPublicClientConfig")) == 4
    assert len(admin.calls_to("GetExecution")) == 1


def test_static_bearer_token_refused_is_not_retried(admin):
    admin.accepted_tokens = {"other"}
    auth = AuthConfig(mode="bearer", token=Secret.from_value("stale"), allow_plaintext=True)

    with SyncTransport(transport_config(admin, auth)) as transport:
        with pytest.raises(FlyteAuthError, match="refused the configured bearer"):
            get_execution(transport)

    assert admin.calls_to("GetExecution")[0].metadata["authorization"] == "Bearer stale"
    assert len(admin.calls_to("GetExecution")) == 1


def test_c25_pkce_config_on_a_server_that_wants_auth_fails_fast_without_a_browser(admin, tmp_path):
    # C25: a headless worker configured with Pkce gets an error at once, not a login prompt.
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"admin:\n  endpoint: {admin.endpoint}\n  insecure: true\n  authType: Pkce\n"
    )
    admin.accepted_tokens = set()
    config = ClientConfig.from_flytekit_config(config_file, max_retries=0)
    listening_before = listening_sockets()
    started = time.monotonic()

    with SyncTransport(config) as transport, pytest.raises(FlyteAuthError) as raised:
        get_execution(transport)

    assert time.monotonic() - started < 3.0
    assert "asks for Pkce" in str(raised.value)
    assert "client credentials" in str(raised.value)
    assert admin.calls_to("GetPublicClientConfig") == []
    assert listening_sockets() == listening_before


def test_c23_async_transport_renews_an_expired_token(admin, token_server):
    advertise_auth(admin, token_server.url)
    admin.accepted_tokens = {"token-1"}
    admin.defaults["GetExecution"] = execution_pb2.Execution()
    request = execution_pb2.WorkflowExecutionGetRequest()

    async def run():
        async with AsyncTransport(transport_config(admin, client_credentials(None))) as transport:
            await transport.unary("admin", "GetExecution", request, idempotent=True)
            admin.accepted_tokens = {"token-2"}
            await transport.unary("admin", "GetExecution", request, idempotent=True)

    asyncio.run(run())

    assert len(token_server.requests) == 2
    sent = [c.metadata.get("flyte-authorization") for c in admin.calls_to("GetExecution")]
    assert sent == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_authenticator_type_for_client_credentials():
    config = ClientConfig(
        endpoint="127.0.0.1:1", insecure=True, auth=client_credentials("http://127.0.0.1:9/t")
    )

    assert isinstance(create_authenticator(config), ClientCredentialsAuthenticator)


@pytest.fixture
def html_proxy():
    """Starts HtmlProxy instances for a test and stops them after it."""
    started: list[HtmlProxy] = []

    def start(status: int) -> HtmlProxy:
        started.append(HtmlProxy(status=status))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def test_c23_html_401_from_a_proxy_in_front_of_admin_is_an_auth_error(html_proxy):
    # C23 / flytekit#2156: the proxy answers the gRPC call itself, with an HTML login page.
    proxy = html_proxy(401)
    config = ClientConfig.for_sandbox(proxy.endpoint, rpc_timeout=3.0, max_retries=0)

    with SyncTransport(config) as transport, pytest.raises(FlyteAuthError) as raised:
        get_execution(transport)

    assert raised.value.grpc_code == "UNAUTHENTICATED"
    assert "status: 401 (an HTTP proxy or load balancer answered, not admin)" in str(raised.value)
    assert "requires authentication" in str(raised.value)
    assert proxy.requests == 1


def test_c23_html_403_from_a_proxy_is_an_auth_error_without_a_token_refresh(
    html_proxy, token_server
):
    proxy = html_proxy(403)
    auth = client_credentials(token_server.url, header="authorization", scopes=("all",))
    config = ClientConfig(endpoint=proxy.endpoint, insecure=True, auth=auth, max_retries=0)

    with SyncTransport(config) as transport, pytest.raises(FlyteAuthError) as raised:
        get_execution(transport)

    assert raised.value.grpc_code == "PERMISSION_DENIED"
    assert len(token_server.requests) == 1
    assert proxy.requests == 1


# Proxy credentials (proxy_command)


def counting_command(tmp_path, prefix: str) -> tuple[str, ...]:
    """A command printing ``<prefix>-<n>``, n counting its runs."""
    counter = tmp_path / f"{prefix}.count"
    script = (
        f"import pathlib; p = pathlib.Path({str(counter)!r}); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; "
        f"p.write_text(str(n)); print(f'{prefix}-{{n}}')"
    )
    return (sys.executable, "-c", script)


def test_proxy_credential_goes_on_every_call_and_token_request(admin, token_server, tmp_path):
    advertise_auth(admin, token_server.url)
    admin.accepted_proxy_tokens = {"proxy-1"}
    admin.defaults["GetExecution"] = execution_pb2.Execution()
    config = transport_config(admin, client_credentials(None)).replace(
        proxy_command=counting_command(tmp_path, "proxy")
    )

    with SyncTransport(config) as transport:
        get_execution(transport)

    assert {c.metadata.get("proxy-authorization") for c in admin.calls} == {"Bearer proxy-1"}
    assert admin.calls_to("GetExecution")[0].metadata["flyte-authorization"] == "Bearer token-1"
    assert token_server.requests[0].headers["Proxy-Authorization"] == "Bearer proxy-1"


def test_proxy_credential_is_renewed_on_unauthenticated(admin, tmp_path):
    admin.accepted_proxy_tokens = {"proxy-1"}
    admin.defaults["GetExecution"] = execution_pb2.Execution()
    config = transport_config(admin, AuthConfig(mode="none", allow_plaintext=True)).replace(
        proxy_command=counting_command(tmp_path, "proxy")
    )

    with SyncTransport(config) as transport:
        get_execution(transport)
        admin.accepted_proxy_tokens = {"proxy-2"}
        get_execution(transport)

    sent = [c.metadata["proxy-authorization"] for c in admin.calls_to("GetExecution")]
    assert sent == ["Bearer proxy-1", "Bearer proxy-1", "Bearer proxy-2"]


def test_a_token_url_that_is_not_http_is_an_auth_error_without_the_bytes(flyte_sandbox):
    # The sandbox's gRPC port speaks HTTP/2 only: an HTTP/1 token request gets bytes back.
    authenticator = authenticator_for(client_credentials(f"http://{flyte_sandbox.endpoint}/t"))

    with pytest.raises(FlyteAuthError, match="did not answer HTTP") as raised:
        authenticator.metadata()

    assert CLIENT_SECRET not in str(raised.value)
    assert "\\x" not in str(raised.value)
