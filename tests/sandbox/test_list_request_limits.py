"""Page tokens and filter values beyond what SQLite (and admin's int64s) hold, on every list RPC.

They are INVALID_ARGUMENT naming the token or filter and what was expected, not INTERNAL with a
Python OverflowError or a SQLite "Expression tree is too large".
"""

from __future__ import annotations

import grpc
import pytest
from admin_builders import DOMAIN, PROJECT, integer, launch, simple_launch_plan
from flyteidl.admin import (
    common_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    project_pb2,
    signal_pb2,
    task_execution_pb2,
)
from flyteidl.core import identifier_pb2

_EXECUTION = identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name="x")
_ENTITY = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)


def _resource(**fields):
    return common_pb2.ResourceListRequest(id=_ENTITY, limit=5, **fields)


def _ids(**fields):
    fields.pop("filters", None)
    return common_pb2.NamedEntityIdentifierListRequest(
        project=PROJECT, domain=DOMAIN, limit=5, **fields
    )


# (service, rpc, request builder, an integer column of the listed entity or None without filters)
_RPCS = [
    ("admin", "ListExecutions", _resource, "mode"),
    ("admin", "ListTasks", _resource, "id"),
    ("admin", "ListTaskIds", _ids, None),
    ("admin", "ListWorkflows", _resource, "id"),
    ("admin", "ListWorkflowIds", _ids, None),
    ("admin", "ListLaunchPlans", _resource, "state"),
    ("admin", "ListLaunchPlanIds", _ids, None),
    (
        "admin",
        "ListActiveLaunchPlans",
        lambda **fields: launch_plan_pb2.ActiveLaunchPlanListRequest(
            project=PROJECT, domain=DOMAIN, limit=5, token=fields.get("token", "")
        ),
        None,
    ),
    (
        "admin",
        "ListNodeExecutions",
        lambda **fields: node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=_EXECUTION, limit=5, **fields
        ),
        "id",
    ),
    (
        "admin",
        "ListTaskExecutions",
        lambda **fields: task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id="n0", execution_id=_EXECUTION
            ),
            limit=5,
            **fields,
        ),
        "retry_attempt",
    ),
    (
        "signals",
        "ListSignals",
        lambda **fields: signal_pb2.SignalListRequest(
            workflow_execution_id=_EXECUTION, limit=5, **fields
        ),
        "id",
    ),
    (
        "admin",
        "ListProjects",
        lambda **fields: project_pb2.ProjectListRequest(limit=5, **fields),
        "state",
    ),
    (
        "admin",
        "ListNamedEntities",
        lambda **fields: common_pb2.NamedEntityListRequest(
            resource_type=identifier_pb2.WORKFLOW, project=PROJECT, domain=DOMAIN, limit=5, **fields
        ),
        "state",
    ),
]
_FILTERED = [rpc for rpc in _RPCS if rpc[3] is not None]
_WITH_DURATION = ("ListExecutions", "ListNodeExecutions", "ListTaskExecutions")


def _call(bare_admin, bare_signals, service, rpc, request):
    stub = bare_admin if service == "admin" else bare_signals
    return getattr(stub, rpc)(request)


def _refused(bare_admin, bare_signals, service, rpc, request) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        _call(bare_admin, bare_signals, service, rpc, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value.details()


@pytest.mark.parametrize(("service", "rpc", "build", "column"), _RPCS, ids=[r[1] for r in _RPCS])
@pytest.mark.parametrize("token", [str(2**63), "-1", "1_0", " 3"])
def test_a_token_that_is_no_row_offset_is_invalid_argument(
    bare_admin, bare_signals, service, rpc, build, column, token
):
    details = _refused(bare_admin, bare_signals, service, rpc, build(token=token))

    assert f"invalid pagination token {token} for {rpc}" in details
    assert f"row offset from 0 to {2**63 - 1}" in details


@pytest.mark.parametrize(("service", "rpc", "build", "column"), _RPCS, ids=[r[1] for r in _RPCS])
def test_the_largest_offset_is_an_empty_page(bare_admin, bare_signals, service, rpc, build, column):
    response = _call(bare_admin, bare_signals, service, rpc, build(token=str(2**63 - 1)))

    assert response.token == ""


@pytest.mark.parametrize(
    ("service", "rpc", "build", "column"), _FILTERED, ids=[r[1] for r in _FILTERED]
)
def test_an_integer_filter_value_beyond_int64_is_invalid_argument(
    bare_admin, bare_signals, service, rpc, build, column
):
    request = build(filters=f"gt({column},99999999999999999999999)")

    details = _refused(bare_admin, bare_signals, service, rpc, request)

    assert "invalid value [99999999999999999999999] for an integer filter field" in details
    assert f"whole number from {-(2**63)} to {2**63 - 1}" in details


@pytest.mark.parametrize("rpc", _WITH_DURATION)
@pytest.mark.parametrize("value", ["99999999999999999999999", "inf", "nan", "9999999999h"])
def test_a_duration_beyond_int64_nanoseconds_is_invalid_argument(
    bare_admin, bare_signals, rpc, value
):
    service, _, build, _ = next(r for r in _RPCS if r[1] == rpc)

    details = _refused(
        bare_admin, bare_signals, service, rpc, build(filters=f"gt(duration,{value})")
    )

    assert f"Failed to parse duration [{value}]" in details


@pytest.mark.parametrize(
    ("service", "rpc", "build", "column"), _FILTERED, ids=[r[1] for r in _FILTERED]
)
def test_five_hundred_anded_expressions_are_one_query(
    bare_admin, bare_signals, service, rpc, build, column
):
    filters = "+".join([f"gte({column},0)"] * 500)

    response = _call(bare_admin, bare_signals, service, rpc, build(filters=filters))

    assert response.token in ("", "5")


@pytest.mark.parametrize(
    ("service", "rpc", "build", "column"), _FILTERED, ids=[r[1] for r in _FILTERED]
)
def test_more_anded_expressions_than_sqlite_takes_are_invalid_argument(
    bare_admin, bare_signals, service, rpc, build, column
):
    filters = "+".join([f"gte({column},0)"] * 2000)

    details = _refused(bare_admin, bare_signals, service, rpc, build(filters=filters))

    assert "invalid value for filters: expected at most 500 expressions" in details
    assert "got 2000" in details


@pytest.mark.parametrize(
    ("service", "rpc", "build", "column"), _FILTERED, ids=[r[1] for r in _FILTERED]
)
def test_more_filter_values_than_sqlite_takes_is_invalid_argument(
    bare_admin, bare_signals, service, rpc, build, column
):
    filters = f"value_in({column},{';'.join(['1'] * 40_000)})"

    details = _refused(bare_admin, bare_signals, service, rpc, build(filters=filters))

    assert "invalid value for filters: expected at most 30000 values" in details


def test_a_timestamp_beyond_int64_nanoseconds_compares_as_the_latest_instant(bare_admin):
    late = bare_admin.ListExecutions(_resource(filters="gt(created_at,9999-01-01T00:00:00Z)"))
    early = bare_admin.ListExecutions(_resource(filters="lt(created_at,0001-01-01T00:00:00Z)"))

    assert list(late.executions) == []
    assert list(early.executions) == []


def test_executions_filtered_by_phase_five_hundred_times_are_listed(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin, "anded")
    execution_id = launch(bare_admin, launch_plan_id, x=integer(1))
    filters = "+".join(["ne(phase,ABORTED)"] * 500)
    request = common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=execution_id.name),
        limit=5,
        filters=filters,
    )

    response = bare_admin.ListExecutions(request)

    assert [execution.id.name for execution in response.executions] == [execution_id.name]
