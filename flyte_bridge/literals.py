"""Conversion between Flyte literals and Python values, without flytekit.

Reading (``to_python``) works with or without a declared ``core.LiteralType``; the type only
sharpens the result (a float where FLOAT was declared, integers back inside a Struct record).
Writing (``to_literal``) always needs the declared type, because admin checks that the literal's
shape can be cast to it: a value that does not fit raises ``FlyteInvalidInputError`` saying what
was expected, before any RPC.

What comes back from ``to_python``:

* primitives as ``int``, ``float``, ``str``, ``bool``, UTC-aware ``datetime`` and ``timedelta``;
* ``none_type`` as ``None``; collections as ``list``; maps as ``dict``; enums as their ``str``;
* unions as the value of the variant they carry;
* msgpack binaries (dataclass and Pydantic outputs) and Struct records as plain ``dict``/``list``;
* files and directories as ``BlobRef``, structured datasets as ``StructuredDatasetRef``, legacy
  schemas as ``SchemaRef``: references with the URI, never downloaded here;
* pickled values as ``PickledRef``: never unpickled, because unpickling runs code from the data;
* offloaded literals read through the ``fetch(uri) -> bytes`` callback the client passes.

Numbers inside a Struct record (the legacy record form) are stored as doubles: they come back as
floats unless the declared type says a field is an integer, and integers above 2**53 lose
precision there. The msgpack form keeps them exact.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import enum
import logging
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgpack
from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from flyte_bridge.errors import FlyteDataError, FlyteInvalidInputError
from flyte_bridge.naming import natural_order

logger = logging.getLogger(__name__)

Fetch = Callable[[str], bytes]
"""Reads the bytes stored at a URI (offloaded literals, data behind a signed URL)."""

Upload = Callable[[str], str]
"""Uploads a local file or directory and returns the remote URI to put in the literal."""

LiteralType = types_pb2.LiteralType
SimpleType = types_pb2.SimpleType

PICKLE_FORMAT = "PythonPickle"
MSGPACK_TAG = "msgpack"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DURATION_MAX_SECONDS = 315_576_000_000
_MAX_OFFLOAD_DEPTH = 4
_UTC = dt.timezone.utc


@dataclasses.dataclass(frozen=True)
class BlobRef:
    """A file (``multipart=False``) or directory (``multipart=True``) stored at ``uri``."""

    uri: str
    format: str = ""
    multipart: bool = False

    @property
    def dimensionality(self) -> str:
        """``"MULTIPART"`` for a directory, ``"SINGLE"`` for a file, as flyteidl names them."""
        return "MULTIPART" if self.multipart else "SINGLE"


@dataclasses.dataclass(frozen=True)
class StructuredDatasetRef:
    """A structured dataset (a dataframe written as ``format``, e.g. parquet) stored at ``uri``."""

    uri: str
    format: str = ""
    columns: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SchemaRef:
    """A legacy ``FlyteSchema`` stored at ``uri``; ``columns`` pairs names with column types."""

    uri: str
    columns: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class PickledRef:
    """A value flytekit pickled (a type it had no transformer for), stored at ``uri``.

    It is never unpickled here: unpickling runs code chosen by whoever wrote the data. Download
    it and unpickle it yourself, with the task's code importable, if you trust its source.
    """

    uri: str
    python_class: str = ""


@dataclasses.dataclass(frozen=True)
class BinaryValue:
    """A binary scalar with a tag this module does not decode (msgpack ones are decoded)."""

    value: bytes
    tag: str


@dataclasses.dataclass(frozen=True)
class ErrorValue:
    """An error scalar: the output of a failed node handed downstream (``failure_node`` inputs)."""

    failed_node_id: str
    message: str


References = (BlobRef, StructuredDatasetRef, SchemaRef, PickledRef)
"""The reference types: values that point at stored data instead of holding it."""


# --------------------------------------------------------------------------------------------
# Types: description and normalisation
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _TypeStyle:
    """How ``describe_type`` and ``type_name`` write a type: the words and the brackets."""

    words: dict[str, str]
    generic: str
    record: str
    lowercase: bool


_READABLE = _TypeStyle(
    words={
        "list": "List",
        "dict": "Dict",
        "key": "str",
        "enum": "Enum",
        "union": "Union",
        "file": "File",
        "directory": "Directory",
        "pickle": "Pickle",
        "dataset": "StructuredDataset",
        "schema": "Schema",
        "record": "STRUCT",
        "unknown": "unknown type",
    },
    generic="{}[{}]",
    record="{}({})",
    lowercase=False,
)
_SHORT = _TypeStyle(
    words={
        "list": "list",
        "dict": "dict",
        "key": "string",
        "enum": "enum",
        "union": "union",
        "file": "file",
        "directory": "directory",
        "pickle": "pickle",
        "dataset": "structured_dataset",
        "schema": "schema",
        "record": "record",
        "unknown": "unknown",
    },
    generic="{}<{}>",
    record="{}<{}>",
    lowercase=True,
)


def describe_type(literal_type: LiteralType | None) -> str:
    """Returns a short readable form of a LiteralType, e.g. ``List[INTEGER]`` or ``Enum[a, b]``."""
    return _render_type(literal_type, _READABLE)


def type_name(literal_type: LiteralType | None) -> str:
    """Returns a short lowercase name of a LiteralType for metadata and UIs.

    Examples: ``integer``, ``list<string>``, ``dict<string, float>``, ``union<integer, none>``,
    ``enum<red, green>``, ``file<csv>``, ``directory``, ``structured_dataset<parquet>``,
    ``record<Point>`` (a dataclass or Pydantic model), ``record``, ``pickle``.
    """
    return _render_type(literal_type, _SHORT)


def _render_type(literal_type: LiteralType | None, style: _TypeStyle) -> str:
    """Writes a LiteralType in one of the two styles."""
    if literal_type is None:
        return "any"
    words = style.words
    kind = literal_type.WhichOneof("type")

    def generic(word: str, inner: str) -> str:
        return style.generic.format(word, inner) if inner else word

    if kind == "simple":
        if literal_type.simple == SimpleType.STRUCT:
            title = _schema_title(literal_type)
            return style.record.format(words["record"], title) if title else words["record"]
        name = SimpleType.Name(literal_type.simple)
        return name.lower() if style.lowercase else name
    if kind == "collection_type":
        return generic(words["list"], _render_type(literal_type.collection_type, style))
    if kind == "map_value_type":
        value = _render_type(literal_type.map_value_type, style)
        return generic(words["dict"], f"{words['key']}, {value}")
    if kind == "enum_type":
        return generic(words["enum"], ", ".join(literal_type.enum_type.values))
    if kind == "union_type":
        variants = literal_type.union_type.variants
        return generic(words["union"], ", ".join(_render_type(v, style) for v in variants))
    if kind == "blob":
        blob = literal_type.blob
        if blob.format == PICKLE_FORMAT:
            return words["pickle"]
        multipart = blob.dimensionality == types_pb2.BlobType.MULTIPART
        return generic(words["directory" if multipart else "file"], blob.format)
    if kind == "structured_dataset_type":
        return generic(words["dataset"], literal_type.structured_dataset_type.format)
    if kind == "schema":
        return words["schema"]
    return words["unknown"]


def literal_types_of(variables: Any) -> dict[str, LiteralType]:
    """Returns ``{name: LiteralType}`` from a VariableMap, a ParameterMap or a plain mapping.

    Args:
        variables: ``core.VariableMap`` (an interface), ``core.ParameterMap`` (a launch plan's
            default inputs), or a mapping of names to ``LiteralType``, ``Variable`` or
            ``Parameter``.

    Raises:
        FlyteInvalidInputError: if ``variables`` is none of those.
    """
    if isinstance(variables, interface_pb2.VariableMap):
        return {name: var.type for name, var in variables.variables.items()}
    if isinstance(variables, interface_pb2.ParameterMap):
        return {name: param.var.type for name, param in variables.parameters.items()}
    if isinstance(variables, Mapping):
        result = {}
        for name, item in variables.items():
            if isinstance(item, types_pb2.LiteralType):
                result[name] = item
            elif isinstance(item, interface_pb2.Variable):
                result[name] = item.type
            elif isinstance(item, interface_pb2.Parameter):
                result[name] = item.var.type
            else:
                raise FlyteInvalidInputError(
                    f"type of {name!r}: expected a LiteralType, Variable or Parameter, "
                    f"got {type(item).__name__}"
                )
        return result
    raise FlyteInvalidInputError(
        "expected a VariableMap, ParameterMap or mapping of literal types, "
        f"got {type(variables).__name__}"
    )


def _schema_title(literal_type: LiteralType) -> str:
    """Returns the JSON schema title flytekit stores for dataclass and Pydantic types, or ''."""
    field = literal_type.metadata.fields.get("title")
    return field.string_value if field is not None else ""


def _is_msgpack_record(literal_type: LiteralType) -> bool:
    """Tells whether a STRUCT type asks for the msgpack binary form (flytekit >= 1.14)."""
    annotations = literal_type.annotation.annotations
    key = annotations.fields.get("cache-key-metadata")
    if key is None or key.WhichOneof("kind") != "struct_value":
        return False
    fmt = key.struct_value.fields.get("serialization-format")
    return fmt is not None and fmt.string_value == MSGPACK_TAG


# --------------------------------------------------------------------------------------------
# Literal -> Python
# --------------------------------------------------------------------------------------------


def to_python(
    literal: literals_pb2.Literal,
    literal_type: LiteralType | None = None,
    *,
    fetch: Fetch | None = None,
) -> Any:
    """Converts a ``core.Literal`` to a Python value.

    Args:
        literal: The literal, as found in a LiteralMap of inputs or outputs.
        literal_type: The declared type, when known; it only refines the result.
        fetch: Reads the bytes at a URI; needed only for offloaded literals.

    Returns:
        The Python value (see the module docstring for what each kind becomes).

    Raises:
        FlyteDataError: if the literal is offloaded and cannot be read, or its bytes are corrupt.
    """
    return _decode(literal, literal_type, fetch, "", 0)


def literal_map_to_python(
    literal_map: literals_pb2.LiteralMap,
    variables: Any = None,
    *,
    fetch: Fetch | None = None,
) -> dict[str, Any]:
    """Converts every literal of a ``core.LiteralMap``; ``variables`` gives declared types.

    Args:
        literal_map: Inputs or outputs as returned by the Get*Data RPCs.
        variables: Optional declared types (see ``literal_types_of``); names without a declared
            type are converted without one.
        fetch: Reads the bytes at a URI; needed only for offloaded literals.

    Raises:
        FlyteDataError: naming the variable, when one literal cannot be read.
    """
    types = literal_types_of(variables) if variables is not None else {}
    return {
        name: _decode(literal_map.literals[name], types.get(name), fetch, name, 0)
        for name in _in_order(literal_map.literals)
    }


def _in_order(literals: Mapping[str, Any]) -> list[str]:
    """The keys of a protobuf map in natural order: protobuf's own order changes from one
    process to the next, which would make outputs, XComs and JSON differ between reads."""
    return sorted(literals, key=natural_order)


def load_literal_map(
    full: literals_pb2.LiteralMap | None,
    url_blob: Any = None,
    *,
    fetch: Fetch | None = None,
) -> literals_pb2.LiteralMap:
    """Returns the LiteralMap of a Get*Data response, following its URL when it is not inline.

    Admin inlines ``full_inputs``/``full_outputs`` up to a size limit; above it they are empty
    and ``inputs``/``outputs`` (an ``admin.UrlBlob``) point at a serialized LiteralMap. A blob of
    0 bytes stands for an empty map and is not fetched.

    Args:
        full: The inline map (``full_inputs`` or ``full_outputs``).
        url_blob: The matching ``UrlBlob`` (``inputs`` or ``outputs``), if any.
        fetch: Reads the bytes at the URL; needed only when the map is not inline.

    Raises:
        FlyteDataError: if the map is only behind a URL and cannot be read or parsed.
    """
    if full is not None and len(full.literals) > 0:
        return full
    url = getattr(url_blob, "url", "") if url_blob is not None else ""
    if not url or getattr(url_blob, "bytes", 0) == 0:
        return literals_pb2.LiteralMap()
    return _parse(literals_pb2.LiteralMap(), _fetch(url, fetch, "the literal map"), url, "")


def fsspec_fetch(uri: str) -> bytes:
    """Reads ``uri`` with fsspec and the caller's own storage credentials (``file://``, s3...)."""
    import fsspec

    with fsspec.open(uri, "rb") as stream:
        return stream.read()


