"""Executions, node executions and task executions: created by RPCs, advanced by events.

This is the admin half of the sandbox. CreateExecution validates and records an execution, then
hands it to the engine; from then on the engine reports progress with workflow, node and task
events (flyteidl's event protos, as propeller sends them to flyteadmin) and every closure a
client reads is built from those events by the rules of flyteadmin.
"""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
from collections.abc import Callable
from typing import Any

from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    task_execution_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import (
    catalog_pb2,
    compiler_pb2,
    identifier_pb2,
    literals_pb2,
    types_pb2,
)
from flyteidl.core import (
    execution_pb2 as core_execution_pb2,
)
from flyteidl.event import event_pb2
from google.protobuf import struct_pb2

from flyte_bridge.sandbox import query as q
from flyte_bridge.sandbox.data_limits import DataLimits
from flyte_bridge.sandbox.db import (
    Database,
    from_timestamp,
    now_ns,
    to_duration,
    to_timestamp,
)
from flyte_bridge.sandbox.interfaces import RecordedProgress
from flyte_bridge.sandbox.literal_types import describe, literal_fits
from flyte_bridge.sandbox.projects import Projects, validate_labels
from flyte_bridge.sandbox.registry import (
    LAUNCH_PLAN,
    TASK,
    WORKFLOW,
    Registry,
    check_identifier,
)
from flyte_bridge.sandbox.resume import close_in_flight, restart_error
from flyte_bridge.sandbox.signals import Signals
from flyte_bridge.sandbox.status import (
    AdminError,
    already_exists,
    failed_precondition,
    invalid,
    missing,
    not_found,
    resource_exhausted,
)
from flyte_bridge.sandbox.storage import DataStore
from flyte_bridge.sandbox.task_metadata import merge_logs, merge_metadata
from flyte_bridge.sandbox.time_values import invalid_time_value

logger = logging.getLogger(__name__)

WorkflowPhase = core_execution_pb2.WorkflowExecution.Phase
NodePhase = core_execution_pb2.NodeExecution.Phase
TaskPhase = core_execution_pb2.TaskExecution.Phase

WORKFLOW_TERMINAL = {
    core_execution_pb2.WorkflowExecution.SUCCEEDED,
    core_execution_pb2.WorkflowExecution.FAILED,
    core_execution_pb2.WorkflowExecution.ABORTED,
    core_execution_pb2.WorkflowExecution.TIMED_OUT,
}
NODE_TERMINAL = {
    core_execution_pb2.NodeExecution.SUCCEEDED,
    core_execution_pb2.NodeExecution.FAILED,
    core_execution_pb2.NodeExecution.TIMED_OUT,
    core_execution_pb2.NodeExecution.ABORTED,
    core_execution_pb2.NodeExecution.SKIPPED,
    core_execution_pb2.NodeExecution.RECOVERED,
}
TASK_TERMINAL = {
    core_execution_pb2.TaskExecution.SUCCEEDED,
    core_execution_pb2.TaskExecution.FAILED,
    core_execution_pb2.TaskExecution.ABORTED,
}
_NAME_PATTERN = re.compile(r"^[a-z][a-z\-0-9]*$")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
DEFAULT_MAX_PARALLELISM = 25
LIST_ERROR_LIMIT = 100

_EXECUTION_LISTING = q.Listing(
    q.EXECUTION,
    "e",
    joins={
        "launch_plan": ("l", "JOIN launch_plans l ON l.id = e.launch_plan_id"),
        "workflow": ("w", "JOIN workflows w ON w.id = e.workflow_id"),
        "task": ("t", "JOIN tasks t ON t.id = e.task_id"),
    },
    tag_owner="e.id",
)
_EXECUTION_JOIN = (
    "x",
    "JOIN executions x ON x.execution_project = {a}.execution_project AND "
    "x.execution_domain = {a}.execution_domain AND x.execution_name = {a}.execution_name",
)
_NODE_LISTING = q.Listing(
    q.NODE_EXECUTION,
    "n",
    joins={"execution": (_EXECUTION_JOIN[0], _EXECUTION_JOIN[1].format(a="n"))},
)
_TASK_LISTING = q.Listing(
    q.TASK_EXECUTION,
    "te",
    joins={
        "execution": (_EXECUTION_JOIN[0], _EXECUTION_JOIN[1].format(a="te")),
        "task": (
            "t",
            "LEFT JOIN tasks t ON t.project = te.project AND t.domain = te.domain AND "
            "t.name = te.name AND t.version = te.version",
        ),
        "node_execution": ("n", "JOIN node_executions n ON n.id = te.node_execution_id"),
    },
)


def enum_name(enum, value: int) -> str:
    """The name of an enum value, or the number itself when the value is not defined."""
    try:
        return enum.Name(value)
    except ValueError:
        return str(value)


def _check_phase(enum, phase: int) -> None:
    if phase not in enum.values():
        raise invalid(f"unknown phase {phase} in event")


def generate_name() -> str:
    """A flyteadmin-style generated execution name: ``a`` and 19 random characters."""
    return "a" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(19))


def trim_message(message: str, limit: int = LIST_ERROR_LIMIT) -> str:
    """The message cut to ``limit`` bytes of valid UTF-8, as list responses carry it."""
    encoded = message.encode()
    if len(encoded) <= limit:
        return message
    return encoded[:limit].decode("utf-8", errors="ignore")


def check_execution_id(
    execution_id: identifier_pb2.WorkflowExecutionIdentifier, field: str = "execution_id"
) -> None:
    if not execution_id.project:
        raise missing("project")
    if not execution_id.domain:
        raise missing("domain")
    if not execution_id.name:
        raise missing("name")


