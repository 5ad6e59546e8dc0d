"""Mail: the outbox records that travel with the changes that cause them.

(The delivery worker, SMTP and templates are built on these records.)
"""

from datetime import UTC, datetime
from typing import Any

from .store import new_id


def outbox_record(recipient: str, template: str, context: dict[str, Any]) -> dict[str, Any]:
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
