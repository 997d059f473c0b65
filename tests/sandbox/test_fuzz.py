"""Malformed requests never crash the server, never answer UNKNOWN or INTERNAL, and never leave a
half-written execution behind. Requests are random messages built from the proto descriptors."""

from __future__ import annotations

import grpc
import pytest
from admin_builders import DOMAIN, PROJECT
from flyteidl.admin import (
    common_pb2,
    event_pb2,
    execution_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    project_pb2,
    signal_pb2,
    task_execution_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import identifier_pb2
from flyteidl.service import dataproxy_pb2, dataproxy_pb2_grpc, signal_pb2_grpc
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ACCEPTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
}
_STRINGS = st.one_of(
    st.sampled_from(
        ["", PROJECT, DOMAIN, "n0", "start-node", "v1", "eq(phase,RUNNING)", "created_at", "x" * 70]
    ),
    st.text(max_size=12),
)
_INTEGERS = st.one_of(st.sampled_from([0, 1, -1, 100]), st.integers(-(2**31), 2**31 - 1))


def _scalar(draw, field: FieldDescriptor):
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return draw(_STRINGS)
    if kind == FieldDescriptor.TYPE_BYTES:
        return draw(st.binary(max_size=20))
    if kind == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return draw(st.sampled_from(numbers + [max(numbers) + 3]))
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
    if kind in (
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
    ):
        return abs(draw(_INTEGERS))
    return draw(_INTEGERS)


def _fill(draw, message, depth: int) -> None:
    """Sets a random subset of a message's fields, recursing a few levels deep."""
    for field in message.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == 3
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if depth <= 0:
                continue
            container = getattr(message, field.name)
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 2))):
                key = _scalar(draw, key_field)
                if value_field.message_type is not None:
                    _fill(draw, container[key], depth - 1)
                else:
                    container[key] = _scalar(draw, value_field)
        elif field.message_type is not None:
            if depth <= 0:
                continue
            if repeated:
                for _ in range(draw(st.integers(0, 2))):
                    _fill(draw, getattr(message, field.name).add(), depth - 1)
            else:
                child = getattr(message, field.name)
                child.SetInParent()
                _fill(draw, child, depth - 1)
        elif repeated:
            getattr(message, field.name).extend(
                _scalar(draw, field) for _ in range(draw(st.integers(0, 2)))
            )
        else:
            try:
                setattr(message, field.name, _scalar(draw, field))
            except (ValueError, TypeError):
                pass


def _code(call, request) -> grpc.StatusCode:
    try:
        call(request, timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def stubs(bare_sandbox, bare_admin):
    channel = grpc.insecure_channel(bare_sandbox.endpoint)
    yield {
        "admin": bare_admin,
        "signals": signal_pb2_grpc.SignalServiceStub(channel),
        "dataproxy": dataproxy_pb2_grpc.DataProxyServiceStub(channel),
    }
    channel.close()


RPCS = [
    ("admin", "CreateExecution", execution_pb2.ExecutionCreateRequest),
    ("admin", "RelaunchExecution", execution_pb2.ExecutionRelaunchRequest),
    ("admin", "TerminateExecution", execution_pb2.ExecutionTerminateRequest),
    ("admin", "ListExecutions", common_pb2.ResourceListRequest),
    ("admin", "ListTasks", common_pb2.ResourceListRequest),
    ("admin", "ListLaunchPlans", common_pb2.ResourceListRequest),
    ("admin", "CreateTask", task_pb2.TaskCreateRequest),
    ("admin", "CreateWorkflow", workflow_pb2.WorkflowCreateRequest),
    ("admin", "CreateLaunchPlan", launch_plan_pb2.LaunchPlanCreateRequest),
    ("admin", "UpdateLaunchPlan", launch_plan_pb2.LaunchPlanUpdateRequest),
    ("admin", "ListNodeExecutions", node_execution_pb2.NodeExecutionListRequest),
    ("admin", "GetNodeExecutionData", node_execution_pb2.NodeExecutionGetDataRequest),
    ("admin", "ListTaskExecutions", task_execution_pb2.TaskExecutionListRequest),
    ("admin", "GetTaskExecutionData", task_execution_pb2.TaskExecutionGetDataRequest),
    ("admin", "RegisterProject", project_pb2.ProjectRegisterRequest),
    ("admin", "ListProjects", project_pb2.ProjectListRequest),
    ("admin", "ListNamedEntities", common_pb2.NamedEntityListRequest),
    ("admin", "CreateWorkflowEvent", event_pb2.WorkflowExecutionEventRequest),
    ("admin", "CreateNodeEvent", event_pb2.NodeExecutionEventRequest),
    ("admin", "CreateTaskEvent", event_pb2.TaskExecutionEventRequest),
    ("admin", "GetExecutionMetrics", execution_pb2.WorkflowExecutionGetMetricsRequest),
    ("signals", "GetOrCreateSignal", signal_pb2.SignalGetOrCreateRequest),
    ("signals", "SetSignal", signal_pb2.SignalSetRequest),
    ("signals", "ListSignals", signal_pb2.SignalListRequest),
    ("dataproxy", "CreateUploadLocation", dataproxy_pb2.CreateUploadLocationRequest),
    ("dataproxy", "GetData", dataproxy_pb2.GetDataRequest),
]


@pytest.mark.parametrize(("service", "rpc", "request_type"), RPCS, ids=[r[1] for r in RPCS])
def test_random_requests_get_a_flyteadmin_status_code(stubs, service, rpc, request_type):
    call = getattr(stubs[service], rpc)

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def check(data):
        request = request_type()
        _fill(data.draw, request, depth=3)
        code = _code(call, request)
        assert code in ACCEPTED, f"{rpc} answered {code} to {request}"
        if rpc == "CreateExecution" and code != grpc.StatusCode.OK and request.name:
            leftover = _code(
                stubs["admin"].GetExecution,
                execution_pb2.WorkflowExecutionGetRequest(
                    id=identifier_pb2.WorkflowExecutionIdentifier(
                        project=request.project, domain=request.domain, name=request.name
                    )
                ),
            )
            assert leftover in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)

    check()
