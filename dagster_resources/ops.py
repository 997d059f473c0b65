"""Ops for jobs that drive Flyte step by step: launch, terminate, signals, backfill.

Each op takes the :class:`FlyteResource` as the resource ``flyte``. The ops that act on an
execution take its id either from config or from an upstream op's output (the launch op returns
the ``project/domain/name`` id), so a job can launch without waiting, approve a gate, then wait.

Stopping the Dagster run terminates the execution an op is waiting for (the launch, wait and gate
ops), even one the op did not launch, such as an ``execution_id`` given in config; the resource's
``terminate_on_interrupt=False`` leaves it running. An execution launched with ``wait=False`` is
a run of its own: when no op is waiting on it (a later op failed, a gate id was misspelt) it runs
on after the Dagster run ends, as no op terminates an execution it is not waiting on.
"""

import datetime as dt
from typing import Any

import dagster as dg
import pydantic
from pydantic import Field

from dagster_resources.resource import FlyteResource
from dagster_resources.run_handler import (
    DAGSTER_RUN_LABEL,
    PREVIEW_KEY,
    execution_metadata,
    execution_reference,
    launch_or_find_logged,
    launch_or_reattach_logged,
    metadata_key,
    output_preview,
    raise_for_failure,
    step_run_id,
    terminating_on_stop,
    wait_for,
    wait_options,
)
from flyte_bridge.errors import FlyteBridgeError
from flyte_bridge.literals import from_loose_value, to_literal


class LaunchFlyteExecutionConfig(dg.Config):
    """What the launch op launches."""

    launch_plan: str = Field(description="Name of the launch plan to launch.")
    version: str | None = Field(default=None, description="Version; the active one if empty.")
    project: str | None = Field(default=None, description="Project; the resource's if empty.")
    domain: str | None = Field(default=None, description="Domain; the resource's if empty.")
    inputs: dict[str, Any] = Field(
        default={},
        description="Launch plan inputs. A string is read as text of the input's type "
        '("2024-01-01T00:00:00Z" for a datetime, "PT1H" or "3600" for a duration, '
        '"7" for an int, JSON for a list or record), as config cannot hold such values.',
    )
    execution_name: str | None = Field(
        default=None,
        description="Execution name. Empty: derived from the Dagster run (its root run, so a "
        "re-execution of the run counts as the same run) and the op, so a retry of the step or "
        "a re-execution follows the execution an earlier try launched while it runs, reports it "
        "if it succeeded, and launches a new one (under the next derived name) only after it "
        "failed or was aborted. Set: every try (and every run) uses this name, and Flyte never "
        "reuses a name, so a retry finds the first try's execution and never launches again: "
        "it waits for it while it runs, reports it if it succeeded, and fails with its error if "
        "it failed or was aborted. A name taken by another launch plan or other inputs fails "
        "the op.",
    )
    wait: bool = Field(default=True, description="Wait for the execution to finish.")


class FlyteExecutionConfig(dg.Config):
    """Names the execution an op acts on, unless an upstream op passes its id."""

    execution_id: str | None = Field(
        default=None, description="project/domain/name, or a name in the default scope."
    )


class TerminateFlyteExecutionConfig(FlyteExecutionConfig):
    """The execution to terminate and the cause recorded on it."""

    cause: str = Field(default="terminated from Dagster", description="Recorded abort cause.")


class FlyteSignalConfig(FlyteExecutionConfig):
    """A gate's signal and how long to wait for the execution to reach it."""

    signal_id: str = Field(description="The signal id of the gate (the approve or input name).")
    wait_for_gate: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Seconds (0 or more) to wait for the execution to reach the gate before "
        "giving up; empty fails at once when the gate is not reached yet.",
    )


class SetFlyteInputConfig(FlyteSignalConfig):
    """A ``wait_for_input`` gate and the value to give it."""

    value: Any = Field(
        description="The value, converted to the signal's type; a string is read as text of "
        'that type ("25" for a float, "2024-01-01T00:00:00Z" for a datetime).'
    )


