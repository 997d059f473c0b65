"""One Flyte execution, from launch to Dagster events.

The assets, the ops and the sensor share this module: :func:`launch_or_find_logged` starts an
execution (or finds the one of that name) and says which, :func:`wait_for` follows it
(terminating it when Dagster stops the run), and :func:`execution_metadata` and
:func:`output_preview` turn a finished execution into the metadata that both a
``MaterializeResult`` (assets) and an ``AssetMaterialization`` (sensor) carry.
"""

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from dagster_resources.translator import (
    DOMAIN_KEY,
    KICKOFF_TIME_INPUT_KEY,
    LAUNCH_PLAN_KEY,
    OUTPUT_KEY,
    PROJECT_KEY,
    VERSION_KEY,
    metadata_key,
)
from flyte_bridge.errors import FlyteBridgeError, FlyteNotFoundError, FlyteTimeoutError

if TYPE_CHECKING:
    from dagster_resources.resource import FlyteResource
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.models import Execution, TerminateResult
    from flyte_bridge.reattach import LaunchDecision

logger = logging.getLogger(__name__)

DAGSTER_RUN_LABEL = "dagster-run-id"
"""Label on every execution launched by Dagster; the sensor skips executions that carry it."""

BACKFILL_STRATEGY_KEY = metadata_key("backfill_strategy")
EXECUTION_URL_KEY = metadata_key("execution_url")
EXECUTION_ID_KEY = metadata_key("execution_id")
PHASE_KEY = metadata_key("phase")
DURATION_KEY = metadata_key("duration")
PREVIEW_KEY = metadata_key("output_preview")
ERROR_KEY = metadata_key("error")
EXECUTION_IDS_KEY = metadata_key("execution_ids")
DECLARED_OUTPUTS_KEY = metadata_key("declared_outputs")
FAILED_PARTITIONS_KEY = metadata_key("failed_partitions")
BACKFILL_TICK_KEY = metadata_key("backfill_tick")
BACKFILL_NODE_KEY = metadata_key("backfill_node")
TICK_EXECUTION_ID_KEY = metadata_key("tick_execution_id")
TICK_EXECUTION_URL_KEY = metadata_key("tick_execution_url")

PREVIEW_LENGTH = 300
"""Characters of an output's text shown in the metadata preview."""


