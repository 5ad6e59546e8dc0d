"""Passkeys (WebAuthn Level 2): registration, second-factor and passwordless login.

The `webauthn` library verifies every response against AUTH_PUBLIC_URL: its
origin, and its host as the relying party id. Each ceremony's challenge is
random, kept server-side as a one-time token (its hash, the user it was
issued to, its expiry) and used up by the first response that carries it,
right or wrong: a response is never accepted twice. A passkey's sign counter
must grow from use to use (authenticators that keep none send 0 always),
checked and moved in one conditional write. User verification (PIN,
biometrics) is required where the passkey is the only factor.

Passkeys are second factors beside TOTP (mfa.py): a user with one gets
MfaRequiredError from login and completes it with loginWithPasskey.
"""

import datetime as dt
import secrets
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .accounts import ADDRESS_MAX_LENGTH, Accounts, RefreshCookie
from .errors import (
    AccountDisabledError,
    NoSecondFactorError,
    PasskeyAlreadyRegisteredError,
    PasskeyNotFoundError,
    PasswordlessDisabledError,
    UnauthorizedError,
    UserValidationError,
    WrongPasskeyError,
)
from .limits import Limit
from .mfa import CHALLENGE, PASSKEY, Factors
from .rules import CONTROL_OR_BREAK
from .settings import SERVICE_NAME, Settings
from .store import SideWrites, Store
from .tokens import hash_secret

#: The purposes of the ceremonies' challenges among the one-time tokens.
REGISTRATION = "passkey_register"
LOGIN = "passkey_login"
REAUTHENTICATION = "passkey_reauth"
#: A passwordless challenge is issued to nobody yet.
ANYONE = ""
NAME_MAX_LENGTH = 64
#: Passkeys one user may hold: enough for every device, bounded for the options' size.
MAX_PASSKEYS = 20
#: What the library raises on a response it cannot parse or verify (bad base64 is a ValueError).
BAD_RESPONSE = (WebAuthnException, ValueError, TypeError)


def view(passkey: dict[str, Any]) -> dict[str, Any]:
    """A passkey as GraphQL's Passkey: never the public key or the counter."""
    return {
        "id": passkey["credential_id"],
        "name": passkey["name"],
        "createdAt": passkey["created_at"],
        "lastUsedAt": passkey["last_used_at"],
        "backedUp": passkey["backed_up"],
    }


def _descriptors(passkeys: list[dict[str, Any]]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(passkey["credential_id"]),
            transports=[AuthenticatorTransport(t) for t in passkey["transports"]]
            or None,
        )
        for passkey in passkeys
    ]


