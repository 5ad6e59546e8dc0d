"""Abuse resistance, tried as an attacker would: parallel guesses, many
hashes in one request, mail floods, timing of lookups, full scans, readable
files, records kept forever.

Each test talks HTTP to a started service (with small limits set through the
environment) and reads mails from a real SMTP sink; the store or the database
file is only opened to look at what was kept.
"""

import asyncio
import datetime as dt
import re
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import MailSink, Service
from helpers import (
    DELETE_ME,
    EMAIL_AVAILABLE,
    LOGIN,
    PASSWORD,
    REGISTER,
    UPDATE_ME,
    error_type,
    post,
    registered,
    registration,
    running_service,
    sample_value,
)

from {{ cookiecutter.package }}.models import FIELDS
from {{ cookiecutter.package }}.store import open_store
from {{ cookiecutter.package }}.tokens import hash_secret

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]

SEND_RECOVERY = "query ($email: String!) { sendPasswordRecoveryEmail(email: $email) }"
SEND_VERIFICATION = "{ sendVerificationEmail }"
#: Failed password checks allowed per (account, address), per account and per address.
PAIR_LIMIT, ACCOUNT_LIMIT, ADDRESS_LIMIT = 5, 12, 30
MAIL_LIMIT = 3
EMAIL_AVAILABLE_LIMIT = 10


@pytest.fixture(scope="module")
def abuse(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink
) -> Iterator[Service]:
    with running_service(
        tmp_path_factory.mktemp("abuse"),
        smtp,
        AUTH_TRUST_FORWARDED_FOR="true",
        AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS=str(PAIR_LIMIT),
        AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT=str(ACCOUNT_LIMIT),
        AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS=str(ADDRESS_LIMIT),
        AUTH_MAIL_MAX_PER_RECIPIENT=str(MAIL_LIMIT),
        AUTH_EMAIL_AVAILABLE_MAX_PER_ADDRESS=str(EMAIL_AVAILABLE_LIMIT),
    ) as running:
        yield running


def outcome(response: httpx.Response) -> str | None:
    """The error type of a one-field answer, or None when it succeeded."""
    result = response.json()
    return error_type(result) if result.get("errors") else None


def login(service: Service, email: str, password: str, address: str) -> str | None:
    variables = {"email": email, "password": password}
    return outcome(post(service.url, LOGIN, variables, **{"x-forwarded-for": address}))


def in_parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    """`count` calls at once, each on its own thread and connection."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def session(service: Service, fields: dict[str, Any], address: str) -> tuple[str, str]:
    """A login's auth token and refresh cookie."""
    variables = {"email": fields["email"], "password": fields["password"]}
    response = post(service.url, LOGIN, variables, **{"x-forwarded-for": address})
    return response.json()["data"]["login"]["token"], response.cookies["refreshToken"]


# Login throttling (items 3 and 4).


def test_simultaneous_wrong_logins_are_checked_at_most_the_limit(abuse):
    fields = registered(abuse.client())
    answers = in_parallel(
        40, lambda _: login(abuse, fields["email"], "wrong password", "10.1.0.1")
    )
    assert set(answers) <= {"UserNotFoundError", "TooManyRequestsError"}
    assert answers.count("UserNotFoundError") <= PAIR_LIMIT
    # A burst may refuse more than it must, never less: one at a time, the rest of the limit is used.
    for _ in range(PAIR_LIMIT + 1):
        answers.append(login(abuse, fields["email"], "wrong password", "10.1.0.1"))
    assert answers.count("UserNotFoundError") == PAIR_LIMIT


def test_failures_from_one_address_do_not_lock_the_user_out(abuse):
    fields = registered(abuse.client())
    for _ in range(PAIR_LIMIT):
        assert (
            login(abuse, fields["email"], "wrong password", "10.2.0.1")
            == "UserNotFoundError"
        )
    assert login(abuse, fields["email"], PASSWORD, "10.2.0.1") == "TooManyRequestsError"
    # The user, from an address that has not failed, still logs in.
    assert login(abuse, fields["email"], PASSWORD, "10.2.0.2") is None
    # Guesses spread over many addresses meet the account-wide limit.
    for number in range(ACCOUNT_LIMIT - PAIR_LIMIT):
        assert (
            login(abuse, fields["email"], "wrong password", f"10.2.1.{number}")
            == "UserNotFoundError"
        )
    assert login(abuse, fields["email"], PASSWORD, "10.2.0.3") == "TooManyRequestsError"


