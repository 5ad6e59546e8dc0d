"""Email verification and password recovery: the one-time links sent by mail.

Tokens are random, stored only as hashes, single-use (consumed atomically) and
expire; each new link of a kind replaces the user's older ones.
"""

from datetime import UTC, datetime
from typing import Any

from . import audit
from .accounts import call_hook, lookup_email
from .errors import (
    AlreadyLoggedInError,
    EmailAlreadyConfirmedError,
    EmailNotSentError,
    TooManyRequestsError,
    UnauthorizedError,
    UpdatePasswordTooLateError,
)
from .limits import mail_limit
from .links import (
    RESET_PASSWORD,
    VERIFY_EMAIL,
    credentials_writes,
    recovery_writes,
    verification_writes,
)
from .services import Services
from .tokens import hash_secret


async def send_verification_email(services: Services, bearer_token: str | None) -> bool:
    """Send a new confirmation link to the logged-in user.

    Waits up to AUTH_MAIL_SEND_WAIT seconds for the first delivery attempt:
    EmailNotSentError if the mail was refused for good; a mail still being
    retried counts as sent. TooManyRequestsError past AUTH_MAIL_MAX_PER_RECIPIENT.
    """
    user = await services.accounts.authenticate(bearer_token)
    if user["email_verified"]:
        raise EmailAlreadyConfirmedError()
    await services.accounts.limits.enter(
        mail_limit(services.settings, VERIFY_EMAIL, user["email"])
    )
    side = verification_writes(services.settings, user)
    await services.store.delete_user_tokens(user["_id"], VERIFY_EMAIL)
    await services.store.add_side_writes(side)
    status = await services.mailer.first_attempt(
        side.mails[0]["_id"], services.settings.mail_send_wait
    )
    if status == "failed":
        raise EmailNotSentError()
    return True


async def send_password_recovery_email(
    services: Services, bearer_token: str | None, email: str
) -> bool:
    """Mail a recovery link if the account exists; the answer is True either way.

    The lookup and the writes run behind the response, so its timing does not
    tell whether an account exists.
    """
    if bearer_token is not None:
        try:
            await services.accounts.authenticate(bearer_token)
        except UnauthorizedError:
            pass
        else:
            raise AlreadyLoggedInError()
    services.background.run(mail_recovery_link(services, lookup_email(email)))
    return True


async def mail_recovery_link(
    services: Services, email: str, actor: str = audit.SELF
) -> bool:
    """The recovery mail, unless the account is unknown or has had its share of
    them; whether it went. `actor`: who asked (an admin's id for an admin)."""
    user = await services.store.get_user_by_email(email)
    if user is None:
        return False
    try:
        await services.accounts.limits.enter(
            mail_limit(services.settings, RESET_PASSWORD, user["email"])
        )
    except TooManyRequestsError:
        return False
    await services.store.delete_user_tokens(user["_id"], RESET_PASSWORD)
    await services.store.add_side_writes(recovery_writes(services.settings, user))
    services.mailer.wake()
    await services.accounts.audit.record(
        audit.PASSWORD_RESET_REQUESTED, user["_id"], actor
    )
    return True


async def reset_password(
    services: Services, password: str, raw_token: str
) -> dict[str, Any]:
    """Set a new password from a recovery link: every session and other link
    of the user ends, and the account's address gets a notice."""
    # Checked first, so a refused password does not use up the link.
    services.passwords.check_policy(password)
    record = await services.store.consume_user_token(
        hash_secret(raw_token), RESET_PASSWORD
    )
    if record is None:
        raise UnauthorizedError(
            "This password recovery link is invalid or was already used."
        )
    if record["expires_at"] <= datetime.now(UTC):
        raise UpdatePasswordTooLateError()
    before = await services.store.get_user(record["user_id"])
    if before is None:
        raise UnauthorizedError("This account no longer exists.")
    changes = {"password_hash": await services.passwords.hash(password)}
    side = credentials_writes(services.settings, before, {**before, **changes})
    # Only while the account still has the address the link was sent to.
    user = await services.store.update_user(
        before["_id"], changes, side, expected={"email": record["email"]}
    )
    if user is None:
        raise UnauthorizedError(
            "This link was sent to an address that is no longer the one of the account."
        )
    services.mailer.wake()
    await services.accounts.audit.record(audit.PASSWORD_RESET, user["_id"])
    message = "Your password has been changed. You can now log in with it."
    return {"notifications": [{"type": "success", "message": message}]}


async def confirm_email(services: Services, raw_token: str) -> str:
    """Mark the email of a confirmation link as verified; returns the message to show."""
    record = await services.store.consume_user_token(
        hash_secret(raw_token), VERIFY_EMAIL
    )
    if record is None:
        raise UnauthorizedError(
            "This confirmation link is invalid or was already used."
        )
    if record["expires_at"] <= datetime.now(UTC):
        raise UnauthorizedError(
            "This confirmation link has expired. Ask for a new one from your account."
        )
    before = await services.store.get_user(record["user_id"])
    # Only while the account still has the address the link was sent to: an
    # email change in between must not verify the new address.
    user = await services.store.update_user(
        record["user_id"], {"email_verified": True}, expected={"email": record["email"]}
    )
    if before is None or user is None:
        raise UnauthorizedError(
            "This link confirms an email address that is no longer the one of the account."
        )
    if not before["email_verified"]:
        await services.accounts.audit.record(
            audit.EMAIL_VERIFIED, user["_id"], details={"email": user["email"]}
        )
        await call_hook("after_email_verified", user)
    return f"Thank you: {user['email']} is confirmed."
