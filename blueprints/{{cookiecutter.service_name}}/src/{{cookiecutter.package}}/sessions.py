"""The logged-in user's sessions: list them, end one by id, the others, or all.

A session is a chain of refresh tokens (accounts.py); its id is the chain's
session id, which refreshes nothing by itself. Ending a session deletes its
tokens, so its refresh cookie is refused at once; auth tokens already issued
live out their short TTL.
"""

from datetime import UTC, datetime
from typing import Any

from . import audit
from .accounts import RefreshCookie
from .errors import UnauthorizedError
from .store import Store
from .tokens import hash_secret

_NEVER = datetime.min.replace(tzinfo=UTC)


class Sessions:
    def __init__(self, store: Store, trail: audit.Audit) -> None:
        self.store = store
        self.audit = trail

    async def mine(
        self, user: dict[str, Any], cookie: RefreshCookie
    ) -> list[dict[str, Any]]:
        """The user's live sessions, the most recently used first."""
        records, current_id = await self._live(user, cookie)
        latest: dict[str, dict[str, Any]] = {}
        for record in sorted(records, key=lambda r: r["last_used_at"] or _NEVER):
            latest[record["session_id"]] = record  # a session's latest use wins
        sessions = [
            {
                "id": record["session_id"],
                "createdAt": record["created_at"],
                "lastUsedAt": record["last_used_at"],
                "address": record["address"],
                "userAgent": record["user_agent"],
                "current": record["session_id"] == current_id,
            }
            for record in latest.values()
        ]
        return sorted(sessions, key=lambda s: s["lastUsedAt"] or _NEVER, reverse=True)

    async def end(
        self, user: dict[str, Any], session_id: str, cookie: RefreshCookie
    ) -> bool:
        """End the user's session of that id; False when they have none such."""
        _, current_id = await self._live(user, cookie)
        if not await self.store.end_user_session(user["_id"], session_id):
            return False
        if session_id == current_id:
            cookie.clear_refresh_cookie()
        await self._ended(user, {"session_id": session_id})
        return True

    async def end_others(self, user: dict[str, Any], cookie: RefreshCookie) -> bool:
        """End every session but this device's (which needs its refresh cookie)."""
        _, current_id = await self._live(user, cookie)
        if current_id is None:
            raise UnauthorizedError(
                "Ending the other sessions needs this session's refresh cookie: log in again."
            )
        await self.store.end_user_sessions(user["_id"], keep=current_id)
        await self._ended(user, {"sessions": "others"})
        return True

    async def end_all(self, user: dict[str, Any], cookie: RefreshCookie) -> bool:
        """logoutEverywhere: every session of the user, this device's too."""
        await self.store.end_user_sessions(user["_id"])
        cookie.clear_refresh_cookie()
        await self._ended(user, {"sessions": "all"})
        return True

    async def _live(
        self, user: dict[str, Any], cookie: RefreshCookie
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The user's live token records, and the session of the request's cookie."""
        current = hash_secret(cookie.refresh_cookie) if cookie.refresh_cookie else None
        records = await self.store.list_sessions(
            user["_id"], datetime.now(UTC), current
        )
        current_id = next(
            (r["session_id"] for r in records if r["token_hash"] == current), None
        )
        return records, current_id

    async def _ended(self, user: dict[str, Any], details: dict[str, Any]) -> None:
        await self.audit.record(audit.SESSION_ENDED, user["_id"], details=details)