def test_update_me_and_delete_me_count_toward_the_same_limits(abuse):
    fields = registered(abuse.client())
    address = "10.3.0.1"
    token, cookie = session(abuse, fields, address)
    headers = {
        "authorization": f"Bearer {token}",
        "cookie": f"refreshToken={cookie}",
        "x-forwarded-for": address,
    }
    change = {
        "fields": {
            "password": "a brand new password",
            "previousPassword": "wrong password",
        }
    }
    for _ in range(2):
        response = post(abuse.url, UPDATE_ME, change, **headers)
        assert outcome(response) == "WrongPasswordError"
        headers["cookie"] = f"refreshToken={response.cookies['refreshToken']}"
    for _ in range(PAIR_LIMIT - 2):
        assert (
            outcome(
                post(abuse.url, DELETE_ME, {"password": "wrong password"}, **headers)
            )
            == "WrongPasswordError"
        )
    assert (
        outcome(post(abuse.url, DELETE_ME, {"password": PASSWORD}, **headers))
        == "TooManyRequestsError"
    )
    assert login(abuse, fields["email"], PASSWORD, address) == "TooManyRequestsError"


def test_update_me_without_the_refresh_cookie_is_no_password_oracle(abuse):
    fields = registered(abuse.client())
    token, _ = session(abuse, fields, "10.4.0.1")
    for guess in ("wrong password", PASSWORD):
        change = {
            "fields": {"password": "a brand new password", "previousPassword": guess}
        }
        response = post(abuse.url, UPDATE_ME, change, authorization=f"Bearer {token}")
        assert outcome(response) == "UnauthorizedError"
    assert login(abuse, fields["email"], PASSWORD, "10.4.0.1") is None


# One password hash per request (item 5).


def test_one_request_hashes_one_password_at_most(abuse):
    fields = registered(abuse.client())
    address = "10.5.0.1"
    guesses = " ".join(
        f'g{number}: login(email: "{fields["email"]}", password: "guess {number}")'
        + " { token }"
        for number in range(30)
    )
    spread = (
        'mutation { ...guess login(email: "a@example.org", password: "x") { token } }'
        ' fragment guess on Mutation { other: login(email: "b@example.org", password: "y") { token } }'
    )
    mixed = 'mutation($fields: UserRegisterInput!) { register(fields: $fields) deleteMe(password: "x") }'
    for query, variables in (
        ("mutation { " + guesses + " }", None),
        (spread, None),
        (mixed, {"fields": registration()}),
    ):
        result = post(
            abuse.url, query, variables, **{"x-forwarded-for": address}
        ).json()
        assert result.get("data") is None
        assert result["errors"][0]["type"] == "TooManyPasswordChecksError"
        assert result["errors"][0]["extensions"]["type"] == "TooManyPasswordChecksError"
    # Nothing was checked: the address has no failure.
    for _ in range(PAIR_LIMIT):
        assert (
            login(abuse, fields["email"], "wrong password", address)
            == "UserNotFoundError"
        )


# Mail limits (item 6).


def test_recovery_mail_floods_reach_the_mailbox_the_limit_only(abuse, smtp):
    fields = registered(abuse.client())
    smtp.wait_for(fields["email"])  # the confirmation mail
    aliased = " ".join(
        f'r{number}: sendPasswordRecoveryEmail(email: "{fields["email"]}")'
        for number in range(30)
    )
    answers = in_parallel(5, lambda _: post(abuse.url, "{ " + aliased + " }").json())
    for answer in answers:
        assert "errors" not in answer, answer
        assert set(answer["data"].values()) == {True}

    def recovery_mails() -> int:
        mails = smtp.wait_for(fields["email"], count=MAIL_LIMIT + 2, timeout=2)
        return len(
            [
                mail
                for mail in mails
                if "/form/reset/password" in mail.get_body(("plain",)).get_content()
            ]
        )

    assert recovery_mails() <= MAIL_LIMIT
    # A burst may send fewer than it may, never more: one at a time, the rest of the limit is sent.
    for _ in range(MAIL_LIMIT):
        assert post(abuse.url, SEND_RECOVERY, {"email": fields["email"]}).json()["data"]
        time.sleep(0.2)
    assert recovery_mails() == MAIL_LIMIT


