"""Registered entities: tasks, workflows (compiled on create), launch plans, named entities."""

from __future__ import annotations

import hashlib
import re
import sqlite3

from croniter import croniter
from flyteidl.admin import (
    common_pb2,
    launch_plan_pb2,
    schedule_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import compiler_pb2, identifier_pb2, interface_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2
from google.protobuf.message import Message

from flyte_bridge.sandbox import query as q
from flyte_bridge.sandbox.compiler import Compiler, show
from flyte_bridge.sandbox.db import Database, now_ns, to_timestamp
from flyte_bridge.sandbox.literal_types import describe, literal_fits, type_fits
from flyte_bridge.sandbox.projects import Projects, validate_labels
from flyte_bridge.sandbox.status import already_exists, invalid, missing, not_found

TASK = identifier_pb2.TASK
WORKFLOW = identifier_pb2.WORKFLOW
LAUNCH_PLAN = identifier_pb2.LAUNCH_PLAN
_TYPE_NAMES = {TASK: "TASK", WORKFLOW: "WORKFLOW", LAUNCH_PLAN: "LAUNCH_PLAN"}
_TABLES = {TASK: "tasks", WORKFLOW: "workflows", LAUNCH_PLAN: "launch_plans"}
_LISTINGS = {
    TASK: q.Listing(q.TASK, "t"),
    WORKFLOW: q.Listing(q.WORKFLOW, "w"),
    LAUNCH_PLAN: q.Listing(
        q.LAUNCH_PLAN, "l", joins={"workflow": ("w", "JOIN workflows w ON w.id = l.workflow_id")}
    ),
}
FLYTEGEN_PREFIX = ".flytegen."
_NODE_ID_CHARS = re.compile(r"[^A-Za-z0-9-]")


def digest(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()


def field_diff(old: Message, new: Message, prefix: str = "", depth: int = 3) -> list[str]:
    """Dotted paths of the fields that differ between two messages of one type."""
    paths = []
    for field in old.DESCRIPTOR.fields:
        name = f"{prefix}{field.name}"
        a, b = getattr(old, field.name), getattr(new, field.name)
        if a == b:
            continue
        if depth > 1 and isinstance(a, Message):
            paths.extend(field_diff(a, b, f"{name}.", depth - 1) or [name])
        else:
            paths.append(name)
    return paths


def check_identifier(
    identifier: identifier_pb2.Identifier, resource_type: int, *, field: str = "id"
) -> identifier_pb2.Identifier:
    """Fills an unspecified resource type and checks every part is present."""
    checked = identifier_pb2.Identifier()
    checked.CopyFrom(identifier)
    if checked.resource_type == identifier_pb2.UNSPECIFIED:
        checked.resource_type = resource_type
    elif checked.resource_type != resource_type:
        raise invalid(
            f"unexpected resource type {_TYPE_NAMES.get(checked.resource_type, '?')} for "
            f"{field}, expected {_TYPE_NAMES[resource_type]}"
        )
    for part in ("project", "domain", "name", "version"):
        if not getattr(checked, part):
            raise missing(part)
    return checked


def flytegen_node_id(task_name: str) -> str:
    """The node id of a single-task execution's workflow: the task name's id-safe characters."""
    return _NODE_ID_CHARS.sub("", task_name[-63:])


class Registry:
    """Tasks, workflows and launch plans in the database, with flyteadmin's checks."""

    def __init__(self, db: Database, projects: Projects) -> None:
        self.db = db
        self.projects = projects
        self.compiler = Compiler(self.task_template, self._check_launch_plan, self._sub_template)

    # --- shared -------------------------------------------------------------------------------

    def _row(self, resource_type: int, identifier: identifier_pb2.Identifier):
        return self.db.query_one(
            f"SELECT * FROM {_TABLES[resource_type]} WHERE project = ? AND domain = ? "
            "AND name = ? AND version = ?",
            (identifier.project, identifier.domain, identifier.name, identifier.version),
        )

    def row_id(self, resource_type: int, identifier: identifier_pb2.Identifier) -> int | None:
        row = self._row(resource_type, identifier)
        return row["id"] if row else None

    def _missing(self, resource_type: int, identifier: identifier_pb2.Identifier):
        return not_found(
            f"missing entity of type {_TYPE_NAMES[resource_type]} with identifier "
            f"{show(identifier)}"
        )

    def _insert(
        self,
        conn: sqlite3.Connection,
        resource_type: int,
        identifier: identifier_pb2.Identifier,
        definition: Message,
        columns: dict,
        existing_definition,
    ) -> None:
        """Inserts a definition, or refuses a duplicate as flyteadmin does (same or different)."""
        entity_digest = digest(definition)
        row = conn.execute(
            f"SELECT digest FROM {_TABLES[resource_type]} WHERE project = ? AND domain = ? "
            "AND name = ? AND version = ?",
            (identifier.project, identifier.domain, identifier.name, identifier.version),
        ).fetchone()
        kind = _TYPE_NAMES[resource_type].lower().replace("_", " ")
        if row is not None:
            if row["digest"] == entity_digest:
                raise already_exists(f"{kind} with identical structure already exists")
            differences = field_diff(existing_definition(), definition)
            raise invalid(
                f"{identifier.name} {kind} with different structure already exists. (Please "
                f"register a new version of the {kind}): differing fields: "
                f"{', '.join(differences[:10]) or 'unknown'}"
            )
        now = now_ns()
        values = {
            "project": identifier.project,
            "domain": identifier.domain,
            "name": identifier.name,
            "version": identifier.version,
            "digest": entity_digest,
            "created_at": now,
            "updated_at": now,
            **columns,
        }
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        conn.execute(
            f"INSERT INTO {_TABLES[resource_type]} ({names}) VALUES ({marks})",
            list(values.values()),
        )
        conn.execute(
            "INSERT OR IGNORE INTO named_entity_metadata (resource_type, project, domain, name, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (resource_type, identifier.project, identifier.domain, identifier.name, now, now),
        )

    def _list(self, resource_type: int, request: common_pb2.ResourceListRequest, rpc: str):
        if not request.id.project:
            raise missing("project")
        if not request.id.domain:
            raise missing("domain")
        listing = _LISTINGS[resource_type]
        limit, offset = q.page(request.limit, request.token, rpc=rpc)
        query = q.Query()
        alias = listing.alias
        query.add(f"{alias}.project = ?", request.id.project)
        query.add(f"{alias}.domain = ?", request.id.domain)
        if request.id.name:
            query.add(f"{alias}.name = ?", request.id.name)
        q.compile_filters(listing, request.filters, query)
        sort = request.sort_by if request.HasField("sort_by") else None
        order = q.order_by(listing, sort)
        rows = self.db.query(
            f"SELECT {alias}.* FROM {_TABLES[resource_type]} {alias} {query.sql()} {order} "
            "LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return rows, q.next_token(limit, offset, len(rows))

    def list_ids(
        self, resource_type: int, request: common_pb2.NamedEntityIdentifierListRequest
    ) -> common_pb2.NamedEntityIdentifierList:
        """Distinct (project, domain, name) of one resource type; request filters are ignored."""
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        rpc = {TASK: "ListTaskIds", WORKFLOW: "ListWorkflowIds"}.get(
            resource_type, "ListLaunchPlanIds"
        )
        limit, offset = q.page(request.limit, request.token, rpc=rpc)
        listing = _LISTINGS[resource_type]
        sort = request.sort_by if request.HasField("sort_by") else None
        if sort is not None and sort.key and sort.key not in ("name", "project", "domain"):
            q.order_by(listing, sort)
        direction = "ASC"
        if sort is not None and sort.key:
            direction = "ASC" if sort.direction == common_pb2.Sort.ASCENDING else "DESC"
        key = sort.key if sort is not None and sort.key in ("name", "project", "domain") else None
        order = f"ORDER BY {key} {direction}" if key else "ORDER BY MIN(id) ASC"
        if sort is not None and sort.key and not key:
            order = f"ORDER BY MAX({sort.key}) {direction}"
        rows = self.db.query(
            f"SELECT project, domain, name FROM {_TABLES[resource_type]} "
            f"WHERE project = ? AND domain = ? GROUP BY project, domain, name {order} "
            "LIMIT ? OFFSET ?",
            (request.project, request.domain, limit, offset),
        )
        return common_pb2.NamedEntityIdentifierList(
            entities=[
                common_pb2.NamedEntityIdentifier(
                    project=row["project"], domain=row["domain"], name=row["name"]
                )
                for row in rows
            ],
            token=q.next_token(limit, offset, len(rows)),
        )

    # --- tasks --------------------------------------------------------------------------------

    def create_task(self, request: task_pb2.TaskCreateRequest) -> None:
        identifier = check_identifier(request.id, TASK)
        self.projects.require_active(identifier.project, identifier.domain)
        if not request.HasField("spec") or not request.spec.HasField("template"):
            raise missing("spec")
        template = request.spec.template
        if not template.type:
            raise missing("type")
        if not template.HasField("metadata"):
            raise missing("metadata")
        if template.metadata.HasField("runtime") and not template.metadata.runtime.version:
            raise missing("runtime version")
        if not template.HasField("interface"):
            raise missing("typed interface")
        if template.HasField("container") and not template.container.image:
            raise missing("container image")
        if template.HasField("k8s_pod") and not template.k8s_pod.HasField("pod_spec"):
            raise missing("pod_spec")
        compiled = task_pb2.Task(
            id=identifier,
            closure=task_pb2.TaskClosure(
                compiled_task=compiler_pb2.CompiledTask(template=template)
            ),
            short_description=request.spec.description.short_description,
        )
        compiled.closure.compiled_task.template.id.CopyFrom(identifier)
        definition = compiled.closure.compiled_task.template
        self._store_task(identifier, compiled, definition)

    def _store_task(self, identifier, task: task_pb2.Task, definition) -> None:
        with self.db.transaction() as conn:
            task.closure.created_at.CopyFrom(to_timestamp(now_ns()))
            self._insert(
                conn,
                TASK,
                identifier,
                definition,
                {
                    "closure": task.SerializeToString(),
                    "type": definition.type,
                    "short_description": task.short_description,
                },
                lambda: self.get_task(identifier).closure.compiled_task.template,
            )

    def get_task(self, identifier: identifier_pb2.Identifier) -> task_pb2.Task:
        row = self._row(TASK, identifier)
        if row is None:
            raise self._missing(TASK, identifier)
        return task_pb2.Task.FromString(row["closure"])

    def task_template(self, identifier: identifier_pb2.Identifier):
        return self.get_task(identifier).closure.compiled_task.template

    def list_tasks(self, request: common_pb2.ResourceListRequest) -> task_pb2.TaskList:
        rows, token = self._list(TASK, request, "ListTasks")
        return task_pb2.TaskList(
            tasks=[task_pb2.Task.FromString(row["closure"]) for row in rows], token=token
        )

    # --- workflows ----------------------------------------------------------------------------

    def create_workflow(self, request: workflow_pb2.WorkflowCreateRequest) -> None:
        identifier = check_identifier(request.id, WORKFLOW)
        self.projects.require_active(identifier.project, identifier.domain)
        if not request.HasField("spec") or not request.spec.HasField("template"):
            raise missing("spec")
        template = core_workflow_pb2.WorkflowTemplate()
        template.CopyFrom(request.spec.template)
        template.id.CopyFrom(identifier)
        closure = self.compiler.compile(template, list(request.spec.sub_workflows))
        self.store_workflow(identifier, closure, request.spec.description.short_description)

    def store_workflow(
        self,
        identifier: identifier_pb2.Identifier,
        closure: compiler_pb2.CompiledWorkflowClosure,
        short_description: str = "",
    ) -> None:
        workflow = workflow_pb2.Workflow(
            id=identifier,
            closure=workflow_pb2.WorkflowClosure(
                compiled_workflow=closure, created_at=to_timestamp(now_ns())
            ),
            short_description=short_description,
        )
        with self.db.transaction() as conn:
            self._insert(
                conn,
                WORKFLOW,
                identifier,
                closure,
                {
                    "closure": workflow.SerializeToString(),
                    "typed_interface": closure.primary.template.interface.SerializeToString(),
                    "short_description": short_description,
                },
                lambda: self.get_workflow(identifier).closure.compiled_workflow,
            )

    def get_workflow(self, identifier: identifier_pb2.Identifier) -> workflow_pb2.Workflow:
        row = self._row(WORKFLOW, identifier)
        if row is None:
            raise self._missing(WORKFLOW, identifier)
        return workflow_pb2.Workflow.FromString(row["closure"])

    def _sub_template(self, identifier):
        row = self._row(WORKFLOW, identifier)
        if row is None:
            return None
        workflow = workflow_pb2.Workflow.FromString(row["closure"])
        template = core_workflow_pb2.WorkflowTemplate()
        template.CopyFrom(workflow.closure.compiled_workflow.primary.template)
        kept = [n for n in template.nodes if n.id not in ("start-node", "end-node")]
        del template.nodes[:]
        template.nodes.extend(kept)
        return template

    def list_workflows(self, request: common_pb2.ResourceListRequest) -> workflow_pb2.WorkflowList:
        rows, token = self._list(WORKFLOW, request, "ListWorkflows")
        workflows = []
        for row in rows:
            interface = interface_pb2.TypedInterface.FromString(row["typed_interface"] or b"")
            light = workflow_pb2.Workflow(
                id=identifier_pb2.Identifier(
                    resource_type=WORKFLOW,
                    project=row["project"],
                    domain=row["domain"],
                    name=row["name"],
                    version=row["version"],
                ),
                short_description=row["short_description"],
            )
            light.closure.created_at.CopyFrom(to_timestamp(row["created_at"]))
            light.closure.compiled_workflow.primary.template.interface.CopyFrom(interface)
            workflows.append(light)
        return workflow_pb2.WorkflowList(workflows=workflows, token=token)

    # --- launch plans -------------------------------------------------------------------------

    def _check_launch_plan(self, identifier: identifier_pb2.Identifier) -> None:
        if self._row(LAUNCH_PLAN, identifier) is None:
            raise self._missing(LAUNCH_PLAN, identifier)

    def create_launch_plan(self, request: launch_plan_pb2.LaunchPlanCreateRequest) -> None:
        if not request.HasField("spec"):
            raise missing("spec")
        spec = launch_plan_pb2.LaunchPlanSpec()
        spec.CopyFrom(request.spec)
        workflow_id = check_identifier(spec.workflow_id, WORKFLOW, field="workflow_id")
        workflow = self.get_workflow(workflow_id)
        spec.workflow_id.CopyFrom(workflow_id)
        identifier = check_identifier(request.id, LAUNCH_PLAN)
        self.projects.require_active(identifier.project, identifier.domain)
        validate_labels(spec.labels)
        interface = workflow.closure.compiled_workflow.primary.template.interface
        expected = self.expected_inputs(spec, interface)
        self._validate_schedule(spec, expected)
        spec.default_inputs.CopyFrom(expected)
        self.store_launch_plan(identifier, spec, expected, interface.outputs, workflow_id)

    def store_launch_plan(self, identifier, spec, expected, expected_outputs, workflow_id) -> None:
        now = to_timestamp(now_ns())
        launch_plan = launch_plan_pb2.LaunchPlan(
            id=identifier,
            spec=spec,
            closure=launch_plan_pb2.LaunchPlanClosure(
                state=launch_plan_pb2.INACTIVE,
                expected_inputs=expected,
                expected_outputs=expected_outputs,
                created_at=now,
                updated_at=now,
            ),
        )
        workflow_row = self.row_id(WORKFLOW, workflow_id) or 0
        schedule = spec.entity_metadata.schedule
        schedule_type = "NONE"
        if schedule.cron_expression or schedule.HasField("cron_schedule"):
            schedule_type = "CRON"
        elif schedule.HasField("rate"):
            schedule_type = "RATE"
        with self.db.transaction() as conn:
            self._insert(
                conn,
                LAUNCH_PLAN,
                identifier,
                spec,
                {
                    "spec": spec.SerializeToString(),
                    "closure": launch_plan.SerializeToString(),
                    "workflow_id": workflow_row,
                    "state": launch_plan_pb2.INACTIVE,
                    "schedule_type": schedule_type,
                },
                lambda: self.get_launch_plan(identifier).spec,
            )

    @staticmethod
    def expected_inputs(
        spec: launch_plan_pb2.LaunchPlanSpec, interface: interface_pb2.TypedInterface
    ) -> interface_pb2.ParameterMap:
        """Default inputs plus every workflow input that is neither fixed nor defaulted."""
        variables = interface.inputs.variables
        for name, literal in spec.fixed_inputs.literals.items():
            if name not in variables:
                raise invalid(f"unexpected fixed_input {name}")
            if not literal_fits(literal, variables[name].type):
                raise invalid(
                    f"invalid fixed_input wrong type {name}, expected "
                    f"{describe(variables[name].type)}"
                )
        expected = interface_pb2.ParameterMap()
        for name, parameter in spec.default_inputs.parameters.items():
            if name not in variables:
                raise invalid(f"unexpected default_input {name}")
            if not parameter.HasField("var") or not parameter.var.HasField("type"):
                raise invalid(f"default_input {name} has no type")
            if not parameter.HasField("default") and not parameter.required:
                if parameter.WhichOneof("behavior") is None:
                    raise invalid(f"default_input {name} has neither default, nor is required")
            if not type_fits(parameter.var.type, variables[name].type):
                raise invalid(
                    f"invalid default_input wrong type {name}, expected "
                    f"{describe(variables[name].type)}, got {describe(parameter.var.type)}"
                )
            if parameter.HasField("default") and not literal_fits(
                parameter.default, variables[name].type
            ):
                raise invalid(
                    f"invalid default_input wrong type {name}, expected "
                    f"{describe(variables[name].type)}"
                )
            expected.parameters[name].CopyFrom(parameter)
        for name, variable in variables.items():
            if name in spec.fixed_inputs.literals or name in expected.parameters:
                continue
            expected.parameters[name].CopyFrom(interface_pb2.Parameter(var=variable, required=True))
        return expected

    @staticmethod
    def _validate_schedule(spec, expected: interface_pb2.ParameterMap) -> None:
        """Checks a schedule as flyteadmin does; the sandbox stores it but never triggers it."""
        schedule: schedule_pb2.Schedule = spec.entity_metadata.schedule
        cron = schedule.cron_schedule.schedule or schedule.cron_expression
        if not cron and not schedule.HasField("rate"):
            return
        kickoff = schedule.kickoff_time_input_arg
        for name, parameter in expected.parameters.items():
            if parameter.required and name != kickoff:
                raise invalid(
                    f"cannot create a launch plan with a schedule and required input {name} "
                    "other than the kickoff time argument"
                )
        if kickoff:
            parameter = expected.parameters.get(kickoff)
            if parameter is None:
                raise invalid(f"kickoff_time_input_arg {kickoff} is not an input")
            if parameter.var.type.simple != 5:
                raise invalid(f"kickoff_time_input_arg {kickoff} must be a DATETIME input")
        if cron:
            aliases = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"}
            if cron not in aliases and (len(cron.split()) != 5 or not croniter.is_valid(cron)):
                raise invalid(f"invalid cron expression {cron!r}: expected five fields")
        elif schedule.rate.value <= 0:
            raise invalid("schedule rate must be a positive value")

    def get_launch_plan(self, identifier: identifier_pb2.Identifier) -> launch_plan_pb2.LaunchPlan:
        row = self._row(LAUNCH_PLAN, identifier)
        if row is None:
            raise self._missing(LAUNCH_PLAN, identifier)
        return self._launch_plan(row)

    @staticmethod
    def _launch_plan(row) -> launch_plan_pb2.LaunchPlan:
        launch_plan = launch_plan_pb2.LaunchPlan.FromString(row["closure"])
        launch_plan.closure.state = row["state"]
        launch_plan.closure.updated_at.CopyFrom(to_timestamp(row["updated_at"]))
        return launch_plan

    def update_launch_plan(self, request: launch_plan_pb2.LaunchPlanUpdateRequest) -> None:
        identifier = identifier_pb2.Identifier()
        identifier.CopyFrom(request.id)
        if identifier.resource_type == identifier_pb2.UNSPECIFIED:
            identifier.resource_type = LAUNCH_PLAN
        if request.state not in (launch_plan_pb2.ACTIVE, launch_plan_pb2.INACTIVE):
            raise invalid(f"unrecognized launch plan state {request.state}")
        if request.state == launch_plan_pb2.INACTIVE:
            identifier = check_identifier(identifier, LAUNCH_PLAN)
        row = self._row(LAUNCH_PLAN, identifier)
        if row is None:
            raise self._missing(LAUNCH_PLAN, identifier)
        now = now_ns()
        with self.db.transaction() as conn:
            if request.state == launch_plan_pb2.ACTIVE:
                conn.execute(
                    "UPDATE launch_plans SET state = ?, updated_at = ? WHERE project = ? AND "
                    "domain = ? AND name = ? AND state = ? AND id <> ?",
                    (
                        launch_plan_pb2.INACTIVE,
                        now,
                        identifier.project,
                        identifier.domain,
                        identifier.name,
                        launch_plan_pb2.ACTIVE,
                        row["id"],
                    ),
                )
            conn.execute(
                "UPDATE launch_plans SET state = ?, updated_at = ? WHERE id = ?",
                (request.state, now, row["id"]),
            )

    def get_active_launch_plan(
        self, request: launch_plan_pb2.ActiveLaunchPlanRequest
    ) -> launch_plan_pb2.LaunchPlan:
        for part in ("project", "domain", "name"):
            if not getattr(request.id, part):
                raise missing(part)
        row = self.db.query_one(
            "SELECT * FROM launch_plans WHERE project = ? AND domain = ? AND name = ? "
            "AND state = ?",
            (request.id.project, request.id.domain, request.id.name, launch_plan_pb2.ACTIVE),
        )
        if row is None:
            raise not_found("No active launch plan could be found")
        return self._launch_plan(row)

    def list_launch_plans(
        self, request: common_pb2.ResourceListRequest, rpc: str = "ListLaunchPlans"
    ) -> launch_plan_pb2.LaunchPlanList:
        rows, token = self._list(LAUNCH_PLAN, request, rpc)
        return launch_plan_pb2.LaunchPlanList(
            launch_plans=[self._launch_plan(row) for row in rows], token=token
        )

    def list_active_launch_plans(
        self, request: launch_plan_pb2.ActiveLaunchPlanListRequest
    ) -> launch_plan_pb2.LaunchPlanList:
        listing_request = common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=request.project, domain=request.domain),
            limit=request.limit,
            token=request.token,
            filters=f"eq(state,{launch_plan_pb2.ACTIVE})",
        )
        if request.HasField("sort_by"):
            listing_request.sort_by.CopyFrom(request.sort_by)
        return self.list_launch_plans(listing_request, rpc="ListActiveLaunchPlans")

    # --- single-task executions ---------------------------------------------------------------

    def ensure_flytegen(
        self, task: task_pb2.Task
    ) -> tuple[identifier_pb2.Identifier, compiler_pb2.CompiledWorkflowClosure]:
        """Creates (once) the ``.flytegen.<task>`` workflow and launch plan of a task."""
        template = task.closure.compiled_task.template
        task_id = template.id
        workflow_id = identifier_pb2.Identifier(
            resource_type=WORKFLOW,
            project=task_id.project,
            domain=task_id.domain,
            name=FLYTEGEN_PREFIX + task_id.name,
            version=task_id.version,
        )
        with self.db.transaction():
            existing = self._row(WORKFLOW, workflow_id)
            if existing is not None:
                workflow = workflow_pb2.Workflow.FromString(existing["closure"])
                return workflow_id, workflow.closure.compiled_workflow
            return workflow_id, self._create_flytegen(template, workflow_id)

    def _create_flytegen(self, template, workflow_id) -> compiler_pb2.CompiledWorkflowClosure:
        task_id = template.id
        node_id = flytegen_node_id(task_id.name)
        retries = template.metadata.retries.retries or 3
        node = core_workflow_pb2.Node(
            id=node_id,
            metadata=core_workflow_pb2.NodeMetadata(name=node_id),
            task_node=core_workflow_pb2.TaskNode(reference_id=task_id),
        )
        node.metadata.retries.retries = retries
        if template.metadata.HasField("timeout"):
            node.metadata.timeout.CopyFrom(template.metadata.timeout)
        for name in template.interface.inputs.variables:
            node.inputs.add(var=name).binding.promise.CopyFrom(_promise("", name))
        workflow_template = core_workflow_pb2.WorkflowTemplate(
            id=workflow_id, interface=template.interface, nodes=[node]
        )
        for name in template.interface.outputs.variables:
            workflow_template.outputs.add(var=name).binding.promise.CopyFrom(
                _promise(node_id, name)
            )
        closure = self.compiler.compile(workflow_template, [])
        launch_plan_id = identifier_pb2.Identifier()
        launch_plan_id.CopyFrom(workflow_id)
        launch_plan_id.resource_type = LAUNCH_PLAN
        # flyteadmin's quirk, kept: the generated launch plan names the task, not the workflow.
        spec_workflow_id = identifier_pb2.Identifier()
        spec_workflow_id.CopyFrom(workflow_id)
        spec_workflow_id.name = task_id.name
        spec = launch_plan_pb2.LaunchPlanSpec(workflow_id=spec_workflow_id)
        expected = self.expected_inputs(spec, template.interface)
        spec.default_inputs.CopyFrom(expected)
        with self.db.transaction() as conn:
            for resource_type in (WORKFLOW, LAUNCH_PLAN):
                conn.execute(
                    "INSERT OR IGNORE INTO named_entity_metadata (resource_type, project, domain, "
                    "name, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        resource_type,
                        workflow_id.project,
                        workflow_id.domain,
                        workflow_id.name,
                        common_pb2.SYSTEM_GENERATED,
                        now_ns(),
                        now_ns(),
                    ),
                )
            self.store_workflow(workflow_id, closure)
            self.store_launch_plan(
                launch_plan_id, spec, expected, template.interface.outputs, workflow_id
            )
        return closure

    # --- named entities -----------------------------------------------------------------------

    def _named_entity(self, resource_type, project, domain, name) -> common_pb2.NamedEntity:
        meta = self.db.query_one(
            "SELECT * FROM named_entity_metadata WHERE resource_type = ? AND project = ? AND "
            "domain = ? AND name = ?",
            (resource_type, project, domain, name),
        )
        entity = common_pb2.NamedEntity(
            resource_type=resource_type,
            id=common_pb2.NamedEntityIdentifier(project=project, domain=domain, name=name),
        )
        if meta is not None:
            entity.metadata.description = meta["description"]
            entity.metadata.state = meta["state"]
        return entity

    def _require_named_entity(self, resource_type, identifier) -> None:
        if resource_type not in _TABLES:
            raise missing("resource_type")
        for part in ("project", "domain", "name"):
            if not getattr(identifier, part):
                raise missing(part)
        if not self.db.query_one(
            f"SELECT 1 FROM {_TABLES[resource_type]} WHERE project = ? AND domain = ? AND name = ?",
            (identifier.project, identifier.domain, identifier.name),
        ):
            raise not_found(
                f"missing entity of type {_TYPE_NAMES[resource_type]} with identifier "
                f"{identifier.project}:{identifier.domain}:{identifier.name}"
            )

    def get_named_entity(self, request: common_pb2.NamedEntityGetRequest) -> common_pb2.NamedEntity:
        self._require_named_entity(request.resource_type, request.id)
        return self._named_entity(
            request.resource_type, request.id.project, request.id.domain, request.id.name
        )

    def update_named_entity(self, request: common_pb2.NamedEntityUpdateRequest) -> None:
        self._require_named_entity(request.resource_type, request.id)
        if (
            request.metadata.state == common_pb2.NAMED_ENTITY_ARCHIVED
            and request.resource_type not in (TASK, WORKFLOW)
        ):
            raise invalid("only tasks and workflows may be archived")
        now = now_ns()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO named_entity_metadata (resource_type, project, domain, name, "
                "description, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (resource_type, project, domain, name) DO UPDATE SET "
                "description = excluded.description, state = excluded.state, "
                "updated_at = excluded.updated_at",
                (
                    request.resource_type,
                    request.id.project,
                    request.id.domain,
                    request.id.name,
                    request.metadata.description,
                    request.metadata.state,
                    now,
                    now,
                ),
            )

    def list_named_entities(
        self, request: common_pb2.NamedEntityListRequest
    ) -> common_pb2.NamedEntityList:
        if request.resource_type not in _TABLES:
            raise missing("resource_type")
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        limit, offset = q.page(request.limit, request.token, rpc="ListNamedEntities")
        table = _TABLES[request.resource_type]
        listing = q.Listing(q.NAMED_ENTITY, "e")
        query = q.Query()
        query.add("e.project = ?", request.project)
        query.add("e.domain = ?", request.domain)
        if request.filters:
            q.compile_filters(listing, request.filters, query)
        else:
            query.add("e.name NOT LIKE ?", FLYTEGEN_PREFIX + "%")
        sort = request.sort_by if request.HasField("sort_by") else None
        order = q.order_by(listing, sort, default="ORDER BY e.name ASC")
        rows = self.db.query(
            "SELECT * FROM (SELECT x.project AS project, x.domain AS domain, x.name AS name, "
            f"{request.resource_type} AS resource_type, COALESCE(m.description, '') AS "
            "description, COALESCE(m.state, 0) AS state, MIN(x.id) AS id FROM "
            f"{table} x LEFT JOIN named_entity_metadata m ON m.resource_type = "
            f"{request.resource_type} AND m.project = x.project AND m.domain = x.domain AND "
            f"m.name = x.name GROUP BY x.project, x.domain, x.name) e {query.sql()} {order} "
            "LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return common_pb2.NamedEntityList(
            entities=[
                self._named_entity(request.resource_type, r["project"], r["domain"], r["name"])
                for r in rows
            ],
            token=q.next_token(limit, offset, len(rows)),
        )


def _promise(node_id: str, var: str) -> types_pb2.OutputReference:
    return types_pb2.OutputReference(node_id=node_id, var=var)
