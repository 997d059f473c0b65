"""Optional auth and TLS: the token endpoint, the bearer-token check, and real clients over TLS."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import grpc
import pytest
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc
from flytekit import task
from idle_engine import IdleEngine

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox.auth_server import AuthSettings
from flyte_bridge.sandbox.tls import generate_self_signed

CLIENT_ID = "bridge-tests"
# Characters that HTTP Basic must form-encode (RFC 6749 2.3.1), as flytekit does.
CLIENT_SECRET = "s3cret +/=:%"
TOKEN_LIFETIME = 2.0
PROJECT = "flytesnacks"
DOMAIN = "development"


@task
def double(x: int) -> int:
    return 2 * x


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return generate_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, tls):
    from flyte_bridge.sandbox import start_sandbox

    running = start_sandbox(
        data_dir=tmp_path_factory.mktemp("auth"),
        engine=IdleEngine(),
        auth=AuthSettings(CLIENT_ID, CLIENT_SECRET, token_lifetime=TOKEN_LIFETIME),
        tls_cert=tls.cert_path,
        tls_key=tls.key_path,
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def channel(sandbox, tls):
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.cert_path.read_bytes())
    channel = grpc.secure_channel(sandbox.endpoint, credentials)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture(scope="module")
def admin(channel):
    return admin_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture(scope="module")
def https(tls):
    return ssl.create_default_context(cafile=str(tls.cert_path))


def post_token(sandbox, https, form, *, basic=None):
    """POSTs a token request; returns (HTTP status, JSON body)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if basic:
        pair = f"{basic[0]}:{urllib.parse.quote_plus(basic[1])}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    request = urllib.request.Request(
        sandbox.auth.token_endpoint, urllib.parse.urlencode(form).encode(), headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, context=https, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def fresh_token(sandbox, https) -> str:
    status, body = post_token(
        sandbox, https, {"grant_type": "client_credentials"}, basic=(CLIENT_ID, CLIENT_SECRET)
    )
    assert status == 200, body
    return body["access_token"]


def list_projects(admin, metadata=()):
    return admin.ListProjects(project_pb2.ProjectListRequest(), metadata=metadata, timeout=10)


def refusal(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_a_call_without_a_token_is_unauthenticated(admin):
    error = refusal(lambda: list_projects(admin))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization" in error.details()


def test_a_call_with_a_fresh_bearer_token_is_answered(sandbox, https, admin):
    token = fresh_token(sandbox, https)

    projects = list_projects(admin, (("authorization", f"Bearer {token}"),))

    assert [p.id for p in projects.projects] == [PROJECT]


@pytest.mark.parametrize(
    "value", ["Bearer not-a-token", "Basic Zm9vOmJhcg==", "Bearer", "token-without-scheme"]
)
def test_a_call_with_a_bad_authorization_value_is_unauthenticated(admin, value):
    error = refusal(lambda: list_projects(admin, (("authorization", value),)))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_an_expired_token_is_unauthenticated(sandbox, https, admin):
    token = fresh_token(sandbox, https)

    sandbox.auth.expire_tokens()
    error = refusal(lambda: list_projects(admin, (("authorization", f"Bearer {token}"),)))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in error.details()


def test_auth_metadata_is_served_without_a_token_and_points_at_the_token_endpoint(sandbox, channel):
    stub = auth_pb2_grpc.AuthMetadataServiceStub(channel)

    public = stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest(), timeout=10)
    oauth2 = stub.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest(), timeout=10)

    assert public.authorization_metadata_key == "authorization"
    assert public.client_id == CLIENT_ID
    assert oauth2.token_endpoint == sandbox.auth.token_endpoint
    assert oauth2.token_endpoint.startswith("https://127.0.0.1:")
    assert oauth2.token_endpoint.endswith("/oauth2/token")
    assert "client_credentials" in oauth2.grant_types_supported


def test_token_endpoint_grants_an_expiring_bearer_token_for_basic_credentials(sandbox, https):
    status, body = post_token(
        sandbox,
        https,
        {"grant_type": "client_credentials", "scope": "all"},
        basic=(CLIENT_ID, CLIENT_SECRET),
    )

    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 2
    assert len(body["access_token"]) >= 32


def test_token_endpoint_accepts_the_credentials_in_the_form_body(sandbox, https, admin):
    status, body = post_token(
        sandbox,
        https,
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )

    assert status == 200
    token = body["access_token"]
    assert list_projects(admin, (("authorization", f"Bearer {token}"),)).projects