def _fetch(uri: str, fetch: Fetch | None, what: str) -> bytes:
    """Reads ``uri`` through ``fetch`` and turns every failure into a FlyteDataError."""
    if fetch is None:
        raise FlyteDataError(
            f"{what} is stored at {uri} and no fetch callback was given to read it", subject=uri
        )
    try:
        return fetch(uri)
    except Exception as exc:
        raise FlyteDataError(
            f"could not read {what} at {uri}: {type(exc).__name__}: {exc}", subject=uri
        ) from exc


def _parse(message: Any, data: bytes, uri: str, path: str) -> Any:
    """Parses fetched bytes into ``message``; corrupt data raises a FlyteDataError."""
    try:
        message.ParseFromString(data)
    except Exception as exc:
        kind = type(message).__name__
        raise FlyteDataError(
            f"{_where(path)}the data at {uri} is not a serialized {kind}: {exc}", subject=uri
        ) from exc
    return message


def _where(path: str) -> str:
    """Prefix naming the input or output a message is about."""
    return f"{path}: " if path else ""


def _decode(
    literal: literals_pb2.Literal,
    literal_type: LiteralType | None,
    fetch: Fetch | None,
    path: str,
    offload_depth: int,
) -> Any:
    """Converts one literal; ``path`` names it in error messages."""
    kind = literal.WhichOneof("value")
    declared = literal_type.WhichOneof("type") if literal_type is not None else None
    if kind == "scalar":
        return _decode_scalar(literal.scalar, literal_type, fetch, path, offload_depth)
    if kind == "collection":
        item_type = literal_type.collection_type if declared == "collection_type" else None
        return [
            _decode(item, item_type, fetch, f"{path}[{i}]", offload_depth)
            for i, item in enumerate(literal.collection.literals)
        ]
    if kind == "map":
        value_type = literal_type.map_value_type if declared == "map_value_type" else None
        items = literal.map.literals
        return {
            key: _decode(items[key], value_type, fetch, f"{path}[{key!r}]", offload_depth)
            for key in _in_order(items)
        }
    if kind == "offloaded_metadata":
        return _decode_offloaded(
            literal.offloaded_metadata, literal_type, fetch, path, offload_depth
        )
    raise FlyteDataError(f"{_where(path)}the literal holds no value", subject=path or None)


