"""Builders of registration and event protos for tests of the sandbox's admin side."""

from __future__ import annotations

import itertools

from flyteidl.admin import (
    execution_pb2,
    launch_plan_pb2,
    schedule_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import (
    execution_pb2 as core_execution_pb2,
)
from flyteidl.core import (
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
)
from flyteidl.core import (
    workflow_pb2 as core_workflow_pb2,
)
from flyteidl.event import event_pb2
from google.protobuf import timestamp_pb2

PROJECT = "flytesnacks"
DOMAIN = "development"
INTEGER = types_pb2.LiteralType(simple=types_pb2.INTEGER)
STRING = types_pb2.LiteralType(simple=types_pb2.STRING)
DATETIME = types_pb2.LiteralType(simple=types_pb2.DATETIME)
BOOLEAN_TYPE = types_pb2.LiteralType(simple=types_pb2.BOOLEAN)
_counter = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test in this session uses."""
    return f"{prefix}-{next(_counter)}"


def ident(resource_type: int, name: str, version: str = "v1") -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=resource_type, project=PROJECT, domain=DOMAIN, name=name, version=version
    )


def variables(**types: types_pb2.LiteralType) -> interface_pb2.VariableMap:
    return interface_pb2.VariableMap(
        variables={name: interface_pb2.Variable(type=t) for name, t in types.items()}
    )


def interface(inputs: dict | None = None, outputs: dict | None = None):
    return interface_pb2.TypedInterface(
        inputs=variables(**(inputs or {})), outputs=variables(**(outputs or {}))
    )


def integer(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def string(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


def task_template(
    name: str, version: str = "v1", inputs=None, outputs=None, image: str = "python:3.11"
) -> tasks_pb2.TaskTemplate:
    """A flytekit-shaped Python task template (never run by the admin-side tests)."""
    return tasks_pb2.TaskTemplate(
        id=ident(identifier_pb2.TASK, name, version),
        type="python-task",
        metadata=tasks_pb2.TaskMetadata(
            runtime=tasks_pb2.RuntimeMetadata(
                type=tasks_pb2.RuntimeMetadata.FLYTE_SDK, version="1.16.0", flavor="python"
            ),
            retries=literals_pb2.RetryStrategy(retries=0),
        ),
        interface=interface(inputs, outputs),
        container=tasks_pb2.Container(
            image=image,
            args=[
                "pyflyte-execute",
                "--inputs",
                "{{.input}}",
                "--output-prefix",
                "{{.outputPrefix}}",
                "--resolver",
                "r",
                "--",
                "task-module",
                "m",
                "task-name",
                name,
            ],
        ),
    )


def register_task(admin, name: str, version: str = "v1", inputs=None, outputs=None):
    template = task_template(name, version, inputs, outputs)
    admin.CreateTask(
        task_pb2.TaskCreateRequest(id=template.id, spec=task_pb2.TaskSpec(template=template))
    )
    return template


def promise(node_id: str, var: str) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(promise=types_pb2.OutputReference(node_id=node_id, var=var))


def task_node(node_id: str, task_id, **bindings: literals_pb2.BindingData):
    return core_workflow_pb2.Node(
        id=node_id,
        metadata=core_workflow_pb2.NodeMetadata(name=node_id),
        task_node=core_workflow_pb2.TaskNode(reference_id=task_id),
        inputs=[literals_pb2.Binding(var=k, binding=v) for k, v in bindings.items()],
    )


def workflow_template(name, nodes, inputs=None, outputs=None, output_bindings=None, version="v1"):
    return core_workflow_pb2.WorkflowTemplate(
        id=ident(identifier_pb2.WORKFLOW, name, version),
        interface=interface(inputs, outputs),
        nodes=nodes,
        outputs=[
            literals_pb2.Binding(var=k, binding=v) for k, v in (output_bindings or {}).items()
        ],
    )


def register_workflow(admin, template, sub_workflows=()):
    admin.CreateWorkflow(
        workflow_pb2.WorkflowCreateRequest(
            id=template.id,
            spec=workflow_pb2.WorkflowSpec(template=template, sub_workflows=list(sub_workflows)),
        )
    )
    return template.id


def register_launch_plan(admin, workflow_id, name=None, defaults=None, fixed=None, schedule=None):
    """Registers a launch plan; ``defaults`` maps input names to (type, default literal)."""
    launch_plan_id = ident(
        identifier_pb2.LAUNCH_PLAN, name or workflow_id.name, workflow_id.version
    )
    spec = launch_plan_pb2.LaunchPlanSpec(workflow_id=workflow_id)
    for input_name, (literal_type, default) in (defaults or {}).items():
        spec.default_inputs.parameters[input_name].CopyFrom(
            interface_pb2.Parameter(var=interface_pb2.Variable(type=literal_type), default=default)
        )
    for input_name, literal in (fixed or {}).items():
        spec.fixed_inputs.literals[input_name].CopyFrom(literal)
    if schedule is not None:
        spec.entity_metadata.schedule.CopyFrom(schedule)
    admin.CreateLaunchPlan(launch_plan_pb2.LaunchPlanCreateRequest(id=launch_plan_id, spec=spec))
    return launch_plan_id


def cron(expression: str, kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule=expression),
        kickoff_time_input_arg=kickoff,
    )


def simple_launch_plan(admin, prefix: str = "wf"):
    """A registered one-task workflow ``x:int -> y:int`` with its default launch plan."""
    task = register_task(
        admin, unique(f"{prefix}-task"), inputs={"x": INTEGER}, outputs={"y": INTEGER}
    )
    template = workflow_template(
        unique(prefix),
        [task_node("n0", task.id, x=promise("", "x"))],
        inputs={"x": INTEGER},
        outputs={"y": INTEGER},
        output_bindings={"y": promise("n0", "y")},
    )
    workflow_id = register_workflow(admin, template)
    return register_launch_plan(admin, workflow_id), task


def launch(admin, launch_plan_id, name: str = "", **inputs: literals_pb2.Literal):
    request = execution_pb2.ExecutionCreateRequest(
        project=PROJECT,
        domain=DOMAIN,
        name=name,
        spec=execution_pb2.ExecutionSpec(launch_plan=launch_plan_id),
        inputs=literals_pb2.LiteralMap(literals=inputs),
    )
    return admin.CreateExecution(request).id


def at(seconds: float) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))


def workflow_event(execution_id, phase, when, **result):
    return event_pb2.WorkflowExecutionEvent(
        execution_id=execution_id, phase=phase, occurred_at=at(when), **result
    )


def node_event(execution_id, node_id, phase, when, **fields):
    return event_pb2.NodeExecutionEvent(
        id=identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution_id),
        phase=phase,
        occurred_at=at(when),
        spec_node_id=fields.pop("spec_node_id", node_id),
        **fields,
    )


def task_event(execution_id, node_id, task_id, attempt, phase, when, **fields):
    return event_pb2.TaskExecutionEvent(
        task_id=task_id,
        parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
            node_id=node_id, execution_id=execution_id
        ),
        retry_attempt=attempt,
        phase=phase,
        occurred_at=at(when),
        **fields,
    )


WF = core_execution_pb2.WorkflowExecution
NODE = core_execution_pb2.NodeExecution
TASK = core_execution_pb2.TaskExecution
