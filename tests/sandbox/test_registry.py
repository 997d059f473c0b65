"""Registration: tasks, workflows compiled on create, launch plans, named entities, listing."""

from __future__ import annotations

import grpc
import pytest
from admin_builders import (
    DATETIME,
    DOMAIN,
    INTEGER,
    PROJECT,
    STRING,
    cron,
    ident,
    integer,
    promise,
    register_launch_plan,
    register_task,
    register_workflow,
    string,
    task_node,
    task_template,
    unique,
    workflow_template,
)
from flyteidl.admin import common_pb2, launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2

TASK = identifier_pb2.TASK
WORKFLOW = identifier_pb2.WORKFLOW
LAUNCH_PLAN = identifier_pb2.LAUNCH_PLAN
FLOAT = types_pb2.LiteralType(simple=types_pb2.FLOAT)


def _code(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value.code(), caught.value.details()


def _two_step_workflow(admin, name):
    double = register_task(admin, unique("double"), inputs={"x": INTEGER}, outputs={"y": INTEGER})
    show = register_task(admin, unique("show"), inputs={"v": INTEGER}, outputs={"s": STRING})
    template = workflow_template(
        name,
        [
            task_node("n0", double.id, x=promise("", "x")),
            task_node("n1", show.id, v=promise("n0", "y")),
        ],
        inputs={"x": INTEGER},
        outputs={"s": STRING},
        output_bindings={"s": promise("n1", "s")},
    )
    return register_workflow(admin, template), double, show


def test_registered_task_is_returned_with_its_template_and_id(admin):
    template = register_task(admin, unique("task"), inputs={"x": INTEGER})

    task = admin.GetTask(common_pb2.ObjectGetRequest(id=template.id))

    assert task.id == template.id
    assert task.closure.compiled_task.template.container.args == template.container.args
    assert task.closure.created_at.seconds > 0


def test_registering_an_identical_task_again_is_already_exists(admin):
    template = register_task(admin, unique("task"))
    request = task_pb2.TaskCreateRequest(id=template.id, spec=task_pb2.TaskSpec(template=template))

    code, details = _code(admin.CreateTask, request)

    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert "identical structure" in details


def test_registering_a_changed_task_under_the_same_version_is_invalid_argument(admin):
    template = register_task(admin, unique("task"))
    changed = task_template(template.id.name, image="python:3.12")
    request = task_pb2.TaskCreateRequest(id=changed.id, spec=task_pb2.TaskSpec(template=changed))

    code, details = _code(admin.CreateTask, request)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "different structure" in details and "container" in details


def test_task_without_interface_is_invalid_argument_naming_the_field(admin):
    template = task_template(unique("task"))
    template.ClearField("interface")
    request = task_pb2.TaskCreateRequest(id=template.id, spec=task_pb2.TaskSpec(template=template))

    code, details = _code(admin.CreateTask, request)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "missing typed interface"


def test_compiled_workflow_has_start_and_end_nodes_and_start_node_bindings(admin):
    workflow_id, _, _ = _two_step_workflow(admin, unique("wf"))

    workflow = admin.GetWorkflow(common_pb2.ObjectGetRequest(id=workflow_id))

    template = workflow.closure.compiled_workflow.primary.template
    assert [node.id for node in template.nodes] == ["n0", "n1", "start-node", "end-node"]
    assert template.nodes[0].inputs[0].binding.promise.node_id == "start-node"
    end = template.nodes[3]
    assert end.inputs[0].var == "s" and end.inputs[0].binding.promise.node_id == "n1"


def test_compiled_workflow_connections_link_start_nodes_and_end(admin):
    workflow_id, _, _ = _two_step_workflow(admin, unique("wf"))

    workflow = admin.GetWorkflow(common_pb2.ObjectGetRequest(id=workflow_id))

    connections = workflow.closure.compiled_workflow.primary.connections
    assert list(connections.upstream["n0"].ids) == ["start-node"]
    assert list(connections.upstream["n1"].ids) == ["n0"]
    assert list(connections.upstream["end-node"].ids) == ["n1"]
    assert list(connections.downstream["start-node"].ids) == ["n0"]
    assert list(connections.downstream["n1"].ids) == ["end-node"]


def test_compiled_workflow_lists_every_referenced_task_template(admin):
    workflow_id, double, show = _two_step_workflow(admin, unique("wf"))

    workflow = admin.GetWorkflow(common_pb2.ObjectGetRequest(id=workflow_id))

    names = sorted(t.template.id.name for t in workflow.closure.compiled_workflow.tasks)
    assert names == sorted([double.id.name, show.id.name])


def test_sub_workflow_is_compiled_into_sub_workflows(admin):
    task = register_task(admin, unique("inc"), inputs={"x": INTEGER}, outputs={"y": INTEGER})
    sub = workflow_template(
        unique("sub"),
        [task_node("n0", task.id, x=promise("", "x"))],
        inputs={"x": INTEGER},
        outputs={"y": INTEGER},
        output_bindings={"y": promise("n0", "y")},
    )
    parent_node = core_workflow_pb2.Node(
        id="n0",
        workflow_node=core_workflow_pb2.WorkflowNode(sub_workflow_ref=sub.id),
        inputs=[promise_binding("x", promise("", "x"))],
    )
    parent = workflow_template(unique("parent"), [parent_node], inputs={"x": INTEGER})

    workflow_id = register_workflow(admin, parent, [sub])

    closure = admin.GetWorkflow(common_pb2.ObjectGetRequest(id=workflow_id)).closure
    subs = closure.compiled_workflow.sub_workflows
    assert [s.template.id.name for s in subs] == [sub.id.name]
    assert [n.id for n in subs[0].template.nodes] == ["n0", "start-node", "end-node"]


def promise_binding(var, data):
    from flyteidl.core import literals_pb2

    return literals_pb2.Binding(var=var, binding=data)


def test_workflow_referencing_an_unregistered_task_fails_to_compile_naming_the_node(admin):
    missing_task = ident(TASK, unique("never-registered"))
    template = workflow_template(unique("wf"), [task_node("step-a", missing_task)])

    code, details = _code(register_workflow, admin, template)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "failed to compile workflow" in details and "[step-a]" in details


def test_workflow_binding_to_an_unknown_node_fails_to_compile_naming_the_node(admin):
    task = register_task(admin, unique("t"), inputs={"x": INTEGER})
    template = workflow_template(unique("wf"), [task_node("n0", task.id, x=promise("ghost", "o"))])

    code, details = _code(register_workflow, admin, template)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "[n0]" in details and "[ghost]" in details


def test_workflow_with_a_dependency_cycle_fails_to_compile(admin):
    task = register_task(admin, unique("t"))
    first = task_node("a", task.id)
    second = task_node("b", task.id)
    first.upstream_node_ids.append("b")
    second.upstream_node_ids.append("a")

    code, details = _code(
        register_workflow, admin, workflow_template(unique("wf"), [first, second])
    )

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "cycle" in details


def test_binding_to_an_output_the_upstream_task_lacks_fails_to_compile(admin):
    first = register_task(admin, unique("t"), outputs={"o0": INTEGER})
    second = register_task(admin, unique("t"), inputs={"x": INTEGER})
    template = workflow_template(
        unique("wf"),
        [task_node("n0", first.id), task_node("n1", second.id, x=promise("n0", "zz"))],
    )

    code, details = _code(register_workflow, admin, template)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "failed to compile workflow" in details
    assert "node [n1] binds [x] to output [zz] of node [n0]" in details
    assert "its outputs: o0" in details


def test_workflow_output_bound_to_an_output_the_task_lacks_fails_to_compile(admin):
    task = register_task(admin, unique("t"), outputs={"o0": INTEGER})
    template = workflow_template(
        unique("wf"),
        [task_node("n0", task.id)],
        outputs={"y": INTEGER},
        output_bindings={"y": promise("n0", "zz")},
    )

    code, details = _code(register_workflow, admin, template)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "workflow output [y] to output [zz] of node [n0]" in details


def test_binding_to_an_output_a_sub_workflow_lacks_fails_to_compile(admin):
    task = register_task(admin, unique("inc"), inputs={"x": INTEGER}, outputs={"y": INTEGER})
    sub = workflow_template(
        unique("sub"),
        [task_node("n0", task.id, x=promise("", "x"))],
        inputs={"x": INTEGER},
        outputs={"y": INTEGER},
        output_bindings={"y": promise("n0", "y")},
    )
    sub_node = core_workflow_pb2.Node(
        id="n0",
        workflow_node=core_workflow_pb2.WorkflowNode(sub_workflow_ref=sub.id),
        inputs=[promise_binding("x", promise("", "x"))],
    )
    parent = workflow_template(
        unique("parent"),
        [sub_node, task_node("n1", task.id, x=promise("n0", "zz"))],
        inputs={"x": INTEGER},
    )

    code, details = _code(register_workflow, admin, parent, [sub])

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "node [n1] binds [x] to output [zz] of node [n0], which sub-workflow" in details


def _number(value: int) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(scalar=integer(value).scalar)


def _task_node_missing_an_input(admin):
    task = register_task(admin, unique("pair"), inputs={"a": INTEGER, "b": INTEGER})
    template = workflow_template(unique("wf"), [task_node("n0", task.id, a=_number(1))])
    return template, [], f"node [n0] input [b] of task [{task.id.name}] is not bound"


def _task_input_bound_twice(admin):
    task = register_task(admin, unique("one"), inputs={"a": INTEGER})
    node = task_node("n0", task.id, a=_number(1))
    node.inputs.append(promise_binding("a", _number(2)))
    template = workflow_template(unique("wf"), [node])
    return template, [], "node [n0] input [a] is bound more than once"


def _workflow_output_not_bound(admin):
    task = register_task(admin, unique("out"), outputs={"o0": INTEGER})
    template = workflow_template(unique("wf"), [task_node("n0", task.id)], outputs={"y": INTEGER})
    return template, [], "workflow output [y] of the workflow is not bound"


def _undeclared_workflow_output_bound(admin):
    task = register_task(admin, unique("out"), outputs={"o0": INTEGER})
    template = workflow_template(
        unique("wf"), [task_node("n0", task.id)], output_bindings={"extra": promise("n0", "o0")}
    )
    return template, [], "workflow output [extra] is bound, which the workflow does not declare"


def _sub_workflow_node_missing_an_input(admin):
    task = register_task(admin, unique("inc"), inputs={"x": INTEGER})
    sub = workflow_template(
        unique("sub"), [task_node("n0", task.id, x=promise("", "x"))], inputs={"x": INTEGER}
    )
    sub_node = core_workflow_pb2.Node(
        id="call-sub", workflow_node=core_workflow_pb2.WorkflowNode(sub_workflow_ref=sub.id)
    )
    template = workflow_template(unique("parent"), [sub_node])
    return (
        template,
        [sub],
        f"node [call-sub] input [x] of sub-workflow [{sub.id.name}] is not bound",
    )


@pytest.mark.parametrize(
    "build",
    [
        _task_node_missing_an_input,
        _task_input_bound_twice,
        _workflow_output_not_bound,
        _undeclared_workflow_output_bound,
        _sub_workflow_node_missing_an_input,
    ],
)
def test_a_binding_missing_repeated_or_undeclared_fails_to_compile_naming_it(admin, build):
    template, sub_workflows, expected = build(admin)

    code, details = _code(register_workflow, admin, template, sub_workflows)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"failed to compile workflow for [{PROJECT}:{DOMAIN}:")
    assert expected in details


