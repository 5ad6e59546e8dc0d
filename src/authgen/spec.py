"""The spec: the user model described in `user.yaml`, and its checks.

Pydantic checks the shape (known keys, value types); the rules that tie
several options together (min <= max, a default that passes its own
validators, names that stay valid everywhere they are emitted) are plain
functions below, so every mistake is reported with its position, all at once.
A default is checked with the emitted service's own rules module, loaded from
the blueprint, so both report a bad value with the same message.
"""

from __future__ import annotations

import builtins
import datetime as dt
import difflib
import functools
import importlib.util
import keyword
import re
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from pydantic import ValidationError

from authgen.loader import Document, Problem, SpecError, read
from authgen.render import blueprints_dir

FieldType = Literal["string", "int", "float", "boolean", "date", "datetime", "enum"]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]

#: Names the emitted service defines itself, compared case-insensitively
#: because error and sort names are derived from field names.
RESERVED_NAMES = frozenset(
    {
        "_id",
        "id",
        "email",
        "email_verified",
        "password",
        "previouspassword",
        "password_hash",
        "created_at",
        "updated_at",
        "sub",
        "iat",
        "exp",
        "token",
        "roles",
        "disabled",
        # The filter inputs' own keys.
        "or",
        "and",
    }
)

#: Names an enum field's type (the field name, first letter upper-cased) must
#: not take: the types of the emitted schema, and the names models.py imports.
TYPE_NAMES = frozenset(
    {
        "Query",
        "Mutation",
        "User",
        "UserPublicInfo",
        "UserRegisterInput",
        "UserUpdateInput",
        "UserAndToken",
        "UserPublicInfoPagination",
        "PaginationInfo",
        "Token",
        "Notification",
        "Notifications",
        "Session",
        "AuditEvent",
        "MongoID",
        "Date",
        "String",
        "Int",
        "Float",
        "Boolean",
        "ID",
        "Enum",
        "Any",
        "Callable",
        "FieldInfo",
        "TotpEnrolment",
        "Passkey",
        "AdminUser",
        "AdminUserPagination",
        "AdminUserFilterInput",
        "AdminUserOperatorsInput",
        "AdminUserSortInput",
        "AdminUserUpdateInput",
        "AdminUser_idOperatorsInput",
        "AdminUserEmailOperatorsInput",
    }
)

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SERVICE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
VALIDATOR_PATTERN = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
ENUM_VALUE_PATTERN = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
ROLE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
#: The field rules of the emitted service, inside the blueprint.
RULES_PATH = Path("{{cookiecutter.service_name}}/src/{{cookiecutter.package}}/rules.py")

Number = int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ServiceSpec(_Strict):
    name: StrictStr
    package: StrictStr | None = None
    mfa: Literal["off", "optional", "required"] = "optional"
    passwordless: Literal["off", "passkeys"] = "off"
    login_fields: list[StrictStr] = Field(default_factory=lambda: ["email"])

    @property
    def package_name(self) -> str:
        return self.package or self.name.replace("-", "_")


class FieldSpec(_Strict):
    type: FieldType
    required: StrictBool = False
    unique: StrictBool = False
    public: StrictBool = False
    index: StrictBool = False
    editable: StrictBool = True
    list: StrictBool = False
    default: Any = None
    description: StrictStr | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    pattern: StrictStr | None = None
    format: Literal["email", "url"] | None = None
    min: Number | None = None
    max: Number | None = None
    max_items: int | None = Field(default=None, ge=1)
    values: builtins.list[StrictStr] | None = None
    message: StrictStr | None = None
    validator: StrictStr | None = None
    renamed_from: StrictStr | None = None

    @property
    def indexed(self) -> bool:
        return self.index or self.unique


