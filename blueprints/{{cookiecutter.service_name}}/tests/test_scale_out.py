"""Two instances on one PostgreSQL, started separately as two hosts would run
them (own folders and ports, the same key files): they share accounts,
sessions, throttling and the mail outbox."""

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import MailSink, Service, postgresql_database, service_env
from helpers import (
    LOGIN,
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    REGISTER,
    error_type,
    logged_in,
    post,
    registration,
)

from {{ cookiecutter.package }}.store import open_store

PAIR_LIMIT = 3


@pytest.fixture(scope="module")
def instances(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink
) -> Iterator[list[Service]]:
    """Two started instances on one fresh PostgreSQL database."""
    with postgresql_database() as url:
        folders = [tmp_path_factory.mktemp("instance") for _ in range(2)]
        keys = service_env(folders[0])
        started = []
        try:
            for folder in folders:
                env = service_env(folder, smtp)
                env.update(
                    AUTH_DATABASE_URL=url,
                    # Only the keys are an instance's own: every instance reads the same files.
                    AUTH_PRIVATE_KEY_FILE=keys["AUTH_PRIVATE_KEY_FILE"],
                    AUTH_PUBLIC_KEY_FILE=keys["AUTH_PUBLIC_KEY_FILE"],
                    AUTH_REFRESH_REUSE_INTERVAL="0",
                    AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS=str(PAIR_LIMIT),
                    AUTH_MAIL_POLL_INTERVAL="0.1",
                )
                service = Service(folder, env)
                service.start()  # one after the other: the first creates the keys and the schema
                started.append(service)
            yield started
        finally:
            for service in started:
                service.stop()


def on(service: Service, client: httpx.Client) -> httpx.Client:
    """The same browser (cookies) talking to another instance."""
    client.base_url = httpx.URL(service.url)
    return client


def test_a_session_opened_on_one_instance_is_refreshed_on_the_other(instances):
    first, second = instances
    client = first.client()
    fields = registration()
    assert client(REGISTER, {"fields": fields}) == {"data": {"register": True}}
    logged_in(client, fields)
    # The auth token of one instance is good on the other (same keys).
    me = post(second.url, ME, authorization=f"Bearer {client.token}").json()
    assert me["data"]["me"]["email"] == fields["email"]
    issued = client.http.cookies["refreshToken"]
    answer = on(second, client.http).post("/graphql", json={"query": REFRESH}).json()
    assert answer["data"]["refreshToken"]["token"]
    rotated = client.http.cookies["refreshToken"]
    assert rotated != issued
    # The token the first instance issued is spent everywhere: replayed there, it ends the session.
    replay = post(first.url, REFRESH, cookie=f"refreshToken={issued}").json()
    assert replay["data"]["refreshToken"] is None and "errors" in replay
    assert "errors" in post(first.url, REFRESH, cookie=f"refreshToken={rotated}").json()


def test_a_logout_on_one_instance_racing_a_refresh_on_the_other_ends_the_session(
    instances,
):
    """Whichever comes first, the cookie a racing refresh hands out is dead too."""
    first, second = instances
    fields = registration()
    assert first.client()(REGISTER, {"fields": fields}) == {"data": {"register": True}}
    login = {"email": fields["email"], "password": PASSWORD}
    cookies = [post(first.url, LOGIN, login).cookies["refreshToken"] for _ in range(30)]
    calls = []
    for cookie in cookies:
        calls += [(first.url, REFRESH, cookie), (second.url, LOGOUT, cookie)]
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(
            pool.map(
                lambda call: post(call[0], call[1], cookie=f"refreshToken={call[2]}"),
                calls,
            )
        )
    handed_out = [answer.cookies.get("refreshToken") for answer in answers[::2]]
    for cookie in filter(None, handed_out):
        assert (
            "errors"
            in post(second.url, REFRESH, cookie=f"refreshToken={cookie}").json()
        )


def test_failed_logins_count_on_every_instance(instances):
    fields = registration()
    assert instances[0].client()(REGISTER, {"fields": fields}) == {
        "data": {"register": True}
    }
    variables = {"email": fields["email"], "password": "wrong password"}
    answers = [
        error_type(post(instances[i % 2].url, LOGIN, variables).json())
        for i in range(PAIR_LIMIT + 1)
    ]
    assert answers == ["UserNotFoundError"] * PAIR_LIMIT + ["TooManyRequestsError"]
    right = {"email": fields["email"], "password": PASSWORD}
    assert (
        error_type(post(instances[0].url, LOGIN, right).json())
        == "TooManyRequestsError"
    )


def test_every_mail_is_sent_once(instances, smtp):
    """Both instances' workers drain the one outbox; each mail goes out once."""
    emails = []
    for i in range(8):
        fields = registration()
        assert instances[i % 2].client()(REGISTER, {"fields": fields}) == {
            "data": {"register": True}
        }
        emails.append(fields["email"])
    for email in emails:
        assert len(smtp.wait_for(email)) == 1
    time.sleep(1)  # time for a second delivery, were there one
    assert all(len(smtp.wait_for(email, timeout=0)) == 1 for email in emails)


def test_the_same_keys_sign_on_every_instance(instances):
    keys = [
        httpx.get(f"{service.url}/.well-known/jwks.json").json()
        for service in instances
    ]
    assert keys[0] == keys[1]
    assert Path(instances[0].env["AUTH_PRIVATE_KEY_FILE"]) == Path(
        instances[1].env["AUTH_PRIVATE_KEY_FILE"]
    )


def test_instances_starting_together_migrate_one_at_a_time():
    """Each start syncs the schema; on one new database at once, one creates it, the others find it done."""

    async def start_together(url: str, count: int) -> None:
        stores = [open_store(url) for _ in range(count)]
        try:
            await asyncio.gather(*(store.open() for store in stores))
        finally:
            for store in stores:
                await store.close()

    with postgresql_database() as url:
        asyncio.run(start_together(url, 4))
