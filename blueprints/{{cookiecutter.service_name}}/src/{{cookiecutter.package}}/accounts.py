"""The account logic: registration, logins and sessions, the logged-in user's changes.

A session is a chain of refresh tokens, one per device: each refresh swaps the
cookie for a new one. A cookie swapped less than AUTH_REFRESH_REUSE_INTERVAL
seconds ago still continues its session (two tabs refreshing at once, a login
during a refresh); one swapped earlier (a stolen copy replayed) revokes the
whole session. Only SHA-256 hashes of refresh and one-time tokens are stored;
passwords are argon2id hashes.
"""

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from . import audit, hooks, roles
from .errors import (
    AccountDisabledError,
    AlreadyExistsError,
    EmailAlreadyExistsError,
    LastAdminError,
    TooManyRequestsError,
    UnauthorizedError,
    UserNotFoundError,
    UserValidationError,
    WrongPasswordError,
)
from .limits import Limit, Limits, mail_limit
from .links import VERIFY_EMAIL, credentials_writes, masked_email, verification_writes
from .mail import Mailer
from .models import LOGIN_FIELDS, account_view, owner_view, validate_fields
from .passwords import Passwords
from .rules import CONTROL, normalize_email
from .settings import Settings
from .store import (
    AnyOf,
    Compare,
    DuplicateValueError,
    LastMatchError,
    Rotation,
    Store,
    UserQuery,
    is_valid_id,
    new_id,
)
from .tokens import KeyPair, hash_secret, new_secret

#: Longer client addresses are cut in rate limit keys.
ADDRESS_MAX_LENGTH = 64


class RefreshCookie(Protocol):
    """The request's refresh token cookie, and the way to change it in the response."""

    @property
    def refresh_cookie(self) -> str | None: ...

    def set_refresh_cookie(self, value: str) -> None: ...

    def clear_refresh_cookie(self) -> None: ...


def valid_email(value: str) -> str:
    """The address in its stored form (see rules.normalize_email); UserValidationError if none."""
    try:
        return normalize_email(value)
    except ValueError as error:
        raise UserValidationError(f"email: {error}") from None


def lookup_email(value: str) -> str:
    """The address to look an account up by. One that cannot be valid is looked
    up as the empty address, which no account has: it fails as an unknown one."""
    try:
        return normalize_email(value)
    except ValueError:
        return ""


async def call_hook(name: str, user: dict[str, Any]) -> None:
    """Await hooks.NAME with the user's stored fields but the password hash.

    hooks.py is the user's, created once: one written by an older authgen
    lacks the hooks added since, and the service then goes on as with an
    empty hook (authgen's upgrade notes name the new hooks).
    """
    hook = getattr(hooks, name, None)
    if hook is not None:
        await hook(
            {key: value for key, value in user.items() if key != "password_hash"}
        )


def duplicate_error(error: DuplicateValueError) -> Exception:
    if error.field == "email":
        return EmailAlreadyExistsError()
    return AlreadyExistsError(error.field)


