"""The user model as every store keeps it: fields, indexes, defaults, refusals.

The stores read this at run time from the model's field table
(models.FIELDS): no store has generated code. `sync_users` is the one place
where stored data is brought up to the current model at start, the same steps
on every database; each store only says how to do each step on its own
(`UsersSchema`).
"""

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from .. import rules
from ..models import FIELDS, FieldInfo
from .base import SchemaError

#: What is stored of every user whatever the model.
BUILT_IN_KEYS = (
    "_id",
    "email",
    "email_verified",
    "password_hash",
    "created_at",
    "roles",
    "disabled",
)
#: Everything stored of a user: the built-in fields, then the model's.
USER_KEYS = (*BUILT_IN_KEYS, *FIELDS)
#: Built-in fields added after the first release, and what users stored before get.
BUILT_IN_DEFAULTS = {"roles": [], "disabled": False}
#: The fields of the other record kinds (the SQL tables' columns, the MongoDB documents' keys).
REFRESH_TOKEN_KEYS = (
    "token_hash",
    "session_id",
    "user_id",
    "expires_at",
    "rotated",
    "rotated_at",
    "created_at",
    "last_used_at",
    "address",
    "user_agent",
)
USER_TOKEN_KEYS = ("token_hash", "user_id", "purpose", "email", "expires_at")
MAIL_KEYS = (
    "_id",
    "recipient",
    "template",
    "context",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
)
FACTOR_KEYS = ("user_id", "secret", "confirmed", "last_step", "recovery", "created_at")
PASSKEY_KEYS = (
    "credential_id",
    "user_id",
    "name",
    "public_key",
    "sign_count",
    "transports",
    "backed_up",
    "created_at",
    "last_used_at",
)
AUDIT_EVENT_KEYS = (
    "_id",
    "at",
    "event",
    "user_id",
    "actor",
    "address",
    "user_agent",
    "outcome",
    "details",
)
#: Index names that are ours to create and drop on the users.
OWN_INDEX_PREFIXES = ("ix_users_", "ux_users_")


@dataclass(frozen=True)
class UserIndex:
    name: str
    keys: tuple[str, ...]
    unique: bool = False
    #: Over a list field's items (PostgreSQL: GIN on JSONB; SQLite: its JSON
    #: text; MongoDB: multikey), for the equality filters on whole lists.
    items: bool = False


#: The public fields with few values, which sorted pages are most often filtered
#: by: the first eight (an index keeps narrow, and PostgreSQL and MongoDB take
#: at most 32 keys).
FEW_VALUED = (
    ("email_verified",)
    + tuple(
        name
        for name, field in FIELDS.items()
        if field.public and not field.list and field.type in ("enum", "boolean")
    )
)[:8]


def user_indexes() -> dict[str, UserIndex]:
    """The users' indexes for the current model, by name.

    A unique field gets its unique index. An indexed field gets one for
    filters and sorts on it, ties broken by id (so no sort in memory; a
    unique field too, since users without a value tie),
    and every other public field one too, for the equality filters strangers
    may send (so no public query scans the users); a public list field one
    over its items. An indexed field also
    gets (_id, field), so pages in id order filtered on it read that index
    alone, not every skipped user.

    An indexed (so sortable) field's two indexes also carry the few-valued
    public fields (email_verified, public enums and booleans) after its id: a
    page sorted on it and filtered by one of those (`gender = M` by age), or
    in id order filtered by both (`gender = M or age < 10`), walks an index
    alone, without reading each passed user's row to test the filter.
    """
    indexes = [
        UserIndex("ux_users_email", ("email",), unique=True),
        UserIndex("ix_users_email_verified", ("email_verified", "_id")),
    ]
    for name, field in FIELDS.items():
        carried = tuple(other for other in FEW_VALUED if other != name)
        if field.unique:
            indexes.append(UserIndex(f"ux_users_{name}", (name,), unique=True))
        if field.public and field.list:
            indexes.append(UserIndex(f"ix_users_{name}", (name,), items=True))
        elif field.indexed:
            indexes.append(UserIndex(f"ix_users_{name}", (name, "_id", *carried)))
        elif field.public and not field.unique:
            indexes.append(UserIndex(f"ix_users_{name}", (name, "_id")))
        if field.indexed:
            indexes.append(UserIndex(f"ix_users_{name}_by_id", ("_id", name, *carried)))
    return {index.name: index for index in indexes}


