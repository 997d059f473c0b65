"""Resolves a node's input bindings into literals and evaluates branch conditions.

Bindings are what the compiled workflow says a node's inputs are made of: literal values,
promises on an upstream node's outputs (optionally indexed by an attribute path), or lists and
maps of those. Like propeller, resolution ignores the ``union`` hint and passes offloaded
literals through unchanged; it reads one (the serialized ``core.Literal`` its metadata points
to) only where it must look inside: an attribute path that indexes it, or a branch condition that
compares it. Only ``file://`` URIs and local paths can be read, the sandbox's own store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgpack
from flyteidl.core import condition_pb2, literals_pb2, types_pb2
from google.protobuf import json_format, struct_pb2

from flyte_bridge.sandbox.storage import DataStore

START_NODE = "start-node"

OutputsLookup = Callable[[str], literals_pb2.LiteralMap]


class BindingError(ValueError):
    """A binding could not be resolved; ``code`` is the engine error code to report."""

    def __init__(self, message: str, code: str = "BindingResolutionFailure") -> None:
        super().__init__(message)
        self.code = code


def resolve_bindings(
    bindings: Iterable[literals_pb2.Binding], outputs_of: OutputsLookup
) -> literals_pb2.LiteralMap:
    """The literal map a node's (or a workflow's output) bindings resolve to."""
    resolved = literals_pb2.LiteralMap()
    for binding in bindings:
        resolved.literals[binding.var].CopyFrom(resolve_binding_data(binding.binding, outputs_of))
    return resolved


def resolve_binding_data(
    data: literals_pb2.BindingData, outputs_of: OutputsLookup
) -> literals_pb2.Literal:
    """One binding value as a literal."""
    kind = data.WhichOneof("value")
    if kind == "scalar":
        return literals_pb2.Literal(scalar=data.scalar)
    if kind == "collection":
        items = [resolve_binding_data(item, outputs_of) for item in data.collection.bindings]
        return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=items))
    if kind == "map":
        literal = literals_pb2.Literal(map=literals_pb2.LiteralMap())
        for key, item in data.map.bindings.items():
            literal.map.literals[key].CopyFrom(resolve_binding_data(item, outputs_of))
        return literal
    if kind == "promise":
        node_id = data.promise.node_id or START_NODE
        outputs = outputs_of(node_id)
        if data.promise.var not in outputs.literals:
            raise BindingError(
                f"node [{node_id}] has no output [{data.promise.var}]; it produced "
                f"{sorted(outputs.literals) or 'no outputs'}"
            )
        literal = outputs.literals[data.promise.var]
        return (
            apply_attribute_path(literal, data.promise.attr_path)
            if data.promise.attr_path
            else literal
        )
    if kind == "offloaded_metadata":
        return literals_pb2.Literal(offloaded_metadata=data.offloaded_metadata)
    raise BindingError(
        f"binding has no value (expected scalar, collection, map or promise): {data}"
    )


def load_offloaded(literal: literals_pb2.Literal, code: str) -> literals_pb2.Literal:
    """The literal an offloaded literal stands for (read from its URI); others as they are.

    Raises:
        BindingError: with ``code``, when the offloaded literal cannot be read or parsed.
    """
    for _ in range(4):
        if not literal.HasField("offloaded_metadata"):
            return literal
        uri = literal.offloaded_metadata.uri
        try:
            data = DataStore.local_path(uri).read_bytes()
            literal = literals_pb2.Literal.FromString(data)
        except Exception as error:  # noqa: BLE001 - any read or parse failure fails the node
            raise BindingError(
                f"cannot read the offloaded literal at {uri}: {error}", code
            ) from error
    raise BindingError(f"offloaded literals nest too deeply at {uri}", code)


def upstream_node_ids(bindings: Iterable[literals_pb2.Binding]) -> set[str]:
    """The node ids that the promises in these bindings read from (start-node excluded)."""
    found: set[str] = set()

    def visit(data: literals_pb2.BindingData) -> None:
        kind = data.WhichOneof("value")
        if kind == "promise" and data.promise.node_id not in ("", START_NODE):
            found.add(data.promise.node_id)
        elif kind == "collection":
            for item in data.collection.bindings:
                visit(item)
        elif kind == "map":
            for item in data.map.bindings.values():
                visit(item)

    for binding in bindings:
        visit(binding.binding)
    return found


def apply_attribute_path(
    literal: literals_pb2.Literal, path: Iterable[types_pb2.PromiseAttribute]
) -> literals_pb2.Literal:
    """Indexes into a list, map, struct or msgpack dataclass literal, as propeller does."""
    steps = [
        attribute.string_value
        if attribute.WhichOneof("value") == "string_value"
        else attribute.int_value
        for attribute in path
    ]
    current = literal
    for position, step in enumerate(steps):
        current = load_offloaded(current, "PromiseAttributeResolveError")
        if current.HasField("collection") and isinstance(step, int):
            items = current.collection.literals
            if not 0 <= step < len(items):
                raise _attribute_error(steps, f"index {step} is out of range (length {len(items)})")
            current = items[step]
        elif current.HasField("map") and isinstance(step, str):
            if step not in current.map.literals:
                raise _attribute_error(steps, f"key {step!r} is not in the map")
            current = current.map.literals[step]
        elif current.HasField("scalar") and current.scalar.HasField("generic"):
            value = json_format.MessageToDict(current.scalar.generic)
            return _struct_value_literal(_walk(value, steps[position:], steps))
        elif current.HasField("scalar") and current.scalar.HasField("binary"):
            value = msgpack.unpackb(current.scalar.binary.value, strict_map_key=False)
            resolved = _walk(value, steps[position:], steps)
            return literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    binary=literals_pb2.Binary(value=msgpack.packb(resolved), tag="msgpack")
                )
            )
        else:
            raise _attribute_error(
                steps, f"cannot index a {current.WhichOneof('value')} with {step!r}"
            )
    return current


def _walk(value: Any, steps: list[Any], full_path: list[Any]) -> Any:
    for step in steps:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError) as error:
            raise _attribute_error(full_path, f"{step!r} not found ({error})") from error
    return value


def _struct_value_literal(value: Any) -> literals_pb2.Literal:
    if isinstance(value, dict):
        generic = struct_pb2.Struct()
        generic.update(value)
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=generic))
    if isinstance(value, bool):
        primitive = literals_pb2.Primitive(boolean=value)
    elif isinstance(value, int):
        primitive = literals_pb2.Primitive(integer=value)
    elif isinstance(value, float):
        primitive = literals_pb2.Primitive(float_value=value)
    elif isinstance(value, str):
        primitive = literals_pb2.Primitive(string_value=value)
    elif value is None:
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))
    else:
        items = [_struct_value_literal(item) for item in value]
        return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=items))
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=primitive))


def _attribute_error(path: list[Any], detail: str) -> BindingError:
    return BindingError(
        f"cannot resolve attribute path {path}: {detail}", code="PromiseAttributeResolveError"
    )


def evaluate_condition(
    expression: condition_pb2.BooleanExpression, inputs: literals_pb2.LiteralMap
) -> bool:
    """Evaluates a branch condition against the branch node's resolved inputs."""
    if expression.HasField("conjunction"):
        conjunction = expression.conjunction
        left = evaluate_condition(conjunction.left_expression, inputs)
        if conjunction.operator == condition_pb2.ConjunctionExpression.AND:
            return left and evaluate_condition(conjunction.right_expression, inputs)
        return left or evaluate_condition(conjunction.right_expression, inputs)
    comparison = expression.comparison
    left = _operand_value(comparison.left_value, inputs)
    right = _operand_value(comparison.right_value, inputs)
    operator = comparison.operator
    if operator == condition_pb2.ComparisonExpression.EQ:
        return left == right
    if operator == condition_pb2.ComparisonExpression.NEQ:
        return left != right
    if left is None or right is None:
        raise BindingError(f"cannot order-compare {left!r} with {right!r}", code="BranchEvalFailed")
    try:
        if operator == condition_pb2.ComparisonExpression.GT:
            return left > right
        if operator == condition_pb2.ComparisonExpression.GTE:
            return left >= right
        if operator == condition_pb2.ComparisonExpression.LT:
            return left < right
        return left <= right
    except TypeError as error:
        raise BindingError(
            f"cannot compare {left!r} with {right!r}", code="BranchEvalFailed"
        ) from error


