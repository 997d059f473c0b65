"""Continuing executions that a killed sandbox left in flight, from what its database holds.

When the sandbox starts on a data directory whose previous process died (``kill -9``, a crash,
or a stop while executions ran), the admin side hands every execution that is not terminal to
the local executor's ``resume`` with its :class:`~flyte_bridge.sandbox.interfaces.
RecordedProgress`. The executor builds the run again and walks it as usual; this module decides,
node by node, how to continue from the records. (A process still serving the directory holds its
lock, see :mod:`~flyte_bridge.sandbox.exclusive`, so no second sandbox resumes its executions.)

- A node that finished (SUCCEEDED, FAILED, SKIPPED, ...) keeps its record and its outputs; the
  engine takes its outcome without sending any event.
- A node never started is started as usual.
- A gate keeps waiting on its signal (and passes at once if the signal was set meanwhile); a
  sleep gate waits only what is left of its duration, counted from its recorded start, and a
  gate's or task node's timeout counts from its recorded start too.
- Branch, subworkflow and launch-plan nodes start again through the engine's usual path; their
  QUEUED and RUNNING events, already recorded, are not sent a second time. A launch-plan node
  finds its child execution again by its name (which is derived from the parent's) rather than
  launching a second one; the child is itself resumed.
- A task node whose attempt was running gets that attempt marked FAILED with a system error
  (code ``SandboxRestarted``), and the engine decides on the next attempt by the retry policy,
  as for any crashed task process: a system failure counts against the system-retry budget.
- A dynamic node or an array node in flight cannot be resumed: it fails with a
  ``SandboxRestarted`` error, and so does its execution.

Task processes of the killed server normally die with it (the fork server kills its children
when the server's pipe closes). One that is still alive when the run is resumed is killed: each
attempt leaves ``attempt-<n>.pid`` (pid and start time) next to its log. The start time can only
be checked on Linux; elsewhere a surviving process is left running, but it cannot write into the
resumed node's next attempt, which gets a new attempt number and so its own output, raw-data,
checkpoint and scratch directories. An attempt whose process finished while the sandbox was down
is not adopted: it is marked failed and retried like any lost attempt.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2
from flyteidl.event import event_pb2
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from flyte_bridge.sandbox import task_runner
from flyte_bridge.sandbox.interfaces import RecordedProgress

if TYPE_CHECKING:
    from flyte_bridge.sandbox.executor import LocalExecutor, _NodeRun, _Run

logger = logging.getLogger(__name__)

RESTART_CODE = "SandboxRestarted"
PRODUCER_ID = "flyte-bridge-sandbox"

NodePhase = execution_pb2.NodeExecution.Phase
TaskPhase = execution_pb2.TaskExecution.Phase
WorkflowPhase = execution_pb2.WorkflowExecution.Phase

_NODE_DONE = {
    NodePhase.SUCCEEDED,
    NodePhase.FAILED,
    NodePhase.ABORTED,
    NodePhase.SKIPPED,
    NodePhase.TIMED_OUT,
    NodePhase.RECOVERED,
}
_NODE_SUCCESS = {NodePhase.SUCCEEDED, NodePhase.RECOVERED}
_TASK_DONE = {TaskPhase.SUCCEEDED, TaskPhase.FAILED, TaskPhase.ABORTED}
# How far a node that is still in flight has got; an event that does not go further repeats one.
_IN_FLIGHT_RANK = {
    NodePhase.QUEUED: 0,
    NodePhase.RUNNING: 1,
    NodePhase.DYNAMIC_RUNNING: 2,
    NodePhase.FAILING: 2,
}


def restart_error(message: str) -> execution_pb2.ExecutionError:
    """A system error that names the restart (code ``SandboxRestarted``)."""
    return task_runner.make_error(RESTART_CODE, message, execution_pb2.ExecutionError.SYSTEM)


class Resumption:
    """The recorded progress of one resumed run, and the rules that continue its nodes."""

    def __init__(self, progress: RecordedProgress) -> None:
        self.progress = progress
        self._recorded_phase = {
            node_id: record.closure.phase for node_id, record in progress.nodes.items()
        }

    @property
    def workflow_started(self) -> bool:
        """Whether the execution had reported RUNNING (or gone further) before the restart."""
        return self.progress.phase not in (WorkflowPhase.UNDEFINED, WorkflowPhase.QUEUED)

    def already_recorded(self, node_id: str, phase: int) -> bool:
        """Whether a QUEUED or RUNNING event of a node repeats what its record already says."""
        recorded = self._recorded_phase.get(node_id)
        if recorded not in _IN_FLIGHT_RANK or phase not in _IN_FLIGHT_RANK:
            return False
        return _IN_FLIGHT_RANK[phase] <= _IN_FLIGHT_RANK[recorded]

    def elapsed(self, node_id: str) -> float:
        """Seconds since the node's recorded start (0 for a node that had not started)."""
        record = self.progress.nodes.get(node_id)
        if record is None or not record.closure.HasField("started_at"):
            return 0.0
        started = record.closure.started_at
        return max(0.0, time.time() - (started.seconds + started.nanos / 1e9))

    def resume_node(self, engine: LocalExecutor, node_run: _NodeRun) -> bool:
        """Continues one node from its record; False lets the engine start it as usual."""
        record = self.progress.nodes.get(node_run.unique_id)
        if record is None or record.closure.phase == NodePhase.UNDEFINED:
            return False
        phase = record.closure.phase
        if phase in _NODE_DONE:
            self._take_outcome(node_run, record)
            return True
        if (
            record.metadata.is_dynamic
            or record.metadata.is_array
            or phase == NodePhase.DYNAMIC_RUNNING
            or node_run.kind == "array_node"
        ):
            self._fail(
                engine,
                node_run,
                record,
                "the sandbox restarted while this node ran; dynamic and array nodes cannot be "
                "resumed",
            )
            return True
        if node_run.kind == "task_node":
            return self._resume_task_node(engine, node_run, record)
        return False

    def close_leftovers(self, engine: LocalExecutor, run: _Run) -> None:
        """Ends records the resumed run never reached again (cut off by a failure): ABORTED."""
        close_in_flight(
            run.id,
            self.progress,
            record_node_event=engine.control_plane.record_node_event,
            record_task_event=engine.control_plane.record_task_event,
            node_phase=NodePhase.ABORTED,
            task_phase=TaskPhase.ABORTED,
            error=restart_error(
                "the sandbox restarted while this ran, and the resumed execution ended without "
                "reaching it again"
            ),
        )

    @staticmethod
    def _take_outcome(node_run: _NodeRun, record: Any) -> None:
        node_run.inputs_uri = record.input_uri
        node_run.reported_running = True
        if record.closure.phase in _NODE_SUCCESS:
            node_run.output_uri = record.closure.output_uri
        elif record.closure.HasField("error"):
            node_run.error = execution_pb2.ExecutionError()
            node_run.error.CopyFrom(record.closure.error)
        node_run.phase = record.closure.phase
        node_run.on_done(node_run)

    @staticmethod
    def _fail(engine: LocalExecutor, node_run: _NodeRun, record: Any, message: str) -> None:
        node_run.inputs_uri = record.input_uri
        node_run.phase = record.closure.phase
        node_run.reported_running = True
        node_run.error = restart_error(message)
        engine._finish_node(node_run, NodePhase.FAILED)

    def _resume_task_node(self, engine: LocalExecutor, node_run: _NodeRun, record: Any) -> bool:
        run = node_run.scope.run
        reference = node_run.node.task_node.reference_id
        template = run.tasks.get(
            (reference.project, reference.domain, reference.name, reference.version)
        )
        if template is None or not task_runner.is_python_task(template):
            return False  # the usual start fails it with the usual message
        try:
            node_run.inputs = engine.store.read_proto(record.input_uri, literals_pb2.LiteralMap)
        except (OSError, ValueError, DecodeError) as error:
            self._fail(engine, node_run, record, f"its recorded inputs cannot be read: {error}")
            return True
        node_run.inputs_uri = record.input_uri
        node_run.phase = record.closure.phase
        node_run.reported_running = record.closure.phase == NodePhase.RUNNING

        attempts = self.progress.attempts.get(node_run.unique_id, [])
        recorded = {task.id.retry_attempt: task for task in attempts}
        traced = traced_attempts(run.path(node_run.unique_id, "logs"))
        # The failure the next attempt is decided on: a lost attempt, or the last recorded one.
        decision: execution_pb2.ExecutionError | None = None
        succeeded = None
        for number in range(max([*recorded, *traced], default=-1) + 1):
            # Attempts of the killed server are records only: they run and abort nothing.
            attempt = engine._new_attempt(run, node_run, number)
            attempt.cancelled = attempt.started = True
            node_run.attempts.append(attempt)
            task = recorded.get(number)
            phase = task.closure.phase if task is not None else TaskPhase.UNDEFINED
            if phase == TaskPhase.SUCCEEDED:
                succeeded = task
                continue
            if phase == TaskPhase.ABORTED or (task is None and number not in traced):
                continue
            if decision is not None:
                _count_failure(node_run, decision)
            if phase == TaskPhase.FAILED:
                decision = task.closure.error
                continue
            decision = restart_error(
                f"the sandbox restarted while attempt {number} ran; its task process was lost"
            )
            engine._task_event(node_run, attempt, TaskPhase.FAILED, error=decision)

        if succeeded is not None:
            node_run.output_uri = succeeded.closure.output_uri or (
                f"{node_run.attempts[succeeded.id.retry_attempt].paths.output_prefix}/outputs.pb"
            )
            if not engine.store.exists(node_run.output_uri):
                engine.store.write_proto(node_run.output_uri, literals_pb2.LiteralMap())
            engine._finish_node(node_run, NodePhase.SUCCEEDED)
            return True
        if node_run.reported_running:
            engine._start_node_deadline(node_run)

        def continue_node(resumed: _NodeRun) -> None:
            if decision is None:
                engine._start_attempt(resumed)
                return
            # The crash may have come between a failed attempt's event and the retry decision;
            # such a failure is taken as retryable, as nearly every recorded one is.
            outcome = task_runner.AttemptOutcome(
                task_runner.OutcomeKind.FAILED, error=decision, retryable=True
            )
            engine._after_failed_attempt(resumed, template, outcome)

        engine._acquire_slot(node_run, continue_node)
        return True


