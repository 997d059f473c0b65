"""DataProxyService and the plain-HTTP endpoint its signed URLs point to.

Uploads (fast-register tarballs, file inputs) arrive as an HTTP PUT on a URL signed with a key
that lives as long as the server; the body is checked against the Content-MD5 bound at
CreateUploadLocation (S3 semantics: a mismatch is 400) and written atomically into the store.
Downloads are a signed GET. Task logs and other store files are served unsigned under
``/store/``, which is acceptable because the endpoint only listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from flyteidl.core import identifier_pb2
from flyteidl.service import dataproxy_pb2
from google.protobuf import timestamp_pb2

from flyte_bridge.sandbox.db import Database
from flyte_bridge.sandbox.status import already_exists, invalid, not_found
from flyte_bridge.sandbox.storage import DataStore

logger = logging.getLogger(__name__)

MAX_EXPIRY_SECONDS = 3600
_SEGMENT = r"[A-Za-z0-9_-]+"
_FLYTE_URL = re.compile(
    rf"^flyte://v1/(?P<project>{_SEGMENT})/(?P<domain>{_SEGMENT})/(?P<name>{_SEGMENT})/"
    rf"(?P<node>{_SEGMENT})(?:/(?P<attempt>[0-9]+))?/(?P<kind>[iod])(?:/(?P<var>{_SEGMENT}))?$"
)
MAX_ATTEMPT = 2**32 - 1  # retry_attempt is a uint32 in flyteidl
_RANDOM_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class UrlSigner:
    """Signs and checks the sandbox's upload and download URLs."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self.base_url = ""

    def _signature(self, method: str, path: str, expires: int, md5: str) -> str:
        message = f"{method}\n{path}\n{expires}\n{md5}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, method: str, route: str, path: str, expires: int, md5: str = "") -> str:
        signature = self._signature(method, path, expires, md5)
        query = f"expires={expires}&sig={signature}"
        if md5:
            query += f"&md5={quote(md5, safe='')}"
        return f"{self.base_url}/{route}/{quote(path)}?{query}"

    def sign_in_path(self, path: str, expires: int) -> str:
        """A signed GET URL that carries its signature in the path instead of the query.

        fsspec's HTTP ``get``, which FlyteRemote uses to download a Get*Data ``UrlBlob``, reads a
        ``?`` as a glob and writes a directory instead of the file (flyteorg/flyte#4700), so the
        links of Get*Data responses have no query string.
        """
        signature = self._signature("GET", path, expires, "")
        return f"{self.base_url}/signed/{expires}/{signature}/{quote(path)}"

    def verify(self, method: str, path: str, params: dict[str, list[str]]) -> tuple[bool, str]:
        """(valid and unexpired, bound md5) for a request's path and query parameters."""
        try:
            expires = int(params["expires"][0])
            signature = params["sig"][0]
        except (KeyError, ValueError, IndexError):
            return False, ""
        md5 = params.get("md5", [""])[0]
        expected = self._signature(method, path, expires, md5)
        if not hmac.compare_digest(expected, signature) or expires < time.time():
            return False, md5
        return True, md5


def _expiry(expires_in) -> int:
    if expires_in is None or (expires_in.seconds == 0 and expires_in.nanos == 0):
        return MAX_EXPIRY_SECONDS
    seconds = expires_in.seconds + expires_in.nanos / 1e9
    if seconds < 0:
        raise invalid("expires_in must not be negative")
    if seconds > MAX_EXPIRY_SECONDS:
        raise invalid(f"expires_in {seconds:.0f}s exceeds the maximum of {MAX_EXPIRY_SECONDS}s")
    return max(1, int(seconds))


def store_relative_path(store: DataStore, uri: str) -> str | None:
    """The path of ``uri`` below the store's root, or None when it points elsewhere."""
    try:
        path = store.local_path(uri).resolve()
        return path.relative_to(store.root).as_posix()
    except ValueError:
        return None


def download_link(
    signer: UrlSigner, store: DataStore, uri: str, lifetime: int = MAX_EXPIRY_SECONDS
) -> str:
    """A signed GET URL for a file of the store (as flyteadmin signs Get*Data blobs).

    A URI outside the store cannot be signed and is returned as it is.
    """
    relative = store_relative_path(store, uri)
    if relative is None:
        return uri
    return signer.sign_in_path(relative, int(time.time()) + lifetime)


