"""One test per row of the behaviour doc's status-code table (Appendix A).

Each row is one parametrized test whose cases are the situations the row lists; every case
calls the sandbox over gRPC and checks the exact status code.
"""

from __future__ import annotations

import sqlite3
import time

import grpc
import pytest
from admin_builders import (
    DOMAIN,
    NODE,
    PROJECT,
    WF,
    ident,
    integer,
    launch,
    node_event,
    simple_launch_plan,
    task_template,
    unique,
    workflow_event,
    workflow_template,
)
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
)
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.service import dataproxy_pb2, dataproxy_pb2_grpc


class World:
    """Entities the cases refer to, created once in the recording-engine sandbox."""

    def __init__(self, admin, signals, dataproxy, sandbox):
        self.admin, self.signals, self.dataproxy, self.sandbox = admin, signals, dataproxy, sandbox
        self.launch_plan_id, self.task = simple_launch_plan(admin, "codes")
        self.execution_id = launch(admin, self.launch_plan_id, x=integer(1))
        self.finished_id = launch(admin, self.launch_plan_id, x=integer(1))
        self.send(workflow_event(self.finished_id, WF.SUCCEEDED, time.time()))
        self.send_node(node_event(self.execution_id, "n0", NODE.RUNNING, time.time()))

    def send(self, event):
        self.admin.CreateWorkflowEvent(event_pb2.WorkflowExecutionEventRequest(event=event))

    def send_node(self, event):
        self.admin.CreateNodeEvent(event_pb2.NodeExecutionEventRequest(event=event))

    def create(self, name="", **inputs):
        return launch(self.admin, self.launch_plan_id, name, **inputs)

    def node(self, node_id="n0"):
        return identifier_pb2.NodeExecutionIdentifier(
            node_id=node_id, execution_id=self.execution_id
        )

    def list_request(self, **fields):
        return common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), **fields
        )


@pytest.fixture(scope="module")
def world(bare_admin, bare_signals, bare_sandbox):
    channel = grpc.insecure_channel(bare_sandbox.endpoint)
    yield World(
        bare_admin, bare_signals, dataproxy_pb2_grpc.DataProxyServiceStub(channel), bare_sandbox
    )
    channel.close()


def _status(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def _execution_request(project=PROJECT, domain=DOMAIN, labels=None):
    def build(w: World):
        request = execution_pb2.ExecutionCreateRequest(
            project=project,
            domain=domain,
            spec=execution_pb2.ExecutionSpec(launch_plan=w.launch_plan_id),
            inputs=literals_pb2.LiteralMap(literals={"x": integer(1)}),
        )
        for key, value in (labels or {}).items():
            request.spec.labels.values[key] = value
        return w.admin.CreateExecution(request)

    return build


def _archived_project(w: World):
    project_id = unique("archived")
    w.admin.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=project_id, name="a"))
    )
    w.admin.UpdateProject(
        project_pb2.Project(id=project_id, name="a", state=project_pb2.Project.ARCHIVED)
    )
    return _execution_request(project=project_id)(w)


def _changed_task(w: World):
    changed = task_template(w.task.id.name, image="other:image")
    changed.interface.CopyFrom(w.task.interface)
    return w.admin.CreateTask(
        task_pb2.TaskCreateRequest(id=changed.id, spec=task_pb2.TaskSpec(template=changed))
    )


def _compile_failure(w: World):
    from admin_builders import register_workflow, task_node

    template = workflow_template(
        unique("wf"), [task_node("n0", ident(identifier_pb2.TASK, "ghost"))]
    )
    return register_workflow(w.admin, template)


def _signal_id(w: World, name="gate"):
    return identifier_pb2.SignalIdentifier(signal_id=name, execution_id=w.execution_id)


def _wrong_type_signal(w: World):
    from admin_builders import BOOLEAN_TYPE, string

    w.signals.GetOrCreateSignal(
        signal_pb2.SignalGetOrCreateRequest(id=_signal_id(w, "typed"), type=BOOLEAN_TYPE)
    )
    return w.signals.SetSignal(
        signal_pb2.SignalSetRequest(id=_signal_id(w, "typed"), value=string("yes"))
    )


