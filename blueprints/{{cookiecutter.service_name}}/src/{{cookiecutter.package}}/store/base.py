"""The store interface: everything the service keeps, behind one small API.

Records are plain dicts with Python values (str, int, float, bool,
datetime.date, timezone-aware datetime.datetime, lists). Both adapters take
and return the same shapes, so the service and the tests do not care which
database is behind them.
"""

import itertools
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from bson import ObjectId

#: Stored with the user but never shown through the API.
INTERNAL_FIELDS = ("password_hash", "created_at")
#: Seconds the start waits for the database's first answer.
REACH_TIMEOUT = 5.0


_ID = re.compile("[0-9a-f]{24}")


def new_id() -> str:
    """A 24-hex-digit id, as MongoDB's ObjectId: unique and ordered by creation time."""
    return str(ObjectId())


def is_valid_id(value: object) -> bool:
    """Whether `value` is an id as the service gives them out: 24 lowercase
    hexadecimal digits. Another spelling names no user, on every store
    (MongoDB would read capitals as the same ObjectId, SQL as another string)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def timed_id(moment: datetime) -> str:
    """A 24-hex-digit id that sorts by `moment` to the millisecond, then by
    creation in this process: audit events that several processes (workers,
    the admin command) write within one second list in the order they
    happened, which ObjectIds (ordered by the second, then by process) do not."""
    return f"{_milliseconds(moment):012x}{next(_sequence) % 16**6:06x}{secrets.token_hex(3)}"


def timed_id_bound(moment: datetime, later: bool = False) -> str:
    """The smallest timed id of `moment`'s millisecond (with `later`, of the
    next one): a time range is an id range every (field, _id) index serves;
    the exact times are checked on the few records of the edge milliseconds."""
    return f"{_milliseconds(moment) + (1 if later else 0):012x}{'0' * 12}"


def _milliseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_sequence = itertools.count(secrets.randbelow(16**6))


class DuplicateValueError(Exception):
    """A write refused by a unique index; `field` names the field."""

    def __init__(self, field: str) -> None:
        super().__init__(f"duplicate value of {field}")
        self.field = field


class LastMatchError(Exception):
    """A write refused because no user would match its `keep` condition after it
    (e.g. the last enabled admin); nothing was written."""


class SchemaError(Exception):
    """Stored data the current model cannot take; stops the start with a fix."""


class UnreachableDatabase(Exception):
    """The database URL is malformed, or the database does not answer; stops the start."""


# Conditions of the public queries, built by `users.py` from GraphQL filters.


@dataclass(frozen=True)
class Compare:
    field: str
    # eq ne gt gte lt lte in nin; has (a list field holds the string value),
    # prefix (a string field starts with the value, case as stored)
    op: str
    value: Any


@dataclass(frozen=True)
class AllOf:
    conditions: tuple["Condition", ...]


@dataclass(frozen=True)
class AnyOf:
    """Any of the conditions; with none, matches nothing."""

    conditions: tuple["Condition", ...]


Condition = Compare | AllOf | AnyOf
NOTHING = AnyOf(())


@dataclass(frozen=True)
class UserQuery:
    where: Condition | None = None
    sort: tuple[tuple[str, int], ...] = (("_id", 1),)
    skip: int = 0
    limit: int = 100
    #: find_page counts at most this many matches (None: all of them).
    count_limit: int | None = None


@dataclass
class SideWrites:
    """Records written together with a user change: one-time tokens, mails.

    Written in the same transaction where the database has them, so a change
    never commits without the mail it causes (the outbox pattern).
    """

    tokens: list[dict[str, Any]] = field(default_factory=list)
    mails: list[dict[str, Any]] = field(default_factory=list)
    # What the change revokes (update_user only), before `tokens` are written:
    # the user's one-time tokens of these purposes, and with `end_sessions`
    # every session of the user. Links die with what they were issued under.
    revoked_purposes: list[str] = field(default_factory=list)
    end_sessions: bool = False


class Rotation(Enum):
    ROTATED = (
        "rotated"  # the token was current (or just rotated): its session continues
    )
    REUSED = "reused"  # the token had been rotated before the reuse interval: its session is revoked
    INVALID = "invalid"  # unknown or expired


class UserStore(ABC):
    """The users, and what is written with a change to one (SideWrites)."""

    @abstractmethod
    async def insert_user(
        self, user: dict[str, Any], side: SideWrites | None = None
    ) -> None:
        """Insert; raises DuplicateValueError when a unique field is taken."""

    @abstractmethod
    async def get_user(self, user_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def get_user_by_email(self, email: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def update_user(
        self,
        user_id: str,
        changes: dict[str, Any],
        side: SideWrites | None = None,
        *,
        expected: dict[str, Any] | None = None,
        keep: Condition | None = None,
    ) -> dict[str, Any] | None:
        """Apply changes and return the updated user; None if it is gone, or if
        it no longer has the `expected` values (checked in the same write).
        With `keep`, LastMatchError if no user would match it afterwards: the
        write and the check are one step against concurrent guarded writes
        (SQL; MongoDB: best effort, see mongodb.py)."""

    @abstractmethod
    async def delete_user(self, user_id: str, keep: Condition | None = None) -> bool:
        """Remove the user with their sessions, one-time tokens and factors;
        `keep` as in update_user."""

    @abstractmethod
    async def find_users(self, query: UserQuery) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def count_users(
        self, where: Condition | None = None, limit: int | None = None
    ) -> int:
        """How many users match, counting no further than `limit`: a count
        that stops there reads at most `limit` index entries."""

    @abstractmethod
    async def find_page(self, query: UserQuery) -> tuple[int, list[dict[str, Any]]]:
        """How many users match (at most query.count_limit), and the page of
        them the query asks for, read together (one snapshot where the
        database has them)."""


class SessionStore(ABC):
    """Sessions: one refresh token chain per device."""

    @abstractmethod
    async def add_refresh_token(self, record: dict[str, Any]) -> None:
        """Record {token_hash, session_id, user_id, expires_at}, and of the
        session: created_at, last_used_at, address, user_agent."""

    @abstractmethod
    async def rotate_refresh_token(
        self,
        token_hash: str,
        replacement: dict[str, Any],
        now: datetime,
        reuse_interval: float = 0.0,
    ) -> tuple[Rotation, dict[str, Any] | None]:
        """Swap a current token for `replacement` (same session), atomically.

        A token rotated less than `reuse_interval` seconds before `now` is a
        concurrent request of the same client (two tabs, a login during a
        refresh): `replacement` joins its session too, and ROTATED is returned.
        A token rotated earlier is a stolen or replayed one: its whole session
        is revoked and REUSED returned. The replacement keeps the session's
        created_at.
        """

    @abstractmethod
    async def end_session(self, token_hash: str) -> dict[str, Any] | None:
        """Revoke the session the token belongs to; returns its record."""

    @abstractmethod
    async def end_user_sessions(self, user_id: str, keep: str | None = None) -> int:
        """End every session of the user but the session `keep` (an id); returns
        how many refresh tokens went with them."""

    @abstractmethod
    async def list_sessions(
        self, user_id: str, now: datetime, current: str | None = None
    ) -> list[dict[str, Any]]:
        """The user's live refresh tokens not yet rotated (one per session, or
        two while a rotation races), plus the token hashed `current` if it is
        the user's and live: the records of add_refresh_token, with
        created_at, last_used_at, address and user_agent (None in records of
        an older generation)."""

    @abstractmethod
    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        """End the user's session of that id; False when the user has none such."""


