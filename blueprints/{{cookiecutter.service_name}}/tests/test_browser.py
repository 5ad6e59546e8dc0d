"""A real browser against a started service: Debian's chromium driven by Playwright.

A page of an origin listed in AUTH_CORS_ORIGINS (a small static server on
another port: a different port is a different origin) logs in, refreshes and
calls `me` with `credentials: 'include'`; a page of an origin not listed
cannot use the cookie, whatever it tries; the pages behind the mailed links and
GraphiQL work under their Content-Security-Policy.

Skipped where chromium or Playwright is absent; no browser is downloaded.
"""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import MailSink, Service, free_port, service_env
from helpers import PASSWORD, registered
from test_mail import link_in, mail_to

CHROMIUM = Path("/usr/bin/chromium")
LOGIN = "mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"
REFRESH = "mutation { refreshToken { token } }"
ME = "{ me { email } }"
SEND_RECOVERY = "query ($email: String!) { sendPasswordRecoveryEmail(email: $email) }"

# Runs in the page: one GraphQL call as a browser app makes it.
CALL = """async ([url, query, variables, token]) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  try {
    const response = await fetch(url + "/graphql", {
      method: "POST", credentials: "include", headers, body: JSON.stringify({query, variables}),
    });
    return await response.json();
  } catch (error) {
    return {blocked: String(error)};
  }
}"""

# Runs in the page: submits a form that smuggles a JSON body in text/plain.
FORGED_FORM = """([url, name]) => {
  const form = Object.assign(document.createElement("form"), {method: "post", action: url + "/graphql"});
  form.enctype = "text/plain";
  form.append(Object.assign(document.createElement("input"), {name, value: '"}'}));
  document.body.append(form);
  form.submit();
}"""


class AppPage(BaseHTTPRequestHandler):
    """Another web app's page: an empty document its scripts run in."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>app</title><p>app</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    """(allowed, foreign): two app origins, served on two ports."""
    servers = [
        ThreadingHTTPServer(("127.0.0.1", free_port()), AppPage) for _ in range(2)
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tuple(f"http://127.0.0.1:{server.server_port}" for server in servers)  # type: ignore[misc]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink, origins: tuple[str, str]
) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("browser")
    running = Service(
        folder, {**service_env(folder, smtp), "AUTH_CORS_ORIGINS": origins[0]}
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "Playwright for Python is not installed (pip install playwright; no browser download needed)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile: its own cookie jar."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


def injected_script_runs(page: Any) -> bool:
    """Whether a script injected into the page (as by an XSS) would run: not
    under a policy that allows only the page's own scripts."""
    return page.evaluate("""() => { const script = document.createElement("script");
                   script.textContent = "window.injected = true;";
                   document.head.append(script);
                   return window.injected === true; }""")


def open_page(context: Any, url: str) -> tuple[Any, list[str]]:
    """A page at `url`, and the Content-Security-Policy violations it reports."""
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text
        and violations.append(message.text),
    )
    page.goto(url)
    return page, violations


def refresh_cookie(context: Any) -> str | None:
    return next(
        (
            cookie["value"]
            for cookie in context.cookies()
            if cookie["name"] == "refreshToken"
        ),
        None,
    )


def test_an_allowed_origin_uses_the_session_and_a_foreign_one_cannot_refresh(
    service, context, origins
):
    fields = registered(service.client())
    app, _ = open_page(context, origins[0])
    login = app.evaluate(
        CALL,
        [service.url, LOGIN, {"email": fields["email"], "password": PASSWORD}, None],
    )
    assert "errors" not in login, login
    first = refresh_cookie(context)
    assert first
    cookie = next(
        cookie for cookie in context.cookies() if cookie["name"] == "refreshToken"
    )
    assert cookie["httpOnly"] and cookie["domain"] == "127.0.0.1"  # host-only
    assert "refreshToken" not in app.evaluate("document.cookie")
    refreshed = app.evaluate(CALL, [service.url, REFRESH, None, None])
    assert "errors" not in refreshed, refreshed
    cookie = refresh_cookie(context)
    assert cookie not in (None, first)
    me = app.evaluate(
        CALL, [service.url, ME, None, refreshed["data"]["refreshToken"]["token"]]
    )
    assert me == {"data": {"me": {"email": fields["email"]}}}

    foreign, _ = open_page(context, origins[1])
    # A JSON call needs a CORS preflight the service does not grant.
    assert "blocked" in foreign.evaluate(CALL, [service.url, REFRESH, None, None])
    # A "simple" request needs none: text/plain, no-cors.
    foreign.evaluate(
        """async ([url, query]) => { await fetch(url + "/graphql", {method: "POST", mode: "no-cors",
             credentials: "include", headers: {"Content-Type": "text/plain"}, body: JSON.stringify({query})}); }""",
        [service.url, REFRESH],
    )
    # Nor can a form it submits (a top-level navigation, cookie included): its
    # text/plain body reads {"query": "mutation { refreshToken { token } }", "x": "="}.
    with foreign.expect_navigation():
        foreign.evaluate(
            FORGED_FORM, [service.url, '{"query": "' + REFRESH + '", "x": "']
        )
    assert refresh_cookie(context) == cookie
    # The session is untouched: the allowed app still refreshes.
    assert "errors" not in app.evaluate(CALL, [service.url, REFRESH, None, None])


def test_the_reset_form_runs_its_script_under_its_policy(service, context, smtp):
    fields = registered(service.client())
    assert service.client()(SEND_RECOVERY, {"email": fields["email"]})["data"][
        "sendPasswordRecoveryEmail"
    ]
    link = link_in(mail_to(smtp, fields["email"], 2), "/form/reset/password")
    page, violations = open_page(context, link)
    page.fill("#password", "a brand new password")
    page.fill("#confirmation", "a brand new password")
    page.click("button[type=submit]")
    # The script answered in place: no navigation to the form's POST.
    page.wait_for_selector("#result:not(:empty)")
    assert "success" in page.get_attribute("#result", "class"), page.text_content(
        "#result"
    )
    assert page.url == link
    assert violations == []
    assert not injected_script_runs(page)
    login = service.client()(
        LOGIN, {"email": fields["email"], "password": "a brand new password"}
    )
    assert "errors" not in login


def test_confirmation_page_and_graphiql_break_no_policy(service, context, smtp):
    fields = registered(service.client())
    page, violations = open_page(
        context, link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    )
    assert fields["email"] in page.text_content("main")
    assert (
        page.evaluate("getComputedStyle(document.body).backgroundColor")
        == "rgb(244, 245, 247)"
    )  # styled
    assert violations == []
    assert not injected_script_runs(page)
    # GraphiQL's code comes from esm.sh, out of reach here: its inline scripts are what the policy decides.
    context.route("https://esm.sh/**", lambda route: route.abort())
    page, violations = open_page(context, f"{service.url}/graphql")
    page.wait_for_load_state("load")
    assert violations == []
    assert not injected_script_runs(page)
    assert httpx.get(f"{service.url}/healthz").status_code == 200
