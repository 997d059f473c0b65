"""ClientConfig, AuthConfig and Secret: construction, validation and flytekit config reading."""

from __future__ import annotations

import logging
import os
import pickle
import textwrap

import pytest

from flyte_bridge.config import AuthConfig, ClientConfig, Secret
from flyte_bridge.errors import FlyteConfigError

FLYTE_VARIABLES = (
    "FLYTECTL_CONFIG",
    "_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE",
    "FLYTE_PLATFORM_URL",
    "FLYTE_PLATFORM_INSECURE",
    "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY",
    "FLYTE_PLATFORM_CA_CERT_FILE_PATH",
    "FLYTE_PLATFORM_CONSOLE_ENDPOINT",
    "FLYTE_PLATFORM_HTTP_PROXY_URL",
    "FLYTE_CREDENTIALS_CLIENT_ID",
    "FLYTE_CREDENTIALS_CLIENT_SECRET",
    "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION",
    "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR",
    "FLYTE_CREDENTIALS_AUTH_MODE",
    "FLYTE_CREDENTIALS_SCOPES",
    "FLYTE_CREDENTIALS_AUDIENCE",
    "FLYTE_CREDENTIALS_COMMAND",
    "FLYTE_CREDENTIALS_PROXY_COMMAND",
    "FLYTE_LOCAL_PROJECT",
    "FLYTE_LOCAL_DOMAIN",
    "FLYTE_DEFAULT_PROJECT",
    "FLYTE_DEFAULT_DOMAIN",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No FLYTE_* variable and no config file leaks in from the machine running the tests."""
    for name in FLYTE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# Secret


def test_secret_repr_and_str_never_show_the_value():
    secret = Secret.from_value("s3cr3t-value")

    assert "s3cr3t" not in repr(secret)
    assert "s3cr3t" not in str(secret)
    assert "s3cr3t" not in repr(AuthConfig(mode="bearer", token=secret))
    assert secret.reveal() == "s3cr3t-value"


def test_secret_from_file_is_stripped_of_whitespace(tmp_path):
    path = write(tmp_path / "secret", "  from-file\n\n")

    secret = Secret.from_file(path)

    assert secret.reveal() == "from-file"
    assert secret.source == f"file {path}"


def test_secret_from_file_picks_up_a_rotated_file(tmp_path):
    path = write(tmp_path / "secret", "first\n")
    secret = Secret.from_file(path)

    path.write_text("second\n")

    assert secret.reveal() == "second"


def test_secret_from_env_reads_the_named_variable(monkeypatch):
    monkeypatch.setenv("MY_SECRET", "\tfrom-env \n")

    assert Secret.from_env("MY_SECRET").reveal() == "from-env"


def test_secret_from_missing_env_variable_says_which(monkeypatch):
    monkeypatch.delenv("NOT_THERE", raising=False)

    with pytest.raises(FlyteConfigError, match="NOT_THERE is not set"):
        Secret.from_env("NOT_THERE")


def test_secret_from_missing_file_says_which(tmp_path):
    with pytest.raises(FlyteConfigError, match="cannot read secret file .*nope"):
        Secret.from_file(tmp_path / "nope")


def test_blank_secret_is_refused():
    with pytest.raises(FlyteConfigError, match="empty"):
        Secret.from_value(" \n")


def test_config_with_a_secret_can_be_deep_copied():
    import copy

    config = ClientConfig(auth=AuthConfig(mode="bearer", token=Secret.from_value("tok")))

    copied = copy.deepcopy(config)

    assert copied == config
    assert copied.auth.token.reveal() == "tok"


def test_secret_cannot_be_pickled():
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret.from_value("abc"))


# ClientConfig validation


def test_default_config_is_tls_with_bounded_deadline_and_retries():
    config = ClientConfig()

    assert config.insecure is False
    assert config.rpc_timeout == 30.0
    assert config.max_retries == 5


def test_dns_prefix_is_stripped_from_the_endpoint():
    assert ClientConfig(endpoint="dns:///flyte.example.com:443").endpoint == "flyte.example.com:443"


def test_url_endpoint_is_refused_with_the_expected_form():
    with pytest.raises(FlyteConfigError, match="expected a gRPC target 'host:port'"):
        ClientConfig(endpoint="https://flyte.example.com")


@pytest.mark.parametrize("endpoint", ["", "host:notaport", "host:70000"])
def test_malformed_endpoint_is_refused(endpoint):
    with pytest.raises(FlyteConfigError):
        ClientConfig(endpoint=endpoint)


def test_ipv6_endpoint_splits_into_host_and_port():
    config = ClientConfig(endpoint="[::1]:8089", insecure=True)

    assert (config.host, config.port) == ("::1", 8089)


@pytest.mark.parametrize(
    "changes",
    [{"rpc_timeout": 0}, {"rpc_timeout": -1}, {"max_retries": -1}, {"max_retries": 1.5}],
)
def test_bad_numbers_are_refused(changes):
    with pytest.raises(FlyteConfigError):
        ClientConfig(**changes)


def test_grpc_options_may_be_a_mapping():
    config = ClientConfig(grpc_options={"grpc.enable_http_proxy": 0})

    assert config.grpc_options == (("grpc.enable_http_proxy", 0),)


FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
"""Enough of a PEM bundle for the config's check, which looks for certificate blocks only."""


def test_missing_ca_bundle_is_refused(tmp_path):
    with pytest.raises(FlyteConfigError, match="expected a PEM bundle"):
        ClientConfig(ca_cert_path=str(tmp_path / "ca.pem"))


def test_a_ca_file_that_holds_no_pem_certificate_is_refused_as_configuration(tmp_path):
    der = tmp_path / "ca.der"
    der.write_bytes(b"0\x82\x03\x00 not pem")
    with pytest.raises(FlyteConfigError, match="holds no PEM certificate"):
        ClientConfig(ca_cert_path=str(der))


def test_sandbox_config_is_plaintext_with_flytesnacks_development():
    config = ClientConfig.for_sandbox("localhost:8089")

    assert (config.endpoint, config.insecure) == ("localhost:8089", True)
    assert (config.default_project, config.default_domain) == ("flytesnacks", "development")
    assert config.auth is None


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        ClientConfig().endpoint = "other:1"  # type: ignore[misc]


# Credentials over plaintext


def bearer(**changes) -> AuthConfig:
    return AuthConfig(mode="bearer", token=Secret.from_value("t0ken"), **changes)


def test_credentials_over_plaintext_are_refused_by_default():
    with pytest.raises(FlyteConfigError, match="allow_plaintext"):
        ClientConfig(endpoint="localhost:8089", insecure=True, auth=bearer())


def test_credentials_over_plaintext_to_loopback_are_allowed_when_asked():
    config = ClientConfig(
        endpoint="127.0.0.1:8089", insecure=True, auth=bearer(allow_plaintext=True)
    )

    assert config.auth.allow_plaintext


def test_credentials_over_plaintext_to_a_remote_host_are_always_refused():
    with pytest.raises(FlyteConfigError, match="non-loopback host"):
        ClientConfig(
            endpoint="flyte.example.com:81", insecure=True, auth=bearer(allow_plaintext=True)
        )


# AuthConfig validation


@pytest.mark.parametrize("mode", ["Pkce", "standard", "DeviceFlow", "device_flow"])
def test_c25_interactive_modes_are_refused_with_the_alternatives(mode):
    with pytest.raises(FlyteConfigError, match="headless.*client_credentials"):
        AuthConfig(mode=mode)


def test_flytekit_mode_names_are_accepted():
    auth = AuthConfig(mode="ClientSecret", client_id="bot", client_secret=Secret.from_value("x"))

    assert auth.mode == "client_credentials"


def test_unknown_mode_lists_the_expected_ones():
    with pytest.raises(FlyteConfigError, match="expected one of none, client_credentials"):
        AuthConfig(mode="kerberos")


def test_client_credentials_need_id_and_secret():
    with pytest.raises(FlyteConfigError, match="client_id"):
        AuthConfig(mode="client_credentials", client_secret=Secret.from_value("x"))
    with pytest.raises(FlyteConfigError, match="client_secret"):
        AuthConfig(mode="client_credentials", client_id="bot")


def test_plain_string_secret_is_refused_with_the_way_to_wrap_it():
    with pytest.raises(FlyteConfigError, match="must be a Secret"):
        AuthConfig(mode="client_credentials", client_id="bot", client_secret="plain")


def test_external_command_needs_a_command():
    with pytest.raises(FlyteConfigError, match="non-empty list of arguments"):
        AuthConfig(mode="external_command")


def test_static_token_modes_need_a_token():
    with pytest.raises(FlyteConfigError, match="needs token"):
        AuthConfig(mode="api_key")


def test_token_endpoint_must_be_a_url():
    with pytest.raises(FlyteConfigError, match="not a URL"):
        bearer(token_endpoint="auth.example.com/token")


def test_header_must_be_lower_case():
    with pytest.raises(FlyteConfigError, match="lower-case"):
        bearer(header="Flyte-Authorization")


# from_flytekit_config: files


def test_reads_the_flytectl_yaml_config(tmp_path):
    path = write(
        tmp_path / "config.yaml",
        """
        admin:
          endpoint: dns:///flyte.example.com:443
          insecure: false
          caCertFilePath: {ca}
          clientId: airflow-bot
          clientSecretLocation: {secret}
          scopes: [all, offline]
          audience: flyte
          authType: ClientSecret
          perRetryTimeout: 15s
          maxRetries: 2
        console:
          endpoint: https://console.example.com
        task:
          project: analytics
          domain: production
        """.format(ca=write(tmp_path / "ca.pem", FAKE_PEM), secret=write(tmp_path / "s", "xyz\n")),
    )

    config = ClientConfig.from_flytekit_config(path)

    assert config.endpoint == "flyte.example.com:443"
    assert config.insecure is False
    assert config.ca_cert_path == str(tmp_path / "ca.pem")
    assert config.console_endpoint == "https://console.example.com"
    assert (config.default_project, config.default_domain) == ("analytics", "production")
    assert (config.rpc_timeout, config.max_retries) == (15.0, 2)
    assert config.auth.mode == "client_credentials"
    assert config.auth.client_id == "airflow-bot"
    assert config.auth.client_secret.reveal() == "xyz"
    assert config.auth.scopes == ("all", "offline")
    assert config.auth.audience == "flyte"


def test_reads_the_legacy_ini_config(tmp_path):
    path = write(
        tmp_path / "flytekit.config",
        """
        [platform]
        url = flyte.internal:81
        insecure = True

        [credentials]
        auth_mode = external_process
        command = get-token,--audience,flyte

        [local]
        project = p1
        domain = d1
        """,
    )

    config = ClientConfig.from_flytekit_config(path, auth=None)

    assert (config.endpoint, config.insecure) == ("flyte.internal:81", True)
    assert (config.default_project, config.default_domain) == ("p1", "d1")


def test_ini_external_command_is_read_as_an_argument_list(tmp_path):
    path = write(
        tmp_path / "flytekit.config",
        """
        [platform]
        url = flyte.example.com:443
        [credentials]
        auth_mode = ExternalCommand
        command = get-token,--audience,flyte
        """,
    )

    config = ClientConfig.from_flytekit_config(path)

    assert config.auth.mode == "external_command"
    assert config.auth.command == ("get-token", "--audience", "flyte")


def test_flytectl_config_variable_picks_the_file(tmp_path, monkeypatch):
    path = write(tmp_path / "elsewhere.yaml", "admin:\n  endpoint: picked:1\n  insecure: true\n")
    monkeypatch.setenv("FLYTECTL_CONFIG", str(path))
    write(tmp_path / "home" / ".flyte" / "config.yaml", "admin:\n  endpoint: home:1\n")

    assert ClientConfig.from_flytekit_config().endpoint == "picked:1"


def test_home_flyte_config_yaml_is_the_last_fallback(tmp_path):
    write(tmp_path / "home" / ".flyte" / "config.yaml", "admin:\n  endpoint: home:1\n")

    assert ClientConfig.from_flytekit_config().endpoint == "home:1"


def test_flytekit_config_in_the_working_directory_comes_before_home(tmp_path):
    write(tmp_path / "flytekit.config", "[platform]\nurl = cwd:1\n")
    write(tmp_path / "home" / ".flyte" / "config.yaml", "admin:\n  endpoint: home:1\n")

    assert ClientConfig.from_flytekit_config().endpoint == "cwd:1"


def test_missing_flytectl_config_file_is_ignored_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FLYTECTL_CONFIG", str(tmp_path / "missing.yaml"))

    with caplog.at_level(logging.WARNING):
        config = ClientConfig.from_flytekit_config()

    assert config.endpoint == "localhost:30080"
    assert "missing.yaml does not exist" in caplog.text


def test_explicit_missing_path_is_an_error(tmp_path):
    with pytest.raises(FlyteConfigError, match="does not exist"):
        ClientConfig.from_flytekit_config(tmp_path / "missing.yaml")


def test_a_directory_given_as_the_config_file_is_an_error_saying_so(tmp_path):
    with pytest.raises(FlyteConfigError, match="is a directory; give the YAML or INI file"):
        ClientConfig.from_flytekit_config(tmp_path)


def test_an_empty_config_file_such_as_dev_null_gives_flytekit_defaults():
    config = ClientConfig.from_flytekit_config(os.devnull)

    assert (config.endpoint, config.insecure) == ("localhost:30080", False)


def test_a_str_command_or_scopes_is_split_into_arguments_or_words():
    auth = AuthConfig(mode="external_command", command="my-tool print --label 'a b'")
    assert auth.command == ("my-tool", "print", "--label", "a b")
    secret = Secret.from_value("s")
    credentials = AuthConfig(
        mode="client_credentials", client_id="bot", client_secret=secret, scopes="all, offline"
    )
    assert credentials.scopes == ("all", "offline")


def test_the_repr_masks_the_password_of_the_proxy_url():
    config = ClientConfig(endpoint="h:443", http_proxy_url="http://user:PROXYPASS@proxy:3128")

    assert "PROXYPASS" not in repr(config)
    assert "http://user:**********@proxy:3128" in repr(config)
    assert config.http_proxy_url == "http://user:PROXYPASS@proxy:3128"


def test_a_client_secret_variable_that_is_not_set_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_FLYTE_SECRET", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        "admin:\n  endpoint: dns:///127.0.0.1:30080\n  insecure: true\n"
        "  authType: ClientSecret\n  clientId: bot\n  clientSecretEnvVar: MY_FLYTE_SECRET\n"
    )

    with pytest.raises(FlyteConfigError) as raised:
        ClientConfig.from_flytekit_config(path)

    assert "the environment variable MY_FLYTE_SECRET" in str(raised.value)
    assert f"admin.clientSecretEnvVar in {path}" in str(raised.value)


