"""A software passkey authenticator, as a browser with a platform authenticator answers.

It takes the options JSON the service hands out and returns what
`PublicKeyCredential.toJSON()` gives a page: a P-256 (ES256) key, "none"
attestation, a sign counter, and the user verification flag when asked. The
tests choose what a browser would not let a page choose (the origin, a
counter that does not move) to see the service refuse it.
"""

import hashlib
import json
import os
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# Authenticator data flags (WebAuthn L2 §6.1).
USER_PRESENT = 0x01
USER_VERIFIED = 0x04
ATTESTED = 0x40


def b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftPasskey:
    """One passkey on one device."""

    def __init__(self, origin: str, counter: bool = True) -> None:
        self.origin = origin
        self.counter = counter
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.user_handle = b""

    @property
    def id(self) -> str:
        return b64(self.credential_id)

    def _auth_data(self, rp_id: str, flags: int, extra: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256(rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + self.sign_count.to_bytes(4, "big") + extra

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()

    def create(
        self, options: dict[str, Any], origin: str | None = None, verified: bool = True
    ) -> str:
        """navigator.credentials.create(): the new credential's JSON."""
        self.user_handle = unb64(options["user"]["id"])
        numbers = self.key.public_key().public_numbers()
        cose_key = {
            1: 2,  # kty: EC2
            3: -7,  # alg: ES256
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        attested = (
            bytes(16)  # AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + cbor2.dumps(cose_key)
        )
        flags = USER_PRESENT | ATTESTED | (USER_VERIFIED if verified else 0)
        attestation = {
            "fmt": "none",
            "attStmt": {},
            "authData": self._auth_data(options["rp"]["id"], flags, attested),
        }
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(client_data),
                    "attestationObject": b64(cbor2.dumps(attestation)),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def get(
        self,
        options: dict[str, Any],
        origin: str | None = None,
        verified: bool = True,
        count: bool = True,
    ) -> str:
        """navigator.credentials.get(): an assertion's JSON (the counter moves
        first, unless `count` is false or the authenticator keeps none)."""
        if self.counter and count:
            self.sign_count += 1
        flags = USER_PRESENT | (USER_VERIFIED if verified else 0)
        auth_data = self._auth_data(options["rpId"], flags)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(client_data),
                    "authenticatorData": b64(auth_data),
                    "signature": b64(signature),
                    "userHandle": b64(self.user_handle),
                },
                "clientExtensionResults": {},
            }
        )
