"""Cross-checks with flytekit's TypeEngine: we read what it writes, and it reads what we write."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

import pydantic
import pytest

pytest.importorskip("flytekit")

from flytekit.core.context_manager import FlyteContextManager  # noqa: E402
from flytekit.core.type_engine import TypeEngine  # noqa: E402
from flytekit.models.literals import Literal as FlytekitLiteral  # noqa: E402
from flytekit.types.directory import FlyteDirectory  # noqa: E402
from flytekit.types.file import FlyteFile  # noqa: E402
from flytekit.types.structured import StructuredDataset  # noqa: E402

from flyte_bridge.errors import FlyteInvalidInputError  # noqa: E402
from flyte_bridge.literals import (  # noqa: E402
    BlobRef,
    PickledRef,
    StructuredDatasetRef,
    to_literal,
    to_python,
)

UTC = dt.timezone.utc


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Inner:
    n: int
    tags: list[str]


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    ratio: float


class Order(pydantic.BaseModel):
    id: int
    items: list[str]
    note: str | None = None


def flytekit_literal(python_type, value):
    """Returns (our LiteralType proto, our Literal proto) as flytekit writes them."""
    ctx = FlyteContextManager.current_context()
    literal_type = TypeEngine.to_literal_type(python_type)
    literal = TypeEngine.to_literal(ctx, value, python_type, literal_type)
    return literal_type.to_flyte_idl(), literal.to_flyte_idl()


def flytekit_reads(literal_proto, python_type):
    ctx = FlyteContextManager.current_context()
    return TypeEngine.to_python_value(
        ctx, FlytekitLiteral.from_flyte_idl(literal_proto), python_type
    )


READ_CASES = [
    (int, 3, 3),
    (float, 2.5, 2.5),
    (str, "héllo", "héllo"),
    (bool, True, True),
    (
        dt.datetime,
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    ),
    (dt.timedelta, dt.timedelta(seconds=90), dt.timedelta(seconds=90)),
    (list[int], [1, 2, 3], [1, 2, 3]),
    (dict[str, float], {"a": 1.5}, {"a": 1.5}),
    (int | None, None, None),
    (int | None, 5, 5),
    (int | str, "5", "5"),
    (Color, Color.GREEN, "green"),
    (dict, {"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 2]}),
    (
        Outer,
        Outer(name="x", inner=Inner(n=2, tags=["t"]), ratio=0.5),
        {"name": "x", "inner": {"n": 2, "tags": ["t"]}, "ratio": 0.5},
    ),
    (Order, Order(id=7, items=["a", "b"]), {"id": 7, "items": ["a", "b"], "note": None}),
    (list[Outer | None], [None], [None]),
]


@pytest.mark.parametrize(("python_type", "value", "expected"), READ_CASES)
def test_values_flytekit_writes_read_as_plain_python(python_type, value, expected):
    literal_type, literal = flytekit_literal(python_type, value)
    assert to_python(literal, literal_type) == expected
    assert to_python(literal) == expected


def test_flytefile_flytekit_writes_reads_as_blob_reference():
    literal_type, literal = flytekit_literal(FlyteFile["csv"], FlyteFile("s3://bucket/k.csv"))
    assert to_python(literal, literal_type) == BlobRef(uri="s3://bucket/k.csv", format="csv")


def test_flytedirectory_flytekit_writes_reads_as_multipart_reference():
    literal_type, literal = flytekit_literal(FlyteDirectory, FlyteDirectory("s3://bucket/dir"))
    assert to_python(literal, literal_type) == BlobRef(uri="s3://bucket/dir", multipart=True)


def test_structured_dataset_flytekit_writes_reads_as_reference():
    literal_type, literal = flytekit_literal(StructuredDataset, StructuredDataset(uri="s3://b/df"))
    ref = to_python(literal, literal_type)
    assert isinstance(ref, StructuredDatasetRef) and ref.uri == "s3://b/df"


def test_pickled_value_flytekit_writes_reads_as_pickled_reference():
    literal_type, literal = flytekit_literal(bytes, b"secret bytes")
    ref = to_python(literal, literal_type)
    assert isinstance(ref, PickledRef)
    assert ref.uri == literal.scalar.blob.uri and ref.python_class == "<class 'bytes'>"


WRITE_CASES = [
    (int, 3, 3),
    (float, 4, 4.0),
    (str, "x", "x"),
    (bool, False, False),
    (
        dt.datetime,
        dt.datetime(2024, 5, 6, 7, 8, 9, 123000),
        dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
    ),
    (dt.timedelta, dt.timedelta(minutes=3), dt.timedelta(minutes=3)),
    (list[dict[str, int]], [{"a": 1}], [{"a": 1}]),
    (str | None, None, None),
    (int | str, "5", "5"),
    (int | str, 5, 5),
    (Color, "red", Color.RED),
    (Outer, Outer("x", Inner(2, ["t"]), 0.5), Outer("x", Inner(2, ["t"]), 0.5)),
    (Order, {"id": 7, "items": ["a"]}, Order(id=7, items=["a"])),
    (dict, {"k": [1, "two"]}, {"k": [1, "two"]}),
]


@pytest.mark.parametrize(("python_type", "value", "expected"), WRITE_CASES)
def test_literals_we_write_are_read_by_flytekit(python_type, value, expected):
    literal_type = TypeEngine.to_literal_type(python_type).to_flyte_idl()
    literal = to_literal(value, literal_type)
    result = flytekit_reads(literal, python_type)
    if isinstance(expected, dt.datetime):
        result = result if result.tzinfo else result.replace(tzinfo=UTC)
    assert result == expected


def test_c14_string_for_list_str_enum_union_is_sent_as_the_str_variant_flytekit_accepts():
    python_type = list[str] | str | Color
    literal_type = TypeEngine.to_literal_type(python_type).to_flyte_idl()
    literal = to_literal("red", literal_type)
    assert literal.scalar.union.type.structure.tag == "str"
    assert flytekit_reads(literal, python_type) == "red"


def test_c14_dict_for_int_or_str_union_is_refused_before_sending():
    literal_type = TypeEngine.to_literal_type(int | str).to_flyte_idl()
    with pytest.raises(FlyteInvalidInputError, match=r"Union\[INTEGER, STRING\]"):
        to_literal({"a": 1}, literal_type)


def test_record_field_of_the_wrong_type_is_refused_naming_the_field():
    literal_type = TypeEngine.to_literal_type(Outer).to_flyte_idl()
    record = {"name": "x", "inner": {"n": "2", "tags": ["t"]}, "ratio": 0.5}
    with pytest.raises(FlyteInvalidInputError, match=r"inner\.n: expected INTEGER, got str '2'"):
        to_literal(record, literal_type)


def test_record_with_an_int_for_a_float_field_is_accepted_and_read_by_flytekit():
    literal_type = TypeEngine.to_literal_type(Outer).to_flyte_idl()
    record = {"name": "x", "inner": {"n": 2, "tags": []}, "ratio": 1}
    assert flytekit_reads(to_literal(record, literal_type), Outer) == Outer("x", Inner(2, []), 1.0)


@dataclasses.dataclass
class Window:
    when: dt.datetime
    every: dt.timedelta
    days: list[dt.date] = dataclasses.field(default_factory=list)


class Slot(pydantic.BaseModel):
    when: dt.datetime
    every: dt.timedelta


@pytest.mark.parametrize(
    ("when", "every"),
    [
        (dt.datetime(2024, 1, 2, 6, tzinfo=UTC), dt.timedelta(minutes=90)),
        ("2024-01-02T06:00:00+00:00", 5400),
        ("2024-01-02T06:00:00Z", "PT1H30M"),
        (dt.datetime(2024, 1, 2, 6, tzinfo=UTC), "1:30:00"),
    ],
)
@pytest.mark.parametrize("record_type", [Window, Slot])
def test_datetime_and_duration_record_fields_are_sent_as_flytekit_reads_them(
    record_type, when, every
):
    literal_type = TypeEngine.to_literal_type(record_type).to_flyte_idl()

    read = flytekit_reads(to_literal({"when": when, "every": every}, literal_type), record_type)

    assert read.when.replace(tzinfo=read.when.tzinfo or UTC) == dt.datetime(
        2024, 1, 2, 6, tzinfo=UTC
    )
    assert read.every == dt.timedelta(minutes=90)


def test_a_dataclass_instance_with_timedelta_and_date_fields_is_read_back_by_flytekit():
    literal_type = TypeEngine.to_literal_type(Window).to_flyte_idl()
    window = Window(
        dt.datetime(2024, 1, 2, 6, tzinfo=UTC), dt.timedelta(seconds=1), [dt.date(2024, 1, 3)]
    )

    assert flytekit_reads(to_literal(window, literal_type), Window) == window


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"when": "garbage", "every": 1}, r"when: .*ISO 8601 text"),
        ({"when": "2024-01-02", "every": "x"}, r"every: .*PT1M30S"),
        ({"when": "2024-01-02", "every": float("nan")}, r"every: .*PT1M30S"),
        ({"when": 5, "every": 1}, r"when: .*give a datetime"),
        ({"when": "2024-01-02", "every": True}, r"every: .*timedelta"),
    ],
)
def test_a_bad_datetime_or_duration_record_field_is_refused_naming_the_field(record, problem):
    literal_type = TypeEngine.to_literal_type(Window).to_flyte_idl()

    with pytest.raises(FlyteInvalidInputError, match=problem):
        to_literal(record, literal_type)
