"""The audit trail over HTTP: every account flow leaves its events, with the
client's address and user agent and the outcome; a user reads their own,
page by page; nothing secret is ever in one; old events are purged."""

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from conftest import MailSink, Service
from helpers import (
    DELETE_ME,
    LOGIN,
    LOGOUT,
    PASSWORD,
    REFRESH,
    UPDATE_ME,
    error_type,
    logged_in,
    post,
    registered,
    running_service,
)
from test_mail import RESET, SEND_RECOVERY, link_in, mail_to, token_of

from {{ cookiecutter.package }}.store import open_store

MY_EVENTS = (
    "query($limit: Int, $before: String) { myAuditEvents(limit: $limit, before: $before)"
    " { id at event actor outcome address userAgent details } }"
)
LOGOUT_EVERYWHERE = "mutation { logoutEverywhere }"
NEW_PASSWORD = "an entirely new password"
USER_AGENT = "AuditTest/1.0"


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink
) -> Iterator[Service]:
    """Reuse of a rotated refresh token is caught at once; logins are throttled
    after 3 failures of one address on one account."""
    with running_service(
        tmp_path_factory.mktemp("audit"),
        smtp,
        AUTH_REFRESH_REUSE_INTERVAL="0",
        AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS="3",
    ) as running:
        yield running


def browser(service: Service):
    client = service.client()
    client.http.headers["user-agent"] = USER_AGENT
    return client


def my_events(client: Any, limit: int = 100) -> list[dict[str, Any]]:
    result = client(MY_EVENTS, {"limit": limit})
    assert "errors" not in result, result
    return result["data"]["myAuditEvents"]


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(event, outcome), oldest first."""
    return [(event["event"], event["outcome"]) for event in reversed(events)]


def factor_events(client: Any) -> list[tuple[str, str]]:
    """(event, kind of factor) of the caller's second factor changes, oldest first."""
    return [
        (event["event"], json.loads(event["details"])["factor"])
        for event in reversed(my_events(client))
        if event["event"].startswith("second_factor_")
    ]


