"""A sensor that waits for a Flyte execution to end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)

from airflow_provider.errors import fail_permanently
from airflow_provider.hooks.flyte import FlyteHook
from airflow_provider.links.flyte import XCOM_CONSOLE_URL, FlyteExecutionLink
from airflow_provider.operators.flyte import (
    DEFER_METHOD,
    TEMPLATES_ATTRIBUTE,
    XCOM_EXECUTION_ID,
    check_event,
    checked_seconds,
    default_deferrable,
    failure_message,
    rendered_execution,
    resume_without_event,
    timeout_message,
    trigger_deadlines,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

TERMINAL_PHASES = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})


def success_phases_of(value: str | Sequence[str]) -> frozenset[str]:
    """The terminal phases given as ``success_phases``: one phase name, or a list of them.

    Raises:
        ValueError: Not a phase name or a list of them, or a name that is not a terminal phase.
    """
    names = [value] if isinstance(value, str) else value
    expected = f"a terminal phase name or a list of them, among {sorted(TERMINAL_PHASES)}"
    if not isinstance(names, Iterable) or isinstance(names, Mapping):
        raise ValueError(f"success_phases must be {expected}; got {value!r}")
    names = list(names)
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"success_phases must be {expected}; got {value!r}")
    phases = frozenset(name.strip().upper() for name in names)
    if not phases:
        raise ValueError(f"success_phases must be {expected}; got no phase: {value!r}")
    unknown = sorted(phases - TERMINAL_PHASES)
    if unknown:
        raise ValueError(
            f"success_phases must be {expected}; got {value!r}, where {unknown} "
            f"{'is not a terminal phase' if len(unknown) == 1 else 'are not terminal phases'}"
        )
    return phases


class FlyteExecutionSensor(BaseSensorOperator):
    """Waits until a Flyte execution ends in one of ``success_phases``.

    Any other terminal phase fails the task at once with the execution's error (or skips it with
    ``soft_fail``, deferrable or not); so does an execution that does not exist: the sensor
    waits for an execution to end, not to be launched (to wait for another DAG's launch, sense
    that task first). The sensor does not terminate the execution on timeout or kill: it did
    not launch it.

    Args:
        execution: The execution (templated): ``project/domain/name`` or a name; for example
            ``"{{ ti.xcom_pull(task_ids='launch', key='execution_id') }}"``.
        success_phases: Terminal phases that count as success (default ``SUCCEEDED``): a list
            of phase names, or one name (``"ABORTED"``).
        flyte_conn_id: The ``flyte`` connection.
        project: Project when ``execution`` is a bare name.
        domain: Domain when ``execution`` is a bare name.
        deferrable: Wait in the triggerer; default ``[operators] default_deferrable``. The
            trigger enforces ``timeout`` and the task's ``execution_timeout`` (which Airflow 3
            does not enforce on a deferral): the task fails as on a worker, and the execution
            runs on.

    ``poke_interval`` must be positive: Airflow takes 0, but a sensor on admin would then poll
    it back to back.
    """

    template_fields: Sequence[str] = ("execution", "flyte_conn_id")
    operator_extra_links = (FlyteExecutionLink(),)

    def __init__(
        self,
        *,
        execution: str,
        success_phases: Sequence[str] = ("SUCCEEDED",),
        flyte_conn_id: str | None = FlyteHook.default_conn_name,
        project: str | None = None,
        domain: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.success_phases = success_phases_of(success_phases)
        # Airflow refuses a negative poke_interval; 0 would poll admin back to back.
        checked_seconds(self.poke_interval, "poke_interval")
        self.execution = execution
        setattr(self, TEMPLATES_ATTRIBUTE, {"execution": execution})
        self.flyte_conn_id = flyte_conn_id
        self.project = project
        self.domain = domain
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._execution_id: str | None = None
        self._flyte_console_url: str | None = None  # see CONSOLE_URL_ATTRIBUTE

    @property
    def hook(self) -> FlyteHook:
        return FlyteHook(self.flyte_conn_id, project=self.project, domain=self.domain)

    def execute(self, context: Context) -> Any:
        self._flyte_console_url = ""  # none pushed yet: the link then needs no XCom lookup
        if not self.deferrable:
            return super().execute(context)
        try:
            if self.poke(context):
                return None
        except AirflowFailException as exc:
            # The base class maps a failed poke to a skip only in its own poke loop, which a
            # deferrable sensor does not run; resuming after the trigger is mapped by Airflow.
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"Skipped (soft_fail/never_fail): {exc}") from exc
            raise
        from airflow_provider.triggers.flyte import FlyteExecutionTrigger

        self.defer(
            trigger=FlyteExecutionTrigger(
                execution_id=self._execution_id,
                flyte_conn_id=self.flyte_conn_id,
                poll_interval=self.poke_interval,
                terminate_on_kill=False,
                terminate_on_timeout=False,
                **trigger_deadlines(self, context, self.timeout),
            ),
            method_name=DEFER_METHOD,
            timeout=None,
        )

    def poke(self, context: Context) -> bool:
        rendered_execution(self)  # before any RPC; fails (or skips, with soft_fail) as a poke
        with fail_permanently(), self.hook.new_client() as client:
            execution = client.fetch_execution(self.execution)
            if self._execution_id is None:
                # For the "Flyte execution" link and downstream tasks, as the operators do.
                self._execution_id = str(execution.id)
                context["ti"].xcom_push(key=XCOM_EXECUTION_ID, value=self._execution_id)
                url = client.console_url(execution)
                context["ti"].xcom_push(key=XCOM_CONSOLE_URL, value=url)
                self._flyte_console_url = url
            if not execution.is_done:
                self.log.info("Flyte execution %s is %s", execution.id, execution.phase_name)
                return False
            return self._ended(execution.phase_name, client.console_url(execution), execution)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """Resumes after the trigger fired: validates its event, then succeeds or fails."""
        if event is None:
            resume_without_event(self, context)
            return
        payload = check_event(event, ("done", "timeout", "error"))
        if payload["status"] == "timeout":
            what = f"Flyte execution {payload['execution_id']} did not end"
            message = timeout_message(what, payload, "left it running")
            if payload.get("reason") == "execution_timeout":
                # As on a worker: the task fails, and retries if it has retries left.
                raise AirflowTaskTimeout(message)
            raise AirflowSensorTimeout(message)
        if payload["phase"] not in self.success_phases:
            raise AirflowFailException(failure_message(payload))

    def _ended(self, phase: str, console_url: str, execution: Any) -> bool:
        if phase in self.success_phases:
            self.log.info("Flyte execution %s ended %s", execution.id, phase)
            return True
        from airflow_provider.triggers.flyte import execution_payload

        raise AirflowFailException(failure_message(execution_payload(execution), console_url))
