"""The asyncio Flyte client: the same methods as :class:`~flyte_bridge.client.FlyteClient`,
awaited, over grpc.aio. Both clients run the same operations; only the call layer differs.

Example:
    >>> from flyte_bridge.aio import AsyncFlyteClient
    >>> async with AsyncFlyteClient.from_flytekit_config() as client:
    ...     execution = await client.launch("daily_report", inputs={"day": "2024-01-02"})
    ...     execution = await client.wait(execution, timeout=3600)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte_bridge._base import DEFAULT_CONCURRENCY, ClientBase, DataTarget
from flyte_bridge._requests import ExecutionLike
from flyte_bridge._runtime import Op, check_callback, closed_error, run_async
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteClientClosedError
from flyte_bridge.models import Execution, Project, Signal, TerminateResult

if TYPE_CHECKING:
    from flyteidl.admin import launch_plan_pb2
    from flyteidl.core.types_pb2 import LiteralType

    from flyte_bridge.backfill import BackfillResult
    from flyte_bridge.metrics import ExecutionSpan
    from flyte_bridge.watcher import AsyncExecutionWatcher


class AsyncFlyteClient(ClientBase):
    """An asyncio client for Flyte executions over flyteidl's gRPC services (grpc.aio).

    Usable by many coroutines of one event loop at once. Every ``execution`` argument takes an
    :class:`Execution`, an :class:`ExecutionId`, ``"project/domain/name"`` or a bare name
    (completed by the config's default project and domain).

    Args:
        config: Where admin is and how to reach it.
        max_concurrency: RPCs in flight at most while syncing trees or reading data.
        transport: A ready :class:`~flyte_bridge.transport.AsyncTransport` to use instead of one
            built from ``config``.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        transport: Any = None,
    ) -> None:
        super().__init__(config, max_concurrency)
        if transport is None:
            from flyte_bridge.transport import AsyncTransport

            transport = AsyncTransport(config)
        self.transport = transport
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False
        self._running: set[asyncio.Task[Any]] = set()
        self._cancelled_by_close: set[asyncio.Task[Any]] = set()
        self._watchers: weakref.WeakSet[AsyncExecutionWatcher] = weakref.WeakSet()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called; every call then raises FlyteClientClosedError."""
        return self._closed

    async def close(self) -> None:
        """Closes the channel.

        Every call in flight and every wait (``wait``, a watcher's ``wait_for``) then fails at
        once with FlyteClientClosedError, as does any later call.
        """
        self._closed = True
        for watcher in list(self._watchers):
            watcher._client_closed()
        current = asyncio.current_task()
        for task in list(self._running):
            if task is current or task.done():
                continue
            self._cancelled_by_close.add(task)
            loop = task.get_loop()
            if loop is asyncio.get_running_loop():
                task.cancel()
            else:
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:  # that loop is closed: nothing runs there any more
                    self._cancelled_by_close.discard(task)
        await self.transport.close()

    async def __aenter__(self) -> AsyncFlyteClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, op: Op[Any], waiting: Any = None) -> Any:
        """Runs ``op``; ``waiting`` (what a wait waits for) names it if the client closes."""
        if self._closed:
            op.close()
            raise closed_error(self)
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            limit = self._limits[loop] = asyncio.Semaphore(self.max_concurrency)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            return await run_async(op, self.transport, limit)
        except FlyteClientClosedError:
            if waiting is None:
                raise
            raise closed_error(self, waiting, during=True) from None
        except asyncio.CancelledError:
            if not self._closed or task is None:
                raise
            if task in self._cancelled_by_close:
                self._cancelled_by_close.discard(task)
                task.uncancel()
            if task.cancelling():  # the caller's own cancellation
                raise
            op.close()
            raise closed_error(self, waiting, during=True) from None
        finally:
            if task is not None:
                self._running.discard(task)

    # Reading --------------------------------------------------------------------------------

    async def fetch_execution(
        self, name_or_id: ExecutionLike, project: str | None = None, domain: str | None = None
    ) -> Execution:
        """As :meth:`FlyteClient.fetch_execution`, awaited."""
        return await self._run(self._fetch_op(name_or_id, project, domain))

    async def find_execution(
        self, name_or_id: ExecutionLike, project: str | None = None, domain: str | None = None
    ) -> Execution | None:
        """As :meth:`FlyteClient.find_execution`, awaited."""
        return await self._run(self._find_op(name_or_id, project, domain))

    async def list_executions(
        self,
        project: str | None = None,
        domain: str | None = None,
        filters: Any = None,
        sort: Any = None,
        page_size: int = 100,
    ) -> AsyncIterator[Execution]:
        """As :meth:`FlyteClient.list_executions`, as an async iterator."""
        pages = self._pages(project, domain, filters, sort, page_size)
        while not pages.done:
            for execution in pages.accept(*await self._run(pages.next_op())):
                yield execution

    async def recent_executions(
        self,
        project: str | None = None,
        domain: str | None = None,
        limit: int = 100,
        filters: Any = None,
        sort: Any = None,
    ) -> list[Execution]:
        """As :meth:`FlyteClient.recent_executions`, awaited."""
        return await self._run(self._recent_op(project, domain, limit, filters, sort))

    async def fetch_inputs(self, target: DataTarget) -> dict[str, Any]:
        """As :meth:`FlyteClient.fetch_inputs`, awaited."""
        return await self._run(self._data_op(target, "inputs"))

    async def fetch_outputs(self, target: DataTarget) -> dict[str, Any]:
        """As :meth:`FlyteClient.fetch_outputs`, awaited."""
        return await self._run(self._data_op(target, "outputs"))

    async def sync(
        self, execution: ExecutionLike, sync_nodes: bool = True, timeout: float | None = None
    ) -> Execution:
        """As :meth:`FlyteClient.sync`, awaited."""
        return await self._run(self._sync_op(execution, sync_nodes, timeout))

    async def wait(
        self,
        execution: ExecutionLike,
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 5.0,
        sync_nodes: bool = False,
        on_update: Callable[[Execution], Any] | None = None,
    ) -> Execution:
        """As :meth:`FlyteClient.wait`, awaited; an async ``on_update`` is awaited."""
        check_callback(on_update, blocking=False)
        return await self._run(
            self._wait_op(execution, timeout, poll_interval, sync_nodes, on_update), execution
        )

    def watcher(self) -> AsyncExecutionWatcher:
        """A watcher that waits on many executions with one ListExecutions per tick."""
        from flyte_bridge.watcher import AsyncExecutionWatcher

        return AsyncExecutionWatcher(self)

    # Managing -------------------------------------------------------------------------------

    async def terminate(
        self, execution: ExecutionLike, cause: str = "", timeout: float | None = None
    ) -> TerminateResult:
        """As :meth:`FlyteClient.terminate`, awaited."""
        return await self._run(self._terminate_op(execution, cause, timeout))

    async def relaunch(
        self, execution: ExecutionLike, name: str | None = None, overwrite_cache: bool = False
    ) -> Execution:
        """As :meth:`FlyteClient.relaunch`, awaited."""
        return await self._run(self._relaunch_op(execution, name, overwrite_cache))

    async def recover(self, execution: ExecutionLike, name: str | None = None) -> Execution:
        """As :meth:`FlyteClient.recover`, awaited."""
        return await self._run(self._recover_op(execution, name))

    async def list_projects(self) -> list[Project]:
        """As :meth:`FlyteClient.list_projects`, awaited."""
        return await self._run(self._list_projects_op())

    async def check_scope(
        self, project: str | None = None, domain: str | None = None
    ) -> list[Project]:
        """As :meth:`FlyteClient.check_scope`, awaited."""
        return await self._run(self._check_scope_op(project, domain))

    async def list_signals(self, execution: ExecutionLike) -> list[Signal]:
        """As :meth:`FlyteClient.list_signals`, awaited."""
        return await self._run(self._list_signals_op(execution))

    async def declared_gates(self, execution: ExecutionLike) -> dict[str, LiteralType]:
        """As :meth:`FlyteClient.declared_gates`, awaited."""
        return await self._run(self._declared_gates_op(execution))

    async def approve(
        self, execution: ExecutionLike, signal_id: str, wait_for_gate: float | None = None
    ) -> Signal:
        """As :meth:`FlyteClient.approve`, awaited."""
        return await self._run(
            self._set_signal_op(execution, signal_id, True, wait_for_gate, "approve")
        )

    async def reject(
        self, execution: ExecutionLike, signal_id: str, wait_for_gate: float | None = None
    ) -> Signal:
        """As :meth:`FlyteClient.reject`, awaited."""
        return await self._run(
            self._set_signal_op(execution, signal_id, False, wait_for_gate, "reject")
        )

    async def set_input(
        self,
        execution: ExecutionLike,
        signal_id: str,
        value: Any,
        wait_for_gate: float | None = None,
        from_text: bool = False,
    ) -> Signal:
        """As :meth:`FlyteClient.set_input`, awaited."""
        return await self._run(
            self._set_signal_op(execution, signal_id, value, wait_for_gate, "set", from_text)
        )

    async def wait_for_gate(
        self,
        execution: ExecutionLike,
        signal_id: str,
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 1.0,
    ) -> Signal:
        """As :meth:`FlyteClient.wait_for_gate`, awaited."""
        return await self._run(
            self._wait_for_gate_op(execution, signal_id, timeout, poll_interval), execution
        )

    async def fetch_launch_plan(
        self,
        launch_plan: Any,
        *,
        version: str | None = None,
        project: str | None = None,
        domain: str | None = None,
    ) -> launch_plan_pb2.LaunchPlan:
        """As :meth:`FlyteClient.fetch_launch_plan`, awaited."""
        return await self._run(self._fetch_launch_plan_op(launch_plan, version, project, domain))

    async def launch(
        self,
        launch_plan: Any = None,
        *,
        task: Any = None,
        version: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        name: str | None = None,
        project: str | None = None,
        domain: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        envs: Mapping[str, str] | None = None,
        tags: list[str] | None = None,
        max_parallelism: int | None = None,
        raw_output_prefix: str | None = None,
        service_account: str | None = None,
        overwrite_cache: bool = False,
        from_text: bool = False,
    ) -> Execution:
        """As :meth:`FlyteClient.launch`, awaited."""
        return await self._run(
            self._launch_op(
                launch_plan,
                task,
                version,
                inputs,
                name,
                project,
                domain,
                dict(
                    labels=labels,
                    annotations=annotations,
                    envs=envs,
                    tags=tags,
                    max_parallelism=max_parallelism,
                    raw_output_prefix=raw_output_prefix,
                    service_account=service_account,
                    overwrite_cache=overwrite_cache,
                ),
                from_text,
            )
        )

    async def launch_backfill(
        self,
        launch_plan: Any,
        start: dt.datetime,
        end: dt.datetime,
        *,
        version: str | None = None,
        parallel: bool = False,
        failure_policy: str = "fail_fast",
        dry_run: bool = False,
        name: str | None = None,
        project: str | None = None,
        domain: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        node_retries: int = 0,
        node_timeout: float | dt.timedelta | None = None,
        max_parallelism: int | None = None,
        inputs: Mapping[str, Any] | None = None,
        from_text: bool = False,
    ) -> BackfillResult:
        """As :meth:`FlyteClient.launch_backfill`, awaited."""
        return await self._run(
            self._backfill_op(
                launch_plan,
                start,
                end,
                version,
                parallel,
                failure_policy,
                dry_run,
                name,
                project,
                domain,
                labels,
                annotations,
                node_retries,
                node_timeout,
                max_parallelism,
                inputs,
                from_text,
            )
        )

    async def execution_metrics(self, execution: ExecutionLike, depth: int = 10) -> ExecutionSpan:
        """As :meth:`FlyteClient.execution_metrics`, awaited."""
        return await self._run(self._metrics_op(execution, depth))

    async def download(self, value: Any, to: str | Path) -> Path:
        """As :meth:`FlyteClient.download`, awaited."""
        return await self._run(self._download_op(value, to))
