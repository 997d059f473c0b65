"""What both clients share: configuration, caches and the building of every operation.

:class:`~flyte_bridge.client.FlyteClient` and :class:`~flyte_bridge.aio.AsyncFlyteClient` add
only the call layer: they run the operations built here on their transport.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from flyte_bridge import _ops
from flyte_bridge._requests import (
    ExecutionLike,
    execution_id_of,
    filter_text,
    list_executions_request,
    scope_of,
    sort_proto,
)
from flyte_bridge._runtime import Call, Op, poll_seconds, seconds_of, within
from flyte_bridge._tree import TreeCache, fill_tree_op, sync_op, template_op
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteInvalidInputError, FlyteNotFoundError
from flyte_bridge.models import Execution, ExecutionId, NodeExecution, TaskExecution

DEFAULT_CONCURRENCY = 16
"""RPCs a client keeps in flight at most while syncing a tree or gathering data."""

DataTarget = Any
"""An execution (anything ``execution_id_of`` reads), a NodeExecution or a TaskExecution."""


ClientT = TypeVar("ClientT", bound="ClientBase")


class ClientBase:
    """Configuration, defaults and the operation builders of both clients."""

    def __init__(self, config: ClientConfig, max_concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if max_concurrency < 1:
            raise FlyteInvalidInputError(
                f"max_concurrency must be 1 or more, got {max_concurrency}"
            )
        self.config = config
        self.max_concurrency = max_concurrency
        self._cache = TreeCache()
        # (project, domain, org) found to exist after a lookup found nothing there.
        self._known_scopes: set[tuple[str, str, str]] = set()

    @classmethod
    def from_flytekit_config(
        cls: type[ClientT],
        path: str | None = None,
        *,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        transport: Any = None,
        **overrides: Any,
    ) -> ClientT:
        """A client configured as flytekit would be (config file and ``FLYTE_*`` variables).

        ``overrides`` are ClientConfig fields that replace what was read
        (``default_project="ml"``); see :meth:`ClientConfig.from_flytekit_config`.
        """
        config = ClientConfig.from_flytekit_config(path, **overrides)
        return cls(config, max_concurrency=max_concurrency, transport=transport)  # type: ignore[call-arg]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.config.endpoint!r})"

    # Arguments ------------------------------------------------------------------------------

    def execution_id(self, execution: ExecutionLike) -> ExecutionId:
        """The id of any accepted execution argument, completed by the config's defaults."""
        config = self.config
        return execution_id_of(
            execution, config.default_project, config.default_domain, config.default_org
        )

    def step_execution_name(self, *parts: object, generation: int = 0) -> str:
        """The deterministic execution name of an orchestrator step (see
        :func:`flyte_bridge.naming.execution_name`), within the config's
        ``max_execution_name_length``."""
        from flyte_bridge.naming import execution_name

        return execution_name(
            *parts, generation=generation, max_length=self.config.max_execution_name_length
        )

    def target_scope(
        self, target: Any, project: str | None = None, domain: str | None = None
    ) -> tuple[str, str]:
        """The project and domain a launch of ``target`` (a launch plan or task: a name,
        ``project/domain/name`` or EntityId) runs in: the arguments, else the target's own,
        else the config's defaults; the scope in which to look for its executions."""
        entity_project, entity_domain, _, _ = _ops.entity_of(target, "launch plan or task")
        return self._scope(project or entity_project, domain or entity_domain)

    def _scope(self, project: str | None, domain: str | None) -> tuple[str, str]:
        return scope_of(project, domain, self.config.default_project, self.config.default_domain)

    def _name(self, name: str | None) -> str | None:
        """A caller's execution name, checked against admin's rules and this config's limit."""
        from flyte_bridge.naming import validate_execution_name

        if name is None:
            return None
        return validate_execution_name(name, self.config.max_execution_name_length)

    # Operations -----------------------------------------------------------------------------

    def _fetch_op(
        self, execution: ExecutionLike, project: str | None = None, domain: str | None = None
    ) -> Op[Execution]:
        execution_id = self._lookup_id(execution, project, domain)
        return _ops.explain_not_found(_ops.fetch_op(execution_id), execution_id, self._known_scopes)

    def _lookup_id(
        self, execution: ExecutionLike, project: str | None, domain: str | None
    ) -> ExecutionId:
        """The id of a name in ``project``/``domain`` (defaults filling what is not given)."""
        if isinstance(execution, str) and (project or domain) and "/" not in execution:
            execution = ExecutionId(
                *self._scope(project, domain), execution, self.config.default_org
            )
        return self.execution_id(execution)

    def _find_op(
        self, name_or_id: ExecutionLike, project: str | None, domain: str | None
    ) -> Op[Execution | None]:
        try:
            return (yield from _ops.fetch_op(self._lookup_id(name_or_id, project, domain)))
        except FlyteNotFoundError:
            return None

    def _pages(
        self, project: str | None, domain: str | None, filters: Any, sort: Any, page_size: int
    ) -> _Pages:
        if page_size < 1:
            raise FlyteInvalidInputError(f"page_size must be 1 or more, got {page_size}")
        project, domain = self._scope(project, domain)
        return _Pages(
            project,
            domain,
            filter_text(filters),
            sort_proto(sort),
            page_size,
            self.config.default_org,
        )

    def _recent_op(
        self, project: str | None, domain: str | None, limit: int, filters: Any, sort: Any
    ) -> Op[list[Execution]]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise FlyteInvalidInputError(
                f"limit must be a whole number of 1 or more, got {limit!r}"
            )
        project, domain = self._scope(project, domain)
        found: dict[ExecutionId, Execution] = {}
        token = ""
        while len(found) < limit:
            request = list_executions_request(
                project,
                domain,
                filter_text(filters),
                sort_proto(sort),
                min(limit - len(found), 100),
                token,
                self.config.default_org,
            )
            response = yield Call("admin", "ListExecutions", request)
            for pb in response.executions:
                execution = Execution(pb)
                found.setdefault(execution.id, execution)
            token = response.token
            if not token:
                break
        return list(found.values())[:limit]

    def _data_op(self, target: DataTarget, side: str) -> Op[dict[str, Any]]:
        if isinstance(target, (NodeExecution, TaskExecution)):
            return (yield from _ops.data_op(target, side))
        if isinstance(target, Execution) and (target.is_done or side == "inputs"):
            return (yield from _ops.data_op(target, side))
        fresh = yield from _ops.fetch_op(self.execution_id(target))
        values = yield from _ops.data_op(fresh, side)
        if isinstance(target, Execution):
            target.proto = fresh.proto
            setattr(target, f"_{side}", values)
        return values

    def _sync_op(
        self, execution: ExecutionLike, sync_nodes: bool, timeout: float | None = None
    ) -> Op[Execution]:
        execution_id = self.execution_id(execution)
        op = _ops.explain_not_found(
            sync_op(execution_id, self._cache, sync_nodes), execution_id, self._known_scopes
        )
        if timeout is None:
            return op
        seconds = seconds_of(timeout)
        if seconds is None or not 0 < seconds < float("inf"):
            raise FlyteInvalidInputError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        from flyte_bridge.transport import Deadline

        return within(op, Deadline(seconds))

    def _wait_op(
        self,
        execution: ExecutionLike,
        timeout: float | dt.timedelta | None,
        poll_interval: float | dt.timedelta,
        sync_nodes: bool,
        on_update: Callable[[Execution], Any] | None,
    ) -> Op[Execution]:
        execution_id = self.execution_id(execution)
        result = yield from _ops.explain_not_found(
            _ops.wait_op(
                execution_id,
                seconds_of(timeout),
                poll_seconds(poll_interval),
                self.config.rpc_timeout,
                on_update,
            ),
            execution_id,
            self._known_scopes,
        )
        if sync_nodes:
            yield from fill_tree_op(result, self._cache)
        return result

    def _terminate_op(
        self, execution: ExecutionLike, cause: str, timeout: float | None = None
    ) -> Op[Any]:
        if timeout is not None and not timeout > 0:
            raise FlyteInvalidInputError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        execution_id = self.execution_id(execution)
        return _ops.explain_not_found(
            _ops.terminate_op(execution_id, cause, timeout), execution_id, self._known_scopes
        )

    def _relaunch_op(
        self, execution: ExecutionLike, name: str | None, overwrite_cache: bool
    ) -> Op[Execution]:
        execution_id = self.execution_id(execution)
        return _ops.explain_not_found(
            _ops.relaunch_op(execution_id, self._name(name), overwrite_cache),
            execution_id,
            self._known_scopes,
        )

    def _recover_op(self, execution: ExecutionLike, name: str | None) -> Op[Execution]:
        execution_id = self.execution_id(execution)
        return _ops.explain_not_found(
            _ops.recover_op(execution_id, self._name(name)), execution_id, self._known_scopes
        )

    def _list_projects_op(self) -> Op[Any]:
        return _ops.list_projects_op(self.config.default_org)

    def _check_scope_op(self, project: str | None, domain: str | None) -> Op[Any]:
        return _ops.check_scope_op(project, domain, self.config.default_org)

    def _list_signals_op(self, execution: ExecutionLike) -> Op[Any]:
        execution_id = self.execution_id(execution)
        return _ops.explain_not_found(
            _ops.list_signals_op(execution_id), execution_id, self._known_scopes
        )

    def _declared_gates_op(self, execution: ExecutionLike) -> Op[dict[str, Any]]:
        if isinstance(execution, Execution):
            fetched = execution  # its workflow id is all that is needed
        else:
            execution_id = self.execution_id(execution)
            fetched = yield from _ops.explain_not_found(
                _ops.fetch_op(execution_id), execution_id, self._known_scopes
            )
        _, gates = yield from template_op(fetched, self._cache)
        return dict(gates)

    def _set_signal_op(
        self,
        execution: ExecutionLike,
        signal_id: str,
        value: Any,
        wait_for_gate: float | dt.timedelta | None,
        verb: str,
        from_text: bool = False,
    ) -> Op[Any]:
        if not isinstance(signal_id, str) or not signal_id:
            raise FlyteInvalidInputError(f"signal_id must be a non-empty str, got {signal_id!r}")
        execution_id = self.execution_id(execution)
        return _ops.explain_not_found(
            _ops.set_signal_op(
                execution_id,
                signal_id,
                value,
                seconds_of(wait_for_gate),
                self._cache,
                verb,
                from_text,
            ),
            execution_id,
            self._known_scopes,
        )

    def _wait_for_gate_op(
        self,
        execution: ExecutionLike,
        signal_id: str,
        timeout: float | dt.timedelta | None,
        poll_interval: float | dt.timedelta,
    ) -> Op[Any]:
        if not isinstance(signal_id, str) or not signal_id:
            raise FlyteInvalidInputError(f"signal_id must be a non-empty str, got {signal_id!r}")
        interval = poll_seconds(poll_interval)
        execution_id = self.execution_id(execution)
        return _ops.explain_not_found(
            _ops.wait_for_gate_op(
                execution_id, signal_id, seconds_of(timeout), interval, self._cache
            ),
            execution_id,
            self._known_scopes,
        )

    def _launch_op(
        self,
        launch_plan: Any,
        task: Any,
        version: str | None,
        inputs: Mapping[str, Any] | None,
        name: str | None,
        project: str | None,
        domain: str | None,
        options: Mapping[str, Any],
        from_text: bool = False,
    ) -> Op[Execution]:
        if (launch_plan is None) == (task is None):
            raise FlyteInvalidInputError("launch needs exactly one of launch_plan or task")
        kind = "LAUNCH_PLAN" if launch_plan is not None else "TASK"
        target = launch_plan if launch_plan is not None else task
        entity_project, entity_domain, entity_name, entity_version = _ops.entity_of(
            target, "launch plan" if kind == "LAUNCH_PLAN" else "task"
        )
        project, domain = self._scope(project or entity_project, domain or entity_domain)
        if inputs is not None and not isinstance(inputs, Mapping):
            raise FlyteInvalidInputError(
                f"inputs must be a mapping of names to values, got {inputs!r}"
            )
        return _ops.launch_op(
            kind,
            project,
            domain,
            entity_name,
            version or entity_version,
            dict(inputs or {}),
            self._name(name),
            _ops.execution_spec_options(**options),
            self.config.default_org,
            from_text,
        )

    def _fetch_launch_plan_op(
        self, launch_plan: Any, version: str | None, project: str | None, domain: str | None
    ) -> Op[Any]:
        entity_project, entity_domain, entity_name, entity_version = _ops.entity_of(
            launch_plan, "launch plan"
        )
        project, domain = self._scope(project or entity_project, domain or entity_domain)
        return _ops.launch_plan_op(
            project, domain, entity_name, version or entity_version, self.config.default_org
        )

    def _metrics_op(self, execution: ExecutionLike, depth: int) -> Op[Any]:
        from flyte_bridge.metrics import ExecutionSpan

        execution_id = self.execution_id(execution)
        span = yield from _ops.explain_not_found(
            _ops.metrics_op(execution_id, depth), execution_id, self._known_scopes
        )
        return ExecutionSpan.from_proto(span)

    def _download_op(self, value: Any, to: str | Path) -> Op[Path]:
        from flyte_bridge.download import download_op

        return download_op(value, Path(to))

    def _backfill_op(
        self,
        launch_plan: Any,
        start: dt.datetime,
        end: dt.datetime,
        version: str | None,
        parallel: bool,
        failure_policy: str,
        dry_run: bool,
        name: str | None,
        project: str | None,
        domain: str | None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        node_retries: int = 0,
        node_timeout: float | dt.timedelta | None = None,
        max_parallelism: int | None = None,
        inputs: Mapping[str, Any] | None = None,
        from_text: bool = False,
    ) -> Op[Any]:
        entity_project, entity_domain, entity_name, entity_version = _ops.entity_of(
            launch_plan, "launch plan"
        )
        timeout = seconds_of(node_timeout)
        plan_options = dict(
            node_retries=node_retries,
            node_timeout=None if timeout is None else dt.timedelta(seconds=timeout),
            max_parallelism=max_parallelism,
        )
        project, domain = self._scope(project or entity_project, domain or entity_domain)
        return _ops.backfill_op(
            project,
            domain,
            entity_name,
            version or entity_version,
            start,
            end,
            parallel,
            failure_policy,
            dry_run,
            self._name(name),
            _ops.execution_spec_options(labels=labels, annotations=annotations),
            self.config.default_org,
            plan_options,
            inputs,
            from_text,
        )

    def console_url(self, obj: Any) -> str:
        """The Flyte console URL of an execution, node or task execution, task, workflow or
        launch plan (a model, an id or an admin message). A str names an execution, as
        everywhere else (``"name"`` or ``"project/domain/name"``).

        The base is the config's ``console_endpoint``, else derived from the gRPC endpoint
        (``http`` when insecure, ``https`` otherwise).
        """
        from flyte_bridge import console

        if isinstance(obj, str):
            obj = self.execution_id(obj)
        base = console.console_base(
            self.config.endpoint, self.config.insecure, self.config.console_endpoint
        )
        return console.console_url(base, obj)


class _Pages:
    """The state of a ListExecutions iteration: the next token and the executions seen.

    Admin's tokens are row offsets, so a row that moves while listing (newest first) can come
    back on the next page; it is yielded once.
    """

    def __init__(
        self, project: str, domain: str, filters: str, sort: Any, size: int, org: str = ""
    ) -> None:
        self._args = (project, domain, filters, sort, size)
        self._org = org
        self._token = ""
        self._seen: set[ExecutionId] = set()
        self.done = False

    def next_op(self) -> Op[tuple[list[Execution], str]]:
        return _ops.list_page_op(*self._args, self._token, self._org)

    def accept(self, page: list[Execution], token: str) -> list[Execution]:
        """Records a page; returns its executions not seen before."""
        self._token = token
        self.done = not token
        new = [execution for execution in page if execution.id not in self._seen]
        self._seen.update(execution.id for execution in new)
        return new