class Spec(_Strict):
    service: ServiceSpec
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    #: Generated paths (or globs) the user opted out of: authgen leaves them alone.
    exclude: list[StrictStr] = Field(default_factory=list)
    #: Role names users may be given; `admin` always exists.
    roles: list[StrictStr] = Field(default_factory=list)


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file; raises SpecError listing every mistake."""
    path = Path(path)
    document = read(path)
    return check(document, str(path))


def check(document: Document, filename: str) -> Spec:
    """Every mistake at once: a shape error in one field does not hide the
    rule errors of the others, so each part is also checked on its own."""
    data = document.data
    if data.get("fields") is None and "fields" in data:
        data["fields"] = {}
    problems: list[Problem] = []
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        problems += [_shape_problem(document, e) for e in error.errors()]
    service = data.get("service")
    fields = data.get("fields")
    if isinstance(service, dict):
        problems += _check_service(service, document)
        login_fields = service.get("login_fields")
        if isinstance(login_fields, list):
            problems += _check_login_fields(login_fields, fields, document)
    roles = data.get("roles")
    if isinstance(roles, list):
        problems += _check_roles(roles, document)
    if isinstance(fields, dict):
        seen: dict[str, str] = {}
        for name, raw in fields.items():
            problems += _check_name(name, seen, document)
            field = _valid(FieldSpec, raw)
            if field is not None:
                problems += _check_field(name, field, document)
                problems += _check_renamed_from(name, field, fields, document)
    exclude = data.get("exclude")
    if isinstance(exclude, list):
        problems += _check_exclude(exclude, document)
    if problems or spec is None:
        raise SpecError(filename, problems)
    return spec


def _valid(model: type[_Strict], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


_KNOWN_KEYS: dict[int, tuple[str, ...]] = {
    0: tuple(Spec.model_fields),
    1: tuple(ServiceSpec.model_fields),
    2: tuple(FieldSpec.model_fields),
}


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


def _shape_problem(document: Document, error: Any) -> Problem:
    # Unions (min: int | float) add the member's name to the location.
    path = tuple(p for p in error["loc"] if p not in ("int", "float", "[key]"))
    kind = error["type"]
    if "int" in error["loc"] or "float" in error["loc"]:
        kind = "float_type"
    given = error.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1])
        known = _KNOWN_KEYS[1 if path[0] == "service" else 2 if len(path) > 1 else 0]
        close = difflib.get_close_matches(key, known, n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else "expected one of " + ", ".join(known)
        )
        where = f"{_dotted(path[:-1])}: " if len(path) > 1 else ""
        return document.problem(path, f"{where}unknown key '{key}'; {hint}", key=True)
    where = _dotted(path)
    if kind == "missing":
        parent = f"{_dotted(path[:-1])}: " if len(path) > 1 else ""
        return document.problem(
            path[:-1], f"{parent}missing required key '{path[-1]}'", key=True
        )
    if kind == "literal_error" and path[-1] == "type":
        expected = ", ".join(FIELD_TYPES)
        message = f"unknown type {given!r}; expected one of {expected}"
    elif kind == "literal_error":
        message = f"expected {error['ctx']['expected']}, got {given!r}"
    elif kind == "bool_type":
        message = f"expected true or false, got {given!r}"
    elif kind.startswith("int_"):
        message = f"expected an integer, got {given!r}"
    elif kind.startswith("float_"):
        message = f"expected a number, got {given!r}"
    elif kind == "string_type":
        message = f"expected a string, got {given!r}"
    elif kind in ("dict_type", "model_type"):
        message = f"expected a mapping of keys, got {_yaml_kind(given)}"
    elif kind in ("greater_than_equal", "greater_than"):
        bound = error["ctx"].get("ge", error["ctx"].get("gt"))
        message = f"must be at least {bound}, got {given!r}"
    elif kind == "list_type":
        message = f"expected a list, got {_yaml_kind(given)}"
    else:
        message = f"{error['msg'].lower()}, got {given!r}"
    return document.problem(path, f"{where}: {message}")


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _check_service(service: Any, document: Document) -> list[Problem]:
    """Checks the raw mapping, so a wrong name is reported next to an unknown key."""
    problems = []
    name, package = service.get("name"), service.get("package")
    if isinstance(name, str) and not SERVICE_NAME_PATTERN.match(name):
        problems.append(
            document.problem(
                ("service", "name"),
                f"service.name: {name!r} is not a valid service name; use lower-case"
                " letters, digits and single dashes, starting with a letter",
            )
        )
    if isinstance(package, str) and not _is_identifier(package):
        problems.append(
            document.problem(
                ("service", "package"),
                f"service.package: {package!r} is not a valid Python package name;"
                " use letters, digits and underscores, starting with a letter,"
                " not a Python keyword",
            )
        )
    if service.get("passwordless") == "passkeys" and service.get("mfa") == "off":
        problems.append(
            document.problem(
                ("service", "passwordless"),
                "service.passwordless: passkeys needs service.mfa other than off:"
                " passkeys are second factors",
            )
        )
    return problems


def _check_login_fields(
    names: list[Any], fields: Any, document: Document
) -> list[Problem]:
    """Each entry is `email` or a unique, single-valued string field, named once."""
    problems = []
    fields = fields if isinstance(fields, dict) else {}
    seen = set()
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue  # the shape check reports it
        where = ("service", "login_fields", index)
        field = _valid(FieldSpec, fields.get(name)) if name in fields else None
        message = None
        if name in seen:
            message = f"{name!r} is listed twice; keep one"
        elif name == "email":
            pass
        elif name not in fields:
            known = ", ".join(["email", *(str(key) for key in fields)])
            message = f"{name!r} is not a field; one of: {known}"
        elif field is not None and (
            field.type != "string" or field.list or not field.unique
        ):
            message = (
                f"{name!r} cannot log users in: a login field must be a"
                " `type: string`, `unique: true` field, not a list"
            )
        seen.add(name)
        if message:
            problems.append(
                document.problem(where, f"service.login_fields.{index}: {message}")
            )
    return problems


def _check_roles(roles: list[Any], document: Document) -> list[Problem]:
    """Role names: lower-case names, each once (`admin` is always there)."""
    problems = []
    seen = set()
    for index, role in enumerate(roles):
        if not isinstance(role, str):
            continue  # the shape check reports it
        message = None
        if not ROLE_PATTERN.match(role):
            message = (
                f"{role!r} is not a valid role name; use lower-case letters, digits,"
                " dashes and underscores, starting with a letter"
            )
        elif role in seen:
            message = f"{role!r} is listed twice; keep one"
        seen.add(role)
        if message:
            problems.append(
                document.problem(("roles", index), f"roles.{index}: {message}")
            )
    return problems


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


def _check_name(name: str, seen: dict[str, str], document: Document) -> list[Problem]:
    def problem(message: str) -> list[Problem]:
        return [document.problem(("fields", name), message, key=True)]

    if name.lower() in RESERVED_NAMES:
        return problem(
            f"field name {name!r} clashes with the built-in {name.lower()!r}"
            " (names are compared ignoring case)"
        )
    if not NAME_PATTERN.match(name):
        return problem(
            f"field name {name!r} must start with a letter and contain only"
            " letters, digits and underscores (a GraphQL and Python name)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return problem(f"field name {name!r} is a Python keyword")
    if name.lower() in seen:
        return problem(
            f"field name {name!r} differs from {seen[name.lower()]!r} only in case;"
            " field names must differ ignoring case"
        )
    seen[name.lower()] = name
    return []


def _check_renamed_from(
    name: str, field: FieldSpec, fields: dict[str, Any], document: Document
) -> list[Problem]:
    """The old name must be one a field could have had, and no longer has."""
    old = field.renamed_from
    if old is None:
        return []
    reason = None
    if old.lower() in RESERVED_NAMES:
        reason = f"{old!r} is a built-in field, never a field of user.yaml"
    elif not NAME_PATTERN.match(old) or keyword.iskeyword(old):
        reason = f"{old!r} is not a valid field name"
    elif old in fields:
        reason = (
            f"{old!r} is a field of user.yaml; name a field that no longer exists"
            " (renamed_from moves a removed field's data)"
        )
    if reason is None:
        return []
    where = ("fields", name, "renamed_from")
    return [document.problem(where, f"fields.{name}.renamed_from: {reason}")]


_OPTIONS_BY_TYPE = {
    "string": {"min_length", "max_length", "pattern", "format"},
    "int": {"min", "max"},
    "float": {"min", "max"},
    "boolean": set(),
    "date": set(),
    "datetime": set(),
    "enum": {"values"},
}
_TYPED_OPTIONS = set().union(*_OPTIONS_BY_TYPE.values())


def _check_field(name: str, field: FieldSpec, document: Document) -> list[Problem]:
    problems: list[Problem] = []

    def add(option: str, message: str, *, key: bool = False) -> None:
        where = f"fields.{name}.{option}: "
        problems.append(
            document.problem(("fields", name, option), where + message, key=key)
        )

    given = field.model_fields_set
    for option in sorted(given & (_TYPED_OPTIONS - _OPTIONS_BY_TYPE[field.type])):
        article = "an" if field.type[0] in "aeiou" else "a"
        users = [
            kind for kind, options in _OPTIONS_BY_TYPE.items() if option in options
        ]
        add(
            option,
            f"does not apply to {article} {field.type} field (only to {', '.join(users)})",
            key=True,
        )
    if field.type == "enum":
        type_name = name[0].upper() + name[1:]
        if type_name in TYPE_NAMES or type_name.startswith(("Filter", "Sort")):
            problems.append(
                document.problem(
                    ("fields", name),
                    f"enum field {name!r} would name its GraphQL type {type_name!r},"
                    " which the service already defines; choose another name",
                    key=True,
                )
            )
        if not field.values:
            if "values" in given:
                add("values", "an enum needs at least one value")
            else:
                add("type", "an enum needs 'values', a list of its values")
        else:
            for index, value in enumerate(field.values):
                if not ENUM_VALUE_PATTERN.match(value) or value in (
                    "true",
                    "false",
                    "null",
                ):
                    problems.append(
                        document.problem(
                            ("fields", name, "values", index),
                            f"fields.{name}.values.{index}: enum value {value!r}"
                            " is not a valid GraphQL enum name; use letters, digits"
                            " and underscores, starting with a letter or underscore"
                            " (true, false and null are taken)",
                        )
                    )
            if len(set(field.values)) != len(field.values):
                add("values", "enum values must be distinct")
    if _greater(field.min_length, field.max_length):
        add(
            "min_length",
            f"min_length {field.min_length} is greater than max_length {field.max_length}",
        )
    if _greater(field.min, field.max):
        add("min", f"min {field.min} is greater than max {field.max}")
    if field.pattern is not None:
        try:
            re.compile(field.pattern)
        except re.error as error:
            add(
                "pattern",
                f"{field.pattern!r} is not a valid Python regular expression: {error}",
            )
    if field.validator is not None and not VALIDATOR_PATTERN.match(field.validator):
        add(
            "validator",
            f"{field.validator!r} must look like 'module:function'"
            " (e.g. 'hooks:check_username')",
        )
    if "max_items" in given and not field.list:
        add("max_items", "applies only to a list field (list: true)", key=True)
    if field.list and field.indexed:
        option = "unique" if field.unique else "index"
        add(option, f"a list field cannot be {'unique' if field.unique else 'indexed'}")
    broken = any("not a valid regular expression" in p.message for p in problems)
    if field.default is not None and not broken:
        reason = default_problem(field, field.default)
        if reason:
            add("default", f"{field.default!r} {_with_pattern(field, reason)}")
    return problems


def _with_pattern(field: FieldSpec, reason: str) -> str:
    """Names the pattern a default fails, which the service's message does not."""
    items = field.default if field.list else [field.default]
    if field.pattern is None or all(
        not isinstance(item, str) or re.fullmatch(field.pattern, item) for item in items
    ):
        return reason
    pattern = field.pattern
    return f"{reason.rstrip('.')}: the whole value must match the pattern {pattern!r}"


