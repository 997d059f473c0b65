"""Whether a literal fits a literal type: a lighter version of flyteadmin's castability check.

flyteadmin infers a literal's type and asks the compiler's ``AreTypesCastable``. This module
answers the same question for the shapes flytekit produces (primitives, collections, maps,
blobs, structured datasets, enums, unions, msgpack structs). Annotations, metadata and
structure hints are not compared; offloaded literals are accepted without being read.
"""

from __future__ import annotations

from flyteidl.core import literals_pb2, types_pb2

_PRIMITIVE_FOR_SIMPLE = {
    types_pb2.INTEGER: {"integer"},
    types_pb2.FLOAT: {"float_value", "integer"},
    types_pb2.STRING: {"string_value"},
    types_pb2.BOOLEAN: {"boolean"},
    types_pb2.DATETIME: {"datetime"},
    types_pb2.DURATION: {"duration"},
}


def literal_fits(literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType) -> bool:
    """True if ``literal`` can be passed where ``literal_type`` is declared."""
    kind = literal_type.WhichOneof("type")
    value = literal.WhichOneof("value")
    if value == "offloaded_metadata" or kind is None:
        return True
    if value == "scalar" and literal.scalar.WhichOneof("value") == "union":
        return _union_fits(literal.scalar.union, literal_type)
    if kind == "union_type":
        return any(literal_fits(literal, variant) for variant in literal_type.union_type.variants)
    if kind == "collection_type":
        return value == "collection" and all(
            literal_fits(item, literal_type.collection_type) for item in literal.collection.literals
        )
    if kind == "map_value_type":
        return value == "map" and all(
            literal_fits(item, literal_type.map_value_type)
            for item in literal.map.literals.values()
        )
    if value != "scalar":
        return False
    scalar = literal.scalar.WhichOneof("value")
    if kind == "simple":
        simple = literal_type.simple
        if simple == types_pb2.NONE:
            return scalar == "none_type"
        if simple == types_pb2.STRUCT:
            return scalar in ("generic", "binary")
        if simple == types_pb2.BINARY:
            return scalar == "binary"
        if simple == types_pb2.ERROR:
            return scalar == "error"
        if scalar != "primitive":
            return False
        return literal.scalar.primitive.WhichOneof("value") in _PRIMITIVE_FOR_SIMPLE.get(simple, ())
    if kind == "enum_type":
        primitive = literal.scalar.primitive
        return (
            scalar == "primitive"
            and primitive.WhichOneof("value") == "string_value"
            and primitive.string_value in literal_type.enum_type.values
        )
    expected_scalar = {
        "blob": "blob",
        "schema": "schema",
        "structured_dataset_type": "structured_dataset",
    }.get(kind)
    return expected_scalar is None or scalar == expected_scalar


def _union_fits(union: literals_pb2.Union, literal_type: types_pb2.LiteralType) -> bool:
    """A tagged union value fits if its tag is present, matches the value and is declared."""
    if not union.HasField("type") or not literal_fits(union.value, union.type):
        return False
    if literal_type.WhichOneof("type") == "union_type":
        return any(type_fits(union.type, variant) for variant in literal_type.union_type.variants)
    return type_fits(union.type, literal_type)


def type_fits(given: types_pb2.LiteralType, declared: types_pb2.LiteralType) -> bool:
    """True if a value declared as ``given`` can be passed where ``declared`` is expected."""
    declared_kind = declared.WhichOneof("type")
    given_kind = given.WhichOneof("type")
    if declared_kind is None or given_kind is None:
        return True
    if declared_kind == "union_type":
        if given_kind == "union_type":
            return all(
                any(type_fits(g, d) for d in declared.union_type.variants)
                for g in given.union_type.variants
            )
        return any(type_fits(given, variant) for variant in declared.union_type.variants)
    if given_kind != declared_kind:
        return False
    if declared_kind == "simple":
        return given.simple == declared.simple or (
            given.simple == types_pb2.INTEGER and declared.simple == types_pb2.FLOAT
        )
    if declared_kind == "collection_type":
        return type_fits(given.collection_type, declared.collection_type)
    if declared_kind == "map_value_type":
        return type_fits(given.map_value_type, declared.map_value_type)
    return True


def describe(literal_type: types_pb2.LiteralType) -> str:
    """A short name of a literal type for error messages (``INTEGER``, ``list<STRING>``)."""
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        try:
            return types_pb2.SimpleType.Name(literal_type.simple)
        except ValueError:
            return f"simple type {literal_type.simple}"
    if kind == "collection_type":
        return f"list<{describe(literal_type.collection_type)}>"
    if kind == "map_value_type":
        return f"map<STRING, {describe(literal_type.map_value_type)}>"
    if kind == "union_type":
        return " | ".join(describe(v) for v in literal_type.union_type.variants)
    return kind or "unknown"