class BackfillFlyteLaunchPlanConfig(dg.Config):
    """A Flyte backfill of a scheduled launch plan over a window of its schedule."""

    launch_plan: str = Field(description="Name of a launch plan with a schedule.")
    start: str = Field(description="First time of the window, ISO 8601.")
    end: str = Field(description="Last time of the window (inclusive), ISO 8601.")
    version: str | None = Field(default=None, description="Version; the active one if empty.")
    project: str | None = Field(default=None, description="Project; the resource's if empty.")
    domain: str | None = Field(default=None, description="Domain; the resource's if empty.")
    parallel: bool = Field(default=False, description="Run the ticks in parallel.")
    failure_policy: str = Field(
        default="fail_fast",
        description="fail_fast stops at the first failed tick; continue runs them all.",
    )
    dry_run: bool = Field(default=False, description="Only report the ticks.")
    wait: bool = Field(default=True, description="Wait for the backfill to finish.")


def _step(context: dg.OpExecutionContext) -> tuple[str, ...]:
    """What names this op's executions: a retry of the step and a re-execution of the run
    (same root run) have the same parts."""
    return ("dagster", step_run_id(context.run), context.op.name)


def _execution_of(config: FlyteExecutionConfig, execution_id: str | None) -> str:
    chosen = execution_id or config.execution_id
    if not chosen:
        raise dg.Failure(
            description="No Flyte execution given: set execution_id in config or connect the "
            "op's execution_id input to the launch op"
        )
    return chosen


@dg.op(
    out=dg.Out(str, description="The execution id, project/domain/name."),
    tags={"kind": "flyte"},
)
def launch_flyte_execution(
    context: dg.OpExecutionContext, config: LaunchFlyteExecutionConfig, flyte: FlyteResource
) -> str:
    """Launches a launch plan and, unless ``wait`` is false, waits for it.

    An execution that already exists under the name (a fixed ``execution_name`` on a retry) is
    not launched again: it is followed while it runs, reported when it succeeded, and fails the
    op with its error when it failed or was aborted; the log says which. Stopping the Dagster
    run terminates the execution; a failed execution fails the op with the error and the
    console URL.
    """
    client = flyte.get_client()
    launch_kwargs: dict[str, Any] = {
        "launch_plan": config.launch_plan,
        "version": config.version,
        "project": config.project,
        "domain": config.domain,
        "inputs": config.inputs,
        "labels": {DAGSTER_RUN_LABEL: context.run_id},
        # Config holds no datetimes or durations: their text is read as the declared type.
        "from_text": True,
    }
    _check_gate_ops_ahead(context, client, config)
    follow = launch_or_find_logged if config.execution_name else launch_or_reattach_logged
    decision = follow(
        client,
        context.log,
        config.execution_name or _step(context),
        lambda name: client.launch(**launch_kwargs, name=name),
        project=config.project,
        domain=config.domain,
        waiting=config.wait,
        target=config.launch_plan,
    )
    execution = decision.execution
    if config.wait:
        execution = wait_for(client, context.log, execution, **wait_options(flyte))
    if config.wait or decision.action == "ended":
        raise_for_failure(client, execution)
    metadata = execution_metadata(client, execution)
    if config.wait:
        for output, value in client.fetch_outputs(execution).items():
            metadata[f"{PREVIEW_KEY}/{output}"] = output_preview(value)
    context.add_output_metadata(metadata)
    return str(execution.id)


def _check_gate_ops_ahead(
    context: dg.OpExecutionContext, client: Any, config: LaunchFlyteExecutionConfig
) -> None:
    """Fails the launch op before anything is launched when a gate op fed by its execution id
    has config it would only refuse later, leaving the execution waiting at the gate.

    Checked: each downstream gate op's config as a whole (``wait_for_gate`` 0 or more...), and
    a ``set_flyte_input`` value against the type its launch plan's workflow declares for the
    signal (a signal the workflow does not declare, such as one inside a dynamic node, is left
    to the op). Gate ops given an ``execution_id`` in config act on another execution and are
    not checked; nor are ops inside nested graphs.
    """
    gate_ops = _gate_ops_fed_by(context)
    if not gate_ops:
        return
    try:
        node_configs = {
            name: op.config
            for name, op in context.get_step_execution_context().resolved_run_config.ops.items()
        }
    except AttributeError:  # an older Dagster without the resolved config on the context
        node_configs = {
            name: (op or {}).get("config")
            for name, op in (context.run_config.get("ops") or {}).items()
        }
    gates: dict[str, Any] | None = None
    for node_name, config_type in gate_ops:
        raw = node_configs.get(node_name) or {}
        if not isinstance(raw, dict) or raw.get("execution_id"):
            continue
        try:
            gate_config = config_type(**raw)
        except pydantic.ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()
            )
            raise dg.Failure(
                description=f"Not launching {config.launch_plan}: the config of op {node_name}, "
                f"which acts on this execution, is refused ({problems})"
            ) from None
        if not isinstance(gate_config, SetFlyteInputConfig):
            continue
        if gates is None:
            gates = _declared_gates_of(client, config)
        declared = gates.get(gate_config.signal_id)
        if declared is None:
            continue
        try:
            to_literal(from_loose_value(gate_config.value, declared), declared)
        except FlyteBridgeError as error:
            raise dg.Failure(
                description=f"Not launching {config.launch_plan}: op {node_name} would give "
                f"gate {gate_config.signal_id!r} the value {gate_config.value!r}, which it "
                f"refuses: {error}"
            ) from error


