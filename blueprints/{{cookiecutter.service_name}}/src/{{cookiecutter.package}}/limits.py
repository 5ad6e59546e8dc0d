"""Rate limits shared by every worker: attempts recorded in the store, then counted.

An attempt is recorded first and counted after. Requests that run at once
therefore cannot all read the same old count: of any number of simultaneous
attempts on a key, at most its limit pass. An attempt that finds a key over
its limit is refused and removes its own record, so refused attempts never
count and nobody stays locked out longer than a window.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import TooManyRequestsError
from .settings import Settings
from .store.base import AttemptStore


@dataclass(frozen=True)
class Limit:
    """At most `limit` attempts on `key` per `window` seconds."""

    key: str
    limit: int
    window: float


class Limits:
    def __init__(self, store: AttemptStore) -> None:
        self.store = store

    async def enter(self, *limits: Limit) -> str:
        """Record one attempt under every limit's key; returns its id.

        TooManyRequestsError (and no record kept) when one key is over its limit.
        """
        now = datetime.now(UTC)
        attempt_id = await self.store.add_attempt([limit.key for limit in limits], now)
        counts = await self.store.count_attempts(
            {limit.key: now - timedelta(seconds=limit.window) for limit in limits}
        )
        if any(counts[limit.key] > limit.limit for limit in limits):
            await self.store.forget_attempt(attempt_id)
            raise TooManyRequestsError()
        return attempt_id

    async def forget(self, attempt_id: str) -> None:
        """An attempt that must not count (e.g. the right password)."""
        await self.store.forget_attempt(attempt_id)


def mail_limit(settings: Settings, kind: str, recipient: str) -> Limit:
    """Mails of one kind (verification, recovery) to one address."""
    return Limit(
        f"mail:{kind}:{recipient}",
        settings.mail_max_per_recipient,
        settings.mail_limit_window,
    )


def longest_window(settings: Settings) -> float:
    """How long attempts are needed: the longest window of any limit."""
    return max(
        settings.login_failure_window,
        settings.register_window,
        settings.email_available_window,
        settings.mail_limit_window,
        settings.passkey_options_window,
    )
