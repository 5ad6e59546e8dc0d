"""Input validation over HTTP: bounded, linear checks; whole-value patterns; default
caps; one form per email address; no control characters; typed errors for dates
out of range and oversized filters, with nothing in the log but the refusal.

The fields used are found in the model; a test the model has no field for is skipped.
"""

import statistics
import threading
import time
from typing import Any

import httpx
import pytest
from helpers import (
    EMAIL_AVAILABLE,
    LOGIN,
    PASSWORD,
    REGISTER,
    UPDATE_ME,
    error_type,
    logged_in,
    registered,
    registration,
    sample_value,
)

from {{ cookiecutter.package }} import rules
from {{ cookiecutter.package }}.models import FIELDS, FieldInfo

RECOVERY = "query($email: String!) { sendPasswordRecoveryEmail(email: $email) }"
USER_MANY = (
    "query($f: FilterFindManyUserPublicInfoInput) { userMany(filter: $f) { _id } }"
)
USER_COUNT = "query($f: FilterUserPublicInfoInput) { userCount(filter: $f) }"
FAR_DATETIME = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC


def field_where(condition: Any) -> FieldInfo:
    field = next((field for field in FIELDS.values() if condition(field)), None)
    if field is None:
        pytest.skip("the model has no field for this test")
    return field


def as_value(field: FieldInfo, item: Any) -> Any:
    return [item] if field.list else item


def refusal(result: dict, kind: str) -> str:
    """The message of the one typed error of a result."""
    error = result["errors"][0]
    assert error["type"] == error["extensions"]["type"] == kind, result
    return error["message"]


def assert_quiet_log(service: Any) -> None:
    """A client's mistake leaves no traceback and no SQL in the log."""
    log = service.log.read_text()
    assert "Traceback" not in log and "SELECT" not in log


# Linear, bounded checks.


def test_a_huge_email_value_is_refused_at_once_and_the_service_stays_responsive(
    service,
):
    field = field_where(lambda f: f.format == "email")
    fields = registration(**{field.name: as_value(field, "a@" + "." * 40000 + "@")})
    answers: list[tuple[dict, float]] = []

    def send() -> None:
        for _ in range(3):
            started = time.monotonic()
            response = httpx.post(
                f"{service.url}/graphql",
                json={"query": REGISTER, "variables": {"fields": fields}},
                timeout=120,
            )
            answers.append((response.json(), time.monotonic() - started))

    sender = threading.Thread(target=send)
    sender.start()
    health: list[float] = []
    while sender.is_alive():
        started = time.monotonic()
        assert httpx.get(f"{service.url}/healthz", timeout=60).status_code == 200
        health.append(time.monotonic() - started)
        time.sleep(0.02)
    sender.join()
    assert all(error_type(result) == "UserValidationError" for result, _ in answers)
    # It took 17 s, and /healthz waited as long.
    assert statistics.median(seconds for _, seconds in answers) < 1.0
    assert max(health) < 1.0


def test_a_pattern_must_match_the_whole_value(client):
    field = field_where(lambda f: f.type == "string" and f.pattern)
    value = sample_value(field, 7001)
    item = (value[0] if field.list else value)[:-1] + "\n"
    result = client(
        REGISTER, {"fields": registration(**{field.name: as_value(field, item)})}
    )
    assert refusal(result, "UserValidationError").startswith(f"{field.name}: ")


def test_a_url_must_be_the_whole_value(client):
    field = field_where(lambda f: f.format == "url")
    result = client(
        REGISTER,
        {
            "fields": registration(
                **{field.name: as_value(field, "https://example.org/a\n")}
            )
        },
    )
    assert (
        refusal(result, "UserValidationError")
        == f"{field.name}: {field.message or 'must be an http(s) URL.'}"
    )


def test_strings_without_max_length_take_at_most_the_default_cap(client):
    field = field_where(
        lambda f: f.type == "string"
        and not (f.list or f.max_length or f.pattern or f.format)
    )
    too_long = client(
        REGISTER,
        {"fields": registration(**{field.name: "x" * (rules.DEFAULT_MAX_LENGTH + 1)})},
    )
    message = refusal(too_long, "UserValidationError")
    assert (
        message
        == f"{field.name}: {field.message or 'must be at most 1000 characters long.'}"
    )
    assert client(
        REGISTER,
        {"fields": registration(**{field.name: "x" * rules.DEFAULT_MAX_LENGTH})},
    ) == {"data": {"register": True}}


@pytest.mark.parametrize("declared", [True, False], ids=["max_items", "default-cap"])
def test_lists_take_at_most_max_items(client, declared):
    field = field_where(
        lambda f: f.list and bool(f.max_items) == declared and not f.pattern
    )
    limit = field.max_items or rules.DEFAULT_MAX_ITEMS
    item = sample_value(field, 7002)[0]
    result = client(
        REGISTER, {"fields": registration(**{field.name: [item] * (limit + 1)})}
    )
    assert (
        refusal(result, "UserValidationError")
        == f"{field.name}: {field.message or f'must have at most {limit} items.'}"
    )
    assert client(
        REGISTER, {"fields": registration(**{field.name: [item] * limit})}
    ) == {"data": {"register": True}}


def test_lists_take_no_null_items(client):
    field = field_where(lambda f: f.list and not f.pattern)
    items = sample_value(field, 7004) + [None]
    result = client(REGISTER, {"fields": registration(**{field.name: items})})
    assert (
        refusal(result, "UserValidationError")
        == f"{field.name}: {field.message or 'must not contain null items.'}"
    )


