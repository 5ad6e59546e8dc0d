"""Passkeys end to end: registration, listing, removal, second-factor and passwordless login.

Over HTTP against a started service, with a software authenticator
(soft_passkey.py) answering the options the service hands out as a browser
would, and the notices a real SMTP server receives.
"""

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import GraphQLClient, MailSink, Service
from helpers import (
    LOGIN,
    PASSWORD,
    USER_SELECTION,
    error_type,
    logged_in,
    registered,
    running_service,
)
from soft_passkey import SoftPasskey
from test_audit import factor_events
from test_links import NEW_PASSWORD, reset, reset_link, titled
from test_mfa import (
    CONFIRM,
    DELETE_WITH_CODE,
    HAS_FACTOR,
    REFRESH,
    START,
    Authenticator,
    second,
)

REGISTRATION_OPTIONS = "mutation { passkeyRegistrationOptions }"
REGISTER_PASSKEY = (
    "mutation($password: String!, $credential: String!, $name: String,"
    " $challenge: String) { registerPasskey(password: $password,"
    " credential: $credential, name: $name, challenge: $challenge)"
    " { id name createdAt lastUsedAt backedUp } }"
)
MY_PASSKEYS = "{ myPasskeys { id name lastUsedAt } }"
DELETE_PASSKEY = "mutation($password: String!, $id: String!) { deletePasskey(password: $password, id: $id) }"
LOGIN_OPTIONS = (
    "mutation($challenge: String) { passkeyLoginOptions(challenge: $challenge) }"
)
LOGIN_WITH_PASSKEY = (
    "mutation($credential: String!, $challenge: String) {"
    " loginWithPasskey(credential: $credential, challenge: $challenge)"
    " { token expiryDate user { " + USER_SELECTION + " } } }"
)
REAUTHENTICATION_OPTIONS = "mutation { passkeyReauthenticationOptions }"
ADDED = "A second factor was added to your account"
REMOVED = "The second factor of your account was removed"


def registration_options(client: GraphQLClient) -> dict[str, Any]:
    result = client(REGISTRATION_OPTIONS)
    assert "errors" not in result, result
    return json.loads(result["data"]["passkeyRegistrationOptions"])


def register_passkey(
    client: GraphQLClient, credential: str, name: str | None = "Laptop"
) -> dict[str, Any]:
    return client(
        REGISTER_PASSKEY,
        {"password": PASSWORD, "credential": credential, "name": name},
    )


def with_passkey(
    service: Service, counter: bool = True
) -> tuple[GraphQLClient, dict[str, Any], SoftPasskey]:
    """A new user, logged in, with one passkey."""
    client = service.client()
    fields = registered(client)
    logged_in(client, fields)
    device = SoftPasskey(service.url, counter=counter)
    result = register_passkey(client, device.create(registration_options(client)))
    assert "errors" not in result, result
    return client, fields, device


def mfa_challenge(client: GraphQLClient, fields: dict[str, Any]) -> str:
    result = client(LOGIN, {"email": fields["email"], "password": fields["password"]})
    assert error_type(result) == "MfaRequiredError", result
    return result["errors"][0]["extensions"]["challenge"]


def login_options(client: GraphQLClient, challenge: str | None) -> dict[str, Any]:
    result = client(LOGIN_OPTIONS, {"challenge": challenge})
    assert "errors" not in result, result
    return json.loads(result["data"]["passkeyLoginOptions"])


def login_with(
    client: GraphQLClient, credential: str, challenge: str | None
) -> dict[str, Any]:
    return client(
        LOGIN_WITH_PASSKEY, {"credential": credential, "challenge": challenge}
    )


