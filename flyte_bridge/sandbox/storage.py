"""The sandbox's blob store: a directory tree addressed by ``file://`` and ``local://`` URIs.

flytekit tasks read and write their inputs and outputs through fsspec, so the store only has to
be a directory both the server and the task subprocesses can see. Writes go to a temporary file
first and are renamed into place, so a reader never sees half a document.

Task raw data (files, directories, dataframes: the raw output prefix) is addressed by
``local://`` URIs, fsspec's other name for its local filesystem. flytekit takes every blob URI
whose protocol is not ``file`` for remote storage and downloads it, as from a cluster's bucket;
a ``file://`` blob URI it takes for a local path instead and checks with ``os.path.isfile``,
which no URI passes, so a file or directory one task returned could not be another's input.

Deviations from a cluster's bucket: ``local://`` URIs are readable on this machine only; task
processes get ``FSSPEC_LOCAL`` (``task_runner.task_environment``) so that fsspec creates parent
directories there, which user code's own fsspec local filesystems get too; files uploaded through
the data proxy have bare local paths (``dataproxy.py``), which tasks open in place rather than
downloading a copy. An execution's ``file://`` raw output prefix (``raw_output_data_config``)
is given to tasks as ``local://`` for the same reason, so its blob URIs read ``local://``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse

from google.protobuf.message import Message

MessageT = TypeVar("MessageT", bound=Message)

LOCAL_SCHEME = "local://"


class DataStore:
    """Reads and writes protobuf documents and raw files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def uri(self, *parts: str) -> str:
        """The ``file://`` URI of a path below the root, from its parts."""
        return self.path(*parts).as_uri()

    def raw_uri(self, *parts: str) -> str:
        """The ``local://`` URI of a path below the root, for task raw data (see the module doc).

        Not percent-encoded: fsspec strips the protocol and takes the rest as the path.
        """
        return LOCAL_SCHEME + self.path(*parts).as_posix()

    def task_raw_prefix(self, configured: str) -> str:
        """The raw output prefix a task gets: the execution's (``configured``) or the store's.

        A ``file://`` prefix becomes the same path under ``local://``: flytekit would write blob
        URIs under ``file://`` that the next task cannot read (see the module doc). On a cluster
        such a prefix would be a path inside the pod, so nothing portable is lost.
        """
        if not configured:
            return self.raw_uri("raw")
        parsed = urlparse(configured)
        if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
            return LOCAL_SCHEME + unquote(parsed.path)
        return configured

    def path(self, *parts: str) -> Path:
        """The local path below the root, from its parts."""
        return self.root.joinpath(*parts)

    @staticmethod
    def local_path(uri: str) -> Path:
        """The local path a ``file://`` or ``local://`` URI, or a bare path, points to."""
        if uri.startswith(LOCAL_SCHEME):
            return Path(uri.removeprefix(LOCAL_SCHEME))
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path) if parsed.scheme else uri)
        raise ValueError(f"expected a file:// or local:// URI or a local path, got {uri!r}")

    def exists(self, uri: str) -> bool:
        return self.local_path(uri).exists()

    def size(self, uri: str) -> int | None:
        """The size in bytes of the file at ``uri``, or None when there is none."""
        try:
            return self.local_path(uri).stat().st_size
        except (OSError, ValueError):
            return None

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Writes atomically: a temporary file in the same directory, then a rename."""
        target = self.local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, uri: str) -> bytes:
        return self.local_path(uri).read_bytes()

    def write_proto(self, uri: str, message: Message) -> None:
        self.write_bytes(uri, message.SerializeToString(deterministic=True))

    def read_proto(self, uri: str, message_type: type[MessageT]) -> MessageT:
        message = message_type()
        message.ParseFromString(self.read_bytes(uri))
        return message
