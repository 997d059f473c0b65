"""What Airflow's providers manager learns about this provider, without importing any of it.

Airflow reads this through the ``apache_airflow_provider`` entry point every time it starts, so the
module imports nothing. The connection form is declared here (``conn-fields`` and
``ui-field-behaviour``, read by Airflow 3.2 and later without importing the hook). Earlier
Airflow 3 releases do not read ``conn-fields`` and the hook has no
``get_connection_form_widgets``, so there the Flyte extras are edited as JSON.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "flyte-bridge"
INTEGRATION = "Flyte"
AUTH_MODES = ["none", "client_credentials", "external_command", "bearer", "api_key"]


def _string(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], **schema},
    }


def _number(label: str, description: str, kind: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], **schema},
    }


def _boolean(label: str, description: str) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["boolean", "null"], "default": False},
    }


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "insecure": _boolean("Insecure", "Plain-text gRPC, no TLS (local sandboxes only)."),
    "allow_plaintext": _boolean(
        "Allow plaintext credentials",
        "Send the credentials over an insecure connection; honoured for a loopback host only "
        "(a local sandbox with auth on).",
    ),
    "ca_cert_path": _string("CA bundle", "Path to a PEM file of CA certificates to trust."),
    "insecure_skip_verify": _boolean(
        "Skip TLS verification",
        "Trust whatever certificate the server presents (self-signed test clusters only).",
    ),
    "auth_mode": _string(
        "Auth mode",
        "How to authenticate: client_credentials uses Client ID and Client secret; bearer and "
        "api_key send the secret as a token; external_command runs a command for the token.",
        enum=[*AUTH_MODES, None],
        default="none",
    ),
    "scopes": _string("Scopes", "OAuth scopes, separated by spaces or commas."),
    "audience": _string("Audience", "OAuth audience, when the identity provider needs one."),
    "token_endpoint": _string(
        "Token endpoint", "OAuth token URL; discovered from the server when empty."
    ),
    "command": _string("Token command", "external_command mode: the command that prints a token."),
    "project": _string("Default project", "Project used when a task does not name one."),
    "domain": _string("Default domain", "Domain used when a task does not name one."),
    "console_url": _string(
        "Console URL",
        "Base URL of the Flyte console for links; derived from the endpoint when empty. For a "
        "flyte-bridge sandbox: its HTTP endpoint (the console endpoint it prints).",
    ),
    "rpc_timeout": _number(
        "RPC timeout",
        "Deadline of each call attempt, in seconds (default 30).",
        "number",
        exclusiveMinimum=0,
    ),
    "max_retries": _number(
        "Max retries",
        "Retries of a call that failed transiently (default 5).",
        "integer",
        minimum=0,
    ),
    "max_execution_name_length": _number(
        "Max execution name length",
        "Longest execution name admin accepts: 63 (the default) since flyteadmin 1.1, 20 before.",
        "integer",
        minimum=20,
        maximum=63,
    ),
}


def get_provider_info() -> dict[str, Any]:
    """Returns the provider description Airflow validates against its provider schema."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Flyte (flyte-bridge)",
        "description": "Launch, wait on, signal, terminate and backfill Flyte executions.",
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.flyte.org",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider.operators.flyte"],
            }
        ],
        "sensors": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider.sensors.flyte"]}
        ],
        "hooks": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider.hooks.flyte"]}
        ],
        "triggers": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider.triggers.flyte"]}
        ],
        "connection-types": [
            {
                "connection-type": "flyte",
                "hook-class-name": "airflow_provider.hooks.flyte.FlyteHook",
                "hook-name": "Flyte",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "Endpoint host",
                        "login": "Client ID",
                        "password": "Client secret or token",
                    },
                    "placeholders": {
                        "host": "flyte.example.com (or localhost for a sandbox)",
                        "port": "443 (30080 for a sandbox)",
                        "login": "OAuth client id (client_credentials mode)",
                    },
                },
            }
        ],
        "extra-links": ["airflow_provider.links.flyte.FlyteExecutionLink"],
    }
