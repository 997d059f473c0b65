import json
import logging
from types import SimpleNamespace

import pytest

from airflow_provider.hooks.flyte import FlyteHook, config_from_connection
from flyte_bridge.errors import FlyteConfigError


def connection(**fields):
    values = {"conn_id": "flyte_default", "host": None, "port": None, "login": None}
    values["password"] = None
    values.update(fields)
    return SimpleNamespace(**values)


def test_a_sandbox_connection_is_plaintext_without_credentials():
    config = config_from_connection(
        connection(host="localhost", port=30080),
        {"insecure": "true", "project": "flytesnacks", "domain": "development"},
    )

    assert (config.endpoint, config.insecure, config.auth) == ("localhost:30080", True, None)
    assert (config.default_project, config.default_domain) == ("flytesnacks", "development")


def test_login_and_password_are_the_client_credentials_and_the_secret_stays_hidden():
    config = config_from_connection(
        connection(host="flyte.example.com", port=443, login="airflow", password="s3cr3t-value"),
        {"scopes": "all, offline", "audience": "flyte", "console_url": "https://console.example"},
    )

    assert config.auth.mode == "client_credentials"
    assert config.auth.client_id == "airflow"
    assert config.auth.client_secret.reveal() == "s3cr3t-value"
    assert config.auth.scopes == ("all", "offline")
    assert config.console_endpoint == "https://console.example"
    assert "s3cr3t-value" not in repr(config)


def test_a_bearer_token_comes_from_the_password():
    config = config_from_connection(
        connection(host="flyte.example.com", password="tok"), {"auth_mode": "bearer"}
    )

    assert (config.auth.mode, config.auth.token.reveal()) == ("bearer", "tok")


def test_a_password_without_login_or_auth_mode_is_refused_not_dropped():
    with pytest.raises(FlyteConfigError, match="has a password but no login and no 'auth_mode'"):
        config_from_connection(connection(host="flyte.example.com", password="tok-123"), {})


def test_a_token_extra_without_auth_mode_is_refused_without_quoting_it():
    with pytest.raises(FlyteConfigError, match="a client_secret or token extra") as raised:
        config_from_connection(connection(host="flyte.example.com"), {"token": "tok-123"})

    assert "tok-123" not in str(raised.value)


def test_client_id_and_client_secret_extras_are_client_credentials():
    config = config_from_connection(
        connection(host="flyte.example.com"), {"client_id": "bot", "client_secret": "s3cr3t"}
    )

    assert (config.auth.mode, config.auth.client_id) == ("client_credentials", "bot")
    assert config.auth.client_secret.reveal() == "s3cr3t"


def test_the_ui_prefixed_extras_are_read_too():
    config = config_from_connection(
        connection(host="localhost"),
        {"extra__flyte__insecure": True, "extra__flyte__project": "p", "extra__flyte__domain": "d"},
    )

    assert (config.insecure, config.default_project, config.default_domain) == (True, "p", "d")


def test_an_endpoint_extra_wins_over_the_host():
    config = config_from_connection(connection(host="ignored"), {"endpoint": "admin.internal:81"})

    assert config.endpoint == "admin.internal:81"


def test_an_ipv6_host_is_bracketed_and_counts_as_loopback():
    config = config_from_connection(
        connection(host="::1", port=30080, login="bot", password="s3cr3t"),
        {"insecure": True, "allow_plaintext": True},
    )

    assert config.endpoint == "[::1]:30080"
    assert config.auth.allow_plaintext


@pytest.mark.parametrize(
    ("host", "port", "endpoint"),
    [
        ("localhost:30080", None, "localhost:30080"),
        ("flyte.example.com:443", None, "flyte.example.com:443"),
        ("flyte.example.com", 443, "flyte.example.com:443"),
        ("[::1]", 30080, "[::1]:30080"),
        ("fe80::1%eth0", 81, "[fe80::1%eth0]:81"),
    ],
)
def test_only_a_bare_ipv6_host_is_bracketed(host, port, endpoint):
    config = config_from_connection(connection(host=host, port=port), {"insecure": True})

    assert config.endpoint == endpoint