def jwt_subject(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sub"]


def stored_events(service: Service) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            return await store.list_audit_events(limit=100_000)
        finally:
            await store.close()

    return asyncio.run(read())


def test_a_users_life_is_in_their_audit_trail(service, smtp):
    client = browser(service)
    fields = registered(client)
    email = fields["email"]
    httpx.get(link_in(mail_to(smtp, email), "/user/email/confirmation"))
    wrong = client(LOGIN, {"email": email, "password": "not the password"})
    assert error_type(wrong) == "UserNotFoundError"
    logged_in(client, fields)
    assert "errors" not in client(REFRESH)
    new_email = f"{uuid.uuid4().hex[:12]}@example.org"
    assert "errors" not in client(UPDATE_ME, {"fields": {"email": new_email}})
    changed = client(
        UPDATE_ME,
        {"fields": {"password": NEW_PASSWORD, "previousPassword": PASSWORD}},
    )
    assert "errors" not in changed, changed
    client.token = changed["data"]["updateMe"]["token"]
    assert client(LOGOUT) == {"data": {"logout": True}}

    events = my_events(client)
    assert kinds(events) == [
        ("register", "success"),
        ("email_verified", "success"),
        ("login", "failure"),
        ("login", "success"),
        ("email_changed", "success"),
        ("password_changed", "success"),
        ("logout", "success"),
    ]
    for event in events:
        assert event["actor"] == "self"
        assert event["address"] == "127.0.0.1"
    # The registration and the login came from this browser; the confirmation link from another client.
    assert {e["userAgent"] for e in events if e["event"] != "email_verified"} == {
        USER_AGENT
    }
    change = next(e for e in events if e["event"] == "email_changed")
    assert json.loads(change["details"]) == {
        "previous_email": email,
        "email": new_email,
    }


def test_recovery_and_deletion_are_recorded(service, smtp):
    client = browser(service)
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    assert service.client()(SEND_RECOVERY, {"email": fields["email"]})
    token = token_of(link_in(mail_to(smtp, fields["email"], 2), "/form/reset/password"))
    reset = service.client()(RESET, {"password": NEW_PASSWORD, "token": token})
    assert "errors" not in reset, reset
    logged_in(client, {**fields, "password": NEW_PASSWORD})
    assert client(DELETE_ME, {"password": NEW_PASSWORD}) == {"data": {"deleteMe": True}}
    # The account is gone, its trail is not (until the retention ends).
    trail = [e for e in reversed(stored_events(service)) if e["user_id"] == user_id]
    assert [e["event"] for e in trail] == [
        "register",
        "login",
        "password_reset_requested",
        "password_reset",
        "login",
        "account_deleted",
    ]


def test_throttled_logins_and_refresh_token_reuse_are_recorded(service):
    client = browser(service)
    fields = registered(client)
    logged_in(client, fields)
    for _ in range(3):
        client(LOGIN, {"email": fields["email"], "password": "wrong password"})
    throttled = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert error_type(throttled) == "TooManyRequestsError"
    assert kinds(my_events(client)) == [
        ("register", "success"),
        ("login", "success"),
        *[("login", "failure")] * 3,
        ("login", "throttled"),
    ]

    other = browser(service)
    logged_in(other, registered(other))
    stolen = other.http.cookies.get("refreshToken")
    assert "errors" not in other(REFRESH)
    replay = post(service.url, REFRESH, cookie=f"refreshToken={stolen}").json()
    assert error_type(replay) == "UnauthorizedError"
    reuse = my_events(other, 1)[0]
    assert (reuse["event"], reuse["actor"], reuse["outcome"]) == (
        "refresh_token_reused",
        "system",
        "failure",
    )
    assert {
        e["user_id"] for e in stored_events(service) if e["_id"] == reuse["id"]
    } == {jwt_subject(other.token)}


def test_a_login_to_an_unknown_account_keeps_only_a_masked_address(service):
    client = browser(service)
    address = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    client(LOGIN, {"email": address, "password": PASSWORD})
    event = stored_events(service)[0]
    assert (event["event"], event["outcome"], event["user_id"]) == (
        "login",
        "failure",
        None,
    )
    assert event["details"] == {"email": "n***@e***.org"}


def test_session_ends_are_recorded(service):
    client = browser(service)
    logged_in(client, registered(client))
    assert client(LOGOUT_EVERYWHERE) == {"data": {"logoutEverywhere": True}}
    event = my_events(client, 1)[0]
    assert (event["event"], json.loads(event["details"])) == (
        "session_ended",
        {"sessions": "all"},
    )


def test_events_are_read_page_by_page_newest_first(service):
    client = browser(service)
    fields = registered(client)
    for _ in range(4):
        logged_in(client, fields)
    everything = my_events(client)
    assert len(everything) == 5
    pages, before = [], None
    while True:
        page = client(MY_EVENTS, {"limit": 2, "before": before})["data"][
            "myAuditEvents"
        ]
        if not page:
            break
        pages.append(page)
        before = page[-1]["id"]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [e for page in pages for e in page] == everything
    assert [e["at"] for e in everything] == sorted(
        (e["at"] for e in everything), reverse=True
    )


def test_a_user_reads_only_their_own_events_and_needs_a_token(service):
    mine, theirs = browser(service), browser(service)
    logged_in(mine, registered(mine))
    logged_in(theirs, registered(theirs))
    assert {json.dumps(e) for e in my_events(mine)}.isdisjoint(
        json.dumps(e) for e in my_events(theirs)
    )
    anonymous = service.client()
    assert error_type(anonymous(MY_EVENTS, {"limit": 5})) == "UnauthorizedError"


def test_no_secret_is_ever_in_an_event(service, smtp):
    """After every flow above (and a few more here): the stored events hold no
    password, no token, no hash of one."""
    client = browser(service)
    fields = registered(client)
    verification = token_of(
        link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    )
    secrets = [PASSWORD, NEW_PASSWORD, verification]
    login = logged_in(client, fields)
    secrets += [login["token"], client.http.cookies.get("refreshToken")]
    refreshed = client(REFRESH)["data"]["refreshToken"]["token"]
    secrets += [refreshed, client.http.cookies.get("refreshToken")]
    client(LOGIN, {"email": fields["email"], "password": NEW_PASSWORD})
    secrets += [hashlib.sha256(s.encode()).hexdigest() for s in list(secrets)]
    stored = json.dumps(stored_events(service), default=str)
    assert "$argon2" not in stored
    assert "password_hash" not in stored and "token_hash" not in stored
    for secret in secrets:
        assert secret not in stored


@pytest.fixture
def short_retention(tmp_path: Path) -> Iterator[Service]:
    with running_service(
        tmp_path, AUTH_AUDIT_RETENTION="1", AUTH_PURGE_INTERVAL="0.2"
    ) as running:
        yield running


def test_events_older_than_the_retention_are_purged(short_retention):
    client = short_retention.client()
    fields = registered(client)
    logged_in(client, fields)
    deadline = time.monotonic() + 10
    while my_events(client) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert my_events(client) == []
