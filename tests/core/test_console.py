"""Console links: the base URL from the endpoint or the configured console, every object."""

from __future__ import annotations

import pytest
from flyteidl.admin import execution_pb2, launch_plan_pb2
from flyteidl.core import identifier_pb2

from flyte_bridge.console import (
    console_base,
    console_base_from_endpoint,
    console_url,
    normalize_console_endpoint,
)
from flyte_bridge.errors import FlyteInvalidInputError

BASE = "https://flyte.example.com/console"
EXECUTION = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e1")


@pytest.mark.parametrize(
    ("endpoint", "insecure", "expected"),
    [
        ("localhost:30080", True, "http://localhost:30080/console"),
        ("dns:///flyte.example.com:443", False, "https://flyte.example.com/console"),
        ("dns:///flyte.example.com", False, "https://flyte.example.com/console"),
        ("flyte.example.com:8443", False, "https://flyte.example.com:8443/console"),
        ("127.0.0.1:8089", True, "http://127.0.0.1:8089/console"),
        ("localhost:30081", True, "http://localhost:30080/console"),
        ("[::1]:8089", True, "http://[::1]:8089/console"),
        ("https://flyte.example.com/", False, "https://flyte.example.com/console"),
    ],
)
def test_console_base_is_derived_from_the_grpc_endpoint(endpoint, insecure, expected):
    assert console_base_from_endpoint(endpoint, insecure) == expected


def test_empty_endpoint_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="empty endpoint"):
        console_base_from_endpoint("dns:///", False)


@pytest.mark.parametrize(
    "configured",
    [
        "https://flyte.example.com",
        "https://flyte.example.com/",
        "https://flyte.example.com/console",
        "https://flyte.example.com/console/",
        "https://flyte.example.com:443/console",
        "flyte.example.com",
    ],
)
def test_configured_console_endpoint_is_normalised(configured):
    assert normalize_console_endpoint(configured) == BASE


def test_configured_console_behind_a_path_prefix_keeps_it():
    assert normalize_console_endpoint("https://example.com/flyte/") == (
        "https://example.com/flyte/console"
    )


def test_configured_console_endpoint_with_another_scheme_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="expected an http"):
        normalize_console_endpoint("grpc://flyte.example.com")


@pytest.mark.parametrize(
    ("configured", "problem"),
    [
        ("flyte.example.com:80a", "its port is not a number"),
        ("https://flyte.example.com:0", "its port is not a number"),
        ("https://flyte.example.com:70000", "its port is not a number"),
        ("http://flyte example.com", "white space"),
        ("not a url", "white space"),
        ("https://-flyte-", "'-flyte-' is not a host name"),
        ("https://flyte.example.com/?tab=1", "query or fragment"),
        ("https://flyte.example.com/#top", "query or fragment"),
        ("javascript:alert(1)", "its port is not a number"),
    ],
)
def test_a_console_endpoint_that_would_make_broken_links_is_refused(configured, problem):
    with pytest.raises(FlyteInvalidInputError) as refused:
        normalize_console_endpoint(configured)

    assert problem in str(refused.value)
    assert f"console endpoint {configured!r}" in str(refused.value)


@pytest.mark.parametrize(
    "configured", ["https://bot:hunter2@flyte.example.com", "mailto:hunter2@b"]
)
def test_a_console_endpoint_with_credentials_is_refused_without_showing_them(configured):
    with pytest.raises(FlyteInvalidInputError) as refused:
        normalize_console_endpoint(configured)

    assert "user name or password" in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("configured", "base"),
    [
        ("http://[::1]:8080", "http://[::1]:8080/console"),
        ("localhost:8088", "https://localhost:8088/console"),
        ("https://flyte_ui.internal", "https://flyte_ui.internal/console"),
    ],
)
def test_console_endpoints_with_ports_ipv6_and_underscores_are_kept(configured, base):
    assert normalize_console_endpoint(configured) == base


def test_configured_console_endpoint_wins_over_the_grpc_endpoint():
    assert console_base("grpc.internal:81", True, "https://ui.example.com/") == (
        "https://ui.example.com/console"
    )
    assert console_base("localhost:30080", True) == "http://localhost:30080/console"


def test_execution_url():
    assert console_url(BASE, EXECUTION) == f"{BASE}/projects/p/domains/d/executions/e1"


def test_execution_url_from_an_admin_execution_message():
    message = execution_pb2.Execution(id=EXECUTION)
    assert console_url(BASE + "/", message) == f"{BASE}/projects/p/domains/d/executions/e1"


def test_node_execution_url_opens_its_execution_page():
    node = identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=EXECUTION)
    assert console_url(BASE, node) == f"{BASE}/projects/p/domains/d/executions/e1"


def test_task_execution_url_opens_its_execution_page():
    node = identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=EXECUTION)
    task = identifier_pb2.TaskExecutionIdentifier(node_execution_id=node, retry_attempt=1)
    assert console_url(BASE, task) == f"{BASE}/projects/p/domains/d/executions/e1"


@pytest.mark.parametrize(
    ("resource_type", "segment"),
    [
        (identifier_pb2.TASK, "task"),
        (identifier_pb2.WORKFLOW, "workflow"),
        (identifier_pb2.LAUNCH_PLAN, "launch_plan"),
    ],
)
def test_entity_url_with_version(resource_type, segment):
    entity = identifier_pb2.Identifier(
        resource_type=resource_type, project="p", domain="d", name="wf.daily", version="v1"
    )
    assert console_url(BASE, entity) == f"{BASE}/projects/p/domains/d/{segment}/wf.daily/version/v1"


def test_launch_plan_url_without_version_opens_its_listing():
    entity = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN, project="p", domain="d", name="daily"
    )
    assert console_url(BASE, launch_plan_pb2.LaunchPlan(id=entity)) == (
        f"{BASE}/projects/p/domains/d/launchPlans/daily"
    )


def test_version_with_slashes_is_escaped():
    entity = identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK, project="p", domain="d", name="t", version="a/b c"
    )
    assert console_url(BASE, entity).endswith("/task/t/version/a%2Fb%20c")


def test_object_with_a_to_proto_method_is_accepted():
    class ExecutionIdLike:
        def to_proto(self):
            return EXECUTION

    class ExecutionLike:
        id = ExecutionIdLike()

    assert console_url(BASE, ExecutionLike()).endswith("/executions/e1")


def test_object_without_an_identifier_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="no console page for str"):
        console_url(BASE, "p/d/e1")


def test_dataset_identifier_is_refused():
    entity = identifier_pb2.Identifier(resource_type=identifier_pb2.DATASET, name="x")
    with pytest.raises(FlyteInvalidInputError, match="DATASET"):
        console_url(BASE, entity)
