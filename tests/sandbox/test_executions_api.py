"""Executions as clients see them, built from the events an engine sends (flyteadmin's rules).

These tests run against ``bare_sandbox``, whose engine runs nothing, and play propeller
themselves by sending CreateWorkflowEvent, CreateNodeEvent and CreateTaskEvent over gRPC.
"""

from __future__ import annotations

import time

import grpc
import pytest
from admin_builders import (
    DOMAIN,
    INTEGER,
    NODE,
    PROJECT,
    TASK,
    WF,
    integer,
    launch,
    node_event,
    promise,
    register_launch_plan,
    register_task,
    register_workflow,
    simple_launch_plan,
    string,
    task_event,
    task_node,
    unique,
    workflow_event,
    workflow_template,
)
from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    node_execution_pb2,
    task_execution_pb2,
)
from flyteidl.admin import (
    event_pb2 as admin_event_pb2,
)
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.event import event_pb2


def _code(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value.code(), caught.value.details()


def _get(admin, execution_id):
    return admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id))


def _send_workflow(admin, event):
    admin.CreateWorkflowEvent(admin_event_pb2.WorkflowExecutionEventRequest(event=event))


def _send_node(admin, event):
    admin.CreateNodeEvent(admin_event_pb2.NodeExecutionEventRequest(event=event))


def _send_task(admin, event):
    admin.CreateTaskEvent(admin_event_pb2.TaskExecutionEventRequest(event=event))


def _node_id(execution_id, node_id):
    return identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution_id)


def _list_nodes(admin, execution_id, parent=""):
    return admin.ListNodeExecutions(
        node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=execution_id, limit=100, unique_parent_id=parent
        )
    ).node_executions


def _write_map(sandbox, relative, **literals):
    path = sandbox.data_dir / "store" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(literals_pb2.LiteralMap(literals=literals).SerializeToString())
    return path.as_uri()


@pytest.fixture
def launched(bare_admin):
    """A fresh execution of a one-task workflow ``x -> y``, not yet started by any engine."""
    launch_plan_id, task = simple_launch_plan(bare_admin)
    execution_id = launch(bare_admin, launch_plan_id, x=integer(3))
    return execution_id, task


# --- create ---------------------------------------------------------------------------------


def test_generated_execution_name_is_twenty_characters_starting_with_a(bare_admin, launched):
    execution_id, _ = launched

    assert len(execution_id.name) == 20
    assert execution_id.name[0] == "a"


def test_new_execution_is_undefined_without_started_at_and_active(bare_admin, launched):
    execution = _get(bare_admin, launched[0])

    assert execution.closure.phase == WF.UNDEFINED
    assert not execution.closure.HasField("started_at")
    assert execution.closure.state_change_details.state == execution_pb2.EXECUTION_ACTIVE
    assert execution.closure.created_at.seconds > 0


def test_engine_receives_the_computed_inputs_with_defaults(bare_admin, bare_engine):
    task = register_task(bare_admin, unique("t"), inputs={"a": INTEGER, "b": INTEGER})
    template = workflow_template(
        unique("wf"),
        [task_node("n0", task.id, a=promise("", "a"), b=promise("", "b"))],
        inputs={"a": INTEGER, "b": INTEGER},
    )
    launch_plan_id = register_launch_plan(
        bare_admin, register_workflow(bare_admin, template), defaults={"b": (INTEGER, integer(9))}
    )

    execution_id = launch(bare_admin, launch_plan_id, a=integer(1))

    started = [s for s in bare_engine.started if s[0] == execution_id]
    inputs = started[0][2].literals
    assert (inputs["a"].scalar.primitive.integer, inputs["b"].scalar.primitive.integer) == (1, 9)
    data = bare_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=execution_id)
    )
    assert data.full_inputs.literals["b"].scalar.primitive.integer == 9


def test_reusing_an_execution_name_is_already_exists_and_launches_nothing(bare_admin, bare_engine):
    launch_plan_id, _ = simple_launch_plan(bare_admin)
    name = unique("named")
    launch(bare_admin, launch_plan_id, name=name, x=integer(1))
    starts = len(bare_engine.started)

    code, _ = _code(lambda: launch(bare_admin, launch_plan_id, name=name, x=integer(1)))

    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert len(bare_engine.started) == starts


