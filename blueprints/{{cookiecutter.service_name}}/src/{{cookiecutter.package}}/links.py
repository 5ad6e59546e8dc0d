"""The one-time links sent by mail: a hashed token and its mail, written together."""

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
        settings, user, VERIFY_EMAIL, "/user/email/confirmation", settings.verification_token_ttl
    )


def recovery_writes(settings: Settings, user: dict[str, Any]) -> SideWrites:
    """The token and mail that let `user` choose a new password."""
    return _link_writes(
        settings, user, RESET_PASSWORD, "/form/reset/password", settings.recovery_token_ttl
    )


def _link_writes(settings: Settings, user: dict[str, Any], purpose: str, path: str, ttl: int) -> SideWrites:
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
    mail = outbox_record(user["email"], template, {"link": link, "user": account_view(user)})
    return SideWrites(tokens=[token], mails=[mail])
