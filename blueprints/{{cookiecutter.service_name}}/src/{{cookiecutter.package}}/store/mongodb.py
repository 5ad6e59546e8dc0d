"""MongoDB through PyMongo's async API: one collection per record kind.

Records have the same shapes as in the SQL adapter. A user's `_id` is stored
as an ObjectId and shown as its 24-hex string; unset fields are not stored
(so "missing" is how MongoDB spells NULL); `date` fields are stored as
"YYYY-MM-DD" strings, which sort and compare as dates. MongoDB keeps
datetimes to the millisecond.

At start the indexes are brought up to the current model (unique indexes are
partial, so users without a value never collide), declared renames and
changed types are applied to the documents, new fields with a default are
filled in once (the `schema` collection records the fields users have), and
data the model cannot take stops the start with the fix.

Without a replica set MongoDB has no multi-document transactions, so a user
change and its side records (revoked links and sessions, one-time tokens,
outbox mails) are several writes: the user first, then the side records. A
crash in between keeps the change but may lose its mail or leave an older
link alive (links are also bound to the address they were sent to); the user
can ask for the mail again (e.g. sendVerificationEmail). Every other
operation is a single atomic document update: a refresh token is rotated with
a conditional update, so two concurrent refreshes cannot both claim it, and a
mail is leased the same way.

A write guarded by a `keep` condition (the last enabled admin) is checked
without a lock, best effort: a deletion checks that another user matches
before it deletes; an update checks after it writes and puts the user back
if nobody matches any more. Two such writes at the same instant can still
both pass; on SQL databases they cannot.
"""

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import (
    ConfigurationError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from ..models import FIELDS
from .base import (
    AllOf,
    AnyOf,
    REACH_TIMEOUT,
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
from .schema import (
    FACTOR_KEYS,
    AUDIT_EVENT_KEYS,
    MAIL_KEYS,
    PASSKEY_KEYS,
    REFRESH_TOKEN_KEYS,
    USER_KEYS,
    USER_TOKEN_KEYS,
    UserIndex,
    sync_users,
)

DEFAULT_DATABASE = "{{ cookiecutter.package }}"
DATE_FIELDS = frozenset(name for name, field in FIELDS.items() if field.type == "date")
#: Attempts are kept this long at most, whatever the windows (the purge is exact).
ATTEMPT_TTL = 7 * 24 * 3600
#: A filter no document matches (MongoDB refuses an empty $or).
MATCH_NOTHING: dict[str, Any] = {"_id": {"$in": []}}

_INDEX_IN_MESSAGE = re.compile(r"index: ux_users_(\w+)")


class MongoUsersSchema:
    """schema.UsersSchema on the users collection; the fields stored users may
    have are recorded in the `schema` collection (a document takes any key)."""

    def __init__(self, users: Any, schema: Any) -> None:
        self.users = users
        self.schema = schema

    async def stored_fields(self) -> dict[str, str] | None:
        found = await self.schema.find_one({"_id": "users"})
        return None if found is None else dict(found["fields"])

    async def rename_field(self, old: str, new: str) -> None:
        await self.users.update_many({old: {"$exists": True}}, {"$rename": {old: new}})

    async def values(self, name: str, kind: str) -> list[tuple[Any, Any]]:
        cursor = self.users.find({name: {"$ne": None}}, {name: True})
        return [
            (document["_id"], document[name]) for document in await cursor.to_list()
        ]

    async def retype_field(self, name: str, values: list[tuple[Any, Any]]) -> None:
        for user_id, value in values:
            await self.users.update_one(
                {"_id": user_id}, {"$set": {name: _encode(value)}}
            )

    async def add_missing_fields(self) -> None:
        """Nothing to do: a document takes any field."""

    async def remember_fields(self, kinds: dict[str, str]) -> None:
        await self.schema.replace_one(
            {"_id": "users"}, {"_id": "users", "fields": kinds}, upsert=True
        )

    async def fill(self, name: str, value: Any) -> None:
        await self.users.update_many({name: None}, {"$set": {name: _encode(value)}})

    async def count_missing(self, name: str) -> int:
        return await self.users.count_documents({name: None})

    async def count_users(self) -> int:
        return await self.users.count_documents({})

    async def indexes(self) -> dict[str, tuple[str, ...]]:
        found = await self.users.index_information()
        return {
            name: tuple(key for key, _ in info["key"]) for name, info in found.items()
        }

    async def drop_index(self, name: str) -> None:
        await self.users.drop_index(name)

    async def create_index(self, index: UserIndex) -> bool:
        options: dict[str, Any] = {"unique": True} if index.unique else {}
        if index.unique and index.keys != ("email",):
            # Partial: users without a value never collide.
            options["partialFilterExpression"] = {index.keys[0]: {"$exists": True}}
        try:
            await self.users.create_index(
                [(key, ASCENDING) for key in index.keys], name=index.name, **options
            )
        except OperationFailure as error:
            if error.code != 11000:
                raise
            return False
        return True


class MongoStore(Store):
    def __init__(self, url: str, client: Any = None, pool_size: int = 10) -> None:
        """`client` replaces the real driver (tests pass an async facade over mongomock)."""
        self.url = url
        try:
            self.client = (
                client
                if client is not None
                else AsyncMongoClient(url, tz_aware=True, maxPoolSize=pool_size)
            )
        except (ConfigurationError, ValueError) as error:
            raise UnreachableDatabase(f"malformed database URL: {error}") from None
        database = self.client[urlsplit(url).path.strip("/") or DEFAULT_DATABASE]
        self.users = database["users"]
        self.refresh_tokens = database["refresh_tokens"]
        self.user_tokens = database["user_tokens"]
        self.attempts = database["attempts"]
        self.outbox = database["outbox"]
        self.schema = database["schema"]
        self.factors = database["factors"]
        self.passkeys = database["passkeys"]
        self.audit_events = database["audit_events"]

    async def open(self) -> None:
        await self._reach()
        await sync_users(MongoUsersSchema(self.users, self.schema))
        await self.refresh_tokens.create_index(
            "session_id", name="ix_refresh_tokens_session_id"
        )
        await self.refresh_tokens.create_index(
            "user_id", name="ix_refresh_tokens_user_id"
        )
        await self.refresh_tokens.create_index(
            "expires_at", name="ttl_refresh_tokens_expires_at", expireAfterSeconds=0
        )
        await self.user_tokens.create_index(
            [("user_id", ASCENDING), ("purpose", ASCENDING)],
            name="ix_user_tokens_user_id_purpose",
        )
        await self.user_tokens.create_index(
            "expires_at", name="ttl_user_tokens_expires_at", expireAfterSeconds=0
        )
        await self.attempts.create_index(
            [("key", ASCENDING), ("at", ASCENDING)], name="ix_attempts_key_at"
        )
        await self.attempts.create_index("attempt_id", name="ix_attempts_attempt_id")
        await self.attempts.create_index(
            "at", name="ttl_attempts_at", expireAfterSeconds=ATTEMPT_TTL
        )
        await self.outbox.create_index(
            [("status", ASCENDING), ("next_attempt_at", ASCENDING)],
            name="ix_outbox_status_next",
        )
        await self.outbox.create_index(
            [("status", ASCENDING), ("created_at", ASCENDING)],
            name="ix_outbox_status_created",
        )
        for key in ("user_id", "event", "actor", "outcome"):
            await self.audit_events.create_index(
                [(key, ASCENDING), ("_id", ASCENDING)], name=f"ix_audit_events_{key}"
            )
        await self.audit_events.create_index("at", name="ix_audit_events_at")
        await self.passkeys.create_index(
            [("user_id", ASCENDING), ("created_at", ASCENDING)],
            name="ix_passkeys_user_id",
        )

    async def _reach(self) -> None:
        """One round trip first, bounded: the driver's own server selection
        waits 30 s (right for a replica set electing a primary, too long for a
        start against a server that is not there)."""
        try:
            async with asyncio.timeout(REACH_TIMEOUT):
                await self.client.admin.command("ping")
        except TimeoutError:
            raise UnreachableDatabase(
                f"no answer from MongoDB within {REACH_TIMEOUT:g} s"
            ) from None
        except PyMongoError as error:
            raise UnreachableDatabase(f"cannot connect to MongoDB: {error}") from None

    async def close(self) -> None:
        await self.client.close()

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
        document = {
            key: _encode(value) for key, value in user.items() if value is not None
        }
        document["_id"] = ObjectId(user["_id"])
        try:
            await self.users.insert_one(document)
        except DuplicateKeyError as error:
            raise DuplicateValueError(_duplicate_field(error)) from None
        await self.add_side_writes(side)

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        if not ObjectId.is_valid(user_id):
            return None
        return _user(await self.users.find_one({"_id": ObjectId(user_id)}))

    async def get_user_by_email(self, email: str) -> dict[str, Any] | None:
        return _user(await self.users.find_one({"email": email}))

    async def update_user(
        self,
        user_id: str,
        changes: dict[str, Any],
        side: SideWrites | None = None,
        *,
        expected: dict[str, Any] | None = None,
        keep: Condition | None = None,
    ) -> dict[str, Any] | None:
        if not ObjectId.is_valid(user_id):
            return None
        selector = {
            "_id": ObjectId(user_id),
            **{name: _encode(value) for name, value in (expected or {}).items()},
        }
        update: dict[str, Any] = {}
        kept = {
            key: _encode(value) for key, value in changes.items() if value is not None
        }
        if kept:
            update["$set"] = kept
        removed = {key: "" for key, value in changes.items() if value is None}
        if removed:
            update["$unset"] = removed
        try:
            previous = await self.users.find_one(selector) if keep else None
            if update:
                document = await self.users.find_one_and_update(
                    selector, update, return_document=ReturnDocument.AFTER
                )
            else:
                document = await self.users.find_one(selector)
        except DuplicateKeyError as error:
            raise DuplicateValueError(_duplicate_field(error)) from None
        if document is None:
            return None
        if previous is not None and not await self.users.count_documents(
            _filter(keep), limit=1
        ):
            await self.users.replace_one({"_id": document["_id"]}, previous)
            raise LastMatchError()
        if side is not None:
            if side.revoked_purposes:
                await self.user_tokens.delete_many(
                    {"user_id": user_id, "purpose": {"$in": side.revoked_purposes}}
                )
            if side.end_sessions:
                await self.refresh_tokens.delete_many({"user_id": user_id})
        await self.add_side_writes(side)
        return _user(document)

    async def delete_user(self, user_id: str, keep: Condition | None = None) -> bool:
        if not ObjectId.is_valid(user_id):
            return False
        others = {"_id": {"$ne": ObjectId(user_id)}}
        if keep is not None and not await self.users.count_documents(
            {"$and": [_filter(keep), others]}, limit=1
        ):
            raise LastMatchError()
        await self.refresh_tokens.delete_many({"user_id": user_id})
        await self.user_tokens.delete_many({"user_id": user_id})
        await self.delete_factors(user_id)
        result = await self.users.delete_one({"_id": ObjectId(user_id)})
        return result.deleted_count > 0

    async def find_users(self, query: UserQuery) -> list[dict[str, Any]]:
        if query.limit <= 0:
            return []  # MongoDB reads a limit of 0 as "no limit"
        cursor = self.users.find(
            _filter(query.where),
            sort=list(query.sort),
            skip=query.skip,
            limit=query.limit,
        )
        return [_found_user(document) for document in await cursor.to_list()]

    async def count_users(
        self, where: Condition | None = None, limit: int | None = None
    ) -> int:
        if limit is None:
            return await self.users.count_documents(_filter(where))
        return await self.users.count_documents(_filter(where), limit=limit)

    async def find_page(self, query: UserQuery) -> tuple[int, list[dict[str, Any]]]:
        matches = await self.count_users(query.where, query.count_limit)
        return matches, await self.find_users(query) if query.skip < matches else []

    # Sessions.

    async def add_refresh_token(self, record: dict[str, Any]) -> None:
        await self.refresh_tokens.insert_one(_keyed({"rotated": False, **record}))

    async def rotate_refresh_token(
        self,
        token_hash: str,
        replacement: dict[str, Any],
        now: datetime,
        reuse_interval: float = 0.0,
    ) -> tuple[Rotation, dict[str, Any] | None]:
        live = {"_id": token_hash, "expires_at": {"$gt": now}}
        # Only one request can claim a current token; others within the interval join its session.
        found = await self.refresh_tokens.find_one_and_update(
            {**live, "rotated": False}, {"$set": {"rotated": True, "rotated_at": now}}
        )
        if found is None:
            recently = {"$gt": now - timedelta(seconds=reuse_interval)}
            found = await self.refresh_tokens.find_one(
                {**live, "rotated": True, "rotated_at": recently}
            )
        if found is None:
            found = await self.refresh_tokens.find_one({"_id": token_hash})
            if found is None or not found["rotated"]:
                return Rotation.INVALID, None  # unknown, or expired
            await self.refresh_tokens.delete_many({"session_id": found["session_id"]})
            return Rotation.REUSED, _record(found, REFRESH_TOKEN_KEYS)
        record = _record(found, REFRESH_TOKEN_KEYS)
        new = {
            **replacement,
            "session_id": record["session_id"],
            "user_id": record["user_id"],
            "created_at": record["created_at"],
            "rotated": False,
        }
        await self.refresh_tokens.insert_one(_keyed(new))
        if await self.refresh_tokens.find_one({"_id": token_hash}) is None:
            # The session was revoked meanwhile: the replacement goes with it.
            await self.refresh_tokens.delete_one({"_id": replacement["token_hash"]})
            return Rotation.INVALID, None
        return Rotation.ROTATED, record

    async def end_session(self, token_hash: str) -> dict[str, Any] | None:
        found = await self.refresh_tokens.find_one({"_id": token_hash})
        if found is None:
            return None
        await self.refresh_tokens.delete_many({"session_id": found["session_id"]})
        return _record(found, REFRESH_TOKEN_KEYS)

    async def end_user_sessions(self, user_id: str, keep: str | None = None) -> int:
        selector: dict[str, Any] = {"user_id": user_id}
        if keep is not None:
            selector["session_id"] = {"$ne": keep}
        result = await self.refresh_tokens.delete_many(selector)
        return result.deleted_count

    async def list_sessions(
        self, user_id: str, now: datetime, current: str | None = None
    ) -> list[dict[str, Any]]:
        cursor = self.refresh_tokens.find(
            {
                "user_id": user_id,
                "expires_at": {"$gt": now},
                "$or": [{"rotated": False}, {"_id": current or ""}],
            }
        )
        return [
            _record(document, REFRESH_TOKEN_KEYS) for document in await cursor.to_list()
        ]

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        result = await self.refresh_tokens.delete_many(
            {"user_id": user_id, "session_id": session_id}
        )
        return result.deleted_count > 0

    # Audit trail.

    async def add_audit_event(
        self, event: dict[str, Any], mails: list[dict[str, Any]] | None = None
    ) -> None:
        await self.audit_events.insert_one(dict(event))
        if mails:
            await self.outbox.insert_many([dict(mail) for mail in mails])

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
        if limit <= 0:
            return []  # MongoDB reads a limit of 0 as "no limit"
        selector: dict[str, Any] = {
            key: value
            for key, value in (
                ("user_id", user_id),
                ("actor", actor),
                ("outcome", outcome),
            )
            if value is not None
        }
        ids: dict[str, Any] = {}
        at: dict[str, Any] = {}
        if before is not None:
            ids["$lt"] = before
        if since is not None:
            ids["$gte"], at["$gte"] = timed_id_bound(since), since
        if until is not None:
            bound = timed_id_bound(until, later=True)
            ids["$lt"] = min(ids.get("$lt", bound), bound)
            at["$lt"] = until
        if ids:
            selector["_id"] = ids
        if at:
            selector["at"] = at
        if events is not None:
            selector["event"] = {"$in": events}
        cursor = self.audit_events.find(selector, sort=[("_id", -1)], limit=limit)
        return [
            _record(document, AUDIT_EVENT_KEYS) for document in await cursor.to_list()
        ]

    async def purge_expired(
        self,
        now: datetime,
        attempts_before: datetime,
        mails_before: datetime,
        audit_before: datetime | None = None,
    ) -> None:
        """The TTL indexes do part of this too, within a minute or so; this makes it exact."""
        await self.refresh_tokens.delete_many({"expires_at": {"$lte": now}})
        await self.user_tokens.delete_many({"expires_at": {"$lte": now}})
        await self.attempts.delete_many({"at": {"$lt": attempts_before}})
        await self.outbox.delete_many(
            {"status": {"$in": ["sent", "failed"]}, "created_at": {"$lt": mails_before}}
        )
        if audit_before is not None:
            await self.audit_events.delete_many({"at": {"$lt": audit_before}})

    # One-time tokens.

    async def add_side_writes(self, side: SideWrites | None) -> None:
        if side is None:
            return
        if side.tokens:
            await self.user_tokens.insert_many([_keyed(token) for token in side.tokens])
        if side.mails:
            await self.outbox.insert_many([dict(mail) for mail in side.mails])

    async def consume_user_token(
        self, token_hash: str, purpose: str
    ) -> dict[str, Any] | None:
        found = await self.user_tokens.find_one_and_delete(
            {"_id": token_hash, "purpose": purpose}
        )
        return _record(found, USER_TOKEN_KEYS) if found is not None else None

    async def get_user_token(
        self, token_hash: str, purpose: str
    ) -> dict[str, Any] | None:
        found = await self.user_tokens.find_one({"_id": token_hash, "purpose": purpose})
        return _record(found, USER_TOKEN_KEYS) if found is not None else None

    async def delete_user_tokens(self, user_id: str, purpose: str) -> None:
        await self.user_tokens.delete_many({"user_id": user_id, "purpose": purpose})

    # Attempts.

    async def add_attempt(self, keys: list[str], at: datetime) -> str:
        attempt_id = new_id()
        if keys:
            await self.attempts.insert_many(
                [{"attempt_id": attempt_id, "key": key, "at": at} for key in keys]
            )
        return attempt_id

    async def count_attempts(self, windows: Mapping[str, datetime]) -> dict[str, int]:
        counts = await asyncio.gather(
            *(
                self.attempts.count_documents({"key": key, "at": {"$gt": since}})
                for key, since in windows.items()
            )
        )
        return dict(zip(windows, counts))

    async def forget_attempt(self, attempt_id: str) -> None:
        await self.attempts.delete_many({"attempt_id": attempt_id})

    # Mail outbox.

    async def claim_mails(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        due = self.outbox.find(
            {"status": "pending", "next_attempt_at": {"$lte": now}},
            sort=[("next_attempt_at", ASCENDING)],
            limit=limit,
        )
        claimed = []
        for document in await due.to_list():
            result = await self.outbox.update_one(
                {
                    "_id": document["_id"],
                    "next_attempt_at": document["next_attempt_at"],
                },
                {"$set": {"next_attempt_at": lease_until}},
            )
            if result.modified_count == 1:
                claimed.append(_record(document, MAIL_KEYS))
        return claimed

    async def update_mail(self, mail_id: str, changes: dict[str, Any]) -> None:
        if changes:
            await self.outbox.update_one({"_id": mail_id}, {"$set": changes})

    async def get_mail(self, mail_id: str) -> dict[str, Any] | None:
        found = await self.outbox.find_one({"_id": mail_id})
        return _record(found, MAIL_KEYS) if found is not None else None

    async def list_mails(self, status: str | None = None) -> list[dict[str, Any]]:
        selector = {} if status is None else {"status": status}
        cursor = self.outbox.find(selector, sort=[("_id", ASCENDING)])
        return [_record(document, MAIL_KEYS) for document in await cursor.to_list()]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        pending = {"status": "pending"}
        count = await self.outbox.count_documents(pending)
        oldest = await self.outbox.find_one(
            pending, {"created_at": 1}, sort=[("created_at", ASCENDING)]
        )
        return count, None if oldest is None else oldest["created_at"]

    # Second factors: one document per user, under the user's id.

    async def put_factor(self, record: dict[str, Any]) -> None:
        document = {key: value for key, value in record.items() if key != "user_id"}
        await self.factors.replace_one(
            {"_id": record["user_id"]}, document, upsert=True
        )

    async def get_factor(self, user_id: str) -> dict[str, Any] | None:
        found = await self.factors.find_one({"_id": user_id})
        if found is None:
            return None
        values = {**found, "user_id": found["_id"]}
        return {key: _decode(key, values.get(key)) for key in FACTOR_KEYS}

    async def update_factor(
        self, user_id: str, changes: dict[str, Any], expected: dict[str, Any]
    ) -> bool:
        result = await self.factors.update_one(
            {"_id": user_id, **expected}, {"$set": changes}
        )
        return result.matched_count == 1

    async def delete_factor(self, user_id: str) -> bool:
        result = await self.factors.delete_one({"_id": user_id})
        return result.deleted_count > 0

    # Passkeys: one document each, under the credential id.

    async def add_passkey(self, record: dict[str, Any]) -> bool:
        document = {k: v for k, v in record.items() if k != "credential_id"}
        try:
            await self.passkeys.insert_one({"_id": record["credential_id"], **document})
        except DuplicateKeyError:
            return False
        return True

    async def get_passkey(self, credential_id: str) -> dict[str, Any] | None:
        found = await self.passkeys.find_one({"_id": credential_id})
        return _passkey(found) if found is not None else None

    async def list_passkeys(self, user_id: str) -> list[dict[str, Any]]:
        cursor = self.passkeys.find(
            {"user_id": user_id}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_passkey(document) for document in await cursor.to_list()]

    async def update_passkey(
        self, credential_id: str, changes: dict[str, Any], expected: dict[str, Any]
    ) -> bool:
        result = await self.passkeys.update_one(
            {"_id": credential_id, **expected}, {"$set": changes}
        )
        return result.matched_count == 1

    async def delete_passkey(self, user_id: str, credential_id: str) -> bool:
        result = await self.passkeys.delete_one(
            {"_id": credential_id, "user_id": user_id}
        )
        return result.deleted_count > 0

    async def delete_factors(self, user_id: str) -> int:
        totp = await self.factors.delete_one({"_id": user_id})
        keys = await self.passkeys.delete_many({"user_id": user_id})
        return totp.deleted_count + keys.deleted_count


def _encode(value: Any) -> Any:
    """A stored value: dates (not datetimes) as ISO strings, which sort as dates."""
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _decode(name: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(name, item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if name in DATE_FIELDS and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _user(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored user as a record, or None when none was found."""
    return None if document is None else _found_user(document)


def _found_user(document: dict[str, Any]) -> dict[str, Any]:
    """A stored user as a record; keys of fields no longer in the model are left out."""
    user = {key: _decode(key, document.get(key)) for key in USER_KEYS}
    user["_id"] = str(document["_id"])
    return user


def _keyed(record: dict[str, Any]) -> dict[str, Any]:
    """A token record stored under its hash as `_id`."""
    document = {key: value for key, value in record.items() if key != "token_hash"}
    document["_id"] = record["token_hash"]
    return document


def _record(document: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    values = {**document, "token_hash": document["_id"]}
    return {key: _decode(key, values.get(key)) for key in keys}


def _passkey(document: dict[str, Any]) -> dict[str, Any]:
    values = {**document, "credential_id": document["_id"]}
    return {key: _decode(key, values.get(key)) for key in PASSKEY_KEYS}


def _duplicate_field(error: DuplicateKeyError) -> str:
    """The field a duplicate key error is about, from its key pattern or index name."""
    pattern = (error.details or {}).get("keyPattern")
    if pattern:
        return next(iter(pattern))
    match = _INDEX_IN_MESSAGE.search(str(error))
    if match is None:
        raise error
    return match.group(1)


def _id_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_id_value(item) for item in value]
    return (
        ObjectId(value)
        if isinstance(value, str) and ObjectId.is_valid(value)
        else value
    )


def _filter(condition: Condition | None) -> dict[str, Any]:
    """A condition as a MongoDB filter, with the SQL adapter's null semantics.

    Missing and null are one: `eq None` matches users without a value, and
    `ne`/`nin` match them too, as `x != v OR x IS NULL` does in SQL.
    """
    if condition is None:
        return {}
    if isinstance(condition, AllOf):
        parts = [_filter(inner) for inner in condition.conditions]
        return {"$and": parts} if parts else {}
    if isinstance(condition, AnyOf):
        parts = [_filter(inner) for inner in condition.conditions]
        return {"$or": parts} if parts else MATCH_NOTHING
    assert isinstance(condition, Compare)
    name, op = condition.field, condition.op
    value = _id_value(condition.value) if name == "_id" else _encode(condition.value)
    if op in ("eq", "has"):  # a scalar matches a list holding it
        return {name: value}
    if op == "prefix":
        return {name: {"$regex": "^" + re.escape(value)}}
    if op in ("in", "nin"):
        return {name: {f"${op}": value}}
    if value is None and op != "ne":
        return MATCH_NOTHING  # nothing is greater or smaller than NULL
    return {name: {f"${op}": value}}