def test_a_wrong_secret_is_refused_with_401_invalid_client(sandbox, https):
    issued = sandbox.auth.tokens_issued

    status, body = post_token(
        sandbox, https, {"grant_type": "client_credentials"}, basic=(CLIENT_ID, "wrong")
    )

    assert (status, body["error"]) == (401, "invalid_client")
    assert sandbox.auth.tokens_issued == issued


def test_a_refresh_token_grant_is_refused_with_invalid_grant(sandbox, https):
    status, body = post_token(
        sandbox,
        https,
        {"grant_type": "refresh_token", "refresh_token": "anything"},
        basic=(CLIENT_ID, CLIENT_SECRET),
    )

    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_plaintext_client_cannot_talk_to_the_tls_sandbox(sandbox):
    with grpc.insecure_channel(sandbox.endpoint) as plaintext:
        error = refusal(lambda: list_projects(admin_pb2_grpc.AdminServiceStub(plaintext)))

    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_certificate_cannot_connect(sandbox):
    credentials = grpc.ssl_channel_credentials()  # system roots only
    with grpc.secure_channel(sandbox.endpoint, credentials) as untrusting:
        error = refusal(lambda: list_projects(admin_pb2_grpc.AdminServiceStub(untrusting)))

    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_flytekit_remote_with_client_credentials_keeps_working_across_a_token_expiry(sandbox, tls):
    from flytekit.configuration import Config, ImageConfig, PlatformConfig, SerializationSettings
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(
        Config(
            platform=PlatformConfig(
                endpoint=sandbox.endpoint,
                insecure=False,
                ca_cert_file_path=str(tls.cert_path),
                auth_mode="ClientSecret",
                client_id=CLIENT_ID,
                client_credentials_secret=CLIENT_SECRET,
            )
        ),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )
    issued = sandbox.auth.tokens_issued

    registered = remote.register_task(
        double,
        SerializationSettings(image_config=ImageConfig.auto_default_image()),
        version="auth-tls-1",
    )
    execution = remote.execute(registered, inputs={"x": 2}, wait=False)
    time.sleep(TOKEN_LIFETIME + 0.3)
    fetched = remote.fetch_execution(name=execution.id.name)
    listed = remote.recent_executions(limit=10)

    assert fetched.id.name == execution.id.name
    assert execution.id.name in [e.id.name for e in listed]
    assert sandbox.auth.tokens_issued >= issued + 2


@pytest.fixture
def core_config(sandbox, tls):
    """A core client config with client credentials, trusting the sandbox's certificate."""
    from flyte_bridge.config import AuthConfig, ClientConfig, Secret

    return ClientConfig(
        endpoint=sandbox.endpoint,
        ca_cert_path=str(tls.cert_path),
        default_project=PROJECT,
        default_domain=DOMAIN,
        auth=AuthConfig(
            mode="client_credentials",
            client_id=CLIENT_ID,
            client_secret=Secret.from_value(CLIENT_SECRET),
        ),
    )


def test_core_client_with_client_credentials_keeps_working_across_a_token_expiry(
    sandbox, core_config
):
    from flyte_bridge.client import FlyteClient

    issued = sandbox.auth.tokens_issued

    with FlyteClient(core_config) as client:
        client.recent_executions(limit=1)
        time.sleep(TOKEN_LIFETIME + 0.3)
        client.recent_executions(limit=1)

    assert sandbox.auth.tokens_issued >= issued + 2


def test_core_client_fetches_one_new_token_when_the_server_refuses_its_token(sandbox, core_config):
    from flyte_bridge.client import FlyteClient

    with FlyteClient(core_config) as client:
        client.recent_executions(limit=1)
        requests, calls = sandbox.auth.token_requests, sandbox.rpc_counts["ListExecutions"]
        sandbox.auth.expire_tokens()
        client.recent_executions(limit=1)

    assert sandbox.auth.token_requests == requests + 1
    assert sandbox.rpc_counts["ListExecutions"] == calls + 2


def test_auth_settings_never_show_the_secret():
    settings = AuthSettings(CLIENT_ID, CLIENT_SECRET)

    assert CLIENT_SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"client_id": "", "client_secret": "x"}, "client_id"),
        ({"client_id": "a", "client_secret": ""}, "client_secret"),
        ({"client_id": "a", "client_secret": "x", "token_lifetime": 0}, "token_lifetime"),
        ({"client_id": "a", "client_secret": "x", "header": "Authorization"}, "header"),
    ],
)
def test_bad_auth_settings_are_refused_naming_the_setting(kwargs, named):
    with pytest.raises(FlyteConfigError, match=named):
        AuthSettings(**kwargs)


def test_tls_needs_both_the_certificate_and_the_key(tls):
    from flyte_bridge.sandbox.tls import tls_files

    with pytest.raises(FlyteConfigError, match="both"):
        tls_files(tls.cert_path, None)


