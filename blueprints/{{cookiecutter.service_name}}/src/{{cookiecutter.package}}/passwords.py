"""Passwords: argon2id hashing, run off the event loop, and the password policy."""

import asyncio
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import UserValidationError
from .rules import password_problem
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
        # number at a time keeps a burst of logins from exhausting memory.
        self.executor = ThreadPoolExecutor(
            max_workers=settings.hash_concurrency,
            thread_name_prefix="argon2",
            initializer=_yield_to_event_loops,
        )
        # Unknown emails are checked against this, so they take as long as a
        # wrong password and do not reveal which accounts exist.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def check_policy(self, password: str) -> None:
        if len(password) < self.min_length:
            raise UserValidationError(
                f"password: must be at least {self.min_length} characters long."
            )
        if len(password) > self.max_length:
            raise UserValidationError(
                f"password: must be at most {self.max_length} characters long."
            )
        problem = password_problem(password)
        if problem:
            raise UserValidationError(f"password: {problem}")

    async def hash(self, password: str) -> str:
        return await self._off_the_loop(self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether the password matches; with no stored hash, False after the same work."""
        matches = await self._off_the_loop(
            self._verify, stored_hash or self.dummy_hash, password
        )
        return matches and stored_hash is not None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _off_the_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, function, *args
        )

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        return self.hasher.check_needs_rehash(stored_hash)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _yield_to_event_loops() -> None:
    """Hashing threads run at a lower priority: under load a login may wait a
    little longer, but requests that hash nothing keep their latency."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not on Linux, or not allowed: run as is
        pass
