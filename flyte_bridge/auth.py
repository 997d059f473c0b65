"""Credentials for calls to admin: where the token comes from and when it is renewed.

Three sources, none interactive (flyte-bridge runs on headless workers):

* client credentials: an OAuth2 ``client_credentials`` grant against the token endpoint that
  admin advertises in ``AuthMetadataService.GetOAuth2Metadata`` (or a configured one). The token
  is cached in memory and fetched again shortly before it expires, or once when admin answers
  UNAUTHENTICATED. It is not shared between processes.
* an external command whose standard output is the token; run again on UNAUTHENTICATED (and
  before expiry when the token is a JWT with an ``exp`` claim).
* a static bearer token or API key; one read from a file is read again on UNAUTHENTICATED
  (and before a JWT's ``exp``), one given as a value is never renewed.

The gRPC metadata key is the configured one, else admin's ``authorization_metadata_key`` from
``GetPublicClientConfig``, else ``authorization``. Token requests use the standard library's
urllib. Tokens are never logged.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flyte_bridge.config import AuthConfig, ClientConfig, is_loopback_host
from flyte_bridge.errors import FlyteAuthError, FlyteConfigError, FlyteTransientError

if TYPE_CHECKING:
    import ssl
    import subprocess

logger = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]

DEFAULT_HEADER = "authorization"
DEFAULT_API_KEY_HEADER = "x-api-key"
TOKEN_REQUEST_TIMEOUT = 30.0
TOKEN_REQUEST_ATTEMPTS = 3
COMMAND_TIMEOUT = 60.0
# A token is renewed when less than this share of its lifetime is left (at most 60 s early).
_REFRESH_SHARE = 0.25
_REFRESH_MAX_MARGIN = 60.0


@dataclass(frozen=True)
class ServerAuthInfo:
    """What admin's AuthMetadataService says about its auth (empty fields when not served)."""

    header_key: str | None = None
    token_endpoint: str | None = None
    scopes: tuple[str, ...] = ()
    audience: str | None = None

    @classmethod
    def from_protos(cls, public_client_config: object, oauth2_metadata: object) -> ServerAuthInfo:
        """From ``PublicClientAuthConfigResponse`` and ``OAuth2MetadataResponse`` (either None)."""
        header = getattr(public_client_config, "authorization_metadata_key", "") or None
        scopes = tuple(getattr(public_client_config, "scopes", ()) or ())
        audience = getattr(public_client_config, "audience", "") or None
        token_endpoint = getattr(oauth2_metadata, "token_endpoint", "") or None
        return cls(
            header_key=header.lower() if header else None,
            token_endpoint=token_endpoint,
            scopes=scopes,
            audience=audience,
        )


@dataclass(frozen=True)
class Token:
    """An access token and when (monotonic clock) it should be replaced."""

    value: str = field(repr=False)
    expires_at: float | None = None
    refresh_at: float | None = None


