"""Mail: the outbox, its delivery worker, and the templates mails are made from.

A mail is written to the outbox in the same store write as the change that
causes it (SideWrites.mails), then sent by a background worker: with SMTP when
AUTH_SMTP_HOST is set, else as .eml files in the development outbox folder.
The worker leases mails before sending them, so several processes never send
the same one twice, and retries failures with exponential backoff until
AUTH_MAIL_MAX_ATTEMPTS; a mail still pending when the service stops is sent
at the next start. Webhook deliveries (webhooks.py) travel the same way.
"""

import asyncio
import html
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from . import metrics, webhooks
from .settings import SERVICE_NAME, Settings
from .store import Store, new_id

log = logging.getLogger(__name__)

BUILTIN_TEMPLATES = Path(__file__).with_name("templates")


def outbox_record(
    recipient: str, template: str, context: dict[str, Any]
) -> dict[str, Any]:
    """A pending mail for SideWrites.mails: `template` names a template pair
    (e.g. "verify_email"), `context` its JSON-serialisable variables."""
    now = datetime.now(UTC)
    return {
        "_id": new_id(),
        "recipient": recipient,
        "template": template,
        "context": context,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "created_at": now,
        "sent_at": None,
    }


class Templates:
    """The mail and page templates: AUTH_TEMPLATES_DIR first, then the built-in ones.

    Every template gets `service` ({name, url}); `.html` templates are
    autoescaped, `.txt` ones are not (they are plain text).
    """

    def __init__(self, settings: Settings) -> None:
        loaders = [FileSystemLoader(BUILTIN_TEMPLATES)]
        if settings.templates_dir is not None:
            loaders.insert(0, FileSystemLoader(settings.templates_dir))
        self.environment = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(["html"], default_for_string=False),
        )
        self.service = {"name": SERVICE_NAME, "url": settings.public_url.rstrip("/")}

    def page(self, name: str, **variables: Any) -> str:
        return self.environment.get_template(f"{name}.html").render(
            service=self.service, **variables
        )

    def mail(self, name: str, variables: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, plain text, HTML) of a mail; the subject is the HTML's `subject` block."""
        variables = {**variables, "service": self.service}
        page = self.environment.get_template(f"{name}.html")
        text = self.environment.get_template(f"{name}.txt").render(variables)
        if "subject" not in page.blocks:
            raise LookupError(f"template {name}.html has no subject block")
        subject_html = "".join(page.blocks["subject"](page.new_context(variables)))
        subject = " ".join(html.unescape(subject_html).split())
        return subject, text, page.render(variables)


class PermanentFailure(Exception):
    """A refusal that retrying cannot change (e.g. the recipient does not exist)."""