class Accounts:
    """register, login, me, refreshToken, logout, updateMe, deleteMe, emailAvailable."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        passwords: Passwords,
        keys: KeyPair,
        mailer: Mailer,
    ) -> None:
        self.settings = settings
        self.store = store
        self.passwords = passwords
        self.keys = keys
        self.mailer = mailer
        self.limits = Limits(store)
        # mfa.Factors.challenge: raises MfaRequiredError for a user with a factor.
        self.second_factor: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.audit = audit.Audit(settings, store, mailer)

    # Registration.

    async def register(self, fields: dict[str, Any], address: str) -> bool:
        values = dict(fields)
        email = valid_email(values.pop("email"))
        password = values.pop("password")
        self.passwords.check_policy(password)
        custom = validate_fields(values, creating=True)
        settings = self.settings
        if settings.register_max_per_address:
            key = f"register:{address[:ADDRESS_MAX_LENGTH]}"
            await self.limits.enter(
                Limit(key, settings.register_max_per_address, settings.register_window)
            )
        user = {
            "_id": new_id(),
            "email": email,
            "email_verified": False,
            "password_hash": await self.passwords.hash(password),
            "created_at": dt.datetime.now(dt.UTC),
            "roles": [],
            "disabled": False,
            **custom,
        }
        try:
            await self.store.insert_user(user, verification_writes(self.settings, user))
        except DuplicateValueError as error:
            raise duplicate_error(error) from None
        self.mailer.wake()
        await self.audit.record(audit.REGISTER, user["_id"])
        await call_hook("after_register", user)
        return True

    async def email_available(self, email: str, address: str) -> bool:
        settings = self.settings
        key = f"email-available:{address[:ADDRESS_MAX_LENGTH]}"
        await self.limits.enter(
            Limit(
                key,
                settings.email_available_max_per_address,
                settings.email_available_window,
            )
        )
        try:
            address = valid_email(email)
        except UserValidationError:
            return False  # nobody can register it
        return await self.store.get_user_by_email(address) is None

    # Logins and sessions.

    async def login(
        self, email: str, password: str, address: str, cookie: RefreshCookie
    ) -> dict[str, Any]:
        user, key = await self._login_user(email)
        try:
            attempt = await self.password_attempt(key, address)
        except TooManyRequestsError:
            await self._login_refused(key, audit.THROTTLED, user)
            raise
        if not await self._verify(
            attempt, user["password_hash"] if user else None, password
        ):
            await self._login_refused(key, audit.FAILURE, user)
            raise UserNotFoundError()
        assert user is not None
        if user.get("disabled"):
            raise AccountDisabledError()
        if self.passwords.needs_rehash(user["password_hash"]):
            await self.store.update_user(
                user["_id"], {"password_hash": await self.passwords.hash(password)}
            )
        if self.second_factor is not None:
            await self.second_factor(user)
        return await self.finish_login(user, cookie)

    async def finish_login(
        self, user: dict[str, Any], cookie: RefreshCookie
    ) -> dict[str, Any]:
        """The tokens and session of a login whose every factor has been checked."""
        await call_hook("after_login", user)
        await self._login_session(user["_id"], dt.datetime.now(dt.UTC), cookie)
        await self.audit.record(audit.LOGIN, user["_id"])
        return self._user_and_token(user)

    async def _login_refused(
        self, email: str, outcome: str, user: dict[str, Any] | None = None
    ) -> None:
        """The audit event of a refused login: the account's when there is one,
        else only a masked form of what was typed (it may be a password)."""
        if user is None and outcome == audit.THROTTLED:
            user = await self.store.get_user_by_email(email)
        details = {} if user else {"email": masked_email(email) if email else ""}
        await self.audit.record(
            audit.LOGIN, user["_id"] if user else None, outcome=outcome, details=details
        )

    async def _login_user(self, value: str) -> tuple[dict[str, Any] | None, str]:
        """The account a login value names (service.login_fields), and the key
        its password checks count under: the account's email, so every login
        value of one account shares its limits.

        One lookup whatever the value is, so no kind of miss answers sooner;
        a value that is the email of one user and the username of another
        names the one whose field comes first in login_fields.
        """
        email = lookup_email(value)
        if LOGIN_FIELDS == ("email",):
            return await self.store.get_user_by_email(email), email
        # No stored value has a control character (and NUL would upset PostgreSQL).
        other = "" if CONTROL.search(value) else value
        conditions = tuple(
            Compare(name, "eq", email if name == "email" else other)
            for name in LOGIN_FIELDS
        )
        found = await self.store.find_users(
            UserQuery(where=AnyOf(conditions), limit=len(conditions))
        )
        for name in LOGIN_FIELDS:
            wanted = email if name == "email" else other
            for user in found:
                if user.get(name) == wanted:
                    return user, user["email"]
        return None, email or other[:ADDRESS_MAX_LENGTH]

    async def check_password(
        self, user: dict[str, Any], password: str, address: str
    ) -> None:
        """WrongPasswordError unless `password` is the user's, within the
        failure limits: every operation that takes a password is a guess."""
        attempt = await self.password_attempt(user["email"], address)
        if not await self._verify(attempt, user["password_hash"], password):
            raise WrongPasswordError()

    async def password_attempt(self, email: str, address: str) -> str:
        """Record a password check, within the failure limits (TooManyRequestsError past them).

        Failures count per (account, address) and per address, so one client
        cannot lock a user out, and per account (a much higher limit) against
        guesses spread over many addresses.
        """
        settings = self.settings
        window = settings.login_failure_window
        address = address[:ADDRESS_MAX_LENGTH]
        return await self.limits.enter(
            Limit(
                f"password-pair:{address} {email}",
                settings.login_max_failures_per_account_address,
                window,
            ),
            Limit(
                f"password-account:{email}",
                settings.login_max_failures_per_account,
                window,
            ),
            Limit(
                f"password-address:{address}",
                settings.login_max_failures_per_address,
                window,
            ),
        )

    async def _verify(
        self, attempt: str, password_hash: str | None, password: str
    ) -> bool:
        """Whether the password is right: a failed attempt stays counted, a right one does not."""
        if not await self.passwords.verify(password_hash, password):
            return False
        await self.limits.forget(attempt)
        return True

    async def authenticate(self, bearer_token: str | None) -> dict[str, Any]:
        """The user of a valid auth token; UnauthorizedError otherwise."""
        if not bearer_token:
            raise UnauthorizedError(
                "This needs an auth token: log in and send it as a Bearer token."
            )
        subject = self.keys.verify(bearer_token)["sub"]
        user = await self.store.get_user(subject) if is_valid_id(subject) else None
        if user is None:
            raise UnauthorizedError()
        if user.get("disabled"):
            raise AccountDisabledError()
        return user

    async def refresh(self, cookie: RefreshCookie) -> dict[str, Any]:
        if not cookie.refresh_cookie:
            raise UnauthorizedError("No refresh token cookie: log in.")
        rotation, record = await self._rotate(cookie)
        if rotation is not Rotation.ROTATED or record is None:
            raise UnauthorizedError("The session has ended: log in again.")
        user = await self.store.get_user(record["user_id"])
        if user is None or user.get("disabled"):
            await self.store.end_user_sessions(record["user_id"])
            cookie.clear_refresh_cookie()
            raise AccountDisabledError() if user else UnauthorizedError()
        token, expiry = self._token(user)
        return {"token": token, "expiryDate": expiry}

    async def logout(self, cookie: RefreshCookie) -> bool:
        """Ends this device's session only."""
        if cookie.refresh_cookie:
            record = await self.store.end_session(hash_secret(cookie.refresh_cookie))
            if record is not None:
                await self.audit.record(audit.LOGOUT, record["user_id"])
        cookie.clear_refresh_cookie()
        return True

    async def _login_session(
        self, user_id: str, now: dt.datetime, cookie: RefreshCookie
    ) -> None:
        """Give the device that logs in a fresh cookie.

        A cookie of the user's own session continues that session: a refresh
        sent with the same cookie may be in flight (Krypton's client does
        that), and whichever answer the browser keeps must work. A cookie of
        another user's session ends it; a replayed one revoked its session.
        """
        if cookie.refresh_cookie:
            rotation, record = await self._rotate(cookie)
            if rotation is Rotation.ROTATED and record is not None:
                if record["user_id"] == user_id:
                    return
                await self.store.end_session(hash_secret(cookie.refresh_cookie))
        cookie.set_refresh_cookie(await self._new_session(user_id, now))

    async def _new_session(self, user_id: str, now: dt.datetime) -> str:
        raw, token_hash = new_secret()
        await self.store.add_refresh_token(
            {
                "token_hash": token_hash,
                "session_id": secrets.token_hex(16),
                "user_id": user_id,
                "expires_at": now
                + dt.timedelta(seconds=self.settings.refresh_token_ttl),
                "created_at": now,
                **audit.last_use(now),
            }
        )
        return raw

    async def _rotate(
        self, cookie: RefreshCookie
    ) -> tuple[Rotation, dict[str, Any] | None]:
        """Swap the request's refresh cookie for a new one, or clear it when it is no good."""
        now = dt.datetime.now(dt.UTC)
        raw, token_hash = new_secret()
        replacement = {
            "token_hash": token_hash,
            "expires_at": now + dt.timedelta(seconds=self.settings.refresh_token_ttl),
            **audit.last_use(now),
        }
        rotation, record = await self.store.rotate_refresh_token(
            hash_secret(cookie.refresh_cookie or ""),
            replacement,
            now,
            self.settings.refresh_reuse_interval,
        )
        if rotation is Rotation.ROTATED:
            cookie.set_refresh_cookie(raw)
        else:
            cookie.clear_refresh_cookie()
        if rotation is Rotation.REUSED and record is not None:
            await self.audit.record(
                audit.REFRESH_TOKEN_REUSED,
                record["user_id"],
                actor=audit.SYSTEM,
                outcome=audit.FAILURE,
                details={"session_id": record["session_id"]},
            )
        return rotation, record

    def _token(self, user: dict[str, Any]) -> tuple[str, dt.datetime]:
        return self.keys.issue(
            user["_id"], account_view(user), self.settings.auth_token_ttl
        )

    def _user_and_token(self, user: dict[str, Any]) -> dict[str, Any]:
        token, expiry = self._token(user)
        return {"token": token, "expiryDate": expiry, "user": owner_view(user)}

    # The logged-in user's own account.

    async def update_me(
        self,
        user: dict[str, Any],
        fields: dict[str, Any],
        cookie: RefreshCookie,
        address: str,
    ) -> dict[str, Any]:
        """Changes the user's fields; email and password also need this session's cookie.

        A new email must be verified again. A new email or password ends every
        other session and every outstanding link of the user, and notifies
        the address the account had. Every check that needs no password runs
        before the password is verified, so a caller without the cookie learns
        nothing from a guess.
        """
        values = dict(fields)
        email = values.pop("email", None)
        password = values.pop("password", None)
        previous_password = values.pop("previousPassword", None)
        changes = validate_fields(values, creating=False)
        if email is not None:
            email = valid_email(email)
            if email == user["email"]:
                email = None
        needs_session = email is not None or password is not None
        needs_password = password is not None or (
            email is not None and self.settings.email_change_needs_password
        )
        attempt = None
        if password is not None:
            self.passwords.check_policy(password)
        if needs_password:
            if not previous_password:
                raise WrongPasswordError()
            if cookie.refresh_cookie:
                attempt = await self.password_attempt(user["email"], address)
        in_session = False
        if cookie.refresh_cookie:
            rotation, record = await self._rotate(cookie)
            in_session = (
                rotation is Rotation.ROTATED
                and record is not None
                and record["user_id"] == user["_id"]
            )
        if needs_session and not in_session:
            if attempt is not None:
                await self.limits.forget(attempt)  # no password was checked
            raise UnauthorizedError(
                "Changing the email or password needs this session's refresh cookie: log in again."
            )
        if attempt is not None and not await self._verify(
            attempt, user["password_hash"], previous_password
        ):
            raise WrongPasswordError()
        if email is not None:
            # The new address gets a confirmation mail: within that address's mail limit.
            await self.limits.enter(mail_limit(self.settings, VERIFY_EMAIL, email))
        side = None
        if email is not None:
            changes.update(email=email, email_verified=False)
        if password is not None:
            changes["password_hash"] = await self.passwords.hash(password)
        if email is not None or password is not None:
            side = credentials_writes(self.settings, user, {**user, **changes})
        try:
            updated = await self.store.update_user(user["_id"], changes, side)
        except DuplicateValueError as error:
            raise duplicate_error(error) from None
        if updated is None:
            raise UnauthorizedError()
        if email is not None:
            await self.audit.record(
                audit.EMAIL_CHANGED,
                user["_id"],
                details={"previous_email": user["email"], "email": email},
            )
        if password is not None:
            await self.audit.record(audit.PASSWORD_CHANGED, user["_id"])
        if side is not None:
            self.mailer.wake()
            # The other sessions ended with the change; this device goes on in a new one.
            cookie.set_refresh_cookie(
                await self._new_session(user["_id"], dt.datetime.now(dt.UTC))
            )
        return self._user_and_token(updated)

    async def delete_me(
        self, user: dict[str, Any], password: str, cookie: RefreshCookie, address: str
    ) -> bool:
        await self.check_password(user, password, address)
        try:
            await roles.delete_user(
                self.store, user, lambda: call_hook("before_delete", user)
            )
        except LastMatchError:
            details = {"reason": "last_admin"}
            await self.audit.record(
                audit.ACCOUNT_DELETED,
                user["_id"],
                outcome=audit.FAILURE,
                details=details,
            )
            raise LastAdminError() from None
        await self.audit.record(audit.ACCOUNT_DELETED, user["_id"])
        cookie.clear_refresh_cookie()
        return True
