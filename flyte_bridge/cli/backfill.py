"""``flyte-bridge backfill``: run a scheduled launch plan for every tick of a past window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from flyte_bridge.cli._common import UtcDateTime, connection_options, open_client


@click.command()
@connection_options
@click.argument("launch_plan")
@click.option("--from", "start", type=UtcDateTime(), required=True, help="Window start (included).")
@click.option("--to", "end", type=UtcDateTime(), required=True, help="Window end (included).")
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
@click.option("--name", help="Name of the backfill execution (default: chosen by the client).")
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
) -> None:
    """Runs LAUNCH_PLAN once per schedule tick from --from to --to, both ends included.

    The ticks become the nodes of one generated workflow, launched as one execution; each tick's
    time goes to the schedule's kickoff-time input.
    """
    with open_client(connection) as client:
        result = client.launch_backfill(
            launch_plan,
            start,
            end,
            version=version,
            parallel=parallel,
            failure_policy=failure_policy,
            dry_run=dry_run,
            name=name,
        )
        click.echo(f"{len(result.plan)} ticks:")
        for tick in result.plan:
            click.echo(f"  {tick.isoformat()}")
        if result.execution is None:
            click.echo("dry run: nothing was registered or launched")
        else:
            click.echo(f"execution {result.execution.id}")
            click.echo(client.console_url(result.execution))
