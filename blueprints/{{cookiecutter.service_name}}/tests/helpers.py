"""What the account tests share: valid inputs for the user model, the GraphQL
documents, and the steps most tests begin with.

The values of the custom fields are built from the model's own rules, so the
same tests run for every user.yaml.
"""

import contextlib
import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import MailSink, Service, service_env

from {{ cookiecutter.package }} import models, rules
from {{ cookiecutter.package }}.models import FIELDS, USER_FIELDS, FieldInfo

PASSWORD = "correct horse battery"
_counter = itertools.count(1)

#: `me { ... }` and `user { ... }` selections of every field the owner may read.
USER_SELECTION = " ".join(USER_FIELDS)

REGISTER = "mutation($fields: UserRegisterInput!) { register(fields: $fields) }"
EMAIL_AVAILABLE = "query($email: String!) { emailAvailable(email: $email) }"
LOGIN = (
    "mutation($email: String!, $password: String!) { login(email: $email, password: $password)"
    " { token expiryDate user { " + USER_SELECTION + " } } }"
)
ME = "{ me { " + USER_SELECTION + " } }"
REFRESH = "mutation { refreshToken { token expiryDate } }"
LOGOUT = "mutation { logout }"
UPDATE_ME = (
    "mutation($fields: UserUpdateInput!) { updateMe(fields: $fields) { token expiryDate user { "
    + USER_SELECTION
    + " } } }"
)
DELETE_ME = "mutation($password: String!) { deleteMe(password: $password) }"


def _string(field: FieldInfo, seed: int) -> str:
    if field.format == "email":
        candidates = [f"user{seed}@example.org"]
    elif field.format == "url":
        candidates = [f"https://example.org/u{seed}"]
    else:
        candidates = [
            f"user{seed}",
            f"u{seed}",
            f"{seed}",
            f"User{seed}",
            f"user-{seed}",
            f"user_{seed}",
        ]
    for candidate in candidates:
        if field.min_length is not None and len(candidate) < field.min_length:
            candidate = candidate + "x" * (field.min_length - len(candidate))
        if field.max_length is not None and len(candidate) > field.max_length:
            candidate = candidate[-field.max_length :]
        if rules.item_problem(field, candidate) is None:
            return candidate
    pytest.skip(f"no sample value satisfies the rules of field {field.name!r}")


def _number(field: FieldInfo, seed: int) -> float:
    low = field.min if field.min is not None else 0
    value = low + seed
    if field.max is not None and value > field.max:
        value = low + (seed % max(1, int(field.max - low) + 1))
    return value


def sample_value(field: FieldInfo, seed: int) -> Any:
    """A valid GraphQL value for the field; different seeds give different values."""
    if field.type == "string":
        item: Any = _string(field, seed)
    elif field.type == "int":
        item = int(_number(field, seed))
    elif field.type == "float":
        item = float(_number(field, seed))
    elif field.type == "boolean":
        item = seed % 2 == 0
    elif field.type == "date":
        item = (dt.date(2000, 1, 1) + dt.timedelta(days=seed)).isoformat()
    elif field.type == "datetime":
        moment = dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=seed)
        item = moment.isoformat().replace("+00:00", "Z")
    else:
        enum: type[Enum] = getattr(models, field.name[0].upper() + field.name[1:])
        members = list(enum)
        item = members[seed % len(members)].value
    return [item] if field.list else item


def registration(email: str | None = None, **overrides: Any) -> dict[str, Any]:
    """UserRegisterInput of a new user: every required field, unique values."""
    seed = next(_counter)
    fields = {
        name: sample_value(field, seed)
        for name, field in FIELDS.items()
        if field.required and not field.has_default
    }
    return {
        "email": email or f"user{seed}@example.org",
        "password": PASSWORD,
        **fields,
        **overrides,
    }


def unique_field() -> FieldInfo | None:
    return next((field for field in FIELDS.values() if field.unique), None)


def editable_field() -> FieldInfo | None:
    return next((field for field in FIELDS.values() if field.editable), None)


def constrained_field() -> tuple[FieldInfo, Any] | None:
    """A field and a value that breaks one of its rules."""
    for field in FIELDS.values():
        bad: Any = None
        if field.type == "string" and field.min_length:
            bad = "x" * (field.min_length - 1)
        elif field.type == "string" and field.max_length:
            bad = "x" * (field.max_length + 1)
        elif field.type == "string" and field.format:
            bad = "not valid"
        elif field.type in ("int", "float") and field.min is not None:
            bad = math.floor(field.min) - 1
        elif field.type in ("int", "float") and field.max is not None:
            bad = math.ceil(field.max) + 1
        if bad is not None:
            return field, [bad] if field.list else bad
    return None


def rule_message(field: FieldInfo, bad: Any) -> str:
    """The words the error must contain for the broken rule."""
    if field.message:
        return field.message
    item = bad[0] if field.list else bad
    return rules.item_problem(field, item) or ""


def no_secret(text: str) -> bool:
    """Whether a response text holds no password or hash."""
    return (
        not re.search(r"password|\$argon2", text, re.IGNORECASE)
        and PASSWORD not in text
    )


def error_type(result: dict) -> str:
    return result["errors"][0]["type"]


def registered(client: Any, **overrides: Any) -> dict[str, Any]:
    """Registers a new user; returns the fields it was registered with."""
    fields = registration(**overrides)
    assert client(REGISTER, {"fields": fields}) == {"data": {"register": True}}
    return fields


def logged_in(client: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Logs the client in (cookie kept, token set) and returns UserAndToken."""
    result = client(LOGIN, {"email": fields["email"], "password": fields["password"]})
    assert "errors" not in result, result
    client.token = result["data"]["login"]["token"]
    return result["data"]["login"]


def post(
    url: str, query: str, variables: dict | None = None, **headers: str
) -> httpx.Response:
    """One request with exactly the given headers and no cookie jar."""
    return httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers
    )


@contextlib.contextmanager
def running_service(
    folder: Path, smtp: MailSink | None = None, **env: str
) -> Iterator[Service]:
    """A service of its own, started with these extra settings and stopped on
    leaving (a module's own service; per test, see conftest.make_service)."""
    service = Service(folder, {**service_env(folder, smtp), **env})
    service.start()
    try:
        yield service
    finally:
        service.stop()