def test_no_file_and_no_variables_give_flytekit_defaults():
    config = ClientConfig.from_flytekit_config()

    assert (config.endpoint, config.insecure, config.auth) == ("localhost:30080", False, None)


def test_sandbox_config_with_pkce_runs_without_credentials(tmp_path):
    # What `flytectl demo start` writes: Pkce is only used by flytekit when admin asks for auth.
    path = write(
        tmp_path / "config.yaml",
        "admin:\n  endpoint: dns:///localhost:30080\n  authType: Pkce\n  insecure: true\n",
    )

    config = ClientConfig.from_flytekit_config(path)

    assert config.insecure is True
    assert config.auth.mode == "none"
    assert config.auth.interactive_flow_requested == "Pkce"


def test_malformed_yaml_is_a_config_error(tmp_path):
    path = write(tmp_path / "config.yaml", "admin: [unclosed\n")

    with pytest.raises(FlyteConfigError, match="cannot read YAML config"):
        ClientConfig.from_flytekit_config(path)


def test_bad_boolean_names_where_it_came_from(tmp_path):
    path = write(tmp_path / "config.yaml", "admin:\n  endpoint: a:1\n  insecure: maybe\n")

    with pytest.raises(FlyteConfigError, match=r"admin.insecure in .*expected true or false"):
        ClientConfig.from_flytekit_config(path)


