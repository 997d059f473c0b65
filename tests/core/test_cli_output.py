"""How the CLI writes what it shows: types and values as they are, long values cut, strict JSON."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner
from rich.table import Table

from flyte_bridge.cli import _common
from flyte_bridge.naming import natural_order


def _printed(renderable) -> str:
    runner = CliRunner()
    with runner.isolation() as (out, _err, _in):
        _common.console().print(renderable)
        return out.getvalue().decode()


def test_the_cli_console_prints_square_brackets_as_they_are() -> None:
    table = Table("signal", "type", box=None)
    table.add_row("ints", "list[int]")
    table.add_row("[bold]name[/bold]", "dict[str, list[float]]")

    printed = _printed(table)

    assert "list[int]" in printed
    assert "[bold]name[/bold]" in printed
    assert "dict[str, list[float]]" in printed


def test_a_long_value_is_cut_saying_how_long_it_is() -> None:
    text = "x" * 3_000_000

    shown = _common.shortened(text)

    assert len(shown) < _common.SHOWN_VALUE_LENGTH + 100
    assert shown.endswith("... (3,000,000 characters; --json shows all)")
    assert _common.shortened("short") == "short"


def test_names_are_sorted_with_numbers_compared_as_numbers() -> None:
    names = ["o10", "o2", "o1", "total", "o0", "a"]

    assert sorted(names, key=natural_order) == ["a", "o0", "o1", "o2", "o10", "total"]
    assert sorted(["x²", "x٣", "x1"], key=natural_order) == ["x1", "x²", "x٣"]


def test_a_literal_map_reads_in_natural_order_whatever_protobuf_keeps() -> None:
    from flyteidl.core import literals_pb2

    from flyte_bridge.literals import literal_map_to_python

    outputs = literals_pb2.LiteralMap()
    for name in ["o10", "o2", "o1", "total", "o0"]:
        outputs.literals[name].scalar.primitive.integer = 1
    nested = outputs.literals["a"].map.literals
    for key in ["k3", "k20", "k1"]:
        nested[key].scalar.primitive.integer = 2

    read = literal_map_to_python(outputs)

    assert list(read) == ["a", "o0", "o1", "o2", "o10", "total"]
    assert list(read["a"]) == ["k1", "k3", "k20"]


def test_json_output_is_strict_json_even_for_nan_and_infinity() -> None:
    runner = CliRunner()
    with runner.isolation() as (out, _err, _in):
        _common.print_json(
            {"o0": float("nan"), "o1": float("inf"), "at": dt.datetime(2024, 1, 2), "b": b"\x01"}
        )
        written = out.getvalue().decode()

    assert "NaN" not in written and "Infinity" not in written
    parsed = json.loads(written)
    assert parsed == {"o0": "nan", "o1": "inf", "at": "2024-01-02T00:00:00", "b": "AQ=="}


def test_a_task_traceback_shows_as_its_code_and_message_on_one_line() -> None:
    error = (
        "USER:RuntimeError: Trace:\n\n    Traceback (most recent call last):\n"
        '      File "/venv/flytekit/core/base_task.py", line 1, in dispatch_execute\n\n'
        "Message:\n\n    ValueError: no event source for region mars\n\nUser error."
    )

    assert _common.one_line_error(error) == (
        "USER:RuntimeError: ValueError: no event source for region mars (the whole error: --json)"
    )
    assert _common.one_line_error("not needed") == "not needed"
    assert _common.one_line_error("SYSTEM:Oops: a\nlast words") == (
        "SYSTEM:Oops: a last words (the whole error: --json)"
    )