INVALID_ARGUMENT_CASES = {
    "missing execution id field": lambda w: w.admin.GetExecution(
        execution_pb2.WorkflowExecutionGetRequest()
    ),
    "limit zero": lambda w: w.admin.ListExecutions(w.list_request(limit=0)),
    "bad filter": lambda w: w.admin.ListExecutions(w.list_request(limit=1, filters="eq(x)")),
    "bad sort key": lambda w: w.admin.ListExecutions(
        w.list_request(limit=1, sort_by=common_pb2.Sort(key="nope"))
    ),
    "bad token": lambda w: w.admin.ListExecutions(w.list_request(limit=1, token="-3")),
    "bad name format": lambda w: w.create("has_underscore", x=integer(1)),
    "name too long": lambda w: w.create("a" * 64, x=integer(1)),
    "bad labels": _execution_request(labels={"bad key!": "v"}),
    "unknown project": _execution_request(project="no-such-project"),
    "inactive project": _archived_project,
    "unknown domain": _execution_request(domain="qa"),
    "input not in interface": lambda w: w.create(x=integer(1), extra=integer(2)),
    "missing required input": lambda w: w.create(),
    "input of the wrong type": lambda w: w.create(
        x=literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=True))
        )
    ),
    "compile failure": _compile_failure,
    "different structure": _changed_task,
    "signal not created yet": lambda w: w.signals.SetSignal(
        signal_pb2.SignalSetRequest(id=_signal_id(w, "later"), value=integer(1))
    ),
    "signal value of the wrong type": _wrong_type_signal,
    "download link for an unknown node": lambda w: w.dataproxy.CreateDownloadLink(
        dataproxy_pb2.CreateDownloadLinkRequest(
            artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK, node_execution_id=w.node("ghost")
        )
    ),
    "bad flyte url": lambda w: w.dataproxy.GetData(
        dataproxy_pb2.GetDataRequest(flyte_url="flyte://v2/what")
    ),
    "unrecognized launch plan state": lambda w: w.admin.UpdateLaunchPlan(
        launch_plan_pb2.LaunchPlanUpdateRequest(id=w.launch_plan_id, state=7)
    ),
}


@pytest.mark.parametrize("situation", sorted(INVALID_ARGUMENT_CASES))
def test_invalid_argument_row(world, situation):
    assert _status(lambda: INVALID_ARGUMENT_CASES[situation](world)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


NOT_FOUND_CASES = {
    "task": lambda w: w.admin.GetTask(
        common_pb2.ObjectGetRequest(id=ident(identifier_pb2.TASK, "ghost"))
    ),
    "execution": lambda w: w.admin.GetExecution(
        execution_pb2.WorkflowExecutionGetRequest(
            id=identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name="x")
        )
    ),
    "node execution": lambda w: w.admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=w.node("ghost"))
    ),
    "task execution": lambda w: w.admin.GetTaskExecution(
        task_execution_pb2.TaskExecutionGetRequest(
            id=identifier_pb2.TaskExecutionIdentifier(
                task_id=w.task.id, node_execution_id=w.node(), retry_attempt=4
            )
        )
    ),
    "launch plan of an execution": lambda w: launch(
        w.admin, ident(identifier_pb2.LAUNCH_PLAN, "ghost")
    ),
    "workflow of a launch plan": lambda w: w.admin.CreateLaunchPlan(
        launch_plan_pb2.LaunchPlanCreateRequest(
            id=ident(identifier_pb2.LAUNCH_PLAN, unique("lp")),
            spec=launch_plan_pb2.LaunchPlanSpec(
                workflow_id=ident(identifier_pb2.WORKFLOW, "ghost")
            ),
        )
    ),
    "no active launch plan": lambda w: w.admin.GetActiveLaunchPlan(
        launch_plan_pb2.ActiveLaunchPlanRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="ghost")
        )
    ),
    "unknown unique_parent_id": lambda w: w.admin.ListNodeExecutions(
        node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=w.execution_id, limit=1, unique_parent_id="ghost"
        )
    ),
    "parent node execution of a child execution": lambda w: w.admin.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            spec=execution_pb2.ExecutionSpec(
                launch_plan=w.launch_plan_id,
                metadata=execution_pb2.ExecutionMetadata(parent_node_execution=w.node("ghost")),
            ),
            inputs=literals_pb2.LiteralMap(literals={"x": integer(1)}),
        )
    ),
    "deck missing": lambda w: w.dataproxy.CreateDownloadLink(
        dataproxy_pb2.CreateDownloadLinkRequest(
            artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK, node_execution_id=w.node()
        )
    ),
    "node without dynamic workflow": lambda w: w.admin.GetDynamicNodeWorkflow(
        node_execution_pb2.GetDynamicNodeWorkflowRequest(id=w.node())
    ),
}


