"""Whether an input literal fits its declared type (checked at launch and by SetSignal)."""

from __future__ import annotations

import pytest
from flyteidl.core import literals_pb2, types_pb2

from flyte_bridge.sandbox.literal_types import literal_fits

INTEGER = types_pb2.LiteralType(simple=types_pb2.INTEGER)
FLOAT = types_pb2.LiteralType(simple=types_pb2.FLOAT)
STRING = types_pb2.LiteralType(simple=types_pb2.STRING)
INT_OR_STRING = types_pb2.LiteralType(union_type=types_pb2.UnionType(variants=[INTEGER, STRING]))
COLOUR = types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=["red", "green"]))


def _primitive(**value) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**value))
    )


def _tagged(value: literals_pb2.Literal, tag: types_pb2.LiteralType | None):
    union = literals_pb2.Union(value=value)
    if tag is not None:
        union.type.CopyFrom(tag)
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(union=union))


@pytest.mark.parametrize(
    ("literal", "literal_type", "fits"),
    [
        (_primitive(integer=5), FLOAT, True),
        (_primitive(float_value=5.0), INTEGER, False),
        (_primitive(string_value="red"), COLOUR, True),
        (_primitive(string_value="blue"), COLOUR, False),
        (_tagged(_primitive(string_value="5"), STRING), INT_OR_STRING, True),
        (_tagged(_primitive(string_value="5"), None), INT_OR_STRING, False),
        (_tagged(_primitive(string_value="5"), INTEGER), INT_OR_STRING, False),
        (_primitive(integer=5), INT_OR_STRING, True),
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(tag="msgpack"))
            ),
            types_pb2.LiteralType(simple=types_pb2.STRUCT),
            True,
        ),
        (
            literals_pb2.Literal(
                collection=literals_pb2.LiteralCollection(literals=[_primitive(integer=1)])
            ),
            types_pb2.LiteralType(collection_type=STRING),
            False,
        ),
    ],
    ids=[
        "integer-as-float",
        "float-as-integer",
        "enum-value",
        "enum-unknown-value",
        "union-tagged-with-a-declared-variant",
        "union-without-its-tag",
        "union-tag-not-matching-the-value",
        "untagged-value-fitting-a-variant",
        "msgpack-dataclass-as-struct",
        "list-of-the-wrong-item-type",
    ],
)
def test_literal_fits_its_declared_type(literal, literal_type, fits):
    assert literal_fits(literal, literal_type) is fits
