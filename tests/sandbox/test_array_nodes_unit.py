"""Unit tests of the array node rules and of flyteadmin's merge of item entries (no processes)."""

from __future__ import annotations

import pytest
from flyteidl.core import execution_pb2, literals_pb2, workflow_pb2
from flyteidl.event import event_pb2

from flyte_bridge.sandbox.array_nodes import (
    ArrayNodeError,
    _Item,
    array_size,
    failure_summary,
    item_limit,
    required_successes,
)
from flyte_bridge.sandbox.task_metadata import merge_logs, merge_metadata

TaskPhase = execution_pb2.TaskExecution.Phase


def integers(*values: int) -> literals_pb2.Literal:
    literal = literals_pb2.Literal()
    for value in values:
        literal.collection.literals.add().scalar.primitive.integer = value
    return literal


def scalar(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def no_offloading(uri: str) -> literals_pb2.Literal:
    raise AssertionError(f"nothing is offloaded here, yet {uri} was read")


def test_size_is_the_common_length_of_the_list_inputs():
    inputs = literals_pb2.LiteralMap(literals={"x": integers(1, 2, 3), "y": scalar(7)})

    assert array_size(inputs, set(), no_offloading) == 3


def test_bound_list_inputs_do_not_count_towards_the_size():
    inputs = literals_pb2.LiteralMap(literals={"x": integers(1, 2), "lookup": integers(5, 6, 7)})

    assert array_size(inputs, {"lookup"}, no_offloading) == 2


def test_lists_of_different_lengths_are_refused():
    inputs = literals_pb2.LiteralMap(literals={"a": integers(1, 2), "b": integers(1, 2, 3)})

    with pytest.raises(ArrayNodeError, match="input arrays have different lengths") as raised:
        array_size(inputs, set(), no_offloading)
    assert raised.value.code == "InvalidArrayLength"


def test_inputs_without_a_list_are_refused():
    inputs = literals_pb2.LiteralMap(literals={"a": scalar(1)})

    with pytest.raises(ArrayNodeError, match="no input array provided"):
        array_size(inputs, set(), no_offloading)


def test_an_offloaded_list_is_read_to_learn_its_length():
    offloaded = literals_pb2.Literal()
    offloaded.offloaded_metadata.uri = "file:///big.pb"
    inputs = literals_pb2.LiteralMap(literals={"x": offloaded})

    assert array_size(inputs, set(), lambda uri: integers(*range(5))) == 5


@pytest.mark.parametrize(
    ("criterion", "size", "required"),
    [
        ({}, 4, 4),
        ({"min_successes": 2}, 4, 2),
        ({"min_success_ratio": 0.75}, 4, 3),
        ({"min_success_ratio": 0.5}, 5, 3),
    ],
)
def test_required_successes_follow_the_success_criterion(criterion, size, required):
    assert required_successes(workflow_pb2.ArrayNode(**criterion), size) == required


@pytest.mark.parametrize(
    ("array_node", "max_parallelism", "limit"),
    [
        (workflow_pb2.ArrayNode(parallelism=3), 25, 3),
        (workflow_pb2.ArrayNode(parallelism=0), 25, 100),
        (workflow_pb2.ArrayNode(), 25, 25),
        (workflow_pb2.ArrayNode(), 0, 100),
        (workflow_pb2.ArrayNode(), -1, 100),
    ],
)
def test_item_limit_is_the_parallelism_else_the_execution_max_parallelism(
    array_node, max_parallelism, limit
):
    assert item_limit(array_node, max_parallelism, 100) == limit


def test_failure_summary_names_each_error_once_with_the_ranges_of_its_items():
    failed = execution_pb2.ExecutionError(message="boom")
    other = execution_pb2.ExecutionError(message="bang")
    items = [_Item(index, ended=True, error=failed) for index in (0, 1, 2, 5)]
    items += [_Item(3, ended=True), _Item(4, ended=True, error=other)]

    assert failure_summary(items) == "[4]: bang\n[0-2][5]: boom"


def resource(index: int, attempt: int, phase: int, log: str = "") -> event_pb2.ExternalResourceInfo:
    info = event_pb2.ExternalResourceInfo(index=index, retry_attempt=attempt, phase=phase)
    if log:
        info.logs.add(uri=log, name=log)
    return info


def test_external_resources_are_merged_by_index_and_retry_attempt_in_order():
    stored = event_pb2.TaskExecutionMetadata(
        generated_name="gen", external_resources=[resource(0, 0, 0), resource(2, 0, 0)]
    )
    update = event_pb2.TaskExecutionMetadata(
        external_resources=[
            resource(2, 0, TaskPhase.FAILED, "log-2-0"),
            resource(2, 1, TaskPhase.QUEUED),
            resource(1, 0, TaskPhase.RUNNING, "log-1-0"),
        ]
    )

    merge_metadata(stored, update, phase=TaskPhase.RUNNING, phase_changed=False)

    assert stored.generated_name == "gen"
    assert [(r.index, r.retry_attempt, r.phase) for r in stored.external_resources] == [
        (0, 0, 0),
        (1, 0, TaskPhase.RUNNING),
        (2, 0, TaskPhase.FAILED),
        (2, 1, TaskPhase.QUEUED),
    ]
    assert [log.uri for log in stored.external_resources[2].logs] == ["log-2-0"]


def test_logs_merge_keeps_older_entries_no_new_entry_replaces():
    old = [execution_pb2.TaskLog(uri="a", name="first"), execution_pb2.TaskLog(uri="b", name="x")]
    new = [execution_pb2.TaskLog(uri="c", name="x")]

    assert [(log.uri, log.name) for log in merge_logs(old, new)] == [("c", "x"), ("a", "first")]
