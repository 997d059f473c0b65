"""CreateExecution refuses a Timestamp or Duration that protobuf cannot turn into a datetime or a
timedelta, in the spec or in an input at any depth, so no record breaks a later read."""

from __future__ import annotations

import grpc
import pytest
from admin_builders import (
    DATETIME,
    DOMAIN,
    PROJECT,
    launch,
    promise,
    register_launch_plan,
    register_task,
    register_workflow,
    task_node,
    unique,
    workflow_template,
)
from flyteidl.admin import execution_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2
from google.protobuf import duration_pb2, timestamp_pb2

DURATION = types_pb2.LiteralType(simple=types_pb2.DURATION)
INPUT_TYPES = {
    "when": DATETIME,
    "wait": DURATION,
    "whens": types_pb2.LiteralType(collection_type=DATETIME),
    "waits": types_pb2.LiteralType(map_value_type=DURATION),
}
VALID_INPUTS = {
    "when": timestamp_pb2.Timestamp(seconds=1),
    "wait": duration_pb2.Duration(seconds=1),
    "whens": [timestamp_pb2.Timestamp(seconds=1)],
    "waits": {"a": duration_pb2.Duration(seconds=-1, nanos=-5)},
}


def _literal(value) -> literals_pb2.Literal:
    if isinstance(value, list):
        return literals_pb2.Literal(
            collection=literals_pb2.LiteralCollection(literals=[_literal(v) for v in value])
        )
    if isinstance(value, dict):
        return literals_pb2.Literal(
            map=literals_pb2.LiteralMap(literals={k: _literal(v) for k, v in value.items()})
        )
    field = "datetime" if isinstance(value, timestamp_pb2.Timestamp) else "duration"
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**{field: value}))
    )


@pytest.fixture(scope="module")
def time_launch_plan(bare_admin):
    """A launch plan taking a datetime, a duration, a list of datetimes and a map of durations."""
    task = register_task(bare_admin, unique("time-task"), inputs=INPUT_TYPES)
    bindings = {name: promise("", name) for name in INPUT_TYPES}
    template = workflow_template(
        unique("time-wf"), [task_node("n0", task.id, **bindings)], inputs=INPUT_TYPES
    )
    return register_launch_plan(bare_admin, register_workflow(bare_admin, template))


def _launch(admin, launch_plan_id, **overrides):
    inputs = {name: _literal(value) for name, value in {**VALID_INPUTS, **overrides}.items()}
    return launch(admin, launch_plan_id, **inputs)


def test_valid_time_inputs_are_accepted(bare_admin, time_launch_plan):
    assert _launch(bare_admin, time_launch_plan).name


@pytest.mark.parametrize(
    "scheduled_at",
    [
        timestamp_pb2.Timestamp(seconds=-(10**12)),
        timestamp_pb2.Timestamp(seconds=2**62),
        timestamp_pb2.Timestamp(seconds=1, nanos=-5),
        timestamp_pb2.Timestamp(seconds=1, nanos=1_000_000_000),
    ],
)
def test_an_invalid_scheduled_at_is_refused_naming_the_field(
    bare_admin, time_launch_plan, scheduled_at
):
    spec = execution_pb2.ExecutionSpec(
        launch_plan=time_launch_plan,
        metadata=execution_pb2.ExecutionMetadata(scheduled_at=scheduled_at),
    )
    request = execution_pb2.ExecutionCreateRequest(
        project=PROJECT,
        domain=DOMAIN,
        name=unique("sched"),
        spec=spec,
        inputs=literals_pb2.LiteralMap(
            literals={name: _literal(value) for name, value in VALID_INPUTS.items()}
        ),
    )
    with pytest.raises(grpc.RpcError) as raised:
        bare_admin.CreateExecution(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.metadata.scheduled_at is not a valid timestamp" in raised.value.details()
    execution_id = identifier_pb2.WorkflowExecutionIdentifier(
        project=PROJECT, domain=DOMAIN, name=request.name
    )
    with pytest.raises(grpc.RpcError) as lookup:
        bare_admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id))
    assert lookup.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_invalid_queueing_budget_is_refused_naming_the_field(bare_admin, time_launch_plan):
    spec = execution_pb2.ExecutionSpec(launch_plan=time_launch_plan)
    spec.quality_of_service.spec.CopyFrom(
        core_execution_pb2.QualityOfServiceSpec(
            queueing_budget=duration_pb2.Duration(seconds=10**13)
        )
    )
    request = execution_pb2.ExecutionCreateRequest(
        project=PROJECT, domain=DOMAIN, name=unique("qos"), spec=spec
    )
    with pytest.raises(grpc.RpcError) as raised:
        bare_admin.CreateExecution(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.quality_of_service.spec.queueing_budget is not a valid duration" in (
        raised.value.details()
    )


@pytest.mark.parametrize(
    ("name", "value", "where"),
    [
        ("when", timestamp_pb2.Timestamp(seconds=1, nanos=2_000_000_000), "primitive.datetime"),
        ("when", timestamp_pb2.Timestamp(seconds=2**62), "primitive.datetime"),
        ("wait", duration_pb2.Duration(seconds=1, nanos=-1), "primitive.duration"),
        ("wait", duration_pb2.Duration(seconds=10**12), "primitive.duration"),
        (
            "whens",
            [timestamp_pb2.Timestamp(seconds=1), timestamp_pb2.Timestamp(nanos=-5)],
            "collection.literals[1].scalar.primitive.datetime",
        ),
        (
            "waits",
            {"a": duration_pb2.Duration(seconds=1), "b": duration_pb2.Duration(nanos=10**9)},
            "map.literals[b].scalar.primitive.duration",
        ),
    ],
)
def test_an_invalid_datetime_or_duration_input_is_refused_naming_the_input(
    bare_admin, time_launch_plan, name, value, where
):
    with pytest.raises(grpc.RpcError) as raised:
        _launch(bare_admin, time_launch_plan, **{name: value})

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"inputs: literal {name}: " in raised.value.details()
    assert where in raised.value.details()
