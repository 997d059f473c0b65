"""``flyte-bridge signals list|approve|reject|set``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click
from rich.table import Table

from flyte_bridge.cli._common import (
    connection_options,
    console,
    open_client,
    parse_value,
    type_label,
)
from flyte_bridge.errors import FlyteBridgeError

_WAIT_HELP = "Seconds to wait for the gate to be reached (default: fail at once if it is not)."


@contextlib.contextmanager
def _worded_for_the_command_line(execution: str, signal_id: str) -> Iterator[None]:
    """Turns the client's errors into a click error whose hints name this command line's
    commands and options instead of the Python methods and arguments the client names."""
    hints = {
        "use set_input": f"use `flyte-bridge signals set {execution} {signal_id} VALUE`",
        "pass wait_for_gate=<seconds> to wait for it": "pass --wait SECONDS to wait for it",
    }
    try:
        yield
    except FlyteBridgeError as error:
        message = str(error)
        for python_hint, command_line_hint in hints.items():
            message = message.replace(python_hint, command_line_hint)
        raise click.ClickException(f"{type(error).__name__}: {message}") from error


class _NegativeNumbersAreArguments(click.Command):
    """A command whose arguments may be negative numbers: ``set RUN rollout_percent -5``.

    Click reads ``-5`` as an unknown option. Before parsing, every argument that reads as a
    negative number and is no option's value moves, in order, with the other arguments, behind
    a ``--``; options (unknown ones too, which click still refuses) stay in front.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.get_params(ctx)
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        }
        options: list[str] = []
        arguments: list[str] = []
        rest = list(args)
        while rest:
            token = rest.pop(0)
            if token == "--":
                arguments.extend(rest)
                break
            if token.startswith("-") and len(token) > 1 and not _is_number(token):
                options.append(token)
                if token in takes_value and rest:
                    options.append(rest.pop(0))
            else:
                arguments.append(token)
        return super().parse_args(ctx, [*options, "--", *arguments])


def _is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (``-5``, ``-0.5``, ``-1e3``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


@click.group()
def signals() -> None:
    """List gates' signals and approve, reject or answer them."""


@signals.command("list")
@connection_options
@click.argument("execution")
def list_signals(connection: dict[str, Any], execution: str) -> None:
    """Lists the signals of EXECUTION, and the gates of its workflow not reached yet."""
    with open_client(connection) as client:
        run = client.fetch_execution(execution)
        found = client.list_signals(run)
        reached = {signal.signal_id for signal in found}
        unreached = {
            key: kind for key, kind in client.declared_gates(run).items() if key not in reached
        }
        if not found and not unreached:
            click.echo(_no_signals(run))
            return
        table = Table("signal", "type", "value", box=None)
        for signal in found:
            value = repr(signal.value) if signal.is_set else "(not set)"
            table.add_row(signal.signal_id, type_label(signal.type), value)
        for signal_id, kind in sorted(unreached.items()):
            state = "(never reached)" if run.is_done else "(gate not reached yet)"
            table.add_row(signal_id, type_label(kind), state)
        console().print(table)


def _no_signals(execution: Any) -> str:
    """What an empty list means. It is only empty when the workflow declares no gate (a
    declared one not reached is listed as such); gates made at run time, in dynamic nodes or
    child launch plans' executions, are not declared and may still come while it runs."""
    declares = "its workflow declares no approve or input gates"
    if execution.is_done:
        return f"No signals: {declares} (the execution ended {execution.phase_name})."
    return (
        f"No signals yet: {declares}; only gates made at run time (in dynamic nodes or child "
        "launch plans) may still appear."
    )


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
        done = f"{verb.rstrip('e')}ed"
        with open_client(connection) as client, _worded_for_the_command_line(execution, signal_id):
            method = client.approve if verb == "approve" else client.reject
            signal = method(execution, signal_id, wait_for_gate=wait_for_gate)
            if not signal.changed:
                click.echo(f"{signal_id} was already {done}; nothing changed")
            else:
                click.echo(f"{done} {signal_id}")

    return decide


approve = _decision("approve", "Approves the approve gate SIGNAL_ID of EXECUTION.")
reject = _decision(
    "reject", "Rejects the approve gate SIGNAL_ID of EXECUTION (the execution then fails)."
)


@signals.command("set", cls=_NegativeNumbersAreArguments)
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

    VALUE is read as the signal's declared type (``25`` for a float is 25.0, ``yes`` for a bool
    is True); lists, maps and records are written as JSON. The client checks it against the
    type before sending it, also when --wait waits for a gate not reached yet. A negative
    number is a VALUE too (``-5``), not an option.
    """
    with open_client(connection) as client, _worded_for_the_command_line(execution, signal_id):
        before = _listed(client, execution).get(signal_id)
        if before is not None:
            given, from_text = parse_value(value, before.type), False
        else:
            # The gate is not reached yet: the client reads the text as the type its workflow
            # declares for the gate, once it knows it.
            given, from_text = value, True
        signal = client.set_input(
            execution, signal_id, given, wait_for_gate=wait_for_gate, from_text=from_text
        )
        if not signal.changed:
            click.echo(f"{signal_id} was already set to {signal.value!r}; nothing changed")
        else:
            click.echo(f"set {signal_id} = {signal.value!r}")


def _listed(client: Any, execution: str) -> dict[str, Any]:
    """The execution's signals by id, as they are before the command sets one."""
    return {signal.signal_id: signal for signal in client.list_signals(execution)}