def test_bad_duration_is_a_config_error(tmp_path):
    path = write(tmp_path / "config.yaml", "admin:\n  perRetryTimeout: soon\n")

    with pytest.raises(FlyteConfigError, match="expected a duration"):
        ClientConfig.from_flytekit_config(path)


def test_unknown_auth_type_lists_the_supported_ones(tmp_path):
    path = write(tmp_path / "config.yaml", "admin:\n  authType: Kerberos\n")

    with pytest.raises(FlyteConfigError, match="expected one of ClientSecret"):
        ClientConfig.from_flytekit_config(path)


# from_flytekit_config: environment


def test_environment_variables_win_over_the_file(tmp_path, monkeypatch):
    path = write(tmp_path / "config.yaml", "admin:\n  endpoint: file:1\n  insecure: false\n")
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "env:2")
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "True")

    config = ClientConfig.from_flytekit_config(path)

    assert (config.endpoint, config.insecure) == ("env:2", True)


def test_client_credentials_from_environment(monkeypatch):
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "flyte.example.com:443")
    monkeypatch.setenv("FLYTE_CREDENTIALS_AUTH_MODE", "client_credentials")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_ID", "bot")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_SECRET", "env-secret\n")
    monkeypatch.setenv("FLYTE_CREDENTIALS_SCOPES", "all,offline")
    monkeypatch.setenv("FLYTE_CREDENTIALS_AUDIENCE", "aud")

    auth = ClientConfig.from_flytekit_config().auth

    assert (auth.mode, auth.client_id) == ("client_credentials", "bot")
    assert auth.client_secret.reveal() == "env-secret"
    assert "env-secret" not in repr(auth)
    assert auth.client_secret.source == "FLYTE_CREDENTIALS_CLIENT_SECRET"
    assert (auth.scopes, auth.audience) == (("all", "offline"), "aud")


