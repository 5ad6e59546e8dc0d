"""Secrets handed to users: one-time tokens, and the JWT auth tokens with their keys.

The key pair is read (or created) once at start; signing and verifying use the
parsed key objects, so no request parses a PEM file.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .errors import UnauthorizedError

log = logging.getLogger(__name__)
#: Verified auth tokens kept by a process (about 1 KB each).
VERIFIED_TOKENS = 4096


def new_secret() -> tuple[str, str]:
    """A fresh random token for a link or cookie, and the hash that is stored."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_secret(raw)


def hash_secret(raw: str) -> str:
    """SHA-256 is enough: the token has 256 bits of entropy, nothing to brute-force."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def same_secret(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(raw), stored_hash)


# Keys.

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_KEY_TYPES: dict[str, tuple[type, Any]] = {
    "RS256": (rsa.RSAPrivateKey, RSAAlgorithm),
    "ES256": (ec.EllipticCurvePrivateKey, ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey, OKPAlgorithm),
}
# RFC 7638: the members of each key type that make up its thumbprint.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


class KeyFileError(Exception):
    """Key files that cannot be used; stops the start with the reason."""


def _generate(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def create_exclusively(path: Path, content: bytes, mode: int) -> bool:
    """Write a new file atomically; False if it already exists.

    The content goes to a private temporary file that is then hard-linked to
    its name: the link fails when another worker got there first, and a
    reader never sees a half-written key.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)


def _load_private(path: Path, algorithm: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(
            f"{path} is not an unencrypted PEM private key: {error}"
        ) from None
    # The first test tells the type checker what the second (by name) implies.
    if not isinstance(key, PrivateKey) or not isinstance(key, _KEY_TYPES[algorithm][0]):
        raise KeyFileError(
            f"{path} holds a {type(key).__name__.lstrip('_')}, which cannot sign {algorithm};"
            " set AUTH_JWT_ALGORITHM to match the key, or point AUTH_PRIVATE_KEY_FILE elsewhere"
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise KeyFileError(
            f"{path} is an EC key on {key.curve.name}; ES256 needs P-256"
        )
    return key


@dataclass(frozen=True)
class KeyPair:
    """The signing key and what is published to verify its tokens."""

    algorithm: str
    private_key: PrivateKey
    public_key: PublicKey
    public_pem: str
    kid: str
    jwk: dict[str, Any]
    _verified: dict[str, dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def load_or_create(
        cls, private_file: Path, public_file: Path, algorithm: str
    ) -> "KeyPair":
        """The pair from its files, created on first start (files 0600, a new folder 0700).

        Several workers may start together: one creates each file, the
        others read what it wrote.
        """
        if not private_file.exists():
            create_exclusively(private_file, _private_pem(_generate(algorithm)), 0o600)
        elif private_file.stat().st_mode & 0o077:
            log.warning("%s can be read by other users; chmod 600 it", private_file)
        private_key = _load_private(private_file, algorithm)
        public_key = private_key.public_key()
        public_pem = _public_pem(public_key)
        if not public_file.exists():
            create_exclusively(public_file, public_pem, 0o600)
        if public_file.read_bytes().strip() != public_pem.strip():
            raise KeyFileError(
                f"{public_file} is not the public key of {private_file};"
                " delete it and it is written again at the next start"
            )
        jwk = _KEY_TYPES[algorithm][1].to_jwk(public_key, as_dict=True)
        kid = thumbprint(jwk)
        return cls(
            algorithm=algorithm,
            private_key=private_key,
            public_key=public_key,
            public_pem=public_pem.decode("ascii"),
            kid=kid,
            jwk={**jwk, "kid": kid, "use": "sig", "alg": algorithm},
        )

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def issue(
        self, subject: str, claims: dict[str, Any], ttl: int
    ) -> tuple[str, datetime]:
        """A signed auth token carrying `claims`, and when it expires."""
        issued = int(time.time())
        payload = {**claims, "sub": subject, "iat": issued, "exp": issued + ttl}
        token = jwt.encode(
            payload,
            self.private_key,
            algorithm=self.algorithm,
            headers={"kid": self.kid},
        )
        return token, datetime.fromtimestamp(issued + ttl, UTC)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this service signed; UnauthorizedError otherwise.

        A client sends the same token with every request until it expires, so
        the claims of the last VERIFIED_TOKENS tokens are kept until their
        `exp`: a token that verified once verifies the same way until then
        (the key is fixed for the process's life), and a kept one skips
        PyJWT's parsing and the signature check (a fifth of a `me`).
        """
        # Taken out and put back last, so the least recently used go first;
        # an expired one stays out.
        claims = self._verified.pop(token, None)
        if claims is None or time.time() >= claims["exp"]:
            claims = self._decode(token)  # UnauthorizedError once it has expired
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the least recently used
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self.public_key,
                algorithms=[self.algorithm],
                options={"require": ["sub", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("The auth token has expired; refresh it.") from None
        except jwt.InvalidTokenError:
            raise UnauthorizedError() from None


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK: a stable key id."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode(
        "utf-8"
    )
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical).digest())
        .rstrip(b"=")
        .decode("ascii")
    )
