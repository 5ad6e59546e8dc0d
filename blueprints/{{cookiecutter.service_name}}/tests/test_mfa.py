"""Second factors (TOTP) end to end: enrolment, logins, recovery codes, limits.

Over HTTP against a started service, with the codes computed here from the
secret the service hands out (pyotp), and the notices a real SMTP server
receives. A code of the current step spent by one request is refused to the
next (replay); the next step's code, inside the ±1 step window, is accepted,
so the tests never wait for the clock.
"""

import time
from pathlib import Path
from typing import Any

import pyotp
from conftest import GraphQLClient, MailSink, Service
from helpers import (
    DELETE_ME,
    LOGIN,
    PASSWORD,
    USER_SELECTION,
    error_type,
    logged_in,
    registered,
    running_service,
)
from test_audit import factor_events
from test_links import NEW_PASSWORD, reset, reset_link, titled

START = "mutation { startTotpEnrolment { secret uri qrCode } }"
CONFIRM = "mutation($code: String!) { confirmTotpEnrolment(code: $code) }"
REGENERATE = "mutation($code: String!) { regenerateRecoveryCodes(code: $code) }"
DISABLE = "mutation($password: String!, $code: String!) { disableTotp(password: $password, code: $code) }"
HAS_FACTOR = "{ hasSecondFactor }"
SECOND = (
    "mutation($challenge: String!, $code: String!) {"
    " loginWithSecondFactor(challenge: $challenge, code: $code)"
    " { token expiryDate user { " + USER_SELECTION + " } } }"
)
DELETE_WITH_CODE = "mutation($password: String!, $code: String) { deleteMe(password: $password, code: $code) }"
REFRESH = "mutation { refreshToken { token } }"
ADDED = "A second factor was added to your account"
REMOVED = "The second factor of your account was removed"


