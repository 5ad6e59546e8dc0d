"""Second factors: TOTP (RFC 6238) with recovery codes, and the login challenge.

A user with a confirmed factor does not get tokens from `login`: it answers
MfaRequiredError carrying a challenge (a one-time token, stored hashed like
the links), and `loginWithSecondFactor` trades the challenge and a code for
what `login` returns. TOTP secrets are stored encrypted with the key in
AUTH_MFA_KEY_FILE, recovery codes as HMACs under the same key: a copy of the
database alone gives neither. A TOTP step is accepted once (the last one
used is stored and only later ones pass), a recovery code once (removed in
the same conditional write that accepts it).
"""

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyotp
import segno
from cryptography.fernet import Fernet

from . import audit
from .accounts import Accounts, RefreshCookie
from .errors import (
    AccountDisabledError,
    MfaAlreadyEnabledError,
    MfaDisabledError,
    MfaEnrolmentRequiredError,
    MfaRequiredError,
    NoSecondFactorError,
    SecondFactorRequiredError,
    UnauthorizedError,
    WrongMfaCodeError,
)
from .limits import Limit
from .mail import Mailer, outbox_record
from .models import account_view
from .settings import SERVICE_NAME, Settings
from .store import SideWrites, Store
from .tokens import create_exclusively, hash_secret, new_secret

#: The purposes of a login challenge and of an enrolment challenge
#: (mfa=required) among the one-time tokens.
CHALLENGE = "mfa_login"
ENROLMENT = "mfa_enrol"
#: The kinds of second factor, as `kinds`, MfaRequiredError and the audit trail name them.
TOTP = "totp"
PASSKEY = "passkey"
RECOVERY_CODES = 10
#: Steps accepted either side of now (clock drift, a code typed at a step's end).
WINDOW = 1


def load_or_create_key(path: Path) -> bytes:
    """The key of the secrets and recovery codes, created on first start (file 0600)."""
    if not path.exists():
        create_exclusively(path, Fernet.generate_key(), 0o600)
    return path.read_bytes().strip()


