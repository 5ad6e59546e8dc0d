"""Accounts over HTTP: register, login, sessions and cookies, the user's own changes, throttling."""

import asyncio
import time
import uuid

import jwt
import pytest
from conftest import Service, service_env
from helpers import (
    DELETE_ME,
    EMAIL_AVAILABLE,
    LOGIN,
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    REGISTER,
    UPDATE_ME,
    constrained_field,
    editable_field,
    error_type,
    logged_in,
    no_secret,
    post,
    registered,
    registration,
    rule_message,
    sample_value,
    unique_field,
)

from {{ cookiecutter.package }}.store import open_store

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]

# Register.


def test_register_then_login(client):
    fields = registered(client, email="Mixed.Case@Example.org")
    login = logged_in(client, {**fields, "email": "mixed.case@example.org"})
    assert login["user"]["email"] == "mixed.case@example.org"
    assert login["user"]["email_verified"] is False
    for name, value in fields.items():
        if name not in ("email", "password"):
            assert login["user"][name] == value
    assert client.http.cookies.get("refreshToken")


def test_register_duplicate_email_in_any_case(client):
    fields = registered(client)
    again = registration(email=fields["email"].upper())
    result = client(REGISTER, {"fields": again})
    assert error_type(result) == "EmailAlreadyExistsError"
    assert result["data"] == {"register": None}


def test_register_duplicate_unique_field(client):
    field = unique_field()
    if field is None:
        pytest.skip("the model has no unique field besides email")
    fields = registered(client)
    result = client(
        REGISTER, {"fields": registration(**{field.name: fields[field.name]})}
    )
    assert (
        error_type(result)
        == field.name[0].upper() + field.name[1:] + "AlreadyExistsError"
    )


def test_register_field_rule_names_field_and_rule(client):
    broken = constrained_field()
    if broken is None:
        pytest.skip("the model has no field with a rule to break")
    field, bad = broken
    result = client(REGISTER, {"fields": registration(**{field.name: bad})})
    assert error_type(result) == "UserValidationError"
    message = result["errors"][0]["message"]
    assert message.startswith(f"{field.name}:")
    assert rule_message(field, bad) in message


def test_register_refuses_invalid_email(client):
    result = client(REGISTER, {"fields": registration(email="not-an-email")})
    assert error_type(result) == "UserValidationError"
    assert result["errors"][0]["message"].startswith("email:")


@pytest.mark.parametrize("password", ["short", "x" * 257])
def test_register_password_policy(client, password):
    result = client(REGISTER, {"fields": registration(password=password)})
    assert error_type(result) == "UserValidationError"
    assert result["errors"][0]["message"].startswith("password:")


def test_email_available(client):
    fields = registered(client)
    query = EMAIL_AVAILABLE
    assert (
        client(query, {"email": fields["email"].upper()})["data"]["emailAvailable"]
        is False
    )
    assert (
        client(query, {"email": f"{uuid.uuid4().hex}@example.org"})["data"][
            "emailAvailable"
        ]
        is True
    )


# Login.


def test_wrong_email_and_wrong_password_look_the_same(client):
    fields = registered(client)
    wrong_password = client(
        LOGIN, {"email": fields["email"], "password": "wrong password"}
    )
    wrong_email = client(
        LOGIN, {"email": f"{uuid.uuid4().hex}@example.org", "password": PASSWORD}
    )
    assert error_type(wrong_password) == error_type(wrong_email) == "UserNotFoundError"
    assert wrong_password["errors"][0]["message"] == wrong_email["errors"][0]["message"]


def test_unknown_email_takes_as_long_as_a_wrong_password(make_service):
    """An unknown email is checked against a dummy hash: no shortcut reveals accounts.

    The hash costs what a login's other work costs many times over (as in
    production, unlike the suite's cheap default), the two kinds of login are
    interleaved, and each is judged by its fastest time: load on the machine
    only ever adds to a request, so the least of several is its own work.
    """
    service = make_service(AUTH_ARGON2_TIME_COST="2", AUTH_ARGON2_MEMORY_COST="32768")
    client = service.client()
    fields = registered(client)

    def duration(query: str, variables: dict) -> float:
        start = time.perf_counter()
        client(query, variables)
        return time.perf_counter() - start

    known, unknown = [], []
    for _ in range(5):
        known.append(
            duration(LOGIN, {"email": fields["email"], "password": "wrong password"})
        )
        email = f"{uuid.uuid4().hex}@example.org"
        unknown.append(duration(LOGIN, {"email": email, "password": "wrong password"}))
    assert min(unknown) > min(known) * 0.5


def test_refresh_cookie_attributes(service, client):
    fields = registered(client)
    response = post(
        service.url, LOGIN, {"email": fields["email"], "password": PASSWORD}
    )
    cookie = response.headers["set-cookie"]
    attributes = {
        part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")
    }
    assert cookie.startswith("refreshToken=")
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=lax"
    assert attributes["path"] == "Path=/"
    assert "secure" not in attributes  # the service's public URL is http://
    assert no_secret(response.text)


