"""Each spec mistake, with the exact line a user sees (file:line:col: message)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from graphql import build_schema

from authgen.loader import SpecError, load
from authgen.render import blueprints_dir
from authgen.spec import (
    FIELD_TYPES,
    TYPE_NAMES,
    FieldSpec,
    ServiceSpec,
    RULES_PATH,
    check,
    load_spec,
    rules,
)

from conftest import EXAMPLE, MINIMAL

HEAD = "service:\n  name: acme\nfields:\n"  # fields start on line 4


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        check(load(text, "user.yaml"), "user.yaml")
    return caught.value.lines()


def field_problems(fields: str) -> list[str]:
    return problems(HEAD + fields)


MISTAKES = [
    # Unknown keys, at every level, pointing at the key.
    pytest.param(
        "service:\n  name: acme\nextra: 1\n",
        "user.yaml:3:1: unknown key 'extra'; expected one of service, fields, exclude, roles",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "service:\n  name: acme\n  colour: red\n",
        "user.yaml:3:3: service: unknown key 'colour'; expected one of name, package, mfa, passwordless, login_fields",
        id="unknown-service-key",
    ),
    pytest.param(
        HEAD + "  age:\n    type: int\n    minimum: 3\n",
        "user.yaml:6:5: fields.age: unknown key 'minimum'; did you mean 'min'?",
        id="unknown-field-key",
    ),
    pytest.param(
        HEAD + "  age:\n    type: integer\n",
        "user.yaml:5:11: fields.age.type: unknown type 'integer'; expected one of"
        " string, int, float, boolean, date, datetime, enum",
        id="unknown-type",
    ),
    pytest.param(
        HEAD + "  age:\n    required: true\n",
        "user.yaml:4:3: fields.age: missing required key 'type'",
        id="missing-type",
    ),
    pytest.param(
        "fields: {}\n",
        "user.yaml:1:1: missing required key 'service'",
        id="missing-service",
    ),
    pytest.param(
        "service:\n  package: acme\n",
        "user.yaml:1:1: service: missing required key 'name'",
        id="missing-service-name",
    ),
    # Wrong value types.
    pytest.param(
        HEAD + '  age:\n    type: int\n    required: "yes"\n',
        "user.yaml:6:15: fields.age.required: expected true or false, got 'yes'",
        id="required-yes",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    min_length: abc\n",
        "user.yaml:6:17: fields.nick.min_length: expected an integer, got 'abc'",
        id="min-length-abc",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    min_length: true\n",
        "user.yaml:6:17: fields.nick.min_length: expected an integer, got True",
        id="min-length-bool",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    max_length: 0\n",
        "user.yaml:6:17: fields.nick.max_length: must be at least 1, got 0",
        id="max-length-zero",
    ),
    pytest.param(
        HEAD + "  age:\n    type: int\n    min: low\n",
        "user.yaml:6:10: fields.age.min: expected a number, got 'low'",
        id="min-not-a-number",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    description: 3\n",
        "user.yaml:6:18: fields.nick.description: expected a string, got 3",
        id="description-not-a-string",
    ),
    pytest.param(
        HEAD + "  site:\n    type: string\n    format: phone\n",
        "user.yaml:6:13: fields.site.format: expected 'email' or 'url', got 'phone'",
        id="unknown-format",
    ),
    pytest.param(
        HEAD + "  - age\n",
        "user.yaml:4:3: fields: expected a mapping of keys, got a list",
        id="fields-is-a-list",
    ),
    pytest.param(
        HEAD + "  age: int\n",
        "user.yaml:4:8: fields.age: expected a mapping of keys, got 'int'",
        id="field-is-a-scalar",
    ),
    pytest.param(
        "service: acme\n",
        "user.yaml:1:10: service: expected a mapping of keys, got 'acme'",
        id="service-is-a-scalar",
    ),
    # Enums.
    pytest.param(
        HEAD + "  gender:\n    type: enum\n",
        "user.yaml:5:11: fields.gender.type: an enum needs 'values', a list of its values",
        id="enum-without-values",
    ),
    pytest.param(
        HEAD + "  gender:\n    type: enum\n    values: []\n",
        "user.yaml:6:13: fields.gender.values: an enum needs at least one value",
        id="enum-with-empty-values",
    ),
    pytest.param(
        HEAD + "  gender:\n    type: enum\n    values: [M, my-value]\n",
        "user.yaml:6:17: fields.gender.values.1: enum value 'my-value' is not a valid"
        " GraphQL enum name; use letters, digits and underscores, starting with a"
        " letter or underscore (true, false and null are taken)",
        id="enum-value-not-a-name",
    ),
    pytest.param(
        HEAD + "  gender:\n    type: enum\n    values: [M, 2]\n",
        "user.yaml:6:17: fields.gender.values.1: expected a string, got 2",
        id="enum-value-not-a-string",
    ),
    pytest.param(
        HEAD + "  gender:\n    type: enum\n    values: [M, M]\n",
        "user.yaml:6:13: fields.gender.values: enum values must be distinct",
        id="enum-values-repeated",
    ),
    # Bounds.
    pytest.param(
        HEAD + "  age:\n    type: int\n    min: 5\n    max: 1\n",
        "user.yaml:6:10: fields.age.min: min 5 is greater than max 1",
        id="min-greater-than-max",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    min_length: 5\n    max_length: 2\n",
        "user.yaml:6:17: fields.nick.min_length: min_length 5 is greater than max_length 2",
        id="min-length-greater-than-max-length",
    ),
    # Defaults that fail the field's own validators.
    pytest.param(
        HEAD + "  nick:\n    type: string\n    min_length: 5\n    default: ab\n",
        "user.yaml:7:14: fields.nick.default: 'ab' must be at least 5 characters long.",
        id="default-too-short",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    max_length: 2\n    default: abc\n",
        "user.yaml:7:14: fields.nick.default: 'abc' must be at most 2 characters long.",
        id="default-too-long",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    pattern: '^[a-z]+$'\n    default: A1\n",
        "user.yaml:7:14: fields.nick.default: 'A1' does not have the expected format:"
        " the whole value must match the pattern '^[a-z]+$'",
        id="default-does-not-match-pattern",
    ),
    pytest.param(
        HEAD + "  mail:\n    type: string\n    format: email\n    default: nobody\n",
        "user.yaml:7:14: fields.mail.default: 'nobody' must be an email address.",
        id="default-not-an-email",
    ),
    pytest.param(
        HEAD + "  site:\n    type: string\n    format: url\n    default: example.com\n",
        "user.yaml:7:14: fields.site.default: 'example.com' must be an http(s) URL.",
        id="default-not-a-url",
    ),
    pytest.param(
        HEAD + "  gender:\n    type: enum\n    values: [M, F]\n    default: X\n",
        "user.yaml:7:14: fields.gender.default: 'X' is not one of M, F",
        id="default-not-in-enum-values",
    ),
    pytest.param(
        HEAD + "  age:\n    type: int\n    default: abc\n",
        "user.yaml:6:14: fields.age.default: 'abc' is not an integer",
        id="default-wrong-type",
    ),
    pytest.param(
        HEAD + "  age:\n    type: int\n    default: 2.5\n",
        "user.yaml:6:14: fields.age.default: 2.5 is not an integer",
        id="default-float-for-int",
    ),
    pytest.param(
        HEAD + "  age:\n    type: int\n    max: 10\n    default: 11\n",
        "user.yaml:7:14: fields.age.default: 11 must be at most 10.",
        id="default-above-max",
    ),
    pytest.param(
        HEAD + "  ok:\n    type: boolean\n    default: 'yes'\n",
        "user.yaml:6:14: fields.ok.default: 'yes' is not a boolean",
        id="default-not-a-boolean",
    ),
    pytest.param(
        HEAD + "  born:\n    type: date\n    default: 2020-13-45\n",
        "user.yaml:6:14: fields.born.default: '2020-13-45' must be a date (YYYY-MM-DD).",
        id="default-impossible-date",
    ),
    pytest.param(
        HEAD + "  born:\n    type: date\n    default: tomorrow\n",
        "user.yaml:6:14: fields.born.default: 'tomorrow' must be a date (YYYY-MM-DD).",
        id="default-date-does-not-parse",
    ),
    pytest.param(
        HEAD + "  seen:\n    type: datetime\n    default: soon\n",
        "user.yaml:6:14: fields.seen.default: 'soon' must be a date and time (ISO 8601).",
        id="default-datetime-does-not-parse",
    ),
    pytest.param(
        HEAD + "  tags:\n    type: string\n    list: true\n    default: abc\n",
        "user.yaml:7:14: fields.tags.default: 'abc' must be a list",
        id="list-default-not-a-list",
    ),
    pytest.param(
        HEAD
        + "  tags:\n    type: string\n    list: true\n    max_length: 2\n    default: [ab, abc]\n",
        "user.yaml:8:14: fields.tags.default: ['ab', 'abc'] must be at most 2 characters long.",
        id="list-default-item-too-long",
    ),
    # max_items.
    pytest.param(
        HEAD + "  tags:\n    type: string\n    max_items: 3\n",
        "user.yaml:6:5: fields.tags.max_items: applies only to a list field (list: true)",
        id="max-items-not-a-list",
    ),
    pytest.param(
        HEAD + "  tags:\n    type: string\n    list: true\n    max_items: 0\n",
        "user.yaml:7:16: fields.tags.max_items: must be at least 1, got 0",
        id="max-items-zero",
    ),
    pytest.param(
        HEAD
        + "  tags:\n    type: int\n    list: true\n    max_items: 2\n    default: [1, 2, 3]\n",
        "user.yaml:8:14: fields.tags.default: [1, 2, 3] must have at most 2 items.",
        id="list-default-above-max-items",
    ),
    pytest.param(
        HEAD
        + "  tags:\n    type: int\n    list: true\n    default: ["
        + "0, " * 100
        + "0]\n",
        "user.yaml:7:14: fields.tags.default: "
        + repr([0] * 101)
        + " must have at most 100 items.",
        id="list-default-above-the-default-cap",
    ),
    # Patterns and formats match the whole value; strings have a default cap.
    pytest.param(
        HEAD + "  nick:\n    type: string\n    pattern: '[a-z]+'\n    default: abc1\n",
        "user.yaml:7:14: fields.nick.default: 'abc1' does not have the expected format:"
        " the whole value must match the pattern '[a-z]+'",
        id="default-pattern-is-a-full-match",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    default: " + "x" * 1001 + "\n",
        "user.yaml:6:14: fields.nick.default: "
        + repr("x" * 1001)
        + " must be at most 1000 characters long.",
        id="default-above-the-default-length-cap",
    ),
    pytest.param(
        HEAD + '  nick:\n    type: string\n    default: "a\\0b"\n',
        "user.yaml:6:14: fields.nick.default: 'a\\x00b' must not contain control characters.",
        id="default-with-a-control-character",
    ),
    pytest.param(
        HEAD
        + '  mail:\n    type: string\n    format: email\n    default: "a@'
        + "." * 40
        + '@"\n',
        "user.yaml:7:14: fields.mail.default: 'a@"
        + "." * 40
        + "@' must be an email address.",
        id="default-email-not-an-address",
    ),
    pytest.param(
        HEAD
        + "  seen:\n    type: datetime\n    default: '9999-12-31T23:59:59-14:00'\n",
        "user.yaml:6:14: fields.seen.default: '9999-12-31T23:59:59-14:00'"
        " must be within the years 1 to 9999 in UTC.",
        id="default-datetime-out-of-range",
    ),
    # Regular expressions.
    pytest.param(
        HEAD + "  nick:\n    type: string\n    pattern: '[a-'\n",
        "user.yaml:6:14: fields.nick.pattern: '[a-' is not a valid Python regular"
        " expression: unterminated character set at position 0",
        id="pattern-does-not-compile",
    ),
    # Names.
    pytest.param(
        HEAD + "  2fa:\n    type: boolean\n",
        "user.yaml:4:3: field name '2fa' must start with a letter and contain only letters,"
        " digits and underscores (a GraphQL and Python name)",
        id="name-starts-with-digit",
    ),
    pytest.param(
        HEAD + "  my-field:\n    type: boolean\n",
        "user.yaml:4:3: field name 'my-field' must start with a letter and contain only"
        " letters, digits and underscores (a GraphQL and Python name)",
        id="name-with-dash",
    ),
    pytest.param(
        HEAD + "  class:\n    type: boolean\n",
        "user.yaml:4:3: field name 'class' is a Python keyword",
        id="name-python-keyword",
    ),
    pytest.param(
        HEAD + "  match:\n    type: boolean\n",
        "user.yaml:4:3: field name 'match' is a Python keyword",
        id="name-python-soft-keyword",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n  Nick:\n    type: string\n",
        "user.yaml:6:3: field name 'Nick' differs from 'nick' only in case;"
        " field names must differ ignoring case",
        id="names-differ-only-in-case",
    ),
    # Options that do not fit.
    pytest.param(
        HEAD + "  age:\n    type: int\n    pattern: '^1'\n",
        "user.yaml:6:5: fields.age.pattern: does not apply to an int field (only to string)",
        id="pattern-on-int",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    min: 1\n",
        "user.yaml:6:5: fields.nick.min: does not apply to a string field (only to int, float)",
        id="min-on-string",
    ),
    pytest.param(
        HEAD + "  ok:\n    type: boolean\n    values: [A]\n",
        "user.yaml:6:5: fields.ok.values: does not apply to a boolean field (only to enum)",
        id="values-on-boolean",
    ),
    pytest.param(
        HEAD + "  tags:\n    type: string\n    list: true\n    unique: true\n",
        "user.yaml:7:13: fields.tags.unique: a list field cannot be unique",
        id="unique-on-list",
    ),
    pytest.param(
        HEAD + "  tags:\n    type: int\n    list: true\n    index: true\n",
        "user.yaml:7:12: fields.tags.index: a list field cannot be indexed",
        id="index-on-list",
    ),
    pytest.param(
        HEAD + "  nick:\n    type: string\n    validator: hooks.check_nick\n",
        "user.yaml:6:16: fields.nick.validator: 'hooks.check_nick' must look like"
        " 'module:function' (e.g. 'hooks:check_username')",
        id="validator-malformed",
    ),
    # The service.
    pytest.param(
        "service:\n  name: Acme_Auth\n",
        "user.yaml:2:9: service.name: 'Acme_Auth' is not a valid service name; use lower-case"
        " letters, digits and single dashes, starting with a letter",
        id="service-name",
    ),
    pytest.param(
        "service:\n  name: acme\n  package: acme-auth\n",
        "user.yaml:3:12: service.package: 'acme-auth' is not a valid Python package name;"
        " use letters, digits and underscores, starting with a letter, not a Python keyword",
        id="service-package-with-dash",
    ),
    pytest.param(
        "service:\n  name: acme\n  package: import\n",
        "user.yaml:3:12: service.package: 'import' is not a valid Python package name;"
        " use letters, digits and underscores, starting with a letter, not a Python keyword",
        id="service-package-keyword",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
def test_mistake_is_reported_with_its_position(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    "name",
    [
        "_id",
        "email",
        "Email",
        "EMAIL",
        "email_verified",
        "Email_Verified",
        "password",
        "PassWord",
    ],
)
def test_built_in_field_names_are_refused_ignoring_case(name: str) -> None:
    assert field_problems(f"  {name}:\n    type: string\n") == [
        f"user.yaml:4:3: field name {name!r} clashes with the built-in {name.lower()!r}"
        " (names are compared ignoring case)"
    ]


def test_all_mistakes_are_reported_at_once_sorted_by_position() -> None:
    text = HEAD + (
        "  age:\n    type: int\n    min: 3\n    max: 1\n"  # rule error, line 6
        "  2fa:\n    type: boolean\n"  # name error, line 8
        "  height:\n    type: integer\n"  # shape error, line 11
    )
    assert problems(text) == [
        "user.yaml:6:10: fields.age.min: min 3 is greater than max 1",
        "user.yaml:8:3: field name '2fa' must start with a letter and contain only letters,"
        " digits and underscores (a GraphQL and Python name)",
        "user.yaml:11:11: fields.height.type: unknown type 'integer'; expected one of"
        " string, int, float, boolean, date, datetime, enum",
    ]


def test_service_and_field_mistakes_together() -> None:
    text = "service:\n  name: Bad Name\n  extra: 1\nfields:\n  nick:\n    type: text\n"
    assert problems(text) == [
        "user.yaml:2:9: service.name: 'Bad Name' is not a valid service name; use lower-case"
        " letters, digits and single dashes, starting with a letter",
        "user.yaml:3:3: service: unknown key 'extra'; expected one of name, package, mfa, passwordless, login_fields",
        "user.yaml:6:11: fields.nick.type: unknown type 'text'; expected one of"
        " string, int, float, boolean, date, datetime, enum",
    ]


def test_a_valid_spec_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    path.write_text(
        HEAD + "  born:\n    type: date\n    default: 2000-02-29\n"
        "  tags:\n    type: string\n    list: true\n"
    )
    spec = load_spec(path)

    assert spec.service.package_name == "acme"
    born, tags = spec.fields["born"], spec.fields["tags"]
    assert born.default == dt.date(2000, 2, 29)
    assert (born.required, born.unique, born.public, born.index, born.editable) == (
        False,
        False,
        False,
        False,
        True,
    )
    assert tags.list and tags.default is None


def test_empty_fields_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    path.write_text("service:\n  name: bare\nfields:\n")
    assert load_spec(path).fields == {}


def test_package_override(tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    path.write_text("service:\n  name: acme-auth\n  package: acme\n")
    assert load_spec(path).service.package_name == "acme"


def test_example_is_valid_and_uses_every_type_and_option() -> None:
    """The documented example is the spec reference by example: it must cover everything."""
    spec = load_spec(EXAMPLE)
    fields = spec.fields.values()

    assert {field.type for field in fields} == set(FIELD_TYPES)
    used = set().union(*(field.model_fields_set for field in fields))
    assert used == set(FieldSpec.model_fields)
    assert {field.format for field in fields} >= {"email", "url"}
    assert any(field.list and field.default is not None for field in fields)
    # Service options: `package`, `mfa` and `passwordless` are shown, commented
    # out, with their defaults.
    assert "# package: acme_auth" in EXAMPLE.read_text()
    assert "# mfa: optional" in EXAMPLE.read_text()
    assert '# passwordless: "off"' in EXAMPLE.read_text()
    assert set(ServiceSpec.model_fields) == {
        "name",
        "package",
        "mfa",
        "passwordless",
        "login_fields",
    }
    assert spec.service.login_fields == ["email", "username"]
    assert "editor" in spec.roles


@pytest.mark.parametrize("name", ["OR", "And"])
def test_filter_keys_are_refused(name: str) -> None:
    assert field_problems(f"  {name}:\n    type: string\n") == [
        f"user.yaml:4:3: field name {name!r} clashes with the built-in {name.lower()!r}"
        " (names are compared ignoring case)"
    ]


@pytest.mark.parametrize("name", ["user", "date", "query", "filterThing", "enum"])
def test_enum_type_names_must_not_clash_with_the_schema(name: str) -> None:
    type_name = name[0].upper() + name[1:]
    assert field_problems(f"  {name}:\n    type: enum\n    values: [A]\n") == [
        f"user.yaml:4:3: enum field {name!r} would name its GraphQL type {type_name!r},"
        " which the service already defines; choose another name"
    ]


def test_every_schema_type_name_is_reserved(generated) -> None:
    """Keeps TYPE_NAMES in step with the blueprint's schema."""
    out = generated(MINIMAL)
    schema = build_schema((out / "src/bare_auth/schema.graphql").read_text())
    for name in schema.type_map:
        if not name.startswith(("__", "Filter", "Sort")):
            assert name in TYPE_NAMES, name