def _gate_ops_fed_by(context: dg.OpExecutionContext) -> list[tuple[str, type[FlyteSignalConfig]]]:
    """The gate ops of the job that get this op's execution id, directly or through other
    gate or wait ops (which pass it on), with their config types."""
    kinds: dict[str, type[FlyteSignalConfig] | None] = {}
    for node in context.job_def.graph.nodes:
        definition = node.definition
        if definition is set_flyte_input:
            kinds[node.name] = SetFlyteInputConfig
        elif definition in (approve_flyte_gate, reject_flyte_gate):
            kinds[node.name] = FlyteSignalConfig
        elif definition is wait_for_flyte_execution:
            kinds[node.name] = None
    structure = context.job_def.dependency_structure
    found: list[tuple[str, type[FlyteSignalConfig]]] = []
    pending, seen = [context.op_handle.name], set()
    while pending:
        name = pending.pop()
        for inputs in structure.output_to_downstream_inputs_for_node(name).values():
            for node_input in inputs:
                downstream = node_input.node_name
                if downstream in seen or downstream not in kinds:
                    continue
                seen.add(downstream)
                pending.append(downstream)
                config_type = kinds[downstream]
                if config_type is not None:
                    found.append((downstream, config_type))
    return found


def _declared_gates_of(client: Any, config: LaunchFlyteExecutionConfig) -> dict[str, Any]:
    """The gates the launch plan's workflow declares (signal id to type), read before launch:
    GetLaunchPlan, then the workflow's GetWorkflow through the core's ``declared_gates``."""
    from flyteidl.admin import execution_pb2

    from flyte_bridge.models import Execution

    launch_plan = client.fetch_launch_plan(
        config.launch_plan, version=config.version, project=config.project, domain=config.domain
    )
    # declared_gates reads only the workflow id of an execution it is given.
    proto = execution_pb2.Execution()
    proto.closure.workflow_id.CopyFrom(launch_plan.spec.workflow_id)
    return client.declared_gates(Execution(proto=proto))


@dg.op(out=dg.Out(str, description="The execution id."), tags={"kind": "flyte"})
def wait_for_flyte_execution(
    context: dg.OpExecutionContext,
    config: FlyteExecutionConfig,
    flyte: FlyteResource,
    execution_id: str | None = None,
) -> str:
    """Waits for an execution and fails when it does not succeed."""
    client = flyte.get_client()
    execution = client.fetch_execution(_execution_of(config, execution_id))
    done = wait_for(
        client,
        context.log,
        execution,
        **wait_options(flyte),
    )
    raise_for_failure(client, done)
    context.add_output_metadata(execution_metadata(client, done))
    return str(done.id)


@dg.op(
    out=dg.Out(
        str,
        description="The phase after the call: ABORTING while the run stops, or the phase it "
        "had already ended in.",
    ),
    tags={"kind": "flyte"},
)
def terminate_flyte_execution(
    context: dg.OpExecutionContext,
    config: TerminateFlyteExecutionConfig,
    flyte: FlyteResource,
    execution_id: str | None = None,
) -> str:
    """Terminates an execution; one that had already ended is reported, not an error."""
    client = flyte.get_client()
    result = client.terminate(_execution_of(config, execution_id), cause=config.cause)
    if result.already_terminal:
        context.log.info(
            "Flyte execution %s had already ended %s", result.execution_id, result.phase.name
        )
    else:
        context.log.info("Terminated Flyte execution %s", result.execution_id)
    return result.phase.name


