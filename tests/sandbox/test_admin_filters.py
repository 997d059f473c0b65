"""The admin filter language, sort keys and page tokens on list RPCs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from admin_builders import (
    DOMAIN,
    PROJECT,
    WF,
    integer,
    launch,
    register_task,
    simple_launch_plan,
    unique,
    workflow_event,
)
from flyteidl.admin import common_pb2, event_pb2, execution_pb2, project_pb2
from flyteidl.core import literals_pb2


@pytest.fixture(scope="module")
def runs(bare_admin):
    """Three executions of one launch plan (SUCCEEDED in 90 s, FAILED, RUNNING), one task run."""
    launch_plan_id, task = simple_launch_plan(bare_admin, "filtered")
    started = time.time() - 600
    phases = {}
    for phase, label in ((WF.SUCCEEDED, "gold"), (WF.FAILED, "red"), (WF.RUNNING, "gold")):
        request = execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            spec=execution_pb2.ExecutionSpec(launch_plan=launch_plan_id),
            inputs=literals_pb2.LiteralMap(literals={"x": integer(1)}),
        )
        request.spec.labels.values["team"] = label
        execution_id = bare_admin.CreateExecution(request).id
        events = [(WF.RUNNING, started)] + ([(phase, started + 90)] if phase != WF.RUNNING else [])
        for event_phase, when in events:
            bare_admin.CreateWorkflowEvent(
                event_pb2.WorkflowExecutionEventRequest(
                    event=workflow_event(execution_id, event_phase, when)
                )
            )
        phases[WF.Phase.Name(phase)] = execution_id.name
    solo = register_task(bare_admin, unique("solo"))
    phases["task"] = launch(bare_admin, solo.id).name
    return launch_plan_id, task, solo, phases


def _names(admin, filters, limit=100, sort=None):
    request = common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
        limit=limit,
        filters=filters,
    )
    if sort is not None:
        request.sort_by.CopyFrom(sort)
    return [e.id.name for e in admin.ListExecutions(request).executions]


def _by_launch_plan(runs):
    return f"eq(launch_plan.name,{runs[0].name})"


def test_eq_on_phase_matches_the_enum_name(bare_admin, runs):
    names = _names(bare_admin, f"{_by_launch_plan(runs)}+eq(phase,SUCCEEDED)")

    assert names == [runs[3]["SUCCEEDED"]]


def test_value_in_takes_a_semicolon_separated_list(bare_admin, runs):
    names = _names(bare_admin, f"{_by_launch_plan(runs)}+value_in(phase,RUNNING;FAILED)")

    assert sorted(names) == sorted([runs[3]["RUNNING"], runs[3]["FAILED"]])


def test_launch_plan_filter_leaves_out_task_executions(bare_admin, runs):
    names = _names(bare_admin, _by_launch_plan(runs))

    assert len(names) == 3
    assert runs[3]["task"] not in names


def test_task_filter_finds_single_task_executions(bare_admin, runs):
    names = _names(bare_admin, f"eq(task.name,{runs[2].id.name})")

    assert names == [runs[3]["task"]]


def test_duration_compares_in_seconds(bare_admin, runs):
    names = _names(bare_admin, f"{_by_launch_plan(runs)}+gte(duration,90)")

    assert sorted(names) == sorted([runs[3]["SUCCEEDED"], runs[3]["FAILED"]])


def test_duration_accepts_go_style_strings(bare_admin, runs):
    names = _names(bare_admin, f"{_by_launch_plan(runs)}+gt(execution.duration,1m29s)")

    assert len(names) == 2


def test_created_at_compares_rfc3339_instants(bare_admin, runs):
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    later = _names(bare_admin, f"{_by_launch_plan(runs)}+gte(execution_created_at,{future})")
    earlier = _names(bare_admin, f"{_by_launch_plan(runs)}+lt(execution_created_at,{future})")

    assert (later, len(earlier)) == ([], 3)


def test_labels_are_filterable_as_execution_tags(bare_admin, runs):
    names = _names(bare_admin, f"{_by_launch_plan(runs)}+eq(execution_tag.value,red)")

    assert names == [runs[3]["FAILED"]]


def test_value_in_on_execution_name_finds_several_executions(bare_admin, runs):
    wanted = [runs[3]["FAILED"], runs[3]["RUNNING"]]

    names = _names(bare_admin, f"value_in(execution_name,{';'.join(wanted)})")

    assert sorted(names) == sorted(wanted)


@pytest.mark.parametrize("field", ["name", "project", "domain"])
def test_name_project_and_domain_are_no_execution_filter_fields_as_in_flyteadmin(
    bare_admin, runs, field
):
    with pytest.raises(grpc.RpcError) as caught:
        _names(bare_admin, f"eq({field},x)")

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"'e.{field}' is invalid filter" in caught.value.details()


def test_contains_on_task_names_is_case_sensitive(bare_admin, runs):
    task_name = runs[1].id.name

    def names(filters):
        request = common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
            limit=100,
            filters=filters,
        )
        return [t.id.name for t in bare_admin.ListTasks(request).tasks]

    assert names(f"contains(name,{task_name})") == [task_name]
    assert names(f"contains(name,{task_name.upper()})") == []


def test_pages_carry_an_offset_token_until_a_page_is_short(bare_admin, runs):
    sort = common_pb2.Sort(key="created_at", direction=common_pb2.Sort.ASCENDING)
    request = common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
        limit=2,
        filters=_by_launch_plan(runs),
        sort_by=sort,
    )
    first = bare_admin.ListExecutions(request)
    request.token = first.token
    second = bare_admin.ListExecutions(request)

    assert first.token == "2"
    assert len(second.executions) == 1 and second.token == ""


def test_sort_without_direction_is_descending(bare_admin, runs):
    ascending = _names(
        bare_admin,
        _by_launch_plan(runs),
        sort=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.ASCENDING),
    )

    descending = _names(bare_admin, _by_launch_plan(runs), sort=common_pb2.Sort(key="created_at"))

    assert descending == list(reversed(ascending))


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ("phase=SUCCEEDED", "invalid value for filters"),
        ("like(phase,SUCCEEDED)", "unrecognized filter function: like"),
        ("eq(colour,red)", "'e.colour' is invalid filter"),
        ("eq(node_execution.phase,RUNNING)", "'ne' entity is not allowed in filters"),
        ("gte(execution_created_at,yesterday)", "must conform to RFC3339"),
        ("gt(duration,forever)", "Failed to parse duration"),
        ("eq(phase,RUNNING;FAILED)", "takes a single value"),
    ],
)
def test_malformed_filters_are_invalid_argument(bare_admin, runs, filters, message):
    with pytest.raises(grpc.RpcError) as caught:
        _names(bare_admin, filters)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.details()


def test_an_unknown_sort_key_is_invalid_argument(bare_admin, runs):
    with pytest.raises(grpc.RpcError) as caught:
        _names(bare_admin, "", sort=common_pb2.Sort(key="colour"))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid sort key 'colour'" in caught.value.details()


def test_a_non_numeric_token_is_invalid_argument(bare_admin):
    request = common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=1, token="abc"
    )

    with pytest.raises(grpc.RpcError) as caught:
        bare_admin.ListExecutions(request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid pagination token abc" in caught.value.details()


def test_limit_zero_lists_every_project_but_is_refused_elsewhere(bare_admin):
    projects = bare_admin.ListProjects(project_pb2.ProjectListRequest(limit=0))
    with pytest.raises(grpc.RpcError) as caught:
        _names(bare_admin, "", limit=0)

    assert [p.id for p in projects.projects] == ["flytesnacks"]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "invalid value for limit"
