"""``flyte-bridge executions list|get|watch|terminate``."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from flyte_bridge.cli._common import (
    check_scope_exists,
    connection_options,
    console,
    elapsed,
    format_duration,
    format_time,
    one_line_error,
    open_client,
    phase_text,
    print_json,
    shortened,
)
from flyte_bridge.errors import FlyteBridgeError
from flyte_bridge.models import WorkflowPhase
from flyte_bridge.naming import natural_order

logger = logging.getLogger(__name__)

EXECUTION_PHASES = [phase.name for phase in WorkflowPhase if phase is not WorkflowPhase.UNDEFINED]


@click.group()
def executions() -> None:
    """List, inspect, watch and terminate executions."""


def _summary(client: Any, execution: Any) -> dict[str, Any]:
    """The fields ``--json`` prints for one execution."""
    error = execution.error
    return {
        "id": str(execution.id),
        "phase": execution.phase_name,
        "launch_plan": str(execution.launch_plan),
        "workflow": str(execution.workflow) if execution.workflow else None,
        "mode": execution.mode,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "duration": elapsed(execution),
        "error": None if error is None else {"code": error.code, "message": error.message},
        "console_url": client.console_url(execution),
    }


@executions.command("list")
@connection_options
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many executions.",
)
@click.option(
    "--phase",
    "phases",
    multiple=True,
    type=click.Choice(EXECUTION_PHASES, case_sensitive=False),
    help="Only these phases (repeatable).",
)
@click.option(
    "--launch-plan",
    help="Only executions of this launch plan: NAME, PROJECT/DOMAIN/NAME, either with @VERSION.",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="An admin filter such as 'gte(execution_created_at,2024-01-01T00:00:00Z)' (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_executions(
    connection: dict[str, Any],
    limit: int,
    phases: tuple[str, ...],
    launch_plan: str | None,
    filters: tuple[str, ...],
    as_json: bool,
) -> None:
    """Lists the most recent executions of a project and domain, newest first."""
    from flyte_bridge.filters import Filter

    with open_client(connection) as client:
        selection = Filter.all(*filters)
        if phases:
            selection &= Filter.value_in("phase", [phase.upper() for phase in phases])
        project = domain = version = None
        if launch_plan:
            project, domain, name, version = _launch_plan_option(launch_plan)
            selection &= Filter.eq("launch_plan.name", name)
            if version:
                selection &= Filter.eq("launch_plan.version", version)
        found = client.recent_executions(
            project=project, domain=domain, limit=limit, filters=selection or None
        )
        if not found:
            check_scope_exists(
                client,
                project or client.config.default_project,
                domain or client.config.default_domain,
            )
            if launch_plan:
                _say_if_unregistered(client, launch_plan.partition("@")[0], version)
        if as_json:
            print_json([_summary(client, execution) for execution in found])
            return
        table = Table("name", "launch plan", "phase", "started (UTC)", "duration", box=None)
        for execution in found:
            table.add_row(
                execution.id.name,
                execution.launch_plan.name,
                phase_text(execution.phase_name),
                format_time(execution.started_at),
                format_duration(elapsed(execution)),
            )
        console().print(table)
        if not found:
            click.echo("No executions found.")


def _launch_plan_option(text: str) -> tuple[str | None, str | None, str, str | None]:
    """``--launch-plan`` read as project, domain, name and version (None where not given)."""
    from flyte_bridge._ops import entity_of
    from flyte_bridge.errors import FlyteInvalidInputError

    target, at, version = text.partition("@")
    try:
        project, domain, name, _ = entity_of(target, "launch plan")
    except FlyteInvalidInputError as error:
        raise click.BadParameter(error.message, param_hint="--launch-plan") from None
    if at and not version:
        raise click.BadParameter(f"no version after '@' in {text!r}", param_hint="--launch-plan")
    return project, domain, name, version or None


def _say_if_unregistered(client: Any, launch_plan: str, version: str | None = None) -> None:
    """Notes on stderr that a launch plan filtered on is not registered (a typo, most often)."""
    from flyte_bridge.errors import FlyteNotFoundError

    try:
        client.fetch_launch_plan(launch_plan, version=version)
    except FlyteNotFoundError as error:
        click.echo(f"Note: {error.message}", err=True)
    except FlyteBridgeError as error:  # only a note: the listing itself succeeded
        logger.debug("Could not look up launch plan %s: %s", launch_plan, error)


@executions.command("get")
@connection_options
@click.argument("execution")
@click.option("--nodes", is_flag=True, help="Also show the node tree (syncs every node).")
@click.option("--inputs", "show_inputs", is_flag=True, help="Also show the inputs.")
@click.option("--outputs", "show_outputs", is_flag=True, help="Also show the outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def get_execution(
    connection: dict[str, Any],
    execution: str,
    nodes: bool,
    show_inputs: bool,
    show_outputs: bool,
    as_json: bool,
) -> None:
    """Shows one execution: EXECUTION is a name or project/domain/name."""
    with open_client(connection) as client:
        found = client.sync(execution, sync_nodes=nodes)
        inputs = client.fetch_inputs(found) if show_inputs else None
        outputs, outputs_error = _outputs(client, found) if show_outputs else (None, None)
        if as_json:
            summary = _summary(client, found)
            if show_inputs:
                summary["inputs"] = inputs
            if show_outputs:
                summary["outputs"] = outputs
                summary["outputs_error"] = outputs_error
            if nodes:
                summary["nodes"] = [_node_summary(node) for node in found.node_executions.values()]
            print_json(summary)
            return
        out = console()
        out.print(_details(client, found))
        for title, values in (("inputs", inputs), ("outputs", outputs)):
            if values is not None:
                out.print(Text(title, style="bold"))
                for name in sorted(values, key=natural_order):
                    out.print(f"  {name} = {shortened(repr(values[name]))}")
        if outputs_error is not None:
            out.print(
                Text("outputs", style="bold"), "not available:", one_line_error(outputs_error)
            )
        if nodes:
            out.print(render_tree(found))


def _outputs(client: Any, execution: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The outputs, or None and why there are none: a run that has not finished, or one that
    ended without success, is still shown, with the reason in place of its outputs."""
    from flyte_bridge.errors import FlyteExecutionFailedError, FlyteNotReadyError

    try:
        return client.fetch_outputs(execution), None
    except (FlyteNotReadyError, FlyteExecutionFailedError) as error:
        return None, str(error)


