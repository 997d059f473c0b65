"""Operators that launch, signal, terminate and backfill Flyte executions.

This module is imported by every DAG file that uses it, at every parse, so it imports only
``airflow.sdk`` and this package's light modules: flyte-bridge's client, its gRPC stubs and the
triggers load inside ``execute``.

Errors a retry cannot fix (bad inputs, a launch plan, execution or gate that does not exist, a
wrong connection) fail the task with ``AirflowFailException``, without retries
(:mod:`airflow_provider.errors`); the others keep Airflow's retries.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider.errors import fail_permanently
from airflow_provider.hooks.flyte import FlyteHook
from airflow_provider.links.flyte import (
    CONSOLE_URL_ATTRIBUTE,
    XCOM_CONSOLE_URL,
    FlyteExecutionLink,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from flyte_bridge.client import FlyteClient
    from flyte_bridge.errors import FlyteNotReadyError
    from flyte_bridge.models import Execution

XCOM_EXECUTION_ID = "execution_id"
"""XCom key of the execution id (``project/domain/name``), pushed as soon as it is known."""

DEFER_METHOD = "execute_complete"

SIGNAL_ACTIONS = ("approve", "reject", "set_input")

BACKFILL_FAILURE_POLICIES = ("fail_fast", "continue")
"""The core's ``flyte_bridge.backfill.FailurePolicy`` values, kept here so that a DAG file
checks them at parse without importing the core's backfill module (croniter, flyteidl)."""

SET_THE_WINDOW = (
    "set start and end (ISO 8601 text, templates or datetimes; both ends included) to choose "
    "the ticks to backfill"
)

TEMPLATES_ATTRIBUTE = "_flyte_templates"
"""Operator attribute keeping the ``execution`` template as given, for the message of
:func:`rendered_execution` (rendering replaces the field's value)."""


class FlyteExecutionFailed(AirflowException):
    """The Flyte execution ended in FAILED, ABORTED or TIMED_OUT; retries may launch again.

    Attributes:
        execution_id: ``project/domain/name`` of the execution.
        phase: Its terminal phase.
        failed_node: The node that failed, when known.
    """

    def __init__(self, message: str, *, execution_id: str, phase: str, failed_node: str | None):
        super().__init__(message)
        self.execution_id = execution_id
        self.phase = phase
        self.failed_node = failed_node


class FlyteWaitTimeout(AirflowException):
    """The task's timeout or execution timeout passed before the execution ended, or before
    the signal operator answered its gate."""


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable`` setting."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def checked_seconds(
    value: Any, name: str, *, optional: bool = False, none_means: str = ""
) -> float | None:
    """``value`` (seconds or a timedelta) in seconds, checked to be a positive, finite number.

    The operators check their durations when they are built, at DAG parse: a bad one found at
    execute time would fail the task only after its execution was launched, leaving that run
    unwatched or aborting it.

    Raises:
        ValueError: ``value`` is not a positive number of seconds or a timedelta (or None,
            with ``optional``), naming ``name`` and what it expects.
    """
    if value is None and optional:
        return None
    if isinstance(value, dt.timedelta):
        total = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        total = float(value)
    else:
        total = None
    if total is None or not math.isfinite(total) or total <= 0:
        expected = "a positive number of seconds or a timedelta"
        if optional:
            expected += f", or None{none_means}"
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return total


def checked_signal_value(action: str, value: Any) -> None:
    """Refuses a value that ``action`` cannot take: any value for approve or reject, none for
    set_input. A template is checked as given, and again in ``execute`` once rendered.

    Raises:
        ValueError: Naming the action and the value, and what it takes.
    """
    if value is not None and action != "set_input":
        # approve/reject would ignore it: value=False with approve would approve the gate,
        # and an approval cannot be taken back.
        refuse = " (to refuse the gate, use action='reject')" if action == "approve" else ""
        raise ValueError(
            f"value goes only with action='set_input'; action={action!r} takes no value, "
            f"got value={value!r}{refuse}"
        )
    if value is None and action == "set_input":
        raise ValueError(
            "action='set_input' needs a value: the input to give the gate, converted to its "
            "type (a template that renders to None, such as an xcom_pull that found no XCom, "
            "is refused when the task runs); got value=None"
        )


def check_before_launch(check: Callable[[], object]) -> None:
    """Runs ``check`` (a duration check) in ``execute``, before anything is launched: values
    set on the operator after it was built are known only then. A bad one fails the task at
    once, without retries (it would fail the same way again)."""
    try:
        check()
    except ValueError as error:
        raise AirflowFailException(str(error)) from None