@pytest.mark.parametrize(
    ("literal", "declared"),
    [
        (string("7"), "INTEGER"),
        (integer(7), "STRING"),
    ],
)
def test_a_literal_of_the_wrong_type_bound_to_an_input_fails_to_compile(admin, literal, declared):
    input_type = INTEGER if declared == "INTEGER" else STRING
    task = register_task(admin, unique("t"), inputs={"x": input_type})
    bound = literals_pb2.BindingData(scalar=literal.scalar)
    template = workflow_template(unique("wf"), [task_node("n0", task.id, x=bound)])

    code, details = _code(register_workflow, admin, template)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"node [n0] binds [x] to a literal that is not {declared}" in details


def test_literals_of_the_declared_types_compile(admin):
    task = register_task(
        admin, unique("t"), inputs={"x": INTEGER, "xs": list_of(INTEGER), "f": FLOAT}
    )
    items = literals_pb2.BindingDataCollection(
        bindings=[literals_pb2.BindingData(scalar=integer(i).scalar) for i in range(2)]
    )
    template = workflow_template(
        unique("wf"),
        [
            task_node(
                "n0",
                task.id,
                x=literals_pb2.BindingData(scalar=integer(1).scalar),
                xs=literals_pb2.BindingData(collection=items),
                f=literals_pb2.BindingData(scalar=integer(2).scalar),
            )
        ],
    )

    assert register_workflow(admin, template) == template.id


