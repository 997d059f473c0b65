"""Triggers that wait on Flyte executions and gates in the triggerer, on the asyncio client.

Arguments are JSON values only (strings, numbers, booleans, lists): since Airflow 3.2 trigger
kwargs go through ``airflow.sdk.serde``, which refuses other types, and a trigger must never carry
a live client across the triggerer boundary. Deadlines are wall-clock epoch seconds because they
are computed on a worker and compared in the triggerer, another process.

Every :class:`FlyteExecutionTrigger` of one triggerer that reaches the same endpoint shares the
core's :class:`~flyte_bridge.watcher.AsyncExecutionWatcher` of the event loop, so N deferred tasks
cost ceil(N/100) ListExecutions calls a tick per project and domain instead of N GetExecution
calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.errors import is_permanent
from airflow_provider.hooks.flyte import FlyteHook

logger = logging.getLogger(__name__)

ON_KILL_BUDGET = 20.0
"""Seconds a trigger's kill handler may spend terminating the execution."""

EVENT_STATUSES = frozenset({"done", "timeout", "error", "reached"})


def wait_deadline(end_time: float | None, execution_deadline: float | None) -> float | None:
    """The earlier of two optional epoch deadlines."""
    deadlines = [d for d in (end_time, execution_deadline) if d is not None]
    return min(deadlines) if deadlines else None


def execution_payload(execution: Any, **extra: Any) -> dict[str, Any]:
    """The JSON event payload describing an execution's phase and error."""
    error = execution.error
    payload = {
        "execution_id": str(execution.id),
        "phase": execution.phase_name,
        "message": error.message if error else "",
        "error_code": error.code if error else None,
        "failed_node": error.failed_node if error else None,
    }
    payload.update(extra)
    return payload


class _DeadlineTrigger(BaseTrigger):
    """A trigger that waits until the earlier of the task's ``timeout`` and ``execution_timeout``.

    Airflow 3 does not enforce ``execution_timeout`` on a deferral (the task runner sends only
    the deferral's own timeout, which the operators leave unset), so the trigger does.

    Args:
        wait_started: Epoch seconds when the task began waiting (for the elapsed time reported).
        end_time: Epoch deadline of the task's ``timeout`` (None: no limit).
        execution_deadline: Epoch deadline from the task's ``execution_timeout``.
        timeout_limit: The configured limit in seconds, as reported in the timeout message.
    """

    def __init__(
        self,
        *,
        wait_started: float | None = None,
        end_time: float | None = None,
        execution_deadline: float | None = None,
        timeout_limit: float | None = None,
    ) -> None:
        super().__init__()
        self.wait_started = time.time() if wait_started is None else float(wait_started)
        self.end_time = end_time
        self.execution_deadline = execution_deadline
        self.timeout_limit = timeout_limit

    def _deadline_kwargs(self) -> dict[str, Any]:
        return {
            "wait_started": self.wait_started,
            "end_time": self.end_time,
            "execution_deadline": self.execution_deadline,
            "timeout_limit": self.timeout_limit,
        }

    def _remaining(self) -> float | None:
        """Seconds until the earlier deadline (0 once it passed); None without one."""
        deadline = wait_deadline(self.end_time, self.execution_deadline)
        return None if deadline is None else max(0.0, deadline - time.time())

    def _reason(self) -> str:
        """Which deadline comes first: ``timeout`` or ``execution_timeout``."""
        if self.execution_deadline is not None and (
            self.end_time is None or self.execution_deadline <= self.end_time
        ):
            return "execution_timeout"
        return "timeout"

    def _timeout_report(self) -> dict[str, Any]:
        """``reason``, ``limit`` and ``elapsed`` of a wait whose deadline passed; the execution
        timeout's elapsed time counts from the task's start, not from the deferral."""
        reason = self._reason()
        elapsed = self._elapsed()
        if reason == "execution_timeout" and self.timeout_limit is not None:
            task_started = self.execution_deadline - self.timeout_limit
            elapsed = round(time.time() - task_started, 3)
        return {"reason": reason, "limit": self.timeout_limit, "elapsed": elapsed}

    def _elapsed(self) -> float:
        return round(time.time() - self.wait_started, 3)


