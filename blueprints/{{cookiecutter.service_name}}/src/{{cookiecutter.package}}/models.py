"""The user model from user.yaml: its fields, their options and their validators."""

import datetime as dt
import importlib
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from . import rules
from .errors import UserValidationError
{%- set fields = cookiecutter._fields.values() | list %}
{%- for field in fields if field.enum_name %}


class {{ field.enum_name }}(str, Enum):
{%- for value in field.enum_values %}
    {{ value }} = "{{ value }}"
{%- endfor %}
{%- endfor %}


def load_validator(reference: str) -> Callable[[Any], Any]:
    """The function named `module:function`; `hooks` is this service's hooks.py.

    Resolved at import, so a missing function stops the start instead of
    failing the first request that needs it.
    """
    module_name, _, function_name = reference.partition(":")
    if module_name == "hooks":
        module_name = f"{__package__}.hooks"
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError):
        raise RuntimeError(
            f"user.yaml names the validator {reference!r}, but {module_name} has no"
            f" function {function_name!r}: add it (see hooks.py)"
        ) from None
    return function


@dataclass(frozen=True)
class FieldInfo:
    """One field of user.yaml, as the service needs it at run time."""

    name: str
    type: str  # string, int, float, boolean, date, datetime or enum
    list: bool = False
    required: bool = False
    unique: bool = False
    indexed: bool = False
    public: bool = False
    editable: bool = True
    has_default: bool = False
    default: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    format: str | None = None
    min: float | None = None
    max: float | None = None
    max_items: int | None = None
    values: tuple[str, ...] = ()  # of an enum
    message: str | None = None
    validator: Callable[[Any], Any] | None = None
    renamed_from: str | None = None  # its former name, whose stored values move to it

    def python_default(self) -> Any:
        """The default as a stored value (dates parsed), a fresh copy each time."""
        return parse_value(self, self.default) if self.has_default else None


FIELDS: dict[str, FieldInfo] = {
{%- for field in fields %}
    "{{ field.name }}": FieldInfo(
        name="{{ field.name }}",
        type="{{ field.type }}",
        list={{ field.list }},
        required={{ field.required }},
        unique={{ field.unique }},
        indexed={{ field.indexed }},
        public={{ field.public }},
        editable={{ field.editable }},
        has_default={{ field.has_default }},
        default={{ field.default_repr }},
{%- for option, value in field.constraints.items() %}
        {{ option }}={{ value }},
{%- endfor %}
{%- if field.enum_values %}
        values={{ field.values_literal }},
{%- endif %}
        message={{ field.message_repr }},
{%- if field.validator %}
        validator=load_validator("{{ field.validator }}"),
{%- endif %}
{%- if field.renamed_from %}
        renamed_from="{{ field.renamed_from }}",
{%- endif %}
    ),
{%- endfor %}
{%- if fields %}
{% endif -%}
}

PUBLIC_FIELDS = ("_id", "email_verified") + tuple(
    name for name, field in FIELDS.items() if field.public
)
#: What a token carries and `me` shows: everything but internal fields.
USER_FIELDS = ("_id", "email", "email_verified", "roles") + tuple(FIELDS)
#: What an admin sees of a user: every field but the password hash.
ADMIN_FIELDS = USER_FIELDS + ("disabled", "created_at")
#: The roles of user.yaml; `admin` is always the first.
ROLES: tuple[str, ...] = {{ cookiecutter._access.roles_literal }}
#: The fields whose value `login(email:)` accepts (service.login_fields).
LOGIN_FIELDS: tuple[str, ...] = {{ cookiecutter._access.login_fields_literal }}


def parse_value(field: FieldInfo, value: Any) -> Any:
    """A value from GraphQL (or a default) as the stored Python type."""
    if value is None:
        return None
    if field.list:
        return [_parse_item(field, item) for item in value]
    return _parse_item(field, value)


def _parse_item(field: FieldInfo, value: Any) -> Any:
    """Raises ValueError with the rule's message for a date out of range."""
    if field.type == "date" and isinstance(value, str):
        return rules.parse_date(value)
    if field.type == "datetime" and isinstance(value, str):
        return rules.parse_datetime(value)
    if field.type == "enum" and isinstance(value, Enum):
        return value.value
    if field.type == "float" and isinstance(value, int):
        return float(value)
    return value


def validate_fields(values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check and convert custom field values; raises UserValidationError.

    On creation, defaults fill what is missing and required fields must be
    there; on update only the given fields are checked.
    """
    clean: dict[str, Any] = {}
    for name, field in FIELDS.items():
        if name not in values or values[name] is None:
            if creating and field.has_default:
                clean[name] = field.python_default()
            elif creating and field.required:
                raise UserValidationError(f"{name}: is required.")
            elif name in values:
                if field.required:
                    raise UserValidationError(
                        f"{name}: is required and cannot be removed."
                    )
                clean[name] = None
            continue
        try:
            value = parse_value(field, values[name])
        except ValueError as error:
            raise UserValidationError(f"{name}: {error}") from None
        problem = rules.value_problem(field, value)
        if problem:
            raise UserValidationError(f"{name}: {field.message or problem}")
        if field.format == "email":
            value = (
                [rules.normalize_email(item) for item in value]
                if field.list
                else rules.normalize_email(value)
            )
        if field.validator is not None:
            try:
                field.validator(value)
            except (ValueError, TypeError) as error:
                raise UserValidationError(f"{name}: {error}") from None
        clean[name] = value
    return clean


def _json_safe(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def account_view(user: dict[str, Any]) -> dict[str, Any]:
    """What the user may see of themselves, JSON-safe: the claims of their token."""
    return {name: _json_safe(_value(user, name)) for name in USER_FIELDS}


def owner_view(user: dict[str, Any]) -> dict[str, Any]:
    """The `User` type of the API: every non-internal field."""
    return {name: _value(user, name) for name in USER_FIELDS}


def admin_view(user: dict[str, Any]) -> dict[str, Any]:
    """The `AdminUser` type of the API: every field but the password hash."""
    return {name: _value(user, name) for name in ADMIN_FIELDS}


def _value(user: dict[str, Any], name: str) -> Any:
    """A stored value; roles and disabled of a user stored before they existed read empty."""
    if name == "roles":
        return user.get("roles") or []
    if name == "disabled":
        return bool(user.get("disabled"))
    return user.get(name)