def _decode_offloaded(
    offloaded: literals_pb2.LiteralOffloadedMetadata,
    literal_type: LiteralType | None,
    fetch: Fetch | None,
    path: str,
    offload_depth: int,
) -> Any:
    """Fetches an offloaded literal (a serialized ``core.Literal`` at a URI) and converts it."""
    uri = offloaded.uri
    if offload_depth >= _MAX_OFFLOAD_DEPTH:
        raise FlyteDataError(f"{_where(path)}offloaded literals nest too deeply at {uri}")
    data = _fetch(uri, fetch, f"{_where(path)}the offloaded literal".strip())
    if offloaded.size_bytes and len(data) != offloaded.size_bytes:
        logger.warning(
            "Offloaded literal at %s has %s bytes, its metadata says %s",
            uri,
            len(data),
            offloaded.size_bytes,
        )
    inner = _parse(literals_pb2.Literal(), data, uri, path)
    if literal_type is None and offloaded.HasField("inferred_type"):
        literal_type = offloaded.inferred_type
    return _decode(inner, literal_type, fetch, path, offload_depth + 1)


def _decode_scalar(
    scalar: literals_pb2.Scalar,
    literal_type: LiteralType | None,
    fetch: Fetch | None,
    path: str,
    offload_depth: int,
) -> Any:
    """Converts a scalar literal."""
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        return _decode_primitive(scalar.primitive, literal_type, path)
    if kind == "none_type":
        return None
    if kind == "union":
        variant = scalar.union.type if scalar.union.HasField("type") else None
        return _decode(scalar.union.value, variant, fetch, path, offload_depth)
    if kind == "binary":
        return _decode_binary(scalar.binary, literal_type, path)
    if kind == "generic":
        record = {key: _from_struct_value(item) for key, item in scalar.generic.fields.items()}
        return _restore_integers(record, literal_type)
    if kind == "blob":
        blob = scalar.blob
        blob_type = blob.metadata.type
        if blob_type.format == PICKLE_FORMAT:
            python_class = ""
            if literal_type is not None and "python_class_name" in literal_type.metadata.fields:
                python_class = literal_type.metadata.fields["python_class_name"].string_value
            logger.warning(
                "%s is a pickled value; it is returned as a PickledRef to %s, not unpickled",
                path or "the value",
                blob.uri,
            )
            return PickledRef(uri=blob.uri, python_class=python_class)
        return BlobRef(
            uri=blob.uri,
            format=blob_type.format,
            multipart=blob_type.dimensionality == types_pb2.BlobType.MULTIPART,
        )
    if kind == "structured_dataset":
        dataset = scalar.structured_dataset
        dataset_type = dataset.metadata.structured_dataset_type
        fmt = dataset_type.format
        if (
            not fmt
            and literal_type is not None
            and literal_type.HasField("structured_dataset_type")
        ):
            fmt = literal_type.structured_dataset_type.format
        return StructuredDatasetRef(
            uri=dataset.uri, format=fmt, columns=tuple(c.name for c in dataset_type.columns)
        )
    if kind == "schema":
        columns = tuple(
            (c.name, types_pb2.SchemaType.SchemaColumn.SchemaColumnType.Name(c.type))
            for c in scalar.schema.type.columns
        )
        return SchemaRef(uri=scalar.schema.uri, columns=columns)
    if kind == "error":
        return ErrorValue(failed_node_id=scalar.error.failed_node_id, message=scalar.error.message)
    raise FlyteDataError(f"{_where(path)}the scalar holds no value", subject=path or None)


def _decode_primitive(
    primitive: literals_pb2.Primitive, literal_type: LiteralType | None, path: str
) -> Any:
    """Converts a primitive; an integer declared FLOAT comes back as a float."""
    kind = primitive.WhichOneof("value")
    if kind == "integer":
        if literal_type is not None and literal_type.WhichOneof("type") == "simple":
            if literal_type.simple == SimpleType.FLOAT:
                return float(primitive.integer)
        return primitive.integer
    if kind == "float_value":
        return primitive.float_value
    if kind == "string_value":
        return primitive.string_value
    if kind == "boolean":
        return primitive.boolean
    if kind == "datetime":
        ts = primitive.datetime
        return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(
            seconds=ts.seconds, microseconds=ts.nanos // 1000
        )
    if kind == "duration":
        return primitive.duration.ToTimedelta()
    raise FlyteDataError(f"{_where(path)}the primitive holds no value", subject=path or None)


