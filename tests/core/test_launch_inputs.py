"""Launch input conversion against a launch plan's expected inputs (C14), before any RPC."""

from __future__ import annotations

import datetime as dt

import pytest
from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from flyte_bridge._ops import convert_inputs
from flyte_bridge.errors import FlyteInvalidInputError

SIMPLE = types_pb2.SimpleType


def _variant(tag: str, **kind) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(structure=types_pb2.TypeStructure(tag=tag), **kind)


def _required(literal_type: types_pb2.LiteralType) -> interface_pb2.Parameter:
    return interface_pb2.Parameter(var=interface_pb2.Variable(type=literal_type), required=True)


INT_OR_STR = types_pb2.LiteralType(
    union_type=types_pb2.UnionType(
        variants=[_variant("int", simple=SIMPLE.INTEGER), _variant("str", simple=SIMPLE.STRING)]
    )
)
LIST_STR_OR_COLOR = types_pb2.LiteralType(
    union_type=types_pb2.UnionType(
        variants=[
            _variant(
                "Typed List",
                collection_type=types_pb2.LiteralType(simple=SIMPLE.STRING),
            ),
            _variant("str", simple=SIMPLE.STRING),
            _variant("Color", enum_type=types_pb2.EnumType(values=["red", "green"])),
        ]
    )
)
PARAMETERS = {"a": _required(INT_OR_STR), "b": _required(LIST_STR_OR_COLOR)}
NO_FIXED = literals_pb2.LiteralMap()


def test_c14_union_inputs_take_the_exact_variant_with_its_tag():
    converted, uploads = convert_inputs("lp", PARAMETERS, NO_FIXED, {"a": "5", "b": "red"})

    assert converted["a"].scalar.union.type.structure.tag == "str"
    assert converted["a"].scalar.union.value.scalar.primitive.string_value == "5"
    assert converted["b"].scalar.union.type.structure.tag == "str"
    assert uploads == []


def test_c14_an_int_for_a_union_of_int_and_str_takes_the_int_variant():
    converted, _ = convert_inputs("lp", PARAMETERS, NO_FIXED, {"a": 5, "b": ["x"]})

    assert converted["a"].scalar.union.type.structure.tag == "int"
    assert converted["b"].scalar.union.type.structure.tag == "Typed List"


def test_c14_a_value_no_variant_fits_fails_naming_the_input():
    with pytest.raises(FlyteInvalidInputError, match="input 'a'"):
        convert_inputs("lp", PARAMETERS, NO_FIXED, {"a": {"k": 1}, "b": "red"})


def test_a_fixed_input_cannot_be_given():
    fixed = literals_pb2.LiteralMap(
        literals={"c": literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type={}))}
    )

    with pytest.raises(FlyteInvalidInputError, match="fixed inputs cannot be overridden: c"):
        convert_inputs("lp", PARAMETERS, fixed, {"a": 1, "b": "red", "c": None})


def test_defaults_are_filled_and_optional_inputs_may_be_left_out():
    default = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=7))
    )
    parameters = {
        "n": interface_pb2.Parameter(
            var=interface_pb2.Variable(type=types_pb2.LiteralType(simple=SIMPLE.INTEGER)),
            default=default,
        )
    }

    converted, _ = convert_inputs("lp", parameters, NO_FIXED, {})

    assert converted == {"n": default}


def test_local_paths_are_recorded_for_upload_after_every_check(tmp_path):
    local = tmp_path / "f.csv"
    local.write_text("x")
    blob = types_pb2.LiteralType(blob=types_pb2.BlobType(format="csv"))

    converted, uploads = convert_inputs("lp", {"f": _required(blob)}, NO_FIXED, {"f": str(local)})

    assert uploads == [str(local)]
    assert converted["f"].scalar.blob.uri.startswith("flyte-bridge-upload://")


TEXT_PARAMETERS = {
    "count": _required(types_pb2.LiteralType(simple=SIMPLE.INTEGER)),
    "at": _required(types_pb2.LiteralType(simple=SIMPLE.DATETIME)),
    "ratio": _required(types_pb2.LiteralType(simple=SIMPLE.FLOAT)),
    "names": _required(
        types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=SIMPLE.STRING))
    ),
    "a": _required(INT_OR_STR),
    "config": _required(types_pb2.LiteralType(simple=SIMPLE.STRUCT)),
}


def test_rendered_text_is_read_as_each_declared_type_with_from_text():
    converted, _ = convert_inputs(
        "lp",
        TEXT_PARAMETERS,
        NO_FIXED,
        {
            "count": "7",
            "at": "2026-12-04 04:56:03+00:00",
            "ratio": "0.5",
            "names": '["x", "y"]',
            "a": "5",
            "config": '{"depth": 3, "tags": ["x"]}',
        },
        from_text=True,
    )

    assert converted["count"].scalar.primitive.integer == 7
    assert converted["at"].scalar.primitive.datetime.ToJsonString() == "2026-12-04T04:56:03Z"
    assert converted["ratio"].scalar.primitive.float_value == 0.5
    assert [
        item.scalar.primitive.string_value for item in converted["names"].collection.literals
    ] == [
        "x",
        "y",
    ]
    fields = converted["config"].scalar.generic.fields
    assert fields["depth"].number_value == 3
    assert [value.string_value for value in fields["tags"].list_value.values] == ["x"]
    # A union with a str variant keeps the text (C14): "5" stays a str.
    assert converted["a"].scalar.union.type.structure.tag == "str"


def test_text_for_a_typed_input_is_refused_without_from_text():
    with pytest.raises(FlyteInvalidInputError, match="input 'count'"):
        convert_inputs("lp", TEXT_PARAMETERS, NO_FIXED, {"count": "7"})