def test_secret_env_var_forces_client_credentials(monkeypatch):
    # As flytekit: a secret taken from a file or a named variable means ClientSecret.
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_ID", "bot")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "BOT_SECRET")
    monkeypatch.setenv("BOT_SECRET", "named")

    auth = ClientConfig.from_flytekit_config().auth

    assert auth.mode == "client_credentials"
    assert auth.client_secret.reveal() == "named"


def test_secret_location_forces_client_credentials_over_pkce(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYTE_CREDENTIALS_AUTH_MODE", "Pkce")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_ID", "bot")
    monkeypatch.setenv(
        "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION", str(write(tmp_path / "s", "f\n"))
    )

    auth = ClientConfig.from_flytekit_config().auth

    assert auth.mode == "client_credentials"
    assert auth.client_secret.reveal() == "f"


def test_client_credentials_without_an_id_say_what_is_missing(monkeypatch):
    monkeypatch.setenv("FLYTE_CREDENTIALS_AUTH_MODE", "ClientSecret")
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_SECRET", "x")

    with pytest.raises(FlyteConfigError, match="needs client_id"):
        ClientConfig.from_flytekit_config()


def test_external_command_from_environment_is_split_on_commas(monkeypatch):
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "flyte.example.com:443")
    monkeypatch.setenv("FLYTE_CREDENTIALS_AUTH_MODE", "ExternalCommand")
    monkeypatch.setenv("FLYTE_CREDENTIALS_COMMAND", "gcloud,auth,print-identity-token")

    auth = ClientConfig.from_flytekit_config().auth

    assert auth.command == ("gcloud", "auth", "print-identity-token")