class Mailer:
    """Sends the outbox: a background task woken by new mails and by a poll timer."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.templates = Templates(settings)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Callers waiting for the first attempt of a mail: mail id -> its status.
        self._watchers: dict[str, asyncio.Future[str]] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mail worker")

    async def stop(self) -> None:
        """Finish the batch being sent, then stop: a send cut off in the middle
        would keep its lease, and the mail would wait for it to expire."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(
                    asyncio.shield(self._task), self.settings.smtp_timeout * 2
                )
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None

    def wake(self) -> None:
        """Send what was just enqueued now rather than at the next poll."""
        self._wake.set()

    async def first_attempt(self, mail_id: str, timeout: float) -> str:
        """The mail's status after its first delivery attempt, or "pending" after `timeout`."""
        watcher = self._watchers.setdefault(
            mail_id, asyncio.get_running_loop().create_future()
        )
        self.wake()
        try:
            return await asyncio.wait_for(asyncio.shield(watcher), timeout)
        except TimeoutError:
            return "pending"
        finally:
            self._watchers.pop(mail_id, None)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while not self._stopping and await self._send_due():
                    pass
            except Exception:
                log.exception("mail worker: cannot read the outbox; retrying")
            try:
                await asyncio.wait_for(
                    self._wake.wait(), self.settings.mail_poll_interval
                )
            except TimeoutError:
                pass

    async def _send_due(self) -> int:
        """Claim and send one batch of due mails; returns how many were claimed."""
        now = datetime.now(UTC)
        # Long enough for a slow SMTP exchange; a worker that dies loses its lease.
        lease = now + timedelta(seconds=self.settings.smtp_timeout * 4 + 30)
        mails = await self.store.claim_mails(now, lease, limit=20)
        await asyncio.gather(*(self._attempt(mail) for mail in mails))
        return len(mails)

    async def _attempt(self, mail: dict[str, Any]) -> None:
        attempts = mail["attempts"] + 1
        now = datetime.now(UTC)
        changes: dict[str, Any]
        try:
            await self._deliver(mail)
        except Exception as error:
            reason = _reason(error)
            if (
                isinstance(error, PermanentFailure)
                or attempts >= self.settings.mail_max_attempts
            ):
                status = "failed"
                log.error(
                    "mail %s (%s) to %s failed after %d attempt(s): %s",
                    mail["_id"],
                    mail["template"],
                    _recipient(mail),
                    attempts,
                    reason,
                )
                changes = {
                    "status": status,
                    "context": _without_secrets(mail["context"]),
                }
                metrics.MAILS.labels("failed").inc()
            else:
                status = "pending"
                delay = min(
                    self.settings.mail_retry_delay * 2 ** (attempts - 1),
                    self.settings.mail_retry_max_delay,
                )
                log.warning(
                    "mail %s (%s) to %s not sent (%s); retrying in %.1f s",
                    mail["_id"],
                    mail["template"],
                    _recipient(mail),
                    reason,
                    delay,
                )
                changes = {"next_attempt_at": now + timedelta(seconds=delay)}
                metrics.MAILS.labels("retrying").inc()
            changes.update(attempts=attempts, last_error=reason)
        else:
            status = "sent"
            log.info(
                "mail %s (%s) sent to %s",
                mail["_id"],
                mail["template"],
                _recipient(mail),
            )
            metrics.MAILS.labels("sent").inc()
            changes = {
                "status": status,
                "attempts": attempts,
                "sent_at": now,
                "last_error": None,
                "context": _without_secrets(mail["context"]),
            }
        await self.store.update_mail(mail["_id"], changes)
        watcher = self._watchers.get(mail["_id"])
        if watcher is not None and not watcher.done():
            watcher.set_result(status)

    async def _deliver(self, mail: dict[str, Any]) -> None:
        if mail["template"] == webhooks.TEMPLATE:
            await webhooks.post(self.settings, mail["recipient"], mail["context"])
            return
        subject, text, page = self.templates.mail(mail["template"], mail["context"])
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = mail["recipient"]
        message["Subject"] = subject
        # RFC 5322 requires it (spam filters penalise its absence): the time of this attempt.
        message["Date"] = format_datetime(datetime.now(UTC))
        # The outbox id (unique, as a MongoDB ObjectId) is the Message-ID, the
        # same at every retry, so a receiving server can drop a duplicate of a
        # mail it already has (make_msgid would draw a new one each time).
        domain = parseaddr(self.settings.mail_from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = f"<{mail['_id']}@{domain}>"
        message.set_content(text)
        message.add_alternative(page, subtype="html")
        if self.settings.smtp_host:
            await self._send_smtp(message)
        else:
            await asyncio.to_thread(self._write_eml, mail, message)

    async def _send_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        tls = settings.smtp_tls
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password or None,
                use_tls=tls == "tls",
                # None: STARTTLS when the server offers it.
                start_tls={"starttls": True, "none": False, "tls": False}.get(
                    tls or "", None
                ),
                timeout=settings.smtp_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(refused.code >= 500 for refused in error.recipients):
                raise PermanentFailure(_reason(error)) from error
            raise

    def _write_eml(self, mail: dict[str, Any], message: EmailMessage) -> None:
        """Development delivery (no AUTH_SMTP_HOST): a file per mail, readable
        by the owner only (it holds a one-time link), and its link in the log, so
        the flows work on a fresh machine. With SMTP, the log names the mail's
        kind and recipient only: the link is a secret."""
        folder = self.settings.outbox_dir
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{mail['created_at']:%Y%m%d-%H%M%S}-{mail['_id']}.eml"
        with open(
            os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb"
        ) as file:
            file.write(message.as_bytes())
        link = mail["context"].get("link")
        log.info(
            "mail %s (%s) to %s written to %s%s",
            mail["_id"],
            mail["template"],
            mail["recipient"],
            path,
            f"; link: {link}" if link else "",
        )


def _without_secrets(context: dict[str, Any]) -> dict[str, Any]:
    """The link carries a one-time token: once the mail is gone, it is not kept."""
    return {name: value for name, value in context.items() if name != "link"}


def _recipient(mail: dict[str, Any]) -> str:
    if mail["template"] == webhooks.TEMPLATE:
        return webhooks.shown(mail["recipient"])
    return mail["recipient"]


def _reason(error: Exception) -> str:
    if isinstance(error, PermanentFailure):
        return str(error)
    reason = re.sub(r"\s+", " ", str(error)).strip() or type(error).__name__
    return f"{type(error).__name__}: {reason}"[:500]
