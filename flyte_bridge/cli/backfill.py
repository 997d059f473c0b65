"""``flyte-bridge backfill``: run a scheduled launch plan for every tick of a past window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from flyte_bridge.cli._common import UtcDateTime, connection_options, open_client


def _key_values(
    context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """Reads repeated ``KEY=VALUE`` options into a dict; a key given twice is refused, as
    keeping either value would drop the other unseen."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", context, parameter)
        if key in pairs:
            raise click.BadParameter(
                f"{key!r} is given twice ({pairs[key]!r} and {item!r}); give each key once",
                context,
                parameter,
            )
        pairs[key] = item
    return pairs


class _WindowEnd(UtcDateTime):
    """As UtcDateTime, but a bare date is the end of that day, so ``--to 2024-01-07`` includes
    the ticks of January 7 (read as midnight it would include only one at 00:00)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.datetime:
        from flyte_bridge.backfill import parse_window_bound
        from flyte_bridge.errors import FlyteInvalidInputError

        if not isinstance(value, str):
            return super().convert(value, param, ctx)
        try:
            return parse_window_bound(value, end=True)
        except FlyteInvalidInputError as error:
            self.fail(error.message, param, ctx)


@click.command()
@connection_options
@click.argument("launch_plan")
@click.option("--from", "start", type=UtcDateTime(), required=True, help="Window start (included).")
@click.option("--to", "end", type=_WindowEnd(), required=True,
              help="Window end (included; a bare date means the end of that day).")  # fmt: skip
@click.option("--version", help="Launch plan version (default: the active, else the newest).")
@click.option("--parallel", is_flag=True, help="Run every tick at once, not one after another.")
@click.option(
    "--failure-policy",
    type=click.Choice(["fail_fast", "continue"]),
    default="fail_fast",
    show_default=True,
    help="Stop at the first failed tick, or let the others finish.",
)
@click.option("--dry-run", is_flag=True, help="Only print the ticks; register and run nothing.")
@click.option("--name", help="Name of the backfill execution (default: a new one each run; "
              "running again with the same name reattaches to it).")  # fmt: skip
@click.option("--retries", "node_retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Retries of each tick's node.")  # fmt: skip
@click.option("--node-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds each tick's node may run.")  # fmt: skip
@click.option("--max-parallelism", type=click.IntRange(min=0),
              help="Most ticks running at once (with --parallel).")  # fmt: skip
@click.option("--input", "inputs", multiple=True, callback=_key_values,
              help="KEY=VALUE input every tick's run gets, VALUE read as text of the input's "
              "type (repeatable; not the kickoff-time input).")  # fmt: skip
@click.option("--label", "labels", multiple=True, callback=_key_values,
              help="KEY=VALUE label of the backfill execution (repeatable).")  # fmt: skip
def backfill(
    connection: dict[str, Any],
    launch_plan: str,
    start: dt.datetime,
    end: dt.datetime,
    version: str | None,
    parallel: bool,
    failure_policy: str,
    dry_run: bool,
    name: str | None,
    node_retries: int,
    node_timeout: float | None,
    max_parallelism: int | None,
    inputs: dict[str, str],
    labels: dict[str, str],
) -> None:
    """Runs LAUNCH_PLAN once per schedule tick from --from to --to, both ends included (a bare
    --to date includes that whole day).

    The ticks become the nodes of one generated workflow, launched as one execution; each tick's
    time goes to the schedule's kickoff-time input.
    """
    with open_client(connection) as client:

        def launch(execution_name: str | None) -> Any:
            return client.launch_backfill(
                launch_plan,
                start,
                end,
                version=version,
                parallel=parallel,
                failure_policy=failure_policy,
                dry_run=dry_run,
                name=execution_name,
                labels=labels or None,
                node_retries=node_retries,
                node_timeout=node_timeout,
                max_parallelism=max_parallelism,
                inputs=inputs or None,
                from_text=True,
            )

        if name is None or dry_run:
            result, action = launch(name), "launched"
        else:
            result, action = _launch_or_find(client, launch, name, launch_plan)
        click.echo(f"version {result.version}")
        click.echo(f"{len(result.plan)} tick{'' if len(result.plan) == 1 else 's'}:")
        for tick in result.plan:
            click.echo(f"  {tick.isoformat()}")
        if result.execution is None:
            click.echo("dry run: nothing was registered or launched")
            return
        execution = result.execution
        click.echo(f"execution {execution.id}")
        click.echo(client.console_url(execution))
        if action == "reattached":
            click.echo(
                f"reattached to backfill execution {execution.id}, still {execution.phase_name}: "
                f"it already existed under --name {name}, so nothing new was launched"
            )
        elif action == "reused":
            click.echo(
                f"backfill execution {execution.id} already SUCCEEDED under --name {name}; "
                "nothing new was launched"
            )
        elif action == "ended":
            raise click.ClickException(
                f"backfill execution {execution.id} already ended {execution.phase_name} under "
                f"--name {name}; nothing new was launched, as Flyte never reuses a name: pass "
                "another --name (or none) to run the backfill again"
            )


def _launch_or_find(
    client: Any, launch: Callable[[str], Any], name: str, launch_plan: str
) -> tuple[Any, str]:
    """Launches the backfill under ``name`` unless an execution of that name exists, and says
    which (:func:`flyte_bridge.reattach.launch_or_find`): ``launched``, ``reattached`` (still
    running), ``reused`` (succeeded) or ``ended`` (failed, aborted or timed out).

    The launch plan's ``project/domain/``, when given, is the scope the backfill runs in.
    """
    from flyte_bridge.reattach import launch_or_find

    results: list[Any] = []

    def launched(execution_name: str) -> Any:
        results.append(launch(execution_name))
        return results[-1].execution

    decision = launch_or_find(client, name, launched, target=launch_plan)
    return results[-1], decision.action
