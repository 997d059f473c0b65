"""Unit tests of the executor's pieces: bindings, branch conditions, commands, ids, raw URIs."""

from __future__ import annotations

from pathlib import Path

import fsspec
import msgpack
import pytest
from flyteidl.core import condition_pb2, literals_pb2, types_pb2
from flytekit.core.data_persistence import FileAccessProvider

from flyte_bridge.sandbox.bindings import (
    BindingError,
    evaluate_condition,
    resolve_binding_data,
    resolve_bindings,
)
from flyte_bridge.sandbox.executor import child_execution_name, child_node_id, fixed_length_id
from flyte_bridge.sandbox.storage import DataStore
from flyte_bridge.sandbox.task_runner import AttemptPaths, render_args, task_environment


def integer(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def promise(node_id: str, var: str, *path: str | int) -> literals_pb2.BindingData:
    attributes = [
        types_pb2.PromiseAttribute(string_value=step)
        if isinstance(step, str)
        else types_pb2.PromiseAttribute(int_value=step)
        for step in path
    ]
    return literals_pb2.BindingData(
        promise=types_pb2.OutputReference(node_id=node_id, var=var, attr_path=attributes)
    )


OUTPUTS = {
    "n0": literals_pb2.LiteralMap(
        literals={
            "o0": literals_pb2.Literal(
                collection=literals_pb2.LiteralCollection(literals=[integer(10), integer(20)])
            ),
            "o1": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    binary=literals_pb2.Binary(
                        value=msgpack.packb({"stats": {"total": 7}, "tags": ["a", "b"]}),
                        tag="msgpack",
                    )
                )
            ),
        }
    ),
    "start-node": literals_pb2.LiteralMap(literals={"x": integer(3)}),
}


def test_collection_and_map_bindings_resolve_their_promises():
    data = literals_pb2.BindingData(
        map=literals_pb2.BindingDataMap(
            bindings={
                "first": promise("n0", "o0", 0),
                "both": literals_pb2.BindingData(
                    collection=literals_pb2.BindingDataCollection(
                        bindings=[promise("", "x"), promise("n0", "o0", 1)]
                    )
                ),
            }
        )
    )

    literal = resolve_binding_data(data, OUTPUTS.__getitem__)

    assert literal.map.literals["first"].scalar.primitive.integer == 10
    both = literal.map.literals["both"].collection.literals
    assert [item.scalar.primitive.integer for item in both] == [3, 20]


def test_attribute_path_into_a_msgpack_dataclass_stays_msgpack():
    literal = resolve_binding_data(promise("n0", "o1", "stats", "total"), OUTPUTS.__getitem__)

    assert literal.scalar.binary.tag == "msgpack"
    assert msgpack.unpackb(literal.scalar.binary.value) == 7


def test_attribute_path_out_of_range_names_the_path():
    with pytest.raises(BindingError, match=r"\['tags', 5\]") as raised:
        resolve_binding_data(promise("n0", "o1", "tags", 5), OUTPUTS.__getitem__)
    assert raised.value.code == "PromiseAttributeResolveError"


def test_missing_output_variable_is_a_binding_error_listing_what_exists():
    binding = literals_pb2.Binding(var="a", binding=promise("n0", "o9"))

    with pytest.raises(BindingError, match=r"no output \[o9\].*'o0', 'o1'"):
        resolve_bindings([binding], OUTPUTS.__getitem__)


def comparison(operator: int, var: str, value: int) -> condition_pb2.BooleanExpression:
    return condition_pb2.BooleanExpression(
        comparison=condition_pb2.ComparisonExpression(
            operator=operator,
            left_value=condition_pb2.Operand(var=var),
            right_value=condition_pb2.Operand(primitive=literals_pb2.Primitive(integer=value)),
        )
    )


def test_branch_conditions_combine_comparisons_with_and_or():
    inputs = literals_pb2.LiteralMap(literals={".x": integer(5)})
    greater = comparison(condition_pb2.ComparisonExpression.GT, ".x", 3)
    equal = comparison(condition_pb2.ComparisonExpression.EQ, ".x", 4)

    both = condition_pb2.BooleanExpression(
        conjunction=condition_pb2.ConjunctionExpression(
            operator=condition_pb2.ConjunctionExpression.AND,
            left_expression=greater,
            right_expression=equal,
        )
    )
    either = condition_pb2.BooleanExpression(
        conjunction=condition_pb2.ConjunctionExpression(
            operator=condition_pb2.ConjunctionExpression.OR,
            left_expression=greater,
            right_expression=equal,
        )
    )

    assert evaluate_condition(greater, inputs) is True
    assert evaluate_condition(both, inputs) is False
    assert evaluate_condition(either, inputs) is True


