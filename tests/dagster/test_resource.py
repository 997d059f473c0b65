"""FlyteResource settings: masked secrets, checked values, inferred auth, RPC deadlines."""

import re
import socket
import time

import dagster as dg
import pydantic
import pytest

from dagster_resources import (
    FlyteLaunchPlanProps,
    FlyteResource,
    build_flyte_assets_definition,
    build_flyte_execution_sensor,
)
from dagster_resources.components.launch_plans_component import FlyteConnectionModel
from flyte_bridge.errors import FlyteConfigError, FlyteTimeoutError, FlyteTransientError

CLIENT_ID = "dagster-tests"
CLIENT_SECRET = "s3cret-of-the-tests"


def test_secrets_never_show_in_a_repr_before_or_inside_a_run(monkeypatch):
    monkeypatch.setenv("MY_FLYTE_SECRET", "EnvSecret777")
    plain = FlyteResource(endpoint="flyte.example.com:443", auth_mode="bearer", token="PlainTok999")
    from_env = FlyteResource(
        endpoint="flyte.example.com:443",
        auth_mode="client_credentials",
        client_id="dagster",
        client_secret=dg.EnvVar("MY_FLYTE_SECRET"),
    )
    seen = {}

    @dg.asset
    def probe(context: dg.AssetExecutionContext, flyte: FlyteResource) -> None:
        seen["repr"] = repr(flyte) + str(flyte)
        seen["secret"] = flyte.client_secret
        context.log.info("the resource: %r", flyte)

    with dg.instance_for_test() as instance:
        result = dg.materialize([probe], resources={"flyte": from_env}, instance=instance)
        logged = " ".join(entry.user_message for entry in instance.all_logs(result.run_id))

    assert "PlainTok999" not in repr(plain) + str(plain)
    assert "token='**********'" in repr(plain)
    assert "EnvVar('MY_FLYTE_SECRET')" in repr(from_env)
    assert seen["secret"] == "EnvSecret777", "the run must see the resolved secret"
    assert "EnvSecret777" not in seen["repr"]
    assert "client_secret='**********'" in seen["repr"]
    assert "the resource: FlyteResource(" in logged
    assert "EnvSecret777" not in logged
    block = FlyteConnectionModel(auth_mode="bearer", token="PlainTok999")
    assert "PlainTok999" not in repr(block) + str(block)


def test_a_validation_error_does_not_quote_the_secret():
    with pytest.raises(pydantic.ValidationError) as raised:
        FlyteResource(endpoint="flyte.example.com:443", token="PlainTok999", poll_interval=-1)

    assert "PlainTok999" not in str(raised.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poll_interval", -1),
        ("poll_interval", 0),
        ("poll_interval", float("nan")),
        ("wait_timeout", -5),
        ("rpc_timeout", 0),
        ("max_retries", -1),
    ],
)
def test_bad_waiting_and_rpc_settings_are_refused_when_the_resource_is_built(field, value):
    with pytest.raises(pydantic.ValidationError, match=field):
        FlyteResource(endpoint="localhost:30080", insecure=True, **{field: value})
    with pytest.raises(pydantic.ValidationError, match=field):
        FlyteConnectionModel(**{field: value})


def test_bad_settings_given_at_launch_fail_before_the_step_starts():
    """Nothing is launched: the resource fails to initialize, so the asset never runs."""
    asset = build_flyte_assets_definition(
        FlyteLaunchPlanProps(name="hello.hello_wf", outputs={"o0": "STRING"})
    )

    result = dg.materialize(
        [asset],
        resources={"flyte": FlyteResource.configure_at_launch()},
        run_config={
            "resources": {
                "flyte": {
                    "config": {"endpoint": "127.0.0.1:1", "insecure": True, "wait_timeout": -5}
                }
            }
        },
        raise_on_error=False,
    )

    assert not result.success
    assert not [event for event in result.all_events if event.is_step_start]
    (init_failure,) = [
        event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE"
    ]
    assert "wait_timeout" in init_failure.event_specific_data.error.to_string()


def test_client_id_and_secret_without_auth_mode_mean_client_credentials():
    resource = FlyteResource(
        endpoint="flyte.example.com:443", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )

    auth = resource.get_client_config().auth

    assert auth.mode == "client_credentials"
    assert auth.client_id == CLIENT_ID
    assert auth.client_secret.reveal() == CLIENT_SECRET


@pytest.mark.parametrize(
    "credentials",
    [{"token": "PlainTok999"}, {"client_id": CLIENT_ID}, {"client_secret": CLIENT_SECRET}],
)
def test_credentials_that_imply_no_auth_mode_are_refused_not_dropped(credentials):
    with pytest.raises(pydantic.ValidationError, match="no auth_mode"):
        FlyteResource(endpoint="flyte.example.com:443", **credentials)


def test_credentials_over_plaintext_need_allow_plaintext_on_the_resource():
    with pytest.raises(pydantic.ValidationError, match="allow_plaintext=True on the FlyteResource"):
        FlyteResource(
            endpoint="127.0.0.1:30080",
            insecure=True,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )


def test_a_flytekit_config_that_makes_the_connection_plaintext_names_the_resource_field(
    tmp_path,
):
    config = tmp_path / "config.yaml"
    config.write_text("admin:\n  endpoint: dns:///127.0.0.1:30080\n  insecure: true\n")
    resource = FlyteResource.from_flytekit_config(
        str(config), client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )

    with pytest.raises(FlyteConfigError, match=r"on a FlyteResource: allow_plaintext=True"):
        resource.get_client_config()
    allowed = FlyteResource.from_flytekit_config(
        str(config), client_id=CLIENT_ID, client_secret=CLIENT_SECRET, allow_plaintext=True
    )
    assert allowed.get_client_config().auth.allow_plaintext


@pytest.fixture(scope="module")
def auth_sandbox(tmp_path_factory):
    """A sandbox (plaintext, on loopback) that asks every call for a client-credentials token."""
    from idle_engine import IdleEngine

    from flyte_bridge.sandbox import start_sandbox
    from flyte_bridge.sandbox.auth_server import AuthSettings

    running = start_sandbox(
        data_dir=tmp_path_factory.mktemp("dagster-auth"),
        engine=IdleEngine(),
        auth=AuthSettings(CLIENT_ID, CLIENT_SECRET),
    )
    try:
        yield running
    finally:
        running.stop()


def test_client_id_and_secret_alone_authenticate_against_a_sandbox_with_auth(auth_sandbox):
    resource = FlyteResource(
        endpoint=auth_sandbox.endpoint,
        insecure=True,
        allow_plaintext=True,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        default_project="flytesnacks",
        default_domain="development",
    )
    issued = auth_sandbox.auth.tokens_issued

    with resource.get_client() as client:
        assert client.recent_executions(limit=1) == []

    assert auth_sandbox.auth.tokens_issued == issued + 1


def test_a_sensor_sends_the_secret_of_its_env_var_not_the_variable_name(auth_sandbox, monkeypatch):
    monkeypatch.setenv("MY_FLYTE_ENDPOINT", auth_sandbox.endpoint)
    monkeypatch.setenv("MY_FLYTE_SECRET", CLIENT_SECRET)
    resource = FlyteResource(
        endpoint=dg.EnvVar("MY_FLYTE_ENDPOINT"),
        insecure=True,
        allow_plaintext=True,
        client_id=CLIENT_ID,
        client_secret=dg.EnvVar("MY_FLYTE_SECRET"),
        default_project="flytesnacks",
        default_domain="development",
    )
    sensor = build_flyte_execution_sensor(
        flyte=resource, launch_plans=[FlyteLaunchPlanProps(name="hello.hello_wf")]
    )
    issued = auth_sandbox.auth.tokens_issued

    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))

    assert result.cursor, "the tick listed executions and saved where it stands"
    assert auth_sandbox.auth.tokens_issued == issued + 1


def test_rpc_timeout_and_max_retries_make_an_unanswering_server_fail_fast():
    # Accepts connections and never answers them.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"127.0.0.1:{silent.getsockname()[1]}"
        resource = FlyteResource(
            endpoint=endpoint,
            insecure=True,
            default_project="flytesnacks",
            default_domain="development",
            rpc_timeout=1,
            max_retries=0,
        )
        config = resource.get_client_config()
        started = time.monotonic()
        with pytest.raises((FlyteTimeoutError, FlyteTransientError)):
            resource.get_client().fetch_execution("never-answered")
        elapsed = time.monotonic() - started
        resource.get_client().close()

    assert (config.rpc_timeout, config.max_retries) == (1.0, 0)
    assert elapsed < 10, f"took {elapsed:.1f} s; the defaults retry a 30 s deadline 5 times"


def test_an_empty_endpoint_is_refused_instead_of_reading_the_flytekit_config(monkeypatch):
    with pytest.raises(pydantic.ValidationError, match="endpoint '' is empty; expected"):
        FlyteResource(endpoint="")
    monkeypatch.setenv("MY_EMPTY_ENDPOINT", "")
    from dagster_resources.resource import resolved_resource

    resource = FlyteResource(endpoint=dg.EnvVar("MY_EMPTY_ENDPOINT"))
    with pytest.raises(Exception) as raised:
        with resolved_resource(resource):
            pass
    assert "endpoint '' is empty; expected" in str(raised.value)