@pytest.mark.parametrize(
    ("name", "message"),
    [("x" * 64, "size of name exceeded length 63"), ("9lives", "invalid name format")],
)
def test_bad_execution_names_are_invalid_argument(bare_admin, name, message):
    launch_plan_id, _ = simple_launch_plan(bare_admin)

    code, details = _code(lambda: launch(bare_admin, launch_plan_id, name=name, x=integer(1)))

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in details


def test_upper_case_execution_name_is_accepted_as_given(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin)

    execution_id = launch(bare_admin, launch_plan_id, name=unique("Daily-Run"), x=integer(1))

    assert execution_id.name.startswith("Daily-Run")


def test_an_input_the_launch_plan_lacks_is_invalid_argument(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin)

    code, details = _code(lambda: launch(bare_admin, launch_plan_id, x=integer(1), z=integer(2)))

    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid input z")


def test_a_missing_required_input_is_invalid_argument(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin)

    code, details = _code(lambda: launch(bare_admin, launch_plan_id))

    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "expected_inputs x missing")


def test_an_input_of_the_wrong_type_is_invalid_argument(bare_admin):
    launch_plan_id, _ = simple_launch_plan(bare_admin)

    code, details = _code(lambda: launch(bare_admin, launch_plan_id, x=string("three")))

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "x input wrong type" in details


def test_overriding_a_fixed_input_is_invalid_argument(bare_admin):
    task = register_task(bare_admin, unique("t"), inputs={"x": INTEGER})
    template = workflow_template(
        unique("wf"), [task_node("n0", task.id, x=promise("", "x"))], inputs={"x": INTEGER}
    )
    launch_plan_id = register_launch_plan(
        bare_admin, register_workflow(bare_admin, template), fixed={"x": integer(5)}
    )

    code, details = _code(lambda: launch(bare_admin, launch_plan_id, x=integer(1)))

    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid input x")


def test_single_task_execution_runs_the_generated_flytegen_workflow(bare_admin, bare_engine):
    task = register_task(bare_admin, unique("solo"), inputs={"x": INTEGER}, outputs={"y": INTEGER})

    execution_id = launch(bare_admin, task.id, x=integer(2))

    execution = _get(bare_admin, execution_id)
    assert execution.spec.launch_plan.resource_type == identifier_pb2.TASK
    assert execution.closure.workflow_id.name == ".flytegen." + task.id.name
    closure = [s[1] for s in bare_engine.started if s[0] == execution_id][0]
    node = closure.primary.template.nodes[0]
    assert node.metadata.retries.retries == 3
    assert node.task_node.reference_id.name == task.id.name


# --- workflow events ---------------------------------------------------------------------------


def test_running_then_succeeded_sets_started_at_duration_and_outputs(
    bare_admin, bare_sandbox, launched
):
    execution_id, _ = launched
    outputs_uri = _write_map(bare_sandbox, f"t/{execution_id.name}/outputs.pb", y=integer(6))
    now = time.time()

    _send_workflow(bare_admin, workflow_event(execution_id, WF.RUNNING, now))
    _send_workflow(bare_admin, workflow_event(execution_id, WF.SUCCEEDING, now + 1))
    _send_workflow(
        bare_admin, workflow_event(execution_id, WF.SUCCEEDED, now + 2.5, output_uri=outputs_uri)
    )

    closure = _get(bare_admin, execution_id).closure
    assert closure.phase == WF.SUCCEEDED
    assert closure.started_at.seconds == int(now)
    assert closure.duration.ToMilliseconds() == 2500
    assert closure.outputs.uri == outputs_uri
    data = bare_admin.GetExecutionData(
        execution_pb2.WorkflowExecutionGetDataRequest(id=execution_id)
    )
    assert data.full_outputs.literals["y"].scalar.primitive.integer == 6


