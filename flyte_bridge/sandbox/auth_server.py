"""Optional auth for the sandbox: an OAuth2 client-credentials token endpoint and a gRPC check.

With auth on, the sandbox behaves like flyteadmin with its built-in authorization server, for
the one non-interactive flow: ``AuthMetadataService`` advertises a token endpoint; a client posts
``grant_type=client_credentials`` there with its id and secret (HTTP Basic, or ``client_id`` and
``client_secret`` in the form) and gets an opaque bearer token; every other RPC must carry
``Bearer <token>`` in the metadata key ``GetPublicClientConfig`` names, or it is refused with
UNAUTHENTICATED. Tokens expire after ``token_lifetime`` seconds.

The token endpoint is its own small HTTP server on 127.0.0.1 (HTTPS when the sandbox has TLS),
not a route of the data-proxy endpoint, so the sandbox's TLS settings cover it too. Browser
(PKCE) and device flows are not served; refresh-token grants are refused with ``invalid_grant``
because no refresh tokens are issued.

Tokens are random, kept only as SHA-256 digests, and never logged. The client secret is compared
in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import grpc
from flyteidl.service import auth_pb2

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox.faults import wrap_handler

if TYPE_CHECKING:
    from flyte_bridge.sandbox.tls import TlsFiles

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = 3600.0
TOKEN_PATH = "/oauth2/token"
_OPEN_SERVICES = ("/flyteidl.service.AuthMetadataService/",)
_MAX_FORM_BYTES = 64 * 1024
_HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class AuthSettings:
    """Who may get a token, and how tokens are sent and expire.

    Args:
        client_id: The one OAuth2 client allowed to get tokens.
        client_secret: Its secret (never shown in a repr or log).
        token_lifetime: Seconds a token stays valid.
        header: gRPC metadata key carrying ``Bearer <token>``, advertised to clients as
            ``authorization_metadata_key``.
        scopes: Scopes advertised to clients and granted with every token.
    """

    client_id: str
    client_secret: str = field(repr=False)
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME
    header: str = "authorization"
    scopes: tuple[str, ...] = ("all",)

    def __post_init__(self) -> None:
        if not isinstance(self.client_id, str) or not self.client_id:
            raise FlyteConfigError("sandbox auth needs a non-empty client_id")
        if not isinstance(self.client_secret, str) or not self.client_secret:
            raise FlyteConfigError("sandbox auth needs a non-empty client_secret")
        lifetime = self.token_lifetime
        if (
            isinstance(lifetime, bool)
            or not isinstance(lifetime, (int, float))
            or not 0 < lifetime < math.inf
        ):
            raise FlyteConfigError(
                f"token_lifetime must be a positive, finite number of seconds, got {lifetime!r}"
            )
        header = self.header
        if not isinstance(header, str) or not header or header != header.lower():
            raise FlyteConfigError(
                f"auth header {header!r} is not a gRPC metadata key; expected a lower-case name "
                "such as 'authorization' or 'flyte-authorization'"
            )
        if header.startswith("grpc-") or header.endswith("-bin") or header.startswith(":"):
            raise FlyteConfigError(f"auth header {header!r} is reserved or binary in gRPC")
        object.__setattr__(self, "scopes", tuple(self.scopes))


class TokenIssuer:
    """Issues and checks opaque bearer tokens for one client."""

    def __init__(
        self, settings: AuthSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._expiries: dict[bytes, float] = {}
        self.token_requests = 0
        self.tokens_issued = 0

    def client_matches(self, client_id: str, client_secret: str) -> bool:
        """Whether the pair is the configured client (constant time, whatever the lengths)."""
        id_ok = hmac.compare_digest(_digest(client_id), _digest(self.settings.client_id))
        secret_ok = hmac.compare_digest(
            _digest(client_secret), _digest(self.settings.client_secret)
        )
        return id_ok and secret_ok

    def count_request(self) -> None:
        with self._lock:
            self.token_requests += 1

    def issue(self) -> tuple[str, float]:
        """A new token and its lifetime in seconds."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expiries = {d: e for d, e in self._expiries.items() if e > now}
            self._expiries[_digest(token)] = now + self.settings.token_lifetime
            self.tokens_issued += 1
        return token, self.settings.token_lifetime

    def is_valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and has not expired.

        Tokens are looked up by their SHA-256 digest, so no comparison runs on the token itself.
        """
        digest = _digest(token)
        with self._lock:
            expiry = self._expiries.get(digest)
        return expiry is not None and self._clock() < expiry

    def expire_all(self) -> None:
        """Makes every token issued so far invalid, as if its lifetime had passed."""
        with self._lock:
            self._expiries.clear()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without a valid bearer token (UNAUTHENTICATED); AuthMetadataService is open."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(_OPEN_SERVICES):
            return handler
        problem = self._problem(handler_call_details.invocation_metadata or ())
        if problem is None:
            return handler
        logger.debug("refused %s: %s", method, problem)

        def refuse(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def handle(request: Any, context: grpc.ServicerContext) -> Any:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

            return handle

        return wrap_handler(handler, refuse)

    def _problem(self, metadata: Any) -> str | None:
        """Why the call's credentials are refused, or None if they are good."""
        header = self.issuer.settings.header
        values = [value for key, value in metadata if key == header]
        if not values:
            return f"this sandbox requires a bearer token in the '{header}' metadata"
        scheme, _, token = str(values[0]).strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return f"the '{header}' metadata must be 'Bearer <access token>'"
        if not self.issuer.is_valid(token.strip()):
            return "the access token is not valid or has expired"
        return None