def test_register_list_and_delete(service: Service, smtp: MailSink) -> None:
    client = service.client()
    fields = registered(client)
    logged_in(client, fields)
    options = registration_options(client)
    assert options["rp"]["id"] == "127.0.0.1"
    assert options["user"]["name"] == fields["email"]
    device = SoftPasskey(service.url)
    credential = device.create(options)
    wrong = client(
        REGISTER_PASSKEY, {"password": "wrong password", "credential": credential}
    )
    assert error_type(wrong) == "WrongPasswordError"
    assert client(MY_PASSKEYS) == {"data": {"myPasskeys": []}}

    result = register_passkey(client, device.create(registration_options(client)))
    assert "errors" not in result, result
    passkey = result["data"]["registerPasskey"]
    assert passkey["id"] == device.id and passkey["name"] == "Laptop"
    assert passkey["lastUsedAt"] is None and passkey["backedUp"] is False
    assert client(MY_PASSKEYS)["data"]["myPasskeys"] == [
        {"id": device.id, "name": "Laptop", "lastUsedAt": None}
    ]
    assert client(HAS_FACTOR) == {"data": {"hasSecondFactor": True}}
    (added,) = titled(smtp, fields["email"], ADDED)
    assert 'a passkey ("Laptop")' in added.get_body(("plain",)).get_content()
    # Its options name it among those the authenticator must not register again.
    excluded = registration_options(client)["excludeCredentials"]
    assert [item["id"] for item in excluded] == [device.id]

    again = {"password": PASSWORD, "id": device.id}
    assert error_type(client(DELETE_PASSKEY, {**again, "password": "wrong"})) == (
        "WrongPasswordError"
    )
    assert client(DELETE_PASSKEY, again) == {"data": {"deletePasskey": True}}
    assert client(MY_PASSKEYS) == {"data": {"myPasskeys": []}}
    assert client(HAS_FACTOR) == {"data": {"hasSecondFactor": False}}
    (removed,) = titled(smtp, fields["email"], REMOVED)
    assert 'a passkey ("Laptop")' in removed.get_body(("plain",)).get_content()
    assert error_type(client(DELETE_PASSKEY, again)) == "PasskeyNotFoundError"
    assert factor_events(client) == [
        ("second_factor_added", "passkey"),
        ("second_factor_removed", "passkey"),
    ]
    assert "errors" not in client(
        LOGIN, {"email": fields["email"], "password": PASSWORD}
    ), "no factor left: today's login"


def test_an_account_holds_twenty_passkeys_at_most(service: Service) -> None:
    client, _, _ = with_passkey(service)
    spare = registration_options(client)  # asked for while there was room
    for _ in range(19):
        credential = SoftPasskey(service.url).create(registration_options(client))
        assert "errors" not in register_passkey(client, credential)
    assert error_type(client(REGISTRATION_OPTIONS)) == "UserValidationError"
    late = register_passkey(client, SoftPasskey(service.url).create(spare))
    assert error_type(late) == "UserValidationError"
    assert len(client(MY_PASSKEYS)["data"]["myPasskeys"]) == 20


def test_someone_elses_passkey_cannot_be_deleted(service: Service) -> None:
    _, _, device = with_passkey(service)
    other = service.client()
    logged_in(other, registered(other))
    result = other(DELETE_PASSKEY, {"password": PASSWORD, "id": device.id})
    assert error_type(result) == "PasskeyNotFoundError"


def test_passkeys_need_a_login(service: Service) -> None:
    client = service.client()
    assert error_type(client(REGISTRATION_OPTIONS)) == "UnauthorizedError"
    assert error_type(client(MY_PASSKEYS)) == "UnauthorizedError"


def test_login_with_a_passkey_as_the_second_factor(service: Service) -> None:
    _, fields, device = with_passkey(service)
    client = service.client()
    result = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert error_type(result) == "MfaRequiredError"
    extensions = result["errors"][0]["extensions"]
    assert extensions["factors"] == ["passkey"]
    assert "loginWithPasskey" in result["errors"][0]["message"]
    assert not client.http.cookies

    challenge = extensions["challenge"]
    options = login_options(client, challenge)
    assert [item["id"] for item in options["allowCredentials"]] == [device.id]
    result = login_with(client, device.get(options), challenge)
    assert "errors" not in result, result
    login = result["data"]["loginWithPasskey"]
    assert login["user"]["email"] == fields["email"] and login["token"]
    assert "errors" not in client(REFRESH), "the refresh cookie is set"
    client.token = login["token"]
    assert client(MY_PASSKEYS)["data"]["myPasskeys"][0]["lastUsedAt"]
    # The challenge went with that login.
    again = login_with(client, device.get(options), challenge)
    assert error_type(again) == "WrongPasskeyError"


def test_the_login_challenge_is_used_up_by_a_passkey_attempt(
    service: Service,
) -> None:
    _, fields, device = with_passkey(service)
    client = service.client()
    challenge = mfa_challenge(client, fields)
    options = login_options(client, challenge)
    stranger = SoftPasskey(service.url)
    stranger.credential_id = device.credential_id  # the id, not the key
    refused = login_with(client, stranger.get(options), challenge)
    assert error_type(refused) == "WrongPasskeyError"
    later = client(LOGIN_OPTIONS, {"challenge": challenge})
    assert error_type(later) == "UnauthorizedError"


def test_a_passkey_only_user_is_told_to_use_it(service: Service) -> None:
    _, fields, device = with_passkey(service)
    client = service.client()
    challenge = mfa_challenge(client, fields)
    assert error_type(second(client, challenge, "123456")) == "NoSecondFactorError"
    # The challenge survives the wrong kind of factor.
    result = login_with(client, device.get(login_options(client, challenge)), challenge)
    assert "errors" not in result, result


