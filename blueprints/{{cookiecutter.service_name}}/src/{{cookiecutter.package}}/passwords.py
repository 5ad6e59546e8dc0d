"""Passwords: argon2id hashing, run off the event loop, and the password policy."""

import secrets

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import UserValidationError
from .settings import Settings


class Passwords:
    """Hashes and checks passwords with the argon2id parameters of the settings."""

    def __init__(self, settings: Settings) -> None:
        self.min_length = settings.password_min_length
        self.max_length = settings.password_max_length
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Each hash holds a core and memory_cost KiB while it runs: a bounded
        # number at a time keeps a burst of logins from starving the event
        # loops of every worker, or exhausting memory.
        self.limiter = anyio.CapacityLimiter(settings.hash_concurrency)
        # Unknown emails are checked against this, so they take as long as a
        # wrong password and do not reveal which accounts exist.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def check_policy(self, password: str) -> None:
        if len(password) < self.min_length:
            raise UserValidationError(f"password: must be at least {self.min_length} characters long.")
        if len(password) > self.max_length:
            raise UserValidationError(f"password: must be at most {self.max_length} characters long.")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hasher.hash, password, limiter=self.limiter)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether the password matches; with no stored hash, False after the same work."""
        matches = await anyio.to_thread.run_sync(
            self._verify, stored_hash or self.dummy_hash, password, limiter=self.limiter
        )
        return matches and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        return self.hasher.check_needs_rehash(stored_hash)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