def rendered_execution(operator: BaseOperator, field: str = "execution") -> Any:
    """The rendered ``execution`` template field, refused when it rendered to nothing.

    A template whose ``xcom_pull`` found no XCom (a misspelt ``task_ids`` or key, an upstream
    task that pushed none) renders to None, ``'None'``, or a ``project/domain/None`` id; sent
    on, it would only come back as an execution named ``None`` that does not exist. This
    fails the task first, without retries and before any call to admin, naming the field.
    """
    value = getattr(operator, field)
    text = value.strip() if isinstance(value, str) else None
    if value is None or text == "" or (text is not None and text.rsplit("/", 1)[-1] == "None"):
        template = getattr(operator, TEMPLATES_ATTRIBUTE, {}).get(field)
        source = f" (template {template!r})" if template is not None and template != value else ""
        raise AirflowFailException(
            f"{type(operator).__name__} field {field!r}{source} rendered to {value!r}: expected "
            "an execution id ('project/domain/name') or a name; a template that renders to "
            "None or an empty value is usually an XCom that was never pushed (check the "
            "task_ids and key of its xcom_pull, and that the upstream task ran)"
        )
    return value


def step_of(context: Context) -> tuple[str, str, str, int]:
    """What identifies a task instance across its tries: dag id, task id, run id, map index."""
    ti = context["ti"]
    map_index = ti.map_index if ti.map_index is not None else -1
    return ti.dag_id, ti.task_id, ti.run_id, map_index


def failure_message(payload: Mapping[str, Any], console_url: str | None = None) -> str:
    """Says which execution ended how, why, and at which node."""
    text = f"Flyte execution {payload['execution_id']} ended {payload.get('phase')}"
    if payload.get("failed_node"):
        text += f" at node {payload['failed_node']}"
    if payload.get("message"):
        text += f": {payload['message']}"
    if console_url:
        text += f" ({console_url})"
    return text


def first_failed_node(client: FlyteClient, execution: Execution) -> str | None:
    """The innermost failed node of a failed execution (one sync of its node tree), if any."""
    from flyte_bridge.errors import FlyteBridgeError

    try:
        node = client.sync(execution).failed_node()
    except FlyteBridgeError:
        return None
    return node.node_id if node else None


def resume_without_event(operator: BaseOperator, context: Context) -> Any:
    """Runs ``operator.execute`` again when a deferred task resumes with no trigger event.

    That happens when the deferral was interrupted (a killed worker or triggerer, a task
    instance resumed by ``airflow tasks test``). Executing again reattaches to the execution
    the first try launched or watched, by its deterministic name or given id, and waits or
    defers as before; failing here would leave that execution running unwatched.
    """
    operator.log.warning(
        "Resumed without a trigger event (the deferral was interrupted); checking the Flyte "
        "execution again"
    )
    try:
        return operator.execute(context)
    finally:
        if getattr(operator, CONSOLE_URL_ATTRIBUTE, None) == "":
            # Nothing pushed here, but the process that deferred did: the link looks it up.
            setattr(operator, CONSOLE_URL_ATTRIBUTE, None)


def check_event(event: Any, statuses: Sequence[str]) -> dict[str, Any]:
    """Validates a trigger event that crossed the triggerer/worker boundary before using it.

    An ``error`` event (the trigger failed) raises with the trigger's message:
    ``AirflowFailException`` (no retry) when the trigger marked the error ``permanent``.
    """
    if not isinstance(event, Mapping):
        raise AirflowException(f"expected a trigger event payload (a dict), got {event!r}")
    if event.get("status") not in statuses:
        raise AirflowException(
            f"trigger event status {event.get('status')!r} is not one of {sorted(statuses)}"
        )
    if not event.get("execution_id"):
        raise AirflowException(f"trigger event without an execution_id: {dict(event)!r}")
    if event["status"] == "error":
        message = (
            f"Waiting on Flyte execution {event['execution_id']} failed: {event.get('message')}"
        )
        if event.get("permanent"):
            raise AirflowFailException(message)
        raise AirflowException(message)
    return dict(event)


def execution_deadline(task: BaseOperator, context: Context) -> float | None:
    """Epoch seconds at which the task's ``execution_timeout`` passes; None without one.

    Counted from the task instance's start, which Airflow keeps across deferrals. Airflow 3
    enforces ``execution_timeout`` only while the task runs on a worker, not while it is
    deferred, so the triggers and the resumed task enforce it themselves.
    """
    if task.execution_timeout is None:
        return None
    start = context["ti"].start_date
    started = start.timestamp() if start else time.time()
    return started + task.execution_timeout.total_seconds()


def trigger_deadlines(
    task: BaseOperator, context: Context, timeout: float | None
) -> dict[str, float | None]:
    """The deadline arguments of a trigger: ``wait_started`` (now), ``end_time`` (``timeout``
    from now), ``execution_deadline`` and ``timeout_limit`` (the limit of the earlier one)."""
    now = time.time()
    end_time = None if timeout is None else now + timeout
    deadline = execution_deadline(task, context)
    limit = timeout
    if deadline is not None and (end_time is None or deadline <= end_time):
        limit = task.execution_timeout.total_seconds()
    return {
        "wait_started": now,
        "end_time": end_time,
        "execution_deadline": deadline,
        "timeout_limit": limit,
    }


