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
        "abuse limits: password checks (login, updateMe with previousPassword,"
        " deleteMe) are throttled per (account, address), address and account in a"
        " new attempts table (AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT now means the"
        " account-wide limit, default 100; new AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS);"
        " mails per recipient and kind, emailAvailable and (opt-in) registrations are"
        " limited; one password hash per request (TooManyPasswordChecksError); public"
        " fields get equality indexes; files are created owner-only; a periodic purge"
        " (AUTH_PURGE_INTERVAL, AUTH_MAIL_RETENTION)",
        "stores: PostgreSQL (postgresql:// or postgres://, asyncpg is a dependency);"
        " the stores share one schema layer (store/schema.py) and sql.py builds its"
        " table from the model at run time; an unreachable database or a bad"
        " AUTH_DATABASE_URL stops serve with one line; new AUTH_DATABASE_POOL_SIZE;"
        " docs/deployment.md",
        "tooling: GraphiQL is served from the service (no CDN) and the standard"
        " introspection query passes; serve's --host/--port set AUTH_PUBLIC_URL unless"
        " it is set; .env.example; GET /metrics with AUTH_METRICS; AUTH_LOG_FORMAT=json"
        " and X-Request-Id; mails carry Date and a stable Message-ID",
        "docs/security.md maps OWASP ASVS level 2 to the service and its tests",
        "second factors (mfa.py): users may add TOTP; login of a user with a factor"
        " answers MfaRequiredError with extensions.challenge, completed by the new"
        " loginWithSecondFactor; updateMe (email, password) and deleteMe take a"
        " code argument; new spec option service.mfa (off, optional), new settings"
        " AUTH_MFA, AUTH_MFA_KEY_FILE (created at first start: back it up),"
        " AUTH_MFA_CHALLENGE_TTL, AUTH_MFA_CHALLENGE_MAX_FAILURES; new templates"
        " mfa_added_email, mfa_removed_email; new dependencies pyotp and segno;"
        " the store gains a factors table (created at start)",
        "passkeys (passkeys.py, WebAuthn L2): new query myPasskeys, new mutations"
        " passkeyRegistrationOptions, registerPasskey, deletePasskey,"
        " passkeyLoginOptions, loginWithPasskey, passkeyReauthenticationOptions"
        " (updateMe and deleteMe take a passkey assertion as code, and a user with"
        " passkeys only needs one); MfaRequiredError gains extensions.factors; new"
        " spec options service.passwordless (off, passkeys) and service.mfa: required"
        " (login answers MfaEnrolmentRequiredError, the enrolment mutations take its"
        " challenge, new mutation completeMfaEnrolment); new settings"
        " AUTH_PASSWORDLESS, AUTH_PASSKEY_CHALLENGE_TTL, AUTH_MFA_ENROLMENT_TTL,"
        " AUTH_PASSKEY_OPTIONS_MAX_PER_ADDRESS and AUTH_PASSKEY_OPTIONS_WINDOW"
        " (passkeyLoginOptions is limited per client address); the templates"
        " mfa_added_email and mfa_removed_email get a `factor` variable (an"
        " overridden copy keeps working); new dependency webauthn; the store gains"
        " a passkeys table/collection (created at start)",
        "regeneration: the merge base is one archive, .authgen/base.zip (the"
        " .authgen/base/ folder is migrated and removed); files with unresolved"
        " conflict markers fail generate, --check and serve until resolved; the"
        " spec's exclude: list opts files out of generation",
        "model changes at start: new spec option renamed_from moves a field's values"
        " to its new name; a type change converts stored values or stops serve"
        " naming the values it cannot take; a removed field whose values remain,"
        " with a new field of the same kind, stops serve until you add"
        " renamed_from or delete the old values; defaults are filled only into new"
        " fields (a cleared value stays cleared); MongoDB gains a `schema`"
        " collection recording the stored fields (its first start fills missing"
        " defaults once more)",
        "sessions and audit: new queries mySessions and myAuditEvents, new mutations"
        " endSession, endOtherSessions, logoutEverywhere; refresh_tokens gain"
        " created_at, last_used_at, address, user_agent (added empty at the next start:"
        " a session started before the upgrade lists no start time, and its last use"
        " and client from its next refresh on)"
        " and a new audit_events table/collection records security events; new settings"
        " AUTH_AUDIT_RETENTION (90 days), AUTH_WEBHOOK_URLS, AUTH_WEBHOOK_SECRET,"
        " AUTH_WEBHOOK_TIMEOUT; webhooks are sent through the mail outbox (template"
        " 'webhook'); new runtime dependency httpx",
        "serve on Linux with glibc starts itself again with"
        " GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (argon2 hashes on huge pages, 20-30 %"
        " faster); set GLIBC_TUNABLES=glibc.malloc.hugetlb=0 to keep the old behaviour",
        "AUTH_DATABASE_POOL_SIZE bounds SQLite connections too (it used to take"
        " SQLAlchemy's 5 + 10 overflow there)",
        "the index of each indexed field gains the few-valued public fields"
        " (email_verified, public enums and booleans) after _id: the first start"
        " rebuilds those indexes (about 10 s each at 1,000,000 users on SQLite)",
        "each indexed field's (_id, field) index carries the same few-valued fields"
        " (pages in id order filtered by `gender = M or age < 10` read it alone):"
        " the first start rebuilds it; the request id is no longer a UUID but 32"
        " hex digits from random bits (the same shape)",
        "PostgreSQL: the users' string columns compare byte by byte (collation C),"
        " as SQLite and MongoDB compare: the first start alters them and rebuilds"
        " their indexes (about 17 s at 1,000,000 users); on a database of a"
        " language collation (en_US) sorts and ranges on strings change to byte"
        " order (capitals before lower case); ids are 24 lowercase hex digits, and"
        " one in capitals now names no user on any store",
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
