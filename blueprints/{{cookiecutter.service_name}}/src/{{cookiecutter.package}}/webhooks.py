"""Webhooks: every audit event POSTed as JSON to each of AUTH_WEBHOOK_URLS.

A delivery is an outbox record (template "webhook", recipient the URL,
context the event) written with the event (audit.py), sent by the mail
worker with its leases and retries (mail.py): at least once, so a receiver
drops repeats by the `Idempotency-Key` header, the event's id.

Each attempt is signed: `X-Timestamp` is the attempt's Unix time in seconds
and `X-Signature` is `sha256=` and the hex HMAC-SHA256, keyed with
AUTH_WEBHOOK_SECRET, of the bytes `<X-Timestamp>.<raw body>`. A receiver
checks the signature over the body exactly as received, and refuses an old
timestamp (a replay).
"""

import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from .settings import SERVICE_NAME, Settings

TEMPLATE = "webhook"


class WebhookRefused(Exception):
    """The receiver did not answer 2xx: the delivery is retried."""


def shown(url: str) -> str:
    """The URL as logs show it: receivers often put a secret in the query or
    the user part, and logs travel further than the settings do."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def body(event: dict[str, Any]) -> bytes:
    """The event's JSON, the same bytes at every attempt."""
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, "sha256")
    return "sha256=" + mac.hexdigest()


async def post(settings: Settings, url: str, event: dict[str, Any]) -> None:
    """One delivery attempt; WebhookRefused (or httpx's error) when it failed."""
    raw = body(event)
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "user-agent": f"{SERVICE_NAME}-webhooks",
        "idempotency-key": event["id"],
        "x-event": event["event"],
        "x-timestamp": timestamp,
        "x-signature": signature(settings.webhook_secret, timestamp, raw),
    }
    async with httpx.AsyncClient(timeout=settings.webhook_timeout) as client:
        response = await client.post(url, content=raw, headers=headers)
    if not response.is_success:
        raise WebhookRefused(f"{shown(url)} answered HTTP {response.status_code}")