def _show_execution(execution_id: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return f"project:{execution_id.project} domain:{execution_id.domain} name:{execution_id.name}"


def _show_node(node_id: identifier_pb2.NodeExecutionIdentifier) -> str:
    return f"{node_id.node_id} of {_show_execution(node_id.execution_id)}"


class Executions:
    """Executions and their node and task executions; also the engine's ControlPlane.

    ``data_limits`` decides which stored maps Get*Data inlines and which inline event data is
    refused (see :mod:`~flyte_bridge.sandbox.data_limits`); ``download_link`` signs the URL of a
    stored map for the ``UrlBlob`` of a Get*Data response (the native URI when not given).
    """

    def __init__(
        self,
        db: Database,
        store: DataStore,
        projects: Projects,
        registry: Registry,
        signals: Signals,
        data_limits: DataLimits | None = None,
        download_link: Callable[[str], str] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.projects = projects
        self.registry = registry
        self.signals = signals
        self.data_limits = data_limits or DataLimits()
        self.download_link = download_link or (lambda uri: uri)
        self.engine: Any = None

    # --- ControlPlane: registry and signals -----------------------------------------------------

    def get_task(self, task_id: identifier_pb2.Identifier) -> task_pb2.Task:
        return self.registry.get_task(task_id)

    def get_launch_plan(self, launch_plan_id: identifier_pb2.Identifier):
        return self.registry.get_launch_plan(launch_plan_id)

    def get_workflow(self, workflow_id: identifier_pb2.Identifier) -> workflow_pb2.Workflow:
        return self.registry.get_workflow(workflow_id)

    def get_or_create_signal(
        self, signal_id: identifier_pb2.SignalIdentifier, signal_type: types_pb2.LiteralType
    ) -> literals_pb2.Literal | None:
        signal = self.signals.get_or_create(signal_id, signal_type)
        return signal.value if signal.HasField("value") else None

    # --- create ---------------------------------------------------------------------------------

    def create_execution(
        self,
        request: execution_pb2.ExecutionCreateRequest,
        *,
        source_execution: int | None = None,
        user_inputs: literals_pb2.LiteralMap | None = None,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        """Validates, records and launches an execution (CreateExecution)."""
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        name = request.name
        if name:
            if len(name) > 63:
                raise invalid("size of name exceeded length 63")
            if not _NAME_PATTERN.match(name.lower()):
                raise invalid(
                    f"invalid name format: {name}, does not match regex '{_NAME_PATTERN.pattern}'"
                )
        else:
            name = generate_name()
        self.projects.require_active(request.project, request.domain)
        if not request.HasField("spec"):
            raise missing("spec")
        reference = request.spec.launch_plan
        for part in ("project", "domain", "name", "version"):
            if not getattr(reference, part):
                raise missing(f"launch_plan {part}")
        if reference.resource_type not in (LAUNCH_PLAN, TASK):
            raise invalid("Invalid reference entity resource type")
        inputs = request.inputs if request.inputs.literals else request.spec.inputs
        self._check_literal_map(inputs)
        problem = invalid_time_value(request.spec, "spec")
        if problem:
            raise invalid(problem)
        validate_labels(request.spec.labels)
        execution_id = identifier_pb2.WorkflowExecutionIdentifier(
            project=request.project, domain=request.domain, name=name
        )
        if self._execution_row(execution_id) is not None:
            raise already_exists(f"execution with name {name} already exists")

        parent_row = None
        metadata = request.spec.metadata
        if metadata.HasField("parent_node_execution"):
            parent_row = self._node_row(metadata.parent_node_execution)
            if parent_row is None:
                raise not_found(
                    "missing entity of type node execution with identifier "
                    f"{_show_node(metadata.parent_node_execution)}"
                )

        launch_plan = None
        task_row_id = None
        if reference.resource_type == LAUNCH_PLAN:
            launch_plan = self.registry.get_launch_plan(reference)
            workflow_id = launch_plan.spec.workflow_id
            workflow = self.registry.get_workflow(workflow_id)
            closure = workflow.closure.compiled_workflow
            expected = launch_plan.closure.expected_inputs
            fixed = launch_plan.spec.fixed_inputs
        else:
            task = self.registry.get_task(reference)
            workflow_id, closure = self.registry.ensure_flytegen(task)
            task_row_id = self.registry.row_id(TASK, reference)
            expected = self.registry.expected_inputs(
                launch_plan_pb2.LaunchPlanSpec(), task.closure.compiled_task.template.interface
            )
            fixed = literals_pb2.LiteralMap()
        computed = self._computed_inputs(inputs, expected, fixed)
        # Launch plan concurrency policies are stored but not enforced by the sandbox.
        spec = self._resolve_spec(request.spec, launch_plan, execution_id, parent_row)
        return self._record_and_launch(
            execution_id,
            spec,
            closure,
            workflow_id,
            computed,
            user_inputs if user_inputs is not None else inputs,
            launch_plan_row=self.registry.row_id(LAUNCH_PLAN, reference) if launch_plan else None,
            task_row=task_row_id,
            source_execution=source_execution,
            parent_node_row=parent_row["id"] if parent_row is not None else None,
        )

    @staticmethod
    def _check_literal_map(inputs: literals_pb2.LiteralMap) -> None:
        for key, literal in inputs.literals.items():
            if not key:
                raise invalid("inputs: a literal has an empty name")
            if literal.WhichOneof("value") is None and not literal.HasField("offloaded_metadata"):
                raise invalid(f"inputs: literal {key} has no value")
            problem = invalid_time_value(literal)
            if problem:
                raise invalid(f"inputs: literal {key}: {problem}")

    @staticmethod
    def _computed_inputs(
        inputs: literals_pb2.LiteralMap,
        expected: Any,
        fixed: literals_pb2.LiteralMap,
    ) -> literals_pb2.LiteralMap:
        """The inputs the workflow runs with: the caller's, then defaults, then fixed inputs."""
        computed = literals_pb2.LiteralMap()
        for name, literal in inputs.literals.items():
            parameter = expected.parameters.get(name)
            if parameter is None:
                raise invalid(f"invalid input {name}")
            if not literal_fits(literal, parameter.var.type):
                raise invalid(
                    f"invalid {name} input wrong type. Expected {describe(parameter.var.type)}"
                )
            computed.literals[name].CopyFrom(literal)
        for name, parameter in expected.parameters.items():
            if name in computed.literals:
                continue
            if parameter.HasField("default"):
                computed.literals[name].CopyFrom(parameter.default)
            elif parameter.required:
                raise invalid(f"expected_inputs {name} missing")
        for name, literal in fixed.literals.items():
            computed.literals[name].CopyFrom(literal)
        return computed

    def _resolve_spec(self, requested, launch_plan, execution_id, parent_row):
        spec = execution_pb2.ExecutionSpec()
        spec.CopyFrom(requested)
        spec.ClearField("inputs")
        metadata = spec.metadata
        # Authentication is off in the sandbox: flyteadmin records an empty principal then.
        metadata.principal = ""
        metadata.system_metadata.namespace = f"{execution_id.project}-{execution_id.domain}"
        if parent_row is not None:
            parent = self._execution_row_by_key(
                parent_row["execution_project"],
                parent_row["execution_domain"],
                parent_row["execution_name"],
            )
            if parent is not None:
                parent_spec = execution_pb2.ExecutionSpec.FromString(parent["spec"])
                metadata.nesting = parent_spec.metadata.nesting + 1
                metadata.principal = parent_spec.metadata.principal
        if launch_plan is not None:
            lp_spec = launch_plan.spec
            if not spec.labels.values and lp_spec.labels.values:
                spec.labels.CopyFrom(lp_spec.labels)
            if not spec.annotations.values and lp_spec.annotations.values:
                spec.annotations.CopyFrom(lp_spec.annotations)
            if not spec.HasField("security_context") and lp_spec.HasField("security_context"):
                spec.security_context.CopyFrom(lp_spec.security_context)
            if (
                not spec.raw_output_data_config.output_location_prefix
                and lp_spec.raw_output_data_config.output_location_prefix
            ):
                spec.raw_output_data_config.CopyFrom(lp_spec.raw_output_data_config)
            if spec.max_parallelism <= 0 < lp_spec.max_parallelism:
                spec.max_parallelism = lp_spec.max_parallelism
            if not spec.HasField("interruptible") and lp_spec.HasField("interruptible"):
                spec.interruptible.CopyFrom(lp_spec.interruptible)
            if not spec.overwrite_cache:
                spec.overwrite_cache = lp_spec.overwrite_cache
            if not spec.envs.values and lp_spec.envs.values:
                spec.envs.CopyFrom(lp_spec.envs)
            if (
                not spec.HasField("notifications")
                and not spec.disable_all
                and lp_spec.entity_metadata.notifications
            ):
                spec.notifications.notifications.extend(lp_spec.entity_metadata.notifications)
        if spec.max_parallelism <= 0:
            # Admin's MergeIntoExecConfig takes a level's value only when it is > 0: a zero or
            # negative max_parallelism (request or launch plan) means "not set", not "no limit".
            spec.max_parallelism = DEFAULT_MAX_PARALLELISM
        return spec

    def _record_and_launch(
        self,
        execution_id,
        spec,
        compiled: compiler_pb2.CompiledWorkflowClosure,
        workflow_id,
        computed: literals_pb2.LiteralMap,
        user_inputs: literals_pb2.LiteralMap,
        *,
        launch_plan_row,
        task_row,
        source_execution,
        parent_node_row,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        now = now_ns()
        created = to_timestamp(now)
        closure = execution_pb2.ExecutionClosure(
            phase=core_execution_pb2.WorkflowExecution.UNDEFINED,
            created_at=created,
            updated_at=created,
            workflow_id=workflow_id,
            state_change_details=execution_pb2.ExecutionStateChangeDetails(
                state=execution_pb2.EXECUTION_ACTIVE, occurred_at=created, principal=""
            ),
        )
        if spec.HasField("notifications"):
            # Notifications are recorded on the closure but never sent by the sandbox.
            closure.notifications.extend(spec.notifications.notifications)
        base = ("metadata", execution_id.project, execution_id.domain, execution_id.name)
        inputs_uri = self.store.uri(*base, "inputs")
        user_inputs_uri = self.store.uri(*base, "user_inputs")
        self.store.write_proto(inputs_uri, computed)
        self.store.write_proto(user_inputs_uri, user_inputs)
        workflow_row = self.registry.row_id(WORKFLOW, workflow_id)
        with self.db.transaction() as conn:
            if self._execution_row(execution_id) is not None:
                raise already_exists(f"execution with name {execution_id.name} already exists")
            cursor = conn.execute(
                "INSERT INTO executions (execution_project, execution_domain, execution_name, "
                "launch_plan_id, workflow_id, task_id, phase, closure, spec, "
                "execution_created_at, execution_updated_at, mode, source_execution_id, "
                "parent_node_execution_id, cluster, inputs_uri, user_inputs_uri, user, state, "
                "launch_entity, created_at, updated_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution_id.project,
                    execution_id.domain,
                    execution_id.name,
                    launch_plan_row,
                    workflow_row,
                    task_row,
                    "UNDEFINED",
                    closure.SerializeToString(),
                    spec.SerializeToString(),
                    now,
                    now,
                    int(spec.metadata.mode),
                    source_execution,
                    parent_node_row,
                    "sandbox",
                    inputs_uri,
                    user_inputs_uri,
                    "",
                    execution_pb2.EXECUTION_ACTIVE,
                    "task" if task_row is not None else "launch_plan",
                    now,
                    now,
                ),
            )
            row_id = cursor.lastrowid
            tags = [(row_id, key, value) for key, value in spec.labels.values.items()]
            tags += [(row_id, tag, "") for tag in spec.tags]
            if tags:
                conn.executemany(
                    "INSERT INTO execution_tags (execution_id, key, value) VALUES (?, ?, ?)", tags
                )
        logger.info("created execution %s", _show_execution(execution_id))
        self._launch(execution_id, compiled, computed, spec)
        return execution_id

    def _launch(self, execution_id, compiled, computed, spec) -> None:
        engine = self.engine
        if engine is None:
            logger.warning("no engine: execution %s stays UNDEFINED", execution_id.name)
            return
        try:
            engine.start(execution_id, compiled, computed, spec)
        except Exception as err:  # noqa: BLE001 - a refused launch fails the execution
            logger.exception("engine refused execution %s", execution_id.name)
            error = core_execution_pb2.ExecutionError(
                code="INTERNAL",
                message=f"the sandbox's executor could not start the execution: {err}",
                kind=core_execution_pb2.ExecutionError.SYSTEM,
            )
            self._force_phase(execution_id, core_execution_pb2.WorkflowExecution.FAILED, error)

    def _force_phase(self, execution_id, phase, error=None) -> None:
        now = now_ns()
        with self.db.transaction() as conn:
            row = self._execution_row(execution_id)
            if row is None:
                return
            closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
            closure.phase = phase
            closure.updated_at.CopyFrom(to_timestamp(now))
            if error is not None:
                closure.error.CopyFrom(error)
            conn.execute(
                "UPDATE executions SET phase = ?, closure = ?, execution_updated_at = ?, "
                "updated_at = ?, error_kind = ?, error_code = ? WHERE id = ?",
                (
                    enum_name(WorkflowPhase, phase),
                    closure.SerializeToString(),
                    now,
                    now,
                    enum_name(core_execution_pb2.ExecutionError.ErrorKind, error.kind)
                    if error
                    else None,
                    error.code if error else None,
                    row["id"],
                ),
            )

    def create_child_execution(
        self,
        launch_plan_id: identifier_pb2.Identifier,
        inputs: literals_pb2.LiteralMap,
        parent_node_execution: identifier_pb2.NodeExecutionIdentifier,
        name: str,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        parent = parent_node_execution.execution_id
        request = execution_pb2.ExecutionCreateRequest(
            project=parent.project, domain=parent.domain, name=name, inputs=inputs
        )
        request.spec.launch_plan.CopyFrom(launch_plan_id)
        request.spec.metadata.mode = execution_pb2.ExecutionMetadata.CHILD_WORKFLOW
        request.spec.metadata.parent_node_execution.CopyFrom(parent_node_execution)
        parent_row = self._execution_row(parent)
        if parent_row is not None:
            parent_spec = execution_pb2.ExecutionSpec.FromString(parent_row["spec"])
            if parent_spec.raw_output_data_config.output_location_prefix:
                request.spec.raw_output_data_config.CopyFrom(parent_spec.raw_output_data_config)
            request.spec.max_parallelism = parent_spec.max_parallelism
        try:
            return self.create_execution(request)
        except AdminError as err:
            if err.code.name != "ALREADY_EXISTS":
                raise
            return identifier_pb2.WorkflowExecutionIdentifier(
                project=parent.project, domain=parent.domain, name=name
            )

    def relaunch(self, request: execution_pb2.ExecutionRelaunchRequest):
        return self._launch_again(
            request.id, request.name, execution_pb2.ExecutionMetadata.RELAUNCH, request
        )

    def recover(self, request: execution_pb2.ExecutionRecoverRequest):
        return self._launch_again(
            request.id, request.name, execution_pb2.ExecutionMetadata.RECOVERED, request
        )

    def _launch_again(self, original_id, name, mode, request):
        row = self._execution_row(original_id)
        if row is None:
            raise self._execution_missing(original_id)
        spec = execution_pb2.ExecutionSpec.FromString(row["spec"])
        spec.metadata.mode = mode
        spec.metadata.reference_execution.CopyFrom(original_id)
        spec.metadata.ClearField("parent_node_execution")
        if mode == execution_pb2.ExecutionMetadata.RELAUNCH:
            spec.overwrite_cache = request.overwrite_cache
        elif request.metadata.HasField("parent_node_execution"):
            spec.metadata.parent_node_execution.CopyFrom(request.metadata.parent_node_execution)
        user_inputs = literals_pb2.LiteralMap()
        try:
            user_inputs = self.store.read_proto(row["user_inputs_uri"], literals_pb2.LiteralMap)
        except OSError:
            logger.warning("user inputs of %s are unreadable", original_id.name)
        create = execution_pb2.ExecutionCreateRequest(
            project=original_id.project,
            domain=original_id.domain,
            name=name,
            spec=spec,
            inputs=user_inputs,
        )
        return self.create_execution(create, source_execution=row["id"])

    # --- read -----------------------------------------------------------------------------------

    def _execution_row(self, execution_id) -> sqlite3.Row | None:
        return self._execution_row_by_key(
            execution_id.project, execution_id.domain, execution_id.name
        )

    def _execution_row_by_key(self, project, domain, name) -> sqlite3.Row | None:
        return self.db.query_one(
            "SELECT * FROM executions WHERE execution_project = ? AND execution_domain = ? "
            "AND execution_name = ?",
            (project, domain, name),
        )

    def _execution_missing(self, execution_id) -> AdminError:
        return not_found(
            f"missing entity of type execution with identifier {_show_execution(execution_id)}"
        )

    @staticmethod
    def _execution(row, trim: bool = False) -> execution_pb2.Execution:
        closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
        if trim and closure.HasField("error"):
            closure.error.message = trim_message(closure.error.message)
        if (
            closure.phase == core_execution_pb2.WorkflowExecution.ABORTED
            and not closure.HasField("abort_metadata")
            and not closure.HasField("error")
        ):
            closure.abort_metadata.cause = row["abort_cause"]
        return execution_pb2.Execution(
            id=identifier_pb2.WorkflowExecutionIdentifier(
                project=row["execution_project"],
                domain=row["execution_domain"],
                name=row["execution_name"],
            ),
            spec=execution_pb2.ExecutionSpec.FromString(row["spec"]),
            closure=closure,
        )

    def get_execution(self, execution_id) -> execution_pb2.Execution:
        check_execution_id(execution_id, "id")
        row = self._execution_row(execution_id)
        if row is None:
            raise self._execution_missing(execution_id)
        return self._execution(row)

    def _read_map(self, uri: str) -> literals_pb2.LiteralMap:
        """A stored literal map; an unreadable one reads as empty, as flyteadmin does."""
        if not uri:
            return literals_pb2.LiteralMap()
        try:
            return self.store.read_proto(uri, literals_pb2.LiteralMap)
        except Exception:  # noqa: BLE001 - flyteadmin swallows blob read failures here
            logger.warning("cannot read %s", uri)
            return literals_pb2.LiteralMap()

    def _fill_data(self, response, inputs_uri: str, outputs_uri: str, output_data=None) -> None:
        """Fills a Get*Data response as flyteadmin does with signed URLs switched on.

        Every stored map gets a ``UrlBlob`` (signed link and size); the map itself is inlined in
        ``full_*`` only below the inline limit, so above it clients must follow the link. Inline
        ``output_data`` from a closure is returned only below the limit too.
        """
        for side, uri in (("inputs", inputs_uri), ("outputs", outputs_uri)):
            inline = getattr(response, f"full_{side}")
            if uri:
                size = self.store.size(uri)
                if size is not None:
                    blob = getattr(response, side)
                    blob.url = self.download_link(uri)
                    blob.bytes = size
                if size is None or self.data_limits.inlines(size):
                    inline.CopyFrom(self._read_map(uri))
            elif side == "outputs" and output_data is not None:
                if self.data_limits.inlines(output_data.ByteSize()):
                    inline.CopyFrom(output_data)

    def get_execution_data(self, execution_id) -> execution_pb2.WorkflowExecutionGetDataResponse:
        row = self._execution_row(execution_id)
        if row is None:
            raise self._execution_missing(execution_id)
        closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
        response = execution_pb2.WorkflowExecutionGetDataResponse()
        outputs_uri = ""
        output_data = None
        if closure.phase == core_execution_pb2.WorkflowExecution.SUCCEEDED:
            outputs_uri = closure.outputs.uri if closure.HasField("outputs") else ""
            output_data = closure.output_data if closure.HasField("output_data") else None
        self._fill_data(response, row["inputs_uri"], outputs_uri, output_data)
        return response

    def list_executions(
        self, request: common_pb2.ResourceListRequest
    ) -> execution_pb2.ExecutionList:
        if not request.id.project:
            raise missing("project")
        if not request.id.domain:
            raise missing("domain")
        limit, offset = q.page(request.limit, request.token, rpc="ListExecutions")
        query = q.Query()
        query.add("e.execution_project = ?", request.id.project)
        query.add("e.execution_domain = ?", request.id.domain)
        if request.id.name:
            query.add("e.execution_name = ?", request.id.name)
        q.compile_filters(_EXECUTION_LISTING, request.filters, query)
        if "state" not in query.mentioned and "execution.state" not in query.mentioned:
            query.add("e.state = ?", execution_pb2.EXECUTION_ACTIVE)
        sort = request.sort_by if request.HasField("sort_by") else None
        order = q.order_by(_EXECUTION_LISTING, sort)
        rows = self.db.query(
            f"SELECT e.* FROM executions e {query.sql()} {order} LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return execution_pb2.ExecutionList(
            executions=[self._execution(row, trim=True) for row in rows],
            token=q.next_token(limit, offset, len(rows)),
        )

    # --- terminate and archive ------------------------------------------------------------------

    def terminate(self, execution_id, cause: str) -> None:
        """Sets ABORTING and asks the engine to abort (TerminateExecution)."""
        check_execution_id(execution_id, "id")
        now = now_ns()
        with self.db.transaction() as conn:
            row = self._execution_row(execution_id)
            if row is None:
                raise self._execution_missing(execution_id)
            closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
            if closure.phase in WORKFLOW_TERMINAL:
                # flyteadmin also attaches an EventFailureReason status detail; the sandbox sends
                # the code and message only.
                raise failed_precondition(
                    "Cannot abort an already terminated workflow execution: current phase "
                    f"{enum_name(WorkflowPhase, closure.phase)}"
                )
            closure.phase = core_execution_pb2.WorkflowExecution.ABORTING
            closure.abort_metadata.CopyFrom(execution_pb2.AbortMetadata(cause=cause, principal=""))
            closure.updated_at.CopyFrom(to_timestamp(now))
            conn.execute(
                "UPDATE executions SET phase = ?, closure = ?, abort_cause = ?, "
                "execution_updated_at = ?, updated_at = ? WHERE id = ?",
                ("ABORTING", closure.SerializeToString(), cause, now, now, row["id"]),
            )
        engine = self.engine
        if engine is None:
            self._force_phase(execution_id, core_execution_pb2.WorkflowExecution.ABORTED)
            return
        engine.abort(execution_id, cause)

    def terminate_execution(self, execution_id, cause: str) -> None:
        """ControlPlane: aborts a child execution; a terminal one is left as it is."""
        try:
            self.terminate(execution_id, cause)
        except AdminError as err:
            if err.code.name not in ("FAILED_PRECONDITION", "NOT_FOUND"):
                raise

    def update(self, request: execution_pb2.ExecutionUpdateRequest) -> None:
        check_execution_id(request.id, "id")
        now = now_ns()
        with self.db.transaction() as conn:
            row = self._execution_row(request.id)
            if row is None:
                raise self._execution_missing(request.id)
            closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
            closure.state_change_details.CopyFrom(
                execution_pb2.ExecutionStateChangeDetails(
                    state=request.state, occurred_at=to_timestamp(now), principal=""
                )
            )
            conn.execute(
                "UPDATE executions SET state = ?, closure = ?, updated_at = ? WHERE id = ?",
                (int(request.state), closure.SerializeToString(), now, row["id"]),
            )

    # --- restart ------------------------------------------------------------------------------

    def resume_unfinished(self) -> tuple[int, int]:
        """Hands the executions a previous process left in flight to the engine to continue.

        An execution that was ABORTING ends ABORTED; one the engine cannot resume (it has no
        ``resume``, or refuses) ends FAILED with error code ``SandboxRestarted``. The node and
        task executions still in flight under an execution that ends here end with it.

        Returns:
            How many executions were resumed, and how many were ended.
        """
        rows = self.db.query(
            "SELECT * FROM executions WHERE phase NOT IN ('SUCCEEDED', 'FAILED', 'ABORTED', "
            "'TIMED_OUT') ORDER BY id"
        )
        resumed = ended = 0
        for row in rows:
            execution_id = identifier_pb2.WorkflowExecutionIdentifier(
                project=row["execution_project"],
                domain=row["execution_domain"],
                name=row["execution_name"],
            )
            progress = self.recorded_progress(execution_id)
            if row["phase"] == "ABORTING":
                self._end_after_restart(
                    execution_id,
                    progress,
                    core_execution_pb2.WorkflowExecution.ABORTED,
                    "the execution was aborting when the sandbox stopped",
                )
                ended += 1
                continue
            problem = self._resume(execution_id, row, progress)
            if problem is None:
                resumed += 1
                continue
            self._end_after_restart(
                execution_id,
                progress,
                core_execution_pb2.WorkflowExecution.FAILED,
                f"the sandbox restarted while this execution ran, and {problem}",
            )
            ended += 1
        return resumed, ended

    def recorded_progress(self, execution_id) -> RecordedProgress:
        """Everything recorded of an execution: its phase, node executions and task executions."""
        row = self._execution_row(execution_id)
        if row is None:
            raise self._execution_missing(execution_id)
        closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
        key = (execution_id.project, execution_id.domain, execution_id.name)
        where = "WHERE execution_project = ? AND execution_domain = ? AND execution_name = ?"
        nodes = {
            node_row["node_id"]: self._node_execution(node_row)
            for node_row in self.db.query(f"SELECT * FROM node_executions {where} ORDER BY id", key)
        }
        attempts: dict[str, list[task_execution_pb2.TaskExecution]] = {}
        for task_row in self.db.query(
            f"SELECT * FROM task_executions {where} ORDER BY node_id, retry_attempt", key
        ):
            attempts.setdefault(task_row["node_id"], []).append(self._task_execution(task_row))
        return RecordedProgress(
            phase=closure.phase,
            error=closure.error if closure.HasField("error") else None,
            nodes=nodes,
            attempts=attempts,
        )

    def _resume(self, execution_id, row, progress: RecordedProgress) -> str | None:
        """Asks the engine to continue one execution; returns why it cannot, or None."""
        resume = getattr(self.engine, "resume", None)
        if resume is None:
            return "its executor cannot resume executions"
        try:
            closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
            compiled = self.registry.get_workflow(closure.workflow_id).closure.compiled_workflow
            spec = execution_pb2.ExecutionSpec.FromString(row["spec"])
            inputs = self.store.read_proto(row["inputs_uri"], literals_pb2.LiteralMap)
            resume(execution_id, compiled, inputs, spec, progress)
        except Exception as err:  # noqa: BLE001 - whatever stops a resume fails the execution
            logger.exception("could not resume execution %s", _show_execution(execution_id))
            return f"it could not be resumed: {err}"
        logger.info("resumed execution %s", _show_execution(execution_id))
        return None

    def _end_after_restart(self, execution_id, progress, phase: int, message: str) -> None:
        error = restart_error(message)
        aborted = phase == core_execution_pb2.WorkflowExecution.ABORTED
        close_in_flight(
            execution_id,
            progress,
            record_node_event=self.record_node_event,
            record_task_event=self.record_task_event,
            node_phase=NodePhase.ABORTED if aborted else NodePhase.FAILED,
            task_phase=TaskPhase.ABORTED if aborted else TaskPhase.FAILED,
            error=error,
        )
        self._force_phase(execution_id, phase, None if aborted else error)

    # --- workflow events ------------------------------------------------------------------------

    def record_workflow_event(self, event: event_pb2.WorkflowExecutionEvent) -> None:
        self._check_output_data(event)
        execution_id = event.execution_id
        occurred = from_timestamp(event.occurred_at) or now_ns()
        phase = event.phase
        _check_phase(WorkflowPhase, phase)
        offloaded_outputs = ""
        if event.HasField("output_data"):
            offloaded_outputs = self._offload(
                event.output_data,
                execution_id.project,
                execution_id.domain,
                execution_id.name,
                "offloaded_outputs",
            )
        with self.db.transaction() as conn:
            row = self._execution_row(execution_id)
            if row is None:
                raise self._execution_missing(execution_id)
            closure = execution_pb2.ExecutionClosure.FromString(row["closure"])
            current = closure.phase
            self._check_workflow_transition(current, phase)
            closure.phase = phase
            closure.updated_at.CopyFrom(to_timestamp(occurred))
            started = row["started_at"]
            if phase == core_execution_pb2.WorkflowExecution.RUNNING and not started:
                started = occurred
                closure.started_at.CopyFrom(to_timestamp(occurred))
            duration = row["duration"]
            if phase in WORKFLOW_TERMINAL and started:
                duration = occurred - started
                closure.duration.CopyFrom(to_duration(duration))
            result = event.WhichOneof("output_result")
            if result == "output_uri":
                closure.outputs.uri = event.output_uri
            elif result == "output_data":
                closure.outputs.uri = offloaded_outputs
            elif result == "error":
                closure.error.CopyFrom(event.error)
            error_kind, error_code = row["error_kind"], row["error_code"]
            if result == "error":
                error_kind = enum_name(
                    core_execution_pb2.ExecutionError.ErrorKind, event.error.kind
                )
                error_code = event.error.code
            conn.execute(
                "UPDATE executions SET phase = ?, closure = ?, started_at = ?, duration = ?, "
                "execution_updated_at = ?, updated_at = ?, error_kind = ?, error_code = ? "
                "WHERE id = ?",
                (
                    enum_name(WorkflowPhase, phase),
                    closure.SerializeToString(),
                    started,
                    duration,
                    occurred,
                    now_ns(),
                    error_kind,
                    error_code,
                    row["id"],
                ),
            )
        logger.debug("execution %s is %s", execution_id.name, enum_name(WorkflowPhase, phase))
        if phase in WORKFLOW_TERMINAL and row["parent_node_execution_id"] and self.engine:
            self.engine.notify_execution_done(execution_id)

    @staticmethod
    def _check_workflow_transition(current: int, phase: int) -> None:
        name = WorkflowPhase.Name
        if current == phase and phase != core_execution_pb2.WorkflowExecution.QUEUED:
            raise already_exists(f"execution is already in phase {name(phase)}")
        if current in WORKFLOW_TERMINAL:
            raise failed_precondition(
                f"execution is already in terminal phase {name(current)}, cannot move to "
                f"{name(phase)}"
            )
        if (
            current == core_execution_pb2.WorkflowExecution.RUNNING
            and phase == core_execution_pb2.WorkflowExecution.QUEUED
        ):
            raise failed_precondition("cannot move a RUNNING execution back to QUEUED")
        if (
            current == core_execution_pb2.WorkflowExecution.ABORTING
            and phase not in WORKFLOW_TERMINAL
        ):
            raise failed_precondition(
                f"an ABORTING execution may only become terminal, not {name(phase)}"
            )

    # --- node executions ------------------------------------------------------------------------

    def _node_row(self, node_execution_id) -> sqlite3.Row | None:
        execution_id = node_execution_id.execution_id
        return self.db.query_one(
            "SELECT * FROM node_executions WHERE execution_project = ? AND execution_domain = ? "
            "AND execution_name = ? AND node_id = ?",
            (
                execution_id.project,
                execution_id.domain,
                execution_id.name,
                node_execution_id.node_id,
            ),
        )

    def _node_missing(self, node_execution_id) -> AdminError:
        return not_found(
            f"missing entity of type node execution with identifier {_show_node(node_execution_id)}"
        )

    def _offload(self, literal_map: literals_pb2.LiteralMap, *parts: str) -> str:
        """Writes inline event data to the store (flyteadmin's default "offload" policy).

        The parts come from the event (project, domain, name, node id), so each must be one
        plain path segment: nothing may be written outside the execution's directory.
        """
        execution_id = identifier_pb2.WorkflowExecutionIdentifier(
            project=parts[0], domain=parts[1], name=parts[2]
        )
        if self._execution_row(execution_id) is None:
            raise self._execution_missing(execution_id)  # nothing written for a missing run
        for part in parts:
            if not part or part in (".", "..") or any(c in part for c in "/\\\0"):
                raise invalid(
                    f"event identifier part {part!r} must be a non-empty name without '/', "
                    "'\\' or NUL"
                )
        uri = self.store.uri("metadata", *parts)
        self.store.write_proto(uri, literal_map)
        return uri

    def _check_output_data(self, event: Any) -> None:
        """RESOURCE_EXHAUSTED for inline event outputs above the limit, as flyteadmin answers."""
        if not event.HasField("output_data"):
            return
        size = event.output_data.ByteSize()
        if not self.data_limits.accepts_event_data(size):
            raise resource_exhausted(
                "Output data size exceeds platform configured threshold "
                f"({size} > {self.data_limits.max_inline_bytes})"
            )

    def record_node_event(self, event: event_pb2.NodeExecutionEvent) -> None:
        self._check_output_data(event)
        node_id = event.id
        execution_id = node_id.execution_id
        occurred = from_timestamp(event.occurred_at) or now_ns()
        updated = from_timestamp(event.reported_at) or occurred
        phase = event.phase
        _check_phase(NodePhase, phase)
        key = (execution_id.project, execution_id.domain, execution_id.name)
        if event.HasField("input_data"):
            input_uri = self._offload(event.input_data, *key, node_id.node_id, "offloaded_inputs")
        else:
            input_uri = event.input_uri
        output_uri = event.output_uri
        if event.HasField("output_data"):
            output_uri = self._offload(
                event.output_data, *key, node_id.node_id, "offloaded_outputs"
            )
        with self.db.transaction() as conn:
            if self._execution_row(execution_id) is None:
                raise self._execution_missing(execution_id)
            row = self._node_row(node_id)
            if row is None:
                closure = node_execution_pb2.NodeExecutionClosure(created_at=to_timestamp(occurred))
                metadata = node_execution_pb2.NodeExecutionMetaData(
                    retry_group=event.retry_group,
                    spec_node_id=event.spec_node_id or node_id.node_id,
                )
                parent_id = None
                if event.HasField("parent_node_metadata") and event.parent_node_metadata.node_id:
                    parent_key = identifier_pb2.NodeExecutionIdentifier(
                        node_id=event.parent_node_metadata.node_id, execution_id=execution_id
                    )
                    parent = self._node_row(parent_key)
                    if parent is None:
                        raise self._node_missing(parent_key)
                    parent_id = parent["id"]
                started, duration, stored_input = None, 0, ""
            else:
                closure = node_execution_pb2.NodeExecutionClosure.FromString(row["closure"])
                metadata = node_execution_pb2.NodeExecutionMetaData.FromString(
                    row["node_execution_metadata"]
                )
                parent_id = row["parent_id"]
                started, duration, stored_input = (
                    row["started_at"],
                    row["duration"],
                    row["input_uri"],
                )
                if closure.phase == phase:
                    raise already_exists(
                        f"node execution {node_id.node_id} is already in phase "
                        f"{enum_name(NodePhase, phase)}"
                    )
                if closure.phase in NODE_TERMINAL:
                    raise failed_precondition(
                        f"node execution {node_id.node_id} is already in terminal phase "
                        f"{enum_name(NodePhase, closure.phase)}"
                    )
            closure.phase = phase
            closure.updated_at.CopyFrom(to_timestamp(updated))
            if phase == core_execution_pb2.NodeExecution.RUNNING:
                started = occurred
                closure.started_at.CopyFrom(to_timestamp(occurred))
            if event.deck_uri:
                closure.deck_uri = event.deck_uri
            if phase in NODE_TERMINAL:
                if started:
                    duration = occurred - started
                    closure.duration.CopyFrom(to_duration(duration))
                result = event.WhichOneof("output_result")
                if result == "error":
                    closure.error.CopyFrom(event.error)
                elif output_uri:
                    closure.output_uri = output_uri
            for flag, value in (
                ("is_parent_node", event.is_parent),
                ("is_dynamic", event.is_dynamic),
                ("is_array", event.is_array),
                ("is_eager", event.is_eager),
            ):
                if value:
                    setattr(metadata, flag, True)
            internal_data = row["internal_data"] if row is not None else None
            target = event.WhichOneof("target_metadata")
            if target == "workflow_node_metadata" and not closure.HasField(
                "workflow_node_metadata"
            ):
                child = event.workflow_node_metadata.execution_id
                if self._execution_row(child) is None:
                    raise self._execution_missing(child)
                closure.workflow_node_metadata.executionId.CopyFrom(child)
            elif target == "task_node_metadata":
                source = event.task_node_metadata
                closure.task_node_metadata.cache_status = source.cache_status
                if source.HasField("catalog_key"):
                    closure.task_node_metadata.catalog_key.CopyFrom(source.catalog_key)
                if source.checkpoint_uri:
                    closure.task_node_metadata.checkpoint_uri = source.checkpoint_uri
                if source.HasField("dynamic_workflow"):
                    closure.dynamic_job_spec_uri = source.dynamic_workflow.dynamic_job_spec_uri
                    internal_data = source.dynamic_workflow.SerializeToString()
            error_kind = error_code = None
            if closure.HasField("error"):
                error_kind = enum_name(
                    core_execution_pb2.ExecutionError.ErrorKind, closure.error.kind
                )
                error_code = closure.error.code
            values = (
                enum_name(NodePhase, phase),
                stored_input or input_uri,
                closure.SerializeToString(),
                started,
                updated,
                duration,
                metadata.SerializeToString(),
                error_kind,
                error_code,
                enum_name(catalog_pb2.CatalogCacheStatus, closure.task_node_metadata.cache_status),
                internal_data,
                now_ns(),
            )
            if row is None:
                conn.execute(
                    "INSERT INTO node_executions (phase, input_uri, closure, started_at, "
                    "node_execution_updated_at, duration, node_execution_metadata, error_kind, "
                    "error_code, cache_status, internal_data, updated_at, execution_project, "
                    "execution_domain, execution_name, node_id, parent_id, "
                    "node_execution_created_at, created_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, *key, node_id.node_id, parent_id, occurred, now_ns()),
                )
            else:
                conn.execute(
                    "UPDATE node_executions SET phase = ?, input_uri = ?, closure = ?, "
                    "started_at = ?, node_execution_updated_at = ?, duration = ?, "
                    "node_execution_metadata = ?, error_kind = ?, error_code = ?, "
                    "cache_status = ?, internal_data = ?, updated_at = ? WHERE id = ?",
                    (*values, row["id"]),
                )

    def _node_execution(self, row, trim: bool = False) -> node_execution_pb2.NodeExecution:
        closure = node_execution_pb2.NodeExecutionClosure.FromString(row["closure"])
        if trim and closure.HasField("error"):
            closure.error.message = trim_message(closure.error.message)
        return node_execution_pb2.NodeExecution(
            id=identifier_pb2.NodeExecutionIdentifier(
                node_id=row["node_id"],
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                    project=row["execution_project"],
                    domain=row["execution_domain"],
                    name=row["execution_name"],
                ),
            ),
            input_uri=row["input_uri"],
            closure=closure,
            metadata=node_execution_pb2.NodeExecutionMetaData.FromString(
                row["node_execution_metadata"]
            ),
        )

    def get_node_execution(self, node_execution_id) -> node_execution_pb2.NodeExecution:
        row = self._node_row(node_execution_id)
        if row is None:
            raise self._node_missing(node_execution_id)
        return self._node_execution(row)

    def list_node_executions(
        self, execution_id, unique_parent_id: str = ""
    ) -> list[node_execution_pb2.NodeExecution]:
        """ControlPlane: every node execution of an execution under one parent, in order."""
        request = node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=execution_id, limit=1_000_000, unique_parent_id=unique_parent_id
        )
        return list(self.list_node_executions_page(request, trim=False).node_executions)

    def list_node_executions_page(
        self, request: node_execution_pb2.NodeExecutionListRequest, trim: bool = True
    ) -> node_execution_pb2.NodeExecutionList:
        execution_id = request.workflow_execution_id
        if not (execution_id.project and execution_id.domain and execution_id.name):
            raise missing("execution_id")
        limit, offset = q.page(request.limit, request.token, rpc="ListNodeExecutions")
        query = q.Query()
        query.add("n.execution_project = ?", execution_id.project)
        query.add("n.execution_domain = ?", execution_id.domain)
        query.add("n.execution_name = ?", execution_id.name)
        if request.unique_parent_id:
            parent = self._node_row(
                identifier_pb2.NodeExecutionIdentifier(
                    node_id=request.unique_parent_id, execution_id=execution_id
                )
            )
            if parent is None:
                raise not_found(
                    f"missing entity of type node execution with identifier "
                    f"{request.unique_parent_id} of {_show_execution(execution_id)}"
                )
            query.add("n.parent_id = ?", parent["id"])
        else:
            query.add("n.parent_id IS NULL AND n.parent_task_execution_id IS NULL")
        q.compile_filters(_NODE_LISTING, request.filters, query)
        sort = request.sort_by if request.HasField("sort_by") else None
        order = q.order_by(_NODE_LISTING, sort)
        rows = self.db.query(
            f"SELECT n.* FROM node_executions n {query.sql()} {order} LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return node_execution_pb2.NodeExecutionList(
            node_executions=[self._node_execution(row, trim=trim) for row in rows],
            token=q.next_token(limit, offset, len(rows)),
        )

    def list_node_executions_for_task(
        self, request: node_execution_pb2.NodeExecutionForTaskListRequest
    ) -> node_execution_pb2.NodeExecutionList:
        task_row = self._task_row(self._check_task_execution_id(request.task_execution_id))
        limit, offset = q.page(request.limit, request.token, rpc="ListNodeExecutionsForTask")
        if task_row is None:
            raise not_found("missing entity of type task execution")
        query = q.Query()
        query.add("n.parent_task_execution_id = ?", task_row["id"])
        q.compile_filters(_NODE_LISTING, request.filters, query)
        sort = request.sort_by if request.HasField("sort_by") else None
        rows = self.db.query(
            f"SELECT n.* FROM node_executions n {query.sql()} "
            f"{q.order_by(_NODE_LISTING, sort)} LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return node_execution_pb2.NodeExecutionList(
            node_executions=[self._node_execution(row, trim=True) for row in rows],
            token=q.next_token(limit, offset, len(rows)),
        )

    @staticmethod
    def _flyte_url(execution_id, node_id: str, *suffix: str) -> str:
        parts = [execution_id.project, execution_id.domain, execution_id.name, node_id, *suffix]
        return "flyte://v1/" + "/".join(parts)

    def get_node_execution_data(self, node_execution_id):
        row = self._node_row(node_execution_id)
        if row is None:
            raise self._node_missing(node_execution_id)
        closure = node_execution_pb2.NodeExecutionClosure.FromString(row["closure"])
        response = node_execution_pb2.NodeExecutionGetDataResponse()
        output_data = closure.output_data if closure.HasField("output_data") else None
        self._fill_data(response, row["input_uri"], closure.output_uri, output_data)
        if row["internal_data"]:
            dynamic = event_pb2.DynamicWorkflowNodeMetadata.FromString(row["internal_data"])
            response.dynamic_workflow.id.CopyFrom(dynamic.id)
            response.dynamic_workflow.compiled_workflow.CopyFrom(dynamic.compiled_workflow)
            response.dynamic_workflow.dynamic_job_spec_uri = dynamic.dynamic_job_spec_uri
        execution_id = node_execution_id.execution_id
        urls = response.flyte_urls
        urls.inputs = self._flyte_url(execution_id, node_execution_id.node_id, "i")
        urls.outputs = self._flyte_url(execution_id, node_execution_id.node_id, "o")
        if closure.deck_uri:
            urls.deck = self._flyte_url(execution_id, node_execution_id.node_id, "d")
        return response

    def get_dynamic_node_workflow(self, node_execution_id):
        row = self._node_row(node_execution_id)
        if row is None:
            raise self._node_missing(node_execution_id)
        if not row["internal_data"]:
            raise not_found("node does not contain dynamic workflow")
        dynamic = event_pb2.DynamicWorkflowNodeMetadata.FromString(row["internal_data"])
        return node_execution_pb2.DynamicNodeWorkflowResponse(
            compiled_workflow=dynamic.compiled_workflow
        )

    # --- task executions ------------------------------------------------------------------------

    @staticmethod
    def _check_task_execution_id(task_execution_id):
        """Validates a task execution id completely, filling the task's resource type."""
        node = task_execution_id.node_execution_id
        if not node.node_id:
            raise missing("node_id")
        check_execution_id(node.execution_id)
        checked = identifier_pb2.TaskExecutionIdentifier()
        checked.CopyFrom(task_execution_id)
        checked.task_id.CopyFrom(check_identifier(task_execution_id.task_id, TASK, field="task_id"))
        return checked

    def _task_row(self, task_execution_id) -> sqlite3.Row | None:
        node = task_execution_id.node_execution_id
        task = task_execution_id.task_id
        return self.db.query_one(
            "SELECT * FROM task_executions WHERE execution_project = ? AND execution_domain = ? "
            "AND execution_name = ? AND node_id = ? AND project = ? AND domain = ? AND name = ? "
            "AND version = ? AND retry_attempt = ?",
            (
                node.execution_id.project,
                node.execution_id.domain,
                node.execution_id.name,
                node.node_id,
                task.project,
                task.domain,
                task.name,
                task.version,
                task_execution_id.retry_attempt,
            ),
        )

    def _task_missing(self, task_execution_id) -> AdminError:
        return not_found(
            "missing entity of type task execution with identifier "
            f"{task_execution_id.task_id.name} attempt {task_execution_id.retry_attempt} of node "
            f"{_show_node(task_execution_id.node_execution_id)}"
        )

    def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        self._check_output_data(event)
        node_id = event.parent_node_execution_id
        execution_id = node_id.execution_id
        occurred = from_timestamp(event.occurred_at) or now_ns()
        updated = from_timestamp(event.reported_at) or occurred
        task_execution_id = identifier_pb2.TaskExecutionIdentifier(
            task_id=event.task_id, node_execution_id=node_id, retry_attempt=event.retry_attempt
        )
        key = (execution_id.project, execution_id.domain, execution_id.name)
        output_uri = event.output_uri
        if event.HasField("output_data"):
            output_uri = self._offload(
                event.output_data,
                *key,
                node_id.node_id,
                str(event.retry_attempt),
                "offloaded_outputs",
            )
        phase = event.phase
        _check_phase(TaskPhase, phase)
        with self.db.transaction() as conn:
            node_row = self._node_row(node_id)
            if node_row is None:
                raise self._node_missing(node_id)
            row = self._task_row(task_execution_id)
            if row is None:
                closure = task_execution_pb2.TaskExecutionClosure(created_at=to_timestamp(occurred))
                started, duration = None, 0
                input_uri = event.input_uri or node_row["input_uri"]
            else:
                closure = task_execution_pb2.TaskExecutionClosure.FromString(row["closure"])
                started, duration, input_uri = row["started_at"], row["duration"], row["input_uri"]
                if closure.phase == phase and event.phase_version <= row["phase_version"]:
                    raise already_exists(
                        f"task execution is already in phase {enum_name(TaskPhase, phase)}"
                    )
                if closure.phase in TASK_TERMINAL:
                    raise failed_precondition(
                        "task execution is already in terminal phase "
                        f"{enum_name(TaskPhase, closure.phase)}"
                    )
            phase_changed = row is None or closure.phase != phase
            closure.phase = phase
            closure.updated_at.CopyFrom(to_timestamp(updated))
            if phase == core_execution_pb2.TaskExecution.RUNNING and not started:
                started = occurred
                closure.started_at.CopyFrom(to_timestamp(occurred))
            if event.logs:
                logs = merge_logs(closure.logs, event.logs)
                del closure.logs[:]
                closure.logs.extend(logs)
            if phase in TASK_TERMINAL:
                if started:
                    duration = occurred - started
                    closure.duration.CopyFrom(to_duration(duration))
                result = event.WhichOneof("output_result")
                if result == "error":
                    closure.error.CopyFrom(event.error)
                elif output_uri:
                    closure.output_uri = output_uri
            if event.reason:
                closure.reason = event.reason
                closure.reasons.add(occurred_at=event.occurred_at, message=event.reason)
            for reason in event.reasons:
                closure.reasons.add().CopyFrom(reason)
            if event.task_type:
                closure.task_type = event.task_type
            if event.HasField("metadata"):
                merge_metadata(
                    closure.metadata, event.metadata, phase=phase, phase_changed=phase_changed
                )
            if event.HasField("custom_info"):
                merged = struct_pb2.Struct()
                merged.CopyFrom(closure.custom_info)
                merged.update(dict(event.custom_info.items()))
                closure.custom_info.CopyFrom(merged)
            if event.event_version:
                closure.event_version = event.event_version
            if event.HasField("log_context"):
                closure.log_context.CopyFrom(event.log_context)
            values = (
                enum_name(TaskPhase, phase),
                event.phase_version,
                input_uri,
                closure.SerializeToString(),
                started,
                updated,
                duration,
                now_ns(),
            )
            if row is None:
                task = event.task_id
                conn.execute(
                    "INSERT INTO task_executions (phase, phase_version, input_uri, closure, "
                    "started_at, task_execution_updated_at, duration, updated_at, project, "
                    "domain, name, version, execution_project, execution_domain, "
                    "execution_name, node_id, retry_attempt, node_execution_id, "
                    "task_execution_created_at, created_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        *values,
                        task.project,
                        task.domain,
                        task.name,
                        task.version,
                        *key,
                        node_id.node_id,
                        event.retry_attempt,
                        node_row["id"],
                        occurred,
                        now_ns(),
                    ),
                )
            else:
                conn.execute(
                    "UPDATE task_executions SET phase = ?, phase_version = ?, input_uri = ?, "
                    "closure = ?, started_at = ?, task_execution_updated_at = ?, duration = ?, "
                    "updated_at = ? WHERE id = ?",
                    (*values, row["id"]),
                )

    def _task_execution(self, row) -> task_execution_pb2.TaskExecution:
        is_parent = self.db.query_one(
            "SELECT 1 FROM node_executions WHERE parent_task_execution_id = ? LIMIT 1", (row["id"],)
        )
        return task_execution_pb2.TaskExecution(
            id=identifier_pb2.TaskExecutionIdentifier(
                task_id=identifier_pb2.Identifier(
                    resource_type=TASK,
                    project=row["project"],
                    domain=row["domain"],
                    name=row["name"],
                    version=row["version"],
                ),
                node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                    node_id=row["node_id"],
                    execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                        project=row["execution_project"],
                        domain=row["execution_domain"],
                        name=row["execution_name"],
                    ),
                ),
                retry_attempt=row["retry_attempt"],
            ),
            input_uri=row["input_uri"],
            closure=task_execution_pb2.TaskExecutionClosure.FromString(row["closure"]),
            is_parent=is_parent is not None,
        )

    def get_task_execution(self, task_execution_id) -> task_execution_pb2.TaskExecution:
        checked = self._check_task_execution_id(task_execution_id)
        row = self._task_row(checked)
        if row is None:
            raise self._task_missing(checked)
        return self._task_execution(row)

    def list_task_executions(
        self, request: task_execution_pb2.TaskExecutionListRequest
    ) -> task_execution_pb2.TaskExecutionList:
        node = request.node_execution_id
        if not node.node_id:
            raise missing("node_id")
        if not (node.execution_id.project and node.execution_id.domain and node.execution_id.name):
            raise missing("execution_id")
        limit, offset = q.page(request.limit, request.token, rpc="ListTaskExecutions")
        query = q.Query()
        query.add("te.execution_project = ?", node.execution_id.project)
        query.add("te.execution_domain = ?", node.execution_id.domain)
        query.add("te.execution_name = ?", node.execution_id.name)
        query.add("te.node_id = ?", node.node_id)
        q.compile_filters(_TASK_LISTING, request.filters, query)
        sort = request.sort_by if request.HasField("sort_by") else None
        order = q.order_by(_TASK_LISTING, sort)
        rows = self.db.query(
            f"SELECT te.* FROM task_executions te {query.sql()} {order} LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return task_execution_pb2.TaskExecutionList(
            task_executions=[self._task_execution(row) for row in rows],
            token=q.next_token(limit, offset, len(rows)),
        )

    def get_task_execution_data(self, task_execution_id):
        checked = self._check_task_execution_id(task_execution_id)
        row = self._task_row(checked)
        if row is None:
            raise self._task_missing(checked)
        closure = task_execution_pb2.TaskExecutionClosure.FromString(row["closure"])
        response = task_execution_pb2.TaskExecutionGetDataResponse()
        output_data = closure.output_data if closure.HasField("output_data") else None
        self._fill_data(response, row["input_uri"], closure.output_uri, output_data)
        node = checked.node_execution_id
        attempt = str(checked.retry_attempt)
        response.flyte_urls.inputs = self._flyte_url(node.execution_id, node.node_id, attempt, "i")
        response.flyte_urls.outputs = self._flyte_url(node.execution_id, node.node_id, attempt, "o")
        return response

    def task_execution_for_attempt(self, node_execution_id, attempt: int):
        """The task execution of one attempt of a node (for flyte:// data URLs), or None."""
        execution_id = node_execution_id.execution_id
        row = self.db.query_one(
            "SELECT * FROM task_executions WHERE execution_project = ? AND execution_domain = ? "
            "AND execution_name = ? AND node_id = ? AND retry_attempt = ? ORDER BY id LIMIT 1",
            (
                execution_id.project,
                execution_id.domain,
                execution_id.name,
                node_execution_id.node_id,
                attempt,
            ),
        )
        return self._task_execution(row) if row is not None else None


EngineFactory = Callable[["Executions"], Any]