def test_flytekit_config_of_a_secure_sandbox_names_the_ca_and_client_but_not_the_secret(sandbox):
    text = sandbox.flytekit_config()

    assert "insecure: false" in text
    assert f"caCertFilePath: {sandbox.ca_cert_path}" in text
    assert f"clientId: {CLIENT_ID}" in text
    assert CLIENT_SECRET not in text


def test_cli_auth_and_tls_options_become_start_arguments(tls):
    from flyte_bridge.sandbox.start_options import start_kwargs

    kwargs = start_kwargs(
        tls_cert=tls.cert_path,
        tls_key=tls.key_path,
        auth_client_secret=CLIENT_SECRET,
        auth_token_lifetime=30.0,
    )

    assert kwargs["auth"] == AuthSettings("flyte-bridge", CLIENT_SECRET, token_lifetime=30.0)
    assert kwargs["tls_cert"] == tls.cert_path


@pytest.fixture(scope="module")
def queued_execution(sandbox, tls) -> str:
    """An execution that stays queued (the idle engine runs nothing), launched with credentials."""
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import AuthConfig, ClientConfig, Secret

    config = ClientConfig(
        endpoint=sandbox.endpoint,
        ca_cert_path=str(tls.cert_path),
        default_project=PROJECT,
        default_domain=DOMAIN,
        auth=AuthConfig(
            mode="client_credentials",
            client_id=CLIENT_ID,
            client_secret=Secret.from_value(CLIENT_SECRET),
        ),
    )
    from flytekit.configuration import Config, ImageConfig, PlatformConfig, SerializationSettings
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(
        Config(
            platform=PlatformConfig(
                endpoint=sandbox.endpoint,
                ca_cert_file_path=str(tls.cert_path),
                auth_mode="ClientSecret",
                client_id=CLIENT_ID,
                client_credentials_secret=CLIENT_SECRET,
            )
        ),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )
    remote.register_task(
        double,
        SerializationSettings(image_config=ImageConfig.auto_default_image()),
        version="auth-tls-watch",
    )
    with FlyteClient(config) as client:
        launched = client.launch(task=double.name, version="auth-tls-watch", inputs={"x": 1})
    return str(launched.id)


def _with_secret(core_config, secret: str | None):
    import dataclasses

    from flyte_bridge.config import Secret

    if secret is None:
        return dataclasses.replace(core_config, auth=None)
    auth = dataclasses.replace(core_config.auth, client_secret=Secret.from_value(secret))
    return dataclasses.replace(core_config, auth=auth)


def test_shared_watchers_never_lend_one_connections_credentials_to_another(
    core_config, queued_execution
):
    import asyncio

    from flyte_bridge.errors import FlyteAuthError, FlyteTimeoutError
    from flyte_bridge.watcher import AsyncExecutionWatcher

    async def scenario() -> tuple[BaseException, BaseException]:
        good = AsyncExecutionWatcher.shared(core_config)
        anonymous = AsyncExecutionWatcher.shared(_with_secret(core_config, None))
        assert AsyncExecutionWatcher.shared(_with_secret(core_config, CLIENT_SECRET)) is good
        assert anonymous is not good
        with pytest.raises(FlyteTimeoutError) as read:  # queued for ever: read, then timed out
            await good.wait_for(queued_execution, timeout=1, poll_interval=0.2)
        with pytest.raises(FlyteAuthError) as refused:
            await asyncio.wait_for(anonymous.wait_for(queued_execution, poll_interval=0.2), 10)
        return read.value, refused.value

    read, refused = asyncio.run(scenario())

    assert read.last_phase is not None
    assert "authentication" in str(refused).lower() or "unauthenticated" in str(refused).lower()


def test_a_wait_whose_secret_is_wrong_fails_at_once_and_the_fixed_secret_is_used_next(
    core_config, queued_execution
):
    import asyncio

    from flyte_bridge.errors import FlyteAuthError, FlyteTimeoutError
    from flyte_bridge.watcher import AsyncExecutionWatcher

    async def scenario() -> FlyteTimeoutError:
        wrong = AsyncExecutionWatcher.shared(_with_secret(core_config, "not the secret"))
        with pytest.raises(FlyteAuthError):
            await asyncio.wait_for(wrong.wait_for(queued_execution, poll_interval=0.2), 10)
        assert wrong.waiting == 0
        fixed = AsyncExecutionWatcher.shared(_with_secret(core_config, CLIENT_SECRET))
        with pytest.raises(FlyteTimeoutError) as read:
            await fixed.wait_for(queued_execution, timeout=1, poll_interval=0.2)
        return read.value

    assert asyncio.run(scenario()).last_phase is not None
