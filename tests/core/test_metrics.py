"""Execution metrics: span trees become rows, a UTC table and YAML, with unique ids."""

from __future__ import annotations

import datetime as dt

import yaml
from flyteidl.core import identifier_pb2, metrics_pb2
from google.protobuf import timestamp_pb2

from flyte_bridge.metrics import ExecutionSpan

T0 = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
EXECUTION = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="f8a2c1")


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime((T0 + dt.timedelta(seconds=seconds)).replace(tzinfo=None))
    return stamp


def op(name: str, start: float, end: float) -> metrics_pb2.Span:
    return metrics_pb2.Span(operation_id=name, start_time=ts(start), end_time=ts(end))


def node(node_id: str, start: float, end: float, *spans, execution=EXECUTION) -> metrics_pb2.Span:
    ident = identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution)
    return metrics_pb2.Span(node_id=ident, start_time=ts(start), end_time=ts(end), spans=spans)


def task(node_id: str, attempt: int, start: float, end: float, *spans) -> metrics_pb2.Span:
    node_ident = identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=EXECUTION)
    ident = identifier_pb2.TaskExecutionIdentifier(
        node_execution_id=node_ident, retry_attempt=attempt
    )
    return metrics_pb2.Span(task_id=ident, start_time=ts(start), end_time=ts(end), spans=spans)


def workflow(execution, start: float, end: float, *spans) -> metrics_pb2.Span:
    return metrics_pb2.Span(
        workflow_id=execution, start_time=ts(start), end_time=ts(end), spans=spans
    )


def example_tree() -> metrics_pb2.Span:
    return workflow(
        EXECUTION,
        0,
        18,
        op("WORKFLOW_SETUP", 0, 1),
        node(
            "n0",
            1,
            15,
            op("NODE_SETUP", 1, 2.5),
            task(
                "n0",
                0,
                2.5,
                14,
                op("TASK_SETUP", 2.5, 4),
                op("TASK_RUNTIME", 4, 13.25),
                op("TASK_TEARDOWN", 13.25, 14),
            ),
            op("NODE_TEARDOWN", 14, 15),
        ),
        node("n1", 15, 17, op("NODE_TRANSITION", 15, 15.5), op("NODE_SETUP", 15.5, 17)),
        op("WORKFLOW_TEARDOWN", 17, 18),
    )


def test_span_tree_keeps_kinds_names_and_utc_times():
    span = ExecutionSpan.from_proto(example_tree())
    assert (span.kind, span.name, span.label) == ("workflow", "f8a2c1", "workflow/f8a2c1")
    assert span.start == T0 and span.end == T0 + dt.timedelta(seconds=18)
    assert [child.label for child in span.children] == [
        "WORKFLOW_SETUP",
        "node/n0",
        "node/n1",
        "WORKFLOW_TEARDOWN",
    ]
    assert span.children[1].children[1].label == "task/0"


def test_breakdown_sums_operation_seconds_over_the_subtree():
    assert ExecutionSpan.from_proto(example_tree()).breakdown() == {
        "NODE_SETUP": 3.0,
        "NODE_TEARDOWN": 1.0,
        "NODE_TRANSITION": 0.5,
        "TASK_RUNTIME": 9.25,
        "TASK_SETUP": 1.5,
        "TASK_TEARDOWN": 0.75,
        "WORKFLOW_SETUP": 1.0,
        "WORKFLOW_TEARDOWN": 1.0,
    }


def test_explain_returns_a_table_with_years_utc_times_and_indentation():
    table = ExecutionSpan.from_proto(example_tree()).explain()
    lines = table.splitlines()
    assert lines[0].split() == ["span", "start", "(UTC)", "end", "(UTC)", "duration"]
    assert lines[2].split() == [
        "workflow/f8a2c1",
        "2024-01-02",
        "00:00:00.000000",
        "2024-01-02",
        "00:00:18.000000",
        "18.000s",
    ]
    runtime = next(line for line in lines if "TASK_RUNTIME" in line)
    assert runtime.startswith("      TASK_RUNTIME")
    assert "2024-01-02 00:00:04.000000" in runtime and runtime.endswith("9.250s")
    assert len(lines) == 2 + 13