def test_verification_mails_are_limited_per_recipient(abuse, smtp):
    fields = registered(abuse.client())
    token, _ = session(abuse, fields, "10.6.0.1")

    def send(_: int) -> str | None:
        return outcome(
            post(abuse.url, SEND_VERIFICATION, authorization=f"Bearer {token}")
        )

    answers = in_parallel(8, send)
    assert set(answers) <= {None, "TooManyRequestsError"}
    assert answers.count(None) <= MAIL_LIMIT
    answers += [send(0) for _ in range(MAIL_LIMIT + 1)]
    assert answers.count(None) == MAIL_LIMIT
    assert (
        len(smtp.wait_for(fields["email"], count=MAIL_LIMIT + 2, timeout=2))
        == 1 + MAIL_LIMIT
    )


def test_email_changes_cannot_flood_an_address(abuse, smtp):
    victim = "flooded@example.org"
    fields = registered(abuse.client())
    token, cookie = session(abuse, fields, "10.6.1.1")
    answers = []
    for email in [victim, fields["email"]] * MAIL_LIMIT + [victim]:
        headers = {
            "authorization": f"Bearer {token}",
            "cookie": f"refreshToken={cookie}",
        }
        response = post(abuse.url, UPDATE_ME, {"fields": {"email": email}}, **headers)
        answers.append(outcome(response))
        if answers[-1] is None:
            token = response.json()["data"]["updateMe"]["token"]
            cookie = response.cookies["refreshToken"]
    assert answers == [None] * 2 * MAIL_LIMIT + ["TooManyRequestsError"]
    # Switching back notifies the victim as the old address; those notices
    # come one per confirmation mail, so they are bounded by the same limit.
    mails = smtp.wait_for(victim, count=2 * MAIL_LIMIT + 1, timeout=2)
    confirmations = [m for m in mails if "/user/email/confirmation" in m.as_string()]
    assert len(confirmations) == MAIL_LIMIT
    assert len(mails) == 2 * MAIL_LIMIT


def test_registrations_per_address_are_limited_when_configured(make_service):
    service = make_service(
        AUTH_REGISTER_MAX_PER_ADDRESS="3", AUTH_TRUST_FORWARDED_FOR="true"
    )

    def register(address: str) -> str | None:
        return outcome(
            post(
                service.url,
                REGISTER,
                {"fields": registration()},
                **{"x-forwarded-for": address},
            )
        )

    assert [register("10.7.0.1") for _ in range(4)] == [
        None,
        None,
        None,
        "TooManyRequestsError",
    ]
    assert register("10.7.0.2") is None


# What timing tells (item 7).


def median_durations(
    client: httpx.Client, calls: list[tuple[str, dict, dict]], rounds: int
) -> list[float]:
    """The median duration of each call, measured in turns."""
    durations: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for index, (query, variables, headers) in enumerate(calls):
            start = time.perf_counter()
            response = client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers=headers,
            )
            durations[index].append(time.perf_counter() - start)
            assert "errors" not in response.json(), response.json()
    return [statistics.median(each) for each in durations]


def test_recovery_and_email_available_take_as_long_for_unknown_addresses(abuse):
    fields = registered(abuse.client())
    unknown = "nobody-here@example.org"
    with httpx.Client(base_url=abuse.url) as client:
        known_time, unknown_time = median_durations(
            client,
            [
                (SEND_RECOVERY, {"email": email}, {})
                for email in (fields["email"], unknown)
            ],
            50,
        )
        assert (
            abs(known_time - unknown_time)
            < 0.2 * max(known_time, unknown_time) + 0.0005
        )
        addresses = iter(
            f"10.8.{number // 200}.{number % 200}" for number in range(1000)
        )
        calls = [
            (EMAIL_AVAILABLE, {"email": email}, {})
            for email in (fields["email"], unknown)
        ]
        known = [[], []]
        for _ in range(50):
            for index, call in enumerate(calls):
                headers = {"x-forwarded-for": next(addresses)}
                known[index].append(
                    median_durations(client, [(call[0], call[1], headers)], 1)[0]
                )
        known_time, unknown_time = (statistics.median(times) for times in known)
        assert (
            abs(known_time - unknown_time)
            < 0.2 * max(known_time, unknown_time) + 0.0005
        )


def test_email_available_is_throttled_per_address(abuse):
    def available(address: str) -> str | None:
        return outcome(
            post(
                abuse.url,
                EMAIL_AVAILABLE,
                {"email": "someone@example.org"},
                **{"x-forwarded-for": address},
            )
        )

    answers = in_parallel(EMAIL_AVAILABLE_LIMIT + 5, lambda _: available("10.9.0.1"))
    assert set(answers) <= {None, "TooManyRequestsError"}
    assert answers.count(None) <= EMAIL_AVAILABLE_LIMIT
    # A burst may refuse more than it must, never less: one at a time, the rest of the limit is used.
    answers += [available("10.9.0.1") for _ in range(EMAIL_AVAILABLE_LIMIT + 1)]
    assert answers.count(None) == EMAIL_AVAILABLE_LIMIT
    assert available("10.9.0.2") is None


