"""HTTP transport: everything the service knows about browsers and the wire.

The refresh cookie and its attributes, the Origin check and CORS, the security
headers, reading request bodies, the client address behind proxies, the JSON
error payload, and the RequestContext the resolvers see. The account logic
(accounts.py, recovery.py) knows none of this: it reads and sets the refresh
cookie through the small RefreshCookie protocol.
"""

import json
import logging
import random
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import audit
from .errors import (
    AuthError,
    BadRequestError,
    MethodNotAllowedError,
    RequestTooLargeError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from .services import Services
from .settings import Settings

REFRESH_COOKIE = "refreshToken"

# Errors: one payload for every error a client sees.


def error_payload(error: AuthError) -> dict[str, Any]:
    """An error as clients read it: the type in `extensions.type` and, for
    Krypton Auth's clients, as a top-level `type`."""
    return {
        "message": str(error),
        "extensions": {"type": error.type, **error.details},
        "type": error.type,
    }


#: HTTP status of a request refused before GraphQL runs it; first match wins.
_REFUSAL_STATUS = (
    (RequestTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (MethodNotAllowedError, 405),
    (UnauthorizedError, 403),
    (AuthError, 400),
)


def refusal(error: AuthError) -> JSONResponse:
    """The answer to a request refused before GraphQL runs it."""
    status = next(code for kind, code in _REFUSAL_STATUS if isinstance(error, kind))
    headers = {"Allow": "POST"} if status == 405 else None
    return JSONResponse(
        {"errors": [error_payload(error)]}, status_code=status, headers=headers
    )


# Request bodies.


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (RequestTooLargeError) as soon as it passes
    `limit` bytes, declared or not, so an oversized body is never held whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"The request body is larger than {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestTooLargeError(
                f"The request body is larger than {limit} bytes."
            )
    return bytes(body)


async def read_graphql_request(request: Request, limit: int) -> dict[str, Any]:
    """{query, variables, operationName} of a GraphQL request, as the GraphQL
    over HTTP spec has it: a JSON body for POST (only `application/json`, so an
    HTML form on another site cannot post one), URL parameters for GET."""
    if request.method == "GET":
        params = request.query_params
        variables = params.get("variables")
        body: Any = {
            "query": params.get("query"),
            "variables": _json(variables) if variables else None,
            "operationName": params.get("operationName"),
        }
    else:
        media_type = (
            request.headers.get("content-type", "").partition(";")[0].strip().lower()
        )
        if media_type != "application/json":
            raise UnsupportedMediaTypeError(
                "Send the GraphQL request as JSON, with Content-Type: application/json."
            )
        body = _json(await read_body(request, limit))
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise BadRequestError(
            "The request must be a JSON object with a 'query' string."
        )
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequestError("'variables' must be a JSON object.")
    operation = body.get("operationName")
    if operation is not None and not isinstance(operation, str):
        raise BadRequestError("'operationName' must be a string.")
    return body


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The request is not valid JSON.") from None
    except RecursionError:
        raise BadRequestError("The request's JSON is nested too deeply.") from None


# Origins: CORS for the listed browser origins, and no cookie from any other.


def public_origin(settings: Settings) -> str:
    """scheme://host[:port] of AUTH_PUBLIC_URL, as browsers write it in `Origin`."""
    parts = urlsplit(settings.public_url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname}{port}".lower()


def check_origin(request: Request, settings: Settings) -> None:
    """Refuse a cookie-carrying request sent by a page of a foreign origin
    (CSRF): only the service's own origin and AUTH_CORS_ORIGINS may use the
    refresh cookie. Requests without `Origin` (servers, curl) are not browsers'."""
    origin = request.headers.get("origin")
    if origin is None or REFRESH_COOKIE not in request.cookies:
        return
    if origin != public_origin(settings) and origin not in settings.cors_origins:
        raise UnauthorizedError(
            f"Requests from {origin[:100]} may not use the session cookie."
        )


def middleware(settings: Settings) -> list[Middleware]:
    """A request id and security headers on every response; CORS for AUTH_CORS_ORIGINS."""
    stack = [Middleware(RequestScope, hops=settings.proxy_hops)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_credentials=True,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    return stack


# Security headers, request ids and the client: one layer for every request.

#: On every response; a response may set its own Content-Security-Policy.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_RAW_SECURITY_HEADERS = [
    (name.encode("latin-1"), value.encode("latin-1"))
    for name, value in SECURITY_HEADERS.items()
]

#: The id of the request being served, for the log lines it causes (logs.py).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: An id a proxy in front may send (a UUID, a trace id); anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")


def new_request_id() -> str:
    """128 random bits as hex. An id must be unique, not secret: os.urandom
    (uuid4) would release the GIL and wait for it again behind the database
    threads, a cost every request paid under load."""
    return f"{random.getrandbits(128):032x}"


class RequestScope:
    """What every HTTP request gets, in one layer (three cost a quarter of a
    `me`'s own Python time, docs/performance.md):

    - an id, echoed in `X-Request-Id` and set in `request_id` for its log
      lines: the incoming header's when it is well-formed (so one id follows a
      request through the proxies and services), else a new one;
    - its client (address after the trusted proxies, user agent) in
      audit.current_client, so the account logic records it in audit events
      and sessions without knowing about HTTP;
    - SECURITY_HEADERS on its response, where the response lacks them.
    """

    def __init__(self, app: ASGIApp, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        incoming = connection.headers.get("x-request-id", "")
        current = incoming if _REQUEST_ID.fullmatch(incoming) else new_request_id()
        raw_id = (b"x-request-id", current.encode("latin-1"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    header
                    for header in message.get("headers", ())
                    if header[0].lower() != b"x-request-id"
                ]
                present = {name.lower() for name, _ in headers}
                headers += [
                    header
                    for header in _RAW_SECURITY_HEADERS
                    if header[0] not in present
                ]
                headers.append(raw_id)
                message = {**message, "headers": headers}
            await send(message)

        id_token = request_id.set(current)
        client_token = audit.current_client.set(
            audit.Client.of(
                client_address(connection, self.hops),
                connection.headers.get("user-agent"),
            )
        )
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            audit.current_client.reset(client_token)
            request_id.reset(id_token)


def page_headers(nonce: str) -> dict[str, str]:
    """The pages behind the mailed links: only their own script (by nonce) runs,
    forms post only to the service, and a page carrying a one-time token in its
    URL is neither cached nor sent on in a Referer."""
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return {"content-security-policy": policy, "cache-control": "no-store"}


def graphiql_headers() -> dict[str, str]:
    """GraphiQL's page (explorer.py): scripts and styles only from the service's
    own origin (its vendored files, pinned by integrity hashes; there is no
    inline script), fonts and icons inline as data: URLs, requests only to the
    service. Its editors set styles through the DOM, which no policy restricts."""
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; font-src data:; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {"content-security-policy": policy}


# Logs: the links' one-time tokens never reach an access log.


class RedactTokens(logging.Filter):
    """Replaces `token=...` in uvicorn's access log lines (the mailed links'
    /user/email/confirmation?token=... and /form/reset/password?token=...)."""

    _token = re.compile(r"(token=)[^&\s]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._token.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


# The client: its address behind proxies, and its user agent for the audit trail.


def client_address(request: HTTPConnection, hops: int) -> str:
    """The peer's address, or with `hops` trusted proxies in front, the address
    the outermost of them saw: X-Forwarded-For read from the right, since
    everything left of what our proxies appended is the client's to write."""
    if hops:
        forwarded = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
        if len(forwarded) >= hops and forwarded[-hops].strip():
            return forwarded[-hops].strip()
    client = request.client
    return client.host if client else "unknown"


# The request as the resolvers see it.


@dataclass
class RequestContext:
    """One GraphQL request: the resolvers' view of HTTP."""

    services: Services
    request: Request
    # Cookie changes written to the response: (name, value, max_age).
    cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def bearer_token(self) -> str | None:
        scheme, _, token = self.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    @property
    def refresh_cookie(self) -> str | None:
        return self.request.cookies.get(REFRESH_COOKIE) or None

    @property
    def client_address(self) -> str:
        return client_address(self.request, self.settings.proxy_hops)

    def set_refresh_cookie(self, value: str) -> None:
        self._replace_cookie(REFRESH_COOKIE, value, self.settings.refresh_token_ttl)

    def clear_refresh_cookie(self) -> None:
        self._replace_cookie(REFRESH_COOKIE, "", 0)

    def _replace_cookie(self, name: str, value: str, max_age: int) -> None:
        """The last change of a cookie wins: the response sets each cookie once."""
        self.cookies = [cookie for cookie in self.cookies if cookie[0] != name]
        self.cookies.append((name, value, max_age))

    def write_cookies(self, response: Response) -> None:
        """HttpOnly, Secure over https, SameSite as configured, scoped to the
        public URL's path, and host-only unless AUTH_COOKIE_DOMAIN widens it."""
        settings = self.settings
        for name, value, max_age in self.cookies:
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=settings.cookie_path,
                domain=settings.cookie_domain or None,
                secure=settings.secure_cookies,
                httponly=True,
                samesite=settings.cookie_samesite,
            )