class LinkStore(ABC):
    """One-time links (email verification, password recovery) and the mails
    written with them."""

    @abstractmethod
    async def add_side_writes(self, side: SideWrites) -> None: ...

    @abstractmethod
    async def consume_user_token(
        self, token_hash: str, purpose: str
    ) -> dict[str, Any] | None:
        """Remove and return {token_hash, user_id, purpose, email, expires_at}."""

    @abstractmethod
    async def get_user_token(
        self, token_hash: str, purpose: str
    ) -> dict[str, Any] | None:
        """The token's record, left in place (consume_user_token uses it up)."""

    @abstractmethod
    async def delete_user_tokens(self, user_id: str, purpose: str) -> None: ...


class AttemptStore(ABC):
    """Attempts, for rate limits shared by every worker and instance (logins, mails, ...)."""

    @abstractmethod
    async def add_attempt(self, keys: list[str], at: datetime) -> str:
        """Record one attempt under each key; returns its id for forget_attempt."""

    @abstractmethod
    async def count_attempts(self, windows: Mapping[str, datetime]) -> dict[str, int]:
        """How many attempts are recorded under each key after its moment, read
        at once (a login checks three limits)."""

    @abstractmethod
    async def forget_attempt(self, attempt_id: str) -> None:
        """Remove an attempt under every key it was recorded under."""


