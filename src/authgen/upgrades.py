"""What each authgen version changes in a service it regenerates.

`authgen generate` prints the notes of every version between the one that
generated a service (recorded in .authgen/manifest.json) and itself. A new
version adds its entry here when it bumps `authgen.__version__`; the notes
name what the user may need to do, and every hook added to the blueprint's
hooks.py (which is created once, so an existing service's copy lacks it).
"""

from __future__ import annotations

NOTES: dict[str, list[str]] = {
    "0.2.0": [
        "new hooks: none; a hook your hooks.py lacks is skipped, as if it were empty,"
        " so hooks.py from any version keeps working",
        "validation: field rules live in rules.py; strings without max_length take"
        " at most 1000 characters and lists at most max_items (100); patterns match"
        " the whole value; control characters and blank passwords are refused;"
        " emails are normalised (NFKC, lower-case) and checked by email-validator;"
        " new spec option max_items, new setting AUTH_MAX_FILTER_CONDITIONS",
        "transport: transport.py holds the refresh cookie, the Origin check, CORS and"
        " security headers; POST takes application/json only, GET runs queries only,"
        " a request with the cookie from a foreign Origin is refused; cookies are"
        " host-only unless the new AUTH_COOKIE_DOMAIN is set; AUTH_CORS_ORIGINS=* and"
        " AUTH_COOKIE_SAMESITE=none over http now stop serve; login throttling keys"
        " on the client address read from the right of X-Forwarded-For, behind"
        " the new AUTH_TRUSTED_PROXIES; new setting AUTH_INTROSPECTION",
        "links and sessions: a change of email or password revokes outstanding links"
        " and other sessions and notifies the old address (new templates"
        " password_changed_email, email_changed_email); new settings"
        " AUTH_REFRESH_REUSE_INTERVAL and AUTH_EMAIL_CHANGE_NEEDS_PASSWORD",
        "docs/security.md maps OWASP ASVS level 2 to the service and its tests",
        "regeneration: the merge base is one archive, .authgen/base.zip (the"
        " .authgen/base/ folder is migrated and removed); files with unresolved"
        " conflict markers fail generate, --check and serve until resolved; the"
        " spec's exclude: list opts files out of generation",
        "sessions and audit: new queries mySessions and myAuditEvents, new mutations"
        " endSession, endOtherSessions, logoutEverywhere; refresh_tokens gain"
        " created_at, last_used_at, address, user_agent (added empty at the next start:"
        " a session started before the upgrade lists no start time, and its last use"
        " and client from its next refresh on)"
        " and a new audit_events table/collection records security events; new settings"
        " AUTH_AUDIT_RETENTION (90 days), AUTH_WEBHOOK_URLS, AUTH_WEBHOOK_SECRET,"
        " AUTH_WEBHOOK_TIMEOUT; webhooks are sent through the mail outbox (template"
        " 'webhook'); new runtime dependency httpx",
    ],
}


def notes_between(old: str, new: str) -> list[tuple[str, str]]:
    """(version, note) for every version after `old` up to and including `new`."""

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    return [
        (version, note)
        for version in sorted(NOTES, key=key)
        if key(old) < key(version) <= key(new)
        for note in NOTES[version]
    ]