def _greater(low: Any, high: Any) -> bool:
    return low is not None and high is not None and low > high


@functools.cache
def rules() -> ModuleType:
    """The emitted service's rules.py, loaded from the blueprint once."""
    path = blueprints_dir() / RULES_PATH
    module_spec = importlib.util.spec_from_file_location("authgen_service_rules", path)
    assert module_spec is not None and module_spec.loader is not None, path
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def default_problem(field: FieldSpec, value: Any) -> str | None:
    """Why `value` is not a valid value of `field`, or None when it is.

    The YAML types are checked here (at run time GraphQL checks them); the
    field's rules, with their messages, are those of the service.
    """
    if field.list and not isinstance(value, list):
        return "must be a list"
    for item in value if field.list else [value]:
        reason = _type_problem(field, item)
        if reason:
            return reason
    return rules().value_problem(field, value)


def _type_problem(field: FieldSpec, value: Any) -> str | None:
    kind = field.type
    if kind == "boolean":
        return None if isinstance(value, bool) else "is not a boolean"
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "is not an integer"
    if kind == "float" and (
        isinstance(value, bool) or not isinstance(value, (int, float))
    ):
        return "is not a number"
    if kind in ("int", "float"):
        return None
    if kind == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
            return "is not a date (YYYY-MM-DD)"
        return _parses(rules().parse_date, value)
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            return _parses(rules().parse_datetime, value.isoformat())
        if not isinstance(value, str):
            return "is not a datetime (ISO 8601)"
        return _parses(rules().parse_datetime, value)
    if not isinstance(value, str):
        return "is not a string"
    if kind == "enum":
        values = field.values or []
        return None if value in values else f"is not one of {', '.join(values)}"
    return None


def _parses(parse: Any, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parse(value)
    except ValueError as error:
        return str(error)
    return None


def _check_exclude(patterns: list[Any], document: Document) -> list[Problem]:
    """Each entry names files of the service: a relative path or glob with `/`."""
    problems = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue  # the shape check reports it
        parts = pattern.rstrip("/").split("/")
        if (
            "\\" in pattern
            or parts[0] == ".authgen"
            or any(part in ("", ".", "..") for part in parts)
        ):
            problems.append(
                document.problem(
                    ("exclude", index),
                    f"exclude.{index}: {pattern!r} is not a path inside the service;"
                    " write it relative to the service, with / (e.g. docs/security.md"
                    " or src/*/templates/*.html)",
                )
            )
    return problems