class Outbox(ABC):
    """The mail outbox, drained by the mail workers of every instance."""

    @abstractmethod
    async def claim_mails(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Pending mails due by `now`, leased to the caller until `lease_until`.

        A lease is taken with a conditional update, so two workers never get
        the same mail; a worker that dies loses its lease when it expires.
        """

    @abstractmethod
    async def update_mail(self, mail_id: str, changes: dict[str, Any]) -> None: ...

    @abstractmethod
    async def get_mail(self, mail_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def list_mails(self, status: str | None = None) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many mails are pending and when the oldest was queued (UTC).

        Read from the (status, created_at) index, so a metrics scrape costs the
        same with ten mails waiting as with a million.
        """


class FactorStore(ABC):
    """Second factors: one TOTP record per user (mfa.py).

    {user_id, secret, confirmed, last_step, recovery, created_at}: `secret`
    is encrypted by the service, `recovery` holds the unused recovery codes'
    hashes separated by spaces, `last_step` the last TOTP step accepted.
    """

    @abstractmethod
    async def put_factor(self, record: dict[str, Any]) -> None:
        """Insert the user's factor, or replace the one they have."""

    @abstractmethod
    async def get_factor(self, user_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def update_factor(
        self, user_id: str, changes: dict[str, Any], expected: dict[str, Any]
    ) -> bool:
        """Apply changes only if the factor still has the `expected` values
        (checked in the same write: a code or step is never accepted twice)."""

    @abstractmethod
    async def delete_factor(self, user_id: str) -> bool: ...


class PasskeyStore(ABC):
    """Passkeys (passkeys.py): any number per user, under their credential id.

    {credential_id, user_id, name, public_key, sign_count, transports,
    backed_up, created_at, last_used_at}: ids and the COSE public key as
    base64url text, `sign_count` the authenticator's last counter.
    """

    @abstractmethod
    async def add_passkey(self, record: dict[str, Any]) -> bool:
        """Insert; False when the credential id is registered already."""

    @abstractmethod
    async def get_passkey(self, credential_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def list_passkeys(self, user_id: str) -> list[dict[str, Any]]:
        """The user's passkeys, oldest first."""

    @abstractmethod
    async def update_passkey(
        self, credential_id: str, changes: dict[str, Any], expected: dict[str, Any]
    ) -> bool:
        """Apply changes only if the passkey still has the `expected` values
        (a sign counter moves forward once)."""

    @abstractmethod
    async def delete_passkey(self, user_id: str, credential_id: str) -> bool:
        """Remove one passkey of the user; False when they have none of that id."""

    @abstractmethod
    async def delete_factors(self, user_id: str) -> int:
        """Remove every second factor of the user, TOTP and passkeys, together
        (an admin's reset); how many records went."""


class AuditStore(ABC):
    """The audit trail: security events, newest first."""

    @abstractmethod
    async def add_audit_event(
        self, event: dict[str, Any], mails: list[dict[str, Any]] | None = None
    ) -> None:
        """Record {_id, at, event, user_id, actor, address, user_agent, outcome,
        details} with the outbox records it causes (webhook deliveries), together."""

    @abstractmethod
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
        """Events newest first: of one user (None: of everyone), with an id
        before `before` (ids grow with time), of the given kinds (None: all),
        actor and outcome, at `since` or later and before `until`. Every
        filter is served by an index: (user_id, _id), (event, _id), (actor,
        _id), (outcome, _id); times bound the ids too (timed_id_bound)."""


class Store(
    UserStore,
    SessionStore,
    LinkStore,
    AttemptStore,
    Outbox,
    FactorStore,
    PasskeyStore,
    AuditStore,
):
    """One database behind the whole service: every part above, opened once.

    The service holds this one object; a part of the service that needs only
    one concern (the rate limits, the mailer) can be typed with that part.
    """

    @abstractmethod
    async def open(self) -> None:
        """Connect, and bring tables and indexes up to the current model (schema.sync_users)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the database answers within REACH_TIMEOUT (for /healthz)."""

    @abstractmethod
    async def purge_expired(
        self,
        now: datetime,
        attempts_before: datetime,
        mails_before: datetime,
        audit_before: datetime | None = None,
    ) -> None:
        """Forget expired refresh tokens and one-time tokens, attempts recorded
        before `attempts_before`, mails sent or given up created before
        `mails_before`, and audit events older than `audit_before`.
        """