#: What a stored value of each field type is, so a change of type can be seen.
_KINDS = {
    "string": "str",
    "enum": "str",
    "int": "int",
    "float": "float",
    "boolean": "bool",
    "date": "date",
    "datetime": "datetime",
}
_INTEGER = re.compile(r"[+-]?\d+")


def field_kind(field: FieldInfo) -> str:
    """The kind of value a field stores: a list, or one of _KINDS' values."""
    return "list" if field.list else _KINDS[field.type]


class UsersSchema(Protocol):
    """The steps of `sync_users` on one database (one connection or client)."""

    async def stored_fields(self) -> dict[str, str] | None:
        """The fields stored users may have values of (the model's and removed
        ones, not the built-ins), with their kinds; None when the database
        does not say (MongoDB written by an older generation)."""

    async def rename_field(self, old: str, new: str) -> None: ...

    async def values(self, name: str, kind: str) -> list[tuple[Any, Any]]:
        """(user id, value) of the users with a value of the field, stored as `kind`."""

    async def retype_field(self, name: str, values: list[tuple[Any, Any]]) -> None:
        """Store the field in the model's type now, with these values by user id."""

    async def add_missing_fields(self) -> None:
        """Make room for fields the stored users lack (SQL: new columns, empty)."""

    async def remember_fields(self, kinds: dict[str, str]) -> None:
        """Record the stored fields for the next start (SQL: its columns do)."""

    async def fill(self, name: str, value: Any) -> None:
        """Give `value` to every user without a value of the field."""

    async def count_missing(self, name: str) -> int: ...

    async def count_users(self) -> int: ...

    async def indexes(self) -> dict[str, tuple[str, ...]]:
        """The users' indexes present now: their keys by name."""

    async def drop_index(self, name: str) -> None: ...

    async def create_index(self, index: UserIndex) -> bool:
        """Create it; False when stored users share values it needs unique."""


def convert(field: FieldInfo, value: Any) -> Any:
    """A stored value as the field's type now; ValueError when it cannot be one."""
    if field.list:
        items = value if isinstance(value, list) else [value]
        return [_convert_item(field, item) for item in items]
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError("a list of several values is not one value")
        value = value[0]
    return _convert_item(field, value)


def _convert_item(field: FieldInfo, value: Any) -> Any:
    kind = field.type
    if kind in ("string", "enum"):
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (dt.date, dt.datetime)):
            text = value.isoformat()
        else:
            text = str(value)
        if kind == "enum" and text not in field.values:
            raise ValueError("not one of the values")
        return text
    if isinstance(value, str):
        value = value.strip()
    if kind == "int" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
    if kind == "float" and isinstance(value, (int, float, str)):
        if not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    if kind == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            return rules.parse_date(value)
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            return rules.parse_datetime(value)
    raise ValueError(f"not a {kind}")


async def _has_values(schema: UsersSchema, name: str, kind: str) -> bool:
    return any(value is not None for _, value in await schema.values(name, kind))


async def _converted(
    schema: UsersSchema, source: str, name: str, field: FieldInfo, kind: str
) -> list[tuple[Any, Any]]:
    """Every stored value of the field (read from `source`, stored as `kind`)
    in its type now, checked against an enum's values; refused with the
    count and an example when some cannot be."""
    converted, failed = [], []
    for user_id, value in await schema.values(source, kind):
        if value is None:
            continue
        try:
            converted.append((user_id, convert(field, value)))
        except (ValueError, TypeError):
            failed.append(value)
    if failed:
        wanted = f"a list of {field.type}" if field.list else field.type
        if field.type == "enum":
            wanted += f" ({', '.join(field.values)})"
        raise SchemaError(
            f"field '{name}' is now {wanted} but {len(failed)} stored user(s) have a"
            f" value it cannot take (e.g. {failed[0]!r}); correct or remove those"
            f" values in the database, or change '{name}' in user.yaml back to a type"
            " that takes them, and generate again"
        )
    return converted


