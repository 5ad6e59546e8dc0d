"""SQL databases through SQLAlchemy (async): the embedded SQLite default and PostgreSQL.

One typed table per record kind. The users table is built at import from the
model's field table (models.FIELDS), with the indexes store/schema.py
decides. At start the schema is brought up to the current model in place
(schema.sync_users): declared renames rename columns, a changed type is
converted into a column of the new type, new columns are added (and filled
with their default, once), indexes are created or dropped, and data the model cannot take stops the
start with the fix. On PostgreSQL that runs under an advisory lock, so of
several instances starting at once one migrates and the others wait for it.
"""

import asyncio
import json
import operator
import os
import re
from datetime import UTC, date, datetime, timedelta
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    event,
    false,
    func,
    insert,
    inspect,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql import column as named_column
from sqlalchemy.sql import table as named_table
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.types import TypeEngine

from ..models import FIELDS, FieldInfo, parse_value
from .base import (
    REACH_TIMEOUT,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DuplicateValueError,
    LastMatchError,
    Rotation,
    SideWrites,
    Store,
    UnreachableDatabase,
    UserQuery,
    timed_id_bound,
    new_id,
)
from .schema import BUILT_IN_KEYS, UserIndex, sync_users, user_indexes

#: Lists (and mail contexts) are JSON; on PostgreSQL JSONB, which compares by value.
JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")
_SCALAR_TYPES: dict[str, TypeEngine] = {
    "int": BigInteger(),
    "float": Float(),
    "boolean": Boolean(),
    "date": Date(),
    "datetime": DateTime(),
}
#: The column type that reads a stored field of each kind (schema.field_kind).
_KIND_TYPES: dict[str, TypeEngine] = {
    "str": Text(),
    "list": JSON_TYPE,
    **{kind: _SCALAR_TYPES[kind] for kind in ("int", "float", "date", "datetime")},
    "bool": Boolean(),
}
_PYTHON_KINDS = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    date: "date",
    datetime: "datetime",
}
#: Any number: the key of the advisory lock held while one instance migrates.
MIGRATION_LOCK = 4_210_731_604
#: The key of the advisory lock held by writes guarded by a `keep` condition.
KEEP_LOCK = 4_210_731_605


def _bytewise(length: int | None = None) -> TypeEngine:
    """A string type compared byte by byte on PostgreSQL too (the "C"
    collation), as SQLite and MongoDB (so Krypton) compare strings.

    Under a database's language collation (en_US, ICU) `username > "Ann"`
    and USERNAME_ASC would answer otherwise than on the other stores, and
    every sort or merge of ids would compare them by locale rules, slowly.
    """
    string = String(length) if length else Text()
    byte_order = String(length, collation="C") if length else Text(collation="C")
    return string.with_variant(byte_order, "postgresql")


def column_type(field: FieldInfo) -> TypeEngine:
    """The column type of a field of the model."""
    if field.list:
        return JSON_TYPE
    if field.type == "string":
        return _bytewise(field.max_length)
    if field.type == "enum":
        return _bytewise(max(len(value) for value in field.values))
    return _SCALAR_TYPES[field.type]


metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("_id", _bytewise(24), primary_key=True),
    Column("email", _bytewise(320), nullable=False),
    Column("email_verified", Boolean, nullable=False, default=False),
    Column("password_hash", _bytewise(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    # Nullable: a table of an older generation gets them empty, then filled at start.
    Column("roles", JSON_TYPE, nullable=True),
    Column("disabled", Boolean, nullable=True),
    *(
        Column(name, column_type(field), nullable=True)
        for name, field in FIELDS.items()
    ),
    # Its indexes are created by the start's schema sync (SqlUsersSchema.create_index).
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", String(32), nullable=False, index=True),
    Column("user_id", String(24), nullable=False, index=True),
    Column("expires_at", DateTime, nullable=False, index=True),
    Column("rotated", Boolean, nullable=False, default=False),
    # When it was first rotated; a database of an older generation lacks it.
    Column("rotated_at", DateTime, nullable=True),
    # The session's start, its last refresh, and the client of that refresh
    # (for mySessions); tokens of an older generation lack them.
    Column("created_at", DateTime, nullable=True),
    Column("last_used_at", DateTime, nullable=True),
    Column("address", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
)

user_tokens = Table(
    "user_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(24), nullable=False, index=True),
    Column("purpose", String(32), nullable=False),
    Column("email", String(320), nullable=True),
    Column("expires_at", DateTime, nullable=False, index=True),
)

# One row per key of an attempt (see Store.add_attempt).
attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("attempt_id", String(24), nullable=False, index=True),
    Column("key", String(400), nullable=False),
    Column("at", DateTime, nullable=False, index=True),
    Index("ix_attempts_key_at", "key", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("_id", String(24), primary_key=True),
    Column("recipient", String(320), nullable=False),
    Column("template", String(64), nullable=False),
    Column("context", JSON_TYPE, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime, nullable=True),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    Index("ix_outbox_status_created", "status", "created_at"),
)

# Second factors (FactorStore): one row per user, `recovery` the codes' hashes.
factors = Table(
    "factors",
    metadata,
    Column("user_id", String(24), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("confirmed", Boolean, nullable=False, default=False),
    Column("last_step", Integer, nullable=False, default=0),
    Column("recovery", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
)

# Passkeys (PasskeyStore): any number per user. A credential id is at most
# 1023 bytes (WebAuthn L2), 1364 characters of base64url.
passkeys = Table(
    "passkeys",
    metadata,
    Column("credential_id", String(1366), primary_key=True),
    Column("user_id", String(24), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("sign_count", BigInteger, nullable=False, default=0),
    Column("transports", JSON_TYPE, nullable=False),
    Column("backed_up", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime, nullable=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("_id", String(24), primary_key=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("user_id", String(24), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("address", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("details", JSON_TYPE, nullable=False),
    # One index per filter of adminAuditEvents, each walked newest first.
    Index("ix_audit_events_user_id", "user_id", "_id"),
    Index("ix_audit_events_event", "event", "_id"),
    Index("ix_audit_events_actor", "actor", "_id"),
    Index("ix_audit_events_outcome", "outcome", "_id"),
)

_TABLES_BY_RECORD = {"tokens": user_tokens, "mails": outbox}
_DATETIME_COLUMNS = {
    table.name: {
        column.name for column in table.columns if isinstance(column.type, DateTime)
    }
    for table in metadata.tables.values()
}
# Lists of dates come back from JSON as text and are parsed again.
_DATED_LISTS = [
    name
    for name, field in FIELDS.items()
    if field.list and field.type in ("date", "datetime")
]
#: The read behind every authenticated request, built once: building a
#: statement and its cache key costs more than SQLite's lookup (~30 us).
_USER_BY_ID = select(users).where(users.c._id == bindparam("user_id"))

_UNIQUE_VIOLATION = re.compile(r"users\.(\w+)|ux_users_(\w+)")


def _async_url(url: str) -> str:
    """The URL with the async driver this service ships (aiosqlite, asyncpg)."""
    for scheme, driver in (
        ("sqlite:", "sqlite+aiosqlite:"),
        ("postgresql:", "postgresql+asyncpg:"),
    ):
        if url.startswith(scheme):
            return driver + url.removeprefix(scheme)
    if url.startswith("postgres:"):
        return "postgresql+asyncpg:" + url.removeprefix("postgres:")
    return url


def _to_db(value: Any) -> Any:
    """Datetimes are stored as naive UTC, the only kind every SQL database keeps."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _row(table: Table, row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    for name in _DATETIME_COLUMNS[table.name]:
        value = record.get(name)
        if isinstance(value, datetime):
            record[name] = value.replace(tzinfo=UTC)
    if table is users:
        for name in _DATED_LISTS:
            record[name] = parse_value(FIELDS[name], record[name])
    return record


def _json(value: Any) -> str:
    """JSON columns hold lists; dates in them are kept as ISO 8601 text."""
    return json.dumps(value, default=lambda item: item.isoformat())


def _jsonb(value: Any) -> Any:
    """A list as JSONB, to compare with a PostgreSQL JSON(B) column by value."""
    return cast(literal(_json(value)), JSONB)


def _values(record: dict[str, Any]) -> dict[str, Any]:
    return {key: _to_db(value) for key, value in record.items()}


class SqlStore(Store):
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        try:
            parsed = make_url(_async_url(url))
            # At most pool_size connections, kept open: a server's connections are
            # few and shared by every instance, and a new SQLite connection is a new
            # thread (aiosqlite) that an overflow would start and stop for one query.
            # An in-memory SQLite is one connection SQLAlchemy shares (StaticPool).
            sqlite = parsed.get_backend_name() == "sqlite"
            in_memory = sqlite and parsed.database in (None, "", ":memory:")
            pool = {} if in_memory else {"pool_size": pool_size, "max_overflow": 0}
            self.engine = create_async_engine(parsed, json_serializer=_json, **pool)
        except (ValueError, ArgumentError) as error:
            raise UnreachableDatabase(f"malformed database URL: {error}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def open(self) -> None:
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            # Created readable by the owner only; SQLite gives its -wal and -shm files the same mode.
            try:
                os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError as error:
                raise UnreachableDatabase(
                    f"cannot open the SQLite file: {error}"
                ) from None
        await self._reach()
        async with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Held until this transaction ends: instances starting together migrate one at a time.
                await connection.execute(
                    select(func.pg_advisory_xact_lock(MIGRATION_LOCK))
                )
            # Replaced by the attempts table.
            await connection.execute(text("DROP TABLE IF EXISTS login_failures"))
            await connection.run_sync(metadata.create_all)
            if connection.dialect.name == "postgresql":
                await _compare_strings_bytewise(connection)
            await connection.run_sync(_add_missing_columns, refresh_tokens)
            await connection.run_sync(_add_missing_indexes, audit_events)
            await sync_users(SqlUsersSchema(connection))

    async def _reach(self) -> None:
        """One round trip first, so that a database that is down, refuses us or
        does not exist stops the start with the cause (not a traceback)."""
        try:
            async with asyncio.timeout(REACH_TIMEOUT):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except TimeoutError:
            raise UnreachableDatabase(
                f"no answer from the database within {REACH_TIMEOUT:g} s"
            ) from None
        except (SQLAlchemyError, OSError) as error:
            cause = getattr(error, "orig", None) or error
            raise UnreachableDatabase(
                f"cannot connect to the database: {cause}"
            ) from None

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            await self._reach()
            return True
        except UnreachableDatabase:
            return False

    # Users.

    async def insert_user(
        self, user: dict[str, Any], side: SideWrites | None = None
    ) -> None:
        async with self.engine.begin() as connection:
            await _guard_unique(connection.execute(insert(users).values(_values(user))))
            await _write_side(connection, side)

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        return await self._one(users, _USER_BY_ID, {"user_id": user_id})

    async def get_user_by_email(self, email: str) -> dict[str, Any] | None:
        return await self._one(users, select(users).where(users.c.email == email))

    async def update_user(
        self,
        user_id: str,
        changes: dict[str, Any],
        side: SideWrites | None = None,
        *,
        expected: dict[str, Any] | None = None,
        keep: Condition | None = None,
    ) -> dict[str, Any] | None:
        selected = [users.c._id == user_id]
        selected += [
            users.c[name] == _to_db(value) for name, value in (expected or {}).items()
        ]
        async with self.engine.begin() as connection:
            await _lock_for_keep(connection, keep)
            if changes:
                statement = update(users).where(*selected).values(_values(changes))
                if (await _guard_unique(connection.execute(statement))).rowcount == 0:
                    return None
            await _check_keep(connection, keep)
            row = (await connection.execute(select(users).where(*selected))).first()
            if row is None:
                return None
            await _revoke(connection, user_id, side)
            await _write_side(connection, side)
            return _row(users, row)

    async def delete_user(self, user_id: str, keep: Condition | None = None) -> bool:
        async with self.engine.begin() as connection:
            await _lock_for_keep(connection, keep)
            await _end_sessions(connection, refresh_tokens.c.user_id == user_id)
            await connection.execute(
                delete(user_tokens).where(user_tokens.c.user_id == user_id)
            )
            await _delete_factors(connection, user_id)
            result = await connection.execute(
                delete(users).where(users.c._id == user_id)
            )
            await _check_keep(connection, keep)
            return result.rowcount > 0

    async def find_users(self, query: UserQuery) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            return await _find(connection, query)

    async def count_users(
        self, where: Condition | None = None, limit: int | None = None
    ) -> int:
        async with self.engine.connect() as connection:
            return await _count(connection, where, limit)

    async def find_page(self, query: UserQuery) -> tuple[int, list[dict[str, Any]]]:
        async with self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # One snapshot for both statements (SQLite's read transaction is one already).
                await connection.execution_options(isolation_level="REPEATABLE READ")
            merge = await _merge_of(connection, query)
            if merge is not None:
                # The page first: its plan needs no count, and often tells it.
                found = await _find_merged(connection, merge, query)
                matches = _matches_told_by(query, len(found))
                if matches is None:
                    matches = await _count(connection, query.where, query.count_limit)
                return matches, found
            matches = await _count(connection, query.where, query.count_limit)
            if query.skip >= matches:
                return matches, []
            return matches, await _find_indexed(connection, query, matches)

    # Sessions.

    async def add_refresh_token(self, record: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(refresh_tokens).values(_values({"rotated": False, **record}))
            )

    async def rotate_refresh_token(
        self,
        token_hash: str,
        replacement: dict[str, Any],
        now: datetime,
        reuse_interval: float = 0.0,
    ) -> tuple[Rotation, dict[str, Any] | None]:
        token = refresh_tokens.c
        this = token.token_hash == token_hash
        async with self.engine.begin() as connection:
            # One conditional write claims a current token, or one rotated within
            # the interval (keeping its first rotation time), and holds the
            # session against a concurrent revocation until the replacement is in.
            claimed = await connection.execute(
                update(refresh_tokens)
                .where(
                    this,
                    token.expires_at > _to_db(now),
                    or_(
                        token.rotated == false(),
                        token.rotated_at
                        > _to_db(now - timedelta(seconds=reuse_interval)),
                    ),
                )
                .values(
                    rotated=True,
                    rotated_at=func.coalesce(token.rotated_at, _to_db(now)),
                )
            )
            row = (await connection.execute(select(refresh_tokens).where(this))).first()
            if row is None:
                return Rotation.INVALID, None
            record = _row(refresh_tokens, row)
            if claimed.rowcount == 1:
                new = {
                    **replacement,
                    "session_id": record["session_id"],
                    "user_id": record["user_id"],
                    "created_at": record["created_at"],
                }
                await connection.execute(
                    insert(refresh_tokens).values(_values({**new, "rotated": False}))
                )
                return Rotation.ROTATED, record
            if not record["rotated"]:
                return Rotation.INVALID, None  # expired
            await _end_sessions(connection, token.session_id == record["session_id"])
            return Rotation.REUSED, record

    async def end_session(self, token_hash: str) -> dict[str, Any] | None:
        token = refresh_tokens.c
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    select(refresh_tokens).where(token.token_hash == token_hash)
                )
            ).first()
            if row is None:
                return None
            record = _row(refresh_tokens, row)
            await _end_sessions(connection, token.session_id == record["session_id"])
            return record

    async def end_user_sessions(self, user_id: str, keep: str | None = None) -> int:
        which = refresh_tokens.c.user_id == user_id
        if keep is not None:
            which = and_(which, refresh_tokens.c.session_id != keep)
        async with self.engine.begin() as connection:
            return await _end_sessions(connection, which)

    async def list_sessions(
        self, user_id: str, now: datetime, current: str | None = None
    ) -> list[dict[str, Any]]:
        token = refresh_tokens.c
        statement = select(refresh_tokens).where(
            token.user_id == user_id,
            token.expires_at > _to_db(now),
            or_(token.rotated == false(), token.token_hash == (current or "")),
        )
        async with self.engine.connect() as connection:
            rows = await connection.execute(statement)
            return [_row(refresh_tokens, row) for row in rows]

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        token = refresh_tokens.c
        which = and_(token.user_id == user_id, token.session_id == session_id)
        async with self.engine.begin() as connection:
            return await _end_sessions(connection, which) > 0

    # Audit trail.

    async def add_audit_event(
        self, event: dict[str, Any], mails: list[dict[str, Any]] | None = None
    ) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(insert(audit_events).values(_values(event)))
            if mails:
                await connection.execute(
                    insert(outbox), [_values(mail) for mail in mails]
                )

    async def list_audit_events(
        self,
        user_id: str | None = None,
        before: str | None = None,
        limit: int = 20,
        events: list[str] | None = None,
        *,
        actor: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        event = audit_events.c
        statement = select(audit_events).order_by(event._id.desc()).limit(limit)
        for column, value in (
            (event.user_id, user_id),
            (event.actor, actor),
            (event.outcome, outcome),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if before is not None:
            statement = statement.where(event._id < before)
        if events is not None:
            statement = statement.where(event.event.in_(events))
        if since is not None:
            statement = statement.where(
                event._id >= timed_id_bound(since), event.at >= _to_db(since)
            )
        if until is not None:
            statement = statement.where(
                event._id < timed_id_bound(until, later=True), event.at < _to_db(until)
            )
        async with self.engine.connect() as connection:
            rows = await connection.execute(statement)
            return [_row(audit_events, row) for row in rows]

    async def purge_expired(
        self,
        now: datetime,
        attempts_before: datetime,
        mails_before: datetime,
        audit_before: datetime | None = None,
    ) -> None:
        moment = _to_db(now)
        done = outbox.c.status.in_(["sent", "failed"])
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(refresh_tokens).where(refresh_tokens.c.expires_at <= moment)
            )
            await connection.execute(
                delete(user_tokens).where(user_tokens.c.expires_at <= moment)
            )
            await connection.execute(
                delete(attempts).where(attempts.c.at < _to_db(attempts_before))
            )
            await connection.execute(
                delete(outbox).where(done, outbox.c.created_at < _to_db(mails_before))
            )
            if audit_before is not None:
                await connection.execute(
                    delete(audit_events).where(audit_events.c.at < _to_db(audit_before))
                )

    # One-time tokens.

    async def add_side_writes(self, side: SideWrites) -> None:
        async with self.engine.begin() as connection:
            await _write_side(connection, side)

    async def consume_user_token(
        self, token_hash: str, purpose: str
    ) -> dict[str, Any] | None:
        token = user_tokens.c
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    select(user_tokens).where(
                        token.token_hash == token_hash, token.purpose == purpose
                    )
                )
            ).first()
            if row is None:
                return None
            deleted = await connection.execute(
                delete(user_tokens).where(token.token_hash == token_hash)
            )
            return _row(user_tokens, row) if deleted.rowcount == 1 else None

    async def get_user_token(
        self, token_hash: str, purpose: str
    ) -> dict[str, Any] | None:
        token = user_tokens.c
        return await self._one(
            user_tokens,
            select(user_tokens).where(
                token.token_hash == token_hash, token.purpose == purpose
            ),
        )

    async def delete_user_tokens(self, user_id: str, purpose: str) -> None:
        token = user_tokens.c
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(user_tokens).where(
                    token.user_id == user_id, token.purpose == purpose
                )
            )

    # Attempts.

    async def add_attempt(self, keys: list[str], at: datetime) -> str:
        attempt_id = new_id()
        rows = [
            {"attempt_id": attempt_id, "key": key, "at": _to_db(at)} for key in keys
        ]
        async with self.engine.begin() as connection:
            await connection.execute(insert(attempts), rows)
        return attempt_id

    async def count_attempts(self, windows: Mapping[str, datetime]) -> dict[str, int]:
        if not windows:
            return {}  # a SELECT of no columns is not SQL
        counts = [
            select(func.count())
            .where(attempts.c.key == key, attempts.c.at > _to_db(since))
            .scalar_subquery()
            for key, since in windows.items()
        ]
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(*counts))).one()
        return dict(zip(windows, row))

    async def forget_attempt(self, attempt_id: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(attempts).where(attempts.c.attempt_id == attempt_id)
            )

    # Mail outbox.

    async def claim_mails(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[dict[str, Any]]:
        mail = outbox.c
        due = select(outbox).where(
            mail.status == "pending", mail.next_attempt_at <= _to_db(now)
        )
        due = due.order_by(mail.next_attempt_at).limit(limit)
        claimed = []
        async with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Workers of every instance claim different mails, none waits for another.
                due = due.with_for_update(skip_locked=True)
            for row in (await connection.execute(due)).all():
                record = _row(outbox, row)
                result = await connection.execute(
                    update(outbox)
                    .where(
                        mail._id == record["_id"],
                        mail.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=_to_db(lease_until))
                )
                if result.rowcount == 1:
                    claimed.append(record)
        return claimed

    async def update_mail(self, mail_id: str, changes: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(outbox).where(outbox.c._id == mail_id).values(_values(changes))
            )

    async def get_mail(self, mail_id: str) -> dict[str, Any] | None:
        return await self._one(outbox, select(outbox).where(outbox.c._id == mail_id))

    async def list_mails(self, status: str | None = None) -> list[dict[str, Any]]:
        statement = select(outbox).order_by(outbox.c._id)
        if status is not None:
            statement = statement.where(outbox.c.status == status)
        async with self.engine.connect() as connection:
            return [_row(outbox, row) for row in await connection.execute(statement)]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        pending = outbox.c.status == "pending"
        statement = select(func.count(), func.min(outbox.c.created_at)).where(pending)
        async with self.engine.connect() as connection:
            count, oldest = (await connection.execute(statement)).one()
        return count, oldest

    # Second factors.

    async def put_factor(self, record: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(factors).where(factors.c.user_id == record["user_id"])
            )
            await connection.execute(insert(factors).values(_values(record)))

    async def get_factor(self, user_id: str) -> dict[str, Any] | None:
        return await self._one(
            factors, select(factors).where(factors.c.user_id == user_id)
        )

    async def update_factor(
        self, user_id: str, changes: dict[str, Any], expected: dict[str, Any]
    ) -> bool:
        selected = [factors.c.user_id == user_id]
        selected += [factors.c[name] == value for name, value in expected.items()]
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(factors).where(*selected).values(_values(changes))
            )
            return result.rowcount == 1

    async def delete_factor(self, user_id: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(factors).where(factors.c.user_id == user_id)
            )
            return result.rowcount > 0

    # Passkeys.

    async def add_passkey(self, record: dict[str, Any]) -> bool:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(passkeys).values(_values(record)))
        except IntegrityError:
            return False
        return True

    async def get_passkey(self, credential_id: str) -> dict[str, Any] | None:
        return await self._one(
            passkeys, select(passkeys).where(passkeys.c.credential_id == credential_id)
        )

    async def list_passkeys(self, user_id: str) -> list[dict[str, Any]]:
        statement = (
            select(passkeys)
            .where(passkeys.c.user_id == user_id)
            .order_by(passkeys.c.created_at, passkeys.c.credential_id)
        )
        async with self.engine.connect() as connection:
            return [_row(passkeys, row) for row in await connection.execute(statement)]

    async def update_passkey(
        self, credential_id: str, changes: dict[str, Any], expected: dict[str, Any]
    ) -> bool:
        selected = [passkeys.c.credential_id == credential_id]
        selected += [passkeys.c[name] == value for name, value in expected.items()]
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(passkeys).where(*selected).values(_values(changes))
            )
            return result.rowcount == 1

    async def delete_passkey(self, user_id: str, credential_id: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(passkeys).where(
                    passkeys.c.user_id == user_id,
                    passkeys.c.credential_id == credential_id,
                )
            )
            return result.rowcount > 0

    async def delete_factors(self, user_id: str) -> int:
        async with self.engine.begin() as connection:
            return await _delete_factors(connection, user_id)

    async def _one(
        self, table: Table, statement: Any, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(statement, parameters)).first()
        return _row(table, row) if row is not None else None


async def _compare_strings_bytewise(connection: AsyncConnection) -> None:
    """Give the users' string columns of an older generation the "C"
    collation (_bytewise), in one ALTER TABLE: PostgreSQL keeps the rows and
    rebuilds every index on those columns (about 17 s at 1,000,000 users, once)."""
    found = await connection.execute(
        text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation"
            " WHERE a.attrelid = 'users'::regclass AND a.attnum > 0"
            " AND NOT a.attisdropped AND c.collname <> 'C'"
        )
    )
    changes = [
        f'ALTER COLUMN "{name}" TYPE {kind} COLLATE "C"'
        for name, kind in found
        if name in users.c
    ]
    if changes:
        await connection.execute(text(f"ALTER TABLE users {', '.join(changes)}"))


async def _delete_factors(connection: AsyncConnection, user_id: str) -> int:
    """Every second factor of the user: the TOTP row and the passkeys."""
    totp = await connection.execute(delete(factors).where(factors.c.user_id == user_id))
    keys = await connection.execute(
        delete(passkeys).where(passkeys.c.user_id == user_id)
    )
    return totp.rowcount + keys.rowcount


async def _guard_unique(execution: Any) -> Any:
    """Run a write; a unique index violation becomes DuplicateValueError."""
    try:
        return await execution
    except IntegrityError as error:
        match = _UNIQUE_VIOLATION.search(str(error.orig))
        if match is None:
            raise
        raise DuplicateValueError(match.group(1) or match.group(2)) from None


async def _lock_for_keep(connection: AsyncConnection, keep: Condition | None) -> None:
    """Serialize the writes guarded by a `keep` condition.

    PostgreSQL: an advisory lock held until commit, so two guarded writes (two
    admins demoting each other) never both count the other as remaining.
    SQLite needs none: the guarded write is the transaction's first
    statement, which takes the database's only write lock before it reads.
    """
    if keep is not None and connection.dialect.name == "postgresql":
        await connection.execute(select(func.pg_advisory_xact_lock(KEEP_LOCK)))


async def _check_keep(connection: AsyncConnection, keep: Condition | None) -> None:
    """After the write, in its transaction: LastMatchError (rolling it back)
    if no user matches `keep` any more."""
    if keep is not None and await _count(connection, keep) == 0:
        raise LastMatchError()


async def _revoke(
    connection: AsyncConnection, user_id: str, side: SideWrites | None
) -> None:
    """What a user change revokes, in its transaction (see SideWrites)."""
    if side is None:
        return
    if side.revoked_purposes:
        token = user_tokens.c
        await connection.execute(
            delete(user_tokens).where(
                token.user_id == user_id, token.purpose.in_(side.revoked_purposes)
            )
        )
    if side.end_sessions:
        await _end_sessions(connection, refresh_tokens.c.user_id == user_id)


async def _end_sessions(connection: AsyncConnection, which: Any) -> int:
    """Delete the refresh tokens `which` selects, including replacements a
    concurrent rotation adds meanwhile.

    On PostgreSQL a DELETE waits for a rotation holding one of the tokens, then
    deletes it, but cannot see the replacement that rotation inserted; the
    next statement can, so the delete repeats until it finds nothing (the
    tokens it deleted stay locked until commit, so no new rotation starts).
    """
    ended = 0
    while deleted := (
        await connection.execute(delete(refresh_tokens).where(which))
    ).rowcount:
        ended += deleted
    return ended


async def _write_side(connection: AsyncConnection, side: SideWrites | None) -> None:
    if side is None:
        return
    for kind, table in _TABLES_BY_RECORD.items():
        records = getattr(side, kind)
        if records:
            await connection.execute(
                insert(table), [_values(record) for record in records]
            )


async def _find(connection: AsyncConnection, query: UserQuery) -> list[dict[str, Any]]:
    merge = await _merge_of(connection, query)
    if merge is not None:
        return await _find_merged(connection, merge, query)
    return await _find_indexed(connection, query)


def _matches_told_by(query: UserQuery, found: int) -> int | None:
    """The count of matches (up to the count limit) that a page of `found`
    users tells, or None: a page neither empty nor full is the last one, and
    a full one that reaches the count limit (the result window's last page,
    where strangers read deepest) has at least that many before it."""
    if 0 < found < query.limit:
        matches = query.skip + found
        return matches if query.count_limit is None else min(matches, query.count_limit)
    limit = query.count_limit
    if found and found == query.limit and limit is not None:
        return limit if query.skip + found >= limit else None
    return None


async def _find_merged(
    connection: AsyncConnection, merge: "_Merge", query: UserQuery
) -> list[dict[str, Any]]:
    statement, parameters = _merged_rows(merge, query, connection.dialect.name)
    return [_row(users, row) for row in await connection.execute(statement, parameters)]


async def _find_indexed(
    connection: AsyncConnection, query: UserQuery, matches: int | None = None
) -> list[dict[str, Any]]:
    """The page through the filter's and the sort's indexes; `matches`, when
    counted, may choose the walk in id order (_walk_in_id_order)."""
    dialect = connection.dialect.name
    order = [
        _order(users.c[name], direction, dialect) for name, direction in query.sort
    ]
    # The page's ids first, then their rows: skipped users are read from an
    # index only, never from the table (a "deferred join").
    page = select(users.c._id).order_by(*order).offset(query.skip).limit(query.limit)
    walk = False
    if query.where is not None:
        walk = matches is not None and await _walk_in_id_order(
            connection, query, matches
        )
        hide = walk and dialect == "sqlite"
        page = page.where(_condition(query.where, dialect, use_indexes=not hide))
    if walk and dialect == "postgresql":
        statement = await _rows_walked_on_postgresql(connection, page, query.sort[0][1])
    else:
        statement = _rows_of(page, order)
    return [_row(users, row) for row in await connection.execute(statement)]


def _rows_of(page: Any, order: list[Any]) -> Any:
    """The rows of the page's ids, in the page's order."""
    return select(users).where(users.c._id.in_(page.scalar_subquery())).order_by(*order)


async def _rows_walked_on_postgresql(
    connection: AsyncConnection, page: Any, direction: int
) -> Any:
    """The statement of the page's rows, its ids read along the id order,
    never sorted.

    PostgreSQL's estimates of that walk and of sorting every match are close
    for a range of tens of thousands of users in 1,000,000, and flip with its
    statistics: for `age < 10` (66,000 users, before ranges of few values
    were merged) the sort took 47 ms where the walk takes 5. So sorting is
    turned off for the transaction (find_page's), and the rows are joined to
    the page in its order, which then needs no sort either.
    """
    await connection.exec_driver_sql("SET LOCAL enable_sort = off")
    ids = page.subquery()
    return (
        select(users)
        .join(ids, users.c._id == ids.c._id)
        .order_by(_order(ids.c._id, direction, "postgresql"))
    )


async def _count(
    connection: AsyncConnection, where: Condition | None, limit: int | None = None
) -> int:
    """The matches, counted in an index where one serves the filter; with a
    limit the count stops there (a LIMIT under the count), so it reads at
    most `limit` index entries however many users match."""
    matching = select(literal_column("1", Integer)).select_from(users)
    if where is not None:
        matching = matching.where(_condition(where, connection.dialect.name))
    if limit is None:
        statement = matching.with_only_columns(func.count())
    else:
        statement = select(func.count()).select_from(matching.limit(limit).subquery())
    return (await connection.execute(statement)).scalar_one()


async def _walk_in_id_order(
    connection: AsyncConnection, query: UserQuery, matches: int
) -> bool:
    """Whether a page in id order is cheaper read along the id index than
    found through the filter's own indexes and then sorted.

    SQLite's planner guesses the size of a range (`age >= 18 AND age <= 65`)
    and may pick its index, then sort every match to skip to a deep page. With
    the number of matches known (or known to reach a count limit at least as
    large as skip + limit), walking the (_id, field) index costs about
    (skip + limit) * total / matches rows, against about matches rows. (A
    unary + hides a column's indexes from SQLite's planner and changes nothing
    else.) PostgreSQL estimates a range's size well, but may still sort every
    match of a wide one (_rows_walked_on_postgresql): the first case, at least a
    count limit of matches, is decided here for it too.
    """
    if query.sort[0][0] != "_id":
        return False
    if query.count_limit is not None and matches >= query.count_limit:
        # At least that many match (as many as the page reaches): dense enough
        # to walk, unless an equality or `in` on a (field, _id) index reads
        # the page in id order already, or a field has no (_id, field) index
        # to walk (its rows would be read from the table).
        return all(
            compare.op not in ("eq", "in")
            and (
                compare.field == "_id"
                or compare.field in FIELDS
                and FIELDS[compare.field].indexed
            )
            for compare in _comparisons(query.where)
        )
    if connection.dialect.name != "sqlite":
        return False
    # SQLite's largest rowid: about the number of users, without counting them.
    statement = select(func.max(literal_column("rowid", Integer))).select_from(users)
    total = (await connection.execute(statement)).scalar_one() or 0
    return (query.skip + query.limit) * total < 4 * matches**2


#: Fields whose index holds each value's users in id order: (field, _id, ...).
_IN_ID_ORDER = {
    index.keys[0]
    for index in user_indexes().values()
    if index.keys[1:2] == ("_id",) and not index.unique
}
#: The most values of a filter read as one index range each (_Merge).
MERGE_MAX_VALUES = 32


class _Merge(NamedTuple):
    """A page in id order read as one index range per value of `field`, the
    ranges merged in id order; every user also meets `rest`.

    Each value's users lie in id order in the field's (field, _id, ...) index,
    so the database merges the ranges and stops at the page (SQLite's
    compound merge, PostgreSQL's Merge Append), where `field IN (...)` or a
    range collects every match and sorts it.
    """

    field: str
    values: list[Any]
    rest: tuple[Condition, ...]


async def _merge_of(connection: AsyncConnection, query: UserQuery) -> _Merge | None:
    return _merge_of_in(query) or await _merge_of_range(connection, query)


def _merge_of_in(query: UserQuery) -> _Merge | None:
    """The merge of a page in id order filtered by `in` on a field indexed
    (field, _id, ...), or None where that does not apply."""
    conditions = _id_ordered_conditions(query)
    for chosen in conditions:
        if (
            isinstance(chosen, Compare)
            and chosen.op == "in"
            and chosen.field in _IN_ID_ORDER
        ):
            # Each value one range; a null is in no `in`, as SQL's IN has it.
            values = [
                value for value in dict.fromkeys(chosen.value) if value is not None
            ]
            if not 1 < len(values) <= MERGE_MAX_VALUES:
                return None
            rest = tuple(inner for inner in conditions if inner is not chosen)
            return _Merge(chosen.field, values, rest)
    return None


async def _merge_of_range(
    connection: AsyncConnection, query: UserQuery
) -> _Merge | None:
    """The merge of a page in id order filtered by a range (gt, gte, lt, lte)
    on a field indexed (field, _id, ...), when the range holds at most
    MERGE_MAX_VALUES values; else None.

    A sparse range (`age > 140`: 66,000 of 1,000,000 users in 10 values) is
    too wide to sort and too thin to find by walking the id index; merged, it
    reads only the page's skip + limit entries. The values are found one
    index seek each, and the search stops past MERGE_MAX_VALUES.
    """
    conditions = _id_ordered_conditions(query)
    bounds = [
        condition
        for condition in conditions
        if isinstance(condition, Compare)
        and condition.op in ("gt", "gte", "lt", "lte")
        and condition.field in _IN_ID_ORDER
    ]
    if not bounds:
        return None
    field = bounds[0].field
    bounds = [bound for bound in bounds if bound.field == field]
    values = await _values_within(connection, field, bounds)
    if not 0 < len(values) <= MERGE_MAX_VALUES:
        return None
    rest = tuple(inner for inner in conditions if inner not in bounds)
    return _Merge(field, values, rest)


def _id_ordered_conditions(query: UserQuery) -> tuple[Condition, ...]:
    """The conditions all of which a page in id order must meet; () for any
    other page, or one without a filter."""
    if len(query.sort) != 1 or query.sort[0][0] != "_id" or query.where is None:
        return ()
    where = query.where
    return where.conditions if isinstance(where, AllOf) else (where,)


async def _values_within(
    connection: AsyncConnection, field: str, bounds: list[Compare]
) -> list[Any]:
    """The distinct values of `field` within `bounds`, at most MERGE_MAX_VALUES + 1."""
    dialect = connection.dialect.name
    statement = _values_statement(field, tuple(bound.op for bound in bounds), dialect)
    values = {f"bound{i}": _to_db(bound.value) for i, bound in enumerate(bounds)}
    return list((await connection.execute(statement, values)).scalars())


@lru_cache(maxsize=64)
def _values_statement(field: str, ops: tuple[str, ...], dialect: str) -> Any:
    """A loose index scan: each value the least one above the last, one index
    seek a step (WITH RECURSIVE), stopping past MERGE_MAX_VALUES. The i-th
    bound's value is the parameter `bound{i}`; built once per shape, since
    building and keying it cost more than running it."""
    column = users.c[field]

    def least(*bounds: int, above: Any = None) -> Any:
        # ORDER BY ... LIMIT 1, not min(), and one lower bound: SQLite's
        # planner otherwise reads the range from its start at every step.
        within = [
            _RANGES[ops[i]](column, bindparam(f"bound{i}", type_=column.type))
            for i in bounds
        ]
        if above is not None:
            within.append(column > above)
        return (
            select(column)
            .where(*within)
            .order_by(_order(column, 1, dialect))
            .limit(1)
            .scalar_subquery()
        )

    found = select(
        least(*range(len(ops))).label("value"), literal(1, Integer).label("step")
    ).cte("found", recursive=True)
    upper = [i for i, op in enumerate(ops) if op in ("lt", "lte")]
    following = select(least(*upper, above=found.c.value), found.c.step + 1).where(
        found.c.value.is_not(None), found.c.step <= MERGE_MAX_VALUES
    )
    found = found.union_all(following)
    return select(found.c.value).where(found.c.value.is_not(None))


def _merged_rows(
    merge: _Merge, query: UserQuery, dialect: str
) -> tuple[Any, dict[str, Any]]:
    """The statement of a merged page's rows and its parameters."""
    direction = query.sort[0][1]
    window = {
        "skip": query.skip,
        "limit": query.limit,
        "bound": query.skip + query.limit,
    }
    if not merge.rest:
        # The common shape (one filter) is built once: a statement of 32
        # arms takes longer to build and key than the database to run it.
        statement = _merge_statement(merge.field, len(merge.values), direction, dialect)
        values = {f"value{i}": _to_db(value) for i, value in enumerate(merge.values)}
        return statement, {**window, **values}
    arms = [
        _condition(AllOf((Compare(merge.field, "eq", value), *merge.rest)), dialect)
        for value in merge.values
    ]
    return _rows_of_arms(arms, direction, dialect), window


@lru_cache(maxsize=64)
def _merge_statement(field: str, values: int, direction: int, dialect: str) -> Any:
    """_rows_of_arms for `values` values of `field` (the parameters `value{i}`)."""
    column = users.c[field]
    arms = [column == bindparam(f"value{i}", type_=column.type) for i in range(values)]
    return _rows_of_arms(arms, direction, dialect)


def _rows_of_arms(arms: list[Any], direction: int, dialect: str) -> Any:
    """The rows of the page of the arms' ids merged in id order (the
    parameters `skip`, `limit` and, on PostgreSQL, `bound`)."""
    order = _order(users.c._id, direction, dialect)
    skip, limit = bindparam("skip", type_=Integer), bindparam("limit", type_=Integer)
    selects = [select(users.c._id).where(arm) for arm in arms]
    if len(selects) == 1:
        return _rows_of(selects[0].order_by(order).offset(skip).limit(limit), [order])
    if dialect == "postgresql":
        # PostgreSQL merges, rather than sorts, arms that say their order and bound.
        bound = bindparam("bound", type_=Integer)
        selects = [statement.order_by(order).limit(bound) for statement in selects]
    merged = union_all(*selects)
    ids = _order(merged.selected_columns._id, direction, dialect)
    return _rows_of(merged.order_by(ids).offset(skip).limit(limit), [order])


def _comparisons(condition: Condition | None) -> list[Compare]:
    if condition is None:
        return []
    if isinstance(condition, (AllOf, AnyOf)):
        return [
            compare for inner in condition.conditions for compare in _comparisons(inner)
        ]
    return [condition]


def _order(column: Any, direction: int, dialect: str) -> Any:
    """Nulls first in ascending order, as SQLite and MongoDB sort (and the
    indexes are built); ids are never null, and their index keys carry no
    NULLS clause, which PostgreSQL must see matched to read an index in order."""
    if dialect != "postgresql" or column.name == "_id":
        return column.asc() if direction > 0 else column.desc()
    return column.asc().nulls_first() if direction > 0 else column.desc().nulls_last()


def _condition(condition: Condition, dialect: str, use_indexes: bool = True) -> Any:
    if isinstance(condition, AllOf):
        return and_(
            true(),
            *(
                _condition(inner, dialect, use_indexes)
                for inner in condition.conditions
            ),
        )
    if isinstance(condition, AnyOf):
        if not condition.conditions:
            return false()
        return or_(
            *(_condition(inner, dialect, use_indexes) for inner in condition.conditions)
        )
    column: ColumnElement[Any] = users.c[condition.field]
    if not use_indexes:
        # A unary + keeps the value but hides the column's indexes from the planner.
        column = UnaryExpression(column, operator=custom_op("+"), type_=column.type)
    stored: Callable[[Any], Any] = _to_db
    null: ColumnElement[bool] = column.is_(None)
    if isinstance(users.c[condition.field].type, JSON):
        # Lists compare as a whole (equality only): by value as JSONB on
        # PostgreSQL (a table of an older generation may have JSON columns),
        # through their JSON text on SQLite. An unset list is written as
        # JSON null, or is NULL in a column added after the user was.
        if dialect == "postgresql":
            column, stored = cast(column, JSONB), _jsonb
        else:
            column, stored = type_coerce(column, Text), _json
        null = or_(null, column == stored(None))
    value, op = condition.value, condition.op
    if op == "has":  # a list holding the string `value`
        if dialect == "postgresql":
            return column.contains(stored([value]))
        # The item, quoted, in the JSON text (role names hold no quote).
        return column.contains(_json(value), autoescape=True)
    if op == "prefix":
        return column.startswith(value, autoescape=True)
    if op == "eq" and dialect == "postgresql" and isinstance(value, list) and value:
        # Containment finds the candidates in the items' GIN index; equality keeps the same lists.
        return and_(column.contains(stored(value)), column == stored(value))
    if op == "eq":
        return null if value is None else column == stored(value)
    if op == "ne":
        return ~null if value is None else or_(column != stored(value), null)
    if op == "in":
        return column.in_([stored(item) for item in value])
    if op == "nin":
        return or_(column.not_in([stored(item) for item in value]), null)
    value = literal(
        _to_db(value), column.type
    )  # a bound value: SQLAlchemy refuses `column > True`
    return _RANGES[op](column, value)


_RANGES = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL lets readers run beside a writer; several workers share the file."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _add_missing_columns(connection: Any, table: Table) -> None:
    """Add the columns a table made by an older generation lacks (created empty)."""
    existing = {
        column["name"] for column in inspect(connection).get_columns(table.name)
    }
    for column in table.columns:
        if column.name in existing:
            continue
        ddl = CreateColumn(column).compile(dialect=connection.dialect)
        connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


def _add_missing_indexes(connection: Any, table: Table) -> None:
    """Create the indexes a table made by an older generation lacks."""
    for index in table.indexes:
        index.create(connection, checkfirst=True)


def _stored_kind(stored: TypeEngine) -> str:
    """The kind of a column as the database reports it (schema.field_kind)."""
    if isinstance(stored, JSON):
        return "list"
    try:
        return _PYTHON_KINDS.get(stored.python_type, "str")
    except NotImplementedError:
        return "str"


class SqlUsersSchema:
    """schema.UsersSchema on one connection, inside the start's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def stored_fields(self) -> dict[str, str]:
        found = await self.connection.run_sync(
            lambda sync: inspect(sync).get_columns("users")
        )
        return {
            found_column["name"]: _stored_kind(found_column["type"])
            for found_column in found
            if found_column["name"] not in BUILT_IN_KEYS
        }

    async def rename_field(self, old: str, new: str) -> None:
        # Both databases rename the column in its indexes too.
        await self.connection.execute(
            text(f'ALTER TABLE users RENAME COLUMN "{old}" TO "{new}"')
        )

    async def values(self, name: str, kind: str) -> list[tuple[Any, Any]]:
        stored = named_column(name, _KIND_TYPES[kind])
        found = named_table("users", named_column("_id"), stored)
        rows = await self.connection.execute(
            select(found.c._id, stored).where(stored.is_not(None))
        )
        return [(row[0], row[1]) for row in rows]

    async def retype_field(self, name: str, values: list[tuple[Any, Any]]) -> None:
        """A new column of the model's type takes the values, then the old one's place."""
        retyped = f"{name}__retyped"
        ddl = CreateColumn(Column(retyped, users.c[name].type)).compile(
            dialect=self.connection.dialect
        )
        await self.connection.execute(text(f"ALTER TABLE users ADD COLUMN {ddl}"))
        target = named_table(
            "users", named_column("_id"), named_column(retyped, users.c[name].type)
        )
        if values:
            await self.connection.execute(
                update(target)
                .where(target.c._id == bindparam("user_id"))
                .values({retyped: bindparam("value")}),
                [{"user_id": key, "value": _to_db(value)} for key, value in values],
            )
        for index, keys in (await self.indexes()).items():
            if name in keys:
                await self.drop_index(index)  # created again for the new column
        await self.connection.execute(text(f'ALTER TABLE users DROP COLUMN "{name}"'))
        await self.connection.execute(
            text(f'ALTER TABLE users RENAME COLUMN "{retyped}" TO "{name}"')
        )

    async def add_missing_fields(self) -> None:
        await self.connection.run_sync(_add_missing_columns, users)

    async def remember_fields(self, kinds: dict[str, str]) -> None:
        """Nothing to do: the columns are the record."""

    async def fill(self, name: str, value: Any) -> None:
        await self.connection.execute(
            update(users).where(users.c[name].is_(None)).values({name: _to_db(value)})
        )

    async def count_missing(self, name: str) -> int:
        statement = select(func.count()).select_from(named_table("users"))
        statement = statement.where(named_column(name).is_(None))
        return (await self.connection.execute(statement)).scalar_one()

    async def count_users(self) -> int:
        statement = select(func.count()).select_from(users)
        return (await self.connection.execute(statement)).scalar_one()

    async def indexes(self) -> dict[str, tuple[str, ...]]:
        found = await self.connection.run_sync(
            lambda sync: inspect(sync).get_indexes("users")
        )
        # Reflection types allow unnamed indexes and expression (None) columns;
        # neither is one of ours, and "" matches no field.
        return {
            index["name"]: tuple(column or "" for column in index["column_names"])
            for index in found
            if index["name"]
        }

    async def drop_index(self, name: str) -> None:
        await self.connection.execute(text(f'DROP INDEX "{name}"'))

    async def create_index(self, index: UserIndex) -> bool:
        # Nulls come first in ascending order on every store; PostgreSQL puts
        # them last unless told, in its indexes as in its sorts.
        postgresql = self.connection.dialect.name == "postgresql"
        nulls = " NULLS FIRST" if postgresql else ""
        keys = ", ".join(
            f'"{key}"{nulls if key != "_id" else ""}' for key in index.keys
        )
        if index.items and postgresql:
            # A B-tree entry holds at most ~2.7 KB, a list far more: GIN
            # indexes the items, and list equality asks it for containment.
            keys = f'"{index.keys[0]}" jsonb_path_ops'
        method = "USING gin " if index.items and postgresql else ""
        unique = "UNIQUE " if index.unique else ""
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(
                    text(
                        f'CREATE {unique}INDEX "{index.name}" ON users {method}({keys})'
                    )
                )
        except IntegrityError:
            return False
        return True
