"""The user model as every store keeps it: fields, indexes, defaults, refusals.

The stores read this at run time from the model's field table
(models.FIELDS): no store has generated code. `sync_users` is the one place
where stored data is brought up to the current model at start, the same steps
on every database; each store only says how to do each step on its own
(`UsersSchema`).
"""

from dataclasses import dataclass
from typing import Any, Protocol

from ..models import FIELDS
from .base import SchemaError

#: Everything stored of a user: the built-in fields, then the model's.
USER_KEYS = (
    "_id",
    "email",
    "email_verified",
    "password_hash",
    "created_at",
    "roles",
    "disabled",
    *FIELDS,
)
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
#: Index names that are ours to create and drop on the users.
OWN_INDEX_PREFIXES = ("ix_users_", "ux_users_")


@dataclass(frozen=True)
class UserIndex:
    name: str
    keys: tuple[str, ...]
    unique: bool = False


def user_indexes() -> dict[str, UserIndex]:
    """The users' indexes for the current model, by name.

    A unique field gets its unique index. Any other indexed field gets one
    for filters and sorts on it, ties broken by id (so no sort in memory),
    and every other public field one too, for the equality filters strangers
    may send (so no public query scans the users). An indexed field also
    gets (_id, field), so pages in id order filtered on it read that index
    alone, not every skipped user.
    """
    indexes = [
        UserIndex("ux_users_email", ("email",), unique=True),
        UserIndex("ix_users_email_verified", ("email_verified", "_id")),
    ]
    for name, field in FIELDS.items():
        if field.unique:
            indexes.append(UserIndex(f"ux_users_{name}", (name,), unique=True))
        elif field.indexed or (field.public and not field.list):
            indexes.append(UserIndex(f"ix_users_{name}", (name, "_id")))
        if field.indexed:
            indexes.append(UserIndex(f"ix_users_{name}_by_id", ("_id", name)))
    return {index.name: index for index in indexes}


class UsersSchema(Protocol):
    """The steps of `sync_users` on one database (one connection or client)."""

    async def add_missing_fields(self) -> None:
        """Make room for fields the stored users lack (SQL: new columns, empty)."""

    async def fill(self, name: str, value: Any) -> None:
        """Give `value` to every user without a value of the field."""

    async def count_missing(self, name: str) -> int: ...

    async def indexes(self) -> dict[str, tuple[str, ...]]:
        """The users' indexes present now: their keys by name."""

    async def drop_index(self, name: str) -> None: ...

    async def create_index(self, index: UserIndex) -> bool:
        """Create it; False when stored users share values it needs unique."""


async def sync_users(schema: UsersSchema) -> None:
    """Bring the stored users up to the current model, or stop the start with the fix.

    New fields get room and their default; a required field without a default
    that stored users lack is refused. Indexes of ours that the model no longer
    wants, or wants in another shape, are dropped; missing ones are created; a
    unique index over values stored users share is refused.
    """
    await schema.add_missing_fields()
    for name, value in BUILT_IN_DEFAULTS.items():
        await schema.fill(name, value)
    for name, field in FIELDS.items():
        if field.has_default:
            await schema.fill(name, field.python_default())
        elif field.required:
            missing = await schema.count_missing(name)
            if missing:
                raise SchemaError(
                    f"field '{name}' is required but {missing} stored user(s) have no value;"
                    f" give '{name}' a default in user.yaml (or make it optional) and generate again"
                )
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
            field = wanted[name].keys[0]
            raise SchemaError(
                f"field '{field}' is now unique but stored users share values of it;"
                f" make those values distinct, or remove 'unique' from '{field}' in user.yaml"
            )