@pytest.mark.parametrize(
    ("current", "code"),
    [
        (WF.RUNNING, grpc.StatusCode.ALREADY_EXISTS),
        (WF.FAILED, grpc.StatusCode.FAILED_PRECONDITION),
    ],
    ids=["same-phase-again", "after-terminal"],
)
def test_a_running_event_is_refused_after_running_or_a_terminal_phase(
    bare_admin, launched, current, code
):
    execution_id, _ = launched
    _send_workflow(bare_admin, workflow_event(execution_id, current, time.time()))

    refused, _ = _code(
        _send_workflow, bare_admin, workflow_event(execution_id, WF.RUNNING, time.time())
    )

    assert refused == code


def test_failed_execution_keeps_the_error_and_lists_it_trimmed(bare_admin, launched):
    execution_id, _ = launched
    error = core_execution_pb2.ExecutionError(
        code="USER:ValueError", message="é" * 300, kind=core_execution_pb2.ExecutionError.USER
    )
    _send_workflow(bare_admin, workflow_event(execution_id, WF.FAILED, time.time(), error=error))

    full = _get(bare_admin, execution_id).closure.error
    listed = bare_admin.ListExecutions(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(
                project=PROJECT, domain=DOMAIN, name=execution_id.name
            ),
            limit=1,
        )
    ).executions[0]
    assert full.message == "é" * 300
    assert listed.closure.error.message == "é" * 50
    assert listed.closure.error.code == "USER:ValueError"


# --- terminate and archive -------------------------------------------------------------------


def test_terminate_sets_aborting_with_the_cause_and_asks_the_engine(
    bare_admin, bare_engine, launched
):
    execution_id, _ = launched

    bare_admin.TerminateExecution(
        execution_pb2.ExecutionTerminateRequest(id=execution_id, cause="stop it")
    )

    closure = _get(bare_admin, execution_id).closure
    assert closure.phase == WF.ABORTING
    assert closure.abort_metadata.cause == "stop it"
    assert (execution_id, "stop it") in bare_engine.aborted


def test_terminating_an_aborting_execution_again_overwrites_the_cause(bare_admin, launched):
    execution_id, _ = launched
    for cause in ("first", "second"):
        bare_admin.TerminateExecution(
            execution_pb2.ExecutionTerminateRequest(id=execution_id, cause=cause)
        )

    assert _get(bare_admin, execution_id).closure.abort_metadata.cause == "second"


def test_aborting_accepts_only_a_terminal_phase(bare_admin, launched):
    execution_id, _ = launched
    bare_admin.TerminateExecution(
        execution_pb2.ExecutionTerminateRequest(id=execution_id, cause="x")
    )

    code, _ = _code(
        _send_workflow, bare_admin, workflow_event(execution_id, WF.RUNNING, time.time())
    )
    _send_workflow(bare_admin, workflow_event(execution_id, WF.ABORTED, time.time()))

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    closure = _get(bare_admin, execution_id).closure
    assert closure.phase == WF.ABORTED
    assert closure.abort_metadata.cause == "x"


def test_terminating_a_finished_execution_is_failed_precondition(bare_admin, launched):
    execution_id, _ = launched
    _send_workflow(bare_admin, workflow_event(execution_id, WF.SUCCEEDED, time.time()))

    code, details = _code(
        bare_admin.TerminateExecution,
        execution_pb2.ExecutionTerminateRequest(id=execution_id, cause="late"),
    )

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "already terminated" in details


def test_archived_executions_are_hidden_unless_the_filter_names_state(bare_admin, launched):
    execution_id, _ = launched
    bare_admin.UpdateExecution(
        execution_pb2.ExecutionUpdateRequest(
            id=execution_id, state=execution_pb2.EXECUTION_ARCHIVED
        )
    )

    def names(filters):
        listed = bare_admin.ListExecutions(
            common_pb2.ResourceListRequest(
                id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
                limit=10_000,
                filters=filters,
            )
        )
        return {e.id.name for e in listed.executions}

    assert execution_id.name not in names("")
    assert execution_id.name in names("eq(state,1)")
    details = _get(bare_admin, execution_id).closure.state_change_details
    assert details.state == execution_pb2.EXECUTION_ARCHIVED


