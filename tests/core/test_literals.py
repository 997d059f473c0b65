"""Literal conversion: reading every literal kind, writing against declared types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

import msgpack
import pydantic
import pytest
from flyteidl.admin import common_pb2
from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from google.protobuf import struct_pb2

from flyte_bridge import literals
from flyte_bridge.errors import FlyteDataError, FlyteInvalidInputError
from flyte_bridge.literals import (
    BinaryValue,
    BlobRef,
    ErrorValue,
    PickledRef,
    SchemaRef,
    StructuredDatasetRef,
    describe_type,
    literal_map_to_python,
    load_literal_map,
    python_to_literal_map,
    to_literal,
    to_python,
)

S = types_pb2.SimpleType
UTC = dt.timezone.utc


def simple(kind: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=kind)


def union(*variants: types_pb2.LiteralType) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(union_type=types_pb2.UnionType(variants=variants))


def tagged(kind: int, tag: str) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=kind, structure=types_pb2.TypeStructure(tag=tag))


def enum_type(*values: str) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=values))


def msgpack_record_type(title: str = "", required: tuple[str, ...] = ()) -> types_pb2.LiteralType:
    annotation = struct_pb2.Struct()
    annotation.update({"cache-key-metadata": {"serialization-format": "msgpack"}})
    metadata = struct_pb2.Struct()
    if title:
        metadata.update({"title": title, "required": list(required)})
    return types_pb2.LiteralType(
        simple=S.STRUCT,
        metadata=metadata,
        annotation=types_pb2.TypeAnnotation(annotations=annotation),
    )


def primitive(**kwargs) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**kwargs))
    )


def scalar(**kwargs) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(**kwargs))


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    label: str


class Order(pydantic.BaseModel):
    id: int
    items: list[str]


# ---------------------------------------------------------------------------------- reading


def test_integer_literal_reads_as_int():
    assert to_python(primitive(integer=3)) == 3


def test_integer_literal_declared_float_reads_as_float():
    value = to_python(primitive(integer=3), simple(S.FLOAT))
    assert value == 3.0 and isinstance(value, float)


def test_datetime_literal_reads_as_utc_aware_datetime():
    lit = primitive(datetime={"seconds": 1704164645, "nanos": 250_000_000})
    assert to_python(lit) == dt.datetime(2024, 1, 2, 3, 4, 5, 250_000, tzinfo=UTC)
    assert to_python(lit).tzinfo is UTC


def test_duration_literal_reads_as_timedelta():
    assert to_python(primitive(duration={"seconds": 90})) == dt.timedelta(seconds=90)


def test_none_literal_reads_as_none():
    assert to_python(scalar(none_type=literals_pb2.Void())) is None


def test_collection_and_map_read_as_list_and_dict():
    lit = literals_pb2.Literal(
        map=literals_pb2.LiteralMap(
            literals={
                "xs": literals_pb2.Literal(
                    collection=literals_pb2.LiteralCollection(
                        literals=[primitive(integer=1), primitive(integer=2)]
                    )
                )
            }
        )
    )
    assert to_python(lit) == {"xs": [1, 2]}


def test_union_reads_as_the_value_of_its_variant():
    lit = scalar(
        union=literals_pb2.Union(value=primitive(string_value="5"), type=tagged(S.STRING, "str"))
    )
    assert to_python(lit) == "5"


def test_c11_msgpack_record_reads_as_plain_dict():
    packed = msgpack.packb({"a": 1, "b": [1, 2]})
    lit = scalar(binary=literals_pb2.Binary(value=packed, tag="msgpack"))
    assert to_python(lit) == {"a": 1, "b": [1, 2]}


def test_c11_corrupt_msgpack_record_raises_data_error_naming_the_output():
    lit = scalar(binary=literals_pb2.Binary(value=b"\xc1", tag="msgpack"))
    with pytest.raises(FlyteDataError, match="o0"):
        literal_map_to_python(literals_pb2.LiteralMap(literals={"o0": lit}))


def test_binary_with_unknown_tag_reads_as_binary_value():
    lit = scalar(binary=literals_pb2.Binary(value=b"\x00\x01", tag="arrow"))
    assert to_python(lit) == BinaryValue(value=b"\x00\x01", tag="arrow")


def test_struct_record_reads_numbers_as_floats_without_a_type():
    generic = struct_pb2.Struct()
    generic.update({"a": 1, "b": "q"})
    assert to_python(scalar(generic=generic)) == {"a": 1.0, "b": "q"}


def test_struct_record_restores_integers_the_declared_schema_names():
    generic = struct_pb2.Struct()
    generic.update({"a": 1, "ratio": 2.0, "inner": {"n": 4}})
    record_type = types_pb2.LiteralType(
        simple=S.STRUCT,
        structure=types_pb2.TypeStructure(
            dataclass_type={
                "a": simple(S.INTEGER),
                "inner": types_pb2.LiteralType(
                    simple=S.STRUCT,
                    structure=types_pb2.TypeStructure(dataclass_type={"n": simple(S.INTEGER)}),
                ),
            }
        ),
    )
    value = to_python(scalar(generic=generic), record_type)
    assert value == {"a": 1, "ratio": 2.0, "inner": {"n": 4}}
    assert isinstance(value["a"], int) and isinstance(value["ratio"], float)
    assert isinstance(value["inner"]["n"], int)


def test_file_blob_reads_as_reference():
    blob = literals_pb2.Blob(
        uri="s3://bucket/k.csv",
        metadata=literals_pb2.BlobMetadata(type=types_pb2.BlobType(format="csv")),
    )
    assert to_python(scalar(blob=blob)) == BlobRef(uri="s3://bucket/k.csv", format="csv")


def test_directory_blob_reads_as_multipart_reference():
    blob = literals_pb2.Blob(
        uri="s3://bucket/dir",
        metadata=literals_pb2.BlobMetadata(
            type=types_pb2.BlobType(dimensionality=types_pb2.BlobType.MULTIPART)
        ),
    )
    ref = to_python(scalar(blob=blob))
    assert ref.multipart and ref.dimensionality == "MULTIPART" and ref.uri == "s3://bucket/dir"


def test_c11_pickled_blob_reads_as_pickled_reference_with_its_class():
    blob = literals_pb2.Blob(
        uri="s3://bucket/pickle",
        metadata=literals_pb2.BlobMetadata(type=types_pb2.BlobType(format="PythonPickle")),
    )
    declared = types_pb2.LiteralType(blob=types_pb2.BlobType(format="PythonPickle"))
    declared.metadata.update({"python_class_name": "<class 'bytes'>"})
    assert to_python(scalar(blob=blob), declared) == PickledRef(
        uri="s3://bucket/pickle", python_class="<class 'bytes'>"
    )


def test_structured_dataset_reads_as_reference_with_format_and_columns():
    dataset_type = types_pb2.StructuredDatasetType(
        format="parquet",
        columns=[types_pb2.StructuredDatasetType.DatasetColumn(name="a", literal_type=simple(1))],
    )
    lit = scalar(
        structured_dataset=literals_pb2.StructuredDataset(
            uri="s3://b/df",
            metadata=literals_pb2.StructuredDatasetMetadata(structured_dataset_type=dataset_type),
        )
    )
    assert to_python(lit) == StructuredDatasetRef(uri="s3://b/df", format="parquet", columns=("a",))


def test_structured_dataset_without_format_takes_the_declared_format():
    lit = scalar(structured_dataset=literals_pb2.StructuredDataset(uri="s3://b/df"))
    declared = types_pb2.LiteralType(
        structured_dataset_type=types_pb2.StructuredDatasetType(format="parquet")
    )
    assert to_python(lit, declared).format == "parquet"


def test_schema_reads_as_reference_with_named_columns():
    column = types_pb2.SchemaType.SchemaColumn(
        name="n", type=types_pb2.SchemaType.SchemaColumn.INTEGER
    )
    lit = scalar(schema=literals_pb2.Schema(uri="s3://b/s", type={"columns": [column]}))
    assert to_python(lit) == SchemaRef(uri="s3://b/s", columns=(("n", "INTEGER"),))


def test_error_scalar_reads_as_error_value():
    lit = scalar(error=types_pb2.Error(failed_node_id="n1", message="boom"))
    assert to_python(lit) == ErrorValue(failed_node_id="n1", message="boom")


def test_empty_literal_raises_data_error_instead_of_none():
    with pytest.raises(FlyteDataError, match="no value"):
        to_python(literals_pb2.Literal())


def test_c11_pickled_output_is_returned_with_a_warning_naming_it(caplog):
    blob = literals_pb2.Blob(
        uri="s3://bucket/pickle",
        metadata=literals_pb2.BlobMetadata(type=types_pb2.BlobType(format="PythonPickle")),
    )
    outputs = literals_pb2.LiteralMap(literals={"o1": scalar(blob=blob)})
    with caplog.at_level("WARNING", logger="flyte_bridge.literals"):
        literal_map_to_python(outputs)
    assert "o1 is a pickled value" in caplog.text and "s3://bucket/pickle" in caplog.text


def test_c11_one_pickled_output_leaves_the_others_readable():
    packed = msgpack.packb({"a": 1, "b": [1, 2]})
    pickled = literals_pb2.Blob(
        uri="file:///tmp/p",
        metadata=literals_pb2.BlobMetadata(type=types_pb2.BlobType(format="PythonPickle")),
    )
    outputs = literals_pb2.LiteralMap(
        literals={
            "o0": scalar(binary=literals_pb2.Binary(value=packed, tag="msgpack")),
            "o1": scalar(blob=pickled),
            "o2": primitive(integer=3),
        }
    )
    values = literal_map_to_python(outputs)
    assert values == {"o0": {"a": 1, "b": [1, 2]}, "o1": PickledRef(uri="file:///tmp/p"), "o2": 3}


# ---------------------------------------------------------------------------------- offloaded


def offloaded(uri: str, size: int = 0) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(
            uri=uri,
            size_bytes=size,
            inferred_type=types_pb2.LiteralType(collection_type=simple(S.INTEGER)),
        )
    )


def test_c12_offloaded_literal_is_fetched_and_decoded():
    stored = to_literal(list(range(50_000)), types_pb2.LiteralType(collection_type=simple(1)))
    data = stored.SerializeToString()
    seen = []

    def fetch(uri: str) -> bytes:
        seen.append(uri)
        return data

    value = to_python(offloaded("file:///store/o0_offloaded_metadata.pb", len(data)), fetch=fetch)
    assert value == list(range(50_000))
    assert seen == ["file:///store/o0_offloaded_metadata.pb"]


def test_c12_offloaded_literal_without_fetch_raises_naming_the_uri():
    with pytest.raises(FlyteDataError, match="file:///store/o0.pb") as info:
        to_python(offloaded("file:///store/o0.pb"))
    assert info.value.subject == "file:///store/o0.pb"


def test_c12_offloaded_literal_that_cannot_be_read_raises_naming_the_uri_and_cause():
    def fetch(uri: str) -> bytes:
        raise PermissionError("access denied")

    with pytest.raises(FlyteDataError, match=r"s3://meta/o0\.pb.*access denied"):
        to_python(offloaded("s3://meta/o0.pb"), fetch=fetch)


def test_c12_offloaded_literal_through_fsspec_reads_a_local_file(tmp_path):
    path = tmp_path / "o0.pb"
    path.write_bytes(primitive(integer=7).SerializeToString())
    assert to_python(offloaded(path.as_uri()), fetch=literals.fsspec_fetch) == 7


def test_literal_map_behind_a_url_is_fetched_when_not_inline():
    stored = literals_pb2.LiteralMap(literals={"x": primitive(integer=1)})
    url_blob = common_pb2.UrlBlob(url="https://signed/outputs.pb", bytes=99)
    loaded = load_literal_map(
        literals_pb2.LiteralMap(), url_blob, fetch=lambda uri: stored.SerializeToString()
    )
    assert literal_map_to_python(loaded) == {"x": 1}


def test_inline_literal_map_is_used_without_fetching():
    inline = literals_pb2.LiteralMap(literals={"x": primitive(integer=1)})
    url_blob = common_pb2.UrlBlob(url="https://signed/outputs.pb", bytes=99)
    assert load_literal_map(inline, url_blob, fetch=None) is inline


def test_literal_map_with_neither_inline_data_nor_url_is_empty():
    assert len(load_literal_map(literals_pb2.LiteralMap(), common_pb2.UrlBlob()).literals) == 0


def test_a_url_blob_of_zero_bytes_is_an_empty_map_and_is_not_fetched():
    url_blob = common_pb2.UrlBlob(url="https://signed/inputs.pb", bytes=0)
    assert len(load_literal_map(literals_pb2.LiteralMap(), url_blob, fetch=None).literals) == 0


def test_garbage_behind_the_url_raises_data_error():
    url_blob = common_pb2.UrlBlob(url="https://signed/outputs.pb", bytes=3)
    with pytest.raises(FlyteDataError, match="not a serialized LiteralMap"):
        load_literal_map(None, url_blob, fetch=lambda uri: b"\xff\xff\xff")


# ---------------------------------------------------------------------------------- writing


def test_c16_int_for_float_is_sent_as_float():
    lit = to_literal(5, simple(S.FLOAT))
    assert lit.scalar.primitive.WhichOneof("value") == "float_value"
    assert lit.scalar.primitive.float_value == 5.0


def test_c16_int_for_string_is_refused_naming_the_expected_type():
    with pytest.raises(FlyteInvalidInputError, match="expected STRING, got int 42"):
        to_literal(42, simple(S.STRING))


def test_c16_string_for_boolean_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="expected BOOLEAN, got str 'true'"):
        to_literal("true", simple(S.BOOLEAN))


def test_bool_for_integer_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="expected INTEGER"):
        to_literal(True, simple(S.INTEGER))


def test_integer_beyond_64_bits_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="64 bits"):
        to_literal(2**63, simple(S.INTEGER))


def test_naive_datetime_is_sent_as_utc():
    lit = to_literal(dt.datetime(2024, 1, 2, 3, 4, 5), simple(S.DATETIME))
    assert lit.scalar.primitive.datetime.seconds == 1704164645


def test_aware_datetime_is_converted_to_utc():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    lit = to_literal(dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus_two), simple(S.DATETIME))
    assert lit.scalar.primitive.datetime.seconds == 1704164645


def test_date_is_sent_as_midnight_utc():
    lit = to_literal(dt.date(2024, 1, 2), simple(S.DATETIME))
    assert lit.scalar.primitive.datetime.seconds == 1704153600


def test_none_is_refused_for_a_non_optional_type():
    with pytest.raises(FlyteInvalidInputError, match="expected INTEGER, got NoneType"):
        to_literal(None, simple(S.INTEGER))


def test_error_message_names_the_position_inside_nested_values():
    nested = types_pb2.LiteralType(
        map_value_type=types_pb2.LiteralType(collection_type=simple(S.INTEGER))
    )
    with pytest.raises(FlyteInvalidInputError, match=r"x\['k'\]\[1\]: expected INTEGER"):
        python_to_literal_map({"x": {"k": [1, "2"]}}, {"x": nested})


def test_map_with_non_string_keys_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="key 1 is not a str"):
        to_literal({1: 2}, types_pb2.LiteralType(map_value_type=simple(S.INTEGER)))


def test_string_is_not_taken_as_a_list_of_characters():
    with pytest.raises(FlyteInvalidInputError, match=r"expected List\[STRING\]"):
        to_literal("abc", types_pb2.LiteralType(collection_type=simple(S.STRING)))


def test_enum_member_and_allowed_string_are_sent_as_their_value():
    declared = enum_type("red", "green")
    assert to_literal(Color.GREEN, declared).scalar.primitive.string_value == "green"
    assert to_literal("red", declared).scalar.primitive.string_value == "red"


def test_string_outside_the_enum_is_refused_listing_the_allowed_values():
    with pytest.raises(FlyteInvalidInputError, match="give one of red, green"):
        to_literal("blue", enum_type("red", "green"))


def test_dataclass_is_sent_as_msgpack_when_the_type_asks_for_it():
    lit = to_literal(Point(x=1, label="q"), msgpack_record_type("Point", ("x", "label")))
    assert lit.scalar.binary.tag == "msgpack"
    assert msgpack.unpackb(lit.scalar.binary.value) == {"x": 1, "label": "q"}


def test_pydantic_model_is_sent_as_msgpack():
    lit = to_literal(Order(id=3, items=["a"]), msgpack_record_type("Order"))
    assert msgpack.unpackb(lit.scalar.binary.value) == {"id": 3, "items": ["a"]}


def test_record_missing_a_required_field_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="missing fields label"):
        to_literal({"x": 1}, msgpack_record_type("Point", ("x", "label")))


def test_record_field_the_type_does_not_declare_is_refused_naming_the_fields():
    point = msgpack_record_type("Point", ("x",))
    point.structure.dataclass_type["x"].CopyFrom(simple(S.INTEGER))
    point.structure.dataclass_type["label"].CopyFrom(simple(S.STRING))

    with pytest.raises(FlyteInvalidInputError, match=r"unknown fields lable \(fields: label, x\)"):
        to_literal({"x": 1, "lable": "typo"}, point)


def test_dict_is_sent_as_struct_when_the_type_has_no_msgpack_annotation():
    lit = to_literal({"a": 1, "b": ["x"]}, simple(S.STRUCT))
    assert lit.scalar.WhichOneof("value") == "generic"
    assert to_python(lit) == {"a": 1.0, "b": ["x"]}


def test_unserializable_record_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="not serializable"):
        to_literal({"a": object()}, msgpack_record_type())


def test_remote_uri_is_sent_as_blob_with_the_declared_format():
    declared = types_pb2.LiteralType(blob=types_pb2.BlobType(format="csv"))
    lit = to_literal("s3://bucket/data.csv", declared)
    assert lit.scalar.blob.uri == "s3://bucket/data.csv"
    assert lit.scalar.blob.metadata.type.format == "csv"


def test_local_path_without_uploader_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a\n")
    with pytest.raises(FlyteInvalidInputError, match="local paths are uploaded only"):
        to_literal(str(path), types_pb2.LiteralType(blob=types_pb2.BlobType()))


def test_local_path_is_uploaded_and_its_uri_sent(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a\n")
    uploaded = []

    def upload(local: str) -> str:
        uploaded.append(local)
        return "s3://uploads/data.csv"

    lit = to_literal(path, types_pb2.LiteralType(blob=types_pb2.BlobType()), upload=upload)
    assert lit.scalar.blob.uri == "s3://uploads/data.csv"
    assert uploaded == [str(path)]


def test_file_given_for_a_directory_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a\n")
    declared = types_pb2.LiteralType(
        blob=types_pb2.BlobType(dimensionality=types_pb2.BlobType.MULTIPART)
    )
    with pytest.raises(FlyteInvalidInputError, match="is not a directory"):
        to_literal(str(path), declared, upload=lambda p: "s3://x")


def test_pickled_value_cannot_be_built_from_a_python_object():
    declared = types_pb2.LiteralType(blob=types_pb2.BlobType(format="PythonPickle"))
    with pytest.raises(FlyteInvalidInputError, match="PickledRef"):
        to_literal(b"raw", declared)


def test_structured_dataset_keeps_the_declared_dataset_type():
    declared = types_pb2.LiteralType(
        structured_dataset_type=types_pb2.StructuredDatasetType(format="parquet")
    )
    lit = to_literal("s3://b/df", declared)
    assert lit.scalar.structured_dataset.uri == "s3://b/df"
    assert lit.scalar.structured_dataset.metadata.structured_dataset_type.format == "parquet"


def test_literal_given_as_value_is_passed_through():
    lit = primitive(integer=9)
    assert to_literal(lit, simple(S.STRING)) is lit


def test_unknown_input_names_are_listed_with_the_expected_ones():
    variables = interface_pb2.VariableMap(
        variables={"a": interface_pb2.Variable(type=simple(S.INTEGER))}
    )
    with pytest.raises(FlyteInvalidInputError, match="unknown inputs b, c; expected names are a"):
        python_to_literal_map({"a": 1, "b": 2, "c": 3}, variables)


def test_parameter_map_gives_the_declared_types():
    parameters = interface_pb2.ParameterMap(
        parameters={"a": interface_pb2.Parameter(var=interface_pb2.Variable(type=simple(2)))}
    )
    assert python_to_literal_map({"a": 1}, parameters).literals["a"].scalar.primitive.float_value


# ---------------------------------------------------------------------------------- unions


def test_c14_union_value_is_tagged_with_the_variant_it_fits():
    declared = union(tagged(S.INTEGER, "int"), tagged(S.STRING, "str"))
    lit = to_literal("5", declared)
    assert lit.scalar.union.type == tagged(S.STRING, "str")
    assert lit.scalar.union.value.scalar.primitive.string_value == "5"


def test_c14_union_prefers_the_exact_type_when_several_variants_fit():
    declared = union(tagged(S.FLOAT, "float"), tagged(S.INTEGER, "int"))
    assert to_literal(3, declared).scalar.union.type.structure.tag == "int"
    assert to_literal(3.5, declared).scalar.union.type.structure.tag == "float"


def test_string_for_str_or_enum_union_takes_the_str_variant():
    declared = union(
        types_pb2.LiteralType(collection_type=simple(S.STRING)),
        tagged(S.STRING, "str"),
        enum_type("red", "green"),
    )
    assert to_literal("red", declared).scalar.union.type.structure.tag == "str"
    assert to_literal(Color.RED, declared).scalar.union.type.WhichOneof("type") == "enum_type"


def test_none_for_optional_takes_the_none_variant():
    declared = union(tagged(S.INTEGER, "int"), tagged(S.NONE, "none"))
    lit = to_literal(None, declared)
    assert lit.scalar.union.type.structure.tag == "none"
    assert lit.scalar.union.value.scalar.WhichOneof("value") == "none_type"


def test_value_fitting_no_variant_is_refused_before_any_call():
    declared = union(tagged(S.INTEGER, "int"), tagged(S.STRING, "str"))
    with pytest.raises(FlyteInvalidInputError, match="fits none of the variants"):
        to_literal({"a": 1}, declared)


def test_value_fitting_two_variants_equally_is_refused_as_ambiguous():
    declared = union(
        types_pb2.LiteralType(collection_type=simple(S.INTEGER)),
        types_pb2.LiteralType(collection_type=simple(S.STRING)),
    )
    with pytest.raises(FlyteInvalidInputError, match="fits several variants"):
        to_literal([], declared)


def test_dataclass_in_a_union_of_records_picks_the_variant_with_its_title():
    declared = union(msgpack_record_type("Point", ("x",)), msgpack_record_type("Order", ("id",)))
    lit = to_literal(Point(x=1, label="a"), declared)
    assert lit.scalar.union.type.metadata.fields["title"].string_value == "Point"


def test_union_does_not_upload_while_trying_variants(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    uploads = []

    def upload(local: str) -> str:
        uploads.append(local)
        return "s3://up/f.txt"

    declared = union(types_pb2.LiteralType(blob=types_pb2.BlobType()), tagged(S.INTEGER, "int"))
    lit = to_literal(str(path), declared, upload=upload)
    assert lit.scalar.union.value.scalar.blob.uri == "s3://up/f.txt"
    assert uploads == [str(path)]


def test_describe_type_writes_nested_types_readably():
    declared = union(
        types_pb2.LiteralType(map_value_type=types_pb2.LiteralType(collection_type=simple(1))),
        enum_type("a", "b"),
        types_pb2.LiteralType(blob=types_pb2.BlobType(format="csv")),
    )
    assert describe_type(declared) == "Union[Dict[str, List[INTEGER]], Enum[a, b], File[csv]]"


def test_type_name_writes_short_lowercase_names():
    declared = union(
        types_pb2.LiteralType(map_value_type=types_pb2.LiteralType(collection_type=simple(3))),
        simple(S.NONE),
        msgpack_record_type("Point"),
        types_pb2.LiteralType(blob=types_pb2.BlobType(dimensionality=types_pb2.BlobType.MULTIPART)),
    )
    assert literals.type_name(declared) == (
        "union<dict<string, list<string>>, none, record<Point>, directory>"
    )
    assert literals.type_name(simple(S.DATETIME)) == "datetime"


def test_struct_record_with_nan_reads_back_as_nan():
    value = to_python(to_literal({"x": float("nan"), "y": [None, True]}, simple(S.STRUCT)))
    assert value["x"] != value["x"] and value["y"] == [None, True]