def test_text_that_is_not_the_declared_type_lists_every_bad_input():
    with pytest.raises(FlyteInvalidInputError) as raised:
        convert_inputs(
            "lp", TEXT_PARAMETERS, NO_FIXED, {"count": "seven", "at": "soon"}, from_text=True
        )

    assert "input 'count': 'seven' is not an int" in str(raised.value)
    assert "input 'at': 'soon' is not a datetime" in str(raised.value)


def _optional(**kind) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(
        union_type=types_pb2.UnionType(
            variants=[_variant("value", **kind), _variant("none", simple=SIMPLE.NONE)]
        )
    )


def test_rendered_text_for_optional_values_and_lists_of_datetimes_is_read_by_type():
    parameters = {
        "at": _required(_optional(simple=SIMPLE.DATETIME)),
        "limit": _required(_optional(simple=SIMPLE.INTEGER)),
        "days": _required(
            types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=SIMPLE.DATETIME))
        ),
        "weights": _required(
            types_pb2.LiteralType(map_value_type=types_pb2.LiteralType(simple=SIMPLE.FLOAT))
        ),
    }

    converted, _ = convert_inputs(
        "lp",
        parameters,
        NO_FIXED,
        {
            "at": "2026-12-04 04:56:03+00:00",
            "limit": "None",
            "days": '["2024-01-02", "2024-01-03T06:00Z"]',
            "weights": '{"a": "0.5", "b": 2}',
        },
        from_text=True,
    )

    at = converted["at"].scalar.union
    assert at.type.structure.tag == "value"
    assert at.value.scalar.primitive.datetime.ToJsonString() == "2026-12-04T04:56:03Z"
    assert converted["limit"].scalar.union.type.structure.tag == "none"
    days = [
        d.scalar.primitive.datetime.ToJsonString() for d in converted["days"].collection.literals
    ]
    assert days == ["2024-01-02T00:00:00Z", "2024-01-03T06:00:00Z"]
    weights = converted["weights"].map.literals
    assert (
        weights["a"].scalar.primitive.float_value,
        weights["b"].scalar.primitive.float_value,
    ) == (
        0.5,
        2.0,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:00:00", dt.timedelta(hours=1)),
        ("2 days, 0:30:00", dt.timedelta(days=2, minutes=30)),
        ("-1 day, 23:00:00", dt.timedelta(hours=-1)),
        ("0:00:01.500000", dt.timedelta(seconds=1.5)),
    ],
)
def test_a_timedelta_as_python_writes_it_is_read_as_a_duration(text, expected):
    """What ``{{ macros.timedelta(hours=1) }}`` renders to without native rendering."""
    from flyte_bridge.literals import from_text

    assert from_text(text, types_pb2.LiteralType(simple=SIMPLE.DURATION)) == expected


def test_text_for_a_list_or_map_that_is_not_json_says_which_json_is_expected():
    parameters = {
        "counts": _required(
            types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=SIMPLE.INTEGER))
        ),
        "weights": _required(
            types_pb2.LiteralType(map_value_type=types_pb2.LiteralType(simple=SIMPLE.FLOAT))
        ),
    }
    with pytest.raises(FlyteInvalidInputError) as raised:
        convert_inputs(
            "lp", parameters, NO_FIXED, {"counts": "1,2", "weights": "a=1"}, from_text=True
        )

    assert "input 'counts': '1,2' is not a list[int]: expected a JSON list such as [1, 2]" in str(
        raised.value
    )
    assert "'a=1' is not a dict[str, float]: expected a JSON object such as {\"key\": 1.5}" in str(
        raised.value
    )


@pytest.mark.parametrize("text", ["inf", "1e20", "nan"])
def test_duration_text_too_long_or_not_a_number_is_a_typed_error(text):
    from flyte_bridge.literals import from_text

    with pytest.raises(FlyteInvalidInputError, match="is not a timedelta"):
        from_text(text, types_pb2.LiteralType(simple=SIMPLE.DURATION))


def test_the_json_example_for_nested_lists_and_durations_is_one_that_reads():
    from flyte_bridge.literals import from_text

    durations = types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=SIMPLE.DURATION))
    nested = types_pb2.LiteralType(
        collection_type=types_pb2.LiteralType(
            collection_type=types_pb2.LiteralType(simple=SIMPLE.INTEGER)
        )
    )
    for declared, example in (
        (durations, '["PT1M30S", "0:02:00"]'),
        (nested, "[[1, 2], [1, 2]]"),
    ):
        with pytest.raises(FlyteInvalidInputError) as raised:
            from_text("x", declared)
        assert f"expected a JSON list such as {example}" in str(raised.value)
        from_text(example, declared)  # the example itself is accepted


def test_with_from_text_a_number_for_a_duration_is_seconds_and_without_it_is_refused():
    parameters = {"wait": _required(types_pb2.LiteralType(simple=SIMPLE.DURATION))}

    converted, _ = convert_inputs("lp", parameters, NO_FIXED, {"wait": 90}, from_text=True)

    assert converted["wait"].scalar.primitive.duration.seconds == 90
    with pytest.raises(FlyteInvalidInputError, match="input 'wait'"):
        convert_inputs("lp", parameters, NO_FIXED, {"wait": 90})
    with pytest.raises(FlyteInvalidInputError, match="True"):
        convert_inputs("lp", parameters, NO_FIXED, {"wait": True}, from_text=True)


@pytest.mark.parametrize("text", ["1e400", "inf", "-inf", "nan"])
def test_text_for_a_float_must_be_a_finite_number(text):
    from flyte_bridge.literals import from_text

    with pytest.raises(FlyteInvalidInputError, match="is not a float: expected a number"):
        from_text(text, types_pb2.LiteralType(simple=SIMPLE.FLOAT))