class Passkeys:
    """The ceremonies; the stored passkeys are the store's (PasskeyStore)."""

    def __init__(
        self, settings: Settings, store: Store, accounts: Accounts, factors: Factors
    ) -> None:
        self.settings = settings
        self.store = store
        self.accounts = accounts
        self.factors = factors

    @property
    def passwordless(self) -> bool:
        return self.settings.passwordless == "passkeys"

    # Registration, listing, removal (logged in).

    async def mine(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            view(passkey) for passkey in await self.store.list_passkeys(user["_id"])
        ]

    async def registration_options(self, user: dict[str, Any]) -> str:
        """The options for navigator.credentials.create(), as JSON."""
        self.factors._enabled()
        existing = await self._room(user["_id"])
        verification = (
            UserVerificationRequirement.REQUIRED
            if self.passwordless
            else UserVerificationRequirement.PREFERRED
        )
        options = generate_registration_options(
            rp_id=self.settings.passkey_rp_id,
            rp_name=SERVICE_NAME,
            user_id=user["_id"].encode(),
            user_name=user["email"],
            challenge=await self._issue(REGISTRATION, user["_id"]),
            timeout=self.settings.passkey_challenge_ttl * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=(
                    ResidentKeyRequirement.REQUIRED
                    if self.passwordless
                    else ResidentKeyRequirement.PREFERRED
                ),
                user_verification=verification,
            ),
            exclude_credentials=_descriptors(existing),
        )
        return options_to_json(options)

    async def register(
        self,
        user: dict[str, Any],
        password: str,
        credential: str,
        name: str | None,
        address: str,
    ) -> dict[str, Any]:
        """Verifies the attestation of create() and keeps the passkey; needs the password."""
        self.factors._enabled()
        name = (name or "").strip() or "Passkey"
        if len(name) > NAME_MAX_LENGTH or CONTROL_OR_BREAK.search(name):
            raise UserValidationError(
                f"A passkey's name is one line of {NAME_MAX_LENGTH} characters at most."
            )
        await self._room(user["_id"])
        await self.accounts.check_password(user, password, address)
        try:
            parsed = parse_registration_credential_json(credential)
            issued, challenge = await self._redeem(
                parsed.response.client_data_json, REGISTRATION
            )
            if issued["user_id"] != user["_id"]:
                raise WrongPasskeyError()
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=self.settings.passkey_rp_id,
                expected_origin=self.settings.public_origin,
                require_user_verification=self.passwordless,
            )
        except BAD_RESPONSE:
            raise WrongPasskeyError() from None
        passkey = {
            "credential_id": bytes_to_base64url(verified.credential_id),
            "user_id": user["_id"],
            "name": name,
            "public_key": bytes_to_base64url(verified.credential_public_key),
            "sign_count": verified.sign_count,
            "transports": [str(t.value) for t in parsed.response.transports or []],
            "backed_up": verified.credential_backed_up,
            "created_at": dt.datetime.now(dt.UTC),
            "last_used_at": None,
        }
        if not await self.store.add_passkey(passkey):
            raise PasskeyAlreadyRegisteredError()
        await self.factors.factor_changed(user, PASSKEY, f'a passkey ("{name}")', True)
        return view(passkey)

    async def delete(
        self, user: dict[str, Any], password: str, passkey_id: str, address: str
    ) -> bool:
        """Removes one of the user's passkeys; needs the password."""
        await self.factors.keep_one(user["_id"])
        await self.accounts.check_password(user, password, address)
        passkey = await self.store.get_passkey(passkey_id)
        if passkey is None or not await self.store.delete_passkey(
            user["_id"], passkey_id
        ):
            raise PasskeyNotFoundError()
        name = passkey["name"]
        await self.factors.factor_changed(user, PASSKEY, f'a passkey ("{name}")', False)
        return True

    async def _room(self, user_id: str) -> list[dict[str, Any]]:
        """The user's passkeys, while they hold fewer than MAX_PASSKEYS."""
        existing = await self.store.list_passkeys(user_id)
        if len(existing) >= MAX_PASSKEYS:
            raise UserValidationError(
                f"An account holds {MAX_PASSKEYS} passkeys at most: delete one first."
            )
        return existing

    # Login.

    async def login_options(self, challenge: str | None, address: str) -> str:
        """The options for navigator.credentials.get(), as JSON: for the user of
        an MFA login challenge, or (no challenge) for whoever holds a
        discoverable passkey, where passwordless login is on. Each keeps a
        challenge, so a client address gets a limited number per window."""
        self.factors._enabled()
        settings = self.settings
        await self.accounts.limits.enter(
            Limit(
                f"passkey-options:{address[:ADDRESS_MAX_LENGTH]}",
                settings.passkey_options_max_per_address,
                settings.passkey_options_window,
            )
        )
        if challenge is None:
            if not self.passwordless:
                raise PasswordlessDisabledError()
            return await self._request_options(LOGIN, ANYONE, [], verified=True)
        user_id = (await self._login_challenge(challenge, consume=False))["user_id"]
        return await self._request_options(
            LOGIN, user_id, await self._own(user_id), verified=False
        )

    async def login(
        self,
        credential: str,
        challenge: str | None,
        address: str,
        cookie: RefreshCookie,
    ) -> dict[str, Any]:
        """Completes a login with an assertion of get(): after the password (the
        MFA challenge, used up by this attempt), or alone (passwordless)."""
        self.factors._enabled()
        if challenge is None and not self.passwordless:
            raise PasswordlessDisabledError()
        parsed, issued, expected = await self._assertion(credential, LOGIN)
        user_id = ANYONE
        if challenge is not None:
            user_id = (await self._login_challenge(challenge, consume=True))["user_id"]
        if issued["user_id"] != user_id:
            raise WrongPasskeyError()
        passkey, user = await self._signer(parsed, user_id)
        if user.get("disabled"):
            raise AccountDisabledError()
        await self._verify(parsed, expected, passkey, user, address, challenge is None)
        return await self.accounts.finish_login(user, cookie)

    # Re-authentication of sensitive changes (updateMe, deleteMe).

    async def reauthentication_options(self, user: dict[str, Any]) -> str:
        """The options for get() whose assertion re-authenticates the logged-in user."""
        self.factors._enabled()
        own = await self._own(user["_id"])
        return await self._request_options(REAUTHENTICATION, user["_id"], own, False)

    async def reauthenticate(
        self, user: dict[str, Any], credential: str, address: str
    ) -> None:
        """A fresh passkey assertion of the user (options of reauthentication_options)."""
        if self.settings.mfa == "off":
            return
        parsed, issued, expected = await self._assertion(credential, REAUTHENTICATION)
        if issued["user_id"] != user["_id"]:
            raise WrongPasskeyError()
        passkey, _ = await self._signer(parsed, user["_id"])
        await self._verify(parsed, expected, passkey, user, address, False)

    # Assertions.

    async def _own(self, user_id: str) -> list[dict[str, Any]]:
        passkeys = await self.store.list_passkeys(user_id)
        if not passkeys:
            raise NoSecondFactorError("This account has no passkey.")
        return passkeys

    async def _request_options(
        self,
        purpose: str,
        user_id: str,
        allowed: list[dict[str, Any]],
        verified: bool,
    ) -> str:
        options = generate_authentication_options(
            rp_id=self.settings.passkey_rp_id,
            challenge=await self._issue(purpose, user_id),
            timeout=self.settings.passkey_challenge_ttl * 1000,
            allow_credentials=_descriptors(allowed),
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if verified
                else UserVerificationRequirement.PREFERRED
            ),
        )
        return options_to_json(options)

    async def _assertion(
        self, credential: str, purpose: str
    ) -> tuple[Any, dict[str, Any], bytes]:
        """The parsed assertion, and the challenge it signed (used up here)."""
        try:
            parsed = parse_authentication_credential_json(credential)
            issued, expected = await self._redeem(
                parsed.response.client_data_json, purpose
            )
        except BAD_RESPONSE:
            raise WrongPasskeyError() from None
        return parsed, issued, expected

    async def _signer(
        self, parsed: Any, user_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The passkey an assertion names and its user: `user_id`'s, or anyone's."""
        passkey = await self.store.get_passkey(bytes_to_base64url(parsed.raw_id))
        if passkey is None or user_id not in (ANYONE, passkey["user_id"]):
            raise WrongPasskeyError()
        handle = parsed.response.user_handle
        if handle is not None and handle != passkey["user_id"].encode():
            raise WrongPasskeyError()
        user = await self.store.get_user(passkey["user_id"])
        if user is None:
            raise WrongPasskeyError()
        return passkey, user

    async def _verify(
        self,
        parsed: Any,
        expected: bytes,
        passkey: dict[str, Any],
        user: dict[str, Any],
        address: str,
        verified: bool,
    ) -> None:
        """Checks the signature, origin, RP id, flags and counter, within the
        login failure limits; moves the counter in a conditional write."""
        attempt = await self.accounts.password_attempt(user["email"], address)
        try:
            result = verify_authentication_response(
                credential=parsed,
                expected_challenge=expected,
                expected_rp_id=self.settings.passkey_rp_id,
                expected_origin=self.settings.public_origin,
                credential_public_key=base64url_to_bytes(passkey["public_key"]),
                credential_current_sign_count=passkey["sign_count"],
                require_user_verification=verified,
            )
        except BAD_RESPONSE:
            raise WrongPasskeyError() from None
        used = {
            "sign_count": result.new_sign_count,
            "backed_up": result.credential_backed_up,
            "last_used_at": dt.datetime.now(dt.UTC),
        }
        if not await self.store.update_passkey(
            passkey["credential_id"], used, {"sign_count": passkey["sign_count"]}
        ):
            raise WrongPasskeyError()
        await self.accounts.limits.forget(attempt)

    async def _login_challenge(self, challenge: str, consume: bool) -> dict[str, Any]:
        """The record of a live MFA login challenge (mfa.Factors.challenge)."""
        token_hash = hash_secret(challenge)
        if consume:
            record = await self.store.consume_user_token(token_hash, CHALLENGE)
        else:
            record = await self.store.get_user_token(token_hash, CHALLENGE)
        if record is None or record["expires_at"] <= dt.datetime.now(dt.UTC):
            raise UnauthorizedError(
                "This login challenge is unknown, used or expired: log in again."
            )
        return record

    # Challenges.

    async def _issue(self, purpose: str, user_id: str) -> bytes:
        """A fresh challenge, kept (hashed) as a one-time token of `purpose`."""
        challenge = secrets.token_bytes(32)
        token = {
            "token_hash": hash_secret(bytes_to_base64url(challenge)),
            "user_id": user_id,
            "purpose": purpose,
            "email": None,
            "expires_at": dt.datetime.now(dt.UTC)
            + dt.timedelta(seconds=self.settings.passkey_challenge_ttl),
        }
        await self.store.add_side_writes(SideWrites(tokens=[token]))
        return challenge

    async def _redeem(
        self, client_data_json: bytes, purpose: str
    ) -> tuple[dict[str, Any], bytes]:
        """Uses up the challenge a response signed: its record and its bytes."""
        challenge = parse_client_data_json(client_data_json).challenge
        record = await self.store.consume_user_token(
            hash_secret(bytes_to_base64url(challenge)), purpose
        )
        if record is None or record["expires_at"] <= dt.datetime.now(dt.UTC):
            raise WrongPasskeyError()
        return record, challenge
