"""Secrets handed to users: one-time tokens (and, below, the JWT auth tokens)."""

import hashlib
import hmac
import secrets


def new_secret() -> tuple[str, str]:
    """A fresh random token for a link or cookie, and the hash that is stored."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_secret(raw)


def hash_secret(raw: str) -> str:
    """SHA-256 is enough: the token has 256 bits of entropy, nothing to brute-force."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def same_secret(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(raw), stored_hash)
