"""The rules of user fields and their messages: the one place they are defined.

The service checks every value with them; authgen loads this very file to
check each field's `default` when it generates the service, so a mistake in
user.yaml and a refused request are reported with the same words. Hence plain
Python: no template syntax and no imports of the service's other modules.

Every check is linear in the size of the value, and every value is bounded
first: a string field takes at most `max_length` characters (DEFAULT_MAX_LENGTH
when not given), a list at most `max_items` (DEFAULT_MAX_ITEMS), an email
address at most EMAIL_MAX_LENGTH.
"""

import datetime as dt
import re
import unicodedata
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email

#: The longest value of a string field that gives no `max_length`.
DEFAULT_MAX_LENGTH = 1000
#: The most items of a list field that gives no `max_items`.
DEFAULT_MAX_ITEMS = 100
#: Longer text is refused before it is parsed (RFC 5321 allows 254 characters
#: in a path; the margin is for what Unicode normalisation folds away).
EMAIL_MAX_LENGTH = 320

#: C0 and C1 controls (NUL included) and lone surrogates, which no text encodes.
#: Tab and line breaks are text in a free-text field, so only `CONTROL` allows them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
URL = re.compile(r"https?://[^\s/$.?#]\S*", re.IGNORECASE)

CONTROL_MESSAGE = "must not contain control characters."
EMAIL_MESSAGE = "must be an email address."


class Rules(Protocol):
    """The options of a field these rules read (the spec's and the service's field)."""

    # Read-only properties, so that frozen dataclasses and models match too.
    @property
    def list(self) -> bool: ...
    @property
    def min_length(self) -> int | None: ...
    @property
    def max_length(self) -> int | None: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def format(self) -> str | None: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def max_items(self) -> int | None: ...


def value_problem(field: Rules, value: Any) -> str | None:
    """Why a value (a list, for a list field) breaks the field's rules, or None."""
    if field.list:
        limit = field.max_items or DEFAULT_MAX_ITEMS
        if len(value) > limit:
            return f"must have at most {limit} items."
        if any(item is None for item in value):
            return "must not contain null items."
        for item in value:
            problem = item_problem(field, item)
            if problem:
                return problem
        return None
    return item_problem(field, value)


def item_problem(field: Rules, value: Any) -> str | None:
    """Why one value breaks the field's rules, or None. Lengths are checked
    first, so the pattern and the formats only ever see bounded text."""
    if isinstance(value, str):
        max_length = field.max_length or DEFAULT_MAX_LENGTH
        if field.min_length is not None and len(value) < field.min_length:
            return f"must be at least {field.min_length} characters long."
        if len(value) > max_length:
            return f"must be at most {max_length} characters long."
        if CONTROL.search(value):
            return CONTROL_MESSAGE
        if field.pattern is not None and not re.fullmatch(field.pattern, value):
            return "does not have the expected format."
        if field.format == "email":
            return email_problem(value)
        if field.format == "url" and not URL.fullmatch(value):
            return "must be an http(s) URL."
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if field.min is not None and value < field.min:
            return f"must be at least {field.min:g}."
        if field.max is not None and value > field.max:
            return f"must be at most {field.max:g}."
    return None


def normalize_email(value: str) -> str:
    """The one form an address is stored and compared in; ValueError(message) if none.

    Unicode NFKC first (full-width and compatibility letters fold onto their
    plain forms), then email-validator: an ASCII local part (no lookalike
    letters), no invisible or control characters, a syntactically valid domain,
    kept in its ASCII (IDNA) form. The whole address is lower-cased.
    """
    if len(value) > EMAIL_MAX_LENGTH:
        raise ValueError(EMAIL_MESSAGE)
    if CONTROL_OR_BREAK.search(value):
        raise ValueError(CONTROL_MESSAGE)
    address = unicodedata.normalize("NFKC", value).strip()
    try:
        valid = validate_email(
            address, check_deliverability=False, allow_smtputf8=False
        )
    except EmailNotValidError:
        raise ValueError(EMAIL_MESSAGE) from None
    # Without SMTPUTF8 every valid address has an ASCII form (typed optional).
    if valid.ascii_email is None:
        raise ValueError(EMAIL_MESSAGE)
    return valid.ascii_email.lower()


def email_problem(value: str) -> str | None:
    try:
        normalize_email(value)
    except ValueError as error:
        return str(error)
    return None


def password_problem(password: str) -> str | None:
    """Why a password is refused whatever its length: no visible character, or a control one."""
    if CONTROL_OR_BREAK.search(password):
        return CONTROL_MESSAGE
    if not password.strip():
        return "must contain a character other than spaces."
    return None


def parse_date(value: str) -> dt.date:
    """A date from `YYYY-MM-DD`, or the date part of an ISO 8601 date and time."""
    try:
        if len(value) <= 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        raise ValueError("must be a date (YYYY-MM-DD).") from None


def parse_datetime(value: str) -> dt.datetime:
    """An ISO 8601 date and time in UTC (none given: UTC); it must stay within
    the years 1 to 9999 once in UTC, which Python and the databases can hold."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date and time (ISO 8601).") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:
        raise ValueError("must be within the years 1 to 9999 in UTC.") from None
