"""The audit trail: who did what to an account, from where, and how it went.

Every security event is one store write: the event, and with AUTH_WEBHOOK_URLS
set its webhook deliveries (outbox records the mail worker posts, see
webhooks.py) in the same write. Events are kept AUTH_AUDIT_RETENTION seconds
(the periodic purge deletes older ones). An event holds ids, addresses,
outcomes and short details, never a secret: callers never pass a token, a
password or a hash.

The client (address, user agent) of the request being served is set by the
transport (transport.RequestScope) in `current_client`, so the account logic
records it, and keeps it with sessions, without knowing about HTTP.
"""

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import BadRequestError
from .mail import Mailer, outbox_record
from .settings import Settings
from .store import Store, is_valid_id, timed_id
from .webhooks import TEMPLATE as WEBHOOK

#: Longer user agents are cut (they are the client's to write).
USER_AGENT_MAX_LENGTH = 256
ADDRESS_MAX_LENGTH = 64

# Actors: the user themselves, the service (e.g. reuse detection), or an
# admin, recorded as the admin's user id.
SELF = "self"
SYSTEM = "system"

# Outcomes.
SUCCESS = "success"
FAILURE = "failure"
THROTTLED = "throttled"
OUTCOMES = (SUCCESS, FAILURE, THROTTLED)

# Events.
REGISTER = "register"
EMAIL_VERIFIED = "email_verified"
LOGIN = "login"
LOGOUT = "logout"
REFRESH_TOKEN_REUSED = "refresh_token_reused"
PASSWORD_CHANGED = "password_changed"
PASSWORD_RESET_REQUESTED = "password_reset_requested"
PASSWORD_RESET = "password_reset"
EMAIL_CHANGED = "email_changed"
ACCOUNT_DELETED = "account_deleted"
SESSION_ENDED = "session_ended"
# Admin actions (admin.py; the actor is the admin's id, or system for the
# `admin` command). A refused one is recorded too, with outcome failure.
USER_UPDATED = "user_updated"
ROLES_CHANGED = "roles_changed"
ACCOUNT_DISABLED = "account_disabled"
ACCOUNT_ENABLED = "account_enabled"
SECOND_FACTORS_REMOVED = "second_factors_removed"
# Second factors (mfa.py, passkeys.py), details {"factor": "totp" | "passkey"}.
SECOND_FACTOR_ADDED = "second_factor_added"
SECOND_FACTOR_REMOVED = "second_factor_removed"


@dataclass(frozen=True)
class Client:
    """Who sent the request: address (after trusted proxies) and user agent, bounded."""

    address: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, address: str | None, user_agent: str | None) -> "Client":
        return cls(
            address and address[:ADDRESS_MAX_LENGTH],
            user_agent and user_agent[:USER_AGENT_MAX_LENGTH],
        )


#: The client of the request being served; nobody outside requests.
current_client: ContextVar[Client] = ContextVar("current_client", default=Client())


def last_use(now: datetime) -> dict[str, Any]:
    """What a session keeps of its latest use: when, and by which client."""
    client = current_client.get()
    return {
        "last_used_at": now,
        "address": client.address,
        "user_agent": client.user_agent,
    }


class Audit:
    def __init__(self, settings: Settings, store: Store, mailer: Mailer) -> None:
        self.settings = settings
        self.store = store
        self.mailer = mailer

    async def record(
        self,
        event: str,
        user_id: str | None,
        actor: str = SELF,
        address: str | None = None,
        user_agent: str | None = None,
        outcome: str = SUCCESS,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an event (and queue its webhooks). The address and user agent
        default to the current request's; `details` is a small JSON object."""
        client = current_client.get()
        now = datetime.now(UTC)
        record = {
            "_id": timed_id(now),
            "at": now,
            "event": event,
            "user_id": user_id,
            "actor": actor,
            "address": address or client.address,
            "user_agent": user_agent or client.user_agent,
            "outcome": outcome,
            "details": details or {},
        }
        deliveries = [
            outbox_record(url, WEBHOOK, payload(record))
            for url in self.settings.webhook_urls
        ]
        await self.store.add_audit_event(record, deliveries)
        if deliveries:
            self.mailer.wake()

    async def of_user(
        self, user_id: str, limit: int, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The user's own events, newest first, `before` an event id (the cursor)."""
        limit = max(0, min(limit, self.settings.max_page_size))
        return await self.store.list_audit_events(user_id, before, limit)

    async def search(
        self,
        limit: int,
        before: str | None = None,
        user_id: str | None = None,
        event: str | None = None,
        outcome: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Everyone's events for an admin, newest first: each filter is served
        by an index of the store, a page is at most AUTH_MAX_PAGE_SIZE events."""
        if limit < 1:
            raise BadRequestError("limit must be at least 1.")
        for name, value in (("before", before), ("userId", user_id)):
            if value is not None and not is_valid_id(value):
                raise BadRequestError(f"{name} is not an id (24 hexadecimal digits).")
        if outcome is not None and outcome not in OUTCOMES:
            raise BadRequestError(f"outcome is one of: {', '.join(OUTCOMES)}.")
        return await self.store.list_audit_events(
            user_id,
            before,
            min(limit, self.settings.max_page_size),
            None if event is None else [event],
            actor=actor,
            outcome=outcome,
            since=since,
            until=until,
        )


def payload(record: dict[str, Any]) -> dict[str, Any]:
    """An event as clients and webhook receivers read it (JSON)."""
    return {
        "id": record["_id"],
        "at": record["at"].isoformat().replace("+00:00", "Z"),
        "event": record["event"],
        "user_id": record["user_id"],
        "actor": record["actor"],
        "address": record["address"],
        "user_agent": record["user_agent"],
        "outcome": record["outcome"],
        "details": record["details"],
    }