def test_a_list_literal_with_an_item_of_the_wrong_type_fails_to_compile(admin):
    task = register_task(admin, unique("t"), inputs={"xs": list_of(INTEGER)})
    items = literals_pb2.BindingDataCollection(
        bindings=[
            literals_pb2.BindingData(scalar=integer(1).scalar),
            literals_pb2.BindingData(scalar=string("two").scalar),
        ]
    )
    template = workflow_template(
        unique("wf"), [task_node("n0", task.id, xs=literals_pb2.BindingData(collection=items))]
    )

    code, details = _code(register_workflow, admin, template)

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "node [n0] binds [xs] to a literal that is not list<INTEGER>" in details


def list_of(item_type):
    return types_pb2.LiteralType(collection_type=item_type)


def test_launch_plan_expected_inputs_hold_defaults_and_required_workflow_inputs(admin):
    task = register_task(admin, unique("t"), inputs={"a": INTEGER, "b": INTEGER})
    template = workflow_template(
        unique("wf"),
        [task_node("n0", task.id, a=promise("", "a"), b=promise("", "b"))],
        inputs={"a": INTEGER, "b": INTEGER},
    )
    workflow_id = register_workflow(admin, template)

    launch_plan_id = register_launch_plan(admin, workflow_id, defaults={"b": (INTEGER, integer(7))})

    launch_plan = admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=launch_plan_id))
    expected = launch_plan.closure.expected_inputs.parameters
    assert expected["a"].required is True
    assert expected["b"].default.scalar.primitive.integer == 7
    assert launch_plan.closure.state == launch_plan_pb2.INACTIVE


