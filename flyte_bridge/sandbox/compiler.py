"""Compiles a registered workflow template into flyteadmin's CompiledWorkflowClosure.

Flyte's real compiler lives in flytepropeller (Go). This one produces the same structure that
clients depend on: ``start-node`` and ``end-node`` appended to the template, promise bindings on
workflow inputs rewritten to ``start-node``, upstream and downstream connections, every referenced
task template in ``tasks`` and every sub-workflow compiled the same way in ``sub_workflows``.

It checks structure (unique node ids, known upstream nodes, known tasks, sub-workflows and launch
plans, no cycles), that each input of a task or sub-workflow node and each workflow output is
bound exactly once and nothing undeclared is, that a promise names an output its task or
sub-workflow node declares, and that a literal bound to a task input fits its type. Unlike
propeller it does not check the types of promise bindings (an upstream output of the wrong type
fails when the task runs), nor the outputs named on launch-plan, branch, gate and array nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flyteidl.core import compiler_pb2, identifier_pb2, literals_pb2, tasks_pb2, workflow_pb2

from flyte_bridge.sandbox.literal_types import describe, literal_fits
from flyte_bridge.sandbox.status import AdminError, invalid

START_NODE = "start-node"
END_NODE = "end-node"

TaskLookup = Callable[[identifier_pb2.Identifier], tasks_pb2.TaskTemplate]
LaunchPlanCheck = Callable[[identifier_pb2.Identifier], None]
WorkflowLookup = Callable[[identifier_pb2.Identifier], workflow_pb2.WorkflowTemplate | None]


class CompileError(Exception):
    """A structural problem in a workflow, naming the node it is about."""


def identifier_key(identifier: identifier_pb2.Identifier) -> tuple:
    return (
        identifier.resource_type,
        identifier.project,
        identifier.domain,
        identifier.name,
        identifier.version,
    )


def show(identifier: identifier_pb2.Identifier) -> str:
    """``project:domain:name:version``, the way flyteadmin prints identifiers."""
    return f"{identifier.project}:{identifier.domain}:{identifier.name}:{identifier.version}"


def iter_bindings(binding: literals_pb2.BindingData) -> Iterator[literals_pb2.OutputReference]:
    """Every promise inside a binding, through collections and maps."""
    kind = binding.WhichOneof("value")
    if kind == "promise":
        yield binding.promise
    elif kind == "collection":
        for item in binding.collection.bindings:
            yield from iter_bindings(item)
    elif kind == "map":
        for item in binding.map.bindings.values():
            yield from iter_bindings(item)


def inner_nodes(node: workflow_pb2.Node) -> Iterator[workflow_pb2.Node]:
    """The nodes nested in a branch or array node (not sub-workflows)."""
    kind = node.WhichOneof("target")
    if kind == "branch_node":
        if_else = node.branch_node.if_else
        for block in [if_else.case, *if_else.other]:
            if block.HasField("then_node"):
                yield block.then_node
                yield from inner_nodes(block.then_node)
        if if_else.HasField("else_node"):
            yield if_else.else_node
            yield from inner_nodes(if_else.else_node)
    elif kind == "array_node" and node.array_node.HasField("node"):
        yield node.array_node.node
        yield from inner_nodes(node.array_node.node)


class Compiler:
    """Compiles one workflow with its sub-workflows against the registry.

    Args:
        get_task: Returns a registered task template; raises NOT_FOUND for an unknown one.
        check_launch_plan: Raises NOT_FOUND if a referenced launch plan is not registered.
        get_workflow: Returns a registered workflow's template, for sub-workflow references that
            were not sent along in ``sub_workflows``; None if unknown.
    """

    def __init__(
        self,
        get_task: TaskLookup,
        check_launch_plan: LaunchPlanCheck,
        get_workflow: WorkflowLookup,
    ) -> None:
        self._get_task = get_task
        self._check_launch_plan = check_launch_plan
        self._get_workflow = get_workflow

    def compile(
        self,
        template: workflow_pb2.WorkflowTemplate,
        sub_workflows: list[workflow_pb2.WorkflowTemplate],
    ) -> compiler_pb2.CompiledWorkflowClosure:
        """Returns the compiled closure, or raises INVALID_ARGUMENT naming the problem."""
        try:
            return self._compile(template, sub_workflows)
        except CompileError as err:
            raise invalid(
                f"failed to compile workflow for [{show(template.id)}] with err: {err}"
            ) from err
        except AdminError as err:
            raise invalid(
                f"failed to compile workflow for [{show(template.id)}] with err: {err.message}"
            ) from err

    def _compile(self, template, sub_workflows):
        available = {identifier_key(sub.id): sub for sub in sub_workflows}
        tasks: dict[tuple, tasks_pb2.TaskTemplate] = {}
        compiled_subs: dict[tuple, compiler_pb2.CompiledWorkflow] = {}
        pending = [template]
        primary = None
        while pending:
            current = pending.pop()
            compiled = self._compile_one(current, tasks, available, pending, compiled_subs)
            if primary is None:
                primary = compiled
            else:
                compiled_subs[identifier_key(current.id)] = compiled
        return compiler_pb2.CompiledWorkflowClosure(
            primary=primary,
            sub_workflows=[compiled_subs[key] for key in sorted(compiled_subs)],
            tasks=[compiler_pb2.CompiledTask(template=tasks[key]) for key in sorted(tasks)],
        )

    def _compile_one(self, template, tasks, available, pending, compiled_subs):
        nodes = list(template.nodes)
        ids = [node.id for node in nodes]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise CompileError(f"node id [{duplicate}] is used more than once")
        for node_id in ids:
            if not node_id:
                raise CompileError("a node has an empty id")
            if node_id in (START_NODE, END_NODE):
                raise CompileError(f"node id [{node_id}] is reserved")
        known = set(ids) | {START_NODE}
        input_names = set(template.interface.inputs.variables)

        every_node = list(nodes)
        if template.HasField("failure_node"):
            every_node.append(template.failure_node)
        for node in list(every_node):
            every_node.extend(inner_nodes(node))
        for node in every_node:
            self._check_references(node, tasks, available, pending, compiled_subs)

        by_id = {node.id: node for node in nodes}
        upstream: dict[str, set[str]] = {}
        for node in nodes:
            deps = set(node.upstream_node_ids)
            owned = {inner.id for inner in inner_nodes(node)} | {node.id}
            in_array = {inner.id for inner in inner_nodes(node)} if node.array_node.node.id else ()
            for member in [node, *inner_nodes(node)]:
                self._check_binding_targets(
                    member, available, check_literals=member.id not in in_array
                )
                for binding in member.inputs:
                    for promise in iter_bindings(binding.binding):
                        producer = promise.node_id or START_NODE
                        if producer in owned:
                            continue
                        if producer not in known:
                            raise CompileError(
                                f"node [{member.id}] has a binding to unknown node [{producer}]"
                            )
                        if producer == START_NODE and promise.var not in input_names:
                            raise CompileError(
                                f"node [{member.id}] binds to unknown workflow input "
                                f"[{promise.var}]"
                            )
                        if producer != START_NODE:
                            self._check_output(
                                by_id[producer],
                                promise.var,
                                available,
                                f"node [{member.id}] binds [{binding.var}]",
                            )
                        deps.add(producer)
            for dep in node.upstream_node_ids:
                if dep not in known:
                    raise CompileError(f"node [{node.id}] depends on unknown node [{dep}]")
            upstream[node.id] = deps
        _check_bound_once(
            template.outputs,
            template.interface.outputs.variables,
            "workflow output",
            "the workflow",
        )
        end_deps = set()
        for binding in template.outputs:
            for promise in iter_bindings(binding.binding):
                producer = promise.node_id or START_NODE
                if producer not in known:
                    raise CompileError(
                        f"workflow output [{binding.var}] binds to unknown node [{producer}]"
                    )
                if producer != START_NODE:
                    self._check_output(
                        by_id[producer],
                        promise.var,
                        available,
                        f"workflow output [{binding.var}]",
                    )
                end_deps.add(producer)

        downstream: dict[str, set[str]] = {}
        for node_id, deps in upstream.items():
            for dep in deps:
                downstream.setdefault(dep, set()).add(node_id)
        for node_id in ids:
            if not upstream[node_id]:
                upstream[node_id].add(START_NODE)
                downstream.setdefault(START_NODE, set()).add(node_id)
        for node_id in ids:
            if not downstream.get(node_id):
                end_deps.add(node_id)
        if not ids and not end_deps:
            end_deps.add(START_NODE)
        upstream[END_NODE] = end_deps
        for dep in end_deps:
            downstream.setdefault(dep, set()).add(END_NODE)
        self._check_acyclic(upstream)

        compiled_template = workflow_pb2.WorkflowTemplate()
        compiled_template.CopyFrom(template)
        compiled_template.ClearField("nodes")
        for node in nodes:
            copy = compiled_template.nodes.add()
            copy.CopyFrom(node)
            copy.upstream_node_ids[:] = sorted(set(node.upstream_node_ids))
            _rewrite_start(copy)
        compiled_template.nodes.add(id=START_NODE)
        end = compiled_template.nodes.add(id=END_NODE)
        end.inputs.extend(template.outputs)
        _rewrite_start(end)
        for binding in compiled_template.outputs:
            for promise in iter_bindings(binding.binding):
                if not promise.node_id:
                    promise.node_id = START_NODE
        if compiled_template.HasField("failure_node"):
            _rewrite_start(compiled_template.failure_node)

        connections = compiler_pb2.ConnectionSet()
        for node_id, deps in upstream.items():
            connections.upstream[node_id].ids.extend(sorted(deps))
        for node_id, targets in downstream.items():
            connections.downstream[node_id].ids.extend(sorted(targets))
        return compiler_pb2.CompiledWorkflow(template=compiled_template, connections=connections)

    def _check_binding_targets(
        self, node: workflow_pb2.Node, available: dict, check_literals: bool = True
    ) -> None:
        """A task or sub-workflow node binds each input its target declares once, and no other.

        A task node's literals must also fit their inputs' types. ``check_literals`` is off for
        the node inside an array node, whose inputs the array node binds as lists of the task's
        input types. Launch plan nodes are not checked: their inputs may have defaults.
        """
        kind = node.WhichOneof("target")
        if kind == "workflow_node" and node.workflow_node.HasField("sub_workflow_ref"):
            reference = node.workflow_node.sub_workflow_ref
            sub = available.get(identifier_key(reference)) or self._get_workflow(reference)
            if sub is not None:
                owner = f"sub-workflow [{reference.name}]"
                _check_bound_once(
                    node.inputs, sub.interface.inputs.variables, f"node [{node.id}] input", owner
                )
            return
        if kind != "task_node":
            return
        task = self._get_task(node.task_node.reference_id)
        declared = task.interface.inputs.variables
        owner = f"task [{node.task_node.reference_id.name}]"
        _check_bound_once(node.inputs, declared, f"node [{node.id}] input", owner)
        for binding in node.inputs:
            expected = declared[binding.var].type
            if check_literals and not _binding_fits(binding.binding, expected):
                raise CompileError(
                    f"node [{node.id}] binds [{binding.var}] to a literal that is not "
                    f"{describe(expected)}, the type task [{node.task_node.reference_id.name}] "
                    "declares for it"
                )

    def _check_output(
        self, producer: workflow_pb2.Node, var: str, available: dict, consumer: str
    ) -> None:
        """A promise must name an output the producing task or sub-workflow node declares."""
        kind = producer.WhichOneof("target")
        if kind == "task_node":
            outputs = self._get_task(producer.task_node.reference_id).interface.outputs
            owner = f"task [{producer.task_node.reference_id.name}]"
        elif kind == "workflow_node" and producer.workflow_node.HasField("sub_workflow_ref"):
            reference = producer.workflow_node.sub_workflow_ref
            sub = available.get(identifier_key(reference)) or self._get_workflow(reference)
            if sub is None:
                return
            outputs = sub.interface.outputs
            owner = f"sub-workflow [{reference.name}]"
        else:
            return
        if var not in outputs.variables:
            names = ", ".join(sorted(outputs.variables)) or "none"
            raise CompileError(
                f"{consumer} to output [{var}] of node [{producer.id}], which {owner} does not "
                f"declare (its outputs: {names})"
            )

    def _check_references(self, node, tasks, available, pending, compiled_subs):
        kind = node.WhichOneof("target")
        if kind is None:
            raise CompileError(f"node [{node.id}] has no target (task, workflow, branch, gate)")
        if kind == "task_node":
            reference = node.task_node.reference_id
            key = identifier_key(reference)
            if key not in tasks:
                try:
                    tasks[key] = self._get_task(reference)
                except AdminError as err:
                    raise CompileError(
                        f"node [{node.id}] references task [{show(reference)}], which is not "
                        "registered"
                    ) from err
        elif kind == "workflow_node":
            if node.workflow_node.HasField("launchplan_ref"):
                reference = node.workflow_node.launchplan_ref
                try:
                    self._check_launch_plan(reference)
                except AdminError as err:
                    raise CompileError(
                        f"node [{node.id}] references launch plan [{show(reference)}], which is "
                        "not registered"
                    ) from err
            else:
                reference = node.workflow_node.sub_workflow_ref
                key = identifier_key(reference)
                if key in compiled_subs or any(identifier_key(p.id) == key for p in pending):
                    return
                sub = available.get(key) or self._get_workflow(reference)
                if sub is None:
                    raise CompileError(
                        f"node [{node.id}] references sub-workflow [{show(reference)}], which is "
                        "neither in sub_workflows nor registered"
                    )
                available[key] = sub
                compiled_subs[key] = compiler_pb2.CompiledWorkflow()
                pending.append(sub)
        elif kind == "branch_node":
            if not node.branch_node.if_else.HasField("case"):
                raise CompileError(f"branch node [{node.id}] has no case")

    @staticmethod
    def _check_acyclic(upstream: dict[str, set[str]]) -> None:
        state: dict[str, int] = {}

        def visit(node_id: str, trail: list[str]) -> None:
            mark = state.get(node_id)
            if mark == 2:
                return
            if mark == 1:
                cycle = trail[trail.index(node_id) :] + [node_id]
                raise CompileError(f"cycle between nodes [{' -> '.join(reversed(cycle))}]")
            state[node_id] = 1
            for dep in upstream.get(node_id, ()):
                visit(dep, [*trail, node_id])
            state[node_id] = 2

        for node_id in upstream:
            visit(node_id, [])


def _check_bound_once(bindings, declared, what: str, owner: str) -> None:
    """Each declared variable is bound exactly once, and nothing else is (as propeller checks).

    Flyte interfaces carry no defaults, so a variable left unbound has no value when the node
    runs: propeller refuses it as ParameterNotBound.
    """
    bound: set[str] = set()
    for binding in bindings:
        if binding.var not in declared:
            names = ", ".join(sorted(declared)) or "none"
            raise CompileError(
                f"{what} [{binding.var}] is bound, which {owner} does not declare (it declares: "
                f"{names})"
            )
        if binding.var in bound:
            raise CompileError(f"{what} [{binding.var}] is bound more than once")
        bound.add(binding.var)
    unbound = sorted(set(declared) - bound)
    if unbound:
        raise CompileError(
            f"{what} [{', '.join(unbound)}] of {owner} is not bound (ParameterNotBound); every "
            "declared input and output must be bound"
        )


def _binding_fits(binding: literals_pb2.BindingData, literal_type) -> bool:
    """Whether the literals inside a binding fit ``literal_type``; promises are not checked."""
    kind = binding.WhichOneof("value")
    type_kind = literal_type.WhichOneof("type")
    if kind not in ("scalar", "collection", "map") or type_kind is None:
        return True
    if type_kind == "union_type":
        return any(_binding_fits(binding, v) for v in literal_type.union_type.variants)
    if kind == "scalar":
        return literal_fits(literals_pb2.Literal(scalar=binding.scalar), literal_type)
    if kind == "collection":
        return type_kind == "collection_type" and all(
            _binding_fits(item, literal_type.collection_type)
            for item in binding.collection.bindings
        )
    return type_kind == "map_value_type" and all(
        _binding_fits(item, literal_type.map_value_type) for item in binding.map.bindings.values()
    )


def _rewrite_start(node: workflow_pb2.Node) -> None:
    """Points promise bindings on workflow inputs (empty node id) at ``start-node``."""
    for member in [node, *inner_nodes(node)]:
        for binding in member.inputs:
            for promise in iter_bindings(binding.binding):
                if not promise.node_id:
                    promise.node_id = START_NODE