class Authenticator:
    """Supplies the credential metadata of every call; subclasses say where tokens come from.

    Thread-safe: one authenticator serves every thread of a transport, and a token is fetched
    by one caller while the others wait for it.
    """

    refreshable: bool = False
    # Extra HTTP headers for token requests (the proxy's credential, when there is a proxy).
    request_headers: Callable[[], dict[str, str]] = staticmethod(dict)

    def __init__(
        self, auth: AuthConfig, config: ClientConfig, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.auth = auth
        self.config = config
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._server: ServerAuthInfo | None = None

    @property
    def needs_discovery(self) -> bool:
        """Whether admin's AuthMetadataService must be asked before the first call."""
        return self._server is None and self.auth.header is None

    def apply_discovery(self, info: ServerAuthInfo | None) -> None:
        """Records what admin advertised; ``None`` when it does not serve AuthMetadataService."""
        self._server = info or ServerAuthInfo()
        logger.debug(
            "auth metadata: header %s, token endpoint %s",
            self._server.header_key,
            self._server.token_endpoint,
        )

    @property
    def needs_token_endpoint(self) -> bool:
        """Whether only admin's AuthMetadataService can say where to get tokens."""
        return False

    @property
    def header_key(self) -> str:
        """The gRPC metadata key the credential is sent under."""
        if self.auth.header:
            return self.auth.header
        if self._server is not None and self._server.header_key:
            return self._server.header_key
        return DEFAULT_HEADER

    def cached_metadata(self) -> Metadata | None:
        """The metadata if a valid token is at hand, without blocking on a fetch."""
        token = self._token
        if token is None or self._due(token):
            return None
        return self._metadata_for(token)

    def metadata(self, timeout: float | None = None) -> Metadata:
        """The metadata to send, fetching a token first when none is valid.

        Args:
            timeout: Seconds the call that needs it has left (its deadline); a token command
                runs at most that long (and never over ``COMMAND_TIMEOUT``).
        """
        with self._lock:
            token = self._token
            if token is None or self._due(token):
                token = self._fetch_token(timeout)
                self._token = token
            return self._metadata_for(token)

    def invalidate(self, sent: Metadata | None) -> bool:
        """Drops the token that admin refused; True when a fresh one could be fetched.

        Only the token that was actually sent is dropped, so when many calls fail at once with
        the same expired token, one new token is fetched, not one per call.
        """
        if not self.refreshable:
            return False
        with self._lock:
            token = self._token
            if token is not None and sent and set(self._metadata_for(token)) <= set(sent):
                logger.info("a call was refused (UNAUTHENTICATED); renewing %s", self.header_key)
                self._token = None
        return True

    def _due(self, token: Token) -> bool:
        return token.refresh_at is not None and self._clock() >= token.refresh_at

    def _metadata_for(self, token: Token) -> Metadata:
        return ((self.header_key, f"Bearer {token.value}"),)

    def _fetch_token(self, timeout: float | None = None) -> Token:
        raise NotImplementedError

    def _token_with_lifetime(self, value: str, lifetime: float | None) -> Token:
        if lifetime is None:
            lifetime = _jwt_lifetime(value)
        if lifetime is None:
            return Token(value)
        now = self._clock()
        margin = min(_REFRESH_MAX_MARGIN, max(lifetime, 0.0) * _REFRESH_SHARE)
        return Token(value, expires_at=now + lifetime, refresh_at=now + lifetime - margin)


class StaticTokenAuthenticator(Authenticator):
    """A bearer token or API key given in the configuration.

    A token given as a value or an env var is never renewed. A token read from a file (such as
    a projected Kubernetes service-account token) is read again when admin refuses it, and
    before its ``exp`` when it is a JWT.
    """

    def __init__(self, auth: AuthConfig, config: ClientConfig, **kwargs: object) -> None:
        super().__init__(auth, config, **kwargs)  # type: ignore[arg-type]
        assert auth.token is not None
        self.refreshable = auth.token.source.startswith("file ")
        if auth.mode == "api_key":
            # An API key goes verbatim under its own header; admin's auth metadata is not needed.
            self._server = ServerAuthInfo()

    @property
    def header_key(self) -> str:
        if self.auth.mode == "api_key":
            return self.auth.header or DEFAULT_API_KEY_HEADER
        return super().header_key

    def _fetch_token(self, timeout: float | None = None) -> Token:
        assert self.auth.token is not None
        value = self.auth.token.reveal()
        return self._token_with_lifetime(value, None) if self.refreshable else Token(value)

    def _metadata_for(self, token: Token) -> Metadata:
        if self.auth.mode == "api_key":
            return ((self.header_key, token.value),)
        return super()._metadata_for(token)


class ExternalCommandAuthenticator(Authenticator):
    """Runs the configured command; its standard output (stripped) is the token."""

    refreshable = True

    def _fetch_token(self, timeout: float | None = None) -> Token:
        import subprocess

        argv = list(self.auth.command)
        limit = COMMAND_TIMEOUT if timeout is None else max(0.0, min(COMMAND_TIMEOUT, timeout))
        logger.debug("running the token command %s (at most %.1fs)", argv[0], limit)
        try:
            # Its own session, so that a command running over is killed with its children.
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise FlyteAuthError(
                f"token command {argv[0]!r} was not found; expected an executable that prints "
                "a token"
            ) from None
        try:
            stdout, _ = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            raise FlyteAuthError(
                f"token command {argv[0]!r} did not finish within {limit:.3g}s (the time left "
                f"to the call, at most {COMMAND_TIMEOUT:g}s) and was stopped; it must print a "
                "token without waiting for a person"
            ) from None
        done = subprocess.CompletedProcess(argv, process.returncode, stdout)
        if done.returncode != 0:
            # Its stderr is not quoted: a token command may print credentials there.
            raise FlyteAuthError(
                f"token command {argv[0]!r} exited with status {done.returncode} (its output "
                "is not shown, in case it holds a secret; run the command to see it)"
            )
        value = done.stdout.strip()
        if not value:
            raise FlyteAuthError(f"token command {argv[0]!r} printed nothing; expected a token")
        return self._token_with_lifetime(value, None)


def _kill_session(process: subprocess.Popen[str]) -> None:
    """Kills a token command and whatever it started, and reaps it."""
    import os
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        process.kill()
    try:
        process.communicate(timeout=5)
    except Exception:  # noqa: BLE001 - a grandchild holding the pipes must not hang the caller
        logger.debug("token command %s left output pipes open after it was killed", process.pid)


class ClientCredentialsAuthenticator(Authenticator):
    """OAuth2 client credentials grant; the token endpoint comes from admin unless configured."""

    refreshable = True

    @property
    def needs_discovery(self) -> bool:
        if self._server is not None:
            return False
        # Scopes and audience default to admin's, so discovery is skipped only when every
        # setting is given.
        return not (self.auth.header and self.auth.token_endpoint and self.auth.scopes)

    @property
    def needs_token_endpoint(self) -> bool:
        return self.auth.token_endpoint is None

    def token_endpoint(self) -> str:
        """Where tokens are asked for."""
        if self.auth.token_endpoint:
            return self.auth.token_endpoint
        if self._server is not None and self._server.token_endpoint:
            return self._server.token_endpoint
        raise FlyteAuthError(
            f"admin at {self.config.endpoint} does not advertise a token endpoint "
            "(AuthMetadataService.GetOAuth2Metadata is not served or empty); set "
            "AuthConfig.token_endpoint (admin.tokenUrl in the flytectl config)"
        )

    def _fetch_token(self, timeout: float | None = None) -> Token:
        url = self.token_endpoint()
        _check_token_url(url, self.auth)
        scopes = self.auth.scopes or (self._server.scopes if self._server else ())
        audience = self.auth.audience or (self._server.audience if self._server else None)
        form = {"grant_type": "client_credentials"}
        if scopes:
            form["scope"] = " ".join(scopes)
        if audience:
            form["audience"] = audience
        assert self.auth.client_id is not None and self.auth.client_secret is not None
        basic = _basic_credentials(self.auth.client_id, self.auth.client_secret.reveal())
        payload = post_token_request(
            url,
            form,
            basic=basic,
            ssl_context=_ssl_context(self.config),
            proxy=self.config.http_proxy_url,
            extra_headers=self.request_headers(),
        )
        value = payload.get("access_token")
        if not isinstance(value, str) or not value.strip():
            raise FlyteAuthError(f"token endpoint {url} answered without an access_token")
        lifetime = payload.get("expires_in")
        try:
            lifetime = float(lifetime) if lifetime is not None else None
        except (TypeError, ValueError):
            lifetime = None
        logger.debug("fetched a token from %s (expires in %s s)", url, lifetime)
        return self._token_with_lifetime(value.strip(), lifetime)


def create_authenticator(
    config: ClientConfig, *, clock: Callable[[], float] | None = None
) -> Authenticator | None:
    """The authenticator for ``config.auth``, or None when calls carry no credentials."""
    auth = config.auth
    if auth is None or auth.mode == "none":
        return None
    classes: dict[str, type[Authenticator]] = {
        "client_credentials": ClientCredentialsAuthenticator,
        "external_command": ExternalCommandAuthenticator,
        "bearer": StaticTokenAuthenticator,
        "api_key": StaticTokenAuthenticator,
    }
    return classes[auth.mode](auth, config, clock=clock)


PROXY_HEADER = "proxy-authorization"


def create_proxy_authenticator(
    config: ClientConfig, *, clock: Callable[[], float] | None = None
) -> Authenticator | None:
    """The source of the ``proxy-authorization`` credential (``proxy_command``), if any."""
    if not config.proxy_command:
        return None
    proxy_auth = AuthConfig(
        mode="external_command",
        command=config.proxy_command,
        header=PROXY_HEADER,
        allow_plaintext=config.auth.allow_plaintext if config.auth else False,
    )
    return ExternalCommandAuthenticator(proxy_auth, config, clock=clock)


def unauthenticated_hint(config: ClientConfig) -> str:
    """What to tell a user whose call was refused as UNAUTHENTICATED."""
    auth = config.auth
    if auth is None or auth.mode == "none":
        hint = f"admin at {config.endpoint} requires authentication but no credentials are set"
        if auth is not None and auth.interactive_flow_requested:
            hint += (
                f"; the flytekit config asks for {auth.interactive_flow_requested}, an "
                "interactive flow that flyte-bridge does not run on headless workers"
            )
        return hint + (
            "; configure client credentials (authType: ClientSecret), an external command "
            "(authType: ExternalCommand) or a bearer token"
        )
    if auth.mode in ("bearer", "api_key"):
        return f"admin refused the configured {auth.mode.replace('_', ' ')}"
    return "admin refused the credentials even after a fresh token was fetched"


def post_token_request(
    url: str,
    form: dict[str, str],
    *,
    basic: str | None,
    ssl_context: ssl.SSLContext | None,
    proxy: str | None = None,
    extra_headers: dict[str, str] | None = None,
    timeout: float = TOKEN_REQUEST_TIMEOUT,
    attempts: int = TOKEN_REQUEST_ATTEMPTS,
) -> dict[str, object]:
    """POSTs an OAuth2 token request and returns the JSON answer.

    Connection failures, HTTP 429 and 5xx are tried ``attempts`` times with a short backoff,
    then raise :class:`FlyteTransientError`. Any other failure raises :class:`FlyteAuthError`
    with a message naming the status and the OAuth2 error (an HTML page from a proxy is named
    as such).
    """
    import http.client
    import urllib.error
    import urllib.request

    import tenacity

    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "Cache-Control": "no-cache",
    }
    headers.update(extra_headers or {})
    if basic:
        headers["Authorization"] = f"Basic {basic}"
    body = urllib.parse.urlencode(form).encode()
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=ssl_context)]
    # Without a configured proxy, urllib's default applies (HTTPS_PROXY and NO_PROXY).
    handlers.append(
        urllib.request.ProxyHandler({"http": proxy, "https": proxy})
        if proxy
        else urllib.request.ProxyHandler()
    )
    opener = urllib.request.build_opener(*handlers)

    def attempt() -> dict[str, object]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=timeout) as response:
                return _parse_token_response(
                    url, response.status, response.headers.get("Content-Type", ""), response.read()
                )
        except urllib.error.HTTPError as exc:
            content_type = exc.headers.get("Content-Type", "")
            raise _token_http_error(url, exc.code, content_type, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FlyteTransientError(f"token endpoint {url} cannot be reached: {reason}") from None
        except http.client.HTTPException as exc:
            # Not HTTP at all (a gRPC port, say): what came back is bytes, not worth quoting.
            raise FlyteAuthError(
                f"token endpoint {url} did not answer HTTP ({type(exc).__name__}); check the "
                "token URL, or whether the server has auth switched on"
            ) from None

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        wait=tenacity.wait_random_exponential(multiplier=0.2, max=2.0),
        retry=tenacity.retry_if_exception_type(FlyteTransientError),
        reraise=True,
    )
    return retrying(attempt)