def _normalized(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


class Factors:
    """Enrolment, checks and removal of a user's TOTP factor; the login challenge."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        accounts: Accounts,
        mailer: Mailer,
        key: bytes,
    ) -> None:
        self.settings = settings
        self.store = store
        self.accounts = accounts
        self.mailer = mailer
        self.key = key
        self.fernet = Fernet(key)

    @classmethod
    def start(
        cls, settings: Settings, store: Store, accounts: Accounts, mailer: Mailer
    ) -> "Factors":
        key = load_or_create_key(settings.mfa_key_file)
        factors = cls(settings, store, accounts, mailer, key)
        if settings.mfa != "off":
            accounts.second_factor = factors.challenge
        return factors

    def _enabled(self) -> None:
        if self.settings.mfa == "off":
            raise MfaDisabledError()

    def _recovery_hash(self, code: str) -> str:
        return hmac.new(
            self.key, _normalized(code).encode(), hashlib.sha256
        ).hexdigest()

    # Enrolment and removal.

    async def has_factor(self, user_id: str) -> bool:
        return bool(await self.kinds(user_id))

    async def kinds(self, user_id: str) -> list[str]:
        """The user's factors in force: "totp", "passkey" (passkeys.py), both or none."""
        kinds = []
        factor = await self.store.get_factor(user_id)
        if factor is not None and factor["confirmed"]:
            kinds.append(TOTP)
        if await self.store.list_passkeys(user_id):
            kinds.append(PASSKEY)
        return kinds

    async def has_totp(self, user_id: str) -> bool:
        return TOTP in await self.kinds(user_id)

    async def start_totp(self, user: dict[str, Any]) -> dict[str, str]:
        """A new secret, not in force until confirm_totp sees a code of it."""
        self._enabled()
        if await self.has_totp(user["_id"]):
            raise MfaAlreadyEnabledError()
        secret = pyotp.random_base32()
        await self.store.put_factor(
            {
                "user_id": user["_id"],
                "secret": self.fernet.encrypt(secret.encode()).decode(),
                "confirmed": False,
                "last_step": 0,
                "recovery": "",
                "created_at": dt.datetime.now(dt.UTC),
            }
        )
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=user["email"], issuer_name=SERVICE_NAME
        )
        return {
            "secret": secret,
            "uri": uri,
            "qrCode": segno.make(uri, error="m").svg_inline(scale=4),
        }

    async def confirm_totp(
        self, user: dict[str, Any], code: str, address: str
    ) -> list[str]:
        """Puts the factor in force; returns the recovery codes, shown this once."""
        self._enabled()
        factor = await self.store.get_factor(user["_id"])
        if factor is None or factor["confirmed"]:
            raise NoSecondFactorError("Start the enrolment first (startTotpEnrolment).")
        await self._check(user, address, lambda: self._accept_totp(factor, code))
        codes, hashes = self._new_recovery_codes()
        if not await self.store.update_factor(
            user["_id"], {"confirmed": True, "recovery": hashes}, {"confirmed": False}
        ):
            raise MfaAlreadyEnabledError()
        await self.factor_changed(user, TOTP, "an authenticator app", added=True)
        return codes

    async def regenerate_recovery_codes(
        self, user: dict[str, Any], code: str, address: str
    ) -> list[str]:
        """New recovery codes for a current code; the old ones stop working."""
        await self._in_force(user)
        await self.reauthenticate(user, code, address)
        codes, hashes = self._new_recovery_codes()
        await self.store.update_factor(
            user["_id"], {"recovery": hashes}, {"confirmed": True}
        )
        return codes

    async def disable_totp(
        self, user: dict[str, Any], password: str, code: str, address: str
    ) -> bool:
        """Needs both the password and a current code (or a recovery code)."""
        await self._in_force(user)
        await self.keep_one(user["_id"])
        await self.accounts.check_password(user, password, address)
        await self.reauthenticate(user, code, address)
        await self.store.delete_factor(user["_id"])
        await self.factor_changed(user, TOTP, "the authenticator app", added=False)
        return True

    async def _in_force(self, user: dict[str, Any]) -> None:
        self._enabled()
        if not await self.has_totp(user["_id"]):
            raise NoSecondFactorError()

    def _new_recovery_codes(self) -> tuple[list[str], str]:
        """Ten codes as shown (`3f2a1-9c0de`), and their hashes as stored."""
        codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
        codes = [f"{code[:5]}-{code[5:]}" for code in codes]
        return codes, " ".join(self._recovery_hash(code) for code in codes)

    async def factor_changed(
        self, user: dict[str, Any], kind: str, factor: str, added: bool
    ) -> None:
        """Tells the owner that `factor` (e.g. 'a passkey ("Laptop")') was added
        or removed, and records it in the audit trail under its `kind`."""
        template = "mfa_added_email" if added else "mfa_removed_email"
        context = {"user": account_view(user), "factor": factor}
        mail = outbox_record(user["email"], template, context)
        await self.store.add_side_writes(SideWrites(mails=[mail]))
        self.mailer.wake()
        event = audit.SECOND_FACTOR_ADDED if added else audit.SECOND_FACTOR_REMOVED
        await self.accounts.audit.record(event, user["_id"], details={"factor": kind})

    # Checks.

    async def reauthenticate(
        self, user: dict[str, Any], code: str | None, address: str
    ) -> None:
        """A fresh second factor for a sensitive change, where the user has one
        (a passkey's assertion is passkeys.Passkeys.reauthenticate's)."""
        if self.settings.mfa == "off":
            return
        factor = await self.store.get_factor(user["_id"])
        if factor is None or not factor["confirmed"]:
            if await self.store.list_passkeys(user["_id"]):
                raise WrongMfaCodeError(
                    "This change needs one of your passkeys: send the JSON of an"
                    " assertion (options of passkeyReauthenticationOptions) as code."
                )
            return
        if not code:
            raise WrongMfaCodeError(
                "This change needs a current code of your authenticator (code)."
            )
        await self._check(user, address, lambda: self._accept(factor, code))

    async def _check(
        self,
        user: dict[str, Any],
        address: str,
        accept: Callable[[], Awaitable[bool]],
    ) -> None:
        """Run `accept` within the login failure limits: a wrong code counts as a wrong password."""
        attempt = await self.accounts.password_attempt(user["email"], address)
        if not await accept():
            raise WrongMfaCodeError()
        await self.accounts.limits.forget(attempt)

    async def _accept(self, factor: dict[str, Any], code: str) -> bool:
        """A TOTP code or a recovery code, each accepted once."""
        code = _normalized(code)
        if len(code) == 6 and code.isdigit():
            return await self._accept_totp(factor, code)
        hashes = factor["recovery"].split()
        given = self._recovery_hash(code)
        if not any(hmac.compare_digest(given, stored) for stored in hashes):
            return False
        return await self.store.update_factor(
            factor["user_id"],
            {"recovery": " ".join(stored for stored in hashes if stored != given)},
            {"recovery": factor["recovery"]},
        )

    async def _accept_totp(self, factor: dict[str, Any], code: str) -> bool:
        totp = pyotp.TOTP(self.fernet.decrypt(factor["secret"].encode()).decode())
        now = int(time.time()) // totp.interval
        for step in range(now - WINDOW, now + WINDOW + 1):
            if step > factor["last_step"] and hmac.compare_digest(
                totp.generate_otp(step), _normalized(code)
            ):
                return await self.store.update_factor(
                    factor["user_id"],
                    {"last_step": step},
                    {"last_step": factor["last_step"]},
                )
        return False

    # The login challenge.

    async def challenge(self, user: dict[str, Any]) -> None:
        """Login's hook: a user with a factor gets MfaRequiredError and a
        challenge; where factors are required, a user without one gets
        MfaEnrolmentRequiredError and an enrolment challenge."""
        kinds = await self.kinds(user["_id"])
        if kinds:
            ttl = self.settings.mfa_challenge_ttl
            raise MfaRequiredError(await self._issue(user, CHALLENGE, ttl), kinds)
        if self.settings.mfa == "required":
            ttl = self.settings.mfa_enrolment_ttl
            raise MfaEnrolmentRequiredError(await self._issue(user, ENROLMENT, ttl))

    async def _issue(self, user: dict[str, Any], purpose: str, ttl: int) -> str:
        raw, token_hash = new_secret()
        token = {
            "token_hash": token_hash,
            "user_id": user["_id"],
            "purpose": purpose,
            "email": user["email"],
            "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl),
        }
        await self.store.add_side_writes(SideWrites(tokens=[token]))
        return raw

    # Enrolment at login (mfa=required).

    async def enrolling_user(self, challenge: str) -> dict[str, Any]:
        """The user of a live enrolment challenge: it stands in for the auth
        token in the enrolment mutations."""
        record = await self.store.get_user_token(hash_secret(challenge), ENROLMENT)
        user = await self._user_of(record)
        if user is None:
            raise UnauthorizedError(
                "This enrolment challenge is unknown, used or expired: log in again."
            )
        return user

    async def complete_enrolment(
        self, challenge: str, cookie: RefreshCookie
    ) -> dict[str, Any]:
        """The login an enrolment challenge was issued for, once a factor is in force."""
        user = await self.enrolling_user(challenge)
        if not await self.has_factor(user["_id"]):
            raise NoSecondFactorError(
                "Add a second factor with this challenge first (confirmTotpEnrolment"
                " or registerPasskey)."
            )
        token_hash = hash_secret(challenge)
        if await self.store.consume_user_token(token_hash, ENROLMENT) is None:
            raise UnauthorizedError(
                "This enrolment challenge is unknown, used or expired: log in again."
            )
        if user.get("disabled"):
            raise AccountDisabledError()
        return await self.accounts.finish_login(user, cookie)

    async def _user_of(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None or record["expires_at"] <= dt.datetime.now(dt.UTC):
            return None
        return await self.store.get_user(record["user_id"])

    async def keep_one(self, user_id: str) -> None:
        """Where factors are required, the last one stays."""
        if self.settings.mfa != "required":
            return
        in_force = len(await self.store.list_passkeys(user_id))
        if await self.has_totp(user_id):
            in_force += 1
        if in_force < 2:
            raise SecondFactorRequiredError()

    async def login(
        self, challenge: str, code: str, address: str, cookie: RefreshCookie
    ) -> dict[str, Any]:
        """Completes a login: the challenge is used up by a right code, or by
        AUTH_MFA_CHALLENGE_MAX_FAILURES wrong ones."""
        self._enabled()
        token_hash = hash_secret(challenge)
        record = await self.store.consume_user_token(token_hash, CHALLENGE)
        if record is not None and record["expires_at"] <= dt.datetime.now(dt.UTC):
            record = None
        user = await self.store.get_user(record["user_id"]) if record else None
        factor = await self.store.get_factor(user["_id"]) if user else None
        if record is None or user is None:
            raise UnauthorizedError(
                "This login challenge is unknown, used or expired: log in again."
            )
        if factor is None or not factor["confirmed"]:
            await self.store.add_side_writes(SideWrites(tokens=[record]))
            raise NoSecondFactorError(
                "This account has no authenticator app: use a passkey (loginWithPasskey)."
            )
        try:
            await self._check(user, address, lambda: self._accept(factor, code))
        except WrongMfaCodeError:
            failures = Limit(
                f"mfa-challenge:{token_hash}",
                self.settings.mfa_challenge_max_failures - 1,
                self.settings.mfa_challenge_ttl,
            )
            await self.accounts.limits.enter(failures)
            await self.store.add_side_writes(SideWrites(tokens=[record]))
            raise
        return await self.accounts.finish_login(user, cookie)