def _details(client: Any, execution: Any) -> Table:
    """The key facts of an execution as a two-column table."""
    table = Table(show_header=False, box=None)
    table.add_row("execution", str(execution.id))
    table.add_row("phase", phase_text(execution.phase_name))
    table.add_row("launch plan", str(execution.launch_plan))
    if execution.workflow is not None:
        table.add_row("workflow", str(execution.workflow))
    table.add_row("mode", execution.mode)
    table.add_row("created (UTC)", format_time(execution.created_at))
    table.add_row("started (UTC)", format_time(execution.started_at))
    table.add_row("duration", format_duration(elapsed(execution)))
    error = execution.error_summary
    if error is not None:
        table.add_row("error", Text(one_line_error(error), style="red"))
    table.add_row("console", client.console_url(execution))
    return table


def _node_summary(node: Any) -> dict[str, Any]:
    """The fields ``--json --nodes`` prints for a node and what hangs below it."""
    return {
        "node_id": node.node_id,
        "kind": node.kind,
        "phase": node.phase_name,
        "duration": elapsed(node),
        "attempts": [
            {
                "retry_attempt": task.retry_attempt,
                "phase": task.phase_name,
                "duration": elapsed(task),
            }
            for task in node.task_executions
        ],
        "children": [_node_summary(child) for child in node.children.values()],
        "child_execution": str(node.child_execution.id) if node.child_execution else None,
    }


def _line(label: str, item: Any) -> Text:
    """``label  PHASE  duration`` for one line of the tree."""
    line = Text(label)
    line.append("  ")
    line.append_text(phase_text(item.phase_name))
    line.append(f"  {format_duration(elapsed(item))}", style="dim")
    return line


