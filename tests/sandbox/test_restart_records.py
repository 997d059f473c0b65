"""What a restarted sandbox does with the records of executions its previous process left open.

The kill -9 test with real flytekit tasks is ``test_crash_recovery.py``; these tests run the
sandbox in-process, stop it while an execution is in flight and start it again on the same data
directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import grpc
from admin_builders import (
    DOMAIN,
    NODE,
    PROJECT,
    TASK,
    WF,
    integer,
    launch,
    node_event,
    register_launch_plan,
    register_workflow,
    simple_launch_plan,
    task_event,
    unique,
    workflow_event,
    workflow_template,
)
from flyte_examples import wait_until
from flyteidl.admin import (
    common_pb2,
    event_pb2,
    execution_pb2,
    node_execution_pb2,
    signal_pb2,
    task_execution_pb2,
)
from flyteidl.core import (
    identifier_pb2,
    literals_pb2,
)
from flyteidl.core import (
    workflow_pb2 as core_workflow_pb2,
)
from flyteidl.service import admin_pb2_grpc, signal_pb2_grpc
from google.protobuf import duration_pb2
from recording_engine import RecordingEngine

from flyte_bridge.sandbox import start_sandbox
from flyte_bridge.sandbox.resume import kill_orphaned_tasks, record_task_process


def _admin(sandbox):
    channel = grpc.insecure_channel(sandbox.endpoint)
    return channel, admin_pb2_grpc.AdminServiceStub(channel)


def _node(admin, execution_id, node_id: str):
    return admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(
            id=identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution_id)
        )
    )


def _node_phase(admin, execution_id, node_id: str) -> int | None:
    try:
        return _node(admin, execution_id, node_id).closure.phase
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def _attempts(admin, execution_id, node_id: str):
    return admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=node_id, execution_id=execution_id
            ),
            limit=10,
        )
    ).task_executions


def _execution(admin, execution_id):
    return admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id))


def _leave_running(admin, aborting: bool):
    """An execution whose node n0 runs attempt 0, played through events as propeller would."""
    launch_plan_id, task = simple_launch_plan(admin, "restart")
    execution_id = launch(admin, launch_plan_id, x=integer(1))
    now = time.time()
    admin.CreateWorkflowEvent(
        event_pb2.WorkflowExecutionEventRequest(event=workflow_event(execution_id, WF.RUNNING, now))
    )
    for phase in (NODE.QUEUED, NODE.RUNNING):
        admin.CreateNodeEvent(
            event_pb2.NodeExecutionEventRequest(event=node_event(execution_id, "n0", phase, now))
        )
    admin.CreateTaskEvent(
        event_pb2.TaskExecutionEventRequest(
            event=task_event(execution_id, "n0", task.id, 0, TASK.RUNNING, now)
        )
    )
    if aborting:
        admin.TerminateExecution(
            execution_pb2.ExecutionTerminateRequest(id=execution_id, cause="stop it")
        )
    return execution_id


def _restart_with_recording_engine(tmp_path, aborting: bool):
    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as first:
        channel, admin = _admin(first)
        execution_id = _leave_running(admin, aborting)
        channel.close()
    with start_sandbox(data_dir=tmp_path, engine=RecordingEngine()) as second:
        channel, admin = _admin(second)
        found = (
            _execution(admin, execution_id),
            _node(admin, execution_id, "n0"),
            _attempts(admin, execution_id, "n0"),
        )
        channel.close()
    return found


def test_an_execution_an_engine_cannot_resume_fails_with_its_node_and_attempt(tmp_path):
    execution, node, attempts = _restart_with_recording_engine(tmp_path, aborting=False)

    assert execution.closure.phase == WF.FAILED
    assert execution.closure.error.code == "SandboxRestarted"
    assert "cannot resume" in execution.closure.error.message
    assert (node.closure.phase, node.closure.error.code) == (NODE.FAILED, "SandboxRestarted")
    assert [(a.closure.phase, a.closure.error.code) for a in attempts] == [
        (TASK.FAILED, "SandboxRestarted")
    ]


def test_an_execution_left_aborting_ends_aborted_with_its_node_and_attempt(tmp_path):
    execution, node, attempts = _restart_with_recording_engine(tmp_path, aborting=True)

    assert execution.closure.phase == WF.ABORTED
    assert execution.closure.abort_metadata.cause == "stop it"
    assert node.closure.phase == NODE.ABORTED
    assert [a.closure.phase for a in attempts] == [TASK.ABORTED]


def _approve_gate(node_id: str, signal_id: str) -> core_workflow_pb2.Node:
    return core_workflow_pb2.Node(
        id=node_id,
        metadata=core_workflow_pb2.NodeMetadata(name=signal_id),
        gate_node=core_workflow_pb2.GateNode(
            approve=core_workflow_pb2.ApproveCondition(signal_id=signal_id)
        ),
    )


def _approve(channel, execution_id, signal_id: str) -> None:
    signal_pb2_grpc.SignalServiceStub(channel).SetSignal(
        signal_pb2.SignalSetRequest(
            id=identifier_pb2.SignalIdentifier(signal_id=signal_id, execution_id=execution_id),
            value=literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=True))
            ),
        )
    )


def _gates_workflow(admin, sleep_seconds: int):
    """n0 waits for the approval ``go``; n1 sleeps; both start at once."""
    approve = _approve_gate("n0", "go")
    nap = core_workflow_pb2.Node(
        id="n1",
        metadata=core_workflow_pb2.NodeMetadata(name="sleep"),
        gate_node=core_workflow_pb2.GateNode(
            sleep=core_workflow_pb2.SleepCondition(
                duration=duration_pb2.Duration(seconds=sleep_seconds)
            )
        ),
    )
    workflow_id = register_workflow(admin, workflow_template(unique("gates"), [approve, nap]))
    return register_launch_plan(admin, workflow_id)


def test_gates_waiting_when_the_sandbox_stopped_keep_their_start_and_pass_after_it(tmp_path):
    with start_sandbox(data_dir=tmp_path) as first:
        channel, admin = _admin(first)
        execution_id = launch(admin, _gates_workflow(admin, sleep_seconds=4))
        wait_until(
            lambda: (
                _node_phase(admin, execution_id, "n0") == NODE.RUNNING
                and _node_phase(admin, execution_id, "n1") == NODE.RUNNING
            ),
            what="both gates to wait",
        )
        started = [_node(admin, execution_id, n).closure.started_at for n in ("n0", "n1")]
        channel.close()

    with start_sandbox(data_dir=tmp_path) as second:
        channel, admin = _admin(second)
        _approve(channel, execution_id, "go")
        wait_until(
            lambda: _execution(admin, execution_id).closure.phase == WF.SUCCEEDED,
            what="the execution to succeed",
        )
        nodes = [_node(admin, execution_id, n) for n in ("n0", "n1")]
        channel.close()

    assert [n.closure.phase for n in nodes] == [NODE.SUCCEEDED, NODE.SUCCEEDED]
    assert [n.closure.started_at for n in nodes] == started
    assert nodes[1].closure.duration.ToTimedelta().total_seconds() >= 4


def test_subworkflow_and_launch_plan_nodes_continue_with_the_same_child_execution(tmp_path):
    with start_sandbox(data_dir=tmp_path) as first:
        channel, admin = _admin(first)
        child_workflow = register_workflow(
            admin, workflow_template(unique("child"), [_approve_gate("n0", "go")])
        )
        child_launch_plan = register_launch_plan(admin, child_workflow)
        sub = workflow_template(unique("sub"), [_approve_gate("n0", "inner")])
        parent_nodes = [
            core_workflow_pb2.Node(
                id="n0", workflow_node=core_workflow_pb2.WorkflowNode(sub_workflow_ref=sub.id)
            ),
            core_workflow_pb2.Node(
                id="n1",
                workflow_node=core_workflow_pb2.WorkflowNode(launchplan_ref=child_launch_plan),
            ),
        ]
        parent_workflow = register_workflow(
            admin, workflow_template(unique("parent"), parent_nodes), [sub]
        )
        execution_id = launch(admin, register_launch_plan(admin, parent_workflow))
        wait_until(
            lambda: (
                _node_phase(admin, execution_id, "n0-0-n0") == NODE.RUNNING
                and _node_phase(admin, execution_id, "n1") == NODE.RUNNING
            ),
            what="the subworkflow's gate and the child execution",
        )
        child_id = _node(admin, execution_id, "n1").closure.workflow_node_metadata.executionId
        wait_until(lambda: _node_phase(admin, child_id, "n0") == NODE.RUNNING, what="child gate")
        channel.close()

    with start_sandbox(data_dir=tmp_path) as second:
        channel, admin = _admin(second)
        _approve(channel, execution_id, "inner")
        _approve(channel, child_id, "go")
        wait_until(
            lambda: _execution(admin, execution_id).closure.phase == WF.SUCCEEDED,
            what="the parent to succeed",
        )
        child_after = _node(admin, execution_id, "n1").closure.workflow_node_metadata.executionId
        child = _execution(admin, child_id)
        executions = admin.ListExecutions(
            common_pb2.ResourceListRequest(
                id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=10
            )
        ).executions
        channel.close()

    assert child_after == child_id
    assert child.closure.phase == WF.SUCCEEDED
    assert sorted(e.id.name for e in executions) == sorted([execution_id.name, child_id.name])


def test_only_the_task_process_a_pid_file_names_is_killed(tmp_path):
    logs = tmp_path / "n0" / "logs"
    logs.mkdir(parents=True)
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        record_task_process(logs / "attempt-0.log", orphan.pid)
        (logs / "attempt-1.pid").write_text(f"{bystander.pid} 1\n")  # not its start time

        killed = kill_orphaned_tasks(tmp_path)

        assert killed == 1
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        for process in (orphan, bystander):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
