"""The rendering context: every value templates need, computed from the spec."""

from __future__ import annotations

import json
from pathlib import Path

import black
import pytest
from graphql import build_schema

from authgen.context import (
    build_context,
    field_context,
    python_literal,
    user_owned_paths,
)
from authgen.spec import FieldSpec, load_spec

from conftest import EVERY_OPTION, EXAMPLE


def field(**options: object) -> FieldSpec:
    return FieldSpec.model_validate(options)


def test_context_is_plain_json_and_stable() -> None:
    first = build_context(load_spec(EVERY_OPTION))
    second = build_context(load_spec(EVERY_OPTION))
    assert json.dumps(first) == json.dumps(second)
    assert first["service_name"] == "every-option"
    assert first["package"] == "every_option_svc"
    assert list(first["_fields"]) == list(load_spec(EVERY_OPTION).fields)


def test_package_defaults_to_the_name_with_underscores() -> None:
    assert build_context(load_spec(EXAMPLE))["package"] == "acme_auth"


@pytest.mark.parametrize(
    ("options", "graphql", "python"),
    [
        ({"type": "string"}, "String", "str"),
        ({"type": "int"}, "Int", "int"),
        ({"type": "float"}, "Float", "float"),
        ({"type": "boolean"}, "Boolean", "bool"),
        ({"type": "date"}, "Date", "dt.date"),
        ({"type": "datetime"}, "Date", "dt.datetime"),
        ({"type": "enum", "values": ["M", "Mrs"]}, "Gender", "Gender"),
        ({"type": "int", "list": True}, "[Int]", "list[int]"),
        ({"type": "enum", "values": ["A"], "list": True}, "[Gender]", "list[Gender]"),
    ],
)
def test_types(options: dict, graphql: str, python: str) -> None:
    context = field_context("gender", field(**options))
    assert (context["graphql_type"], context["python_type"]) == (graphql, python)


def test_names_derived_from_the_field_name() -> None:
    context = field_context("lastSeen", field(type="datetime", unique=True))
    assert context["title"] == "LastSeen"
    assert context["error_type"] == "LastSeenAlreadyExistsError"
    assert context["sort_name"] == "LASTSEEN"
    assert context["indexed"] is True


def test_register_requires_a_required_field_only_without_default() -> None:
    assert field_context("a", field(type="int", required=True))["register_required"]
    with_default = field_context("a", field(type="int", required=True, default=3))
    assert not with_default["register_required"]


@pytest.mark.parametrize(
    ("options", "default_repr"),
    [
        # More double quotes than single: black keeps single quotes.
        ({"type": "string", "default": 'It\'s "x" \\'}, repr('It\'s "x" \\')),
        ({"type": "string", "default": "It's"}, '"It\'s"'),
        ({"type": "boolean", "default": False}, "False"),
        ({"type": "float", "default": 0.25}, "0.25"),
        ({"type": "date", "default": "2000-02-29"}, '"2000-02-29"'),
        (
            {"type": "datetime", "default": "2024-01-02T03:04:05+00:00"},
            '"2024-01-02T03:04:05+00:00"',
        ),
        ({"type": "string", "list": True, "default": []}, "[]"),
    ],
)
def test_default_is_a_python_literal(options: dict, default_repr: str) -> None:
    assert field_context("a", field(**options))["default_repr"] == default_repr


def test_yaml_dates_become_iso_text(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text(
        "service:\n  name: a\nfields:\n"
        "  born:\n    type: date\n    default: 2000-02-29\n"
        "  seen:\n    type: datetime\n    default: 2024-01-02 03:04:05\n"
    )
    fields = build_context(load_spec(spec))["_fields"]
    assert fields["born"]["default_repr"] == '"2000-02-29"'
    assert fields["seen"]["default_repr"] == '"2024-01-02T03:04:05+00:00"'


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "it's",
        'say "hi"',
        "both ' and \"",
        "two '' and one \"",
        'two "" and one \'',
        "back\\slash \\' tab\t line\n é\u200b",
        ["a", 'b"', 1, None],
        ("admin",),
        ("admin", "editor"),
        (),
        1e20,
        -0.5,
        True,
    ],
)
def test_python_literals_are_written_as_black_writes_them(value: object) -> None:
    """So the emitted files need no black (render.needs_black)."""
    literal = python_literal(value)
    assert eval(literal) == value
    source = f"x = {literal}\n"
    assert black.format_str(source, mode=black.Mode()) == source


def test_constraints_and_message_are_python_literals() -> None:
    context = field_context(
        "nick",
        field(
            type="string", min_length=2, pattern=r"^\w+$", message='No "quotes" \\ here'
        ),
    )
    assert context["constraints"] == {"min_length": "2", "pattern": '"^\\\\w+$"'}
    assert eval(context["message_repr"]) == 'No "quotes" \\ here'


@pytest.mark.parametrize(
    "text",
    [
        "Plain words.",
        'A "quoted" word',
        "A backslash \\ and \\n that is not a newline",
        'Triple """ quotes',
        'Ends with a quote"',
        "Two\nlines",
        "  leading spaces",
        "Tab\there",
    ],
)
def test_description_survives_the_sdl_exactly(text: str) -> None:
    literal = field_context("a", field(type="int", description=text))["description_sdl"]
    schema = build_schema(f"type Query {{\n  {literal}\n  a: Int\n}}\n")
    assert schema.query_type.fields["a"].description == text


def test_no_description_gives_nothing() -> None:
    assert field_context("a", field(type="int"))["description_sdl"] == ""


def test_hooks_is_user_owned() -> None:
    assert user_owned_paths(build_context(load_spec(EXAMPLE))) == {
        "src/acme_auth/hooks.py"
    }


def test_max_items_reaches_the_service_as_a_constraint() -> None:
    context = field_context("tags", field(type="int", list=True, max_items=5))
    assert context["constraints"] == {"max_items": "5"}
