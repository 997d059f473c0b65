"""``flyte-bridge signals list|approve|reject|set``."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from flyte_bridge.cli._common import connection_options, console, open_client, parse_value

_WAIT_HELP = "Seconds to wait for the gate to be reached (default: fail at once if it is not)."


@click.group()
def signals() -> None:
    """List gates' signals and approve, reject or answer them."""


@signals.command("list")
@connection_options
@click.argument("execution")
def list_signals(connection: dict[str, Any], execution: str) -> None:
    """Lists the signals of EXECUTION: a gate's signal appears once the gate is reached."""
    from flyte_bridge.literals import describe_type

    with open_client(connection) as client:
        found = client.list_signals(execution)
        table = Table("signal", "type", "value", box=None)
        for signal in found:
            value = repr(signal.value) if signal.is_set else "(not set)"
            table.add_row(signal.signal_id, describe_type(signal.type), value)
        console().print(table)
        if not found:
            click.echo("No signals yet: the execution has not reached a gate.")


def _decision(verb: str, summary: str) -> click.Command:
    """The ``approve`` or ``reject`` command: both set an approve gate's BOOLEAN signal."""

    @signals.command(verb, help=summary)
    @connection_options
    @click.argument("execution")
    @click.argument("signal_id")
    @click.option("--wait", "wait_for_gate", type=click.FloatRange(min=0), help=_WAIT_HELP)
    def decide(
        connection: dict[str, Any], execution: str, signal_id: str, wait_for_gate: float | None
    ) -> None:
        with open_client(connection) as client:
            method = client.approve if verb == "approve" else client.reject
            method(execution, signal_id, wait_for_gate=wait_for_gate)
            click.echo(f"{verb.rstrip('e')}ed {signal_id}")

    return decide


approve = _decision("approve", "Approves the approve gate SIGNAL_ID of EXECUTION.")
reject = _decision(
    "reject", "Rejects the approve gate SIGNAL_ID of EXECUTION (the execution then fails)."
)


@signals.command("set")
@connection_options
@click.argument("execution")
@click.argument("signal_id")
@click.argument("value")
@click.option("--wait", "wait_for_gate", type=click.FloatRange(min=0), help=_WAIT_HELP)
def set_signal(
    connection: dict[str, Any],
    execution: str,
    signal_id: str,
    value: str,
    wait_for_gate: float | None,
) -> None:
    """Gives the wait-for-input gate SIGNAL_ID of EXECUTION its VALUE.

    VALUE is read as the signal's declared type (``25`` for a FLOAT is 25.0); lists, maps and
    records are written as JSON. The client checks it against the type before sending it.
    """
    with open_client(connection) as client:
        declared = {signal.signal_id: signal.type for signal in client.list_signals(execution)}
        parsed = parse_value(value, declared.get(signal_id))
        signal = client.set_input(execution, signal_id, parsed, wait_for_gate=wait_for_gate)
        click.echo(f"set {signal_id} = {signal.value!r}")
