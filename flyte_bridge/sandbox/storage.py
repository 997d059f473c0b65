"""The sandbox's blob store: a directory tree addressed by ``file://`` URIs.

flytekit tasks read and write their inputs and outputs through fsspec, so the store only has to
be a directory both the server and the task subprocesses can see. Writes go to a temporary file
first and are renamed into place, so a reader never sees half a document.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse

from google.protobuf.message import Message

MessageT = TypeVar("MessageT", bound=Message)


class DataStore:
    """Reads and writes protobuf documents and raw files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def uri(self, *parts: str) -> str:
        """The ``file://`` URI of a path below the root, from its parts."""
        return self.path(*parts).as_uri()

    def path(self, *parts: str) -> Path:
        """The local path below the root, from its parts."""
        return self.root.joinpath(*parts)

    @staticmethod
    def local_path(uri: str) -> Path:
        """The local path a ``file://`` URI or a bare path points to."""
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path) if parsed.scheme else uri)
        raise ValueError(f"expected a file:// URI or a local path, got {uri!r}")

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
