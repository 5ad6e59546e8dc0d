"""Work of the service that no request waits for: the periodic purge, and
work moved behind a response so its duration tells the client nothing."""

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from .limits import longest_window
from .settings import Settings
from .store import Store

log = logging.getLogger(__name__)


class Background:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._purger: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._purger = asyncio.create_task(self._purge_periodically(), name="purge")

    async def stop(self) -> None:
        """Finish the work already promised to clients, then stop purging."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self._purger is not None:
            self._purger.cancel()
            try:
                await self._purger
            except asyncio.CancelledError:
                pass
            self._purger = None

    def run(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` after the current request answers; its errors are logged."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def purge(self) -> None:
        """Forget expired sessions and links, attempts older than every limit's
        window, mails sent or given up longer ago than AUTH_MAIL_RETENTION, and
        audit events older than AUTH_AUDIT_RETENTION."""
        now = datetime.now(UTC)
        await self.store.purge_expired(
            now,
            attempts_before=now - timedelta(seconds=longest_window(self.settings)),
            mails_before=now - timedelta(seconds=self.settings.mail_retention),
            audit_before=now - timedelta(seconds=self.settings.audit_retention),
        )

    async def _purge_periodically(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:
                log.exception("purge failed; retrying at the next interval")
            await asyncio.sleep(self.settings.purge_interval)
