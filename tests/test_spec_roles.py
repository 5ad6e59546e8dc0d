"""The spec's `roles` and `service.login_fields`: their mistakes (file:line:col)
and what a valid spec gives the emitted service."""

from __future__ import annotations

import pytest

from authgen.context import build_context
from authgen.loader import SpecError, load
from authgen.schema import json_schema
from authgen.spec import check

FIELDS = """\
fields:
  username:
    type: string
    unique: true
  nickname:
    type: string
  tags:
    type: string
    list: true
  code:
    type: int
    unique: true
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        check(load(text, "user.yaml"), "user.yaml")
    return caught.value.lines()


@pytest.mark.parametrize(
    ("login_fields", "message"),
    [
        pytest.param(
            "[email, nobody]",
            "user.yaml:3:25: service.login_fields.1: 'nobody' is not a field;"
            " one of: email, username, nickname, tags, code",
            id="unknown",
        ),
        pytest.param(
            "[email, nickname]",
            "user.yaml:3:25: service.login_fields.1: 'nickname' cannot log users in:"
            " a login field must be a `type: string`, `unique: true` field, not a list",
            id="not-unique",
        ),
        pytest.param(
            "[email, code]",
            "user.yaml:3:25: service.login_fields.1: 'code' cannot log users in:"
            " a login field must be a `type: string`, `unique: true` field, not a list",
            id="not-a-string",
        ),
        pytest.param(
            "[email, tags]",
            "user.yaml:3:25: service.login_fields.1: 'tags' cannot log users in:"
            " a login field must be a `type: string`, `unique: true` field, not a list",
            id="a-list",
        ),
        pytest.param(
            "[email, email]",
            "user.yaml:3:25: service.login_fields.1: 'email' is listed twice; keep one",
            id="twice",
        ),
        pytest.param(
            "email",
            "user.yaml:3:17: service.login_fields: expected a list, got 'email'",
            id="not-a-list",
        ),
    ],
)
def test_login_field_mistakes(login_fields: str, message: str) -> None:
    text = f"service:\n  name: acme\n  login_fields: {login_fields}\n" + FIELDS
    assert problems(text) == [message]


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        pytest.param(
            "[admin, Editor]",
            "user.yaml:2:16: roles.1: 'Editor' is not a valid role name; use lower-case"
            " letters, digits, dashes and underscores, starting with a letter",
            id="upper-case",
        ),
        pytest.param(
            "[editor, editor]",
            "user.yaml:2:17: roles.1: 'editor' is listed twice; keep one",
            id="twice",
        ),
        pytest.param(
            "[editor, 3]",
            "user.yaml:2:17: roles.1: expected a string, got 3",
            id="not-a-string",
        ),
    ],
)
def test_role_mistakes(roles: str, message: str) -> None:
    text = f"service: {{name: acme}}\nroles: {roles}\n"
    assert problems(text) == [message]


def test_roles_and_login_fields_reach_the_service() -> None:
    text = (
        "service:\n  name: acme\n  login_fields: [username, email]\n"
        "roles: [editor, admin]\n" + FIELDS
    )
    context = build_context(check(load(text, "user.yaml"), "user.yaml"))
    assert context["_access"]["roles"] == ["admin", "editor"]
    assert context["_access"]["login_fields"] == ["username", "email"]


def test_the_defaults() -> None:
    context = build_context(check(load("service:\n  name: acme\n", "u.yaml"), "u"))
    assert context["_access"]["roles"] == ["admin"]
    assert context["_access"]["login_fields"] == ["email"]


def test_the_json_schema_describes_both() -> None:
    schema = json_schema()
    service = schema["$defs"]["ServiceSpec"]["properties"]
    assert "login_fields" in service and service["login_fields"]["description"]
    assert schema["properties"]["roles"]["items"]["pattern"]


@pytest.mark.parametrize("name", ["roles", "Disabled"])
def test_built_in_names_are_refused_as_fields(name: str) -> None:
    found = problems(f"service:\n  name: acme\nfields:\n  {name}:\n    type: string\n")
    assert "clashes with the built-in" in found[0]
