"""AUTH_MFA=required end to end: a user without a second factor enrols at login.

login answers MfaEnrolmentRequiredError with a challenge; the challenge
stands in for an auth token in the enrolment mutations only, and
completeMfaEnrolment trades it for the login once a factor is in force.
"""

import json
from typing import Any, Iterator

import pytest
from conftest import GraphQLClient, Service
from helpers import (
    LOGIN,
    PASSWORD,
    USER_SELECTION,
    error_type,
    registered,
    running_service,
)
from soft_passkey import SoftPasskey
from test_mfa import DISABLE, REFRESH, Authenticator, second
from test_passkeys import DELETE_PASSKEY, MY_PASSKEYS, REGISTER_PASSKEY

START = "mutation($challenge: String) { startTotpEnrolment(challenge: $challenge) { secret } }"
CONFIRM = (
    "mutation($code: String!, $challenge: String) {"
    " confirmTotpEnrolment(code: $code, challenge: $challenge) }"
)
COMPLETE = (
    "mutation($challenge: String!) { completeMfaEnrolment(challenge: $challenge)"
    " { token user { " + USER_SELECTION + " } } }"
)
PASSKEY_OPTIONS = (
    "mutation($challenge: String) { passkeyRegistrationOptions(challenge: $challenge) }"
)


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("required")
    with running_service(folder, AUTH_MFA="required") as service:
        yield service


def enrolment_challenge(client: GraphQLClient, fields: dict[str, Any]) -> str:
    result = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert error_type(result) == "MfaEnrolmentRequiredError", result
    assert result["data"] == {"login": None}
    assert "completeMfaEnrolment" in result["errors"][0]["message"]
    return result["errors"][0]["extensions"]["challenge"]


def enrol_totp(client: GraphQLClient, challenge: str) -> Authenticator:
    result = client(START, {"challenge": challenge})
    assert "errors" not in result, result
    app = Authenticator(result["data"]["startTotpEnrolment"]["secret"])
    confirmed = client(CONFIRM, {"code": app.code(), "challenge": challenge})
    assert len(confirmed["data"]["confirmTotpEnrolment"]) == 10, confirmed
    return app


def add_passkey(
    client: GraphQLClient, service: Service, challenge: str | None
) -> SoftPasskey:
    """A passkey for the logged-in user, or the user of the enrolment challenge."""
    options = client(PASSKEY_OPTIONS, {"challenge": challenge})
    device = SoftPasskey(service.url)
    options = json.loads(options["data"]["passkeyRegistrationOptions"])
    result = client(
        REGISTER_PASSKEY,
        {
            "password": PASSWORD,
            "credential": device.create(options),
            "challenge": challenge,
        },
    )
    assert "errors" not in result, result
    return device


def test_a_user_without_a_factor_enrols_at_login(required: Service) -> None:
    client = required.client()
    fields = registered(client)
    challenge = enrolment_challenge(client, fields)
    assert not client.http.cookies, "no session before the enrolment"
    refused = client(COMPLETE, {"challenge": challenge})
    assert error_type(refused) == "NoSecondFactorError"
    app = enrol_totp(client, challenge)
    result = client(COMPLETE, {"challenge": challenge})
    assert "errors" not in result, result
    assert result["data"]["completeMfaEnrolment"]["user"]["email"] == fields["email"]
    assert "errors" not in client(REFRESH), "the refresh cookie is set"
    assert error_type(client(COMPLETE, {"challenge": challenge})) == "UnauthorizedError"
    # From now on the factor is asked for.
    login = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert error_type(login) == "MfaRequiredError"
    ok = second(client, login["errors"][0]["extensions"]["challenge"], app.code())
    assert "errors" not in ok, ok


def test_enrolment_with_a_passkey(required: Service) -> None:
    client = required.client()
    fields = registered(client)
    challenge = enrolment_challenge(client, fields)
    add_passkey(client, required, challenge)
    result = client(COMPLETE, {"challenge": challenge})
    assert "errors" not in result, result
    login = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert login["errors"][0]["extensions"]["factors"] == ["passkey"]


def test_the_enrolment_challenge_opens_nothing_else(required: Service) -> None:
    client = required.client()
    fields = registered(client)
    challenge = enrolment_challenge(client, fields)
    assert error_type(second(client, challenge, "123456")) == "UnauthorizedError"
    client.token = challenge
    assert error_type(client(MY_PASSKEYS)) == "UnauthorizedError"
    assert error_type(client(START)) == "UnauthorizedError"
    client.token = None
    wrong = client(START, {"challenge": "not-a-challenge"})
    assert error_type(wrong) == "UnauthorizedError"
    # Still good for what it is for.
    assert "errors" not in client(START, {"challenge": challenge})


def test_the_last_factor_stays(required: Service) -> None:
    client = required.client()
    fields = registered(client)
    challenge = enrolment_challenge(client, fields)
    app = enrol_totp(client, challenge)
    login = client(COMPLETE, {"challenge": challenge})["data"]["completeMfaEnrolment"]
    client.token = login["token"]
    code = app.code()
    result = client(DISABLE, {"password": PASSWORD, "code": code})
    assert error_type(result) == "SecondFactorRequiredError"
    first = add_passkey(client, required, None)
    other = add_passkey(client, required, None)
    assert "errors" not in client(
        DELETE_PASSKEY, {"password": PASSWORD, "id": first.id}
    )
    assert client(DISABLE, {"password": PASSWORD, "code": code}) == {
        "data": {"disableTotp": True}
    }
    last = client(DELETE_PASSKEY, {"password": PASSWORD, "id": other.id})
    assert error_type(last) == "SecondFactorRequiredError"
    assert len(client(MY_PASSKEYS)["data"]["myPasskeys"]) == 1