# --- relaunch and recover --------------------------------------------------------------------


def test_relaunch_reuses_the_user_inputs_and_records_the_reference(
    bare_admin, bare_engine, launched
):
    execution_id, _ = launched

    new_id = bare_admin.RelaunchExecution(
        execution_pb2.ExecutionRelaunchRequest(id=execution_id, name=unique("again"))
    ).id

    spec = _get(bare_admin, new_id).spec
    assert spec.metadata.mode == execution_pb2.ExecutionMetadata.RELAUNCH
    assert spec.metadata.reference_execution == execution_id
    inputs = [s[2] for s in bare_engine.started if s[0] == new_id][0]
    assert inputs.literals["x"].scalar.primitive.integer == 3


def test_recover_passes_the_reference_execution_to_the_engine(bare_admin, bare_engine, launched):
    execution_id, _ = launched

    new_id = bare_admin.RecoverExecution(execution_pb2.ExecutionRecoverRequest(id=execution_id)).id

    spec = [s[3] for s in bare_engine.started if s[0] == new_id][0]
    assert spec.metadata.mode == execution_pb2.ExecutionMetadata.RECOVERED
    assert spec.metadata.reference_execution == execution_id


def test_relaunch_of_an_unknown_execution_is_not_found(bare_admin):
    missing = identifier_pb2.WorkflowExecutionIdentifier(
        project=PROJECT, domain=DOMAIN, name="nope"
    )

    code, _ = _code(
        bare_admin.RelaunchExecution, execution_pb2.ExecutionRelaunchRequest(id=missing)
    )

    assert code == grpc.StatusCode.NOT_FOUND


# --- node and task executions ----------------------------------------------------------------


def _run_task_node(admin, sandbox, execution_id, task, attempts=1):
    """Sends propeller's event sequence for one task node whose first attempts fail."""
    now = time.time()
    inputs_uri = _write_map(sandbox, f"t/{execution_id.name}/n0/inputs.pb", x=integer(3))
    outputs_uri = _write_map(sandbox, f"t/{execution_id.name}/n0/out.pb", y=integer(6))
    _send_workflow(admin, workflow_event(execution_id, WF.RUNNING, now))
    _send_node(admin, node_event(execution_id, "start-node", NODE.SUCCEEDED, now))
    _send_node(admin, node_event(execution_id, "n0", NODE.QUEUED, now + 1, input_uri=inputs_uri))
    for attempt in range(attempts):
        base = now + 2 + attempt * 10
        _send_task(admin, task_event(execution_id, "n0", task.id, attempt, TASK.QUEUED, base))
        log = core_execution_pb2.TaskLog(uri=f"http://logs/{attempt}", name=f"attempt {attempt}")
        _send_task(
            admin,
            task_event(execution_id, "n0", task.id, attempt, TASK.RUNNING, base + 1, logs=[log]),
        )
        if attempt == 0:
            _send_node(admin, node_event(execution_id, "n0", NODE.RUNNING, base + 1))
        if attempt < attempts - 1:
            error = core_execution_pb2.ExecutionError(code="USER:Flaky", message="m" * 200)
            _send_task(
                admin,
                task_event(
                    execution_id, "n0", task.id, attempt, TASK.FAILED, base + 3, error=error
                ),
            )
        else:
            _send_task(
                admin,
                task_event(
                    execution_id,
                    "n0",
                    task.id,
                    attempt,
                    TASK.SUCCEEDED,
                    base + 4,
                    output_uri=outputs_uri,
                ),
            )
    end = now + 5 + attempts * 10
    _send_node(admin, node_event(execution_id, "n0", NODE.SUCCEEDED, end, output_uri=outputs_uri))
    return now, outputs_uri