def test_branch_condition_on_an_unknown_input_is_a_branch_error():
    with pytest.raises(BindingError) as raised:
        evaluate_condition(
            comparison(condition_pb2.ComparisonExpression.LT, ".y", 1), literals_pb2.LiteralMap()
        )
    assert raised.value.code == "BranchEvalFailed"


def test_render_args_substitutes_propeller_variables_case_insensitively(tmp_path: Path):
    paths = AttemptPaths(
        inputs_uri="file:///d/n0/data/inputs.pb",
        input_prefix="file:///d/n0/data",
        output_prefix="file:///d/n0/data/1",
        raw_output_prefix="file:///raw/n0/1",
        previous_checkpoint=None,
        scratch_dir=tmp_path,
        log_path=tmp_path / "log",
    )

    rendered = render_args(
        [
            "--inputs",
            "{{.input}}",
            "--output-prefix",
            "{{ .OutputPrefix }}",
            "--checkpoint-path",
            "{{$checkpointOutputPrefix}}",
            "--prev-checkpoint",
            "{{.prevCheckpointPrefix}}",
            "{{.Inputs.x}}",
            "{{.unknown}}",
        ],
        paths,
        literals_pb2.LiteralMap(literals={"x": integer(42)}),
    )

    assert rendered == [
        "--inputs",
        "file:///d/n0/data/inputs.pb",
        "--output-prefix",
        "file:///d/n0/data/1",
        "--checkpoint-path",
        "file:///raw/n0/1/_flytecheckpoints",
        "--prev-checkpoint",
        '""',
        "42",
        "{{.unknown}}",
    ]


def test_long_nested_ids_are_shortened_as_propeller_does():
    assert child_node_id("n0", 0, "n1") == "n0-0-n1"
    long_id = child_node_id("a-very-long-node-id", 0, "n1")
    assert long_id == fixed_length_id("a-very-long-node-id-0-n1")
    assert len(long_id) == 8 and long_id.startswith("f")
    name = child_execution_name("abcdefghijklmnopqrst", "n1", 0)
    assert len(name) == 14 and name.startswith("f")
    assert child_execution_name("short", "n1", 0) == "short-n1-0"


def test_raw_data_uris_are_remote_to_flytekit_and_writable_into_new_directories(tmp_path: Path):
    store = DataStore(tmp_path / "data dir")
    uri = store.raw_uri("raw", "run", "n0", "x.txt")
    env = task_environment({}, python_bin_dir=tmp_path, code_dir=None, extra={})
    conf: dict = {}
    fsspec.config.set_conf_env(conf, env)

    with fsspec.open(
        uri, "wb", **fsspec.config.apply_config(type(fsspec.filesystem("local")), {}, conf)
    ) as handle:
        handle.write(b"data")

    assert uri.startswith("local:///") and FileAccessProvider.is_remote(uri)
    assert DataStore.local_path(uri) == store.path("raw", "run", "n0", "x.txt")
    assert store.read_bytes(uri) == b"data"


def test_a_code_tarball_is_unpacked_as_a_pods_tar_does(tmp_path):
    import io
    import tarfile

    from flyte_bridge.sandbox.task_runner import CodeCache

    tarball = tmp_path / "fast.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name in ("../../.venv/bin/pyflyte", "pkg/mod.py", "/abs/file", "pkg/../../evil"):
            data = b"x = 1\n"
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/outside")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        archive.addfile(link)
    store = DataStore(tmp_path / "store")

    code = CodeCache(tmp_path / "cache").directory(store, tarball.as_uri())

    found = sorted(str(p.relative_to(code)) for p in code.rglob("*") if not p.is_dir())
    assert found == [".venv/bin/pyflyte", "abs/file", "pkg/mod.py"]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "cache" / "evil").exists()


@pytest.mark.parametrize(
    ("configured", "given"),
    [
        ("file:///tmp/x", "local:///tmp/x"),
        ("file://localhost/tmp/a%20b", "local:///tmp/a b"),
        ("/tmp/x", "/tmp/x"),
        ("s3://bucket/x", "s3://bucket/x"),
    ],
)
def test_a_file_uri_raw_output_prefix_reaches_tasks_as_local_uri(tmp_path, configured, given):
    from flyte_bridge.sandbox.storage import DataStore

    store = DataStore(tmp_path)

    assert store.task_raw_prefix(configured) == given
    assert store.task_raw_prefix("") == store.raw_uri("raw")