def dagster_labels(run_id: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels of an execution launched by the Dagster run ``run_id``."""
    return {**(extra or {}), DAGSTER_RUN_LABEL: run_id}


def step_run_id(run: dg.DagsterRun) -> str:
    """The run id that names a step's Flyte executions: the root run's.

    A retry of the step (a ``retry_policy``) and a re-execution of the run (from failure, or
    of chosen steps: a new run id, the same root run id) compute the same names, so either
    follows the execution an earlier try or run left running, reports the one that succeeded,
    and launches the next one only after it failed or was aborted (one rule,
    :func:`launch_or_reattach_logged`)."""
    return run.root_run_id or run.run_id


def wait_options(resource: "FlyteResource") -> dict[str, Any]:
    """The resource's waiting settings, as keyword arguments of :func:`wait_for`."""
    return {
        "poll_interval": resource.poll_interval,
        "timeout": resource.wait_timeout,
        "terminate_on_interrupt": resource.terminate_on_interrupt,
    }


def launch_or_find_logged(
    client: "FlyteClient",
    log: Any,
    name: str,
    launch: Callable[[str], "Execution"],
    *,
    project: str | None = None,
    domain: str | None = None,
    waiting: bool = True,
    target: Any = None,
) -> "LaunchDecision":
    """Launches the execution ``name`` unless it exists (:func:`flyte_bridge.reattach.
    launch_or_find`) and logs what happened: launched, reattached to a running one, found a
    succeeded one, or found one that failed or was aborted, with what the op does next.
    """
    from flyte_bridge.reattach import launch_or_find

    decision = launch_or_find(client, name, launch, project=project, domain=domain, target=target)
    _log_decision(client, log, decision, waiting)
    return decision


def launch_or_reattach_logged(
    client: "FlyteClient",
    log: Any,
    step: Sequence[object],
    launch: Callable[[str], "Execution"],
    *,
    project: str | None = None,
    domain: str | None = None,
    waiting: bool = True,
    target: Any = None,
    recover: bool = False,
    same_request_only: bool = True,
) -> "LaunchDecision":
    """Follows the run an earlier try of this step launched, or launches the step's next one
    (:func:`flyte_bridge.reattach.launch_or_reattach`), and logs which.

    A retry after a try that failed while its Flyte run went on (Flyte unreachable for a
    while, the step's process killed) follows that run instead of launching a second one; a
    run that succeeded is reported; after one that failed or was aborted a new one is launched
    under the next generation's name, or, with ``recover`` (a backfill, whose ticks that
    succeeded must not run again), recovered from it.
    """
    from flyte_bridge.reattach import launch_or_reattach

    decision = launch_or_reattach(
        client,
        step,
        launch,
        project=project,
        domain=domain,
        target=target,
        recover=recover,
        same_request_only=same_request_only,
    )
    if decision.previous is not None:
        log.info(
            "Flyte execution %s of an earlier try ended %s",
            decision.previous.id,
            decision.previous.phase_name,
        )
    _log_decision(client, log, decision, waiting)
    return decision


def _log_decision(client: "FlyteClient", log: Any, decision: "LaunchDecision", waiting: bool):
    execution = decision.execution
    url = client.console_url(execution)
    if decision.action == "launched":
        log.info("Launched Flyte execution %s: %s", execution.id, url)
    elif decision.action == "recovered":
        log.info(
            "Recovered Flyte execution %s from %s, reusing what succeeded there: %s",
            execution.id,
            decision.previous.id if decision.previous is not None else "an earlier run",
            url,
        )
    elif decision.action == "reattached":
        log.info(
            "Reattached to Flyte execution %s, still %s: it already existed under this name, "
            "so it was not launched again; %s: %s",
            execution.id,
            execution.phase_name,
            "waiting for it" if waiting else "passing its id on without waiting",
            url,
        )
    elif decision.action == "reused":
        log.info(
            "Found Flyte execution %s, which already SUCCEEDED under this name; not launched "
            "again, reporting it: %s",
            execution.id,
            url,
        )
    else:
        log.warning(
            "Found Flyte execution %s, which already ended %s under this name; Flyte never "
            "launches a name twice, so the op fails with its error (leave execution_name "
            "empty for a new execution on each try): %s",
            execution.id,
            execution.phase_name,
            url,
        )


def wait_for(
    client: "FlyteClient",
    log: Any,
    execution: "Execution",
    *,
    poll_interval: float,
    timeout: float | None,
    terminate_on_interrupt: bool,
) -> "Execution":
    """Waits for a launched execution, forwarding interruptions and timeouts as terminations."""
    (done,) = wait_for_all(
        client,
        log,
        [execution],
        poll_interval=poll_interval,
        timeout=timeout,
        terminate_on_interrupt=terminate_on_interrupt,
    )
    return done


def wait_for_all(
    client: "FlyteClient",
    log: Any,
    executions: Sequence["Execution"],
    *,
    poll_interval: float,
    timeout: float | None,
    terminate_on_interrupt: bool,
) -> list["Execution"]:
    """Waits for launched executions in turn; stopping or a timeout terminates the unfinished
    (unless ``terminate_on_interrupt`` is False), and the log and the error say which."""
    done: list[Execution] = []
    try:
        for execution in executions:
            done.append(client.wait(execution, timeout=timeout, poll_interval=poll_interval))
            log.info("Flyte execution %s ended %s", execution.id, done[-1].phase_name)
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
        if terminate_on_interrupt:
            for execution in executions[len(done) :]:
                log.warning("Dagster run stopped: terminating Flyte execution %s", execution.id)
                _terminate_quietly(
                    client,
                    execution,
                    "the Dagster run was stopped",
                    timeout=client.config.rpc_timeout,
                )
        raise
    except FlyteTimeoutError as error:
        unfinished = executions[len(done) :]
        fates = [
            _timed_out(client, log, execution, timeout, terminate=terminate_on_interrupt)
            for execution in unfinished
        ]
        late = unfinished[0]
        last = f" (last phase {error.last_phase})" if error.last_phase else ""
        others = "".join(
            f"; {execution.id}: {fate}"
            for execution, fate in zip(unfinished[1:6], fates[1:6], strict=True)
        )
        if len(unfinished) > 6:
            others += f"; and {len(unfinished) - 6} more unfinished executions, as the log says"
        raise dg.Failure(
            description=(
                f"Flyte execution {late.id} did not finish within the wait_timeout of "
                f"{timeout:g} s{last}; {fates[0]}{others}"
            ),
            metadata=execution_reference(client, late),
        ) from error
    return done


def _timed_out(
    client: "FlyteClient", log: Any, execution: "Execution", timeout: float, *, terminate: bool
) -> str:
    """Terminates (or leaves running) an execution whose wait timed out; says what became of
    it, for the error."""
    plaintext = " --insecure" if client.config.insecure else ""
    stop_it = (
        f"end it with `flyte-bridge executions terminate {execution.id} "
        f"--endpoint {client.config.endpoint}{plaintext}`"
    )
    if not terminate:
        log.warning(
            "wait_timeout of %g s passed: leaving Flyte execution %s running "
            "(terminate_on_interrupt=False)",
            timeout,
            execution.id,
        )
        return f"it was left running (terminate_on_interrupt=False): {stop_it}"
    log.warning(
        "wait_timeout of %g s passed: terminating Flyte execution %s", timeout, execution.id
    )
    result = _terminate_quietly(
        client,
        execution,
        f"no result within the wait_timeout of {timeout:g} s in Dagster",
        timeout=client.config.rpc_timeout,
    )
    if result is None:
        return f"terminating it failed, so it may still be running: {stop_it}"
    if result.already_terminal:
        return f"it ended {result.phase.name} meanwhile, so it was not terminated"
    return "it was terminated (it ends ABORTED)"


@contextlib.contextmanager
def terminating_on_stop(
    client: "FlyteClient", log: Any, execution: "Execution", *, terminate_on_interrupt: bool
) -> Iterator[None]:
    """Terminates ``execution`` when Dagster stops the run inside the block, then re-raises.

    For the ops that wait on an execution without :func:`wait_for` (a gate wait), so that
    stopping the run ends the execution however the op was waiting.
    """
    try:
        yield
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
        if terminate_on_interrupt:
            log.warning("Dagster run stopped: terminating Flyte execution %s", execution.id)
            _terminate_quietly(
                client, execution, "the Dagster run was stopped", timeout=client.config.rpc_timeout
            )
        raise


def _terminate_quietly(
    client: "FlyteClient", execution: "Execution", cause: str, timeout: float | None = None
) -> "TerminateResult | None":
    """Terminates ``execution``, logging instead of raising: the caller is already failing.
    ``timeout`` bounds the call (see ``FlyteClient.terminate``). Returns what terminate found,
    or None when it failed."""
    try:
        result = client.terminate(execution, cause=cause, timeout=timeout)
    except FlyteBridgeError:
        logger.warning("Could not terminate Flyte execution %s", execution.id, exc_info=True)
        return None
    if result.already_terminal:
        logger.info("Flyte execution %s had already ended %s", execution.id, result.phase.name)
    return result


def execution_reference(client: "FlyteClient", execution: "Execution") -> dict[str, Any]:
    """The ``flyte/...`` metadata naming one execution: its id and console URL."""
    return {
        EXECUTION_ID_KEY: dg.MetadataValue.text(str(execution.id)),
        EXECUTION_URL_KEY: dg.MetadataValue.url(client.console_url(execution)),
    }


def execution_metadata(client: "FlyteClient", execution: "Execution") -> dict[str, Any]:
    """The ``flyte/...`` metadata describing one execution: URL, id, phase and duration."""
    metadata = execution_reference(client, execution)
    metadata[PHASE_KEY] = dg.MetadataValue.text(execution.phase_name)
    if execution.duration is not None:
        metadata[DURATION_KEY] = dg.MetadataValue.float(execution.duration.total_seconds())
    return metadata


def output_preview(value: Any) -> dg.MetadataValue:
    """A short text preview of one output value."""
    text = repr(value) if not isinstance(value, str) else value
    if len(text) > PREVIEW_LENGTH:
        text = text[: PREVIEW_LENGTH - 3] + "..."
    return dg.MetadataValue.text(text)


def raise_for_failure(client: "FlyteClient", execution: "Execution") -> None:
    """Raises ``Failure`` with the error and console URL when the execution did not succeed."""
    if execution.is_successful:
        return
    error = execution.error_summary
    detail = f": {error}" if error else ""
    metadata = execution_metadata(client, execution)
    if error is not None:
        metadata[ERROR_KEY] = dg.MetadataValue.text(error)
    raise dg.Failure(
        description=(
            f"Flyte execution {execution.id} ended {execution.phase_name}{detail} "
            f"({client.console_url(execution)})"
        ),
        metadata=metadata,
    )


def spec_launch_plan(specs: Sequence[dg.AssetSpec]) -> dict[str, Any]:
    """The launch plan the specs stand for, read back from their ``flyte/...`` metadata."""
    found = {
        (
            spec.metadata.get(LAUNCH_PLAN_KEY),
            spec.metadata.get(PROJECT_KEY),
            spec.metadata.get(DOMAIN_KEY),
            spec.metadata.get(VERSION_KEY),
        )
        for spec in specs
    }
    if len(found) != 1 or None in {name for name, *_ in found}:
        raise dg.DagsterInvariantViolationError(
            "A Flyte multi-asset must stand for exactly one launch plan, named in the "
            f"{LAUNCH_PLAN_KEY!r} metadata of every spec; found {sorted(map(str, found))}"
        )
    ((name, project, domain, version),) = found
    return {"launch_plan": name, "project": project, "domain": domain, "version": version}


def check_outputs_exist(
    client: "FlyteClient", target: Mapping[str, Any], specs: Sequence[dg.AssetSpec]
) -> None:
    """Fails before anything is launched when a spec names an output the launch plan lacks.

    One GetLaunchPlan (of the version that would be launched). A launch plan that is not
    registered fails here too. Output names are checked only here, when an asset is
    materialized, not when the definitions load (which call no Flyte).
    """
    wanted = {spec.metadata[OUTPUT_KEY] for spec in specs if spec.metadata.get(OUTPUT_KEY)}
    name = target["launch_plan"]
    try:
        launch_plan = client.fetch_launch_plan(
            name, version=target["version"], project=target["project"], domain=target["domain"]
        )
    except FlyteNotFoundError as error:
        raise dg.Failure(
            description=f"Flyte launch plan {name} is not registered: {error}",
            metadata={LAUNCH_PLAN_KEY: name},
        ) from error
    declared = sorted(launch_plan.closure.expected_outputs.variables)
    missing = sorted(wanted - set(declared))
    if missing:
        raise dg.Failure(
            description=(
                f"Flyte launch plan {name} has no output {', '.join(map(repr, missing))}; its "
                f"outputs are {', '.join(map(repr, declared)) or 'none'}. Fix the outputs of "
                "its FlyteLaunchPlanProps (or read them with load_flyte_launch_plan_props)."
            ),
            metadata={
                LAUNCH_PLAN_KEY: name,
                DECLARED_OUTPUTS_KEY: dg.MetadataValue.json(declared),
            },
        )


def materialize_launch_plan(
    context: dg.AssetExecutionContext,
    resource: "FlyteResource",
    *,
    inputs: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    inputs_from_text: bool = False,
) -> Iterator[dg.MaterializeResult]:
    """Runs the launch plan behind the selected assets and yields one result per selected asset.

    ``inputs_from_text`` reads str inputs as text of their declared type (values from YAML or
    config); the kickoff time each partition sets is a datetime either way."""
    client = resource.get_client()
    specs = [spec for spec in context.assets_def.specs if spec.key in context.selected_asset_keys]
    target = spec_launch_plan(list(context.assets_def.specs))
    first_spec = next(iter(context.assets_def.specs))
    kickoff_input = first_spec.metadata.get(KICKOFF_TIME_INPUT_KEY)
    strategy = first_spec.metadata.get(BACKFILL_STRATEGY_KEY, "per_partition")
    inputs = dict(inputs or {})
    waiting = wait_options(resource)
    run_id = context.run.run_id
    step = context.op_execution_context
    step_parts = ("dagster", step_run_id(context.run), step.op.name)
    launch_labels = dagster_labels(run_id, labels)

    partitioned = context.has_partition_key or context.has_partition_key_range
    partition_keys = list(context.partition_keys) if partitioned else []
    check_outputs_exist(client, target, list(context.assets_def.specs))
    time_partitioned = isinstance(
        context.assets_def.partitions_def, dg.TimeWindowPartitionsDefinition
    )
    if partition_keys and time_partitioned and kickoff_input and kickoff_input in inputs:
        raise dg.Failure(
            description=(
                f"Input {kickoff_input!r} of Flyte launch plan {target['launch_plan']} is its "
                "kickoff-time input, which each time partition sets to its start; remove it "
                "from the inputs"
            ),
            metadata={LAUNCH_PLAN_KEY: target["launch_plan"]},
        )
    if len(partition_keys) > 1 and strategy == "flyte_backfill":
        yield from _materialize_by_backfill(
            context,
            client,
            specs,
            target,
            inputs,
            step_parts,
            launch_labels,
            inputs_from_text=inputs_from_text,
            **waiting,
        )
        return

    launched: list[Execution] = []
    try:
        for key in partition_keys or [None]:
            run_inputs = dict(inputs)
            if key is not None and kickoff_input:
                run_inputs[kickoff_input] = _partition_start(context, key)
            decision = launch_or_reattach_logged(
                client,
                context.log,
                (*step_parts, key),
                lambda name, run_inputs=run_inputs: client.launch(
                    **target,
                    inputs=run_inputs,
                    name=name,
                    labels=launch_labels,
                    from_text=inputs_from_text,
                ),
                project=target["project"],
                domain=target["domain"],
                target=target["launch_plan"],
            )
            launched.append(decision.execution)
    except BaseException:
        for execution in launched:
            _terminate_quietly(client, execution, "launching the other partitions failed")
        raise

    executions = wait_for_all(client, context.log, launched, **waiting)
    if len(executions) == 1:
        (execution,) = executions
        raise_for_failure(client, execution)
        outputs = client.fetch_outputs(execution)
        for spec in specs:
            yield dg.MaterializeResult(
                asset_key=spec.key, metadata=_spec_metadata(client, spec, execution, outputs)
            )
        return
    if not all(execution.is_successful for execution in executions):
        yield from _fail_part_of_the_range(client, specs, partition_keys, executions)
    # A range of partitions, one execution each: every partition's event names its own.
    for key, execution in zip(partition_keys, executions, strict=True):
        outputs = client.fetch_outputs(execution)
        for spec in specs:
            context.add_asset_metadata(
                _spec_metadata(client, spec, execution, outputs),
                asset_key=spec.key,
                partition_key=key,
            )
    every = {
        EXECUTION_IDS_KEY: dg.MetadataValue.text(
            ", ".join(str(execution.id) for execution in executions)
        )
    }
    for spec in specs:
        yield dg.MaterializeResult(asset_key=spec.key, metadata=every)


def _fail_part_of_the_range(
    client: "FlyteClient",
    specs: Sequence[dg.AssetSpec],
    partition_keys: Sequence[str],
    executions: Sequence["Execution"],
) -> Iterator[dg.AssetMaterialization]:
    """Records the partitions whose executions succeeded, then fails the step naming the others.

    Each succeeded partition gets an ``AssetMaterialization`` of its own, yielded before the
    failure is raised (a ``MaterializeResult`` stands for the whole range, and events logged
    with ``context.log_event`` are lost when the step raises), so a failed tick loses only its
    partition.
    """
    succeeded = []
    for key, execution in zip(partition_keys, executions, strict=True):
        if not execution.is_successful:
            continue
        outputs = client.fetch_outputs(execution)
        for spec in specs:
            yield dg.AssetMaterialization(
                asset_key=spec.key,
                partition=key,
                metadata=_spec_metadata(client, spec, execution, outputs),
            )
        succeeded.append(key)
    failed = [
        (key, execution)
        for key, execution in zip(partition_keys, executions, strict=True)
        if not execution.is_successful
    ]
    problems = [
        f"partition {key}: Flyte execution {execution.id} ended {execution.phase_name}"
        + (f": {execution.error_summary}" if execution.error_summary else "")
        + f" ({client.console_url(execution)})"
        for key, execution in failed
    ]
    raise dg.Failure(
        description=(
            f"{len(failed)} of {len(executions)} partitions failed; {_recorded(succeeded)} "
            f"Failed: {'; '.join(problems)}"
        ),
        metadata={
            FAILED_PARTITIONS_KEY: dg.MetadataValue.json(
                {key: _failure_json(execution) for key, execution in failed}
            ),
            EXECUTION_IDS_KEY: dg.MetadataValue.text(
                ", ".join(str(execution.id) for execution in executions)
            ),
        },
    )


def _recorded(succeeded: Sequence[str]) -> str:
    """Which partitions the failed step still materialized, for its error."""
    if not succeeded:
        return "none succeeded."
    if len(succeeded) == 1:
        return f"the one that succeeded is materialized ({succeeded[0]})."
    return f"the {len(succeeded)} that succeeded are materialized ({', '.join(succeeded)})."


def _failure_json(execution: "Execution", tick: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"execution_id": str(execution.id), "phase": execution.phase_name}
    if tick is not None:
        found["tick"] = tick
    if execution.error_summary:
        found["error"] = execution.error_summary
    return found


def _spec_metadata(
    client: "FlyteClient",
    spec: dg.AssetSpec,
    execution: "Execution",
    outputs: Mapping[str, Any],
) -> dict[str, Any]:
    """The metadata of one asset materialized by ``execution``: the execution and a preview."""
    metadata = execution_metadata(client, execution)
    output = spec.metadata.get(OUTPUT_KEY)
    if output is None:
        return metadata
    if output not in outputs:
        returned = ", ".join(map(repr, outputs)) or "none"
        raise dg.Failure(
            description=(
                f"Flyte execution {execution.id} returned no output {output!r} for asset "
                f"{spec.key.to_user_string()}; it returned {returned}"
            ),
            metadata=metadata,
        )
    metadata[PREVIEW_KEY] = output_preview(outputs[output])
    return metadata


def _materialize_by_backfill(
    context: dg.AssetExecutionContext,
    client: "FlyteClient",
    specs: Sequence[dg.AssetSpec],
    target: Mapping[str, Any],
    inputs: Mapping[str, Any],
    step_parts: tuple[str, ...],
    labels: Mapping[str, str],
    *,
    inputs_from_text: bool,
    poll_interval: float,
    timeout: float | None,
    terminate_on_interrupt: bool,
) -> Iterator[dg.MaterializeResult]:
    """A range of time partitions as one Flyte backfill of the launch plan's schedule.

    Every run of the backfill gets ``inputs`` beside its tick's kickoff time. The backfill
    execution carries the Dagster run label, so the sensor skips it and the runs it starts (its
    children)."""
    from flyte_bridge.backfill import tick_node_id

    window = context.partition_time_window
    first = window.start
    # Flyte's backfill window is inclusive and Dagster's is not: the last run is the last
    # partition's start.
    last = _partition_start(context, context.partition_keys[-1])

    def backfill(name: str | None, dry_run: bool) -> Any:
        return client.launch_backfill(
            target["launch_plan"],
            first,
            last,
            version=target["version"],
            dry_run=dry_run,
            name=name,
            project=target["project"],
            domain=target["domain"],
            labels=labels,
            inputs=inputs,
            from_text=inputs_from_text,
        )

    # The plan first (nothing launched), so that a retry following an earlier try's backfill
    # reports its ticks too.
    plan = backfill(None, dry_run=True).plan
    context.log.info(
        "A Flyte backfill of %s covers %d schedule ticks from %s to %s",
        target["launch_plan"],
        len(plan),
        first.isoformat(),
        last.isoformat(),
    )
    index_at = {tick.timestamp(): index for index, tick in enumerate(plan)}
    tick_of = {
        key: index_at.get(_partition_start(context, key).timestamp())
        for key in context.partition_keys
    }
    _refuse_a_schedule_that_misses_partitions(target["launch_plan"], plan, tick_of)
    decision = launch_or_reattach_logged(
        client,
        context.log,
        (*step_parts, "backfill"),
        lambda name: backfill(name, dry_run=False).execution,
        project=target["project"],
        domain=target["domain"],
        target=target["launch_plan"],
        # A retry after a failed backfill recovers it: the ticks that succeeded are reused.
        recover=True,
        # Its generated launch plan's version changes with the launch plan's own, so a check
        # would refuse a retry after a new registration: a backfill follows its name.
        same_request_only=False,
    )
    done = wait_for(
        client,
        context.log,
        decision.execution,
        poll_interval=poll_interval,
        timeout=timeout,
        terminate_on_interrupt=terminate_on_interrupt,
    )
    if not done.is_successful and done.is_done:
        yield from _fail_part_of_the_backfill(client, specs, plan, tick_of, done)
    raise_for_failure(client, done)
    metadata = execution_metadata(client, done)
    metadata[metadata_key("backfill_runs")] = dg.MetadataValue.int(len(plan))
    # Each partition names its tick's node (no RPC); its own execution id and output would
    # take reading the backfill's node tree, RPCs per tick, so they are left out.
    for key, index in tick_of.items():
        if index is None:
            continue
        for spec in specs:
            context.add_asset_metadata(
                {
                    BACKFILL_TICK_KEY: dg.MetadataValue.text(plan[index].isoformat()),
                    BACKFILL_NODE_KEY: dg.MetadataValue.text(tick_node_id(index)),
                },
                asset_key=spec.key,
                partition_key=key,
            )
    for spec in specs:
        yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)


