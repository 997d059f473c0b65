def test_airflow_lists_the_provider_with_its_flyte_connection_type(airflow_cli):
    providers = airflow_cli("providers", "list", "--output", "json")
    hooks = airflow_cli("providers", "hooks", "--output", "json")

    assert '"package_name": "flyte-bridge"' in providers
    assert '"connection_type": "flyte"' in hooks
    assert "airflow_provider.hooks.flyte.FlyteHook" in hooks


def test_the_connection_form_declares_every_field_without_importing_the_hook():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    behaviour = manager.field_behaviours["flyte"]

    flyte_fields = {name.split("__")[-1] for name in widgets if name.startswith("extra__flyte__")}
    assert flyte_fields == {
        "insecure",
        "allow_plaintext",
        "ca_cert_path",
        "auth_mode",
        "scopes",
        "audience",
        "token_endpoint",
        "command",
        "project",
        "domain",
        "console_url",
        "insecure_skip_verify",
        "rpc_timeout",
        "max_retries",
        "max_execution_name_length",
    }
    assert behaviour["relabeling"] == {
        "host": "Endpoint host",
        "login": "Client ID",
        "password": "Client secret or token",
    }
    assert "airflow_provider.links.flyte.FlyteExecutionLink" in manager.extra_links_class_names


def test_a_flyte_connection_made_with_the_cli_passes_airflow_connections_test(
    airflow_cli, flyte_sandbox, monkeypatch
):
    import json

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    host, port = flyte_sandbox.endpoint.rsplit(":", 1)
    extra = {"insecure": True, "project": "flytesnacks", "domain": "development"}

    airflow_cli(
        "connections", "add", "flyte_from_cli", "--conn-type", "flyte", "--conn-host", host,
        "--conn-port", port, "--conn-extra", json.dumps(extra),
    )  # fmt: skip
    stored = json.loads(airflow_cli("connections", "get", "flyte_from_cli", "--output", "json"))
    tested = airflow_cli("connections", "test", "flyte_from_cli")

    assert stored[0]["conn_type"] == "flyte"
    assert "Connection success!" in tested


def test_airflow_connections_test_of_a_connection_without_defaults_says_what_operators_need(
    airflow_cli, flyte_sandbox, monkeypatch
):
    import json

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    host, port = flyte_sandbox.endpoint.rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYTE_UNSCOPED",
        json.dumps(
            {"conn_type": "flyte", "host": host, "port": int(port), "extra": {"insecure": True}}
        ),
    )

    tested = airflow_cli("connections", "test", "flyte_unscoped", "--verbose")

    # The command prints no message on success and silences logging without --verbose (the UI
    # shows the message); with it, the hook's warning says what the operators then need.
    assert "Connection success!" in tested
    assert "must set project= and domain=" in " ".join(tested.split())