def _decode_binary(binary: literals_pb2.Binary, literal_type: LiteralType | None, path: str) -> Any:
    """Decodes a msgpack record; other tags come back as BinaryValue, untagged ones as bytes."""
    if binary.tag == MSGPACK_TAG:
        try:
            record = msgpack.unpackb(binary.value, raw=False, strict_map_key=False)
        except Exception as exc:
            raise FlyteDataError(
                f"{_where(path)}the msgpack record cannot be decoded: {exc}", subject=path or None
            ) from exc
        return record
    if not binary.tag:
        return bytes(binary.value)
    return BinaryValue(value=bytes(binary.value), tag=binary.tag)


def _from_struct_value(value: struct_pb2.Value) -> Any:
    """A ``google.protobuf.Value`` as plain Python (numbers are floats, as Struct stores them)."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {key: _from_struct_value(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_from_struct_value(item) for item in value.list_value.values]
    if kind in ("number_value", "string_value", "bool_value"):
        return getattr(value, kind)
    return None


def _integer_fields(literal_type: LiteralType | None) -> tuple[set[str], dict[str, LiteralType]]:
    """Names of the integer fields of a record type, and the types of its nested fields."""
    if literal_type is None:
        return set(), {}
    integers: set[str] = set()
    nested: dict[str, LiteralType] = {}
    for name, field_type in literal_type.structure.dataclass_type.items():
        if field_type.WhichOneof("type") == "simple" and field_type.simple == SimpleType.INTEGER:
            integers.add(name)
        else:
            nested[name] = field_type
    properties = literal_type.metadata.fields.get("properties")
    if properties is not None and properties.WhichOneof("kind") == "struct_value":
        for name, spec in properties.struct_value.fields.items():
            if spec.WhichOneof("kind") != "struct_value":
                continue
            json_type = spec.struct_value.fields.get("type")
            if json_type is not None and json_type.string_value == "integer":
                integers.add(name)
    return integers, nested


def _restore_integers(record: Any, literal_type: LiteralType | None) -> Any:
    """Turns whole floats back into ints where the record's declared type says integer."""
    if not isinstance(record, dict):
        return record
    integers, nested = _integer_fields(literal_type)
    for name, value in record.items():
        if name in integers and isinstance(value, float) and value.is_integer():
            record[name] = int(value)
        elif name in nested and isinstance(value, dict):
            record[name] = _restore_integers(value, nested[name])
    return record


# --------------------------------------------------------------------------------------------
# Python -> Literal
# --------------------------------------------------------------------------------------------


def to_literal(
    value: Any, literal_type: LiteralType, *, upload: Upload | None = None
) -> literals_pb2.Literal:
    """Converts a Python value to a ``core.Literal`` of the declared type.

    A ``core.Literal`` passed as the value is returned unchanged. Naive datetimes are taken as
    UTC, as flytekit does. Ints are accepted for FLOAT; nothing else is coerced (a ``"true"``
    string is not a BOOLEAN, an ``int`` is not a STRING).

    Args:
        value: The Python value.
        literal_type: The declared type (a launch plan's expected input, a signal's type).
        upload: Uploads a local file or directory and returns its remote URI; without it local
            paths given for blobs are refused.

    Returns:
        The literal, shaped so that admin can cast it to ``literal_type``.

    Raises:
        FlyteInvalidInputError: if the value does not fit the type; the message names the
            expected type and the value's position (``x[2]['k']``).
    """
    return _encode(value, literal_type, "", upload)


_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off"})


def from_text(text: str, literal_type: LiteralType | None) -> Any:
    """Reads text (a command-line argument, a rendered template) as the Python value that a
    declared type takes, for :func:`to_literal`.

    Scalars are parsed by type: ``25`` for FLOAT is 25.0, ``yes`` for BOOLEAN is True,
    ``2024-01-02T06:00Z`` or ``2024-01-02 06:00:00+00:00`` for DATETIME (naive is UTC), ``90``
    or ``PT1M30S`` for DURATION, ``null`` or ``None`` for nothing. Strings, enums, files and
    datasets take the text as it is, and so does a union with a string variant; another union
    takes the first variant that reads the text (``Optional[datetime]``: a datetime, or None).
    Lists, maps and records are read as JSON, and the strings inside a list or map are read as
    its element type in turn (``["2024-01-02"]`` for a list of datetimes). Text that is not
    JSON stays a string (and :func:`to_literal` says what was expected). Without a type the
    text is read as JSON, or kept when it is not JSON.

    Raises:
        FlyteInvalidInputError: The text cannot be read as the declared type.
    """
    kind = literal_type.WhichOneof("type") if literal_type is not None else None
    if kind == "simple" and literal_type.simple != SimpleType.STRUCT:
        return _simple_from_text(text, literal_type.simple)
    if kind in ("enum_type", "blob", "structured_dataset_type", "schema"):
        return text
    if kind == "union_type":
        return _union_from_text(text, literal_type)
    value = _json_or_text(text)
    if kind == "collection_type" and not isinstance(value, list):
        raise FlyteInvalidInputError(
            f"{text!r} is not a {python_type_name(literal_type)}: expected a JSON list such as "
            f"{_json_example(literal_type.collection_type, list)}"
        )
    if kind == "map_value_type" and not isinstance(value, dict):
        raise FlyteInvalidInputError(
            f"{text!r} is not a {python_type_name(literal_type)}: expected a JSON object such as "
            f"{_json_example(literal_type.map_value_type, dict)}"
        )
    if kind in ("collection_type", "map_value_type"):
        return _elements_from_text(value, literal_type)
    return value


_JSON_EXAMPLES = {
    SimpleType.INTEGER: ("1", "2"),
    SimpleType.FLOAT: ("1.5", "2.5"),
    SimpleType.BOOLEAN: ("true", "false"),
    SimpleType.STRING: ('"a"', '"b"'),
    SimpleType.DATETIME: ('"2024-01-02T06:00Z"', '"2024-01-03T06:00Z"'),
    SimpleType.DURATION: ('"PT1M30S"', '"0:02:00"'),
}