async def sync_users(schema: UsersSchema) -> None:
    """Bring the stored users up to the current model, or stop the start with the fix.

    Everything that can refuse the start is checked before anything changes
    (SQLite commits each ALTER TABLE at once). Declared renames move a
    field's values to its new name. A new field while a removed one of the
    same kind still holds values is refused (a rename not declared would lose
    them). Values of a field whose type changed are converted, or the start
    is refused with how many cannot be. New fields get room and their
    default, once (a value cleared later stays cleared); a required field
    without a default that stored users lack is refused. Indexes of ours that
    the model no longer wants, or wants in another shape, are dropped;
    missing ones are created; a unique index over values stored users share
    is refused.
    """
    recorded = await schema.stored_fields()
    stored = dict(recorded or {name: field_kind(f) for name, f in FIELDS.items()})
    renames: dict[str, str] = {}  # new name: old name
    for name, field in FIELDS.items():
        old = field.renamed_from
        if not old or old not in stored:
            continue  # nothing to move, or moved at an earlier start
        if name not in stored:
            renames[name] = old
            stored[name] = stored.pop(old)
        elif await _has_values(schema, old, stored[old]):
            raise SchemaError(
                f"field '{name}' is renamed_from '{old}', but stored users have values"
                f" of both; merge them into '{name}' and remove '{old}' in the"
                " database, or remove renamed_from from user.yaml"
            )
    new = [name for name in FIELDS if name not in stored]
    removed = [name for name in stored if name not in FIELDS]
    for name in new:
        for old in removed:
            if stored[old] != field_kind(FIELDS[name]):
                continue
            if await _has_values(schema, old, stored[old]):
                raise SchemaError(
                    f"field '{name}' is new and field '{old}', no longer in user.yaml,"
                    f" still has stored values: if '{name}' is '{old}' renamed, add"
                    f" 'renamed_from: {old}' to '{name}' in user.yaml and generate"
                    f" again; if '{old}' is to go, delete its stored values first"
                    " (see the README, Changing the model)"
                )
    retyped = {}
    for name, field in FIELDS.items():
        if name in new or (stored[name] == field_kind(field) and not field.values):
            continue
        source = renames.get(name, name)
        values = await _converted(schema, source, name, field, stored[name])
        if stored[name] != field_kind(field):
            retyped[name] = values
    for name, field in FIELDS.items():
        if field.required and not field.has_default:
            missing = await (
                schema.count_users()
                if name in new
                else schema.count_missing(renames.get(name, name))
            )
            if missing:
                raise SchemaError(
                    f"field '{name}' is required but {missing} stored user(s) have no value;"
                    f" give '{name}' a default in user.yaml (or make it optional) and generate again"
                )
    for name, old in renames.items():
        await schema.rename_field(old, name)
    for name, values in retyped.items():
        await schema.retype_field(name, values)
    await schema.add_missing_fields()
    # Built-in fields no user can clear: filling what older users lack is safe.
    for name, value in BUILT_IN_DEFAULTS.items():
        await schema.fill(name, value)
    await schema.remember_fields(
        {
            **{name: stored[name] for name in removed},
            **{name: field_kind(field) for name, field in FIELDS.items()},
        }
    )
    for name, field in FIELDS.items():
        # A required field's value cannot be cleared: filling it again is safe.
        if field.has_default and (name in new or recorded is None or field.required):
            await schema.fill(name, field.python_default())
    wanted = user_indexes()
    present = {
        name: keys
        for name, keys in (await schema.indexes()).items()
        if name.startswith(OWN_INDEX_PREFIXES)
    }
    for name in sorted(present):
        if name not in wanted or present[name] != wanted[name].keys:
            await schema.drop_index(name)
            del present[name]
    for name in sorted(set(wanted) - set(present)):
        if not await schema.create_index(wanted[name]):
            unique = wanted[name].keys[0]
            raise SchemaError(
                f"field '{unique}' is now unique but stored users share values of it;"
                f" make those values distinct, or remove 'unique' from '{unique}' in user.yaml"
            )