class DataProxy:
    """DataProxyService handlers over the store and the executions' records."""

    def __init__(self, db: Database, store: DataStore, signer: UrlSigner, executions) -> None:
        self.db = db
        self.store = store
        self.signer = signer
        self.executions = executions

    def _relative(self, uri: str) -> str:
        relative = store_relative_path(self.store, uri)
        if relative is None:
            raise invalid(f"{uri} is not inside the sandbox's store")
        return relative

    def create_upload_location(self, request: dataproxy_pb2.CreateUploadLocationRequest):
        if not request.project or not request.domain:
            raise invalid("project and domain are required parameters")
        if not request.content_md5 and not request.filename_root:
            raise invalid("content_md5 or filename_root is a required parameter")
        if request.content_md5 and len(request.content_md5) != 16:
            raise invalid("content_md5 must be the 16 bytes of an MD5 digest")
        lifetime = _expiry(request.expires_in if request.HasField("expires_in") else None)
        filename = request.filename or "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(20))
        if "/" in filename.strip("/") and ".." in filename.split("/"):
            raise invalid("filename must not leave its upload directory")
        prefix = request.filename_root or base64.b32encode(request.content_md5).decode()
        parts = [p for p in ("uploads", request.project, request.domain, prefix) if p]
        relative = "/".join([*parts, filename.lstrip("/")])
        if ".." in relative.split("/"):
            raise invalid("filename_root and filename must not contain '..'")
        target = self.store.path(relative)
        if request.filename and request.filename_root and target.exists():
            if not request.content_md5:
                raise already_exists(
                    f"file already exists at location [{target.as_uri()}], specify a matching "
                    "hash if you wish to rewrite"
                )
            if hashlib.md5(target.read_bytes()).digest() != request.content_md5:
                raise already_exists(
                    f"file already exists at location [{target.as_uri()}] with a different hash"
                )
        expires = int(time.time()) + lifetime
        md5 = base64.b64encode(request.content_md5).decode() if request.content_md5 else ""
        return dataproxy_pb2.CreateUploadLocationResponse(
            signed_url=self.signer.sign("PUT", "upload", relative, expires, md5),
            # A bare local path, not a file:// URI: flytekit treats file:// blob URIs as local
            # paths and checks them with os.path.isfile, so a FlyteFile input would not be found.
            native_url=str(target),
            expires_at=timestamp_pb2.Timestamp(seconds=expires),
        )

    def create_download_location(self, request: dataproxy_pb2.CreateDownloadLocationRequest):
        lifetime = _expiry(request.expires_in if request.HasField("expires_in") else None)
        if not request.native_url:
            raise invalid("missing native_url")
        relative = self._relative(request.native_url)
        expires = int(time.time()) + lifetime
        return dataproxy_pb2.CreateDownloadLocationResponse(
            signed_url=self.signer.sign("GET", "download", relative, expires),
            expires_at=timestamp_pb2.Timestamp(seconds=expires),
        )

    def create_download_link(self, request: dataproxy_pb2.CreateDownloadLinkRequest):
        lifetime = _expiry(request.expires_in if request.HasField("expires_in") else None)
        if request.artifact_type != dataproxy_pb2.ARTIFACT_TYPE_DECK:
            raise invalid("unsupported artifact type: only ARTIFACT_TYPE_DECK can be downloaded")
        if not request.HasField("node_execution_id"):
            raise invalid("missing source: node_execution_id")
        try:
            node = self.executions.get_node_execution(request.node_execution_id)
        except Exception as err:  # noqa: BLE001 - flyteadmin answers INVALID_ARGUMENT here
            raise invalid(f"failed to find node execution: {err}") from err
        deck_uri = node.closure.deck_uri
        if not deck_uri:
            raise not_found(
                f"no deckUrl found for node execution {request.node_execution_id.node_id}"
            )
        if not self.store.exists(deck_uri):
            raise not_found(f"deck {deck_uri} does not exist")
        expires = int(time.time()) + lifetime
        url = self.signer.sign("GET", "download", self._relative(deck_uri), expires)
        expires_at = timestamp_pb2.Timestamp(seconds=expires)
        return dataproxy_pb2.CreateDownloadLinkResponse(
            signed_url=[url],
            expires_at=expires_at,
            pre_signed_urls=dataproxy_pb2.PreSignedURLs(signed_url=[url], expires_at=expires_at),
        )

    def get_data(self, request: dataproxy_pb2.GetDataRequest) -> dataproxy_pb2.GetDataResponse:
        url = request.flyte_url
        if not url.startswith("flyte://"):
            raise invalid(f"expected a flyte:// URL, got {url!r}")
        match = _FLYTE_URL.match(url)
        if not match:
            raise invalid(f"failed to parse artifact url {url}")
        parts = match.groupdict()
        node_id = identifier_pb2.NodeExecutionIdentifier(
            node_id=parts["node"],
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project=parts["project"], domain=parts["domain"], name=parts["name"]
            ),
        )
        kind, var, attempt = parts["kind"], parts["var"], parts["attempt"]
        if kind == "d":
            if attempt is not None:
                raise invalid("deck URLs do not take an attempt")
            if var:
                raise invalid(f"failed to parse artifact url {url}")
            link = self.create_download_link(
                dataproxy_pb2.CreateDownloadLinkRequest(
                    artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK, node_execution_id=node_id
                )
            )
            return dataproxy_pb2.GetDataResponse(pre_signed_urls=link.pre_signed_urls)
        if attempt is None:
            data = self.executions.get_node_execution_data(node_id)
        else:
            if int(attempt) > MAX_ATTEMPT:
                raise invalid(
                    f"failed to parse artifact url {url}: attempt {attempt} exceeds {MAX_ATTEMPT}"
                )
            self.executions.get_node_execution(node_id)
            task_execution = self.executions.task_execution_for_attempt(node_id, int(attempt))
            if task_execution is None:
                raise invalid(f"no task executions were listed for attempt {attempt} of {url}")
            data = self.executions.get_task_execution_data(task_execution.id)
        literal_map = data.full_inputs if kind == "i" else data.full_outputs
        if var:
            if var not in literal_map.literals:
                raise invalid(
                    f"variable {var} not found in {'inputs' if kind == 'i' else 'outputs'}"
                )
            return dataproxy_pb2.GetDataResponse(literal=literal_map.literals[var])
        return dataproxy_pb2.GetDataResponse(literal_map=literal_map)