def test_node_execution_closure_is_built_from_its_events(bare_admin, bare_sandbox, launched):
    execution_id, task = launched
    now, outputs_uri = _run_task_node(bare_admin, bare_sandbox, execution_id, task)

    node = bare_admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=_node_id(execution_id, "n0"))
    )

    assert node.closure.phase == NODE.SUCCEEDED
    assert node.closure.created_at.seconds == int(now + 1)
    assert node.closure.started_at.seconds == int(now + 3)
    assert node.closure.output_uri == outputs_uri
    assert node.metadata.spec_node_id == "n0"
    assert node.input_uri.endswith("n0/inputs.pb")


def test_top_level_listing_has_start_node_and_task_node(bare_admin, bare_sandbox, launched):
    execution_id, task = launched
    _run_task_node(bare_admin, bare_sandbox, execution_id, task)

    nodes = _list_nodes(bare_admin, execution_id)

    assert [n.id.node_id for n in nodes] == ["start-node", "n0"]
    assert not nodes[0].closure.HasField("started_at")


def test_every_retry_attempt_is_a_task_execution(bare_admin, bare_sandbox, launched):
    execution_id, task = launched
    _run_task_node(bare_admin, bare_sandbox, execution_id, task, attempts=2)

    attempts = bare_admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=_node_id(execution_id, "n0"), limit=100
        )
    ).task_executions

    assert [(a.id.retry_attempt, a.closure.phase) for a in attempts] == [
        (0, TASK.FAILED),
        (1, TASK.SUCCEEDED),
    ]
    assert len(attempts[0].closure.error.message) == 200
    assert [log.uri for log in attempts[1].closure.logs] == ["http://logs/1"]


def test_task_execution_data_reads_the_attempt_outputs(bare_admin, bare_sandbox, launched):
    execution_id, task = launched
    _run_task_node(bare_admin, bare_sandbox, execution_id, task)
    task_execution_id = identifier_pb2.TaskExecutionIdentifier(
        task_id=task.id, node_execution_id=_node_id(execution_id, "n0"), retry_attempt=0
    )

    data = bare_admin.GetTaskExecutionData(
        task_execution_pb2.TaskExecutionGetDataRequest(id=task_execution_id)
    )

    assert data.full_outputs.literals["y"].scalar.primitive.integer == 6
    assert data.full_inputs.literals["x"].scalar.primitive.integer == 3
    assert data.flyte_urls.outputs.endswith(f"/{execution_id.name}/n0/0/o")


def test_node_execution_data_carries_flyte_urls(bare_admin, bare_sandbox, launched):
    execution_id, task = launched
    _run_task_node(bare_admin, bare_sandbox, execution_id, task)

    data = bare_admin.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(id=_node_id(execution_id, "n0"))
    )

    assert data.flyte_urls.inputs == f"flyte://v1/{PROJECT}/{DOMAIN}/{execution_id.name}/n0/i"
    assert data.full_outputs.literals["y"].scalar.primitive.integer == 6


def test_children_are_listed_under_their_parent_only(bare_admin, launched):
    execution_id, _ = launched
    now = time.time()
    _send_node(bare_admin, node_event(execution_id, "n0", NODE.QUEUED, now))
    _send_node(bare_admin, node_event(execution_id, "n0", NODE.RUNNING, now, is_parent=True))
    child = node_event(
        execution_id,
        "n0-0-n0",
        NODE.QUEUED,
        now + 1,
        spec_node_id="n0",
        retry_group="0",
        parent_node_metadata=event_pb2.ParentNodeExecutionMetadata(node_id="n0"),
    )
    _send_node(bare_admin, child)

    top = _list_nodes(bare_admin, execution_id)
    children = _list_nodes(bare_admin, execution_id, parent="n0")

    assert [n.id.node_id for n in top] == ["n0"]
    assert top[0].metadata.is_parent_node is True
    assert [(n.id.node_id, n.metadata.spec_node_id, n.metadata.retry_group) for n in children] == [
        ("n0-0-n0", "n0", "0")
    ]


def test_a_child_event_for_an_unknown_parent_is_not_found(bare_admin, launched):
    execution_id, _ = launched
    orphan = node_event(
        execution_id,
        "x-0-n0",
        NODE.QUEUED,
        time.time(),
        parent_node_metadata=event_pb2.ParentNodeExecutionMetadata(node_id="ghost"),
    )

    code, _ = _code(_send_node, bare_admin, orphan)

    assert code == grpc.StatusCode.NOT_FOUND


