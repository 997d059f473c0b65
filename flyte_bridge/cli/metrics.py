"""``flyte-bridge metrics``: where an execution's time went."""

from __future__ import annotations

from typing import Any

import click

from flyte_bridge.cli._common import connection_options, open_client


@click.command()
@connection_options
@click.argument("execution")
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Levels of spans admin computes.",
)
@click.option(
    "--max-depth", type=click.IntRange(min=0), help="Levels of spans to show (default: all)."
)
@click.option("--yaml", "as_yaml", is_flag=True, help="Print a YAML summary instead of a table.")
def metrics(
    connection: dict[str, Any],
    execution: str,
    depth: int,
    max_depth: int | None,
    as_yaml: bool,
) -> None:
    """Shows the timing spans of EXECUTION (setup, runtime, teardown per node and attempt).

    Admin ends the spans of an unfinished execution, node or attempt at its last update, so the
    table of a running execution reads like a finished one; the command says so on stderr.
    """
    with open_client(connection) as client:
        span = client.execution_metrics(execution, depth=depth)
        run = client.fetch_execution(execution)
        click.echo(span.dump(max_depth) if as_yaml else span.explain(max_depth), nl=False)
        if not run.is_done:
            click.echo(
                f"{run.id.name} is still {run.phase_name}: spans of what has not finished end at "
                "its last update, not now",
                err=True,
            )