# One form per email address; no control characters.


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize(
    ("variant", "kind"),
    [
        (lambda local: local + "\x00@example.org", "UserValidationError"),
        (
            lambda local: local[:3] + "\u200b" + local[3:] + "@example.org",
            "UserValidationError",
        ),
        (lambda local: local + "@exam\u200bple.org", "UserValidationError"),
        (lambda local: full_width(local) + "@example.org", "EmailAlreadyExistsError"),
        (
            lambda local: local + "@" + full_width("example") + ".org",
            "EmailAlreadyExistsError",
        ),
    ],
    ids=[
        "nul",
        "zero-width-local",
        "zero-width-domain",
        "full-width-local",
        "full-width-domain",
    ],
)
def test_email_variants_are_refused_or_fold_onto_the_account(client, variant, kind):
    plain = registered(client)["email"]
    local = plain.partition("@")[0]
    result = client(REGISTER, {"fields": registration(email=variant(local))})
    message = refusal(result, kind)
    if kind == "UserValidationError":
        assert message.startswith("email: ")


def test_login_availability_and_recovery_use_the_same_form(service, client, smtp):
    plain = registered(client)["email"]
    variant = full_width(plain.partition("@")[0]) + "@" + full_width("example") + ".org"
    user = logged_in(service.client(), {"email": variant, "password": PASSWORD})["user"]
    assert user["email"] == plain
    assert client(EMAIL_AVAILABLE, {"email": variant}) == {
        "data": {"emailAvailable": False}
    }
    assert client(RECOVERY, {"email": variant}) == {
        "data": {"sendPasswordRecoveryEmail": True}
    }
    assert len(smtp.wait_for(plain)) == 1
    # A malformed address fails as an unknown one would, not as a validation error.
    for malformed in ("a\x00@example.org", "a@" + "." * 400):
        result = client(LOGIN, {"email": malformed, "password": PASSWORD})
        refusal(result, "UserNotFoundError")
    assert_quiet_log(service)


@pytest.mark.parametrize(
    "password",
    [" " * 8, "\u3000" * 8, "correct\x00horse battery", "correct\thorse battery"],
)
def test_blank_passwords_and_control_characters_are_refused(client, password):
    result = client(REGISTER, {"fields": registration(password=password)})
    assert refusal(result, "UserValidationError").startswith("password: ")


def test_control_characters_are_refused_in_every_string_field(client):
    fields = [f for f in FIELDS.values() if f.type == "string"]
    if not fields:
        pytest.skip("the model has no string field")
    for field in fields:
        # Within the length bounds: the control character is the only fault.
        item = "a" * (max(field.min_length or 0, 2) - 1) + "\x00"
        result = client(
            REGISTER, {"fields": registration(**{field.name: as_value(field, item)})}
        )
        message = refusal(result, "UserValidationError")
        assert (
            message == f"{field.name}: {field.message or rules.CONTROL_MESSAGE}"
        ), field.name


# Dates out of range, oversized filters: typed errors, a quiet log.


def test_a_datetime_out_of_range_is_a_validation_error(service, client):
    field = field_where(lambda f: f.type == "datetime")
    result = client(
        REGISTER,
        {"fields": registration(**{field.name: as_value(field, FAR_DATETIME)})},
    )
    message = refusal(result, "UserValidationError")
    assert message == f"{field.name}: must be within the years 1 to 9999 in UTC."
    assert_quiet_log(service)


def test_updating_a_datetime_out_of_range_is_a_validation_error(service, client):
    field = field_where(lambda f: f.type == "datetime" and f.editable)
    logged_in(client, registered(client))
    result = client(UPDATE_ME, {"fields": {field.name: as_value(field, FAR_DATETIME)}})
    assert refusal(result, "UserValidationError").startswith(f"{field.name}: ")
    assert_quiet_log(service)


def test_a_filter_on_a_datetime_out_of_range_is_a_bad_request(service, client):
    field = field_where(lambda f: f.type == "datetime" and f.public and not f.list)
    result = client(USER_MANY, {"f": {field.name: FAR_DATETIME}})
    assert refusal(result, "BadRequestError").startswith(f"{field.name}: ")
    assert_quiet_log(service)


def alternatives(count: int) -> dict:
    return {"OR": [{"email_verified": index % 2 == 0} for index in range(count)]}


def test_a_filter_takes_at_most_100_conditions(client):
    # An OR group and its 99 comparisons: 100.
    assert "errors" not in client(USER_MANY, {"f": alternatives(99)})
    for query in (USER_MANY, USER_COUNT):
        result = client(query, {"f": alternatives(100)})
        assert (
            refusal(result, "BadRequestError")
            == "A filter may have at most 100 conditions."
        )


@pytest.mark.parametrize(
    "graphql_filter",
    [
        alternatives(3000),
        {"_operators": {"_id": {"in": [f"{index:024x}" for index in range(101)]}}},
        {
            "AND": [{"email_verified": True}] * 60,
            "OR": [{"email_verified": False}] * 60,
        },
    ],
    ids=["3000-alternatives", "101-in-items", "two-groups"],
)
def test_a_huge_filter_is_refused_before_the_database(service, client, graphql_filter):
    refusal(client(USER_MANY, {"f": graphql_filter}), "BadRequestError")
    assert_quiet_log(service)
