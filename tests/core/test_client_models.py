"""Models: terminal tests per level, errors (abort cause included), array sub-tasks (C08)."""

from __future__ import annotations

import pytest
from flyteidl.admin import execution_pb2 as admin_execution_pb2
from flyteidl.admin import task_execution_pb2
from flyteidl.core import execution_pb2, types_pb2
from flyteidl.event import event_pb2

from flyte_bridge import errors
from flyte_bridge.errors import FlyteExecutionFailedError, FlyteNotReadyError
from flyte_bridge.models import (
    Execution,
    ExecutionId,
    NodeExecution,
    NodePhase,
    Signal,
    TaskExecution,
    TaskPhase,
    WorkflowPhase,
)


@pytest.mark.parametrize(
    "phase, terminal, success",
    [
        (NodePhase.RECOVERED, True, True),
        (NodePhase.SKIPPED, True, False),
        (NodePhase.DYNAMIC_RUNNING, False, False),
        (TaskPhase.RETRYABLE_FAILED, True, False),
        (TaskPhase.WAITING_FOR_RESOURCES, False, False),
        (WorkflowPhase.SUCCEEDING, False, False),
        (WorkflowPhase.ABORTING, False, False),
        (WorkflowPhase.TIMED_OUT, True, False),
    ],
)
def test_each_level_has_its_own_terminal_set(phase, terminal, success):
    assert (phase.is_terminal, phase.is_success) == (terminal, success)


def test_a_phase_newer_than_this_client_is_kept_and_not_terminal():
    phase = WorkflowPhase(42)

    assert (int(phase), phase.name, phase.is_known, phase.is_terminal) == (
        42,
        "UNKNOWN_42",
        False,
        False,
    )


def _execution(phase: int, **closure) -> Execution:
    pb = admin_execution_pb2.Execution()
    pb.id.project, pb.id.domain, pb.id.name = "p", "d", "e"
    pb.closure.phase = phase
    for key, value in closure.items():
        getattr(pb.closure, key).CopyFrom(value)
    return Execution(pb)


def test_an_aborted_execution_reports_its_cause_and_principal_as_error():
    aborted = _execution(
        WorkflowPhase.ABORTED,
        abort_metadata=admin_execution_pb2.AbortMetadata(cause="stop", principal="ops"),
    )

    assert (aborted.error.code, aborted.error.message, aborted.error.principal) == (
        "ABORTED",
        "stop",
        "ops",
    )
    with pytest.raises(FlyteExecutionFailedError, match="ended ABORTED"):
        aborted.check_outputs_available()


def test_outputs_of_a_running_execution_are_not_ready():
    with pytest.raises(FlyteNotReadyError, match="is RUNNING"):
        _execution(WorkflowPhase.RUNNING).outputs  # noqa: B018


def test_an_array_node_attempt_lists_its_sub_tasks():
    pb = task_execution_pb2.TaskExecution()
    pb.closure.phase = execution_pb2.TaskExecution.RUNNING
    for index, phase in enumerate((TaskPhase.SUCCEEDED, TaskPhase.RUNNING, TaskPhase.FAILED)):
        pb.closure.metadata.external_resources.append(
            event_pb2.ExternalResourceInfo(external_id=f"sub-{index}", index=index, phase=phase)
        )

    subtasks = TaskExecution(pb).subtasks

    assert [(s.index, s.phase.name) for s in subtasks] == [
        (0, "SUCCEEDED"),
        (1, "RUNNING"),
        (2, "FAILED"),
    ]


def _node(node_id: str, phase: int, **children) -> NodeExecution:
    from flyteidl.admin import node_execution_pb2

    proto = node_execution_pb2.NodeExecution()
    proto.id.node_id = node_id
    proto.closure.phase = phase
    return NodeExecution(proto=proto, children=children)


def test_the_failed_node_is_the_innermost_node_that_failed():
    sub = _node("n1", NodePhase.FAILED, a=_node("n1-0-n0", NodePhase.SUCCEEDED),
                b=_node("n1-0-n1", NodePhase.FAILED))  # fmt: skip
    execution = _execution(execution_pb2.WorkflowExecution.FAILED)
    execution.node_executions = {"n0": _node("n0", NodePhase.SUCCEEDED), "n1": sub}

    assert execution.failed_node().node_id == "n1-0-n1"
    assert _execution(execution_pb2.WorkflowExecution.FAILED).failed_node() is None


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (errors.FlyteInvalidInputError("bad input"), True),
        (errors.FlyteNotFoundError("gone"), True),
        (errors.FlyteConfigError("bad setting"), True),
        (errors.FlyteFailedPreconditionError("already answered"), True),
        (errors.FlyteConflictError("name taken"), True),
        (errors.FlyteAlreadyExistsError("exists"), False),
        (errors.FlyteTransientError("unavailable"), False),
        (errors.FlyteTimeoutError("deadline"), False),
        (errors.FlyteServerError("internal"), False),
        (errors.FlyteAuthError("token expired"), False),
        (RuntimeError("unexpected"), False),
    ],
)
def test_only_errors_a_retry_cannot_fix_are_permanent(error, permanent):
    assert errors.is_permanent(error) is permanent


def test_a_signal_reads_on_one_line_with_its_type_by_name():
    signal = Signal(
        "approve-release",
        ExecutionId("flytesnacks", "development", "run-1"),
        types_pb2.LiteralType(simple=types_pb2.BOOLEAN),
        value=True,
        is_set=True,
    )

    assert repr(signal) == (
        "Signal(signal_id='approve-release', execution_id=flytesnacks/development/run-1, "
        "type=BOOLEAN, value=True, is_set=True, changed=False)"
    )