def _json_example(element: LiteralType, container: type) -> str:
    """A short JSON list or object of ``element`` values, for messages about text values."""
    kind = element.WhichOneof("type")
    if kind == "collection_type":
        first = second = _json_example(element.collection_type, list)
    elif kind == "map_value_type":
        first = second = _json_example(element.map_value_type, dict)
    elif kind == "simple" and element.simple in _JSON_EXAMPLES:
        first, second = _JSON_EXAMPLES[element.simple]
    else:
        first, second = "{...}", "{...}"
    if container is list:
        return f"[{first}, {second}]"
    return f'{{"key": {first}}}'


def from_loose_value(value: Any, literal_type: LiteralType | None) -> Any:
    """What a value from text-only configuration (a rendered template, Dagster run config,
    YAML) stands for: a str read with :func:`from_text`, a number of seconds for a duration,
    anything else as it is (for :func:`to_literal` to check)."""
    if isinstance(value, str):
        return from_text(value, literal_type)
    if (
        literal_type is not None
        and _is_simple(literal_type, SimpleType.DURATION)
        and isinstance(value, numbers.Real)
        and not isinstance(value, bool)
    ):
        try:
            return dt.timedelta(seconds=float(value))
        except (OverflowError, ValueError):
            expected = _READABLE_AS[SimpleType.DURATION]
            raise FlyteInvalidInputError(
                f"{value!r} seconds is not a timedelta: expected {expected}"
            ) from None
    return value


