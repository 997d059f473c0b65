"""Array nodes (flytekit ``map_task``): one local task process per item, reported as propeller does.

flytekit 1.16 compiles ``map_task(t)`` into an ``ArrayNode`` whose sub-node runs a task template
with list inputs and list outputs. Like propeller's array node handler, the executor:

1. reads the node's inputs and takes the length of every list input (inputs named in
   ``bound_inputs`` and non-list inputs are passed whole); lists of different lengths fail the
   node with ``InvalidArrayLength``;
2. runs each index as its own ``pyflyte-map-execute`` process with the task's own command. Every
   item reads the node's whole inputs file and finds its index through
   ``BATCH_JOB_ARRAY_INDEX_VAR_NAME=FLYTE_K8S_ARRAY_INDEX`` and ``FLYTE_K8S_ARRAY_INDEX=<index>``;
   it writes ``outputs.pb`` (one value per output) under ``<node>/data/0/<index>/<attempt>``;
3. runs at most ``parallelism`` items at once (flytekit ``concurrency``; 0 means no limit; unset
   means the execution's ``max_parallelism``) and retries each item on its own, with the retry
   budget of the sub-node (flytekit's ``retries`` of the mapped task) and propeller's system
   retry budget;
4. reports no node execution per item: the node gets ``is_array`` and ONE task execution
   (attempt 0, task type ``container_array``) whose ``metadata.external_resources`` hold one entry
   per item attempt (index, retry attempt, phase, log link, external id). Each change is sent as a
   new ``phase_version`` of that task execution carrying only the entries that changed; the admin
   side merges them by (index, retry attempt) as flyteadmin does;
5. succeeds once every item has ended and at least ``min_successes`` (or
   ``ceil(min_success_ratio * size)``, default: all) succeeded, gathering one list per output in
   index order with a ``None`` literal where an item failed; fails as soon as that minimum can no
   longer be reached, aborting the items still running (unless ``run_all_sub_nodes``).

Deviations from propeller, on purpose:
- Array nodes over launch plans or sub-workflows (flytekit ``array_node(target=...)``) are not
  run: the node fails with ``NotSupported``. Only task sub-nodes are.
- Items of an array node without ``concurrency`` run up to the execution's ``max_parallelism`` at
  once but do not take execution-wide slots from other nodes; items of every array node also
  share the executor's cap on task processes (``max_parallel_tasks``).
- Item attempts report QUEUED when they wait for a process slot and RUNNING once their process
  runs; propeller reports the phases of the item's pod.
- A failing array node's error has code ``ArrayNodeFailing`` (propeller leaves it empty) and the
  message lists each distinct item error with the item indexes that hit it.
- The task execution's plugin identifier is ``local-array``, not ``k8s-array``.
- Each item attempt has the mapped task's timeout, but there is no second, active deadline
  (twice the timeout) per item or for the array node.
- An array node that was running when the sandbox process died is not resumed on restart (see
  ``resume.py``): it fails with a reason naming the restart.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import shutil
from typing import TYPE_CHECKING, Any

from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2, tasks_pb2
from flyteidl.event import event_pb2

from flyte_bridge.sandbox import executor as engine_module
from flyte_bridge.sandbox import task_runner

if TYPE_CHECKING:
    from flyte_bridge.sandbox.executor import LocalExecutor, _Attempt, _NodeRun

logger = logging.getLogger(__name__)

TASK_TYPE = "container_array"
PLUGIN_IDENTIFIER = "local-array"
INDEX_VARIABLE = "FLYTE_K8S_ARRAY_INDEX"
INDEX_VARIABLE_NAME = "BATCH_JOB_ARRAY_INDEX_VAR_NAME"
MAX_ERROR_MESSAGE = 10_000

NodePhase = execution_pb2.NodeExecution.Phase
TaskPhase = execution_pb2.TaskExecution.Phase
ErrorKind = execution_pb2.ExecutionError.ErrorKind
_NONE_LITERAL = literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))


class ArrayNodeError(Exception):
    """The array node cannot run: its inputs or its sub-node are not what it needs."""

    def __init__(self, code: str, message: str, kind: int = ErrorKind.USER) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind


@dataclasses.dataclass(eq=False)
class _Item:
    """One index of an array node: its attempts, their phases and its result."""

    index: int
    attempts: list[_Attempt] = dataclasses.field(default_factory=list)
    phases: list[int] = dataclasses.field(default_factory=list)
    user_failures: int = 0
    system_failures: int = 0
    output_uri: str = ""
    error: execution_pb2.ExecutionError | None = None
    ended: bool = False

    @property
    def succeeded(self) -> bool:
        return self.ended and self.error is None


@dataclasses.dataclass(eq=False)
class _ArrayRun:
    """The state of one running array node."""

    node_run: _NodeRun
    sub_node_run: _NodeRun
    template: tasks_pb2.TaskTemplate
    items: list[_Item]
    limit: int
    min_successes: int
    run_all: bool
    max_attempts: int
    timeout: float
    waiting: collections.deque[int]
    running: int = 0
    phase_version: int = 0
    changed: dict[tuple[int, int], None] = dataclasses.field(default_factory=dict)
    flush_posted: bool = False
    began: bool = False
    finished: bool = False

    @property
    def run(self) -> Any:
        return self.node_run.scope.run

    @property
    def generated_name(self) -> str:
        return f"{self.run.id.name}-{self.node_run.unique_id}-0"


def array_size(inputs: literals_pb2.LiteralMap, bound_inputs: set[str], read_literal: Any) -> int:
    """The number of items: the common length of the list inputs that are not bound.

    Raises:
        ArrayNodeError: The lists differ in length, or there is no list input.
    """
    size = -1
    for name in sorted(inputs.literals):
        if name in bound_inputs:
            continue
        literal = inputs.literals[name]
        if literal.HasField("offloaded_metadata"):
            literal = read_literal(literal.offloaded_metadata.uri)
        if not literal.HasField("collection"):
            continue
        length = len(literal.collection.literals)
        if size == -1:
            size = length
        elif size != length:
            raise ArrayNodeError(
                "InvalidArrayLength",
                f"input arrays have different lengths: expecting '{size}' found '{length}'",
            )
    if size == -1:
        raise ArrayNodeError("InvalidArrayLength", "no input array provided")
    return size


def required_successes(array_node: Any, size: int) -> int:
    """How many items must succeed: ``min_successes``, ``ceil(ratio * size)``, or all of them."""
    criterion = array_node.WhichOneof("success_criteria")
    if criterion == "min_successes":
        return array_node.min_successes
    if criterion == "min_success_ratio":
        return math.ceil(array_node.min_success_ratio * size)
    return size


def item_limit(array_node: Any, max_parallelism: int, size: int) -> int:
    """How many items may run at once (propeller's hybrid parallelism behaviour)."""
    if array_node.WhichOneof("parallelism_option") == "parallelism":
        limit = array_node.parallelism or size
    else:
        limit = max_parallelism if max_parallelism > 0 else size
    return max(1, limit)


def failure_summary(items: list[_Item]) -> str:
    """Each distinct item error once, after the ranges of item indexes that hit it."""
    indexes: dict[str, list[int]] = {}
    for item in items:
        if item.ended and item.error is not None:
            indexes.setdefault(item.error.message, []).append(item.index)
    lines = []
    for message in sorted(indexes):
        lines.append(f"{_ranges(indexes[message])}: {message}")
    summary = "\n".join(lines)
    if len(summary) > MAX_ERROR_MESSAGE:
        summary = summary[:MAX_ERROR_MESSAGE] + "... and many more."
    return summary


def _ranges(numbers: list[int]) -> str:
    """``[0-2][5]`` for 0, 1, 2, 5."""
    parts = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(f"[{start}]" if start == previous else f"[{start}-{previous}]")
        if number is not None:
            start = previous = number
    return "".join(parts)


class ArrayNodes:
    """Runs the array nodes of one executor; every method runs on the execution's mailbox."""

    def __init__(self, engine: LocalExecutor) -> None:
        self._engine = engine
        self._arrays: dict[_NodeRun, _ArrayRun] = {}

    # Lifecycle.

    def start(self, node_run: _NodeRun) -> None:
        """Starts an array node whose inputs are resolved and written (``inputs_uri``)."""
        engine = self._engine
        engine._node_event(node_run, NodePhase.QUEUED, input_uri=node_run.inputs_uri)
        node_run.phase = NodePhase.QUEUED
        try:
            state = self._prepare(node_run)
        except ArrayNodeError as error:
            node_run.error = engine_module._error(error.code, str(error), error.kind)
            engine._finish_node(node_run, NodePhase.FAILED)
            return
        self._arrays[node_run] = state
        engine._acquire_slot(node_run, self._begin)

    def abort(self, node_run: _NodeRun, cause: str) -> None:
        """Kills the items still running and reports them and the array's task ABORTED."""
        state = self._arrays.pop(node_run, None)
        if state is None or state.finished:
            return
        self._abort_items(state)
        if state.began:
            self._task_event(
                state, TaskPhase.ABORTED, error=engine_module._error("TaskAborted", cause)
            )

    def _abort_items(self, state: _ArrayRun) -> None:
        """Ends the array's bookkeeping and kills its running items, marking them ABORTED."""
        state.finished = True
        for item in state.items:
            if item.ended or not item.attempts:
                continue
            attempt = item.attempts[-1]
            self._engine._kill_attempt(attempt, self._engine._kill_grace)
            with self._engine._lock:
                self._engine._live_attempts.discard(attempt)
            self._set_phase(state, item, TaskPhase.ABORTED)

    def _prepare(self, node_run: _NodeRun) -> _ArrayRun:
        engine = self._engine
        run = node_run.scope.run
        array_node = node_run.node.array_node
        sub_node = array_node.node
        if sub_node.WhichOneof("target") != "task_node":
            raise ArrayNodeError(
                "NotSupported",
                "array nodes over launch plans or sub-workflows are not supported by the "
                "sandbox executor; only map tasks are",
                ErrorKind.SYSTEM,
            )
        template = run.tasks.get(engine_module._key(sub_node.task_node.reference_id))
        if template is None:
            raise ArrayNodeError(
                "TaskNotFound",
                f"task {sub_node.task_node.reference_id.name} is not in the compiled workflow",
                ErrorKind.SYSTEM,
            )
        if not task_runner.is_python_task(template):
            raise ArrayNodeError(
                "PluginNotFound",
                f"task type [{template.type}] cannot run in the sandbox: only flytekit Python "
                "map tasks are supported",
                ErrorKind.SYSTEM,
            )
        inputs = node_run.inputs or literals_pb2.LiteralMap()
        size = array_size(
            inputs,
            set(array_node.bound_inputs),
            lambda uri: engine.store.read_proto(uri, literals_pb2.Literal),
        )
        # The sub-node, given the array node's identity and inputs: the executor's command,
        # timeout and retry rules then apply to every item exactly as to a task node.
        sub_node_run = engine_module._NodeRun(
            node_run.scope, sub_node, node_run.unique_id, node_run.parent, lambda _: None
        )
        sub_node_run.inputs = inputs
        sub_node_run.inputs_uri = node_run.inputs_uri
        return _ArrayRun(
            node_run=node_run,
            sub_node_run=sub_node_run,
            template=template,
            items=[_Item(index) for index in range(size)],
            limit=item_limit(array_node, run.max_parallelism, size),
            min_successes=required_successes(array_node, size),
            run_all=array_node.run_all_sub_nodes,
            max_attempts=engine._max_attempts(sub_node_run, template),
            timeout=engine._node_timeout(sub_node_run, template),
            waiting=collections.deque(range(size)),
        )

    def _begin(self, node_run: _NodeRun) -> None:
        state = self._arrays.get(node_run)
        if state is None or node_run.done or state.run.aborting:
            return
        state.began = True
        for item in state.items:
            state.changed[(item.index, 0)] = None
        self._task_event(state, TaskPhase.QUEUED, input_uri=node_run.inputs_uri)
        self._engine._mark_running(node_run)
        self._fill(state)
        self._settle(state)

    # Items.

    def _fill(self, state: _ArrayRun) -> None:
        """Starts waiting items while fewer than the limit run."""
        while state.waiting and state.running < state.limit and not state.finished:
            item = state.items[state.waiting.popleft()]
            state.running += 1
            self._start_attempt(state, item)

    def _start_attempt(self, state: _ArrayRun, item: _Item) -> None:
        engine = self._engine
        run = state.run
        unique_id = state.node_run.unique_id
        number = len(item.attempts)
        raw_prefix = engine.store.task_raw_prefix(
            run.spec.raw_output_data_config.output_location_prefix
        )
        previous = item.attempts[-1].paths.checkpoint_prefix if item.attempts else None
        paths = task_runner.AttemptPaths(
            inputs_uri=state.node_run.inputs_uri,
            input_prefix=run.uri(unique_id, "data"),
            output_prefix=run.uri(unique_id, "data", "0", str(item.index), str(number)),
            raw_output_prefix=(
                f"{raw_prefix.rstrip('/')}/{run.dir_name}/{unique_id}/{item.index}/{number}"
            ),
            previous_checkpoint=previous,
            scratch_dir=engine.store.path(
                "scratch", run.dir_name, f"{unique_id}-{item.index}-{number}"
            ),
            log_path=run.path(unique_id, "logs", f"index-{item.index}-attempt-{number}.log"),
        )
        attempt = engine_module._Attempt(number, paths)
        attempt.log_uri = engine._log_link(paths.log_path)
        item.attempts.append(attempt)
        item.phases.append(TaskPhase.UNDEFINED)
        self._set_phase(state, item, TaskPhase.QUEUED)
        with engine._lock:
            engine._live_attempts.add(attempt)
        engine._task_pool.submit(
            engine.run_process,
            run,
            attempt,
            lambda: self._command(state, item, attempt),
            state.timeout or None,
            on_started=self._on_item_started,
            on_exited=self._on_item_exited,
            context=(state, item),
        )

    def _command(
        self, state: _ArrayRun, item: _Item, attempt: _Attempt
    ) -> tuple[list[str], dict[str, str]]:
        """The task's own command, with the index variables propeller's array node sets."""
        argv, env = self._engine._command(state.run, state.sub_node_run, state.template, attempt)
        env[INDEX_VARIABLE_NAME] = INDEX_VARIABLE
        env[INDEX_VARIABLE] = str(item.index)
        return argv, env

    def _on_item_started(self, state: _ArrayRun, item: _Item, attempt: _Attempt) -> None:
        if attempt.cancelled or state.finished:
            return
        attempt.started = True
        self._set_phase(state, item, TaskPhase.RUNNING)

    def _on_item_exited(
        self,
        state: _ArrayRun,
        item: _Item,
        attempt: _Attempt,
        exit_code: int | None,
        start_error: str | None,
        timed_out: bool,
    ) -> None:
        engine = self._engine
        with engine._lock:
            engine._live_attempts.discard(attempt)
        shutil.rmtree(attempt.paths.scratch_dir, ignore_errors=True)
        if attempt.cancelled or state.finished:
            return
        outcome = engine.attempt_outcome(
            attempt,
            exit_code,
            start_error,
            timed_out,
            timeout=state.timeout,
            has_outputs=bool(state.template.interface.outputs.variables),
        )
        if outcome.kind is task_runner.OutcomeKind.SUCCEEDED:
            self._set_phase(state, item, TaskPhase.SUCCEEDED)
            item.output_uri = outcome.output_uri or ""
            self._end_item(state, item, None)
            return
        if outcome.kind is task_runner.OutcomeKind.DYNAMIC:
            outcome = task_runner.AttemptOutcome(
                task_runner.OutcomeKind.FAILED,
                error=engine_module._error(
                    "DynamicNotSupported", "an item of a map task cannot return a dynamic workflow"
                ),
            )
        self._set_phase(state, item, TaskPhase.FAILED)
        error = engine.failure_verdict(item, outcome, state.max_attempts)
        if error is None and not state.run.aborting:
            self._start_attempt(state, item)
            return
        self._end_item(state, item, error or outcome.error)

    def _end_item(
        self, state: _ArrayRun, item: _Item, error: execution_pb2.ExecutionError | None
    ) -> None:
        item.ended = True
        item.error = error
        state.running -= 1
        self._settle(state)
        self._fill(state)

    def _set_phase(self, state: _ArrayRun, item: _Item, phase: int) -> None:
        """Records the phase of the item's latest attempt and schedules it to be reported."""
        number = len(item.attempts) - 1
        item.phases[number] = phase
        state.changed[(item.index, number)] = None
        if not state.flush_posted and not state.finished:
            state.flush_posted = True
            state.run.mailbox.post(self._flush, state)

    # The array's outcome.

    def _settle(self, state: _ArrayRun) -> None:
        """Ends the node once it can no longer succeed, or once every item has ended."""
        if state.finished:
            return
        succeeded = sum(1 for item in state.items if item.succeeded)
        failed = sum(1 for item in state.items if item.ended and not item.succeeded)
        remaining = len(state.items) - succeeded - failed
        if len(state.items) - failed < state.min_successes:
            if state.run_all and remaining:
                return
            self._fail(state)
        elif succeeded >= state.min_successes and remaining == 0:
            self._succeed(state)

    def _succeed(self, state: _ArrayRun) -> None:
        node_run = state.node_run
        try:
            outputs = self._gather(state)
        except ArrayNodeError as error:
            failure = engine_module._error(error.code, str(error), error.kind)
            self._finish(state, TaskPhase.FAILED, NodePhase.FAILED, error=failure)
            return
        output_uri = state.run.uri(node_run.unique_id, "data", "0", "outputs.pb")
        self._engine.store.write_proto(output_uri, outputs)
        node_run.output_uri = output_uri
        self._finish(state, TaskPhase.SUCCEEDED, NodePhase.SUCCEEDED, output_uri=output_uri)

    def _fail(self, state: _ArrayRun) -> None:
        self._abort_items(state)
        failed = [item for item in state.items if item.ended and item.error is not None]
        kind = (
            ErrorKind.USER
            if all(item.error.kind == ErrorKind.USER for item in failed)
            else ErrorKind.SYSTEM
        )
        message = (
            f"at least {state.min_successes} of {len(state.items)} items must succeed, "
            f"{len(failed)} failed"
        )
        summary = failure_summary(state.items)
        error = engine_module._error(
            "ArrayNodeFailing", f"{message}:\n{summary}" if summary else message, kind
        )
        self._finish(state, TaskPhase.FAILED, NodePhase.FAILED, error=error)

    def _finish(
        self,
        state: _ArrayRun,
        task_phase: int,
        node_phase: int,
        *,
        output_uri: str = "",
        error: execution_pb2.ExecutionError | None = None,
    ) -> None:
        state.finished = True
        self._arrays.pop(state.node_run, None)
        self._task_event(state, task_phase, output_uri=output_uri, error=error)
        if error is not None:
            state.node_run.error = error
        self._engine._finish_node(state.node_run, node_phase)

    def _gather(self, state: _ArrayRun) -> literals_pb2.LiteralMap:
        """One list per output, in index order; a failed item contributes a None literal."""
        names = sorted(state.template.interface.outputs.variables)
        outputs = literals_pb2.LiteralMap()
        for name in names:
            outputs.literals[name].collection.SetInParent()
        store = self._engine.store
        for item in state.items:
            if not item.succeeded:
                for name in names:
                    outputs.literals[name].collection.literals.add().CopyFrom(_NONE_LITERAL)
                continue
            produced = (
                store.read_proto(item.output_uri, literals_pb2.LiteralMap)
                if item.output_uri and names
                else literals_pb2.LiteralMap()
            )
            for name in names:
                if name not in produced.literals:
                    raise ArrayNodeError(
                        "OutputsNotFound",
                        f"item {item.index} of the array node did not produce output [{name}]",
                    )
                outputs.literals[name].collection.literals.add().CopyFrom(produced.literals[name])
        return outputs

    # Events.

    def _flush(self, state: _ArrayRun) -> None:
        """Reports the item changes collected since the last event, as one RUNNING version."""
        state.flush_posted = False
        if state.finished or not state.changed:
            return
        self._task_event(state, TaskPhase.RUNNING)

    def _task_event(
        self,
        state: _ArrayRun,
        phase: int,
        *,
        input_uri: str = "",
        output_uri: str = "",
        error: execution_pb2.ExecutionError | None = None,
    ) -> None:
        """The array's one task execution, carrying the item entries that changed."""
        engine = self._engine
        run = state.run
        now = engine_module._now()
        event = event_pb2.TaskExecutionEvent(
            task_id=state.template.id,
            parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id=state.node_run.unique_id, execution_id=run.id
            ),
            retry_attempt=0,
            phase=phase,
            phase_version=state.phase_version if phase == TaskPhase.RUNNING else 0,
            producer_id=engine_module.PRODUCER_ID,
            occurred_at=now,
            reported_at=now,
            task_type=TASK_TYPE,
            event_version=1,
            metadata=event_pb2.TaskExecutionMetadata(
                generated_name=state.generated_name,
                plugin_identifier=PLUGIN_IDENTIFIER,
                external_resources=[self._resource(state, *key) for key in state.changed],
            ),
        )
        if phase == TaskPhase.RUNNING:
            state.phase_version += 1
        if input_uri:
            event.input_uri = input_uri
        if output_uri:
            event.output_uri = output_uri
        if error is not None:
            event.error.CopyFrom(error)
        state.changed.clear()
        engine._record(engine.control_plane.record_task_event, event)

    def _resource(
        self, state: _ArrayRun, index: int, number: int
    ) -> event_pb2.ExternalResourceInfo:
        item = state.items[index]
        resource = event_pb2.ExternalResourceInfo(
            external_id=f"{state.generated_name}-n{index}-{number}",
            index=index,
            retry_attempt=number,
            phase=item.phases[number] if number < len(item.phases) else TaskPhase.UNDEFINED,
        )
        if number < len(item.attempts):
            resource.logs.add(
                uri=item.attempts[number].log_uri,
                name=f"Task log (index {index}, attempt {number})",
                message_format=execution_pb2.TaskLog.UNKNOWN,
            )
        return resource
