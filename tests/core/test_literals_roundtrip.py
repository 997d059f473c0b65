"""Property tests: a Python value written against its type reads back as the same value."""

from __future__ import annotations

import datetime as dt

from flyteidl.core import literals_pb2, types_pb2
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from flyte_bridge.literals import BlobRef, StructuredDatasetRef, to_literal, to_python

S = types_pb2.SimpleType
UTC = dt.timezone.utc


def simple(kind: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=kind)


def msgpack_record() -> types_pb2.LiteralType:
    annotation = struct_pb2.Struct()
    annotation.update({"cache-key-metadata": {"serialization-format": "msgpack"}})
    return types_pb2.LiteralType(
        simple=S.STRUCT, annotation=types_pb2.TypeAnnotation(annotations=annotation)
    )


int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=False)
utc_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
)
durations = st.timedeltas(
    min_value=dt.timedelta(days=-3_000_000), max_value=dt.timedelta(days=3_000_000)
)
identifiers = st.text(min_size=1, max_size=8)

json_scalars = st.none() | st.booleans() | int64 | floats | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(identifiers, inner, max_size=3),
    max_leaves=8,
)
msgpack_records = st.dictionaries(identifiers, json_values, max_size=4)
struct_scalars = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
struct_values = st.recursive(
    struct_scalars | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(identifiers, inner, max_size=3),
    max_leaves=8,
)
struct_records = st.dictionaries(identifiers, struct_values, max_size=4)

blob_refs = st.builds(
    BlobRef,
    uri=st.from_regex(r"s3://bucket/[a-z0-9/]{1,12}", fullmatch=True),
    format=st.sampled_from(["", "csv", "parquet"]),
    multipart=st.booleans(),
)


def blob_type(ref: BlobRef) -> types_pb2.LiteralType:
    dimensionality = types_pb2.BlobType.MULTIPART if ref.multipart else types_pb2.BlobType.SINGLE
    return types_pb2.LiteralType(
        blob=types_pb2.BlobType(format=ref.format, dimensionality=dimensionality)
    )


@st.composite
def enum_pairs(draw):
    values = draw(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4, unique=True))
    declared = types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=values))
    return declared, draw(st.sampled_from(values))


leaf_pairs = st.one_of(
    int64.map(lambda v: (simple(S.INTEGER), v)),
    floats.map(lambda v: (simple(S.FLOAT), v)),
    st.text().map(lambda v: (simple(S.STRING), v)),
    st.booleans().map(lambda v: (simple(S.BOOLEAN), v)),
    utc_datetimes.map(lambda v: (simple(S.DATETIME), v)),
    durations.map(lambda v: (simple(S.DURATION), v)),
    st.none().map(lambda v: (simple(S.NONE), v)),
    st.binary(max_size=16).map(lambda v: (simple(S.BINARY), v)),
    msgpack_records.map(lambda v: (msgpack_record(), v)),
    struct_records.map(lambda v: (simple(S.STRUCT), v)),
    enum_pairs(),
    blob_refs.map(lambda v: (blob_type(v), v)),
    st.builds(StructuredDatasetRef, uri=st.just("s3://b/df"), format=st.just("parquet")).map(
        lambda v: (
            types_pb2.LiteralType(
                structured_dataset_type=types_pb2.StructuredDatasetType(format="parquet")
            ),
            v,
        )
    ),
)


@st.composite
def container_pairs(draw, inner):
    declared, value = draw(inner)
    kind = draw(st.sampled_from(["list", "map", "optional"]))
    if kind == "list":
        return types_pb2.LiteralType(collection_type=declared), [value, value]
    if kind == "map":
        keys = draw(st.lists(identifiers, max_size=3, unique=True))
        return types_pb2.LiteralType(map_value_type=declared), {k: value for k in keys}
    if declared.WhichOneof("type") == "union_type":
        return declared, value
    optional = types_pb2.LiteralType(
        union_type=types_pb2.UnionType(variants=[declared, types_pb2.LiteralType(simple=S.NONE)])
    )
    return optional, draw(st.sampled_from([value, None]))


typed_values = st.recursive(leaf_pairs, container_pairs, max_leaves=4)


def same(expected, actual) -> bool:
    """Equality that also checks the type (a float where a float was sent, tz-aware datetimes)."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(same(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(same(a, b) for a, b in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dt.datetime):
        return actual == expected and actual.tzinfo is not None
    return type(expected) is type(actual) and expected == actual


@settings(max_examples=300, deadline=None)
@given(typed_values)
def test_value_written_against_its_type_reads_back_equal(pair):
    declared, value = pair
    literal = to_literal(value, declared)
    assert same(value, to_python(literal, declared))


def _contains_struct(declared: types_pb2.LiteralType) -> bool:
    """Struct records read without a type give floats for ints, so they are left out below."""
    kind = declared.WhichOneof("type")
    if kind == "simple":
        return declared.simple == S.STRUCT and not declared.HasField("annotation")
    if kind == "collection_type":
        return _contains_struct(declared.collection_type)
    if kind == "map_value_type":
        return _contains_struct(declared.map_value_type)
    if kind == "union_type":
        return any(_contains_struct(v) for v in declared.union_type.variants)
    return False


@settings(max_examples=200, deadline=None)
@given(typed_values.filter(lambda pair: not _contains_struct(pair[0])))
def test_value_reads_back_equal_from_the_wire_without_the_type(pair):
    declared, value = pair
    wire = to_literal(value, declared).SerializeToString()
    assert same(value, to_python(literals_pb2.Literal.FromString(wire)))


@settings(max_examples=100, deadline=None)
@given(utc_datetimes.map(lambda d: d.replace(tzinfo=None)))
def test_naive_datetime_reads_back_as_the_same_instant_in_utc(naive):
    literal = to_literal(naive, simple(S.DATETIME))
    assert to_python(literal) == naive.replace(tzinfo=UTC)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_integers_in_a_declared_struct_record_read_back_as_ints(number):
    declared = types_pb2.LiteralType(
        simple=S.STRUCT,
        structure=types_pb2.TypeStructure(dataclass_type={"n": simple(S.INTEGER)}),
    )
    value = to_python(to_literal({"n": number}, declared), declared)
    assert value == {"n": number} and isinstance(value["n"], int)


def _tagged(declared: types_pb2.LiteralType, tag: str) -> types_pb2.LiteralType:
    tagged = types_pb2.LiteralType()
    tagged.CopyFrom(declared)
    tagged.structure.tag = tag
    return tagged


INT_STR_LIST_UNION = types_pb2.LiteralType(
    union_type=types_pb2.UnionType(
        variants=[
            _tagged(simple(S.INTEGER), "int"),
            _tagged(simple(S.STRING), "str"),
            _tagged(types_pb2.LiteralType(collection_type=simple(S.INTEGER)), "list"),
        ]
    )
)


@settings(max_examples=200, deadline=None)
@given(int64 | st.text(max_size=10) | st.lists(int64, max_size=3))
def test_c14_union_values_read_back_equal_tagged_with_the_variant_of_their_type(value):
    literal = to_literal(value, INT_STR_LIST_UNION)

    assert literal.scalar.union.type.structure.tag == type(value).__name__
    assert same(value, to_python(literal, INT_STR_LIST_UNION))
    wire = literals_pb2.Literal.FromString(literal.SerializeToString())
    assert same(value, to_python(wire))