def test_a_passkey_of_another_account_is_refused(service: Service) -> None:
    _, fields, _ = with_passkey(service)
    _, _, other_device = with_passkey(service)
    client = service.client()
    challenge = mfa_challenge(client, fields)
    options = login_options(client, challenge)
    result = login_with(client, other_device.get(options), challenge)
    assert error_type(result) == "WrongPasskeyError"
    assert not client.http.cookies


def test_a_wrong_origin_is_refused(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    logged_in(client, fields)
    device = SoftPasskey(service.url)
    phished = device.create(registration_options(client), origin="https://evil.example")
    assert error_type(register_passkey(client, phished)) == "WrongPasskeyError"
    assert client(MY_PASSKEYS) == {"data": {"myPasskeys": []}}

    result = register_passkey(client, device.create(registration_options(client)))
    assert "errors" not in result, result
    challenge = mfa_challenge(client, fields)
    options = login_options(client, challenge)
    result = login_with(
        client, device.get(options, origin="https://evil.example"), challenge
    )
    assert error_type(result) == "WrongPasskeyError"


def test_a_replayed_or_stale_counter_is_refused(service: Service) -> None:
    _, fields, device = with_passkey(service)
    client = service.client()
    challenge = mfa_challenge(client, fields)
    assert "errors" not in login_with(
        client, device.get(login_options(client, challenge)), challenge
    )
    # A clone of the key whose counter did not move since: refused.
    challenge = mfa_challenge(client, fields)
    stale = device.get(login_options(client, challenge), count=False)
    assert error_type(login_with(client, stale, challenge)) == "WrongPasskeyError"
    # The same assertion sent again: its challenge is used up.
    challenge = mfa_challenge(client, fields)
    options = login_options(client, challenge)
    assertion = device.get(options)
    assert "errors" not in login_with(client, assertion, challenge)
    challenge = mfa_challenge(client, fields)
    assert error_type(login_with(client, assertion, challenge)) == "WrongPasskeyError"


def test_an_authenticator_without_a_counter_logs_in(service: Service) -> None:
    _, fields, device = with_passkey(service, counter=False)
    client = service.client()
    for _ in range(2):
        challenge = mfa_challenge(client, fields)
        result = login_with(
            client, device.get(login_options(client, challenge)), challenge
        )
        assert "errors" not in result, result


def test_registration_options_are_single_use(service: Service) -> None:
    client = service.client()
    logged_in(client, registered(client))
    options = registration_options(client)
    assert "errors" not in register_passkey(
        client, SoftPasskey(service.url).create(options)
    )
    second_device = SoftPasskey(service.url).create(options)
    assert error_type(register_passkey(client, second_device)) == "WrongPasskeyError"
    assert len(client(MY_PASSKEYS)["data"]["myPasskeys"]) == 1


def test_registration_options_are_the_users_own(service: Service) -> None:
    client = service.client()
    logged_in(client, registered(client))
    options = registration_options(client)
    other = service.client()
    logged_in(other, registered(other))
    credential = SoftPasskey(service.url).create(options)
    assert error_type(register_passkey(other, credential)) == "WrongPasskeyError"


def test_malformed_credentials_are_refused(service: Service) -> None:
    client, fields, _ = with_passkey(service)
    challenge = mfa_challenge(service.client(), fields)
    for junk in ("not json", "{}", '{"id": "x", "rawId": "%%%", "response": {}}'):
        assert error_type(register_passkey(client, junk)) == "WrongPasskeyError"
        assert error_type(login_with(client, junk, challenge)) == "WrongPasskeyError"
    for name in ("x" * 65, "two\nlines"):
        refused = register_passkey(client, "{}", name=name)
        assert error_type(refused) == "UserValidationError"


def test_passwordless_is_off_by_default(service: Service) -> None:
    client = service.client()
    result = client(LOGIN_OPTIONS, {"challenge": None})
    assert error_type(result) == "PasswordlessDisabledError"


def test_a_passkey_joins_totp(service: Service) -> None:
    client, fields, device = with_passkey(service)
    app = Authenticator(client(START)["data"]["startTotpEnrolment"]["secret"])
    assert "errors" not in client(CONFIRM, {"code": app.code()})
    login = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert login["errors"][0]["extensions"]["factors"] == ["totp", "passkey"]
    assert "errors" not in second(
        client, login["errors"][0]["extensions"]["challenge"], app.code()
    )


def test_a_password_reset_does_not_bypass_the_passkey(
    service: Service, smtp: MailSink
) -> None:
    client, fields, device = with_passkey(service)
    link = reset_link(smtp, service, fields["email"])
    assert "errors" not in reset(service.client(), link)
    assert error_type(client(REFRESH)) == "UnauthorizedError", "sessions ended"
    challenge = mfa_challenge(client, {**fields, "password": NEW_PASSWORD})
    result = login_with(client, device.get(login_options(client, challenge)), challenge)
    assert "errors" not in result, result


def test_deleting_the_account_needs_a_passkey(service: Service) -> None:
    client, _, device = with_passkey(service)
    without = client(DELETE_WITH_CODE, {"password": PASSWORD, "code": None})
    assert error_type(without) == "WrongMfaCodeError"
    assert "passkeyReauthenticationOptions" in without["errors"][0]["message"]

    def assertion(**options: Any) -> str:
        result = client(REAUTHENTICATION_OPTIONS)
        assert "errors" not in result, result
        ask = json.loads(result["data"]["passkeyReauthenticationOptions"])
        assert [item["id"] for item in ask["allowCredentials"]] == [device.id]
        return device.get(ask, **options)

    phished = assertion(origin="https://evil.example")
    refused = client(DELETE_WITH_CODE, {"password": PASSWORD, "code": phished})
    assert error_type(refused) == "WrongPasskeyError"
    # An assertion for a login is no re-authentication.
    _, other_fields, _ = with_passkey(service)
    login = device.get(login_options(client, mfa_challenge(client, other_fields)))
    refused = client(DELETE_WITH_CODE, {"password": PASSWORD, "code": login})
    assert error_type(refused) == "WrongPasskeyError"
    result = client(DELETE_WITH_CODE, {"password": PASSWORD, "code": assertion()})
    assert result == {"data": {"deleteMe": True}}


@pytest.fixture(scope="module")
def passwordless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("passwordless")
    with running_service(folder, AUTH_PASSWORDLESS="passkeys") as service:
        yield service


def test_passwordless_login(passwordless: Service) -> None:
    client, fields, device = with_passkey(passwordless)
    stranger = passwordless.client()
    options = login_options(stranger, None)
    assert options["allowCredentials"] == [], "anyone's discoverable passkey"
    assert options["userVerification"] == "required"
    result = login_with(stranger, device.get(options), None)
    assert "errors" not in result, result
    assert result["data"]["loginWithPasskey"]["user"]["email"] == fields["email"]
    assert "errors" not in stranger(REFRESH), "the refresh cookie is set"
    # The password still works, and asks for the passkey after it.
    assert (
        error_type(client(LOGIN, {"email": fields["email"], "password": PASSWORD}))
        == "MfaRequiredError"
    )


def test_passwordless_needs_user_verification(passwordless: Service) -> None:
    _, _, device = with_passkey(passwordless)
    client = passwordless.client()
    unverified = device.get(login_options(client, None), verified=False)
    assert error_type(login_with(client, unverified, None)) == "WrongPasskeyError"
    other = passwordless.client()
    logged_in(other, registered(other))
    presence_only = SoftPasskey(passwordless.url).create(
        registration_options(other), verified=False
    )
    assert error_type(register_passkey(other, presence_only)) == "WrongPasskeyError"


def test_a_second_factor_challenge_is_not_a_passwordless_one(
    passwordless: Service,
) -> None:
    _, fields, device = with_passkey(passwordless)
    client = passwordless.client()
    challenge = mfa_challenge(client, fields)
    options = login_options(client, challenge)
    # The options of a second factor do not log in without the password's challenge.
    assert error_type(login_with(client, device.get(options), None)) == (
        "WrongPasskeyError"
    )
    options = login_options(client, None)
    refused = login_with(client, device.get(options), challenge)
    assert error_type(refused) == "WrongPasskeyError"


def test_passwordless_without_mfa_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="AUTH_PASSWORDLESS=passkeys needs AUTH_MFA"):
        with running_service(tmp_path, AUTH_PASSWORDLESS="passkeys", AUTH_MFA="off"):
            pass


def test_login_options_are_limited_per_address(tmp_path: Path) -> None:
    """Each call keeps a challenge: a stranger's loop gets TooManyRequestsError,
    with a challenge of a password login or without one (passwordless)."""
    with running_service(
        tmp_path, AUTH_PASSWORDLESS="passkeys", AUTH_PASSKEY_OPTIONS_MAX_PER_ADDRESS="3"
    ) as service:
        client, fields, device = with_passkey(service)
        challenge = mfa_challenge(client, fields)
        stranger = service.client()
        for _ in range(2):
            login_options(stranger, None)
        options = login_options(client, challenge)
        for attempt in (None, challenge):
            refused = stranger(LOGIN_OPTIONS, {"challenge": attempt})
            assert error_type(refused) == "TooManyRequestsError"
        # The options handed out before the limit still log in.
        result = login_with(client, device.get(options), challenge)
        assert "errors" not in result, result