def _json_or_text(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _union_from_text(text: str, literal_type: LiteralType) -> Any:
    """The first variant that reads the text and takes the value; the text if none does."""
    variants = list(literal_type.union_type.variants)
    if any(_is_simple(variant, SimpleType.STRING) for variant in variants):
        return text
    for variant in variants:
        try:
            value = from_text(text, variant)
            to_literal(value, variant)
        except FlyteInvalidInputError:
            continue
        return value
    return text


def _elements_from_text(value: Any, literal_type: LiteralType) -> Any:
    """A decoded list or map with its str elements read as the element type."""
    if literal_type.HasField("collection_type") and isinstance(value, list):
        element = literal_type.collection_type
        return [from_text(item, element) if isinstance(item, str) else item for item in value]
    if literal_type.HasField("map_value_type") and isinstance(value, dict):
        element = literal_type.map_value_type
        return {
            key: from_text(item, element) if isinstance(item, str) else item
            for key, item in value.items()
        }
    return value


def _is_simple(literal_type: LiteralType, simple: int) -> bool:
    return literal_type.WhichOneof("type") == "simple" and literal_type.simple == simple


def _simple_from_text(text: str, simple: int) -> Any:
    stripped = text.strip()
    try:
        if simple == SimpleType.INTEGER:
            return int(stripped)
        if simple == SimpleType.FLOAT:
            number = float(stripped)
            if not math.isfinite(number):
                # float() reads 1e400 as inf: text asks for a number, and a gate set to inf
                # cannot be set again.
                raise ValueError("expected a finite number")
            return number
        if simple == SimpleType.STRING:
            return text
        if simple == SimpleType.BOOLEAN:
            if stripped.lower() in _TRUE_WORDS:
                return True
            if stripped.lower() in _FALSE_WORDS:
                return False
            raise ValueError("expected true or false (yes/no, 1/0, on/off)")
        if simple == SimpleType.DATETIME:
            try:
                moment = dt.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("expected an ISO 8601 date or datetime") from None
            return moment.replace(tzinfo=_UTC) if moment.tzinfo is None else moment
        if simple == SimpleType.DURATION:
            return _duration_from_text(stripped)
        if simple == SimpleType.NONE:
            if stripped.lower() in ("", "null", "none"):
                return None
            raise ValueError("expected nothing (null or None)")
    except ValueError as error:
        name = _PYTHON_NAMES.get(simple, SimpleType.Name(simple))
        expected = _READABLE_AS.get(simple, str(error))
        what = "None" if name == "None" else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
        raise FlyteInvalidInputError(f"{text!r} is not {what}: expected {expected}") from None
    return text


def python_type_name(literal_type: LiteralType | None) -> str:
    """A declared type as a Python workflow writes it (``int``, ``list[float]``,
    ``dict[str, int]``, ``str | None``); records, enums, files and the like as
    :func:`describe_type` writes them."""
    if literal_type is None:
        return "any"
    kind = literal_type.WhichOneof("type")
    if kind == "simple" and literal_type.simple in _PYTHON_NAMES:
        return _PYTHON_NAMES[literal_type.simple]
    if kind == "collection_type":
        return f"list[{python_type_name(literal_type.collection_type)}]"
    if kind == "map_value_type":
        return f"dict[str, {python_type_name(literal_type.map_value_type)}]"
    if kind == "union_type":
        return " | ".join(python_type_name(v) for v in literal_type.union_type.variants)
    return describe_type(literal_type)


# What text each simple type reads, in :func:`from_text`'s error messages.
_READABLE_AS = {
    SimpleType.INTEGER: "a whole number such as 25",
    SimpleType.FLOAT: "a number such as 2.5",
    SimpleType.BOOLEAN: "true or false (also yes/no, 1/0, on/off)",
    SimpleType.DATETIME: "an ISO 8601 date or datetime such as 2024-01-02T06:00Z",
    SimpleType.DURATION: "seconds such as 90, an ISO 8601 duration such as PT1M30S, or 0:01:30",
    SimpleType.NONE: "null or None",
}

# The simple types as a flytekit workflow declares them, for messages about text values.
_PYTHON_NAMES = {
    SimpleType.INTEGER: "int",
    SimpleType.FLOAT: "float",
    SimpleType.STRING: "str",
    SimpleType.BOOLEAN: "bool",
    SimpleType.DATETIME: "datetime",
    SimpleType.DURATION: "timedelta",
    SimpleType.NONE: "None",
}


# How Python writes a timedelta (str(timedelta), what a template renders): 1:00:00, 2 days, 0:30:00.
_PYTHON_TIMEDELTA = re.compile(
    r"(?:(?P<days>-?\d+) days?, )?(?P<hours>\d+):(?P<minutes>\d{2}):(?P<seconds>\d{2}(?:\.\d+)?)"
)


def _duration_from_text(text: str) -> dt.timedelta:
    """Seconds (``90``, ``1.5``), an ISO 8601 duration (``PT1M30S``) or a timedelta as Python
    writes one (``1:00:00``, ``2 days, 0:30:00``)."""
    from flyte_bridge.backfill import parse_iso_duration

    try:
        return dt.timedelta(seconds=float(text))
    except ValueError:
        pass
    except OverflowError:
        raise ValueError(f"{text} seconds is longer than a timedelta can hold") from None
    written = _PYTHON_TIMEDELTA.fullmatch(text)
    if written:
        try:
            return dt.timedelta(
                days=int(written["days"] or 0),
                hours=int(written["hours"]),
                minutes=int(written["minutes"]),
                seconds=float(written["seconds"]),
            )
        except OverflowError:
            raise ValueError(f"{text} is longer than a timedelta can hold") from None
    try:
        return parse_iso_duration(text)
    except FlyteInvalidInputError:
        raise ValueError("expected seconds or an ISO 8601 duration such as PT1M30S") from None


def python_to_literal_map(
    values: Mapping[str, Any], variables: Any, *, upload: Upload | None = None
) -> literals_pb2.LiteralMap:
    """Converts named Python values to a ``core.LiteralMap`` against declared types.

    Only the given names are converted; filling defaults and checking required inputs is the
    caller's job (it knows the launch plan's default and fixed inputs).

    Args:
        values: ``{name: value}``.
        variables: The declared types (see ``literal_types_of``).
        upload: As for ``to_literal``.

    Raises:
        FlyteInvalidInputError: listing unknown names, or naming the value that does not fit.
    """
    types = literal_types_of(variables)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise FlyteInvalidInputError(
            f"unknown inputs {', '.join(unknown)}; expected names are "
            f"{', '.join(sorted(types)) or '(none)'}"
        )
    return literals_pb2.LiteralMap(
        literals={name: _encode(value, types[name], name, upload) for name, value in values.items()}
    )


def _short(value: Any) -> str:
    """A short description of a value for error messages (repr only for small scalars)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        text = repr(value)
        return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
    return type(value).__name__


def _mismatch(path: str, literal_type: LiteralType, value: Any, hint: str = "") -> Exception:
    """Builds the error for a value that does not fit its declared type."""
    message = f"{_where(path)}expected {describe_type(literal_type)}, got {_short(value)}"
    return FlyteInvalidInputError(f"{message}{'; ' + hint if hint else ''}", subject=path or None)


def _scalar(**kwargs: Any) -> literals_pb2.Literal:
    """Wraps Scalar fields in a Literal."""
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(**kwargs))


def _primitive(**kwargs: Any) -> literals_pb2.Literal:
    """Wraps Primitive fields in a Literal."""
    return _scalar(primitive=literals_pb2.Primitive(**kwargs))


def _encode(value: Any, literal_type: LiteralType, path: str, upload: Upload | None) -> Any:
    """Converts one value against its declared type."""
    if isinstance(value, literals_pb2.Literal):
        return value
    if not isinstance(literal_type, types_pb2.LiteralType):
        raise FlyteInvalidInputError(
            f"{_where(path)}no literal type to convert the value against", subject=path or None
        )
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return _encode_simple(value, literal_type, path)
    if kind == "collection_type":
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            raise _mismatch(path, literal_type, value, "give a list")
        items = [
            _encode(item, literal_type.collection_type, f"{path}[{i}]", upload)
            for i, item in enumerate(value)
        ]
        return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=items))
    if kind == "map_value_type":
        if not isinstance(value, Mapping):
            raise _mismatch(path, literal_type, value, "give a dict with str keys")
        bad_keys = [k for k in value if not isinstance(k, str)]
        if bad_keys:
            raise _mismatch(path, literal_type, value, f"key {bad_keys[0]!r} is not a str")
        items = {
            key: _encode(item, literal_type.map_value_type, f"{path}[{key!r}]", upload)
            for key, item in value.items()
        }
        return literals_pb2.Literal(map=literals_pb2.LiteralMap(literals=items))
    if kind == "enum_type":
        return _encode_enum(value, literal_type, path)
    if kind == "union_type":
        return _encode_union(value, literal_type, path, upload)
    if kind == "blob":
        return _encode_blob(value, literal_type, path, upload)
    if kind == "structured_dataset_type":
        return _encode_dataset(value, literal_type, path, upload)
    if kind == "schema":
        if isinstance(value, SchemaRef):
            value = value.uri
        if not isinstance(value, str) or "://" not in value:
            raise _mismatch(path, literal_type, value, "give the URI of a stored schema")
        return _scalar(schema=literals_pb2.Schema(uri=value, type=literal_type.schema))
    raise FlyteInvalidInputError(
        f"{_where(path)}the declared type is empty or unknown", subject=path or None
    )


def _encode_simple(value: Any, literal_type: LiteralType, path: str) -> literals_pb2.Literal:
    """Converts a value declared as a simple type."""
    simple = literal_type.simple
    if simple == SimpleType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _mismatch(path, literal_type, value)
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise _mismatch(path, literal_type, value, "it does not fit in 64 bits")
        return _primitive(integer=number)
    if simple == SimpleType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _mismatch(path, literal_type, value)
        return _primitive(float_value=float(value))
    if simple == SimpleType.STRING:
        if isinstance(value, enum.Enum) and isinstance(value.value, str):
            value = value.value
        if not isinstance(value, str):
            raise _mismatch(path, literal_type, value)
        try:
            return _primitive(string_value=value)
        except ValueError as exc:
            raise _mismatch(path, literal_type, value, "it is not valid UTF-8") from exc
    if simple == SimpleType.BOOLEAN:
        if not isinstance(value, bool):
            raise _mismatch(path, literal_type, value)
        return _primitive(boolean=value)
    if simple == SimpleType.DATETIME:
        return _primitive(datetime=_timestamp(value, literal_type, path))
    if simple == SimpleType.DURATION:
        if not isinstance(value, dt.timedelta):
            raise _mismatch(path, literal_type, value, "give a datetime.timedelta")
        if abs(value.total_seconds()) > _DURATION_MAX_SECONDS:
            raise _mismatch(path, literal_type, value, "it is longer than 10,000 years")
        duration = duration_pb2.Duration()
        duration.FromTimedelta(value)
        return _primitive(duration=duration)
    if simple == SimpleType.NONE:
        if value is not None:
            raise _mismatch(path, literal_type, value)
        return _scalar(none_type=literals_pb2.Void())
    if simple == SimpleType.BINARY:
        if isinstance(value, BinaryValue):
            return _scalar(binary=literals_pb2.Binary(value=value.value, tag=value.tag))
        if not isinstance(value, (bytes, bytearray)):
            raise _mismatch(path, literal_type, value)
        return _scalar(binary=literals_pb2.Binary(value=bytes(value)))
    if simple == SimpleType.STRUCT:
        return _encode_record(value, literal_type, path)
    raise _mismatch(path, literal_type, value, "values of this type cannot be sent")


def _timestamp(value: Any, literal_type: LiteralType, path: str) -> timestamp_pb2.Timestamp:
    """Converts a datetime (naive = UTC) or a date (midnight UTC) to a Timestamp."""
    if isinstance(value, dt.datetime):
        moment = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day, tzinfo=_UTC)
    else:
        raise _mismatch(path, literal_type, value, "give a datetime.datetime")
    return timestamp_pb2.Timestamp(
        seconds=calendar.timegm(moment.timetuple()), nanos=moment.microsecond * 1000
    )


def _record_of(value: Any) -> Any:
    """Turns a dataclass or Pydantic instance into a dict; other values are returned as given."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        return model_dump(mode="json")
    return value


def _msgpack_default(value: Any) -> Any:
    """Writes the non-msgpack values flytekit's record serializer also writes as strings."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _encode_record(value: Any, literal_type: LiteralType, path: str) -> literals_pb2.Literal:
    """Converts a dict, dataclass or Pydantic model to a msgpack binary or a Struct record."""
    record = _record_of(value)
    if not isinstance(record, Mapping):
        raise _mismatch(path, literal_type, value, "give a dict, a dataclass or a Pydantic model")
    required = literal_type.metadata.fields.get("required")
    if required is not None and required.WhichOneof("kind") == "list_value":
        missing = [
            v.string_value for v in required.list_value.values if v.string_value not in record
        ]
        if missing:
            raise _mismatch(path, literal_type, value, f"missing fields {', '.join(missing)}")
    record = _check_fields(record, literal_type, path)
    if _is_msgpack_record(literal_type):
        try:
            packed = msgpack.packb(dict(record), default=_msgpack_default)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _mismatch(path, literal_type, value, f"not serializable: {exc}") from exc
        return _scalar(binary=literals_pb2.Binary(value=packed, tag=MSGPACK_TAG))
    if any(not isinstance(key, str) for key in record):
        raise _mismatch(path, literal_type, value, "record keys must be str")
    generic = struct_pb2.Struct()
    try:
        generic.update(record)
    except (TypeError, ValueError) as exc:
        raise _mismatch(path, literal_type, value, f"not JSON-like: {exc}") from exc
    return _scalar(generic=generic)


_CHECKED_SIMPLE_TYPES = (
    SimpleType.INTEGER,
    SimpleType.FLOAT,
    SimpleType.STRING,
    SimpleType.BOOLEAN,
    SimpleType.NONE,
)


def _check_fields(
    record: Mapping[str, Any], literal_type: LiteralType, path: str
) -> dict[str, Any]:
    """Checks the fields a record type declares (``structure.dataclass_type``) that are given,
    refuses fields it does not declare, and returns the record with datetime and duration
    fields in the form flytekit's record deserializer reads (ISO 8601 text, float seconds).

    Numbers, strings, booleans, datetimes, durations, enums and their containers and
    sub-records are checked; files inside records are left to the task's own deserializer.
    """
    declared = literal_type.structure.dataclass_type
    unknown = sorted(str(name) for name in record if declared and name not in declared)
    if unknown:
        # The task's deserializer would drop them silently: a misspelt field loses its value.
        raise _mismatch(
            path,
            literal_type,
            dict(record),
            f"unknown fields {', '.join(unknown)} (fields: {', '.join(sorted(declared))})",
        )
    checked = dict(record)
    for name, field_type in declared.items():
        if name in record:
            checked[name] = _check_field(
                record[name], field_type, f"{path}.{name}" if path else name
            )
    return checked


def _check_field(value: Any, literal_type: LiteralType, path: str) -> Any:
    """The record field's value as it is sent; FlyteInvalidInputError if it does not fit its
    declared type."""
    kind = literal_type.WhichOneof("type")
    value = _record_of(value)
    if kind == "simple" and literal_type.simple in _CHECKED_SIMPLE_TYPES:
        _encode_simple(value, literal_type, path)
    elif kind == "simple" and literal_type.simple == SimpleType.DATETIME:
        return _record_datetime(value, literal_type, path)
    elif kind == "simple" and literal_type.simple == SimpleType.DURATION:
        return _record_duration(value, literal_type, path)
    elif kind == "simple" and literal_type.simple == SimpleType.STRUCT:
        if isinstance(value, Mapping):
            return _check_fields(value, literal_type, path)
    elif kind == "enum_type":
        _encode_enum(value, literal_type, path)
    elif kind == "collection_type" and isinstance(value, (list, tuple)):
        return [
            _check_field(item, literal_type.collection_type, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    elif kind == "map_value_type" and isinstance(value, Mapping):
        return {
            key: _check_field(item, literal_type.map_value_type, f"{path}[{key!r}]")
            for key, item in value.items()
        }
    elif kind == "union_type":
        for variant in literal_type.union_type.variants:
            try:
                return _check_field(value, variant, path)
            except FlyteInvalidInputError:
                continue
        raise _mismatch(path, literal_type, value)
    return value


def _record_datetime(value: Any, literal_type: LiteralType, path: str) -> str:
    """A datetime record field as ISO 8601 text: from a datetime, a date or such text."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            pass
    raise _mismatch(
        path, literal_type, value, "give a datetime or ISO 8601 text such as 2024-01-02T06:00:00"
    )


def _record_duration(value: Any, literal_type: LiteralType, path: str) -> float:
    """A duration record field as float seconds: from a timedelta, a number of seconds or text
    such as ``PT1M30S`` or ``0:01:30``."""
    seconds: float | None = None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = _duration_from_text(value.strip()).total_seconds()
        except ValueError:
            seconds = None
    if seconds is None or not math.isfinite(seconds):
        raise _mismatch(
            path, literal_type, value, f"give a timedelta or {_READABLE_AS[SimpleType.DURATION]}"
        )
    if abs(seconds) > _DURATION_MAX_SECONDS:
        raise _mismatch(path, literal_type, value, "it is longer than 10,000 years")
    return seconds


def _encode_enum(value: Any, literal_type: LiteralType, path: str) -> literals_pb2.Literal:
    """Converts an Enum member (by value) or one of the allowed strings."""
    allowed = list(literal_type.enum_type.values)
    text = value.value if isinstance(value, enum.Enum) else value
    if not isinstance(text, str) or text not in allowed:
        raise _mismatch(path, literal_type, value, f"give one of {', '.join(allowed)}")
    return _primitive(string_value=text)


def _local_uri(value: Any, literal_type: LiteralType, path: str, upload: Upload | None) -> str:
    """Returns the URI of a blob value, uploading a local path when an uploader is given."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise _mismatch(path, literal_type, value, "give a URI or a local path")
    if "://" in value:
        return value
    if upload is None:
        raise _mismatch(
            path,
            literal_type,
            value,
            "local paths are uploaded only by a client's launch; give a remote URI",
        )
    if not os.path.exists(value):
        raise _mismatch(path, literal_type, value, f"no such file or directory {value}")
    return upload(value)


def _encode_blob(
    value: Any, literal_type: LiteralType, path: str, upload: Upload | None
) -> literals_pb2.Literal:
    """Converts a BlobRef, a PickledRef, a URI or a local path to a blob literal."""
    blob_type = literal_type.blob
    multipart = blob_type.dimensionality == types_pb2.BlobType.MULTIPART
    if blob_type.format == PICKLE_FORMAT:
        if not isinstance(value, PickledRef):
            raise _mismatch(path, literal_type, value, "only a PickledRef read from Flyte fits")
        uri = value.uri
    elif isinstance(value, PickledRef):
        raise _mismatch(path, literal_type, value)
    elif isinstance(value, BlobRef):
        if value.multipart != multipart:
            raise _mismatch(path, literal_type, value, f"it is a {value.dimensionality} blob")
        uri = value.uri
    else:
        local = os.fspath(value) if isinstance(value, os.PathLike) else value
        if isinstance(local, str) and "://" not in local and os.path.exists(local):
            if os.path.isdir(local) != multipart:
                expected = "a directory" if multipart else "a file"
                raise _mismatch(path, literal_type, value, f"{local} is not {expected}")
        uri = _local_uri(value, literal_type, path, upload)
    metadata = literals_pb2.BlobMetadata(
        type=types_pb2.BlobType(format=blob_type.format, dimensionality=blob_type.dimensionality)
    )
    return _scalar(blob=literals_pb2.Blob(metadata=metadata, uri=uri))


def _encode_dataset(
    value: Any, literal_type: LiteralType, path: str, upload: Upload | None
) -> literals_pb2.Literal:
    """Converts a StructuredDatasetRef, a URI or a local path to a structured dataset literal."""
    uri = value.uri if isinstance(value, StructuredDatasetRef) else None
    if uri is None:
        uri = _local_uri(value, literal_type, path, upload)
    dataset_type = types_pb2.StructuredDatasetType()
    dataset_type.CopyFrom(literal_type.structured_dataset_type)
    if isinstance(value, StructuredDatasetRef) and value.format and not dataset_type.format:
        dataset_type.format = value.format
    dataset = literals_pb2.StructuredDataset(
        uri=uri,
        metadata=literals_pb2.StructuredDatasetMetadata(structured_dataset_type=dataset_type),
    )
    return _scalar(structured_dataset=dataset)


def _is_exact(value: Any, variant: LiteralType) -> bool:
    """Tells whether a union variant is the value's own type, not one it merely converts to."""
    kind = variant.WhichOneof("type")
    simple = variant.simple if kind == "simple" else None
    if isinstance(value, enum.Enum):
        return kind == "enum_type"
    if isinstance(value, bool):
        return simple == SimpleType.BOOLEAN
    if isinstance(value, numbers.Integral):
        return simple == SimpleType.INTEGER
    if isinstance(value, numbers.Real):
        return simple == SimpleType.FLOAT
    if isinstance(value, str):
        return simple == SimpleType.STRING
    if isinstance(value, (dt.datetime, dt.date)):
        return simple == SimpleType.DATETIME
    if isinstance(value, dt.timedelta):
        return simple == SimpleType.DURATION
    if isinstance(value, (bytes, bytearray, BinaryValue)):
        return simple == SimpleType.BINARY
    if isinstance(value, (BlobRef, PickledRef)):
        return kind == "blob"
    if isinstance(value, StructuredDatasetRef):
        return kind == "structured_dataset_type"
    if isinstance(value, (list, tuple)):
        return kind == "collection_type"
    if isinstance(value, Mapping):
        return kind == "map_value_type"
    if _record_of(value) is not value:
        title = _schema_title(variant)
        return simple == SimpleType.STRUCT and (not title or title == type(value).__name__)
    return False


def _encode_union(
    value: Any, literal_type: LiteralType, path: str, upload: Upload | None
) -> literals_pb2.Literal:
    """Wraps the value in the one union variant it fits, tagged with that variant's type."""
    variants = list(literal_type.union_type.variants)
    none_variants = [
        v for v in variants if v.WhichOneof("type") == "simple" and v.simple == SimpleType.NONE
    ]
    if value is None:
        if not none_variants:
            raise _mismatch(path, literal_type, value, "None is not one of the variants")
        inner = _scalar(none_type=literals_pb2.Void())
        return _scalar(union=literals_pb2.Union(value=inner, type=none_variants[0]))

    def probe_upload(local: str) -> str:
        return "file://" + os.path.abspath(local)

    fitting = []
    for variant in variants:
        if variant in none_variants:
            continue
        try:
            _encode(value, variant, path, probe_upload if upload is not None else None)
        except FlyteInvalidInputError:
            continue
        fitting.append(variant)
    if len(fitting) > 1:
        exact = [v for v in fitting if _is_exact(value, v)]
        if len(exact) != 1:
            names = ", ".join(describe_type(v) for v in (exact or fitting))
            raise FlyteInvalidInputError(
                f"{_where(path)}the value {_short(value)} fits several variants of "
                f"{describe_type(literal_type)} ({names}); pass a value of exactly one "
                "variant's type (an Enum member for an enum, a float for FLOAT)",
                subject=path or None,
            )
        fitting = exact
    if not fitting:
        raise _mismatch(path, literal_type, value, "it fits none of the variants")
    chosen = fitting[0]
    inner = _encode(value, chosen, path, upload)
    return _scalar(union=literals_pb2.Union(value=inner, type=chosen))