@pytest.mark.parametrize("situation", sorted(NOT_FOUND_CASES))
def test_not_found_row(world, situation):
    assert _status(lambda: NOT_FOUND_CASES[situation](world)) == grpc.StatusCode.NOT_FOUND


ALREADY_EXISTS_CASES = {
    "identical re-registration": lambda w: w.admin.CreateTask(
        task_pb2.TaskCreateRequest(id=w.task.id, spec=task_pb2.TaskSpec(template=w.task))
    ),
    "execution name already used": lambda w: w.create(w.execution_id.name, x=integer(1)),
    "project already registered": lambda w: w.admin.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name=PROJECT))
    ),
    "upload target exists without matching md5": lambda w: _upload_twice(w),
}


def _upload_twice(w: World):
    import hashlib
    import urllib.request

    body = b"first"
    request = dataproxy_pb2.CreateUploadLocationRequest(
        project=PROJECT,
        domain=DOMAIN,
        filename="data.bin",
        filename_root=unique("root"),
        content_md5=hashlib.md5(body).digest(),
    )
    location = w.dataproxy.CreateUploadLocation(request)
    put = urllib.request.Request(location.signed_url, data=body, method="PUT")
    urllib.request.urlopen(put).close()
    request.content_md5 = hashlib.md5(b"second").digest()
    return w.dataproxy.CreateUploadLocation(request)


@pytest.mark.parametrize("situation", sorted(ALREADY_EXISTS_CASES))
def test_already_exists_row(world, situation):
    assert _status(lambda: ALREADY_EXISTS_CASES[situation](world)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )


FAILED_PRECONDITION_CASES = {
    "terminate a finished execution": lambda w: w.admin.TerminateExecution(
        execution_pb2.ExecutionTerminateRequest(id=w.finished_id, cause="late")
    ),
    "event after terminal": lambda w: w.send(workflow_event(w.finished_id, WF.RUNNING, 1)),
    "running back to queued": lambda w: _running_then(w, WF.QUEUED),
    "aborting to non-terminal": lambda w: _aborting_then(w, WF.SUCCEEDING),
}


def _running_then(w: World, phase):
    execution_id = w.create(x=integer(1))
    w.send(workflow_event(execution_id, WF.RUNNING, time.time()))
    return w.send(workflow_event(execution_id, phase, time.time()))


def _aborting_then(w: World, phase):
    execution_id = w.create(x=integer(1))
    w.admin.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=execution_id))
    return w.send(workflow_event(execution_id, phase, time.time()))


@pytest.mark.parametrize("situation", sorted(FAILED_PRECONDITION_CASES))
def test_failed_precondition_row(world, situation):
    assert _status(lambda: FAILED_PRECONDITION_CASES[situation](world)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_internal_row_a_corrupt_stored_record_answers_internal(world):
    execution_id = world.create(x=integer(1))
    database = world.sandbox.data_dir / "sandbox.db"
    select = "SELECT closure FROM executions WHERE execution_name = ?"
    update = "UPDATE executions SET closure = ? WHERE execution_name = ?"
    with sqlite3.connect(database) as conn:
        (original,) = conn.execute(select, (execution_id.name,)).fetchone()
        conn.execute(update, (b"\xff\xff\xff not a proto", execution_id.name))
    try:
        code = _status(
            lambda: world.admin.GetExecution(
                execution_pb2.WorkflowExecutionGetRequest(id=execution_id)
            )
        )
    finally:
        with sqlite3.connect(database) as conn:
            conn.execute(update, (original, execution_id.name))

    assert code == grpc.StatusCode.INTERNAL


def test_never_unknown_or_unauthenticated_row_an_unimplemented_rpc_is_unimplemented(world):
    from flyteidl.admin import matchable_resource_pb2

    code = _status(
        lambda: world.admin.ListMatchableAttributes(
            matchable_resource_pb2.ListMatchableAttributesRequest()
        )
    )

    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAUTHENTICATED)
    assert code == grpc.StatusCode.UNIMPLEMENTED
