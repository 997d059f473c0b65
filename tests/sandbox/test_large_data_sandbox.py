"""Large data in the sandbox: flyteadmin's inline limit and propeller's literal offloading.

The end-to-end tests use ``large_data_runs`` (``tests/sandbox/large_data_runs.py``): a sandbox
that inlines maps below 64 KiB and offloads task outputs of 1 MiB or more, with one finished run
whose data is only behind links and one whose outputs are offloaded literals.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import grpc
import pytest
from admin_builders import (
    integer,
    launch,
    node_event,
    simple_launch_plan,
    string,
    workflow_event,
)
from flyteidl.admin import event_pb2 as admin_event_pb2
from flyteidl.admin import execution_pb2, node_execution_pb2, task_execution_pb2
from flyteidl.core import condition_pb2, identifier_pb2, literals_pb2, types_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.service import admin_pb2_grpc
from large_data_runs import (
    INLINE_LIMIT,
    OFFLOADED_SIZE,
    URL_SIZE,
    expected_text,
)

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox.bindings import BindingError, apply_attribute_path, evaluate_condition
from flyte_bridge.sandbox.data_limits import DataLimits, data_limits
from flyte_bridge.sandbox.start_options import start_kwargs

WF = core_execution_pb2.WorkflowExecution
NODE = core_execution_pb2.NodeExecution


# --- settings ---------------------------------------------------------------------------------


def test_the_default_inline_limit_is_flyteadmins_and_offloading_is_off():
    limits = DataLimits()

    assert limits.max_inline_bytes == 2 * 1024 * 1024
    assert limits.literal_offloading is False
    assert limits.task_environment() == {}


def test_literal_offloading_gives_tasks_propellers_variables_with_its_default_maximum():
    assert data_limits(offloading_min_mb=10).task_environment() == {
        "_F_L_MIN_SIZE_MB": "10",
        "_F_L_MAX_SIZE_MB": "1000",
    }


def test_a_map_of_exactly_the_limit_is_not_inlined_and_a_zero_limit_inlines_all():
    limits = DataLimits(max_inline_bytes=100)

    assert (limits.inlines(99), limits.inlines(100)) == (True, False)
    assert DataLimits(max_inline_bytes=0).inlines(10**9) is True


@pytest.mark.parametrize(
    "settings",
    [
        {"max_inline_bytes": -1},
        {"offloading_min_mb": 10, "offloading_max_mb": 10},
        {"offloading_max_mb": 50},
    ],
)
def test_bad_data_limits_are_config_errors(settings):
    with pytest.raises(FlyteConfigError):
        data_limits(**settings)


def test_start_options_carry_the_data_limits_and_check_them():
    kwargs = start_kwargs(max_inline_data_bytes=1024, literal_offloading_min_mb=2)

    assert (kwargs["max_inline_data_bytes"], kwargs["literal_offloading_min_mb"]) == (1024, 2)
    with pytest.raises(FlyteConfigError, match="offloading_min_mb"):
        start_kwargs(literal_offloading_max_mb=5)


# --- the engine reads offloaded literals only to look inside ----------------------------------


def _offloaded(tmp_path, literal: literals_pb2.Literal) -> literals_pb2.Literal:
    path = tmp_path / "o0_offloaded_metadata.pb"
    path.write_bytes(literal.SerializeToString())
    return literals_pb2.Literal(
        offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(
            uri=path.as_uri(), size_bytes=literal.ByteSize()
        )
    )


def test_an_attribute_path_indexes_into_an_offloaded_list(tmp_path):
    stored = literals_pb2.Literal(
        collection=literals_pb2.LiteralCollection(literals=[string("first"), string("second")])
    )
    index = types_pb2.PromiseAttribute(int_value=1)

    resolved = apply_attribute_path(_offloaded(tmp_path, stored), [index])

    assert resolved.scalar.primitive.string_value == "second"


def test_an_unreadable_offloaded_literal_fails_the_attribute_path_naming_its_uri(tmp_path):
    missing = literals_pb2.Literal(
        offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(
            uri=(tmp_path / "gone.pb").as_uri()
        )
    )

    with pytest.raises(BindingError, match="gone.pb") as caught:
        apply_attribute_path(missing, [types_pb2.PromiseAttribute(int_value=0)])
    assert caught.value.code == "PromiseAttributeResolveError"


def test_a_branch_condition_compares_an_offloaded_value(tmp_path):
    inputs = literals_pb2.LiteralMap(literals={"x": _offloaded(tmp_path, integer(7))})
    greater = condition_pb2.BooleanExpression(
        comparison=condition_pb2.ComparisonExpression(
            operator=condition_pb2.ComparisonExpression.GT,
            left_value=condition_pb2.Operand(var="x"),
            right_value=condition_pb2.Operand(primitive=literals_pb2.Primitive(integer=5)),
        )
    )

    assert evaluate_condition(greater, inputs) is True


# --- inline event data (flyteadmin's validation and "offload" policy) --------------------------


def _big_map(size: int) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals={"y": string("x" * size)})


def test_inline_event_outputs_above_the_limit_are_resource_exhausted(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin)
    execution_id = launch(bare_admin, launch_plan_id, x=integer(1))
    event = node_event(
        execution_id, "n0", NODE.SUCCEEDED, time.time(), output_data=_big_map(2 * 1024 * 1024)
    )

    with pytest.raises(grpc.RpcError) as caught:
        bare_admin.CreateNodeEvent(admin_event_pb2.NodeExecutionEventRequest(event=event))

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds platform configured threshold" in caught.value.details()


def test_inline_workflow_outputs_are_written_to_the_store_and_read_back(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin)
    execution_id = launch(bare_admin, launch_plan_id, x=integer(1))
    now = time.time()
    for phase, fields in ((WF.RUNNING, {}), (WF.SUCCEEDED, {"output_data": _big_map(10)})):
        bare_admin.CreateWorkflowEvent(
            admin_event_pb2.WorkflowExecutionEventRequest(
                event=workflow_event(execution_id, phase, now, **fields)
            )
        )

    closure = bare_admin.GetExecution(
        execution_pb2.WorkflowExecutionGetRequest(id=execution_id)
    ).closure
    data = bare_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=execution_id)
    )

    assert closure.outputs.uri.endswith(f"/{execution_id.name}/offloaded_outputs")
    assert data.full_outputs.literals["y"].scalar.primitive.string_value == "x" * 10


# --- end to end: data behind a link --------------------------------------------------------------


@pytest.fixture(scope="module")
def large_admin(large_data_runs):
    channel = grpc.insecure_channel(large_data_runs.sandbox.endpoint)
    try:
        yield admin_pb2_grpc.AdminServiceStub(channel)
    finally:
        channel.close()


def _node(execution_id, node_id: str) -> identifier_pb2.NodeExecutionIdentifier:
    return identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution_id)


def _download_map(url: str) -> literals_pb2.LiteralMap:
    with urllib.request.urlopen(url, timeout=10) as response:
        return literals_pb2.LiteralMap.FromString(response.read())


@pytest.mark.slow
def test_outputs_above_the_limit_come_only_as_a_signed_link(large_data_runs, large_admin):
    data = large_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=large_data_runs.url_run)
    )

    assert len(data.full_outputs.literals) == 0
    assert data.outputs.url.startswith(f"{large_data_runs.sandbox.http_url}/signed/")
    assert data.outputs.bytes > INLINE_LIMIT
    linked = _download_map(data.outputs.url)
    assert linked.ByteSize() == data.outputs.bytes
    assert linked.literals["o0"].scalar.primitive.string_value == expected_text(URL_SIZE)


@pytest.mark.slow
def test_small_inputs_stay_inline_beside_their_link(large_data_runs, large_admin):
    data = large_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=large_data_runs.url_run)
    )

    assert data.full_inputs.literals["size"].scalar.primitive.integer == URL_SIZE
    assert _download_map(data.inputs.url) == data.full_inputs


@pytest.mark.slow
def test_a_tampered_link_is_refused(large_data_runs, large_admin):
    data = large_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=large_data_runs.url_run)
    )
    head, _, tail = data.outputs.url.partition("/signed/")
    expires, _, rest = tail.partition("/")
    _, _, path = rest.partition("/")

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{head}/signed/{expires}/{'0' * 64}/{path}", timeout=10)

    assert caught.value.code == 403


@pytest.mark.slow
def test_node_and_task_execution_data_above_the_limit_come_as_links(large_data_runs, large_admin):
    join_node = _node(large_data_runs.url_run, "n1")
    node_data = large_admin.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(id=join_node)
    )
    attempt = large_admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(node_execution_id=join_node, limit=10)
    ).task_executions[0]
    task_data = large_admin.GetTaskExecutionData(
        task_execution_pb2.TaskExecutionGetDataRequest(id=attempt.id)
    )

    for data in (node_data, task_data):
        assert len(data.full_inputs.literals) == len(data.full_outputs.literals) == 0
        parts = _download_map(data.inputs.url).literals["parts"].collection.literals
        assert [p.scalar.primitive.string_value for p in parts] == ["x" * URL_SIZE, "tail"]
        joined = _download_map(data.outputs.url).literals["o0"]
        assert joined.scalar.primitive.string_value == expected_text(URL_SIZE)


@pytest.mark.slow
def test_flyteremote_reads_outputs_inputs_and_node_data_behind_links(large_data_runs):
    remote = large_data_runs.remote()
    execution = remote.sync_execution(
        remote.fetch_execution(name=large_data_runs.url_run.name), sync_nodes=True
    )

    assert execution.outputs["o0"] == expected_text(URL_SIZE)
    assert (execution.outputs["o1"], execution.outputs["o2"]) == (URL_SIZE, 4)
    join_node = execution.node_executions["n1"]
    assert join_node.inputs["parts"] == ["x" * URL_SIZE, "tail"]
    assert join_node.task_executions[0].outputs["o0"] == expected_text(URL_SIZE)


# --- end to end: offloaded literals --------------------------------------------------------------


@pytest.mark.slow
def test_big_task_outputs_are_offloaded_literals_returned_as_they_are(large_data_runs, large_admin):
    data = large_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=large_data_runs.offloaded_run)
    )

    offloaded = data.full_outputs.literals["o0"].offloaded_metadata
    assert offloaded.uri.endswith("/n1/data/0/o0_offloaded_metadata.pb")
    stored = literals_pb2.Literal.FromString(
        large_data_runs.sandbox.server.store.read_bytes(offloaded.uri)
    )
    assert offloaded.size_bytes == stored.ByteSize()
    assert stored.scalar.primitive.string_value == expected_text(OFFLOADED_SIZE)


@pytest.mark.slow
def test_an_offloaded_literal_reaches_the_next_node_unread(large_data_runs, large_admin):
    produced = large_admin.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(
            id=_node(large_data_runs.offloaded_run, "n0")
        )
    ).full_outputs.literals["o0"]
    consumed = large_admin.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(
            id=_node(large_data_runs.offloaded_run, "n1")
        )
    ).full_inputs.literals["parts"]

    assert produced.HasField("offloaded_metadata")
    assert consumed == produced


@pytest.mark.slow
def test_attribute_paths_into_an_offloaded_list_are_resolved(large_data_runs, large_admin):
    data = large_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=large_data_runs.offloaded_run)
    )

    lengths = [data.full_outputs.literals[name].scalar.primitive.integer for name in ("o1", "o2")]
    assert lengths == [OFFLOADED_SIZE, 4]


@pytest.mark.slow
def test_flyteremote_reads_offloaded_outputs(large_data_runs):
    remote = large_data_runs.remote()
    execution = remote.fetch_execution(name=large_data_runs.offloaded_run.name)

    assert execution.outputs["o0"] == expected_text(OFFLOADED_SIZE)