def test_explain_stops_at_max_depth():
    lines = ExecutionSpan.from_proto(example_tree()).explain(max_depth=1).splitlines()
    assert [line.split()[0] for line in lines[2:]] == [
        "workflow/f8a2c1",
        "WORKFLOW_SETUP",
        "node/n0",
        "node/n1",
        "WORKFLOW_TEARDOWN",
    ]


def test_dump_returns_block_yaml_keyed_by_entity():
    data = yaml.safe_load(ExecutionSpan.from_proto(example_tree()).dump())
    summary = data["workflow/f8a2c1"]
    assert summary["duration"] == 18.0 and summary["start"] == "2024-01-02 00:00:00.000000"
    n0 = summary["nodes"]["n0"]
    assert n0["breakdown"]["TASK_RUNTIME"] == 9.25
    assert n0["task_attempts"][0]["breakdown"] == {
        "TASK_RUNTIME": 9.25,
        "TASK_SETUP": 1.5,
        "TASK_TEARDOWN": 0.75,
    }
    assert summary["nodes"]["n1"]["breakdown"] == {"NODE_SETUP": 1.5, "NODE_TRANSITION": 0.5}


def test_dump_does_not_patch_pyyaml():
    before = yaml.emitter.Emitter.process_tag
    ExecutionSpan.from_proto(example_tree()).dump()
    assert yaml.emitter.Emitter.process_tag is before


def test_same_node_id_in_two_sub_workflows_keeps_both():
    tree = workflow(
        EXECUTION,
        0,
        10,
        node("sub_a", 0, 5, node("n0", 0, 2, op("NODE_SETUP", 0, 2))),
        node("sub_b", 5, 10, node("n0", 5, 9, op("NODE_SETUP", 5, 9))),
    )
    span = ExecutionSpan.from_proto(tree)
    ids = [row.span_id for row in span.rows()]
    assert len(ids) == len(set(ids))
    nodes = yaml.safe_load(span.dump())["workflow/f8a2c1"]["nodes"]
    assert nodes["sub_a"]["nodes"]["n0"]["duration"] == 2.0
    assert nodes["sub_b"]["nodes"]["n0"]["duration"] == 4.0


def test_repeated_operations_under_one_span_get_distinct_ids():
    tree = node("n0", 0, 10, op("NODE_RESET", 1, 2), op("NODE_RESET", 5, 6))
    span = ExecutionSpan.from_proto(tree)
    assert [child.span_id for child in span.children] == [
        "node:n0/operation:NODE_RESET",
        "node:n0/operation:NODE_RESET#2",
    ]
    assert span.breakdown() == {"NODE_RESET": 2.0}


def test_launch_plan_child_execution_is_listed_under_executions():
    child = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="child1")
    tree = workflow(
        EXECUTION,
        0,
        10,
        node(
            "lp_node",
            0,
            10,
            op("NODE_SETUP", 0, 1),
            workflow(child, 1, 9, op("WORKFLOW_SETUP", 1, 2)),
        ),
    )
    summary = yaml.safe_load(ExecutionSpan.from_proto(tree).dump())["workflow/f8a2c1"]
    assert summary["nodes"]["lp_node"]["executions"]["child1"]["duration"] == 8.0


def test_span_without_times_shows_dashes_and_no_duration():
    span = ExecutionSpan.from_proto(metrics_pb2.Span(operation_id="NODE_SETUP"))
    assert span.duration is None
    assert span.explain().splitlines()[2].split() == ["NODE_SETUP", "-", "-", "-"]
    assert span.breakdown() == {}


def test_rows_give_the_depth_of_deeply_nested_spans():
    deepest = op("TASK_RUNTIME", 0, 1)
    for level in range(40):
        deepest = node(f"n{level}", 0, 1, deepest)
    span = ExecutionSpan.from_proto(deepest)
    rows = span.rows()
    assert len(rows) == 41 and rows[-1].depth == 40