def test_skip_verify_and_console_from_environment(monkeypatch):
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE_SKIP_VERIFY", "true")
    monkeypatch.setenv("FLYTE_PLATFORM_CONSOLE_ENDPOINT", "https://console.example.com")
    monkeypatch.setenv("FLYTE_LOCAL_PROJECT", "proj")

    config = ClientConfig.from_flytekit_config()

    assert config.insecure_skip_verify is True
    assert config.console_endpoint == "https://console.example.com"
    assert config.default_project == "proj"


def test_pyflyte_default_project_and_domain_win_over_the_task_section(tmp_path, monkeypatch):
    path = write(tmp_path / "config.yaml", "task:\n  project: file-p\n  domain: file-d\n")
    monkeypatch.setenv("FLYTE_DEFAULT_PROJECT", "env-p")
    monkeypatch.setenv("FLYTE_DEFAULT_DOMAIN", "env-d")

    config = ClientConfig.from_flytekit_config(path)

    assert (config.default_project, config.default_domain) == ("env-p", "env-d")


def test_overrides_replace_what_was_read(monkeypatch):
    monkeypatch.setenv("FLYTE_PLATFORM_URL", "env:2")

    config = ClientConfig.from_flytekit_config(rpc_timeout=3.0, default_domain="staging")

    assert (config.endpoint, config.rpc_timeout, config.default_domain) == ("env:2", 3.0, "staging")


