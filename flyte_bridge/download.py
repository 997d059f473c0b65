"""Moving data between Flyte's storage and local files.

Reads and downloads go through data-proxy signed links when the server offers them, so no cloud
SDK or storage credential is needed; a URI the data proxy cannot sign is read directly with
fsspec (``file://``, or ``s3://``/``gs://`` with the matching fsspec package and the caller's
own credentials). Uploads (local files given as launch inputs) go to data-proxy signed URLs.

Directories (multipart blobs) are listed and copied with fsspec: the data proxy signs single
objects only and cannot list a prefix, so downloading a directory needs direct read access to
its storage. A structured dataset or schema may be either: it is copied as a directory when
fsspec finds one at its URI, else as a single file (also when the storage cannot be listed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from flyteidl.service import dataproxy_pb2
from google.protobuf import duration_pb2

from flyte_bridge._runtime import Blocking, Call, Op
from flyte_bridge.errors import FlyteBridgeError, FlyteDataError, FlyteInvalidInputError

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = 300.0
"""Seconds an HTTP transfer to or from a signed URL may take."""

_CHUNK = 1 << 20


def read_url(url: str) -> bytes:
    """The bytes at an HTTP(S) URL or any URI fsspec can open."""
    try:
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
                return response.read()
        import fsspec

        with fsspec.open(url, "rb") as stream:
            return stream.read()
    except Exception as error:  # noqa: BLE001 - every storage failure is reported the same way
        raise FlyteDataError(f"cannot read {url}: {error}", subject=url) from error


def file_md5(path: Path) -> bytes:
    """The MD5 digest of a file (the data proxy's content check), read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


def put_file(signed_url: str, path: Path, md5: bytes, headers: dict[str, str]) -> None:
    """Uploads a file to a signed URL (HTTP PUT), or copies it for a ``file://`` one."""
    if not signed_url.startswith(("http://", "https://")):
        import fsspec

        with open(path, "rb") as source, fsspec.open(signed_url, "wb") as target:
            shutil.copyfileobj(source, target, _CHUNK)
        return
    all_headers = {
        "Content-Length": str(path.stat().st_size),
        "Content-MD5": base64.b64encode(md5).decode(),
        **headers,
    }
    if signed_url.startswith("abfs"):
        all_headers["x-ms-blob-type"] = "BlockBlob"
    with open(path, "rb") as stream:
        request = urllib.request.Request(  # noqa: S310 - a signed URL from the data proxy
            signed_url, data=stream, method="PUT", headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
                if response.status not in (200, 201):
                    raise FlyteDataError(
                        f"upload of {path} answered HTTP {response.status}", subject=str(path)
                    )
        except FlyteDataError:
            raise
        except Exception as error:  # noqa: BLE001
            raise FlyteDataError(f"upload of {path} failed: {error}", subject=str(path)) from error


def _child(parent: Path, name: str, what: str) -> Path:
    """``parent / name`` for a name that comes from the data (an output's key, an object's
    name): one plain path component, so that nothing is written outside ``parent``.

    Raises:
        FlyteDataError: The name is empty, ``.`` or ``..``, absolute, or holds a separator.
    """
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or Path(name).is_absolute()
    ):
        raise FlyteDataError(
            f"cannot download {what} {name!r}: it is not a plain file name, and writing it "
            f"would leave {parent}",
            subject=name,
        )
    return parent / name


def _inside(root: Path, relative: str, uri: str) -> Path:
    """``root / relative`` for an object's path below a downloaded directory, refused when it
    would land outside ``root`` (a key such as ``a/../../x`` in a bucket)."""
    parts = [part for part in relative.split("/") if part]
    if any(part in (".", "..") or "\\" in part for part in parts):
        raise FlyteDataError(
            f"cannot download {uri}: its object {relative!r} would be written outside {root}",
            subject=uri,
        )
    return root.joinpath(*parts)


def _copy_url(url: str, target: Path, shown: str | None = None) -> None:
    """Copies one object to ``target``; errors name ``shown`` (the native URI), not a signed
    link, whose signature grants access to whoever reads the message."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
                with open(target, "wb") as stream:
                    shutil.copyfileobj(response, stream, _CHUNK)
            return
        import fsspec

        with fsspec.open(url, "rb") as source, open(target, "wb") as stream:
            shutil.copyfileobj(source, stream, _CHUNK)
    except Exception as error:  # noqa: BLE001
        name = shown or url
        reason = str(error).replace(url, name)
        raise FlyteDataError(f"cannot download {name}: {reason}", subject=name) from None


def _copy_tree(uri: str, target: Path) -> None:
    import fsspec

    if target.exists() and not target.is_dir():
        raise FlyteDataError(
            f"cannot download the directory {uri} into {target}: that path is a file; give a "
            "directory or a path that does not exist yet",
            subject=uri,
        )
    try:
        filesystem, root = fsspec.core.url_to_fs(uri)
        target.mkdir(parents=True, exist_ok=True)
        for path in filesystem.find(root):
            relative = path[len(root.rstrip("/")) :].lstrip("/")
            destination = _inside(target, relative, uri)
            destination.parent.mkdir(parents=True, exist_ok=True)
            filesystem.get_file(path, str(destination))
    except FlyteDataError:
        raise
    except Exception as error:  # noqa: BLE001
        raise FlyteDataError(
            f"cannot download the directory {uri}: {error}; directories are copied with fsspec "
            "and need read access to their storage",
            subject=uri,
        ) from error


def _signed_link_op(uri: str) -> Op[str]:
    """A signed HTTP link for a native URI, or the URI itself when the data proxy has none."""
    if uri.startswith(("http://", "https://")):
        return uri
    try:
        response = yield Call(
            "dataproxy",
            "CreateDownloadLocation",
            dataproxy_pb2.CreateDownloadLocationRequest(
                native_url=uri, expires_in=duration_pb2.Duration(seconds=3600)
            ),
        )
    except FlyteBridgeError as error:
        logger.debug("no signed link for %s (%s); reading it directly", uri, error)
        return uri
    return response.signed_url or uri


def download_op(value: Any, to: Path) -> Op[Path]:
    """Writes ``value`` below ``to`` and returns the written path (see :func:`_write_op` for
    what values take), a local file system error (a parent that is a file, no permission, a
    full disk) raised as FlyteDataError naming the target."""
    try:
        return (yield from _write_op(value, to))
    except OSError as error:
        raise FlyteDataError(
            f"cannot write the download below {to}: {error.strerror or error}"
            + (f" ({error.filename})" if error.filename else ""),
            subject=str(to),
        ) from None


def _write_op(value: Any, to: Path, top: bool = True) -> Op[Path]:
    """Writes ``value`` below ``to`` and returns the written path.

    ``value`` may be a ``BlobRef`` (file or directory), a ``StructuredDatasetRef`` or a
    ``SchemaRef`` (written as a directory of its files), a ``PickledRef`` (the raw pickle, never
    loaded), a URI string, a dict of inputs or outputs (one entry per name), a list or dict
    holding references (one entry per index or key), or a plain value such as a decoded record
    (written as ``<to>.json``).
    """
    from flyte_bridge import literals
    from flyte_bridge.models import Execution, NodeExecution, TaskExecution

    if isinstance(value, (Execution, NodeExecution, TaskExecution)):
        raise FlyteInvalidInputError(
            f"download takes a value, not a {type(value).__name__}: pass "
            "client.fetch_outputs(...) (or one of its entries) to download the outputs"
        )
    if top:
        _check_entry_names(value, to, top=True)  # every name, before anything is written
    if _is_spread(value, top):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        to.mkdir(parents=True, exist_ok=True)
        for key, item in items:
            yield from _write_op(item, _child(to, str(key), "the entry"), top=False)
        return to

    if isinstance(value, literals.BlobRef):
        uri, directory = value.uri, value.multipart
    elif isinstance(value, (literals.StructuredDatasetRef, literals.SchemaRef)):
        uri = value.uri
        directory = yield Blocking(_is_directory, (uri,))
    elif isinstance(value, literals.PickledRef):
        uri, directory = value.uri, False
    elif isinstance(value, str) and "://" in value:
        uri, directory = value, value.endswith("/")
    else:
        yield Blocking(_write_json, (value, to))
        return _json_path(to)

    if directory:
        yield Blocking(_copy_tree, (uri, to))
        return to
    link = yield from _signed_link_op(uri)
    if to.is_dir():
        to = _child(to, uri.rstrip("/").rsplit("/", 1)[-1], "the object")
    yield Blocking(_copy_url, (link, to, uri))
    return to


def _is_spread(value: Any, top: bool) -> bool:
    """Whether ``value`` is written as a directory of one entry per key or index."""
    return (isinstance(value, dict) and top) or (
        isinstance(value, (dict, list)) and _holds_references(value)
    )


def _check_entry_names(value: Any, to: Path, top: bool) -> None:
    """Refuses, before the download starts, any key that would become a path outside ``to``."""
    if not _is_spread(value, top):
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        _check_entry_names(item, _child(to, str(key), "the entry"), top=False)


def _is_directory(uri: str) -> bool:
    """Whether fsspec finds a directory (a prefix holding objects) at ``uri``; False when the
    storage cannot be reached without credentials, so the data proxy is tried for one file."""
    import fsspec

    try:
        filesystem, root = fsspec.core.url_to_fs(uri)
        return bool(filesystem.isdir(root))
    except Exception as error:  # noqa: BLE001 - no listing access: read it as one object
        logger.debug("cannot tell whether %s is a directory (%s); reading one file", uri, error)
        return False


def _holds_references(value: Any) -> bool:
    """Whether a list or dict holds a file, directory or dataset somewhere inside."""
    from flyte_bridge import literals

    if isinstance(value, literals.References):
        return True
    if isinstance(value, dict):
        return any(_holds_references(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_references(v) for v in value)
    return False


def _json_path(to: Path) -> Path:
    """``<to>.json``: the whole name kept (an output ``v1.0`` is ``v1.0.json``, not ``v1.json``,
    which ``v1.5`` would overwrite), unless it already ends in ``.json``."""
    return to if to.suffix == ".json" else to.with_name(f"{to.name}.json")


def _write_json(value: Any, to: Path) -> None:
    target = _json_path(to)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(value, default=str, indent=2, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise FlyteInvalidInputError(
            f"cannot write {type(value).__name__} as JSON: {error}"
        ) from error
    target.write_text(text)
