"""Scripted stand-ins for admin and an OAuth2 token endpoint, on 127.0.0.1, for transport tests.

``ScriptedServer`` serves every flyteidl service over real gRPC; each method answers from a
script (responses, status codes, stalls) and records the metadata of every call. ``TokenServer``
is an ``http.server`` token endpoint with scripted answers. These test the transport's retry,
auth and error mapping paths that the sandbox cannot produce yet (fault injection, auth, TLS).
"""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from flyteidl.service import admin_pb2, auth_pb2, dataproxy_pb2, identity_pb2, signal_pb2
from google.protobuf import message_factory

_FILES = (admin_pb2, signal_pb2, dataproxy_pb2, auth_pb2, identity_pb2)


@dataclass
class Stall:
    """Answer nothing for ``seconds`` (the client's deadline fires first), then fail."""

    seconds: float


@dataclass
class Call:
    method: str
    metadata: dict[str, str]
    request: Any


@dataclass
class ScriptedServer:
    """A gRPC server whose methods answer from per-method scripts."""

    port: int = 0
    scripts: dict[str, collections.deque] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )
    defaults: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # When set, every non-auth call must carry ``<key>: Bearer <token>`` with a token in the set.
    accepted_tokens: set[str] | None = None
    token_header: str = "authorization"
    # When set, every call (auth service included) must carry ``proxy-authorization``.
    accepted_proxy_tokens: set[str] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    def script(self, method: str, *answers: Any) -> None:
        """Queues answers: a message, a StatusCode, (StatusCode, details), a Stall, a callable."""
        self.scripts[method].extend(answers)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def start(self, credentials: grpc.ServerCredentials | None = None) -> ScriptedServer:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16),
            options=[
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
                ("grpc.http2.max_ping_strikes", 0),
            ],
        )
        for file in _FILES:
            for service in file.DESCRIPTOR.services_by_name.values():
                server.add_generic_rpc_handlers((self._handler_for(service),))
        address = f"127.0.0.1:{self.port}"
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _handler_for(self, service: Any) -> grpc.GenericRpcHandler:
        handlers = {}
        for method in service.methods:
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                self._behaviour(method.name, service.name, response_class),
                request_deserializer=request_class.FromString,
                response_serializer=response_class.SerializeToString,
            )
        return grpc.method_handlers_generic_handler(service.full_name, handlers)

    def _behaviour(self, method: str, service: str, response_class: type) -> Callable[..., Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = {k: v for k, v in context.invocation_metadata()}
            with self._lock:
                self.calls.append(Call(method, metadata, request))
                queue = self.scripts.get(method)
                answer = queue.popleft() if queue else self.defaults.get(method)
            if self.accepted_proxy_tokens is not None:
                sent = metadata.get("proxy-authorization", "")
                if sent.removeprefix("Bearer ") not in self.accepted_proxy_tokens:
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "proxy refused the call")
            if self.accepted_tokens is not None and service != "AuthMetadataService":
                sent = metadata.get(self.token_header, "")
                if sent.removeprefix("Bearer ") not in self.accepted_tokens:
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "token missing or expired")
            if answer is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not scripted")
            if callable(answer) and not isinstance(answer, type):
                answer = answer(request, context)
            if isinstance(answer, Stall):
                time.sleep(answer.seconds)
                context.abort(grpc.StatusCode.INTERNAL, "stalled")
            if isinstance(answer, grpc.StatusCode):
                context.abort(answer, f"scripted {answer.name}")
            if isinstance(answer, tuple) and isinstance(answer[0], grpc.StatusCode):
                context.abort(answer[0], answer[1])
            return answer if answer is not None else response_class()

        return handle


@dataclass
class TokenRequest:
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class TokenServer:
    """An OAuth2 token endpoint on 127.0.0.1 with scripted answers.

    Unscripted requests get ``{"access_token": "token-<n>", "expires_in": <lifetime>}``.
    A scripted answer is ``(status, content_type, body)``.
    """

    lifetime: float | None = 3600
    answers: collections.deque = field(default_factory=collections.deque)
    requests: list[TokenRequest] = field(default_factory=list)

    def start(self) -> TokenServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                fake.requests.append(TokenRequest(dict(self.headers.items()), form))
                if fake.answers:
                    status, content_type, body = fake.answers.popleft()
                else:
                    payload: dict[str, Any] = {
                        "access_token": f"token-{len(fake.requests)}",
                        "token_type": "Bearer",
                    }
                    if fake.lifetime is not None:
                        payload["expires_in"] = fake.lifetime
                    status, content_type, body = 200, "application/json", json.dumps(payload)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/oauth2/token"

    def issued(self) -> list[str]:
        return [f"token-{i + 1}" for i in range(len(self.requests))]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class HtmlProxy:
    """A bare HTTP/2 peer on 127.0.0.1 that answers every request with an HTML error page.

    It stands for an identity-aware proxy or ingress in front of admin that refuses a call with
    ``401 text/html`` instead of a gRPC status (flytekit#2156). Only the few frames a gRPC
    client needs are spoken: SETTINGS, PING acks, and one HEADERS + DATA answer per stream.
    """

    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, status: int = 401, body: bytes = b"<html><title>Sign in</title></html>"):
        import socket

        self.status = status
        self.body = body
        self.requests = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def stop(self) -> None:
        self._listener.close()

    @staticmethod
    def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return (
            len(payload).to_bytes(3, "big")
            + bytes([kind, flags])
            + stream.to_bytes(4, "big")
            + payload
        )

    def _answer(self, stream: int) -> bytes:
        status = str(self.status).encode()
        # HPACK literals without indexing: :status (static index 8), content-type (index 31).
        headers = bytes([0x08, len(status)]) + status
        headers += bytes([0x0F, 31 - 15, len(b"text/html")]) + b"text/html"
        return self._frame(0x1, 0x4, stream, headers) + self._frame(0x0, 0x1, stream, self.body)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: Any) -> None:
        def read(count: int) -> bytes:
            data = b""
            while len(data) < count:
                chunk = connection.recv(count - len(data))
                if not chunk:
                    raise ConnectionError
                data += chunk
            return data

        try:
            read(len(self.PREFACE))
            connection.sendall(self._frame(0x4, 0x0, 0, b""))
            while True:
                header = read(9)
                length = int.from_bytes(header[:3], "big")
                kind, flags = header[3], header[4]
                stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                payload = read(length)
                if kind == 0x4 and not flags & 0x1:
                    connection.sendall(self._frame(0x4, 0x1, 0, b""))
                elif kind == 0x6 and not flags & 0x1:
                    connection.sendall(self._frame(0x6, 0x1, 0, payload))
                elif kind == 0x1:
                    self.requests += 1
                    connection.sendall(self._answer(stream))
        except (ConnectionError, OSError):
            connection.close()