def _parse_token_response(
    url: str, status: int, content_type: str, body: bytes
) -> dict[str, object]:
    if _looks_like_html(content_type, body):
        raise _token_http_error(url, status, content_type, body)
    try:
        payload = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        raise FlyteAuthError(
            f"token endpoint {url} answered HTTP {status} with a body that is not JSON "
            f"(content-type {content_type or 'missing'})"
        ) from None
    if not isinstance(payload, dict):
        raise FlyteAuthError(f"token endpoint {url} answered with JSON that is not an object")
    return payload


def _token_http_error(
    url: str, status: int, content_type: str, body: bytes
) -> FlyteAuthError | FlyteTransientError:
    if status == 429 or status >= 500:
        return FlyteTransientError(f"token endpoint {url} answered HTTP {status}")
    if _looks_like_html(content_type, body):
        title = _html_title(body)
        return FlyteAuthError(
            f"token endpoint {url} answered HTTP {status} with an HTML page"
            + (f" ({title!r})" if title else "")
            + " instead of an OAuth2 JSON response; a proxy or login page in front of it "
            "probably intercepted the request"
        )
    oauth_error = ""
    try:
        payload = json.loads(body.decode("utf-8", "replace"))
        if isinstance(payload, dict) and payload.get("error"):
            oauth_error = str(payload["error"])
            if payload.get("error_description"):
                oauth_error += f": {payload['error_description']}"
    except ValueError:
        oauth_error = _shorten(body.decode("utf-8", "replace"))
    meaning = {
        400: "rejected the token request",
        401: "refused the client credentials",
        403: "does not allow this client to get a token",
    }.get(status, "refused the token request")
    detail = f" ({oauth_error})" if oauth_error else ""
    return FlyteAuthError(f"token endpoint {url} {meaning}: HTTP {status}{detail}")