def _refuse_a_schedule_that_misses_partitions(
    launch_plan: str, plan: Sequence[dt.datetime], tick_of: Mapping[str, int | None]
) -> None:
    """Fail before launching when Flyte's schedule ticks are not the partitions' starts: the
    backfill would run other times than the partitions and report them all materialized."""
    missed = [key for key, index in tick_of.items() if index is None]
    extra = len(plan) - (len(tick_of) - len(missed))
    if not missed and not extra:
        return
    ticks = ", ".join(tick.isoformat() for tick in plan[:3]) or "none"
    raise dg.Failure(
        description=(
            f"a Flyte backfill of {launch_plan} would not run the partitions: its schedule "
            f"ticks ({ticks}{', ...' if len(plan) > 3 else ''}) are not the partitions' starts "
            f"({len(missed)} partition(s) without a tick, such as {missed[:3]}; {extra} tick(s) "
            "that start no partition). The partitions' cron must equal the launch plan's "
            "schedule; fix the props' cron_schedule or use backfill_strategy='per_partition'"
        )
    )


def _fail_part_of_the_backfill(
    client: "FlyteClient",
    specs: Sequence[dg.AssetSpec],
    plan: Sequence[dt.datetime],
    tick_of: Mapping[str, int | None],
    backfill: "Execution",
) -> Iterator[dg.AssetMaterialization]:
    """Records the partitions whose ticks succeeded, then fails the step naming the others.

    The backfill's node ``n<i>`` runs tick ``i`` as a child execution: its node tree (read
    once, only here) says which ticks succeeded. Each such partition gets an
    ``AssetMaterialization`` naming the backfill and the tick's execution.
    """
    from flyte_bridge.backfill import tick_node_id

    try:
        nodes = client.sync(backfill).node_executions
    except FlyteBridgeError:
        # The failure is reported all the same, for the whole range (by the caller).
        logger.warning("Could not read the ticks of Flyte backfill %s", backfill.id, exc_info=True)
        return
    backfill_metadata = execution_metadata(client, backfill)
    backfill_reference = execution_reference(client, backfill)
    succeeded, problems, failures = [], [], {}
    for key, index in tick_of.items():
        node = nodes.get(tick_node_id(index)) if index is not None else None
        child = node.child_execution if node is not None else None
        if node is not None and node.is_successful:
            # The backfill (as when it succeeds), with the phase of the tick's run. A tick
            # reused by a recovery (phase RECOVERED) names no execution of its own.
            metadata = {
                **backfill_reference,
                PHASE_KEY: dg.MetadataValue.text(
                    child.phase_name if child is not None else node.phase.name
                ),
                BACKFILL_TICK_KEY: dg.MetadataValue.text(plan[index].isoformat()),
                BACKFILL_NODE_KEY: dg.MetadataValue.text(tick_node_id(index)),
            }
            if child is not None:
                metadata[TICK_EXECUTION_ID_KEY] = dg.MetadataValue.text(str(child.id))
                metadata[TICK_EXECUTION_URL_KEY] = dg.MetadataValue.url(client.console_url(child))
            for spec in specs:
                yield dg.AssetMaterialization(asset_key=spec.key, partition=key, metadata=metadata)
            succeeded.append(key)
            continue
        tick = plan[index].isoformat() if index is not None else "no tick of the backfill"
        if child is not None:
            error = f": {child.error_summary}" if child.error_summary else ""
            problems.append(
                f"partition {key} (tick {tick}): Flyte execution {child.id} ended "
                f"{child.phase_name}{error} ({client.console_url(child)})"
            )
            failures[key] = _failure_json(child, tick)
        else:
            phase = node.phase.name if node is not None else "not started"
            problems.append(f"partition {key} (tick {tick}): not run ({phase})")
            failures[key] = {"tick": tick, "phase": phase}
    # The backfill's own error repeats its failed tick's, which is listed with its partition.
    raise dg.Failure(
        description=(
            f"Flyte backfill {backfill.id} ended {backfill.phase_name} "
            f"({client.console_url(backfill)}): {len(problems)} of {len(tick_of)} partitions "
            f"did not succeed; {_recorded(succeeded)} Not succeeded: {'; '.join(problems)}"
        ),
        metadata={
            **backfill_metadata,
            FAILED_PARTITIONS_KEY: dg.MetadataValue.json(failures),
        },
    )


def _partition_start(context: dg.AssetExecutionContext, partition_key: str) -> dt.datetime:
    """The start of a time partition: the kickoff time of the run for it."""
    partitions_def = context.assets_def.partitions_def
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        raise dg.DagsterInvariantViolationError(
            "A Flyte kickoff-time input needs time-window partitions (daily, hourly...); "
            f"got {type(partitions_def).__name__}"
        )
    return partitions_def.time_window_for_partition_key(partition_key).start