def _count_failure(node_run: _NodeRun, error: execution_pb2.ExecutionError) -> None:
    if error.kind == execution_pb2.ExecutionError.SYSTEM:
        node_run.system_failures += 1
    else:
        node_run.user_failures += 1


def close_in_flight(
    execution_id: identifier_pb2.WorkflowExecutionIdentifier,
    progress: RecordedProgress,
    *,
    record_node_event: Callable[[event_pb2.NodeExecutionEvent], None],
    record_task_event: Callable[[event_pb2.TaskExecutionEvent], None],
    node_phase: int,
    task_phase: int,
    error: execution_pb2.ExecutionError | None,
) -> None:
    """Moves every recorded node and task execution still in flight to a terminal phase.

    Records that became terminal since ``progress`` was read refuse the event; that is fine.
    """
    now = time.time_ns()
    stamp = {"occurred_at": _timestamp(now), "reported_at": _timestamp(now)}
    for attempts in progress.attempts.values():
        for task in attempts:
            if task.closure.phase in _TASK_DONE:
                continue
            event = event_pb2.TaskExecutionEvent(
                task_id=task.id.task_id,
                parent_node_execution_id=task.id.node_execution_id,
                retry_attempt=task.id.retry_attempt,
                phase=task_phase,
                producer_id=PRODUCER_ID,
                **stamp,
            )
            if error is not None:
                event.error.CopyFrom(error)
            _send(record_task_event, event)
    for node_id, record in progress.nodes.items():
        if record.closure.phase in _NODE_DONE:
            continue
        event = event_pb2.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=execution_id),
            producer_id=PRODUCER_ID,
            phase=node_phase,
            spec_node_id=record.metadata.spec_node_id,
            retry_group=record.metadata.retry_group,
            **stamp,
        )
        if error is not None:
            event.error.CopyFrom(error)
        _send(record_node_event, event)


