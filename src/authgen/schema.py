"""The JSON Schema of user.yaml, for editors (`authgen schema`).

The shape comes from the spec's pydantic model; each key is described with
its row of the README's tables (a test keeps the two the same), and the
naming rules are added as patterns, so an editor completes keys, shows what
they do and flags most mistakes as they are typed. `authgen validate` stays
the full check (rules between options, defaults).
"""

from __future__ import annotations

import json
from typing import Any

from authgen.spec import (
    ENUM_VALUE_PATTERN,
    NAME_PATTERN,
    ROLE_PATTERN,
    SERVICE_NAME_PATTERN,
    VALIDATOR_PATTERN,
    Spec,
)

_SERVICE_KEYS = {
    "name": (
        "lower-case letters, digits and single dashes, starting with a letter; the distribution name and the default output folder. Required."
    ),
    "package": (
        "a Python identifier, not a keyword. Default: `name` with `-` replaced by `_`."
    ),
    "mfa": (
        "`off`, `optional` or `required`: whether users may add a second factor (TOTP, passkeys) to their account, or must (a user without one enrols at their next login); the service's AUTH_MFA, which may override it (see the service's `docs/security.md`). Default: `optional`."
    ),
    "passwordless": (
        "`off` or `passkeys`: whether a passkey alone (a discoverable, user-verified credential) logs in, without the password; needs `mfa` other than `off`; the service's AUTH_PASSWORDLESS. Default: `off`."
    ),
    "login_fields": (
        "values that `login(email:)` accepts: `email` (compared case-insensitively) and unique, single-valued `string` fields (e.g. `[email, username]`). Default: `[email]`."
    ),
}
_FIELD_KEYS = {
    "type": (
        "`string`, `int`, `float`, `boolean`, `date` (YYYY-MM-DD), `datetime` (ISO 8601, stored in UTC), `enum`. Required."
    ),
    "required": ("`register` must give it, unless it has a default. Default: `false`."),
    "unique": (
        "unique index; a duplicate gives `<Field>AlreadyExistsError`. Applies to: not lists. Default: `false`."
    ),
    "public": (
        "readable and filterable by anyone through the `user*` queries; private fields are visible only to their owner (`me`, the auth token). Default: `false`."
    ),
    "index": (
        "database index; on a public field also comparison operators (`_operators`) and sort values `<FIELD>_ASC`/`_DESC` (unique fields get them too). Applies to: not lists. Default: `false`."
    ),
    "editable": (
        "`false`: set at register, not changeable through `updateMe`. Default: `true`."
    ),
    "list": ("a list of the type; other options apply to each item. Default: `false`."),
    "default": (
        "filled in at register when not given; must pass the field's own rules. Default: none."
    ),
    "description": ("emitted into the GraphQL SDL. Default: none."),
    "min_length": (
        "length bounds, `min_length <= max_length`; `max_length` raises or lowers the default cap. Applies to: `string`. Default: none; at most 1,000 characters when `max_length` is not given."
    ),
    "max_length": (
        "length bounds, `min_length <= max_length`; `max_length` raises or lowers the default cap. Applies to: `string`. Default: none; at most 1,000 characters when `max_length` is not given."
    ),
    "pattern": (
        "a Python regular expression the whole value must match (`re.fullmatch`: `'[a-z]+'` refuses `\"abc1\"`, and a trailing newline never passes). Applies to: `string`. Default: none."
    ),
    "format": (
        "`email` (checked and stored like the account email, see Decisions) or `url` (`http(s)://`, the whole value). Applies to: `string`. Default: none."
    ),
    "max_items": (
        "most items a list field takes (`max_items >= 1`). Applies to: lists. Default: `100`."
    ),
    "min": ("bounds, `min <= max`. Applies to: `int`, `float`. Default: none."),
    "max": ("bounds, `min <= max`. Applies to: `int`, `float`. Default: none."),
    "values": (
        "the enum's values, distinct GraphQL names. Applies to: `enum`. Required for an enum."
    ),
    "message": (
        "replaces the validation message of every rule of the field. Default: a message naming the rule."
    ),
    "validator": (
        '`module:function` in the service (e.g. `hooks:check_nickname`); raise `ValueError("...")` to refuse a value. Default: none.'
    ),
    "renamed_from": (
        'the field\'s former name: at start the stored values move to this name (see "Changing the model"); a valid field name that is neither a built-in nor another field; may be removed once the service has started with it. Default: none.'
    ),
}


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema()
    service, field = schema["$defs"]["ServiceSpec"], schema["$defs"]["FieldSpec"]
    for model, descriptions in ((service, _SERVICE_KEYS), (field, _FIELD_KEYS)):
        for key, description in descriptions.items():
            model["properties"][key]["description"] = description
    service["properties"]["name"]["pattern"] = SERVICE_NAME_PATTERN.pattern
    service["properties"]["package"]["anyOf"][0]["pattern"] = "^[A-Za-z_][A-Za-z0-9_]*$"
    field["properties"]["values"]["anyOf"][0]["items"][
        "pattern"
    ] = ENUM_VALUE_PATTERN.pattern
    field["properties"]["validator"]["anyOf"][0]["pattern"] = VALIDATOR_PATTERN.pattern
    field["properties"]["renamed_from"]["anyOf"][0]["pattern"] = NAME_PATTERN.pattern
    properties = schema["properties"]
    properties["service"]["description"] = "The service: its names."
    properties["fields"]["description"] = (
        "Your fields of the user, by name (letters, digits and underscores,"
        " starting with a letter); email, password and _id are built in."
    )
    properties["roles"][
        "description"
    ] = "Role names users may be given (lower-case; `admin` always exists)."
    properties["roles"]["items"]["pattern"] = ROLE_PATTERN.pattern
    properties["fields"]["propertyNames"] = {"pattern": NAME_PATTERN.pattern}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "authgen spec (user.yaml)",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"