def _looks_like_html(content_type: str, body: bytes) -> bool:
    if "html" in content_type.lower():
        return True
    return body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


def _html_title(body: bytes) -> str:
    match = re.search(rb"<title[^>]*>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    return _shorten(match.group(1).decode("utf-8", "replace"), 80) if match else ""


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _basic_credentials(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: both parts form-encoded, then base64 of ``id:secret``."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return base64.b64encode(pair.encode()).decode()


def _check_token_url(url: str, auth: AuthConfig) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https":
        return
    if parsed.scheme != "http":
        raise FlyteAuthError(f"token endpoint {url!r} is not an http(s) URL")
    if auth.allow_plaintext and is_loopback_host(parsed.hostname or ""):
        return
    raise FlyteConfigError(
        f"token endpoint {url} is plaintext http; the client secret is only sent over https "
        "(or to a loopback host with AuthConfig(allow_plaintext=True))"
    )


def _ssl_context(config: ClientConfig) -> ssl.SSLContext:
    import ssl

    context = ssl.create_default_context()
    if config.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.ca_cert_path:
        # Trusted in addition to the system roots: the identity provider may be public.
        context.load_verify_locations(cafile=config.ca_cert_path)
    return context


def _jwt_lifetime(token: str) -> float | None:
    """Seconds until a JWT's ``exp``, or None if the token is not a JWT with one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        exp = float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    return exp - time.time()