# Public queries (item 10).

EQUALITY_FIELDS = [
    name for name, field in FIELDS.items() if field.public and not field.list
]


@pytest.mark.parametrize(
    "name",
    EQUALITY_FIELDS or [pytest.param(None, marks=pytest.mark.skip("no public field"))],
)
def test_public_filters_are_served_from_an_index(abuse, name):
    """A stranger's equality filter on any public field, paged in id order, searches an index."""
    url = abuse.env["AUTH_DATABASE_URL"]
    if not url.startswith("sqlite:"):
        pytest.skip("the query plan is read from SQLite")
    value = sample_value(FIELDS[name], 1)
    query = "query($filter: FilterFindManyUserPublicInfoInput) { userMany(filter: $filter) { _id } }"
    result = post(abuse.url, query, {"filter": {name: value}}).json()
    assert "errors" not in result, result
    with sqlite3.connect(url.removeprefix("sqlite:///")) as database:
        plan = database.execute(
            f'EXPLAIN QUERY PLAN SELECT _id FROM users WHERE "{name}" = ? ORDER BY _id LIMIT 100',
            (value,),
        ).fetchall()
    details = " ".join(row[-1] for row in plan)
    assert "SEARCH users USING" in details and "SCAN" not in details, details


# Data at rest (item 12).


def test_files_are_readable_by_the_owner_only(make_service):
    service = make_service()  # no SMTP: mails go to the outbox folder
    fields = registered(service.client())
    outbox = Path(service.env["AUTH_OUTBOX_DIR"])
    deadline = time.monotonic() + 10
    while not list(outbox.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.1)

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    assert mode(outbox) == 0o700
    assert [mode(mail) for mail in outbox.glob("*.eml")] == [0o600]
    keys = Path(service.env["AUTH_PRIVATE_KEY_FILE"]).parent
    assert mode(keys) == 0o700
    assert {mode(key) for key in keys.iterdir()} == {0o600}
    url = service.env["AUTH_DATABASE_URL"]
    if url.startswith("sqlite:"):
        database = Path(url.removeprefix("sqlite:///"))
        assert {mode(path) for path in database.parent.glob(database.name + "*")} == {
            0o600
        }
    assert fields


def test_old_records_are_purged_on_a_schedule(make_service, smtp):
    windows = {
        name: "1"
        for name in (
            "AUTH_LOGIN_FAILURE_WINDOW",
            "AUTH_MAIL_LIMIT_WINDOW",
            "AUTH_EMAIL_AVAILABLE_WINDOW",
            "AUTH_PASSKEY_OPTIONS_WINDOW",
            "AUTH_REGISTER_WINDOW",
            "AUTH_MAIL_RETENTION",
            "AUTH_RECOVERY_TOKEN_TTL",
            "AUTH_VERIFICATION_TOKEN_TTL",
        )
    }
    service = make_service(smtp, AUTH_PURGE_INTERVAL="0.3", **windows)
    fields = registered(service.client())
    assert (
        login(service, fields["email"], "wrong password", "127.0.0.1")
        == "UserNotFoundError"
    )
    assert post(service.url, SEND_RECOVERY, {"email": fields["email"]}).json()["data"]
    links = [link_in(mail) for mail in smtp.wait_for(fields["email"], count=2)]
    assert len(links) == 2

    async def kept() -> tuple[int, int]:
        """The account's attempts and mails still stored."""
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
            key = f"password-account:{fields['email']}"
            attempts = (await store.count_attempts({key: since}))[key]
            mails = [
                mail
                for mail in await store.list_mails()
                if mail["recipient"] == fields["email"]
            ]
            return attempts, len(mails)
        finally:
            await store.close()

    deadline = time.monotonic() + 10
    while (left := asyncio.run(kept())) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert left == (0, 0)

    async def stored_links() -> list[Any]:
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            return [
                await store.consume_user_token(
                    hash_secret(httpx.URL(link).params["token"]), purpose
                )
                for link, purpose in zip(links, ("verify_email", "reset_password"))
            ]
        finally:
            await store.close()

    assert asyncio.run(stored_links()) == [None, None]


def link_in(mail: Any) -> str:
    return re.search(
        r"https?://\S+token=\S+", mail.get_body(("plain",)).get_content()
    ).group(0)