def test_listing_children_of_an_unknown_parent_is_not_found(bare_admin, launched):
    code, _ = _code(_list_nodes, bare_admin, launched[0], "ghost")

    assert code == grpc.StatusCode.NOT_FOUND


def test_node_error_messages_are_trimmed_in_lists_only(bare_admin, launched):
    execution_id, _ = launched
    error = core_execution_pb2.ExecutionError(code="RetriesExhausted|USER:X", message="z" * 500)
    _send_node(bare_admin, node_event(execution_id, "n0", NODE.QUEUED, time.time()))
    _send_node(bare_admin, node_event(execution_id, "n0", NODE.FAILED, time.time(), error=error))

    listed = _list_nodes(bare_admin, execution_id)[0]
    fetched = bare_admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=_node_id(execution_id, "n0"))
    )

    assert len(listed.closure.error.message) == 100
    assert len(fetched.closure.error.message) == 500


def test_launch_plan_node_links_its_child_execution(bare_admin, launched):
    execution_id, _ = launched
    launch_plan_id, _ = simple_launch_plan(bare_admin, "child")
    child_id = launch(bare_admin, launch_plan_id, x=integer(1))
    metadata = event_pb2.WorkflowNodeMetadata(execution_id=child_id)
    _send_node(bare_admin, node_event(execution_id, "n0", NODE.QUEUED, time.time()))

    _send_node(
        bare_admin,
        node_event(execution_id, "n0", NODE.RUNNING, time.time(), workflow_node_metadata=metadata),
    )

    node = _list_nodes(bare_admin, execution_id)[0]
    assert node.closure.workflow_node_metadata.executionId == child_id


def test_task_event_for_a_node_that_never_queued_is_not_found(bare_admin, launched):
    execution_id, task = launched

    code, _ = _code(
        _send_task, bare_admin, task_event(execution_id, "n9", task.id, 0, TASK.QUEUED, time.time())
    )

    assert code == grpc.StatusCode.NOT_FOUND


def test_task_executions_filter_on_retry_attempt(bare_admin, bare_sandbox, launched):
    execution_id, task = launched
    _run_task_node(bare_admin, bare_sandbox, execution_id, task, attempts=3)

    attempts = bare_admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=_node_id(execution_id, "n0"), limit=100, filters="eq(retry_attempt,2)"
        )
    ).task_executions

    assert [a.id.retry_attempt for a in attempts] == [2]


# --- inline event data ----------------------------------------------------------------------


@pytest.mark.parametrize("node_id", ["../../escaped", "a/b", "nul\0byte", ".."])
def test_inline_event_data_for_a_node_id_that_is_not_one_name_is_refused(
    bare_sandbox, bare_admin, launched, node_id
):
    execution_id, _ = launched
    event = node_event(execution_id, node_id, NODE.QUEUED, 1, input_data=literals_pb2.LiteralMap())
    before = sorted(p for p in bare_sandbox.data_dir.rglob("*") if p.is_file())

    code, details = _code(_send_node, bare_admin, event)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be a non-empty name" in details
    assert sorted(p for p in bare_sandbox.data_dir.rglob("*") if p.is_file()) == before
    assert _list_nodes(bare_admin, execution_id) == []


def test_inline_event_data_for_a_missing_execution_writes_nothing(bare_sandbox, bare_admin):
    missing = identifier_pb2.WorkflowExecutionIdentifier(
        project=PROJECT, domain=DOMAIN, name=unique("nosuchrun")
    )
    event = node_event(missing, "n0", NODE.QUEUED, 1, input_data=literals_pb2.LiteralMap())

    code, _ = _code(_send_node, bare_admin, event)

    assert code == grpc.StatusCode.NOT_FOUND
    assert not list((bare_sandbox.data_dir / "store" / "metadata").rglob(f"*{missing.name}*"))