def _add_nodes(branch: Tree, nodes: dict[str, Any]) -> None:
    """Adds node executions, their attempts, children and child executions under ``branch``."""
    for node in nodes.values():
        if node.spec_node_id in ("start-node", "end-node"):
            continue
        kind = f" ({node.kind})" if node.kind else ""
        child = branch.add(_line(f"{node.spec_node_id}{kind}", node))
        if len(node.task_executions) > 1 or any(task.error for task in node.task_executions):
            for task in node.task_executions:
                child.add(_line(f"attempt {task.retry_attempt}", task))
        _add_nodes(child, node.children)
        if node.child_execution is not None:
            execution = node.child_execution
            launched = child.add(_line(f"execution {execution.id.name}", execution))
            _add_nodes(launched, execution.node_executions)


def render_tree(execution: Any) -> Tree:
    """The execution and its synced node tree, with phases and durations.

    Array nodes show no per-item lines and a dynamic node reads ``(task)`` with its
    ``DYNAMIC_RUNNING`` phase; rich's Live display cuts a tree taller than the terminal."""
    tree = Tree(_line(f"execution {execution.id}", execution))
    _add_nodes(tree, execution.node_executions)
    return tree


@executions.command("watch")
@connection_options
@click.argument("execution")
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds between two refreshes.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Give up after this many seconds (exit code 2); it bounds every read, the first too.",
)
def watch_execution(
    connection: dict[str, Any], execution: str, interval: float, timeout: float | None
) -> None:
    """Shows the node tree live until the execution ends.

    Exits 0 when it succeeded, 1 when it failed, was aborted or timed out, and 2 when --timeout
    ran out first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with open_client(connection) as client:
        current = _sync_within(client, execution, deadline, None)
        with _live(render_tree(current)) as live:
            while not current.is_done:
                if deadline is not None and time.monotonic() >= deadline:
                    live.update(_timed_out(current), refresh=True)
                    raise SystemExit(2)
                pause = interval if deadline is None else min(interval, deadline - time.monotonic())
                time.sleep(max(pause, 0.0))
                current = _sync_within(client, current, deadline, current)
                live.update(render_tree(current), refresh=True)
            live.update(render_tree(current), refresh=True)
        if not current.is_successful:
            error = current.error_summary
            detail = f": {one_line_error(error)}" if error else ""
            raise click.ClickException(f"{current.id} ended {current.phase_name}{detail}")


def _sync_within(client: Any, execution: Any, deadline: float | None, last: Any) -> Any:
    """The synced tree, the sync bounded by what is left of --timeout. Out of time (admin not
    answering), the watch ends with exit code 2 saying so; ``last`` is the tree shown so far."""
    from flyte_bridge.errors import FlyteTimeoutError, FlyteTransientError

    if deadline is None:
        return client.sync(execution, sync_nodes=True)
    try:
        return client.sync(
            execution, sync_nodes=True, timeout=max(deadline - time.monotonic(), 0.001)
        )
    except (FlyteTimeoutError, FlyteTransientError) as error:
        if time.monotonic() < deadline and isinstance(error, FlyteTransientError):
            raise
        if last is not None:
            return last  # the loop shows it as timed out
        click.echo(f"Error: --timeout ran out before admin answered: {error}", err=True)
        raise SystemExit(2) from None


@contextlib.contextmanager
def _live(renderable: Any) -> Iterator[Live]:
    """A Live display on the commands' console whose last frame ends with a newline.

    On a terminal Live moves to a new line when it stops; on a pipe or file it writes only the
    last frame, without one, so the shell prompt or the error line would join its last line.
    """
    out = console()
    try:
        with Live(renderable, console=out, auto_refresh=False) as live:
            yield live
    finally:
        if not out.is_terminal:
            out.line()


def _timed_out(execution: Any) -> Group:
    """The last tree and a line saying the watch gave up."""
    note = Text(f"still {execution.phase_name} when --timeout ran out", style="yellow")
    return Group(render_tree(execution), note)


@executions.command("terminate")
@connection_options
@click.argument("execution")
@click.option("--cause", default="terminated from flyte-bridge", show_default=True)
def terminate_execution(connection: dict[str, Any], execution: str, cause: str) -> None:
    """Aborts an execution; one that has already ended is left as it is."""
    with open_client(connection) as client:
        result = client.terminate(execution, cause=cause)
        if result.already_terminal:
            click.echo(f"{result.execution_id} had already ended: {result.phase.name}")
        else:
            click.echo(f"{result.execution_id} is being aborted ({cause})")