class _Handler(BaseHTTPRequestHandler):
    server_version = "flyte-bridge-sandbox"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        logger.debug("http %s", format % args)

    def _reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _target(self, relative: str) -> Path | None:
        store: DataStore = self.server.store  # type: ignore[attr-defined]
        target = (store.root / relative).resolve()
        if target != store.root and store.root not in target.parents:
            return None
        return target

    def do_PUT(self) -> None:
        parsed = urlparse(self.path)
        route, _, relative = parsed.path.lstrip("/").partition("/")
        relative = unquote(relative)
        length_header = self.headers.get("Content-Length") or "0"
        if not (length_header.isascii() and length_header.isdigit()):
            self._reply(400, b"Content-Length must be a non-negative whole number of bytes")
            self.close_connection = True
            return
        length = int(length_header)
        body = self.rfile.read(length) if length else b""
        if route != "upload":
            self._reply(404, b"not found")
            return
        signer: UrlSigner = self.server.signer  # type: ignore[attr-defined]
        valid, md5 = signer.verify("PUT", relative, parse_qs(parsed.query))
        if not valid:
            self._reply(403, b"the signed URL is invalid or has expired")
            return
        actual = base64.b64encode(hashlib.md5(body).digest()).decode()
        sent = self.headers.get("Content-MD5")
        if (md5 and actual != md5) or (sent and sent != actual):
            self._reply(400, b"BadDigest: the body does not match the Content-MD5")
            return
        target = self._target(relative)
        if target is None:
            self._reply(403, b"outside the store")
            return
        store: DataStore = self.server.store  # type: ignore[attr-defined]
        store.write_bytes(target.as_uri(), body)
        self._reply(200)

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        route, _, relative = parsed.path.lstrip("/").partition("/")
        relative = unquote(relative)
        if route == "console":
            console = self.server.console  # type: ignore[attr-defined]
            if console is None:
                self._reply(404, b"not found")
                return
            status, body = console(parsed.path.lstrip("/"))
            self._reply(status, body, "text/html; charset=utf-8")
            return
        signer: UrlSigner = self.server.signer  # type: ignore[attr-defined]
        if route == "signed":
            expires, _, rest = relative.partition("/")
            signature, _, relative = rest.partition("/")
            params = {"expires": [expires], "sig": [signature]}
            if not signer.verify("GET", relative, params)[0]:
                self._reply(403, b"the signed URL is invalid or has expired")
                return
        elif route == "download":
            valid, _ = signer.verify("GET", relative, parse_qs(parsed.query))
            if not valid:
                self._reply(403, b"the signed URL is invalid or has expired")
                return
        elif route != "store":
            self._reply(404, b"not found")
            return
        target = self._target(relative)
        if target is None or not target.is_file():
            self._reply(404, b"not found")
            return
        content_type = "text/html" if target.suffix == ".html" else "application/octet-stream"
        if target.suffix in (".log", ".txt"):
            content_type = "text/plain; charset=utf-8"
        self._reply(200, target.read_bytes(), content_type)

    do_HEAD = do_GET


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up early (aiohttp, as fsspec uses it, does) is no server error."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            logger.debug("http client %s hung up: %s", client_address, error)
            return
        super().handle_error(request, client_address)


class HttpEndpoint:
    """The threaded HTTP server on 127.0.0.1 behind signed URLs and log links."""

    def __init__(self, store: DataStore, signer: UrlSigner, port: int = 0, console=None) -> None:
        self._server = _HttpServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.console = console  # type: ignore[attr-defined]
        self._server.store = store  # type: ignore[attr-defined]
        self._server.signer = signer  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        signer.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