def timeout_message(what: str, event: Mapping[str, Any], outcome: str) -> str:
    """``what`` did not happen within the limit of a timeout event, the time it took, and
    ``outcome`` (what became of the execution or the signal)."""
    reason = event.get("reason") or "timeout"
    limit = event.get("limit")
    within = f" within the {reason} of {limit:g}s" if limit is not None else ""
    spent = "task ran" if reason == "execution_timeout" else "waited"
    elapsed = event.get("elapsed")
    took = f" ({spent} {float(elapsed):.1f}s)" if elapsed is not None else ""
    return f"{what}{within}{took}; {outcome}"


class _WaitsForExecution(BaseOperator):
    """What waiting on an execution means for an operator: sync or deferred, with deadlines."""

    operator_extra_links = (FlyteExecutionLink(),)

    def __init__(
        self,
        *,
        flyte_conn_id: str | None = FlyteHook.default_conn_name,
        project: str | None = None,
        domain: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 5.0,
        timeout: float | dt.timedelta | None = None,
        terminate_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flyte_conn_id = flyte_conn_id
        self.project = project
        self.domain = domain
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = checked_seconds(poll_interval, "poll_interval")
        self.timeout = checked_seconds(
            timeout, "timeout", optional=True, none_means=" (wait as long as the execution runs)"
        )
        self.terminate_on_kill = terminate_on_kill
        if deferrable and not wait_for_completion:
            self.log.warning(
                "%s %s: deferrable=True has no effect with wait_for_completion=False: the task "
                "ends once the execution is launched, without waiting (to wait in the "
                "triggerer, leave wait_for_completion=True or follow it with a deferrable "
                "FlyteExecutionSensor)",
                type(self).__name__,
                self.task_id,
            )
        self._execution_id: str | None = None
        self._hook: FlyteHook | None = None
        self._flyte_console_url: str | None = None  # see CONSOLE_URL_ATTRIBUTE

    def _check_durations(self) -> None:
        """Checks ``poll_interval`` and ``timeout`` again in ``execute``, before launching (a
        value set after the operator was built is known only then), as seconds."""
        self.poll_interval = checked_seconds(self.poll_interval, "poll_interval")
        self.timeout = checked_seconds(self.timeout, "timeout", optional=True)

    @property
    def hook(self) -> FlyteHook:
        """The hook of this task's connection and default project and domain."""
        if self._hook is None:
            self._hook = FlyteHook(self.flyte_conn_id, project=self.project, domain=self.domain)
        return self._hook

    def _publish(self, context: Context, client: FlyteClient, execution: Execution) -> None:
        """Pushes the execution id and console URL right away, whatever happens next."""
        self._execution_id = str(execution.id)
        url = client.console_url(execution)
        context["ti"].xcom_push(key=XCOM_EXECUTION_ID, value=self._execution_id)
        context["ti"].xcom_push(key=XCOM_CONSOLE_URL, value=url)
        self._flyte_console_url = url
        self.log.info("Flyte execution %s: %s", self._execution_id, url)

    def _wait_then_finish(self, context: Context, client: FlyteClient, execution: Execution) -> Any:
        """Waits on the worker or defers; returns :meth:`_finish` of the ended execution."""
        if not execution.is_done and self.deferrable:
            execution = client.fetch_execution(execution.id)
            if not execution.is_done:
                self._defer(context, execution)
        if not execution.is_done:
            execution = self._wait_on_worker(client, execution)
        return self._finish(context, client, execution)

    def _defer(self, context: Context, execution: Execution) -> None:
        from airflow_provider.triggers.flyte import FlyteExecutionTrigger

        trigger = FlyteExecutionTrigger(
            execution_id=str(execution.id),
            flyte_conn_id=self.flyte_conn_id,
            poll_interval=self.poll_interval,
            terminate_on_kill=self.terminate_on_kill,
            terminate_on_timeout=self.terminate_on_kill,
            **trigger_deadlines(self, context, self.timeout),
        )
        # timeout=None: the trigger enforces both deadlines itself, so that it can do a last
        # status read and terminate the run; Airflow's own deferral timeout would just kill it.
        self.defer(trigger=trigger, method_name=DEFER_METHOD, timeout=None)

    def _wait_on_worker(self, client: FlyteClient, execution: Execution) -> Execution:
        from flyte_bridge.errors import FlyteTimeoutError

        started = time.monotonic()
        try:
            return client.wait(execution, timeout=self.timeout, poll_interval=self.poll_interval)
        except FlyteTimeoutError:
            # The wait's last poll, at its deadline, already found the run still going; another
            # read here could take every retry of a server that stopped answering.
            elapsed = time.monotonic() - started
            terminated = False
            if self.terminate_on_kill:
                terminated = self._terminate_in_time(client, execution)
            event = {"limit": self.timeout, "elapsed": elapsed}
            message = self._timeout_message(str(execution.id), event, terminated)
            raise FlyteWaitTimeout(message) from None

    def _terminate_in_time(self, client: FlyteClient, execution: Execution) -> bool:
        """Terminates a run whose wait timed out, within one RPC deadline (the task's timeout
        has passed; an admin that stopped answering must not hold it longer); True if ended."""
        from flyte_bridge.errors import FlyteBridgeError

        cause = f"Airflow task timeout of {self.timeout}s passed"
        try:
            result = client.terminate(execution, cause=cause, timeout=client.config.rpc_timeout)
        except FlyteBridgeError as error:
            self.log.warning("Could not terminate Flyte execution %s: %s", execution.id, error)
            return False
        return not result.already_terminal

    @staticmethod
    def _timeout_message(execution_id: str, event: Mapping[str, Any], terminated: bool) -> str:
        outcome = "terminated it" if terminated else "left it running"
        return timeout_message(f"Flyte execution {execution_id} did not end", event, outcome)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resumes after the trigger fired: validates its event, then finishes or fails."""
        if event is None:
            return resume_without_event(self, context)
        with fail_permanently():
            return self._complete(context, event)

    def _complete(self, context: Context, event: dict[str, Any] | None) -> Any:
        payload = check_event(event, ("done", "timeout", "error"))
        self._execution_id = payload["execution_id"]
        if payload["status"] == "timeout":
            raise FlyteWaitTimeout(
                self._timeout_message(
                    payload["execution_id"], payload, bool(payload.get("terminated"))
                )
            )
        client = self.hook.get_client()
        try:
            return self._finish(context, client, client.fetch_execution(payload["execution_id"]))
        finally:
            self.hook.close()

    def _finish(self, context: Context, client: FlyteClient, execution: Execution) -> Any:
        """Returns the task's result for a successful execution; raises for any other end."""
        if not execution.is_successful:
            self._raise_failed(client, execution)
        return str(execution.id)

    def _raise_failed(self, client: FlyteClient, execution: Execution) -> None:
        from airflow_provider.triggers.flyte import execution_payload

        payload = execution_payload(execution)
        if not payload["failed_node"] and execution.phase_name == "FAILED":
            payload["failed_node"] = first_failed_node(client, execution)
        raise FlyteExecutionFailed(
            failure_message(payload, client.console_url(execution)),
            execution_id=payload["execution_id"],
            phase=payload["phase"],
            failed_node=payload["failed_node"],
        )

    def on_kill(self) -> None:
        """Terminates the execution this task follows (best effort, logged)."""
        if not self.terminate_on_kill or not self._execution_id:
            return
        try:
            with self.hook.new_client() as client:
                client.terminate(
                    self._execution_id,
                    cause=f"Airflow task {self.task_id} killed",
                    # Airflow kills the task for good after killed_task_cleanup_time (60 s).
                    timeout=client.config.rpc_timeout,
                )
            self.log.info("Terminated Flyte execution %s", self._execution_id)
        except Exception:
            self.log.warning(
                "Could not terminate Flyte execution %s", self._execution_id, exc_info=True
            )


class FlyteLaunchOperator(_WaitsForExecution):
    """Launches a Flyte launch plan or task, at most once per task instance, and waits on it.

    The execution's name comes from the dag id, task id, run id and map index, so every try of
    the task computes the same name: a retry reattaches to a run of an earlier try that is still
    going, returns the outputs of one that succeeded, and after one that failed or was aborted
    launches the next generation under a new deterministic name (or recovers it, with
    ``recover_on_retry``); a run still ABORTING counts as aborted. Clearing the task after its
    run succeeded therefore reuses that run's outputs: only a new DAG run launches afresh.
    Nothing is kept in XCom or a state store for this.

    XCom: ``execution_id`` and ``console_url`` as soon as the run is known; the return value is
    the outputs as JSON values (a dict) when waiting, else the execution id.

    Args:
        launch_plan: Launch plan name (templated); give this or ``task``.
        task: Task name, for a single-task execution (templated).
        version: Version of the launch plan or task; None is the launch plan's active version or
            the task's latest.
        inputs: Inputs by name (templated; values are converted to the declared types).
        inputs_from_text: Read str values as text of their declared type (``"7"`` for an int,
            ``"{{ data_interval_start }}"`` for a datetime, JSON for lists and records), which is
            what templates render to unless the DAG renders native objects. False sends a str
            only to str-typed inputs.
        labels: Execution labels (templated).
        annotations: Execution annotations (templated).
        envs: Environment variables for the execution's tasks.
        flyte_conn_id: The ``flyte`` connection (None: flytekit's config and ``FLYTE_*``).
        project: Project (templated); the connection's when None.
        domain: Domain (templated); the connection's when None.
        wait_for_completion: Wait for the execution to end; else return after launching (then
            ``deferrable=True`` has no effect, and a warning says so when the DAG is parsed).
        deferrable: Wait in the triggerer; default ``[operators] default_deferrable``.
        poll_interval: Seconds between status reads (positive, or a timedelta).
        timeout: Longest wait (positive seconds or timedelta; None: no limit); when it passes
            the execution is terminated (unless ``terminate_on_kill`` is False) and the task
            fails. Both are checked when the DAG is parsed, so a bad one launches nothing.
        recover_on_retry: After a failed run, recover it (nodes that succeeded are not run
            again) instead of launching afresh.
        terminate_on_kill: Terminate the execution when the task is killed, times out, or is
            killed while deferred.
    """

    template_fields: Sequence[str] = (
        "launch_plan",
        "task",
        "version",
        "inputs",
        "labels",
        "annotations",
        "project",
        "domain",
        "flyte_conn_id",
    )
    template_fields_renderers = {"inputs": "json", "labels": "json", "annotations": "json"}
    ui_color = "#b4a7e8"

    def __init__(
        self,
        *,
        launch_plan: str | None = None,
        task: str | None = None,
        version: str | None = None,
        inputs: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        envs: dict[str, str] | None = None,
        recover_on_retry: bool = False,
        inputs_from_text: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (launch_plan is None) == (task is None):
            raise ValueError("FlyteLaunchOperator needs exactly one of launch_plan or task")
        self.launch_plan = launch_plan
        self.task = task
        self.version = version
        self.inputs = inputs or {}
        self.labels = labels or {}
        self.annotations = annotations or {}
        self.envs = envs or {}
        self.recover_on_retry = recover_on_retry
        self.inputs_from_text = inputs_from_text

    def execute(self, context: Context) -> Any:
        self._flyte_console_url = ""  # none pushed yet: the link then needs no XCom lookup
        check_before_launch(self._check_durations)
        with fail_permanently():
            return self._launch_and_wait(context)

    def _launch_and_wait(self, context: Context) -> Any:
        from flyte_bridge.reattach import launch_or_reattach

        client = self.hook.get_client()
        try:
            decision = launch_or_reattach(
                client,
                step_of(context),
                self._launcher(client),
                recover=self.recover_on_retry,
                project=self.project,
                domain=self.domain,
                target=self.launch_plan if self.launch_plan is not None else self.task,
                same_request_only=True,
            )
            self.log.info("Flyte execution %s: %s", decision.execution.id, decision.action)
            self._publish(context, client, decision.execution)
            if not self.wait_for_completion:
                return str(decision.execution.id)
            return self._wait_then_finish(context, client, decision.execution)
        finally:
            self.hook.close()

    def _launcher(self, client: FlyteClient) -> Any:
        def launch(name: str) -> Execution:
            return client.launch(
                self.launch_plan,
                task=self.task,
                version=self.version,
                inputs=self.inputs,
                name=name,
                project=self.project,
                domain=self.domain,
                labels=self.labels or None,
                annotations=self.annotations or None,
                envs=self.envs or None,
                from_text=self.inputs_from_text,
            )

        return launch

    def _finish(self, context: Context, client: FlyteClient, execution: Execution) -> Any:
        from flyte_bridge.jsonsafe import to_json_safe

        if not execution.is_successful:
            self._raise_failed(client, execution)
        return to_json_safe(client.fetch_outputs(execution))


class FlyteSignalOperator(BaseOperator):
    """Approves or rejects a gate, or sets a gate's input, of a running execution.

    Args:
        execution: The execution (templated): ``project/domain/name`` or a name; for example
            ``"{{ ti.xcom_pull(task_ids='launch', key='execution_id') }}"``.
        signal_id: The gate's signal id (templated).
        action: ``approve``, ``reject`` or ``set_input``.
        value: The input value for ``set_input`` (templated; converted to the gate's type, a
            str read as text of that type: ``"25"`` for a float gate). Only with ``set_input``,
            which needs one: a value given to ``approve`` or ``reject``, and ``set_input``
            without one, are refused when the DAG is parsed; a template that rendered to None
            fails the task before any signal.
        wait_for_gate: Wait until the execution reaches the gate (its signal exists) first,
            for up to ``timeout``; otherwise a gate not reached yet fails the task (retries
            apply).
        deferrable: Wait for the gate in the triggerer; default ``[operators]
            default_deferrable``. The trigger enforces ``timeout`` and the task's
            ``execution_timeout`` (which Airflow 3 does not enforce on a deferral); once either
            has passed the task fails and sends no signal, even for a gate reached just before.
        poll_interval: Seconds between reads while waiting for the gate (positive).
        timeout: Longest wait for the gate (positive seconds or timedelta); None waits as long
            as the execution runs.
        flyte_conn_id: The ``flyte`` connection.
        project: Project when ``execution`` is a bare name.
        domain: Domain when ``execution`` is a bare name.
    """

    template_fields: Sequence[str] = ("execution", "signal_id", "value", "flyte_conn_id")

    def __init__(
        self,
        *,
        execution: str,
        signal_id: str,
        action: str = "approve",
        value: Any = None,
        wait_for_gate: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 5.0,
        timeout: float | dt.timedelta | None = None,
        flyte_conn_id: str | None = FlyteHook.default_conn_name,
        project: str | None = None,
        domain: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if action not in SIGNAL_ACTIONS:
            raise ValueError(f"action must be one of {SIGNAL_ACTIONS}, got {action!r}")
        checked_signal_value(action, value)
        self.execution = execution
        self.signal_id = signal_id
        self.action = action
        self.value = value
        self.wait_for_gate = wait_for_gate
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = checked_seconds(poll_interval, "poll_interval")
        self.timeout = checked_seconds(
            timeout, "timeout", optional=True, none_means=" (wait as long as the execution runs)"
        )
        setattr(self, TEMPLATES_ATTRIBUTE, {"execution": execution})
        self.flyte_conn_id = flyte_conn_id
        self.project = project
        self.domain = domain

    @property
    def hook(self) -> FlyteHook:
        return FlyteHook(self.flyte_conn_id, project=self.project, domain=self.domain)

    def _check_durations(self) -> None:
        """As for the launch operator: checked again in ``execute``, before any signal."""
        self.poll_interval = checked_seconds(self.poll_interval, "poll_interval")
        self.timeout = checked_seconds(self.timeout, "timeout", optional=True)

    def execute(self, context: Context) -> Any:
        from flyte_bridge.errors import FlyteNotReadyError

        check_before_launch(self._check_durations)
        check_before_launch(lambda: checked_signal_value(self.action, self.value))
        rendered_execution(self)
        with fail_permanently(), self.hook.new_client() as client:
            execution = client.fetch_execution(self.execution)
            # Also when a deferral was interrupted and this runs again, maybe past the deadline.
            self._refuse_after_execution_timeout(context, str(execution.id))
            if self.wait_for_gate and self.deferrable:
                # One look first: a reached gate is signalled at once, a signal id that no gate
                # declares fails now rather than after the trigger waited out the execution.
                try:
                    return self._send(client, str(execution.id), wait=False)
                except FlyteNotReadyError:
                    self._defer(context, str(execution.id))
            return self._send(client, str(execution.id), wait=self.wait_for_gate)

    def _defer(self, context: Context, execution_id: str) -> None:
        from airflow_provider.triggers.flyte import FlyteGateTrigger

        trigger = FlyteGateTrigger(
            execution_id=execution_id,
            signal_id=self.signal_id,
            flyte_conn_id=self.flyte_conn_id,
            poll_interval=self.poll_interval,
            **trigger_deadlines(self, context, self.timeout),
        )
        self.defer(trigger=trigger, method_name=DEFER_METHOD, timeout=None)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Sends the signal once the trigger saw the gate reached, unless the task's
        ``execution_timeout`` has passed by then; fails otherwise."""
        if event is None:
            return resume_without_event(self, context)
        payload = check_event(event, ("reached", "done", "timeout", "error"))
        execution_id = payload["execution_id"]
        if payload["status"] == "done":
            raise AirflowFailException(
                f"Flyte execution {execution_id} ended {payload.get('phase')} before reaching "
                f"gate {self.signal_id}"
            )
        if payload["status"] == "timeout":
            what = f"Flyte execution {execution_id} did not reach gate {self.signal_id}"
            raise FlyteWaitTimeout(timeout_message(what, payload, "the signal was not sent"))
        self._refuse_after_execution_timeout(context, execution_id)
        with fail_permanently(), self.hook.new_client() as client:
            return self._send(client, execution_id, wait=False)

    def _refuse_after_execution_timeout(self, context: Context, execution_id: str) -> None:
        """Fails the task, sending nothing, once its ``execution_timeout`` has passed: the
        trigger may have seen the gate just before it, and the task resumed just after."""
        deadline = execution_deadline(self, context)
        if deadline is None or time.time() < deadline:
            return
        limit = self.execution_timeout.total_seconds()
        ran = time.time() - (deadline - limit)
        raise FlyteWaitTimeout(
            f"The execution_timeout of {limit:g}s passed (task ran {ran:.1f}s) before gate "
            f"{self.signal_id} of Flyte execution {execution_id} was answered; the signal was "
            "not sent"
        )

    def _send(self, client: FlyteClient, execution_id: str, *, wait: bool) -> str:
        from flyte_bridge.errors import FlyteNotReadyError

        try:
            return self._set_signal(client, execution_id, wait=wait)
        except FlyteNotReadyError as error:
            # The core's hint names its own wait_for_gate=<seconds>; here it is a bool and the
            # limit is timeout=. Same type, so retries and callers see what they saw before.
            raise FlyteNotReadyError(
                self._not_reached(error, wait), subject=error.subject
            ) from None

    def _not_reached(self, error: FlyteNotReadyError, wait: bool) -> str:
        """The message for a gate not reached, in this operator's parameters."""
        what = error.message.removesuffix(f"; {error.hint}") if error.hint else error.message
        if not self.wait_for_gate:
            return (
                f"{what}; {type(self).__name__} has wait_for_gate=False, so it does not wait: "
                "set wait_for_gate=True (the default) to wait for the gate, with timeout= "
                "seconds as the longest wait (None: as long as the execution runs)"
            )
        if wait and self.timeout is not None:
            return f"{what}; waited timeout={self.timeout:g}s (a longer timeout= waits longer)"
        return str(error)

    def _set_signal(self, client: FlyteClient, execution_id: str, *, wait: bool) -> str:
        wait_for_gate = (self.timeout if self.timeout is not None else 10**9) if wait else None
        if self.action == "set_input":
            client.set_input(
                execution_id,
                self.signal_id,
                self.value,
                wait_for_gate=wait_for_gate,
                from_text=True,
            )
        else:
            getattr(client, self.action)(execution_id, self.signal_id, wait_for_gate=wait_for_gate)
        self.log.info("Sent %s to gate %s of %s", self.action, self.signal_id, execution_id)
        return execution_id


class FlyteTerminateOperator(BaseOperator):
    """Terminates an execution; an execution that already ended is left as it is (idempotent).

    Args:
        execution: The execution (templated): ``project/domain/name`` or a name.
        cause: Why, recorded on the execution (templated).
        flyte_conn_id: The ``flyte`` connection.
        project: Project when ``execution`` is a bare name.
        domain: Domain when ``execution`` is a bare name.
    """

    template_fields: Sequence[str] = ("execution", "cause", "flyte_conn_id")

    def __init__(
        self,
        *,
        execution: str,
        cause: str = "terminated from Airflow",
        flyte_conn_id: str | None = FlyteHook.default_conn_name,
        project: str | None = None,
        domain: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution = execution
        setattr(self, TEMPLATES_ATTRIBUTE, {"execution": execution})
        self.cause = cause
        self.flyte_conn_id = flyte_conn_id
        self.project = project
        self.domain = domain

    def execute(self, context: Context) -> dict[str, Any]:
        rendered_execution(self)
        hook = FlyteHook(self.flyte_conn_id, project=self.project, domain=self.domain)
        with fail_permanently(), hook.new_client() as client:
            result = client.terminate(self.execution, cause=self.cause)
        if result.already_terminal:
            self.log.info(
                "Flyte execution %s had already ended %s", result.execution_id, result.phase.name
            )
        else:
            self.log.info("Terminated Flyte execution %s", result.execution_id)
        return {
            "execution_id": str(result.execution_id),
            "phase": result.phase.name,
            "already_terminal": result.already_terminal,
        }


class FlyteBackfillOperator(_WaitsForExecution):
    """Backfills a scheduled launch plan over a date range, as one backfill execution.

    The window is ``start`` to ``end`` with both ends included, as the core and the command
    line take it. Without them it is the DAG run's data interval, which Airflow defines as
    half-open: its start is included and its end is not, so consecutive scheduled runs, whose
    intervals meet, do not both run the tick at their boundary (it belongs to the later run). A
    manual run's data interval is one instant (or none, without a logical date) and holds no
    tick: such runs fail, asking for ``start`` and ``end``.

    Args:
        launch_plan: The scheduled launch plan (templated).
        start: First schedule time, included (templated, ISO 8601 or a datetime); default the
            data interval's start.
        end: Last schedule time, included (templated; a bare date means the end of that day);
            default the data interval's end, excluded. ``end="{{ data_interval_end }}"``
            includes it.
        version: Launch plan version; None is the active one.
        parallel: Run the instances in parallel instead of one after another.
        failure_policy: ``fail_fast`` or ``continue`` (another value is refused when the DAG is
            parsed).
        dry_run: Log the plan (the schedule times) and launch nothing.
        inputs: Inputs every run of the backfill gets, by name (templated; not the schedule's
            kickoff-time input, which each run sets). Other inputs keep the launch plan's
            defaults.
        inputs_from_text: As for :class:`FlyteLaunchOperator`.
        labels: Labels of the backfill execution (templated).
        annotations: Annotations of the backfill execution (templated).
        wait_for_completion, deferrable, poll_interval, timeout, terminate_on_kill: as for
            :class:`FlyteLaunchOperator`.
    """

    template_fields: Sequence[str] = (
        "launch_plan",
        "start",
        "end",
        "version",
        "inputs",
        "labels",
        "annotations",
        "project",
        "domain",
        "flyte_conn_id",
    )
    template_fields_renderers = {"inputs": "json", "labels": "json", "annotations": "json"}

    def __init__(
        self,
        *,
        launch_plan: str,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        version: str | None = None,
        parallel: bool = False,
        failure_policy: str = "fail_fast",
        dry_run: bool = False,
        inputs: dict[str, Any] | None = None,
        inputs_from_text: bool = True,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if failure_policy not in BACKFILL_FAILURE_POLICIES:
            raise ValueError(
                f"failure_policy must be one of {BACKFILL_FAILURE_POLICIES}, got {failure_policy!r}"
            )
        self.launch_plan = launch_plan
        self.inputs = inputs or {}
        self.inputs_from_text = inputs_from_text
        self.start = start
        self.end = end
        self.version = version
        self.parallel = parallel
        self.failure_policy = failure_policy
        self.dry_run = dry_run
        self.labels = labels or {}
        self.annotations = annotations or {}

    def execute(self, context: Context) -> Any:
        self._flyte_console_url = ""  # none pushed yet (a dry run pushes none at all)
        check_before_launch(self._check_durations)
        with fail_permanently():
            return self._backfill_and_wait(context)

    def _backfill_and_wait(self, context: Context) -> Any:
        from flyte_bridge.reattach import launch_or_reattach

        start, end = self._window(context)
        client = self.hook.get_client()
        try:
            if self.dry_run:
                result = self._backfill(client, start, end, name=None, dry_run=True)
                plan = [tick.isoformat() for tick in result.plan]
                self.log.info(
                    "Backfill of %s would run %d times: %s", self.launch_plan, len(plan), plan
                )
                return plan

            def launch(name: str) -> Execution:
                return self._backfill(client, start, end, name=name, dry_run=False).execution

            # No same_request_only: the generated launch plan's version changes with the
            # launch plan's own, so a retry after a new registration would be refused.
            decision = launch_or_reattach(
                client,
                step_of(context),
                launch,
                project=self.project,
                domain=self.domain,
                target=self.launch_plan,
            )
            self._publish(context, client, decision.execution)
            if not self.wait_for_completion:
                return str(decision.execution.id)
            return self._wait_then_finish(context, client, decision.execution)
        finally:
            self.hook.close()

    def _window(self, context: Context) -> tuple[dt.datetime, dt.datetime]:
        """The window to backfill, both ends included: ``start`` and ``end`` as rendered, the
        data interval's start for a missing ``start``, the instant before its end for a
        missing ``end``. A data interval that is one instant (a trigger timetable's, Airflow
        3's default, or a manual run's) is that instant, so its tick, if any, is backfilled."""
        interval = (context.get("data_interval_start"), context.get("data_interval_end"))
        if (self.start is None or self.end is None) and None in interval:
            raise AirflowFailException(
                f"{type(self).__name__} backfills the DAG run's data interval unless given "
                "start and end, and this run has no data interval (a run without a logical "
                f"date): {SET_THE_WINDOW}"
            )
        start = _datetime(interval[0] if self.start is None else self.start, "start")
        if self.end is not None:
            return start, _datetime(self.end, "end")
        end = _datetime(interval[1], "end")
        if end == start:
            return start, end
        if end < start:
            raise AirflowFailException(
                f"the backfill {self._default_window(start, end)} ends before it starts; "
                f"{SET_THE_WINDOW}"
            )
        # Airflow's data interval is half-open: the tick at its end is the next run's.
        return start, end - dt.timedelta(microseconds=1)

    def _default_window(self, start: dt.datetime, end: dt.datetime) -> str:
        """Names a window that takes a default from the data interval, its end excluded."""
        what = "data interval" if self.start is None else "window"
        return f"{what} [{start.isoformat()}, {end.isoformat()})"

    def _backfill(
        self, client: FlyteClient, start: dt.datetime, end: dt.datetime, **kw: Any
    ) -> Any:
        from flyte_bridge.errors import FlyteNoScheduleTickError

        try:
            return client.launch_backfill(
                self.launch_plan,
                start,
                end,
                version=self.version,
                parallel=self.parallel,
                failure_policy=self.failure_policy,
                project=self.project,
                domain=self.domain,
                labels=self.labels or None,
                annotations=self.annotations or None,
                inputs=self.inputs or None,
                from_text=self.inputs_from_text,
                **kw,
            )
        except FlyteNoScheduleTickError:
            if self.end is not None:
                raise
            if start == end:
                raise AirflowFailException(
                    f"no schedule tick of {self.launch_plan} falls at {start.isoformat()}, "
                    "this run's data interval, which is one instant (a manual run's, or every "
                    f"run's under a trigger timetable such as Airflow 3's default); "
                    f"{SET_THE_WINDOW}"
                ) from None
            excluded = end + dt.timedelta(microseconds=1)
            raise AirflowFailException(
                f"no schedule tick of {self.launch_plan} falls in the "
                f"{self._default_window(start, excluded)}, whose end is excluded (it is the "
                f"next DAG run's); {SET_THE_WINDOW}"
            ) from None


def _datetime(value: str | dt.datetime, what: str) -> dt.datetime:
    """A rendered template (ISO 8601 text) or a datetime, as an aware datetime; a bare date as
    the end is the end of that day, as on the command line."""
    from flyte_bridge.backfill import parse_window_bound
    from flyte_bridge.errors import FlyteInvalidInputError

    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    try:
        return parse_window_bound(str(value), end=what == "end")
    except FlyteInvalidInputError as error:
        raise AirflowFailException(f"backfill {error.message}") from None
