"""Sessions over HTTP: refresh rotation under concurrency, reuse detection, and
which sessions a login or an email change ends.

Concurrency is real: parallel requests from threads to the started service,
each with the same cookie, as two tabs or Krypton's client (which logs in while
a refresh is in flight) send them.
"""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from conftest import Service
from helpers import (
    LOGIN,
    ME,
    PASSWORD,
    REFRESH,
    UPDATE_ME,
    error_type,
    logged_in,
    post,
    registered,
    running_service,
)

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]


def refresh(service: Service, cookie: str) -> httpx.Response:
    return post(service.url, REFRESH, cookie=f"refreshToken={cookie}")


def log_in(service: Service, fields: dict[str, Any], cookie: str) -> httpx.Response:
    variables = {"email": fields["email"], "password": PASSWORD}
    return post(service.url, LOGIN, variables, cookie=f"refreshToken={cookie}")


def new_cookie(response: httpx.Response) -> str:
    """The refresh cookie a successful answer sets."""
    assert "errors" not in response.json(), response.json()
    cookie = response.cookies.get("refreshToken")
    assert cookie, response.headers.get("set-cookie")
    return cookie


def refreshed(service: Service, cookie: str, user_id: str) -> str | None:
    """The next cookie, if this one refreshes into an auth token of the user."""
    response = refresh(service, cookie)
    result = response.json()
    if "errors" in result:
        return None
    token = result["data"]["refreshToken"]["token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == user_id
    return new_cookie(response)


def in_parallel(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Send the requests at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def briefly_reusable(tmp_path: Path) -> Iterator[Service]:
    """A service whose rotated refresh tokens continue their session for 2 seconds only."""
    with running_service(tmp_path, AUTH_REFRESH_REUSE_INTERVAL="2") as service:
        yield service


def test_concurrent_refreshes_with_one_cookie_all_keep_the_session(service, client):
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    cookie = client.http.cookies.get("refreshToken")
    responses = in_parallel(*[lambda: refresh(service, cookie)] * 20)
    cookies = [new_cookie(response) for response in responses]
    assert len(set(cookies)) == 20
    # Whichever answer the browser keeps, its cookie goes on refreshing.
    assert all(refreshed(service, each, user_id) for each in cookies)
    token = responses[0].json()["data"]["refreshToken"]["token"]
    assert (
        post(service.url, ME, authorization=f"Bearer {token}").json()["data"]["me"][
            "_id"
        ]
        == user_id
    )


def test_login_during_a_refresh_leaves_a_working_cookie_whichever_answer_comes_last(
    service, client
):
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    cookie = client.http.cookies.get("refreshToken")
    # The refresh answered first, then the login; and the other way round.
    for first, second in ((refresh, log_in), (log_in, refresh)):
        calls = {
            refresh: lambda: refresh(service, cookie),
            log_in: lambda: log_in(service, fields, cookie),
        }
        answers = [new_cookie(calls[first]()), new_cookie(calls[second]())]
        following = [refreshed(service, each, user_id) for each in answers]
        assert all(following), following
        cookie = following[-1]
    # And at the same moment, as Krypton's client sends them.
    for _ in range(5):
        responses = in_parallel(
            lambda: refresh(service, cookie), lambda: log_in(service, fields, cookie)
        )
        following = [
            refreshed(service, new_cookie(response), user_id) for response in responses
        ]
        assert all(following), following
        cookie = following[-1]


def test_login_continues_the_devices_own_session_and_ends_another_users(
    service, client
):
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    before = client.http.cookies.get("refreshToken")
    logged_in(client, fields)
    after = client.http.cookies.get("refreshToken")
    assert after != before
    # The cookie the login replaced is still part of the device's session (its
    # refresh may have been in flight), not a reason to end it.
    assert refreshed(service, before, user_id)
    assert refreshed(service, after, user_id)

    # Someone else logs in on this device: the previous user's session ends.
    other = registered(client)
    other_id = logged_in(client, other)["user"]["_id"]
    assert client.http.cookies.get("refreshToken") != after
    assert not refreshed(service, after, user_id)
    assert refreshed(service, client.http.cookies.get("refreshToken"), other_id)


def test_reuse_after_the_interval_revokes_the_whole_session(briefly_reusable):
    service = briefly_reusable
    client = service.client()
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    stolen = client.http.cookies.get("refreshToken")
    legitimate = new_cookie(refresh(service, stolen))
    # Within the interval the old cookie is a concurrent request: it continues the session.
    sibling = new_cookie(refresh(service, stolen))
    time.sleep(2.5)
    replay = refresh(service, stolen)
    assert error_type(replay.json()) == "UnauthorizedError"
    assert replay.cookies.get("refreshToken") in (None, "")
    # Every cookie of the session, however it was obtained, is revoked with it.
    assert not refreshed(service, legitimate, user_id)
    assert not refreshed(service, sibling, user_id)
    # Another session of the same user is not affected.
    other_device = service.client()
    logged_in(other_device, fields)
    assert "errors" not in other_device(REFRESH)


def test_an_email_change_ends_the_other_sessions_only(service):
    laptop, phone = service.client(), service.client()
    fields = registered(laptop)
    user_id = logged_in(laptop, fields)["user"]["_id"]
    logged_in(phone, fields)
    phone_cookie = phone.http.cookies.get("refreshToken")
    result = laptop(UPDATE_ME, {"fields": {"email": f"{uuid.uuid4().hex}@example.org"}})
    assert "errors" not in result, result
    assert not refreshed(service, phone_cookie, user_id)
    # The device that made the change goes on.
    assert "errors" not in laptop(REFRESH)
    assert refreshed(service, laptop.http.cookies.get("refreshToken"), user_id)