def _signal_op(
    name: str, description: str, config_type: type[FlyteSignalConfig], method: str
) -> dg.OpDefinition:
    """An op setting a gate's signal with the client's ``approve``, ``reject`` or ``set_input``."""

    @dg.op(
        name=name,
        description=description,
        out=dg.Out(str, description="The execution id."),
        tags={"kind": "flyte"},
    )
    def _op(
        context: dg.OpExecutionContext,
        config: config_type,  # type: ignore[valid-type]
        flyte: FlyteResource,
        execution_id: str | None = None,
    ) -> str:
        client = flyte.get_client()
        target = _execution_of(config, execution_id)
        # Config holds no datetimes or durations: set_input reads a str as the signal's type.
        value = (config.value,) if isinstance(config, SetFlyteInputConfig) else ()
        options = {"from_text": True} if isinstance(config, SetFlyteInputConfig) else {}
        try:
            execution = client.fetch_execution(target)
        except FlyteBridgeError as error:
            description = f"Cannot read Flyte execution {target}: {error}"
            raise dg.Failure(description=description) from error
        send = getattr(client, method)
        try:
            # Stopping the run while the op waits for the gate ends the execution, as the
            # launch and wait ops do.
            with terminating_on_stop(
                client,
                context.log,
                execution,
                terminate_on_interrupt=flyte.terminate_on_interrupt,
            ):
                if config.wait_for_gate:
                    context.log.info(
                        "Waiting up to %s s for gate %s of Flyte execution %s",
                        config.wait_for_gate,
                        config.signal_id,
                        execution.id,
                    )
                send(
                    execution,
                    config.signal_id,
                    *value,
                    wait_for_gate=config.wait_for_gate,
                    **options,
                )
        except FlyteBridgeError as error:
            raise dg.Failure(
                description=f"{method} of gate {config.signal_id!r} failed: {error}",
                metadata=execution_reference(client, execution),
            ) from error
        context.log.info(
            "%s: gate %s of Flyte execution %s", method, config.signal_id, execution.id
        )
        return str(execution.id)

    return _op


approve_flyte_gate = _signal_op(
    "approve_flyte_gate",
    "Approves an approve gate (sets its signal to true).",
    FlyteSignalConfig,
    "approve",
)
reject_flyte_gate = _signal_op(
    "reject_flyte_gate",
    "Rejects an approve gate (sets its signal to false), which fails the execution.",
    FlyteSignalConfig,
    "reject",
)
set_flyte_input = _signal_op(
    "set_flyte_input",
    "Gives a value, converted to the signal's type, to a wait_for_input gate.",
    SetFlyteInputConfig,
    "set_input",
)


@dg.op(
    out=dg.Out(str, description="The backfill execution id; empty on a dry run."),
    tags={"kind": "flyte"},
)
def backfill_flyte_launch_plan(
    context: dg.OpExecutionContext, config: BackfillFlyteLaunchPlanConfig, flyte: FlyteResource
) -> str:
    """Runs a launch plan's schedule over a past window as one Flyte backfill execution."""
    client = flyte.get_client()

    def backfill(name: str | None, dry_run: bool) -> Any:
        return client.launch_backfill(
            config.launch_plan,
            _parse_time(config.start, "start"),
            _parse_time(config.end, "end"),
            version=config.version,
            parallel=config.parallel,
            failure_policy=config.failure_policy,
            dry_run=dry_run,
            name=name,
            project=config.project,
            domain=config.domain,
            labels={DAGSTER_RUN_LABEL: context.run_id},
        )

    # The plan first (no launch), so that a retry which follows an earlier try's backfill
    # still reports its ticks.
    ticks = [tick.isoformat() for tick in backfill(None, dry_run=True).plan]
    context.log.info("Backfill of %s covers %d ticks", config.launch_plan, len(ticks))
    metadata: dict[str, Any] = {metadata_key("backfill_ticks"): dg.MetadataValue.json(ticks)}
    if config.dry_run:
        context.add_output_metadata(metadata)
        return ""
    decision = launch_or_reattach_logged(
        client,
        context.log,
        _step(context),
        lambda name: backfill(name, dry_run=False).execution,
        project=config.project,
        domain=config.domain,
        waiting=config.wait,
        target=config.launch_plan,
        # After a failed backfill the next one recovers it, reusing the ticks that succeeded.
        recover=True,
        # See _materialize_by_backfill: a backfill follows the run of its name.
        same_request_only=False,
    )
    execution = decision.execution
    if config.wait:
        execution = wait_for(
            client,
            context.log,
            execution,
            **wait_options(flyte),
        )
        raise_for_failure(client, execution)
    metadata.update(execution_metadata(client, execution))
    context.add_output_metadata(metadata)
    return str(execution.id)


def _parse_time(text: str, what: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise dg.Failure(description=f"{what} must be an ISO 8601 time, got {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