class FlyteExecutionTrigger(_DeadlineTrigger):
    """Waits until an execution ends, then fires one event; terminates it on kill and timeout.

    Event payload: ``status`` (``done``, ``timeout`` or ``error``), ``execution_id``, ``phase``,
    ``message``, ``error_code``, ``failed_node``, ``elapsed`` (seconds since ``wait_started``),
    for timeouts ``limit``, ``reason`` and ``terminated`` (and ``phase`` the last one read, None
    when admin never answered), and for errors ``permanent`` (a retry would fail the same way: the
    task fails without retrying). A timeout event comes within the deadline plus one RPC deadline
    (and the terminate call's) even when admin stops answering.

    Args:
        execution_id: ``project/domain/name`` of the execution.
        flyte_conn_id: The connection id (None: flytekit's config).
        poll_interval: Seconds between status reads.
        wait_started, end_time, execution_deadline, timeout_limit: The deadlines, as for
            :class:`_DeadlineTrigger`.
        terminate_on_kill: Terminate the execution when a user kills the deferred task.
        terminate_on_timeout: Terminate the execution when a deadline passes.
    """

    def __init__(
        self,
        execution_id: str,
        flyte_conn_id: str | None = FlyteHook.default_conn_name,
        poll_interval: float = 5.0,
        wait_started: float | None = None,
        end_time: float | None = None,
        execution_deadline: float | None = None,
        timeout_limit: float | None = None,
        terminate_on_kill: bool = True,
        terminate_on_timeout: bool = True,
    ) -> None:
        super().__init__(
            wait_started=wait_started,
            end_time=end_time,
            execution_deadline=execution_deadline,
            timeout_limit=timeout_limit,
        )
        self.execution_id = execution_id
        self.flyte_conn_id = flyte_conn_id
        self.poll_interval = float(poll_interval)
        self.terminate_on_kill = terminate_on_kill
        self.terminate_on_timeout = terminate_on_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "execution_id": self.execution_id,
                "flyte_conn_id": self.flyte_conn_id,
                "poll_interval": self.poll_interval,
                **self._deadline_kwargs(),
                "terminate_on_kill": self.terminate_on_kill,
                "terminate_on_timeout": self.terminate_on_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            payload = await self._wait()
        except Exception as exc:
            logger.exception("Waiting on execution %s failed", self.execution_id)
            payload = {
                "status": "error",
                "execution_id": self.execution_id,
                "message": f"{type(exc).__name__}: {exc}",
                "permanent": is_permanent(exc),
                "elapsed": self._elapsed(),
            }
        yield TriggerEvent(payload)

    async def on_kill(self) -> None:
        """Terminates the execution when a user marks, clears or fails the deferred task.

        Airflow calls this only for a user's action, never when the triggerer restarts or hands
        the trigger to another triggerer, so those leave the execution running.
        """
        if not self.terminate_on_kill:
            return
        who = f"Airflow task {self.task_id}" if self.task_id else "The Airflow task"
        cause = f"{who} was killed while deferred"
        await asyncio.wait_for(self._terminate(cause), timeout=ON_KILL_BUDGET)

    async def _wait(self) -> dict[str, Any]:
        from flyte_bridge.errors import FlyteTimeoutError
        from flyte_bridge.watcher import AsyncExecutionWatcher

        watcher = AsyncExecutionWatcher.shared(await FlyteHook(self.flyte_conn_id).aget_config())
        remaining = self._remaining()
        seen: list[Any] = []
        try:
            # At the deadline the watcher reads the status once more (within one RPC deadline,
            # whatever admin does): a run that ended just before it is returned, not reported
            # as a timeout.
            execution = await watcher.wait_for(
                self.execution_id,
                timeout=remaining,
                poll_interval=self.poll_interval,
                on_update=seen.append,
            )
        except FlyteTimeoutError as error:
            if error.grpc_code is not None:
                raise  # an RPC that ran out of time, not the wait
            return await self._timed_out(watcher.client, seen[-1] if seen else None, error)
        return execution_payload(execution, status="done", elapsed=self._elapsed())

    async def _timed_out(
        self, client: Any, execution: Any | None, error: Exception
    ) -> dict[str, Any]:
        """The timeout event; ``execution`` is the last state read (None: admin never answered)."""
        report = self._timeout_report()
        terminated = False
        if self.terminate_on_timeout:
            cause = f"Airflow task {report['reason']} of {self.timeout_limit}s passed"
            # One RPC deadline, not every retry of it: the event must come soon after the
            # deadline even from an admin that stopped answering (then the run is left running).
            terminated = await self._terminate(cause, client, budget=client.config.rpc_timeout)
        extra = {"status": "timeout", **report, "terminated": terminated}
        if execution is None:
            return {
                "execution_id": self.execution_id,
                "phase": None,
                "message": str(error),
                "error_code": None,
                "failed_node": None,
                **extra,
            }
        return execution_payload(execution, **extra)

    async def _terminate(self, cause: str, client: Any = None, budget: float | None = None) -> bool:
        """Terminates the execution within ``budget`` seconds (None: as long as the client's
        retries take); True if this call ended it. Best effort: errors are logged."""
        owned = client is None
        try:
            if owned:
                client = await FlyteHook(self.flyte_conn_id).aget_client()
            result = await client.terminate(self.execution_id, cause=cause, timeout=budget)
            logger.info("Terminated execution %s: %s", self.execution_id, cause)
            return not result.already_terminal
        except Exception:
            logger.warning("Could not terminate execution %s", self.execution_id, exc_info=True)
            return False
        finally:
            if owned and client is not None:
                await client.close()