class Authenticator:
    """The user's authenticator app: codes of the current and the next steps."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.given: list[str] = []

    def code(self) -> str:
        """A code not given before: the current step's, then the next one's."""
        assert len(self.given) <= 1, "the ±1 step window has only one future step"
        self.given.append(self.totp.at(time.time() + 30 * len(self.given)))
        return self.given[-1]


def enrolled(
    client: GraphQLClient, fields: dict[str, Any]
) -> tuple[Authenticator, list[str]]:
    """Logs in, enrols TOTP; the authenticator and the recovery codes."""
    logged_in(client, fields)
    enrolment = client(START)["data"]["startTotpEnrolment"]
    app = Authenticator(enrolment["secret"])
    result = client(CONFIRM, {"code": app.code()})
    assert "errors" not in result, result
    return app, result["data"]["confirmTotpEnrolment"]


def challenge_of(client: GraphQLClient, fields: dict[str, Any]) -> str:
    result = client(LOGIN, {"email": fields["email"], "password": fields["password"]})
    assert error_type(result) == "MfaRequiredError", result
    return result["errors"][0]["extensions"]["challenge"]


def second(client: GraphQLClient, challenge: str, code: str) -> dict[str, Any]:
    return client(SECOND, {"challenge": challenge, "code": code})


def test_enrolment_then_login_asks_for_a_code(service: Service, smtp: MailSink) -> None:
    client = service.client()
    fields = registered(client)
    logged_in(client, fields)
    assert client(HAS_FACTOR) == {"data": {"hasSecondFactor": False}}
    enrolment = client(START)["data"]["startTotpEnrolment"]
    assert enrolment["uri"].startswith("otpauth://totp/")
    assert f"secret={enrolment['secret']}" in enrolment["uri"]
    assert enrolment["qrCode"].startswith("<svg")
    assert error_type(client(CONFIRM, {"code": "000000"})) == "WrongMfaCodeError"
    # Not in force before a right code: the login is today's.
    assert client(HAS_FACTOR) == {"data": {"hasSecondFactor": False}}
    app = Authenticator(enrolment["secret"])
    codes = client(CONFIRM, {"code": app.code()})["data"]["confirmTotpEnrolment"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client(HAS_FACTOR) == {"data": {"hasSecondFactor": True}}
    assert titled(smtp, fields["email"], ADDED)

    fresh = service.client()
    challenge = challenge_of(fresh, fields)
    assert not fresh.http.cookies, "no session before the second factor"
    result = second(fresh, challenge, app.code())
    assert "errors" not in result, result
    login = result["data"]["loginWithSecondFactor"]
    assert login["user"]["email"] == fields["email"] and login["token"]
    assert "errors" not in fresh(REFRESH), "the refresh cookie is set"


def test_a_client_without_mfa_support_fails_clearly(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    enrolled(client, fields)
    other = service.client()
    result = other(LOGIN, {"email": fields["email"], "password": PASSWORD})
    assert result["data"] == {"login": None}
    (error,) = result["errors"]
    assert error["type"] == error["extensions"]["type"] == "MfaRequiredError"
    assert "loginWithSecondFactor" in error["message"]
    assert not other.http.cookies
    assert error_type(other(REFRESH)) == "UnauthorizedError"


def test_a_code_is_accepted_once(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    app, _ = enrolled(client, fields)
    challenge = challenge_of(service.client(), fields)
    # The code that confirmed the enrolment.
    assert error_type(second(client, challenge, app.given[0])) == "WrongMfaCodeError"
    assert "errors" not in second(client, challenge, app.code())


def test_a_recovery_code_works_once(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    _, codes = enrolled(client, fields)
    result = second(client, challenge_of(client, fields), codes[0].upper())
    assert "errors" not in result, result
    again = second(client, challenge_of(client, fields), codes[0])
    assert error_type(again) == "WrongMfaCodeError"
    assert "errors" not in second(client, challenge_of(client, fields), codes[1])


def test_a_challenge_is_single_use(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    app, _ = enrolled(client, fields)
    challenge = challenge_of(client, fields)
    assert "errors" not in second(client, challenge, app.code())
    used = second(client, challenge, app.given[0])
    assert error_type(used) == "UnauthorizedError"
    assert error_type(second(client, "made-up", "123456")) == "UnauthorizedError"


def test_a_challenge_dies_after_five_wrong_codes(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    app, _ = enrolled(client, fields)
    challenge = challenge_of(client, fields)
    types = [error_type(second(client, challenge, "000000")) for _ in range(5)]
    assert types == ["WrongMfaCodeError"] * 4 + ["TooManyRequestsError"]
    assert error_type(second(client, challenge, app.code())) == "UnauthorizedError"


def test_recovery_codes_regenerated_replace_the_old_ones(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    app, old = enrolled(client, fields)
    assert error_type(client(REGENERATE, {"code": "000000"})) == "WrongMfaCodeError"
    new = client(REGENERATE, {"code": app.code()})["data"]["regenerateRecoveryCodes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert error_type(second(client, challenge_of(client, fields), old[0])) == (
        "WrongMfaCodeError"
    )
    assert "errors" not in second(client, challenge_of(client, fields), new[0])


def test_disable_needs_password_and_code(service: Service, smtp: MailSink) -> None:
    client = service.client()
    fields = registered(client)
    app, codes = enrolled(client, fields)
    wrong_password = client(DISABLE, {"password": "not the password", "code": codes[0]})
    assert error_type(wrong_password) == "WrongPasswordError"
    wrong_code = client(DISABLE, {"password": PASSWORD, "code": "000000"})
    assert error_type(wrong_code) == "WrongMfaCodeError"
    assert client(DISABLE, {"password": PASSWORD, "code": app.code()}) == {
        "data": {"disableTotp": True}
    }
    assert titled(smtp, fields["email"], REMOVED)
    assert factor_events(client) == [
        ("second_factor_added", "totp"),
        ("second_factor_removed", "totp"),
    ]
    logged_in(service.client(), fields)  # today's login again
    nothing = client(REGENERATE, {"code": "123456"})
    assert error_type(nothing) == "NoSecondFactorError"
    assert error_type(client(CONFIRM, {"code": "123456"})) == "NoSecondFactorError"


def test_delete_me_needs_a_code_with_a_factor(service: Service) -> None:
    client = service.client()
    fields = registered(client)
    _, codes = enrolled(client, fields)
    assert error_type(client(DELETE_ME, {"password": PASSWORD})) == "WrongMfaCodeError"
    result = client(DELETE_WITH_CODE, {"password": PASSWORD, "code": codes[0]})
    assert result == {"data": {"deleteMe": True}}


def test_a_password_reset_does_not_bypass_the_factor(
    service: Service, smtp: MailSink
) -> None:
    client = service.client()
    fields = registered(client)
    app, _ = enrolled(client, fields)
    link = reset_link(smtp, service, fields["email"])
    assert "errors" not in reset(service.client(), link)
    assert error_type(client(REFRESH)) == "UnauthorizedError", "sessions ended"
    challenge = challenge_of(client, {**fields, "password": NEW_PASSWORD})
    assert "errors" not in second(client, challenge, app.code())


def test_wrong_codes_count_toward_the_login_limits(tmp_path: Path) -> None:
    with running_service(
        tmp_path, AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS="3"
    ) as service:
        client = service.client()
        fields = registered(client)
        app, _ = enrolled(client, fields)
        for _ in range(3):
            wrong = second(client, challenge_of(client, fields), "000000")
            assert error_type(wrong) == "WrongMfaCodeError"
        login = client(LOGIN, {"email": fields["email"], "password": PASSWORD})
        assert error_type(login) == "TooManyRequestsError"


def test_a_challenge_expires(tmp_path: Path) -> None:
    with running_service(tmp_path, AUTH_MFA_CHALLENGE_TTL="1") as service:
        client = service.client()
        fields = registered(client)
        app, _ = enrolled(client, fields)
        challenge = challenge_of(client, fields)
        time.sleep(1.5)
        assert error_type(second(client, challenge, app.code())) == "UnauthorizedError"


def test_mfa_off_offers_no_enrolment(tmp_path: Path) -> None:
    with running_service(tmp_path, AUTH_MFA="off") as service:
        client = service.client()
        fields = registered(client)
        logged_in(client, fields)
        assert error_type(client(START)) == "MfaDisabledError"
