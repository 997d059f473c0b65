"""Launch the execution of an orchestrator step at most once, whatever the retries.

A step (an Airflow task instance, a Dagster step) names its execution with
:func:`flyte_bridge.naming.execution_name` from what identifies it, never from its try number, so
every try of the step and every process computes the same names. Generation 0 is the first launch;
when the run of generation n failed or was aborted, the next try launches generation n + 1.

:func:`launch_or_reattach` walks the generations with GetExecution until it finds one that does
not exist, and decides:

- a run that is still going is reattached to (no second launch after a worker died mid-wait);
- a run that succeeded is reused (its outputs are the step's outputs);
- after a run that failed, was aborted or timed out, the next generation is launched, or, with
  ``recover=True``, recovered from it so that nodes which succeeded are not run again. A run that
  is still ABORTING counts as aborted: it can only end ABORTED, so a retry right after a kill
  launches the next generation instead of following the dying run.

Names fit the client's ``max_execution_name_length`` unless a ``max_length`` is given. Nothing is
stored between tries, so a lost XCom or state store cannot cause a duplicate.

:func:`launch_or_find` is the same decision for a name the caller fixed: no generations, as Flyte
never reuses a name, so a run of that name that failed or was aborted is reported as ``ended``
instead of being followed by another launch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from flyte_bridge.errors import FlyteBridgeError, FlyteClientClosedError, FlyteConflictError
from flyte_bridge.naming import execution_name

if TYPE_CHECKING:
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.models import Execution

logger = logging.getLogger(__name__)

MAX_GENERATIONS = 1000
"""Bound on the generations probed; a step never fails this often in practice."""

Action = Literal["launched", "recovered", "reattached", "reused", "ended"]

ENDING_UNSUCCESSFULLY = frozenset({"ABORTING"})
"""Phases that are not terminal but can only end without success: they count as ended."""


@dataclass(frozen=True)
class LaunchDecision:
    """What :func:`launch_or_reattach` did for a step.

    Attributes:
        execution: The execution the step now follows.
        action: ``launched`` or ``recovered`` (a new run), ``reattached`` (a run of an earlier
            try still going), ``reused`` (a run of an earlier try that succeeded) or, from
            :func:`launch_or_find` only, ``ended`` (a run of that name that failed, was aborted,
            timed out or is aborting, which cannot be launched again).
        generation: The generation of ``execution``.
        previous: The failed, aborted (or aborting) run of the generation before, if there was
            one.
    """

    execution: Execution
    action: Action
    generation: int
    previous: Execution | None = None

    @property
    def is_new(self) -> bool:
        """True when this call started the execution."""
        return self.action in ("launched", "recovered")


def launch_or_reattach(
    client: FlyteClient,
    step: Sequence[object],
    launch: Callable[[str], Execution],
    *,
    recover: bool = False,
    project: str | None = None,
    domain: str | None = None,
    max_length: int | None = None,
    target: Any = None,
    same_request_only: bool = False,
) -> LaunchDecision:
    """Follows the step's existing run, or launches its next generation under its own name.

    Args:
        client: The sync client.
        step: The parts that identify the step (see :func:`execution_name`).
        launch: Called with the new execution's name; launches it (``client.launch(...,
            name=name)``) and returns the execution.
        recover: After a failed or aborted run, recover it instead of calling ``launch``.
        project: Project of the executions (the client's default when None).
        domain: Domain of the executions (the client's default when None).
        max_length: The server's name length limit; None is the client config's
            ``max_execution_name_length``.
        target: What ``launch`` launches (launch plan or task, as ``launch`` takes it): a
            ``project/domain/name`` target runs, and so is looked for, in its own scope.
        same_request_only: Follow (reattach to, reuse or recover) a run found under the step's
            name only if it ran what this try would launch: ``launch`` is called with its name,
            and must return it, as the client's launch does for the same entity and inputs, or
            raise FlyteConflictError, as it does for others. So a step whose arguments changed
            (an edited DAG, then a cleared task) fails saying what differs instead of reporting
            the outputs of a run of other inputs; after a failed run of other arguments, the
            next generation is a fresh launch of the new ones even with ``recover``. A check
            that fails for another reason is logged and the run followed.

    Returns:
        The decision, with the execution to follow.

    Raises:
        FlyteConflictError: With ``same_request_only``, the step's run ran other arguments.
        FlyteBridgeError: More than ``MAX_GENERATIONS`` runs of the step exist, or what the
            client raised.
    """
    # The scope first: without one, the step's names cannot be looked up, and the error should
    # say so rather than name an execution the caller never named.
    project, domain = _scope(client, target, project, domain)
    previous: Execution | None = None

    def followed(execution: Execution) -> Execution:
        return _same_request(launch, execution, step) if same_request_only else execution

    for generation, name, execution in _generations(client, step, project, domain, max_length):
        if execution is None:
            if recover and same_request_only and previous is not None and previous.is_done:
                try:
                    previous = followed(previous)
                except FlyteConflictError as error:
                    # New arguments after a failure: a fresh run of them, not a recovery of the
                    # old ones (as without ``recover``).
                    logger.info("Not recovering %s: %s", previous.id, error.message)
                    recover = False
            return _start(client, launch, name, generation, previous, recover)
        if execution.phase_name in ENDING_UNSUCCESSFULLY:
            logger.info("Execution %s is %s; next generation", execution.id, execution.phase_name)
            previous = execution
            continue
        if execution.is_successful or not execution.is_done:
            execution = followed(execution)
        if not execution.is_done:
            logger.info("Reattaching to execution %s, now %s", execution.id, execution.phase_name)
            return LaunchDecision(execution, "reattached", generation, previous)
        if execution.is_successful:
            logger.info("Reusing execution %s, which already succeeded", execution.id)
            return LaunchDecision(execution, "reused", generation, previous)
        logger.info("Execution %s ended %s; next generation", execution.id, execution.phase_name)
        previous = execution
    raise FlyteBridgeError(
        f"step {list(step)!r} already has {MAX_GENERATIONS} failed executions; "
        "refusing to launch more"
    )


def _same_request(
    launch: Callable[[str], Execution], execution: Execution, step: Sequence[object]
) -> Execution:
    """``execution`` as ``launch`` returns it for its name, if it ran the same request.

    A check that cannot be made (a local file input gone, admin unreachable) is logged and the
    run followed, as without the check: following never launches anything."""
    try:
        return launch(execution.id.name)
    except FlyteClientClosedError:
        raise
    except FlyteConflictError as error:
        detail = error.message.removesuffix("; choose another name")
        raise FlyteConflictError(
            f"{detail}: an earlier try of step {list(step)!r} launched it with other arguments. "
            "A step's execution names do not change between its tries, so launch the new "
            "arguments from a new run of the DAG or job",
            subject=error.subject,
        ) from error
    except FlyteBridgeError as error:
        logger.warning(
            "Could not check that execution %s ran this step's arguments (%s); following it",
            execution.id,
            error,
        )
        return execution


def launch_or_find(
    client: FlyteClient,
    name: str,
    launch: Callable[[str], Execution],
    *,
    project: str | None = None,
    domain: str | None = None,
    target: Any = None,
) -> LaunchDecision:
    """Launches the execution ``name`` unless it exists, and says which it was.

    For a name the caller fixed, which every try uses: an execution of that name is
    ``reattached`` while it runs, ``reused`` when it succeeded, and ``ended`` when it failed,
    was aborted or timed out, or is ABORTING (a failed run cannot be launched again under its
    name). ``launch`` is called in every case: for an existing name the client's launch returns
    that execution when it ran the same entity with the same inputs, and raises
    FlyteConflictError otherwise, so a name taken by something else is never followed. One
    GetExecution comes first to tell a new run from an existing one; a run that another caller
    creates under the same name between the two calls counts as launched.
    ``target`` is as for :func:`launch_or_reattach`.

    Raises:
        FlyteConflictError: The name is taken by an execution of another entity or inputs.
    """
    project, domain = _scope(client, target, project, domain)
    existed = client.find_execution(name, project=project, domain=domain) is not None
    execution = launch(name)
    if not existed:
        logger.info("Launched execution %s", execution.id)
        return LaunchDecision(execution, "launched", 0)
    if execution.phase_name in ENDING_UNSUCCESSFULLY or (
        execution.is_done and not execution.is_successful
    ):
        logger.info("Execution %s already ended %s", execution.id, execution.phase_name)
        return LaunchDecision(execution, "ended", 0)
    if not execution.is_done:
        logger.info("Reattaching to execution %s, now %s", execution.id, execution.phase_name)
        return LaunchDecision(execution, "reattached", 0)
    logger.info("Reusing execution %s, which already succeeded", execution.id)
    return LaunchDecision(execution, "reused", 0)


def latest_execution(
    client: FlyteClient,
    step: Sequence[object],
    *,
    project: str | None = None,
    domain: str | None = None,
    max_length: int | None = None,
) -> Execution | None:
    """Returns the step's newest execution (the highest generation that exists), or None.

    Used by kill handlers that run in a process which never launched the run. ``max_length`` is
    as for :func:`launch_or_reattach`.
    """
    latest: Execution | None = None
    for _, _, execution in _generations(client, step, project, domain, max_length):
        latest = execution or latest
    return latest


def _scope(
    client: FlyteClient, target: Any, project: str | None, domain: str | None
) -> tuple[str, str]:
    """Where the step's executions are: the launch target's scope when one is given."""
    if target is None:
        return client._scope(project, domain)
    return client.target_scope(target, project, domain)


def _generations(
    client: FlyteClient,
    step: Sequence[object],
    project: str | None,
    domain: str | None,
    max_length: int | None,
) -> Iterator[tuple[int, str, Execution | None]]:
    """Yields each generation's number, name and execution, up to the first that does not exist
    (yielded with None)."""
    limit = client.config.max_execution_name_length if max_length is None else max_length
    for generation in range(MAX_GENERATIONS):
        name = execution_name(*step, generation=generation, max_length=limit)
        execution = client.find_execution(name, project=project, domain=domain)
        yield generation, name, execution
        if execution is None:
            return


def _start(
    client: FlyteClient,
    launch: Callable[[str], Execution],
    name: str,
    generation: int,
    previous: Execution | None,
    recover: bool,
) -> LaunchDecision:
    """Launches (or recovers) generation ``generation`` under ``name``.

    A previous run still ABORTING cannot be recovered yet (its nodes are still changing), so
    that generation is launched afresh even with ``recover``.
    """
    if recover and previous is not None and not previous.is_done:
        logger.info(
            "Execution %s is still %s; launching afresh instead of recovering it",
            previous.id,
            previous.phase_name,
        )
    if recover and previous is not None and previous.is_done:
        execution = client.recover(previous, name=name)
        logger.info("Recovered execution %s from %s", execution.id, previous.id)
        return LaunchDecision(execution, "recovered", generation, previous)
    execution = launch(name)
    logger.info("Launched execution %s", execution.id)
    return LaunchDecision(execution, "launched", generation, previous)
