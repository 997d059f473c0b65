"""The blocking Flyte client: executions, their node trees, signals and launches.

Example:
    >>> from flyte_bridge.client import FlyteClient
    >>> with FlyteClient.from_flytekit_config() as client:
    ...     execution = client.launch("daily_report", inputs={"day": "2024-01-02"})
    ...     execution = client.wait(execution, timeout=3600)
    ...     print(client.fetch_outputs(execution))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte_bridge._base import DEFAULT_CONCURRENCY, ClientBase, DataTarget
from flyte_bridge._requests import ExecutionLike
from flyte_bridge._runtime import Op, check_callback, closed_error, run_sync
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteClientClosedError
from flyte_bridge.models import Execution, Project, Signal, TerminateResult

if TYPE_CHECKING:
    from flyteidl.admin import launch_plan_pb2
    from flyteidl.core.types_pb2 import LiteralType

    from flyte_bridge.backfill import BackfillResult
    from flyte_bridge.metrics import ExecutionSpan
    from flyte_bridge.watcher import ExecutionWatcher


class FlyteClient(ClientBase):
    """A blocking client for Flyte executions over flyteidl's gRPC services.

    Thread-safe. Every ``execution`` argument takes an :class:`Execution`, an
    :class:`ExecutionId`, ``"project/domain/name"`` or a bare name (completed by the config's
    default project and domain).

    Args:
        config: Where admin is and how to reach it.
        max_concurrency: RPCs in flight at most while syncing trees or reading data.
        transport: A ready :class:`~flyte_bridge.transport.SyncTransport` to use instead of one
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
            from flyte_bridge.transport import SyncTransport

            transport = SyncTransport(config)
        self.transport = transport
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="flyte-bridge")
        self._closed: Future[None] = Future()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called; every call then raises FlyteClientClosedError."""
        return self._closed.done()

    def close(self) -> None:
        """Closes the channel and the worker threads.

        A call running in another thread (a wait, too) then fails at once with
        FlyteClientClosedError, as does any later call.
        """
        if not self._closed.done():
            self._closed.set_result(None)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()

    def __enter__(self) -> FlyteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, op: Op[Any], waiting: Any = None) -> Any:
        """Runs ``op``; ``waiting`` (what a wait waits for) names it if the client closes."""
        if self._closed.done():
            op.close()
            raise closed_error(self)
        try:
            return run_sync(op, self.transport, self._pool, self._closed)
        except FlyteClientClosedError:
            if waiting is None:
                raise
            raise closed_error(self, waiting, during=True) from None

    # Reading --------------------------------------------------------------------------------

    def fetch_execution(
        self, name_or_id: ExecutionLike, project: str | None = None, domain: str | None = None
    ) -> Execution:
        """Fetches an execution's current state (one GetExecution).

        Raises:
            FlyteNotFoundError: No such execution.
        """
        return self._run(self._fetch_op(name_or_id, project, domain))

    def find_execution(
        self, name_or_id: ExecutionLike, project: str | None = None, domain: str | None = None
    ) -> Execution | None:
        """The execution of that name, or None when there is none: a lookup of a name that may
        not have been launched yet, in one GetExecution.

        Args:
            name_or_id: A name (in ``project``/``domain``, else the defaults), an id or
                ``project/domain/name``.
            project: Project of a bare name.
            domain: Domain of a bare name.

        Returns:
            The execution, or None, also when the project or domain does not exist (nothing is
            checked beyond the name: :meth:`check_scope` says whether a scope exists).

        Raises:
            FlyteInvalidInputError: Not a valid execution name or id.
            FlyteBridgeError: The lookup failed for another reason (unreachable admin, auth).
        """
        return self._run(self._find_op(name_or_id, project, domain))

    def list_executions(
        self,
        project: str | None = None,
        domain: str | None = None,
        filters: Any = None,
        sort: Any = None,
        page_size: int = 100,
    ) -> Iterator[Execution]:
        """Iterates over every execution matching ``filters``, page by page (newest first).

        Pages are fetched as the iteration reaches them; an execution that moves between pages
        while listing is yielded once.
        """
        pages = self._pages(project, domain, filters, sort, page_size)
        while not pages.done:
            yield from pages.accept(*self._run(pages.next_op()))

    def recent_executions(
        self,
        project: str | None = None,
        domain: str | None = None,
        limit: int = 100,
        filters: Any = None,
        sort: Any = None,
    ) -> list[Execution]:
        """The ``limit`` most recent executions matching ``filters`` (as many pages as needed)."""
        return self._run(self._recent_op(project, domain, limit, filters, sort))

    def fetch_inputs(self, target: DataTarget) -> dict[str, Any]:
        """Inputs of an execution, node execution or task execution as Python values.

        Offloaded literals are read (through the data proxy when it can sign them) and data
        behind a URL is fetched. The values are also kept on the model (``.inputs``).
        """
        return self._run(self._data_op(target, "inputs"))

    def fetch_outputs(self, target: DataTarget) -> dict[str, Any]:
        """Outputs as Python values (see :meth:`fetch_inputs`).

        Raises:
            FlyteNotReadyError: It has not finished.
            FlyteExecutionFailedError: It finished without success (failed, aborted, timed out).
        """
        return self._run(self._data_op(target, "outputs"))

    def sync(
        self, execution: ExecutionLike, sync_nodes: bool = True, timeout: float | None = None
    ) -> Execution:
        """Fetches an execution and, with ``sync_nodes``, its whole node tree.

        Node executions (every page), task executions (every attempt), sub-workflow, dynamic,
        branch and array children, gate nodes and launch-plan child executions are fetched with
        at most ``max_concurrency`` RPCs in flight. Finished subtrees seen by an earlier sync of
        this client are reused without RPCs. Inputs and outputs are not read (see
        :meth:`fetch_inputs`). ``timeout`` bounds the whole sync, retries included (else each
        call has its own deadline and retries); running out raises FlyteTimeoutError.
        """
        return self._run(self._sync_op(execution, sync_nodes, timeout))

    def wait(
        self,
        execution: ExecutionLike,
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 5.0,
        sync_nodes: bool = False,
        on_update: Callable[[Execution], Any] | None = None,
    ) -> Execution:
        """Waits until the execution is terminal and returns it (failed ones too).

        Polls only GetExecution, every ``poll_interval`` seconds (positive); after
        failed polls the pause backs off from 1 s to 30 s. With ``sync_nodes`` the tree is
        synced once at the end. ``on_update`` is called with the execution whenever its phase
        changes. ``timeout=None`` waits without limit.

        Raises:
            FlyteTimeoutError: Not terminal within ``timeout`` (plus at most one RPC deadline,
                even when the server stops answering); the message names the execution.
        """
        check_callback(on_update, blocking=True)
        return self._run(
            self._wait_op(execution, timeout, poll_interval, sync_nodes, on_update), execution
        )

    def watcher(self) -> ExecutionWatcher:
        """A watcher that waits on many executions with one ListExecutions per tick."""
        from flyte_bridge.watcher import ExecutionWatcher

        return ExecutionWatcher(self)

    # Managing -------------------------------------------------------------------------------

    def terminate(
        self, execution: ExecutionLike, cause: str = "", timeout: float | None = None
    ) -> TerminateResult:
        """Aborts an execution. One that has already ended is not an error: the result says
        ``already_terminal=True`` with its phase.

        ``timeout`` (seconds) bounds the whole call, retries included, for cleanup that must
        not outlast a deadline (if the phase cannot be read in time after an accepted
        terminate, the result says ABORTING).
        """
        return self._run(self._terminate_op(execution, cause, timeout))

    def relaunch(
        self, execution: ExecutionLike, name: str | None = None, overwrite_cache: bool = False
    ) -> Execution:
        """Runs the execution again with the same inputs, under ``name`` (or a new name)."""
        return self._run(self._relaunch_op(execution, name, overwrite_cache))

    def recover(self, execution: ExecutionLike, name: str | None = None) -> Execution:
        """Re-runs a failed execution, reusing the outputs of the nodes that succeeded."""
        return self._run(self._recover_op(execution, name))

    def list_projects(self) -> list[Project]:
        """Every project registered on admin (not archived), with its domains."""
        return self._run(self._list_projects_op())

    def check_scope(self, project: str | None = None, domain: str | None = None) -> list[Project]:
        """Checks that admin has ``project`` and that ``domain`` is one of its domains (either
        may be None); returns the registered projects. Admin lists nothing, rather than
        failing, in a project it does not know, so a typo would look like an empty project.

        Raises:
            FlyteNotFoundError: naming the unknown project or domain and the registered ones.
        """
        return self._run(self._check_scope_op(project, domain))

    def list_signals(self, execution: ExecutionLike) -> list[Signal]:
        """Every signal of the execution (every page). A gate's signal exists only once the
        workflow has reached the gate."""
        return self._run(self._list_signals_op(execution))

    def declared_gates(self, execution: ExecutionLike) -> dict[str, LiteralType]:
        """The signal id and declared type of each approve and input gate that the execution's
        compiled workflow declares (its sub-workflows and branches included), reached or not.

        Gates that only exist at run time are not in it: those inside dynamic nodes and those
        of child launch plans' executions. Sleep gates have no signal. Empty when the workflow
        cannot be read. One GetExecution (none for an ``Execution``) and one GetWorkflow,
        cached per workflow.

        Raises:
            FlyteNotFoundError: No such execution (saying so when the project or domain is
                unknown).
        """
        return self._run(self._declared_gates_op(execution))

    def approve(
        self, execution: ExecutionLike, signal_id: str, wait_for_gate: float | None = None
    ) -> Signal:
        """Approves an approve gate (sets its BOOLEAN signal to true).

        Args:
            wait_for_gate: Seconds to wait for the gate to be reached; without it a gate not
                reached yet raises FlyteNotReadyError.

        Raises:
            FlyteNotReadyError: The gate has not been reached (and no or too short a wait).
            FlyteNotFoundError: No gate of the workflow has this signal id, or the execution
                ended without reaching it.
        """
        return self._run(self._set_signal_op(execution, signal_id, True, wait_for_gate, "approve"))

    def reject(
        self, execution: ExecutionLike, signal_id: str, wait_for_gate: float | None = None
    ) -> Signal:
        """Rejects an approve gate (sets its signal to false); see :meth:`approve`."""
        return self._run(self._set_signal_op(execution, signal_id, False, wait_for_gate, "reject"))

    def set_input(
        self,
        execution: ExecutionLike,
        signal_id: str,
        value: Any,
        wait_for_gate: float | None = None,
        from_text: bool = False,
    ) -> Signal:
        """Gives a wait-for-input gate its value, converted to the signal's declared type.

        With ``from_text=True`` a str value is read as text of that type first (``"25"`` for a
        float gate), as :meth:`launch` does.

        Raises:
            FlyteInvalidInputError: The value does not fit the declared type (checked before
                any SetSignal is sent).
            FlyteNotReadyError, FlyteNotFoundError: As for :meth:`approve`.
        """
        return self._run(
            self._set_signal_op(execution, signal_id, value, wait_for_gate, "set", from_text)
        )

    def wait_for_gate(
        self,
        execution: ExecutionLike,
        signal_id: str,
        timeout: float | dt.timedelta | None = None,
        poll_interval: float | dt.timedelta = 1.0,
    ) -> Signal:
        """Waits until the execution reaches the gate with this signal id; returns its signal.

        Args:
            timeout: Seconds to wait at most (None: as long as the execution runs).
            poll_interval: Seconds between ListSignals calls.

        Raises:
            FlyteNotFoundError: No gate of the workflow declares the id (raised at once), or
                the execution ended without reaching it.
            FlyteTimeoutError: The gate was not reached within ``timeout``.
        """
        return self._run(
            self._wait_for_gate_op(execution, signal_id, timeout, poll_interval), execution
        )

    def fetch_launch_plan(
        self,
        launch_plan: Any,
        *,
        version: str | None = None,
        project: str | None = None,
        domain: str | None = None,
    ) -> launch_plan_pb2.LaunchPlan:
        """Fetches a registered launch plan (the ``admin.LaunchPlan`` message).

        Without ``version`` it is the active version, else the newest (one RPC either way:
        GetLaunchPlan, GetActiveLaunchPlan, or ListLaunchPlans when none is active). Its
        ``closure.expected_inputs`` and ``closure.expected_outputs`` give the interface,
        ``spec.entity_metadata.schedule`` the schedule and ``closure.state`` whether it is active.

        Args:
            launch_plan: A name, ``"project/domain/name"``, an EntityId or an Identifier.
            version: A version; ``None`` means the active one, else the newest.
            project: Its project when ``launch_plan`` names none; else the config's default.
            domain: Its domain when ``launch_plan`` names none; else the config's default.

        Raises:
            FlyteNotFoundError: No launch plan of that name (and version) is registered.
        """
        return self._run(self._fetch_launch_plan_op(launch_plan, version, project, domain))

    def launch(
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
        """Launches a launch plan (or a single task) and returns the new execution.

        Without ``version`` the active launch plan (else the newest) or the newest task is used.
        Inputs are converted against the launch plan's expected inputs before anything is
        uploaded or created: defaults are filled, and unknown, fixed or missing names and values
        of the wrong type are all reported in one FlyteInvalidInputError. Local files and
        directories given for blob inputs are uploaded through the data proxy.

        Without ``name`` the client chooses one, so a retried create never duplicates the run.
        If ``name`` is taken by an execution of the same entity with the same inputs, that
        execution is returned (whatever its phase); otherwise FlyteConflictError.

        With ``from_text=True`` a str value is first read as text of its declared type
        (``"25"`` for an int, ``"2024-01-02 06:00:00+00:00"`` for a datetime, JSON for a list),
        as a template renders it; see :func:`flyte_bridge.literals.from_text`. Without it a str
        fits only str-typed inputs (and the str variant of a union).
        """
        return self._run(
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

    def launch_backfill(
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
        """Runs a scheduled launch plan once per schedule tick in ``[start, end]`` (both ends
        included) as one generated workflow; ``dry_run`` only plans it.

        ``labels`` and ``annotations`` are put on the backfill execution (so an orchestrator
        can find the backfill it started); they do not change the generated version.
        ``node_retries`` and ``node_timeout`` (seconds or a timedelta) apply to each tick's
        node, ``max_parallelism`` to the whole backfill; these are part of the version.
        ``inputs`` (Python values, converted and checked as :meth:`launch` does) go to every
        tick's run, the other inputs keep the launch plan's defaults; they are part of the
        version too. The schedule's kickoff-time input cannot be among them (each tick sets
        it): that, an unknown or a fixed input raises FlyteInvalidInputError. With ``from_text``
        a str value is read as text of its declared type first (what a template renders to).

        Returns:
            ``.plan`` (the tick datetimes) and ``.execution`` (None on a dry run).
        """
        return self._run(
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

    def execution_metrics(self, execution: ExecutionLike, depth: int = 10) -> ExecutionSpan:
        """The execution's timing spans (GetExecutionMetrics), ``depth`` levels deep.

        Admin ends a span that has not finished at its last update, not now: check the
        execution's phase before reading a running execution's durations as final.
        """
        return self._run(self._metrics_op(execution, depth))

    def download(self, value: Any, to: str | Path) -> Path:
        """Writes a file, directory, dataset or outputs dict below ``to``; see
        :func:`flyte_bridge.download.download_op`."""
        return self._run(self._download_op(value, to))