def test_without_an_endpoint_the_log_says_where_the_endpoint_came_from(
    tmp_path, monkeypatch, caplog
):
    for variable in ("FLYTECTL_CONFIG", "_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE", "FLYTE_PLATFORM_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text("admin:\n  endpoint: dns:///flyte.example.com:443\n")

    with caplog.at_level("INFO"):
        assert FlyteResource(flytekit_config=str(config)).get_client_config().endpoint == (
            "flyte.example.com:443"
        )
        FlyteResource().get_client_config()
        monkeypatch.setenv("FLYTE_PLATFORM_URL", "flyte.example.com:443")
        FlyteResource().get_client_config()

    found = [(r.levelname, r.getMessage()) for r in caplog.records if "no endpoint" in r.message]
    assert found == [
        ("INFO", f"FlyteResource has no endpoint; using the one from admin.endpoint in {config}"),
        (
            "WARNING",
            "FlyteResource has no endpoint; using the default localhost:30080 (no flytekit "
            "config file was found and FLYTE_PLATFORM_URL is not set)",
        ),
        ("INFO", "FlyteResource has no endpoint; using the one from FLYTE_PLATFORM_URL"),
    ]


def test_the_scaffolder_writes_no_endpoint_or_project_unless_given_them():
    import yaml
    from dagster.components.testing import create_defs_folder_sandbox

    from dagster_resources import FlyteLaunchPlansComponent

    with create_defs_folder_sandbox() as sandbox:
        bare = sandbox.scaffold_component(component_cls=FlyteLaunchPlansComponent)
        given = sandbox.scaffold_component(
            component_cls=FlyteLaunchPlansComponent,
            defs_path="given",
            scaffold_params={"endpoint": "flyte.example.com:443", "project": "analytics"},
        )
        flyte_of = {
            path: yaml.safe_load((path / "defs.yaml").read_text())["attributes"]["flyte"]
            for path in (bare, given)
        }

    assert "endpoint" not in flyte_of[bare] and "default_project" not in flyte_of[bare]
    assert flyte_of[given]["endpoint"] == "flyte.example.com:443"
    assert flyte_of[given]["default_project"] == "analytics"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("endpoint", "not a host:port::", "is not a 'host:port' target"),
        ("endpoint", "flyte!example:443", "'flyte!example' is not a host name or IP address"),
        ("endpoint", "https://flyte.example.com", "is a URL; expected a gRPC target"),
        ("endpoint", "flyte.example.com:99999", "has a bad port"),
        ("console_url", "not a url", "expected an http(s) URL such as https://flyte.example.com"),
        ("console_url", "ftp://flyte.example.com", "expected an http(s) URL"),
        ("console_url", "http://flyte.example.com:port", "expected an http(s) URL"),
        ("console_url", "https://flyte..example.com", "expected an http(s) URL"),
    ],
)
def test_a_malformed_endpoint_or_console_url_is_refused_when_the_resource_is_built(
    field, value, expected
):
    with pytest.raises(pydantic.ValidationError, match=re.escape(expected)):
        FlyteResource(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint", "dns:///flyte.example.com:443"),
        ("endpoint", "[::1]:30080"),
        ("endpoint", "flyteadmin.flyte.svc.cluster.local:81"),
        ("console_url", "https://flyte.example.com/prefix/console/"),
        ("console_url", "127.0.0.1:30081"),
    ],
)
def test_well_formed_endpoints_and_console_urls_are_taken(field, value):
    assert getattr(FlyteResource(**{field: value}), field) == value


def test_a_component_names_the_secrets_variable_and_dagster_never_holds_the_secret(
    auth_sandbox, monkeypatch
):
    import yaml
    from dagster.components.testing import create_defs_folder_sandbox

    from dagster_resources import FlyteLaunchPlansComponent

    monkeypatch.setenv("MY_FLYTE_SECRET", CLIENT_SECRET)
    flyte_block = {
        "endpoint": auth_sandbox.endpoint,
        "insecure": True,
        "allow_plaintext": True,
        "client_id": CLIENT_ID,
        "client_secret_env_var": "MY_FLYTE_SECRET",
        "default_project": "flytesnacks",
        "default_domain": "development",
    }
    attributes = {
        "flyte": flyte_block,
        "launch_plans": [{"name": "hello.hello_wf", "outputs": {"o0": "STRING"}}],
    }
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(component_cls=FlyteLaunchPlansComponent)
        (defs_path / "defs.yaml").write_text(
            yaml.safe_dump(
                {"type": "dagster_resources.FlyteLaunchPlansComponent", "attributes": attributes}
            )
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            resource = defs.resources["flyte"]
    issued = auth_sandbox.auth.tokens_issued

    # What Dagster shows of the resource (its configured fields) holds the name only.
    assert CLIENT_SECRET not in repr(resource.model_dump())
    assert resource.client_secret_env_var == "MY_FLYTE_SECRET"
    with resource.get_client() as client:
        assert client.recent_executions(limit=1) == []
    assert auth_sandbox.auth.tokens_issued == issued + 1


def test_a_secret_and_its_variable_together_or_a_value_as_the_name_are_refused():
    with pytest.raises(pydantic.ValidationError, match="give client_secret or client_secret_env"):
        FlyteResource(client_id="x", client_secret="s", client_secret_env_var="FLYTE_SECRET")
    with pytest.raises(pydantic.ValidationError, match="expected the name of an environment var"):
        FlyteResource(auth_mode="bearer", token_env_var="eyJhbGciOi.not-a-name")
    missing = FlyteResource(
        endpoint="flyte.example.com:443", auth_mode="bearer", token_env_var="NO_SUCH_VARIABLE_X"
    )
    with pytest.raises(FlyteConfigError, match="environment variable NO_SUCH_VARIABLE_X is not"):
        missing.get_client_config()
