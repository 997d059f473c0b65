"""Data: offloaded literals (C12), uploads through the data proxy and downloads."""

from __future__ import annotations

import pytest
from flyteidl.core import literals_pb2, types_pb2

from flyte_bridge._ops import upload_op
from flyte_bridge._requests import to_python_op
from flyte_bridge.errors import FlyteDataError, FlyteInvalidInputError
from flyte_bridge.literals import BlobRef, StructuredDatasetRef


def _int_list(count: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        collection=literals_pb2.LiteralCollection(
            literals=[
                literals_pb2.Literal(
                    scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=i))
                )
                for i in range(count)
            ]
        )
    )


def _offloaded(uri: str, size: int) -> literals_pb2.LiteralMap:
    inferred = types_pb2.LiteralType(
        collection_type=types_pb2.LiteralType(simple=types_pb2.SimpleType.INTEGER)
    )
    return literals_pb2.LiteralMap(
        literals={
            "o0": literals_pb2.Literal(
                offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(
                    uri=uri, size_bytes=size, inferred_type=inferred
                )
            ),
            "o1": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=3))
            ),
        }
    )


def test_c12_an_offloaded_literal_is_read_and_decoded_intact(client, registered_examples, tmp_path):
    stored = _int_list(50_000).SerializeToString()
    path = tmp_path / "o0_offloaded_metadata.pb"
    path.write_bytes(stored)

    values = client._run(to_python_op(_offloaded(path.as_uri(), len(stored))))

    assert values["o0"] == list(range(50_000))
    assert values["o1"] == 3


def test_c12_an_unreadable_offloaded_literal_raises_naming_its_uri(
    client, registered_examples, tmp_path
):
    uri = (tmp_path / "missing.pb").as_uri()

    with pytest.raises(FlyteDataError, match="missing.pb"):
        client._run(to_python_op(_offloaded(uri, 10)))


def test_a_local_file_uploaded_through_the_data_proxy_downloads_the_same(client, tmp_path):
    local = tmp_path / "report.csv"
    local.write_text("a,b\n1,2\n")

    remote = client._run(upload_op("flytesnacks", "development", str(local)))
    written = client.download(BlobRef(remote), tmp_path / "back.csv")

    assert remote != local.as_uri()
    assert written.read_text() == "a,b\n1,2\n"


def test_a_local_directory_uploads_under_one_prefix_and_downloads_whole(client, tmp_path):
    source = tmp_path / "data"
    (source / "part").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "part" / "b.txt").write_text("B")

    remote = client._run(upload_op("flytesnacks", "development", str(source)))
    written = client.download(BlobRef(remote, multipart=True), tmp_path / "copy")

    assert (written / "a.txt").read_text() == "A"
    assert (written / "part" / "b.txt").read_text() == "B"


def test_a_directory_downloaded_onto_a_file_says_the_target_is_a_file(client, tmp_path):
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("A")
    remote = client._run(upload_op("flytesnacks", "development", str(source)))
    occupied = tmp_path / "occupied"
    occupied.write_text("keep me")

    with pytest.raises(FlyteDataError, match="that path is a file; give a directory"):
        client.download(BlobRef(remote, multipart=True), occupied)
    assert occupied.read_text() == "keep me"


def test_c11_download_of_outputs_writes_records_as_json_and_files_by_name(client, tmp_path):
    blob = tmp_path / "in.txt"
    blob.write_text("payload")
    outputs = {"o0": {"a": 1, "b": [1, 2]}, "o1": BlobRef(blob.as_uri())}

    written = client.download(outputs, tmp_path / "out")

    assert (written / "o0.json").read_text().replace(" ", "").replace("\n", "") == (
        '{"a":1,"b":[1,2]}'
    )
    assert (written / "o1").read_text() == "payload"


def test_a_dataset_stored_as_one_file_downloads_as_that_file(client, tmp_path):
    local = tmp_path / "frame.parquet"
    local.write_bytes(b"PAR1 not really parquet")

    remote = client._run(upload_op("flytesnacks", "development", str(local)))
    written = client.download(StructuredDatasetRef(remote, format="parquet"), tmp_path / "df")

    assert written.is_file()
    assert written.read_bytes() == b"PAR1 not really parquet"


def test_a_dataset_stored_as_a_directory_downloads_whole(client, tmp_path):
    source = tmp_path / "frame"
    source.mkdir()
    (source / "00000").write_bytes(b"part 0")
    (source / "00001").write_bytes(b"part 1")

    remote = client._run(upload_op("flytesnacks", "development", str(source)))
    written = client.download(StructuredDatasetRef(remote, format="parquet"), tmp_path / "df")

    assert sorted(p.name for p in written.iterdir()) == ["00000", "00001"]
    assert (written / "00001").read_bytes() == b"part 1"


def test_download_of_an_execution_itself_is_refused_pointing_at_its_outputs(
    client, finished_runs, tmp_path
):
    with pytest.raises(FlyteInvalidInputError, match="fetch_outputs"):
        client.download(finished_runs["hello"], tmp_path / "out")

    assert not list(tmp_path.iterdir())


def test_download_keeps_whole_names_with_dots_when_writing_json(client, tmp_path):
    written = client.download({"v1.0": 1, "v1.5": 2}, tmp_path / "versions")

    assert sorted(p.name for p in written.iterdir()) == ["v1.0.json", "v1.5.json"]
    assert (written / "v1.5.json").read_text() == "2"
    assert client.download(7, tmp_path / "seven.json") == tmp_path / "seven.json"
    assert client.download(7, tmp_path / "release.v2") == tmp_path / "release.v2.json"


@pytest.mark.parametrize("key", ["../escape", "/tmp/absolute", "..", "a/b", ""])
def test_download_refuses_a_key_that_would_write_outside_the_target(client, tmp_path, key):
    """A workflow's output map is data: its keys must not choose where a worker writes."""
    blob = tmp_path / "in.txt"
    blob.write_text("payload")
    target = tmp_path / "out"
    value = {"o0": {"normal": BlobRef(blob.as_uri()), key: BlobRef(blob.as_uri())}}

    with pytest.raises(FlyteDataError, match="is not a plain file name"):
        client.download(value, target)

    assert not target.exists(), "nothing is written when a name is refused"
    assert not (tmp_path / "escape").exists()


def test_download_refuses_a_directory_object_that_climbs_out(client, tmp_path):
    from flyte_bridge.download import _inside

    root = tmp_path / "copy"
    assert _inside(root, "part/b.txt", "s3://b/d") == root / "part" / "b.txt"
    with pytest.raises(FlyteDataError, match="would be written outside"):
        _inside(root, "part/../../x", "s3://b/d")


def test_a_failed_download_names_the_native_uri_not_the_signed_link(client, tmp_path):
    local = tmp_path / "report.csv"
    local.write_text("a,b\n")
    remote = client._run(upload_op("flytesnacks", "development", str(local)))
    missing = remote.rsplit("/", 1)[0] + "/no-such-file.csv"

    with pytest.raises(FlyteDataError) as raised:
        client.download(BlobRef(missing), tmp_path / "back.csv")

    assert missing in str(raised.value)
    assert "sig=" not in str(raised.value) and "expires=" not in str(raised.value)


def test_a_target_that_cannot_be_written_is_a_data_error_naming_it(client, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(FlyteDataError, match="cannot write the download below"):
        client.download({"o0": 7}, blocker / "out")