def test_login_rehashes_a_password_hashed_with_old_parameters(tmp_path):
    """Raising the argon2 cost applies to each account at its next login."""
    env = service_env(tmp_path)

    async def stored_hash(email: str) -> str:
        store = open_store(env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            return (await store.get_user_by_email(email))["password_hash"]
        finally:
            await store.close()

    running = Service(tmp_path, env)
    running.start()
    try:
        fields = registered(running.client())
    finally:
        running.stop()
    assert ",t=1," in asyncio.run(stored_hash(fields["email"]))
    running = Service(tmp_path, {**env, "AUTH_ARGON2_TIME_COST": "2"})
    running.start()
    try:
        logged_in(running.client(), fields)
        assert ",t=2," in asyncio.run(stored_hash(fields["email"]))
        logged_in(running.client(), fields)
    finally:
        running.stop()


# me.


def test_me_needs_a_valid_token(client):
    fields = registered(client)
    assert error_type(client(ME)) == "UnauthorizedError"
    client.token = "not.a.token"
    assert error_type(client(ME)) == "UnauthorizedError"
    login = logged_in(client, fields)
    result = client(ME)
    assert result["data"]["me"] == login["user"]
    assert no_secret(str(result))


def test_me_with_a_non_bearer_authorization_is_unauthorized(client):
    fields = registered(client)
    token = logged_in(client, fields)["token"]
    result = client(ME, authorization=f"Basic {token}")
    assert error_type(result) == "UnauthorizedError"


# Sessions.


def test_refresh_rotates_the_cookie_and_gives_a_fresh_token(client):
    fields = registered(client)
    user = logged_in(client, fields)["user"]
    first = client.http.cookies.get("refreshToken")
    result = client(REFRESH)
    assert "errors" not in result
    assert client.http.cookies.get("refreshToken") not in (None, first)
    claims = jwt.decode(
        result["data"]["refreshToken"]["token"], options={"verify_signature": False}
    )
    assert claims["sub"] == user["_id"]
    client.token = result["data"]["refreshToken"]["token"]
    assert client(ME)["data"]["me"]["_id"] == user["_id"]


def test_refresh_without_cookie_is_unauthorized(client):
    assert error_type(client(REFRESH)) == "UnauthorizedError"


def test_logout_ends_only_the_current_session(service):
    laptop, phone = service.client(), service.client()
    fields = registered(laptop)
    logged_in(laptop, fields)
    logged_in(phone, fields)
    old_cookie = laptop.http.cookies.get("refreshToken")
    assert laptop(LOGOUT) == {"data": {"logout": True}}
    assert laptop.http.cookies.get("refreshToken") is None
    assert (
        error_type(
            post(service.url, REFRESH, cookie=f"refreshToken={old_cookie}").json()
        )
        == "UnauthorizedError"
    )
    assert "errors" not in phone(REFRESH)


# updateMe.


def test_update_me_changes_a_field_and_the_token(client):
    field = editable_field()
    if field is None:
        pytest.skip("the model has no editable field")
    fields = registered(client)
    logged_in(client, fields)
    value = sample_value(field, 999_983)
    result = client(UPDATE_ME, {"fields": {field.name: value}})
    assert "errors" not in result, result
    assert result["data"]["updateMe"]["user"][field.name] == value
    claims = jwt.decode(
        result["data"]["updateMe"]["token"], options={"verify_signature": False}
    )
    assert claims[field.name] == value
    assert client(ME)["data"]["me"][field.name] == value


def test_update_me_needs_a_token(client):
    assert error_type(client(UPDATE_ME, {"fields": {}})) == "UnauthorizedError"


def test_update_me_validates_fields(client):
    broken = constrained_field()
    if broken is None or not broken[0].editable:
        pytest.skip("the model has no editable field with a rule to break")
    field, bad = broken
    logged_in(client, registered(client))
    result = client(UPDATE_ME, {"fields": {field.name: bad}})
    assert error_type(result) == "UserValidationError"
    assert result["errors"][0]["message"].startswith(f"{field.name}:")


def test_email_change_needs_the_refresh_cookie(service, client):
    fields = registered(client)
    token = logged_in(client, fields)["token"]
    new_email = f"{uuid.uuid4().hex}@example.org"
    without_cookie = post(
        service.url,
        UPDATE_ME,
        {"fields": {"email": new_email}},
        authorization=f"Bearer {token}",
    )
    assert error_type(without_cookie.json()) == "UnauthorizedError"
    result = client(UPDATE_ME, {"fields": {"email": new_email.upper()}})
    assert "errors" not in result, result
    assert result["data"]["updateMe"]["user"]["email"] == new_email
    assert result["data"]["updateMe"]["user"]["email_verified"] is False
    assert (
        error_type(client(LOGIN, {"email": fields["email"], "password": PASSWORD}))
        == "UserNotFoundError"
    )
    assert "errors" not in client(LOGIN, {"email": new_email, "password": PASSWORD})


def test_email_change_to_a_taken_email(client):
    taken = registered(client)["email"]
    logged_in(client, registered(client))
    assert (
        error_type(client(UPDATE_ME, {"fields": {"email": taken}}))
        == "EmailAlreadyExistsError"
    )


def test_password_change(service, client):
    fields = registered(client)
    logged_in(client, fields)
    other_device = service.client()
    logged_in(other_device, fields)
    wrong = client(
        UPDATE_ME,
        {
            "fields": {
                "password": "a new password",
                "previousPassword": "wrong password",
            }
        },
    )
    assert error_type(wrong) == "WrongPasswordError"
    missing = client(UPDATE_ME, {"fields": {"password": "a new password"}})
    assert error_type(missing) == "WrongPasswordError"
    short = client(
        UPDATE_ME, {"fields": {"password": "short", "previousPassword": PASSWORD}}
    )
    assert error_type(short) == "UserValidationError"
    result = client(
        UPDATE_ME,
        {"fields": {"password": "a new password", "previousPassword": PASSWORD}},
    )
    assert "errors" not in result, result
    assert (
        error_type(client(LOGIN, {"email": fields["email"], "password": PASSWORD}))
        == "UserNotFoundError"
    )
    assert "errors" not in client(
        LOGIN, {"email": fields["email"], "password": "a new password"}
    )
    # A new password ends the sessions of every other device.
    assert error_type(other_device(REFRESH)) == "UnauthorizedError"


# deleteMe.


def test_delete_me(service, client):
    fields = registered(client)
    token = logged_in(client, fields)["token"]
    cookie = client.http.cookies.get("refreshToken")
    assert (
        error_type(client(DELETE_ME, {"password": "wrong password"}))
        == "WrongPasswordError"
    )
    assert client(DELETE_ME, {"password": PASSWORD}) == {"data": {"deleteMe": True}}
    assert (
        error_type(client(ME, authorization=f"Bearer {token}")) == "UnauthorizedError"
    )
    assert (
        error_type(post(service.url, REFRESH, cookie=f"refreshToken={cookie}").json())
        == "UnauthorizedError"
    )
    assert (
        error_type(client(LOGIN, {"email": fields["email"], "password": PASSWORD}))
        == "UserNotFoundError"
    )
    assert (
        client(EMAIL_AVAILABLE, {"email": fields["email"]})["data"]["emailAvailable"]
        is True
    )


# Throttling of failed logins.

WINDOW = 2


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    """A service that allows, in 2 seconds, 3 failures per account and address,
    5 per account and 6 per address."""
    folder = tmp_path_factory.mktemp("throttled")
    env = {
        **service_env(folder),
        "AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS": "3",
        "AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT": "5",
        "AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS": "6",
        "AUTH_LOGIN_FAILURE_WINDOW": str(WINDOW),
        "AUTH_TRUST_FORWARDED_FOR": "true",
    }
    running = Service(folder, env)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def attempt(client, email: str, password: str, address: str) -> str | None:
    result = client(
        LOGIN, {"email": email, "password": password}, **{"x-forwarded-for": address}
    )
    return error_type(result) if "errors" in result else None


def test_too_many_failures_for_an_account_from_one_address(throttled):
    client = throttled.client()
    fields = registered(client)
    for _ in range(3):
        assert (
            attempt(client, fields["email"], "wrong password", "10.0.0.1")
            == "UserNotFoundError"
        )
    # That address waits, even with the right password, until the window has slid by ...
    assert (
        attempt(client, fields["email"], PASSWORD, "10.0.0.1") == "TooManyRequestsError"
    )
    # ... but it cannot lock the user out: another address still logs in.
    assert attempt(client, fields["email"], PASSWORD, "10.0.0.2") is None
    time.sleep(WINDOW + 0.2)
    assert attempt(client, fields["email"], PASSWORD, "10.0.0.1") is None


def test_too_many_failures_for_an_account_from_many_addresses(throttled):
    client = throttled.client()
    fields = registered(client)
    for address in ("10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5"):
        assert (
            attempt(client, fields["email"], "wrong password", address)
            == "UserNotFoundError"
        )
    assert (
        attempt(client, fields["email"], PASSWORD, "10.0.1.6") == "TooManyRequestsError"
    )


def test_a_right_password_does_not_count(throttled):
    client = throttled.client()
    fields = registered(client)
    for _ in range(6):
        assert attempt(client, fields["email"], PASSWORD, "10.0.3.1") is None


def test_too_many_failures_from_an_address(throttled):
    client = throttled.client()
    fields = registered(client)
    for _ in range(6):
        assert (
            attempt(client, f"{uuid.uuid4().hex}@example.org", PASSWORD, "10.0.2.1")
            == "UserNotFoundError"
        )
    assert (
        attempt(client, fields["email"], PASSWORD, "10.0.2.1") == "TooManyRequestsError"
    )
    assert attempt(client, fields["email"], PASSWORD, "10.0.2.2") is None