def test_proxy_command_is_read_as_an_argument_list(tmp_path):
    path = write(
        tmp_path / "config.yaml",
        "admin:\n  endpoint: flyte.example.com:443\n  proxyCommand: [iap-token, --audience, x]\n",
    )

    assert ClientConfig.from_flytekit_config(path).proxy_command == ("iap-token", "--audience", "x")


def test_proxy_command_over_plaintext_is_refused():
    with pytest.raises(FlyteConfigError, match="proxy_command would send credentials"):
        ClientConfig(endpoint="127.0.0.1:81", insecure=True, proxy_command=("iap-token",))


def test_auth_override_skips_the_file_auth_settings(tmp_path):
    path = write(tmp_path / "config.yaml", "admin:\n  endpoint: a:1\n  authType: ClientSecret\n")
    token = AuthConfig(mode="bearer", token=Secret.from_value("t"))

    config = ClientConfig.from_flytekit_config(path, auth=token)

    assert config.auth is token


@pytest.mark.parametrize("client_class", ["FlyteClient", "AsyncFlyteClient"])
def test_a_client_from_the_flytekit_config_takes_config_overrides(tmp_path, client_class):
    import flyte_bridge

    path = write(
        tmp_path / "config.yaml", "admin:\n  endpoint: dns:///picked:1\n  insecure: true\n"
    )

    client = getattr(flyte_bridge, client_class).from_flytekit_config(
        path, default_project="ml", default_domain="staging", max_concurrency=4
    )

    assert (client.config.endpoint, client.config.default_project) == ("picked:1", "ml")
    assert client.config.default_domain == "staging"


