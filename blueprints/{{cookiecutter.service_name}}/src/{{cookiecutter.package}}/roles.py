"""Who is an admin, and the one rule every way out of that role obeys: the
service keeps an enabled admin, so someone can always undo a mistake.

Shared by the admin API (admin.py) and self-service (accounts.py: an admin's
own deleteMe), so neither path can leave the service without one.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from .store import AllOf, Compare, Condition, LastMatchError, Store

ADMIN = "admin"
ENABLED_ADMINS = AllOf(
    (Compare("roles", "has", ADMIN), Compare("disabled", "ne", True))
)


def is_admin(user: dict[str, Any]) -> bool:
    return ADMIN in (user.get("roles") or [])


def keep_for(user: dict[str, Any]) -> Condition | None:
    """What a write taking `user` out of the enabled admins must leave matched:
    another enabled admin (None if the user is none)."""
    return ENABLED_ADMINS if is_admin(user) and not user.get("disabled") else None


async def delete_user(
    store: Store, user: dict[str, Any], before: Callable[[], Awaitable[Any]]
) -> bool:
    """Delete `user` unless they are the last enabled admin (LastMatchError).

    `before` (the before_delete hook) runs only for a deletion that can go
    ahead; the store checks again in the delete itself, against a race.
    """
    keep = keep_for(user)
    if keep is not None and await store.count_users(keep) <= 1:
        raise LastMatchError()
    await before()
    return await store.delete_user(user["_id"], keep)