def test_launch_plan_with_a_fixed_input_the_workflow_lacks_is_invalid_argument(admin):
    workflow_id, _, _ = _two_step_workflow(admin, unique("wf"))

    code, details = _code(register_launch_plan, admin, workflow_id, "lp", None, {"z": integer(1)})

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "fixed_input z" in details


def test_launch_plan_of_an_unregistered_workflow_is_not_found(admin):
    code, _ = _code(register_launch_plan, admin, ident(WORKFLOW, unique("ghost")))

    assert code == grpc.StatusCode.NOT_FOUND


def _kickoff_workflow(admin):
    task = register_task(admin, unique("t"), inputs={"when": DATETIME})
    template = workflow_template(
        unique("daily"),
        [task_node("n0", task.id, when=promise("", "when"))],
        inputs={"when": DATETIME},
    )
    return register_workflow(admin, template)


def test_scheduled_launch_plan_keeps_its_cron_schedule(admin):
    workflow_id = _kickoff_workflow(admin)

    launch_plan_id = register_launch_plan(admin, workflow_id, schedule=cron("0 6 * * *", "when"))

    launch_plan = admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=launch_plan_id))
    schedule = launch_plan.spec.entity_metadata.schedule
    assert schedule.cron_schedule.schedule == "0 6 * * *"
    assert schedule.kickoff_time_input_arg == "when"


def test_scheduled_launch_plan_with_an_unparsable_cron_is_invalid_argument(admin):
    workflow_id = _kickoff_workflow(admin)

    code, details = _code(
        register_launch_plan, admin, workflow_id, None, None, None, cron("every day", "when")
    )

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "cron" in details


def test_scheduled_launch_plan_with_a_required_non_kickoff_input_is_invalid_argument(admin):
    workflow_id = _kickoff_workflow(admin)

    code, details = _code(
        register_launch_plan, admin, workflow_id, None, None, None, cron("@daily")
    )

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "required input when" in details