def _operand_value(operand: condition_pb2.Operand, inputs: literals_pb2.LiteralMap) -> Any:
    kind = operand.WhichOneof("val")
    if kind == "primitive":
        return _primitive_value(operand.primitive)
    if kind == "scalar":
        return _scalar_value(operand.scalar)
    if kind == "var":
        if operand.var not in inputs.literals:
            raise BindingError(
                f"branch condition reads [{operand.var}], which is not an input",
                code="BranchEvalFailed",
            )
        literal = load_offloaded(inputs.literals[operand.var], "BranchEvalFailed")
        if not literal.HasField("scalar"):
            raise BindingError(
                f"branch condition input [{operand.var}] is not a scalar", code="BranchEvalFailed"
            )
        return _scalar_value(literal.scalar)
    raise BindingError("branch condition operand has no value", code="BranchEvalFailed")


def _scalar_value(scalar: literals_pb2.Scalar) -> Any:
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        return _primitive_value(scalar.primitive)
    if kind == "none_type":
        return None
    if kind == "union":
        value = scalar.union.value
        return _scalar_value(value.scalar) if value.HasField("scalar") else None
    if kind == "binary" and scalar.binary.tag == "msgpack":
        return msgpack.unpackb(scalar.binary.value, strict_map_key=False)
    raise BindingError(f"branch conditions cannot compare a {kind} value", code="BranchEvalFailed")


def _primitive_value(primitive: literals_pb2.Primitive) -> Any:
    kind = primitive.WhichOneof("value")
    if kind == "datetime":
        return primitive.datetime.ToDatetime()
    if kind == "duration":
        return primitive.duration.ToTimedelta()
    return getattr(primitive, kind) if kind else None