def test_max_items_is_a_list_option(tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    path.write_text(
        HEAD
        + "  tags:\n    type: int\n    list: true\n    max_items: 2\n    default: [1, 2]\n"
    )
    assert load_spec(path).fields["tags"].max_items == 2


def test_defaults_are_checked_by_the_services_own_rules_module(generated) -> None:
    """One source: the rules authgen checks a default with are the file the service ships."""
    source = blueprints_dir() / RULES_PATH
    assert Path(rules().__file__) == source
    emitted = generated(MINIMAL) / "src/bare_auth/rules.py"
    assert emitted.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    ("options", "default"),
    [
        ({"type": "string", "min_length": 5}, "ab"),
        ({"type": "string", "max_length": 2}, "abc"),
        ({"type": "string", "pattern": "[a-z]+"}, "abc\n"),
        ({"type": "string", "format": "email"}, "a@b"),
        ({"type": "string", "format": "url"}, "ftp://example.org"),
        ({"type": "int", "min": 3}, 2),
        ({"type": "float", "max": 1.5}, 2.5),
    ],
)
def test_a_bad_default_gets_the_message_the_service_gives(
    options: dict, default: object
) -> None:
    """The words of a spec mistake are those of the service's refusal (a
    failed pattern is then named, which the service does not do)."""
    text = HEAD + "  nick: " + json.dumps({**options, "default": default}) + "\n"
    message = rules().value_problem(FieldSpec.model_validate(options), default)
    assert message
    [line] = problems(text)
    if "pattern" in options:
        message = f"{message.rstrip('.')}: the whole value must match the pattern"
        message += f" {options['pattern']!r}"
    assert line.endswith(f"fields.nick.default: {default!r} {message}")
