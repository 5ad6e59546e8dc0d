"""The one-time links sent by mail (a hashed token and its mail, written
together), and what a change of email or password writes with it: the links
and sessions it revokes, the notices to the owner."""

from datetime import UTC, datetime, timedelta
from typing import Any

from .mail import outbox_record
from .models import account_view
from .settings import Settings
from .store import SideWrites
from .tokens import new_secret

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"


def verification_writes(settings: Settings, user: dict[str, Any]) -> SideWrites:
    """The token and mail that ask `user` to confirm their current email address."""
    return _link_writes(
        settings,
        user,
        VERIFY_EMAIL,
        "/user/email/confirmation",
        settings.verification_token_ttl,
    )


def recovery_writes(settings: Settings, user: dict[str, Any]) -> SideWrites:
    """The token and mail that let `user` choose a new password."""
    return _link_writes(
        settings,
        user,
        RESET_PASSWORD,
        "/form/reset/password",
        settings.recovery_token_ttl,
    )


def _link_writes(
    settings: Settings, user: dict[str, Any], purpose: str, path: str, ttl: int
) -> SideWrites:
    raw, token_hash = new_secret()
    token = {
        "token_hash": token_hash,
        "user_id": user["_id"],
        "purpose": purpose,
        "email": user["email"],
        "expires_at": datetime.now(UTC) + timedelta(seconds=ttl),
    }
    link = f"{settings.public_url.rstrip('/')}{path}?token={raw}"
    template = "verify_email" if purpose == VERIFY_EMAIL else "reset_password_email"
    mail = outbox_record(
        user["email"], template, {"link": link, "user": account_view(user)}
    )
    return SideWrites(tokens=[token], mails=[mail])


def credentials_writes(
    settings: Settings, before: dict[str, Any], after: dict[str, Any]
) -> SideWrites:
    """What a change of email or password (`before` -> `after`) writes with it.

    Every outstanding link and every session dies (the caller gives the
    device that made the change a new session); a new address gets its
    confirmation link; the address the account had gets a notice of each
    change, with nothing in it that changes anything.
    """
    email_changed = after["email"] != before["email"]
    side = verification_writes(settings, after) if email_changed else SideWrites()
    side.revoked_purposes = [VERIFY_EMAIL, RESET_PASSWORD]
    side.end_sessions = True
    user = account_view(before)
    if email_changed:
        context = {"user": user, "new_email": masked_email(after["email"])}
        side.mails.append(
            outbox_record(before["email"], "email_changed_email", context)
        )
    if after["password_hash"] != before["password_hash"]:
        side.mails.append(
            outbox_record(before["email"], "password_changed_email", {"user": user})
        )
    return side


def masked_email(email: str) -> str:
    """Enough of an address for its owner to recognise it: `a***@e***.org`."""
    local, _, domain = email.rpartition("@")
    name, dot, suffix = domain.rpartition(".")
    return (
        f"{local[:1]}***@{name[:1]}***{dot}{suffix}"
        if name
        else f"{local[:1]}***@{domain[:1]}***"
    )
