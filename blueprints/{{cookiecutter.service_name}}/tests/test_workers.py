"""Several worker processes share nothing but the database and the key files:
sessions, tokens and login throttling work whichever worker a request reaches."""

import pytest
from conftest import Service, service_env
from helpers import LOGIN, ME, PASSWORD, REFRESH, error_type, post, registered


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers")
    env = {**service_env(folder), "AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT": "3"}
    running = Service(folder, env, workers=2)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_sessions_and_tokens_work_on_every_worker(workers):
    fields = registered(workers.client())
    # Each request opens a new connection, so the kernel spreads them over the workers.
    login = post(workers.url, LOGIN, {"email": fields["email"], "password": PASSWORD})
    token = login.json()["data"]["login"]["token"]
    cookie = login.cookies["refreshToken"]
    for _ in range(8):
        me = post(workers.url, ME, authorization=f"Bearer {token}").json()
        assert me["data"]["me"]["email"] == fields["email"].lower()
        refreshed = post(workers.url, REFRESH, cookie=f"refreshToken={cookie}")
        assert "errors" not in refreshed.json(), refreshed.json()
        token = refreshed.json()["data"]["refreshToken"]["token"]
        cookie = refreshed.cookies["refreshToken"]


def test_login_throttling_is_shared_by_the_workers(workers):
    fields = registered(workers.client())
    wrong = {"email": fields["email"], "password": "wrong password"}
    for _ in range(3):
        assert error_type(post(workers.url, LOGIN, wrong).json()) == "UserNotFoundError"
    right = {"email": fields["email"], "password": PASSWORD}
    for _ in range(4):
        assert (
            error_type(post(workers.url, LOGIN, right).json()) == "TooManyRequestsError"
        )