class FlyteGateTrigger(_DeadlineTrigger):
    """Waits until an execution reaches a gate (its signal exists) or ends.

    Event payload: ``status`` ``reached`` (the signal exists), ``done`` (the execution ended
    before reaching it), ``timeout`` (with ``reason``, ``limit`` and ``elapsed``) or ``error``
    (with ``message`` and ``permanent``), with ``execution_id`` and ``signal_id``. It sets no
    signal: the resumed task does, unless its ``execution_timeout`` has passed by then.

    Args:
        execution_id: ``project/domain/name`` of the execution.
        signal_id: The gate's signal id.
        flyte_conn_id: The connection id (None: flytekit's config).
        poll_interval: Seconds between reads.
        end_time: Epoch deadline of the task's ``timeout`` (None: no limit).
        wait_started, execution_deadline, timeout_limit: As for :class:`_DeadlineTrigger`.
    """

    def __init__(
        self,
        execution_id: str,
        signal_id: str,
        flyte_conn_id: str | None = FlyteHook.default_conn_name,
        poll_interval: float = 5.0,
        end_time: float | None = None,
        wait_started: float | None = None,
        execution_deadline: float | None = None,
        timeout_limit: float | None = None,
    ) -> None:
        super().__init__(
            wait_started=wait_started,
            end_time=end_time,
            execution_deadline=execution_deadline,
            timeout_limit=timeout_limit,
        )
        self.execution_id = execution_id
        self.signal_id = signal_id
        self.flyte_conn_id = flyte_conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "execution_id": self.execution_id,
                "signal_id": self.signal_id,
                "flyte_conn_id": self.flyte_conn_id,
                "poll_interval": self.poll_interval,
                **self._deadline_kwargs(),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        base = {"execution_id": self.execution_id, "signal_id": self.signal_id}
        try:
            client = await FlyteHook(self.flyte_conn_id).aget_client()
            try:
                payload = await self._wait(client)
            finally:
                await client.close()
        except Exception as exc:
            logger.exception("Waiting for gate %s failed", self.signal_id)
            payload = {
                "status": "error",
                "message": f"{type(exc).__name__}: {exc}",
                "permanent": is_permanent(exc),
            }
        yield TriggerEvent({**base, **payload})

    async def _wait(self, client: Any) -> dict[str, Any]:
        from flyte_bridge.errors import FlyteNotFoundError, FlyteTimeoutError

        try:
            await client.wait_for_gate(
                self.execution_id,
                self.signal_id,
                timeout=self._remaining(),
                poll_interval=self.poll_interval,
            )
        except FlyteTimeoutError as error:
            if error.grpc_code is not None:
                raise  # an RPC that ran out of time, not the wait for the gate
            return {"status": "timeout", **self._timeout_report()}
        except FlyteNotFoundError:
            # Either no gate declares the id (the error says which do), or the run ended first.
            execution = await client.fetch_execution(self.execution_id)
            if execution.is_done:
                return {"status": "done", "phase": execution.phase_name}
            raise
        return {"status": "reached"}