@pytest.mark.parametrize("name", ["rpc_timeout", "retry_initial_backoff", "retry_max_backoff"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_time_that_is_not_finite_is_refused(name, value):
    with pytest.raises(FlyteConfigError, match=f"{name} must be a positive, finite number"):
        ClientConfig(endpoint="localhost:30080", insecure=True, **{name: value})


SANDBOX_AUTH_CONFIG = """\
admin:
  endpoint: dns:///{host}:30080
  insecure: true
  authType: ClientSecret
  clientId: flyte-bridge
"""


def test_a_plaintext_config_with_credentials_to_a_loopback_sandbox_is_taken_as_it_is(
    tmp_path, monkeypatch
):
    # What `flyte-bridge sandbox start` prints with auth switched on.
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_SECRET", "sandbox-secret")
    path = write(tmp_path / "config.yaml", SANDBOX_AUTH_CONFIG.format(host="127.0.0.1"))

    config = ClientConfig.from_flytekit_config(path)

    assert config.insecure is True
    assert (config.auth.mode, config.auth.allow_plaintext) == ("client_credentials", True)


def test_a_plaintext_config_with_credentials_to_another_host_is_still_refused(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("FLYTE_CREDENTIALS_CLIENT_SECRET", "sandbox-secret")
    path = write(tmp_path / "config.yaml", SANDBOX_AUTH_CONFIG.format(host="flyte.example.com"))

    with pytest.raises(FlyteConfigError, match="never sent over plaintext to a non-loopback host"):
        ClientConfig.from_flytekit_config(path)


def test_a_console_endpoint_that_would_make_broken_links_is_a_config_error() -> None:
    with pytest.raises(
        FlyteConfigError, match="console endpoint 'flyte.example.com:80a': its port"
    ):
        ClientConfig(endpoint="flyte.example.com:443", console_endpoint="flyte.example.com:80a")


def test_a_config_file_console_endpoint_is_checked_when_the_config_is_read(tmp_path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "admin:\n  endpoint: dns:///flyte.example.com:443\nconsole:\n"
        "  endpoint: https://flyte example.com\n"
    )

    with pytest.raises(FlyteConfigError, match="white space"):
        ClientConfig.from_flytekit_config(str(config_file))


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("not a host:port::", "is not a 'host:port' target"),
        ("bad!host:443", "'bad!host' is not a host name or IP address"),
        ("-flyte-:443", "'-flyte-' is not a host name or IP address"),
    ],
)
def test_an_endpoint_that_names_no_host_is_refused_when_the_config_is_made(endpoint, problem):
    with pytest.raises(FlyteConfigError) as refused:
        ClientConfig(endpoint=endpoint)

    assert problem in str(refused.value)


@pytest.mark.parametrize(
    "endpoint", ["flyte.example.com:443", "[::1]:30080", "::1", "fe80::1%eth0", "flyte_admin:81"]
)
def test_host_names_and_ip_addresses_are_accepted_as_endpoints(endpoint):
    assert ClientConfig(endpoint=endpoint).endpoint == endpoint


@pytest.mark.parametrize("flag", ["insecure", "insecure_skip_verify"])
@pytest.mark.parametrize("value", ["false", "true", 0, None])
def test_security_switches_take_only_booleans(flag, value):
    with pytest.raises(FlyteConfigError, match=f"{flag} must be True or False"):
        ClientConfig(endpoint="flyte.example.com:443", **{flag: value})


def test_allow_plaintext_takes_only_a_boolean():
    with pytest.raises(FlyteConfigError, match="allow_plaintext must be True or False"):
        AuthConfig(mode="none", allow_plaintext="false")


def test_a_yaml_section_given_as_a_value_is_refused_naming_it(tmp_path):
    path = write(tmp_path / "config.yaml", "admin: flyte.example.com:443\n")

    with pytest.raises(FlyteConfigError, match=r"admin in .*config.yaml must be a mapping"):
        ClientConfig.from_flytekit_config(path)


def test_an_empty_yaml_section_is_as_if_absent(tmp_path):
    path = write(tmp_path / "config.yaml", "admin:\nconsole:\n  endpoint: http://c.example\n")

    assert ClientConfig.from_flytekit_config(path).endpoint == "localhost:30080"