def test_activating_a_version_deactivates_the_previously_active_one(admin):
    name = unique("wf")
    ids = []
    for version in ("v1", "v2"):
        task = register_task(admin, unique("t"))
        template = workflow_template(name, [task_node("n0", task.id)], version=version)
        ids.append(register_launch_plan(admin, register_workflow(admin, template)))
    for launch_plan_id in ids:
        admin.UpdateLaunchPlan(
            launch_plan_pb2.LaunchPlanUpdateRequest(id=launch_plan_id, state=launch_plan_pb2.ACTIVE)
        )

    first = admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=ids[0]))
    active = admin.GetActiveLaunchPlan(
        launch_plan_pb2.ActiveLaunchPlanRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=name)
        )
    )
    assert first.closure.state == launch_plan_pb2.INACTIVE
    assert active.id.version == "v2"


def test_no_active_launch_plan_is_not_found(admin):
    workflow_id, _, _ = _two_step_workflow(admin, unique("wf"))
    register_launch_plan(admin, workflow_id)
    request = launch_plan_pb2.ActiveLaunchPlanRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=workflow_id.name)
    )

    code, details = _code(admin.GetActiveLaunchPlan, request)

    assert code == grpc.StatusCode.NOT_FOUND
    assert details == "No active launch plan could be found"


def test_latest_version_lookup_sorts_created_at_descending(admin):
    name = unique("versions")
    for version in ("v1", "v2", "v3"):
        register_task(admin, name, version=version)

    tasks = admin.ListTasks(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=name),
            limit=1,
            sort_by=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.DESCENDING),
        )
    )

    assert [t.id.version for t in tasks.tasks] == ["v3"]
    assert tasks.token == "1"


def test_list_workflows_returns_light_rows_with_the_interface(admin):
    workflow_id, _, _ = _two_step_workflow(admin, unique("wf"))

    listed = admin.ListWorkflows(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(
                project=PROJECT, domain=DOMAIN, name=workflow_id.name
            ),
            limit=10,
        )
    )

    (row,) = listed.workflows
    assert "x" in row.closure.compiled_workflow.primary.template.interface.inputs.variables
    assert not row.closure.compiled_workflow.primary.template.nodes


def test_list_task_ids_returns_each_name_once(admin):
    name = unique("ids")
    register_task(admin, name, version="v1")
    register_task(admin, name, version="v2")

    listed = admin.ListTaskIds(
        common_pb2.NamedEntityIdentifierListRequest(project=PROJECT, domain=DOMAIN, limit=10_000)
    )

    assert [e.name for e in listed.entities].count(name) == 1


def test_list_named_entities_hides_generated_single_task_workflows(bare_admin):
    from admin_builders import launch

    admin = bare_admin
    task = register_task(admin, unique("solo"))
    launch(admin, task.id)

    listed = admin.ListNamedEntities(
        common_pb2.NamedEntityListRequest(
            resource_type=WORKFLOW, project=PROJECT, domain=DOMAIN, limit=10_000
        )
    )

    assert not [e for e in listed.entities if e.id.name.startswith(".flytegen.")]
    generated = admin.GetWorkflow(
        common_pb2.ObjectGetRequest(id=ident(WORKFLOW, ".flytegen." + task.id.name))
    )
    assert generated.closure.compiled_workflow.primary.template.nodes[0].id == task.id.name


def test_archiving_a_launch_plan_named_entity_is_invalid_argument(admin):
    workflow_id, _, _ = _two_step_workflow(admin, unique("wf"))
    register_launch_plan(admin, workflow_id)
    request = common_pb2.NamedEntityUpdateRequest(
        resource_type=LAUNCH_PLAN,
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=workflow_id.name),
        metadata=common_pb2.NamedEntityMetadata(state=common_pb2.NAMED_ENTITY_ARCHIVED),
    )

    code, _ = _code(admin.UpdateNamedEntity, request)

    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_workflow_spec_without_template_is_missing_spec(admin):
    request = workflow_pb2.WorkflowCreateRequest(id=ident(WORKFLOW, unique("wf")))

    code, details = _code(admin.CreateWorkflow, request)

    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "missing spec")