def _send(record: Callable[[Any], None], event: Any) -> None:
    try:
        record(event)
    except Exception as refusal:  # noqa: BLE001 - a record that moved on refuses; that is fine
        logger.debug("restart clean-up event refused: %s", refusal)


def _timestamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


# Task processes that may have outlived the server.


def record_task_process(log_path: Path, pid: int) -> None:
    """Writes ``attempt-<n>.pid`` next to an attempt's log: the pid and its start time."""
    try:
        log_path.with_suffix(".pid").write_text(f"{pid} {_start_time(pid)}\n")
    except OSError as error:
        logger.debug("could not write the pid file of %s: %s", log_path, error)


def kill_orphaned_tasks(run_dir: Path) -> int:
    """Kills the task processes of a run that outlived a previous server; returns how many.

    A process is killed only if it still has the start time recorded for it, so a reused pid
    is never hit. Where the start time cannot be read (no ``/proc``), nothing is killed.
    """
    killed = 0
    for pid_file in run_dir.glob("*/logs/*.pid"):
        try:
            pid_text, _, started = pid_file.read_text().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        started = started.strip()
        if not started or _start_time(pid) != started:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        logger.info("killed task process %s left running by a previous sandbox", pid)
        killed += 1
    return killed


def traced_attempts(log_dir: Path) -> set[int]:
    """Attempt numbers that left a log or pid file, recorded or not."""
    numbers: set[int] = set()
    for path in log_dir.glob("attempt-*"):
        number = path.name.split(".", 1)[0].removeprefix("attempt-")
        if number.isdigit():
            numbers.add(int(number))
    return numbers


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or an empty string."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""
