"""HTTP transport over the wire: JSON-only POSTs and read-only GETs, the Origin
check, cookie attributes, security headers, introspection, the client address
behind proxies, what reaches the log, and settings refused at start.

Every test talks to a started service; the log checks read its output file.
"""

import base64
import hashlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import MailSink, Service, service_env
from helpers import (
    LOGIN,
    LOGOUT,
    PASSWORD,
    REFRESH,
    error_type,
    logged_in,
    post,
    registered,
    running_service,
)
from test_mail import link_in, mail_to, token_of, wait_until

ALLOWED_ORIGIN = "https://app.example"
EMAIL_AVAILABLE = "query ($email: String!) { emailAvailable(email: $email) }"
REGISTER = "mutation ($fields: UserRegisterInput!) { register(fields: $fields) }"
SEND_RECOVERY = "query ($email: String!) { sendPasswordRecoveryEmail(email: $email) }"


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink
) -> Iterator[Service]:
    """This module's service: one browser origin allowed, room for a deeply nested body."""
    with running_service(
        tmp_path_factory.mktemp("transport"),
        smtp,
        AUTH_CORS_ORIGINS=ALLOWED_ORIGIN,
        AUTH_MAX_BODY_BYTES="200000",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Service]]:
    """Starts a service with extra settings (and another public URL); all stop at the end."""
    started: list[Service] = []

    def start(public_url: str | None = None, **env: str) -> Service:
        folder = tmp_path_factory.mktemp("transport")
        running = Service(folder, {**service_env(folder), **env})
        if public_url:
            running.env["AUTH_PUBLIC_URL"] = public_url
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def refusal(response: httpx.Response, status: int) -> str:
    """The error type of a request refused with `status` and a JSON error body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["type"] == body["errors"][0]["type"]
    return body["errors"][0]["type"]


# The architecture: the account logic does not know HTTP.


def test_account_logic_does_not_import_starlette():
    modules = "{{ cookiecutter.package }}.accounts, {{ cookiecutter.package }}.recovery"
    code = f"import sys, {modules}; print('starlette' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


# POST takes JSON only; GET runs queries, never mutations.


NOT_JSON = {
    "text/plain": {
        "content": json.dumps({"query": "{ __typename }"}),
        "headers": {"content-type": "text/plain"},
    },
    "form": {"data": {"query": "{ __typename }"}},
    "multipart": {"files": {"query": (None, "{ __typename }")}},
    "no content type": {"content": json.dumps({"query": "{ __typename }"})},
}


@pytest.mark.parametrize("path", ["/graphql", "/"])
def test_post_takes_json_only(service, path):
    for kind, body in NOT_JSON.items():
        response = httpx.post(service.url + path, **body)
        assert refusal(response, 415) == "UnsupportedMediaTypeError", kind
    with_charset = {"content-type": "application/json; charset=utf-8"}
    response = httpx.post(
        service.url + path,
        content=json.dumps({"query": "{ __typename }"}),
        headers=with_charset,
    )
    assert response.json() == {"data": {"__typename": "Query"}}


def test_a_cross_site_form_cannot_log_in(service, client):
    """Login CSRF: an HTML form on another site can send text/plain, never JSON."""
    fields = registered(client)
    forged = json.dumps(
        {"query": LOGIN, "variables": {"email": fields["email"], "password": PASSWORD}}
    )
    response = httpx.post(
        f"{service.url}/graphql", content=forged, headers={"content-type": "text/plain"}
    )
    assert refusal(response, 415) == "UnsupportedMediaTypeError"
    assert "set-cookie" not in response.headers


def test_get_runs_a_query(service):
    email = f"{uuid.uuid4().hex}@example.org"
    params = {"query": EMAIL_AVAILABLE, "variables": json.dumps({"email": email})}
    response = httpx.get(f"{service.url}/graphql", params=params)
    assert response.json() == {"data": {"emailAvailable": True}}
    # Without a query, GET shows GraphiQL as before.
    explorer = httpx.get(f"{service.url}/graphql")
    assert explorer.status_code == 200
    assert explorer.headers["content-type"].startswith("text/html")


def test_get_never_runs_a_mutation(service, client):
    fields = {**registered(client), "email": f"{uuid.uuid4().hex}@example.org"}
    params = {"query": REGISTER, "variables": json.dumps({"fields": fields})}
    response = httpx.get(f"{service.url}/graphql", params=params)
    assert refusal(response, 405) == "MethodNotAllowedError"
    assert response.headers["allow"] == "POST"
    assert client(EMAIL_AVAILABLE, {"email": fields["email"]}) == {
        "data": {"emailAvailable": True}
    }


def test_get_picks_the_operation_by_name(service):
    document = "query Q { __typename } mutation M { logout }"
    query = httpx.get(
        f"{service.url}/graphql", params={"query": document, "operationName": "Q"}
    )
    assert query.json() == {"data": {"__typename": "Query"}}
    mutation = httpx.get(
        f"{service.url}/graphql", params={"query": document, "operationName": "M"}
    )
    assert refusal(mutation, 405) == "MethodNotAllowedError"


# The refresh cookie answers to the service's own origin and AUTH_CORS_ORIGINS only.


def test_only_own_and_allowed_origins_use_the_cookie(service, client):
    logged_in(client, registered(client))
    cookie = f"refreshToken={client.http.cookies.get('refreshToken')}"
    # A different port is a different origin; sandboxed pages send "null".
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1"):
        for document in (REFRESH, LOGOUT):
            response = post(service.url, document, cookie=cookie, origin=origin)
            assert refusal(response, 403) == "UnauthorizedError", origin
            assert "set-cookie" not in response.headers
    # Nothing ran: the session neither rotated nor ended. The service's own
    # origin, the allowed one and clients that send no Origin use the cookie.
    for origin in (service.url, ALLOWED_ORIGIN, None):
        headers = {"origin": origin} if origin else {}
        result = client(REFRESH, **headers)
        assert "errors" not in result, (origin, result)
    # Without the cookie, an Origin changes nothing.
    fields = registered(client)
    response = post(
        service.url,
        LOGIN,
        {"email": fields["email"], "password": PASSWORD},
        origin="https://evil.example",
    )
    assert "errors" not in response.json()
    # CORS answers the allowed origin only.
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    allowed = httpx.options(
        f"{service.url}/graphql", headers={"origin": ALLOWED_ORIGIN, **preflight}
    )
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    foreign = httpx.options(
        f"{service.url}/graphql",
        headers={"origin": "https://evil.example", **preflight},
    )
    assert "access-control-allow-origin" not in foreign.headers


# Settings a browser would betray stop `serve` at start.


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"AUTH_CORS_ORIGINS": "*"}, "AUTH_CORS_ORIGINS"),
        ({"AUTH_CORS_ORIGINS": "https://app.example, *"}, "AUTH_CORS_ORIGINS"),
        ({"AUTH_COOKIE_SAMESITE": "none"}, "AUTH_COOKIE_SAMESITE"),
    ],
)
def test_unsafe_browser_settings_stop_serve(tmp_path, env, variable):
    refused = Service(
        tmp_path, {**service_env(tmp_path), **env}
    )  # its public URL is http://
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package }}",
        "serve",
        "--port",
        str(refused.port),
    ]
    try:
        result = subprocess.run(
            command,
            cwd=tmp_path,
            env=refused.env,
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve started with {env}")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert variable in output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output


# Cookies: host-only unless AUTH_COOKIE_DOMAIN says otherwise; Path from the public URL.


def cookie_attributes(service: Service) -> dict[str, str]:
    client = service.client()
    fields = registered(client)
    response = post(
        service.url, LOGIN, {"email": fields["email"], "password": PASSWORD}
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("refreshToken=")
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (part.partition("=") for part in cookie.split(";")[1:])
    }


def test_the_cookie_is_host_only_by_default(start):
    attributes = cookie_attributes(start(public_url="http://auth.example.test/"))
    assert "domain" not in attributes
    assert attributes["path"] == "/"


def test_cookie_domain_and_path(start):
    service = start(
        public_url="https://auth.example.test/accounts/",
        AUTH_COOKIE_DOMAIN="example.test",
        AUTH_COOKIE_SAMESITE="none",
    )
    attributes = cookie_attributes(service)
    assert attributes["domain"] == "example.test"
    assert attributes["path"] == "/accounts"
    assert attributes["samesite"].lower() == "none"
    assert "secure" in attributes and "httponly" in attributes


# Security headers.

FRAMING = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def policy_of(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    directives = (
        part.strip().partition(" ")
        for part in response.headers["content-security-policy"].split(";")
    )
    return {name: sources for name, _, sources in directives if name}


def assert_locked_page(response: httpx.Response) -> dict[str, str]:
    for name, value in FRAMING.items():
        assert response.headers.get(name) == value, name
    assert response.headers["cache-control"] == "no-store"
    policy = policy_of(response)
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy.get("script-src", "")
    # The page's own scripts carry the policy's nonce; no other script runs.
    for script in re.findall(r"<script[^>]*>", response.text):
        nonce = re.search(r'nonce="([^"]+)"', script)
        assert nonce and f"'nonce-{nonce.group(1)}'" in policy["script-src"], script
    return policy


def test_pages_behind_the_links_are_locked_down(service, client, smtp):
    fields = registered(client)
    confirmation = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    assert_locked_page(httpx.get(confirmation))
    assert_locked_page(httpx.get(f"{service.url}/user/email/confirmation?token=wrong"))
    assert client(SEND_RECOVERY, {"email": fields["email"]}) == {
        "data": {"sendPasswordRecoveryEmail": True}
    }
    reset = link_in(mail_to(smtp, fields["email"], 2), "/form/reset/password")
    form = httpx.get(reset)
    policy = assert_locked_page(form)
    assert policy["form-action"] == "'self'"
    assert "<script nonce=" in form.text
    # Two pages never share a nonce.
    assert policy_of(httpx.get(reset))["script-src"] != policy["script-src"]
    outcome = httpx.post(
        reset,
        data={
            "password": "a new password",
            "confirmation": "a new password",
            "token": token_of(reset),
        },
    )
    assert outcome.status_code == 200
    assert_locked_page(outcome)


def test_graphiql_states_what_it_loads(service):
    response = httpx.get(f"{service.url}/graphql")
    for name, value in FRAMING.items():
        assert response.headers.get(name) == value, name
    policy = policy_of(response)
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    # Its files come from the service itself, pinned by their hashes; nothing inline runs.
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert "<script>" not in response.text
    for path, integrity in re.findall(
        r'(?:src|href)="(graphiql/[^"]+)" integrity="sha384-([^"]+)"', response.text
    ):
        asset = httpx.get(f"{service.url}/{path}")
        assert asset.status_code == 200
        assert (
            base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
            == integrity
        ), path


def test_api_responses_are_not_sniffed_nor_framed(service):
    for response in (
        httpx.post(f"{service.url}/graphql", json={"query": "{ __typename }"}),
        httpx.get(f"{service.url}/healthz"),
        httpx.get(f"{service.url}/.well-known/jwks.json"),
    ):
        for name, value in FRAMING.items():
            assert response.headers.get(name) == value, (response.url, name)
        assert policy_of(response)["frame-ancestors"] == "'none'"


# Introspection.


def test_introspection_off_refuses_schema_queries_and_hides_graphiql(start):
    service = start(AUTH_INTROSPECTION="false")
    client = service.client()
    for document in (
        "{ __schema { types { name } } }",
        '{ __type(name: "User") { name } }',
    ):
        result = client(document)
        assert "data" not in result
        assert error_type(result) == "GraphQLValidationError"
        assert "introspection" in result["errors"][0]["message"].lower()
    assert client("{ __typename }") == {"data": {"__typename": "Query"}}
    assert httpx.get(f"{service.url}/graphql").status_code == 404


# The client address behind trusted proxies.


@pytest.mark.parametrize(
    "setting, hops",
    [({"AUTH_TRUSTED_PROXIES": "2"}, 2), ({"AUTH_TRUST_FORWARDED_FOR": "true"}, 1)],
    ids=["AUTH_TRUSTED_PROXIES=2", "AUTH_TRUST_FORWARDED_FOR"],
)
def test_forwarded_for_is_read_from_the_right(start, setting, hops):
    """What the client writes (left) never changes its address; the entry our
    outermost trusted proxy appended does."""
    service = start(**setting, AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS="3")
    client = service.client()

    def attempt(forged: str, real: str) -> str:
        chain = [forged, real] + [f"10.0.0.{n}" for n in range(1, hops)]
        email = f"{uuid.uuid4().hex}@example.org"
        result = client(
            LOGIN,
            {"email": email, "password": "wrong password"},
            **{"x-forwarded-for": ", ".join(chain)},
        )
        return error_type(result)

    for n in range(3):
        assert attempt(f"198.51.100.{n}", "203.0.113.7") == "UserNotFoundError"
    assert attempt("198.51.100.99", "203.0.113.7") == "TooManyRequestsError"
    assert attempt("203.0.113.7", "203.0.113.8") == "UserNotFoundError"


# Bad input: deep JSON.


def test_deeply_nested_json_is_a_bad_request(service):
    body = (
        '{"query": "{ __typename }", "variables": {"a": '
        + "[" * 50_000
        + "]" * 50_000
        + "}}"
    )
    response = httpx.post(
        f"{service.url}/graphql",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert refusal(response, 400) == "BadRequestError"
    assert httpx.get(f"{service.url}/healthz").status_code == 200


# Logs: no secret reaches them.


def test_no_link_token_reaches_the_log(service, client, smtp):
    fields = registered(client)
    confirmation = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    assert client(SEND_RECOVERY, {"email": fields["email"]}) == {
        "data": {"sendPasswordRecoveryEmail": True}
    }
    reset = link_in(mail_to(smtp, fields["email"], 2), "/form/reset/password")
    assert httpx.get(reset).status_code == 200
    assert httpx.get(confirmation).status_code == 200
    log: Path = service.log
    assert wait_until(lambda: log.read_text().count("token=[redacted]") >= 2)
    text = log.read_text()
    for link in (confirmation, reset):
        assert token_of(link) not in text
    # The mail lines name the kind and the recipient.
    assert f"(verify_email) sent to {fields['email']}" in text
    assert f"(reset_password_email) sent to {fields['email']}" in text