class AuthMetadataService:
    """AuthMetadataService answers that point clients at the sandbox's token endpoint."""

    def __init__(self, settings: AuthSettings, base_url: str) -> None:
        self.settings = settings
        self.base_url = base_url

    def GetPublicClientConfig(self, request, context):
        return auth_pb2.PublicClientAuthConfigResponse(
            client_id=self.settings.client_id,
            redirect_uri="http://localhost:53593/callback",
            scopes=list(self.settings.scopes),
            authorization_metadata_key=self.settings.header,
        )

    def GetOAuth2Metadata(self, request, context):
        return auth_pb2.OAuth2MetadataResponse(**oauth2_metadata(self.settings, self.base_url))


def oauth2_metadata(settings: AuthSettings, base_url: str) -> dict[str, Any]:
    """The authorization-server metadata (RFC 8414) of the sandbox's token endpoint."""
    return {
        "issuer": base_url,
        "token_endpoint": base_url + TOKEN_PATH,
        "scopes_supported": list(settings.scopes),
        "response_types_supported": ["token"],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


class SandboxAuth:
    """Auth for one sandbox: the token issuer, its HTTP(S) endpoint and the gRPC check.

    Args:
        settings: The client allowed in and the token lifetime.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.issuer = TokenIssuer(settings)
        self.interceptor = AuthInterceptor(self.issuer)
        self._http: _TokenServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Base URL of the token endpoint's server (``https://127.0.0.1:port`` with TLS)."""
        if self._http is None:
            raise RuntimeError("the token endpoint is not started")
        scheme = "https" if self._http.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._http.server_address[1]}"

    @property
    def token_endpoint(self) -> str:
        """URL clients post token requests to."""
        return self.base_url + TOKEN_PATH

    @property
    def token_requests(self) -> int:
        """Token requests received, granted or not."""
        return self.issuer.token_requests

    @property
    def tokens_issued(self) -> int:
        """Tokens granted."""
        return self.issuer.tokens_issued

    def expire_tokens(self) -> None:
        """Makes every token issued so far invalid now (tests of token renewal)."""
        self.issuer.expire_all()

    def start(self, tls: TlsFiles | None = None, port: int = 0) -> None:
        """Starts the token endpoint on 127.0.0.1 (HTTPS with ``tls``)."""
        self._http = _TokenServer(
            ("127.0.0.1", port), self, tls.server_ssl_context() if tls else None
        )
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="sandbox-oauth2", daemon=True
        )
        self._thread.start()
        logger.info("OAuth2 token endpoint on %s", self.token_endpoint)

    def metadata_service(self) -> AuthMetadataService:
        """The AuthMetadataService implementation to register on the gRPC server."""
        return AuthMetadataService(self.settings, self.base_url)

    def stop(self) -> None:
        """Stops the token endpoint; safe to call twice."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __repr__(self) -> str:
        return f"SandboxAuth(client_id={self.settings.client_id!r})"


class _TokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], auth: SandboxAuth, ssl_context: Any) -> None:
        super().__init__(address, _TokenHandler)
        self.auth = auth
        self.ssl_context = ssl_context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, on the request's own thread, not in the accept loop.
        request.settimeout(_HTTP_TIMEOUT)
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.ssl_context.wrap_socket(request, server_side=True)
        except OSError as err:
            logger.debug("TLS handshake with %s failed: %s", client_address, err)
            return
        with wrapped:
            super().finish_request(wrapped, client_address)


class _TokenHandler(BaseHTTPRequestHandler):
    server: _TokenServer
    server_version = "flyte-bridge-sandbox-oauth2"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        logger.debug("oauth2 %s", format % args)

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/.well-known/oauth-authorization-server":
            auth = self.server.auth
            self._json(200, oauth2_metadata(auth.settings, auth.base_url))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if urllib.parse.urlsplit(self.path).path != TOKEN_PATH:
            self._json(404, {"error": "not_found"})
            return
        issuer = self.server.auth.issuer
        issuer.count_request()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_FORM_BYTES:
            self._json(413, {"error": "invalid_request", "error_description": "body too large"})
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        fields = {name: values[0] for name, values in form.items() if values}

        client = self._client(fields)
        if client is None or not issuer.client_matches(*client):
            logger.info("refused a token request: wrong client id or secret")
            self._json(
                401,
                {"error": "invalid_client", "error_description": "client authentication failed"},
                {"WWW-Authenticate": 'Basic realm="flyte-bridge-sandbox"'},
            )
            return
        grant = fields.get("grant_type", "")
        if grant == "refresh_token":
            self._json(
                400,
                {"error": "invalid_grant", "error_description": "no refresh tokens are issued"},
            )
            return
        if grant != "client_credentials":
            self._json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"only client_credentials is served, not {grant!r}",
                },
            )
            return
        token, lifetime = issuer.issue()
        self._json(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": max(1, math.ceil(lifetime)),
                "scope": " ".join(issuer.settings.scopes),
            },
        )

    def _client(self, fields: dict[str, str]) -> tuple[str, str] | None:
        """The client id and secret from HTTP Basic (RFC 6749 2.3.1) or the form."""
        authorization = self.headers.get("Authorization", "")
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            client_id, colon, secret = pair.partition(":")
            if not colon:
                return None
            return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
        if "client_id" in fields and "client_secret" in fields:
            return fields["client_id"], fields["client_secret"]
        return None


def auth_settings(
    client_id: str | None,
    client_secret: str | None,
    token_lifetime: float | None = None,
    header: str | None = None,
) -> AuthSettings | None:
    """Settings from start options: None (auth off) unless a client secret is given."""
    if client_secret is None:
        given = [
            name
            for name, value in (
                ("client id", client_id),
                ("token lifetime", token_lifetime),
                ("auth header", header),
            )
            if value is not None
        ]
        if given:
            raise FlyteConfigError(
                f"sandbox auth is switched on by a client secret; {' and '.join(given)} given "
                "without one"
            )
        return None
    values: dict[str, Any] = {"client_id": client_id or "flyte-bridge"}
    if token_lifetime is not None:
        values["token_lifetime"] = token_lifetime
    if header is not None:
        values["header"] = header
    return AuthSettings(client_secret=client_secret, **values)