def test_settings_given_twice_say_which_one_is_used(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider.hooks.flyte"):
        config = config_from_connection(
            connection(host="127.0.0.2", login="bot", password="from-password"),
            {
                "endpoint": "127.0.0.1:30080",
                "client_secret": "from-extra",
                "insecure": True,
                "allow_plaintext": True,
            },
        )

    assert config.endpoint == "127.0.0.1:30080"
    assert config.auth.client_secret.reveal() == "from-password"
    assert "using the extra, 127.0.0.1:30080" in caplog.text
    assert "has a password and the client_secret extra; using the password" in caplog.text
    assert "from-password" not in caplog.text and "from-extra" not in caplog.text


def test_a_connection_of_another_type_is_read_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider.hooks.flyte"):
        config = config_from_connection(
            connection(host="localhost", port=30080, conn_type="http"), {"insecure": True}
        )

    assert config.endpoint == "localhost:30080"
    assert "has type 'http', not 'flyte'; reading it as a Flyte connection" in caplog.text


def test_a_connection_without_an_endpoint_says_what_is_missing():
    with pytest.raises(FlyteConfigError, match="has no host"):
        config_from_connection(connection(), {})


def test_the_numeric_extras_and_the_name_length_limit_reach_the_client_config():
    config = config_from_connection(
        connection(host="localhost"),
        {
            "rpc_timeout": "2.5",
            "max_retries": 0,
            "max_execution_name_length": "20",
            "insecure_skip_verify": "yes",
            "extra__flyte__insecure": "off",
        },
    )

    assert (config.rpc_timeout, config.max_retries) == (2.5, 0)
    assert config.max_execution_name_length == 20
    assert (config.insecure_skip_verify, config.insecure) == (True, False)


@pytest.mark.parametrize(
    ("extra", "field", "expected"),
    [
        ({"rpc_timeout": "abc"}, "rpc_timeout", "a positive number of seconds"),
        ({"rpc_timeout": 0}, "rpc_timeout", "a positive number of seconds"),
        ({"rpc_timeout": True}, "rpc_timeout", "a positive number of seconds"),
        ({"max_retries": "x"}, "max_retries", "an integer of 0 or more"),
        ({"max_retries": 2.5}, "max_retries", "an integer of 0 or more"),
        ({"max_retries": -1}, "max_retries", "an integer of 0 or more"),
        ({"insecure": "maybe"}, "insecure", "true or false"),
        ({"insecure_skip_verify": 2}, "insecure_skip_verify", "true or false"),
        ({"max_execution_name_length": 64}, "max_execution_name_length", "from 20 to 63"),
        ({"auth_mode": "oauth"}, "auth_mode", "one of none, client_credentials"),
        ({"project": 7}, "project", "a string"),
        ({"console_url": "ftp://console"}, "console_url", "an http(s) URL"),
        ({"console_url": "flyte.example.com:80a"}, "console_url", "its port is not a number"),
        ({"scopes": {"all": True}}, "scopes", "words separated by spaces or commas"),
    ],
)
def test_a_wrong_extra_is_a_config_error_naming_the_field_and_what_it_expects(
    extra, field, expected
):
    with pytest.raises(FlyteConfigError) as raised:
        config_from_connection(connection(host="localhost"), extra)

    message = str(raised.value)
    assert f"connection 'flyte_default': extra {field!r} must be" in message
    assert expected in message
    assert repr(next(iter(extra.values()))) in message


def test_a_console_url_with_a_password_is_refused_without_showing_it():
    with pytest.raises(FlyteConfigError) as raised:
        config_from_connection(
            connection(host="localhost"), {"console_url": "https://ops:hunter2@flyte.example.com"}
        )

    assert "extra 'console_url' must be an http(s) URL" in str(raised.value)
    assert "user name or password" in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("field", ["client_secret", "token", "command"])
def test_a_wrong_secret_extra_is_named_without_quoting_its_value(field):
    with pytest.raises(FlyteConfigError) as raised:
        config_from_connection(connection(host="localhost"), {field: 98765432123})

    assert f"extra {field!r} must be" in str(raised.value)
    assert "got a int" in str(raised.value)
    assert "98765432123" not in str(raised.value)


def test_secret_extras_behind_a_password_are_not_reported_unknown(caplog):
    config_from_connection(
        connection(host="localhost", login="bot", password="s"),
        {"client_id": "other", "client_secret": "x", "insecure": True, "allow_plaintext": True},
    )

    assert "does not know" not in caplog.text


def test_contradicting_settings_name_the_connection():
    with pytest.raises(FlyteConfigError, match="connection 'flyte_default': .*plaintext"):
        config_from_connection(
            connection(host="flyte.example.com", password="tok"),
            {"auth_mode": "bearer", "insecure": True},
        )


@pytest.mark.parametrize(
    ("fields", "extra"),
    [
        ({"login": "bot", "password": "s3cr3t"}, {}),
        ({"password": "tok"}, {"auth_mode": "bearer"}),
        ({}, {"auth_mode": "external_command", "command": "print-token"}),
    ],
)
def test_credentials_over_insecure_need_allow_plaintext_even_to_a_loopback_host(fields, extra):
    with pytest.raises(FlyteConfigError) as raised:
        config_from_connection(connection(host="127.0.0.1", **fields), {"insecure": True, **extra})

    message = str(raised.value)
    assert message.startswith("connection 'flyte_default': 'insecure' is true (plaintext)")
    assert "set the extra 'allow_plaintext' to true" in message
    assert "s3cr3t" not in message and "tok" not in message.replace("token", "")


def test_allow_plaintext_lets_credentials_reach_a_loopback_host_over_insecure():
    config = config_from_connection(
        connection(host="localhost", port=30080, login="bot", password="s3cr3t"),
        {"insecure": True, "allow_plaintext": "true"},
    )

    assert (config.insecure, config.auth.mode, config.auth.allow_plaintext) == (
        True,
        "client_credentials",
        True,
    )


def test_allow_plaintext_never_sends_credentials_to_another_host_in_the_clear():
    with pytest.raises(FlyteConfigError, match="connection 'flyte_default': credentials are never"):
        config_from_connection(
            connection(host="flyte.example.com", password="tok"),
            {"auth_mode": "bearer", "insecure": True, "allow_plaintext": True},
        )


def test_allow_plaintext_is_not_needed_without_credentials_and_unused_with_tls():
    plain = config_from_connection(connection(host="localhost"), {"insecure": True})
    tls = config_from_connection(
        connection(host="flyte.example.com", password="tok"),
        {"auth_mode": "bearer", "allow_plaintext": True},
    )

    assert plain.auth is None
    assert (tls.insecure, tls.auth.mode) == (False, "bearer")


def test_an_auth_setting_missing_for_the_mode_names_the_connection():
    with pytest.raises(FlyteConfigError, match="connection 'flyte_default': external_command"):
        config_from_connection(connection(host="localhost"), {"auth_mode": "external_command"})


def test_an_unknown_extra_is_logged_and_ignored(caplog):
    config = config_from_connection(
        connection(host="localhost"), {"insecrue": True, "extra__flyte__projcet": "p"}
    )

    assert config.insecure is False
    assert "insecrue, projcet" in caplog.text


def test_test_connection_lists_one_execution_of_the_sandbox(flyte_connection, airflow_db):
    ok, message = FlyteHook(flyte_connection).test_connection()

    assert ok, message
    assert "(flytesnacks/development)" in message


def _sandbox_connection(monkeypatch, flyte_sandbox, conn_id: str, **extra) -> str:
    """``conn_id`` (in the environment) on the sandbox, plaintext, with ``extra`` added."""
    host, port = flyte_sandbox.endpoint.rsplit(":", 1)
    value = {"conn_type": "flyte", "host": host, "port": int(port)}
    value["extra"] = {"insecure": True, **extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    return conn_id


def test_test_connection_needs_no_default_project(monkeypatch, flyte_sandbox, airflow_db):
    conn_id = _sandbox_connection(monkeypatch, flyte_sandbox, "flyte_no_project")

    ok, message = FlyteHook(conn_id).test_connection()

    assert ok, message
    assert message.startswith(f"Connected to {flyte_sandbox.endpoint}")
    assert "flytesnacks" in message  # the projects it listed
    # Airflow shows the message beside "Connection success!": it says what operators then need.
    assert "has no default project and domain (extra 'project', 'domain')" in message
    assert "must set project= and domain=" in message


def test_test_connection_with_a_project_but_no_domain_says_operators_set_the_domain(
    monkeypatch, flyte_sandbox, airflow_db
):
    conn_id = _sandbox_connection(
        monkeypatch, flyte_sandbox, "flyte_project_only", project="flytesnacks"
    )

    ok, message = FlyteHook(conn_id).test_connection()

    assert ok, message
    assert "has no default domain (extra 'domain')" in message
    assert "must set domain=" in message and "project=" not in message


def test_test_connection_with_project_and_domain_says_nothing_of_operators(
    monkeypatch, flyte_sandbox, airflow_db
):
    conn_id = _sandbox_connection(
        monkeypatch, flyte_sandbox, "flyte_scoped", project="flytesnacks", domain="development"
    )

    ok, message = FlyteHook(conn_id).test_connection()

    assert (ok, message) == (
        True,
        f"Connected to {flyte_sandbox.endpoint} (flytesnacks/development)",
    )


def test_test_connection_fails_for_a_project_the_server_does_not_have(
    monkeypatch, flyte_sandbox, airflow_db
):
    conn_id = _sandbox_connection(monkeypatch, flyte_sandbox, "flyte_bad_project", project="nope")

    ok, message = FlyteHook(conn_id).test_connection()

    assert not ok
    assert "project 'nope' is not registered;" in message
    assert "registered projects: " in message and "flytesnacks" in message


def test_test_connection_fails_for_a_domain_the_project_does_not_have(
    monkeypatch, flyte_sandbox, airflow_db
):
    conn_id = _sandbox_connection(
        monkeypatch, flyte_sandbox, "flyte_bad_domain", project="flytesnacks", domain="qa"
    )

    ok, message = FlyteHook(conn_id).test_connection()

    assert not ok
    assert "domain 'qa' is not a domain of project 'flytesnacks'" in message
    assert "development" in message


def test_test_connection_fails_for_a_domain_no_project_has(monkeypatch, flyte_sandbox, airflow_db):
    conn_id = _sandbox_connection(monkeypatch, flyte_sandbox, "flyte_bad_domain_only", domain="qa")

    ok, message = FlyteHook(conn_id).test_connection()

    assert not ok
    assert "domain 'qa' is not a domain of any project" in message


def test_test_connection_reports_an_unreachable_endpoint(monkeypatch, airflow_db):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYTE_NOWHERE",
        '{"conn_type": "flyte", "host": "127.0.0.1", "port": 9, '
        '"extra": {"insecure": true, "project": "p", "domain": "d", "rpc_timeout": 1, '
        '"max_retries": 0}}',
    )

    ok, message = FlyteHook("flyte_nowhere").test_connection()

    assert not ok
    assert "Flyte" in message


def test_get_conn_is_the_hooks_client(flyte_connection, airflow_db):
    hook = FlyteHook()
    try:
        assert hook.get_conn() is hook.get_client()
    finally:
        hook.close()


@pytest.fixture(scope="module")
def auth_sandbox(tmp_path_factory):
    """A plaintext sandbox that requires client-credentials tokens (``bot`` / ``s3cr3t``)."""
    from flyte_bridge.sandbox import start_sandbox
    from flyte_bridge.sandbox.auth_server import AuthSettings

    running = start_sandbox(
        data_dir=tmp_path_factory.mktemp("auth-sandbox"), auth=AuthSettings("bot", "s3cr3t")
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("extra", "ok", "expected"),
    [
        ({"allow_plaintext": True}, True, "(flytesnacks/development)"),
        ({}, False, "set the extra 'allow_plaintext' to true"),
    ],
)
def test_a_connection_with_credentials_to_a_plaintext_sandbox_needs_allow_plaintext(
    monkeypatch, auth_sandbox, airflow_db, extra, ok, expected
):
    host, port = auth_sandbox.endpoint.rsplit(":", 1)
    value = {"conn_type": "flyte", "host": host, "port": int(port)}
    value.update(login="bot", password="s3cr3t")
    value["extra"] = {"insecure": True, "project": "flytesnacks", "domain": "development", **extra}
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_AUTH_SANDBOX", json.dumps(value))

    result, message = FlyteHook("flyte_auth_sandbox").test_connection()

    assert (result, expected in message) == (ok, True), message
    assert "s3cr3t" not in message


def test_the_plaintext_auth_sandbox_refuses_a_connection_without_credentials(
    monkeypatch, auth_sandbox, airflow_db
):
    conn_id = _sandbox_connection(
        monkeypatch, auth_sandbox, "flyte_auth_none", project="flytesnacks", domain="development"
    )

    ok, message = FlyteHook(conn_id).test_connection()

    assert not ok
    assert "FlyteAuthError" in message, message
