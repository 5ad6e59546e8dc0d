"""Configuration from the environment (prefix AUTH_) or a `.env` file."""

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICE_NAME = "{{ cookiecutter.service_name }}"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Storage: empty means the embedded SQLite database ./<service>.db.
    database_url: str = ""
    # Connections each process keeps to PostgreSQL or MongoDB (not SQLite);
    # the server must allow instances x workers x this many.
    database_pool_size: int = Field(default=10, ge=1)

    # Where users reach the service; used for links in mails and cookie scope.
    # Unset, `serve` sets it to the address it listens on.
    public_url: str = "http://127.0.0.1:5000"
    graphiql: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # __schema/__type queries (and GraphiQL, which needs them).
    introspection: bool = True

    # Tokens and keys.
    auth_token_ttl: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl: int = Field(default=7 * 24 * 3600, gt=0)
    jwt_algorithm: Literal["RS256", "ES256", "EdDSA"] = "RS256"
    private_key_file: Path = Path("keys/private.pem")
    public_key_file: Path = Path("keys/public.pem")
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    # Unset: a host-only cookie. A domain also sends it to every subdomain.
    cookie_domain: str | None = None
    # Seconds an already-rotated refresh token still continues its session
    # (concurrent refreshes, a login during a refresh); later, reuse revokes it.
    refresh_reuse_interval: float = Field(default=10.0, ge=0)

    # Passwords and logins.
    password_min_length: int = Field(default=8, ge=8)
    password_max_length: int = Field(default=256, le=4096)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8192)
    # One lane per hash: a hash keeps to one core, so `hash_concurrency` hashes
    # use that many cores and no more (the cost to an attacker is memory x time).
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes one process runs at once; `serve --workers N` sets cores / N.
    hash_concurrency: int = Field(default_factory=lambda: available_cores(), ge=1)
    # Failed password checks per window: account-wide (from any address), per
    # client address, and per (account, address) pair.
    login_max_failures_per_account: int = Field(default=100, ge=1)
    login_max_failures_per_address: int = Field(default=100, ge=1)
    login_failure_window: int = Field(default=15 * 60, gt=0)
    # Only behind a reverse proxy that sets it: the client address for throttling.
    trust_forwarded_for: bool = False
    # Reverse proxies in front of the service, each appending to X-Forwarded-For;
    # 0 ignores the header (AUTH_TRUST_FORWARDED_FOR=true counts as 1).
    trusted_proxies: int = Field(default=0, ge=0)
    # Whether updateMe needs previousPassword to change the email too (Krypton's
    # own client sends none; the old address gets a notice either way).
    email_change_needs_password: bool = False
    login_max_failures_per_account_address: int = Field(default=10, ge=1)
    # Registrations per client address per window; 0 means no limit.
    register_max_per_address: int = Field(default=0, ge=0)
    register_window: int = Field(default=3600, gt=0)
    email_available_max_per_address: int = Field(default=30, ge=1)
    email_available_window: int = Field(default=60, gt=0)

    # Mail.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: Literal["none", "starttls", "tls"] | None = None
    smtp_timeout: float = Field(default=10.0, gt=0)
    mail_from: str = "no-reply@localhost"
    outbox_dir: Path = Path("outbox")
    mail_max_attempts: int = Field(default=8, ge=1)
    # Retries wait mail_retry_delay seconds, doubled after each failure up to the max.
    mail_retry_delay: float = Field(default=30.0, gt=0)
    mail_retry_max_delay: float = Field(default=3600.0, gt=0)
    # How often the worker looks for mails enqueued by other processes.
    mail_poll_interval: float = Field(default=5.0, gt=0)
    # How long sendVerificationEmail waits for the first delivery attempt.
    mail_send_wait: float = Field(default=5.0, ge=0)
    verification_token_ttl: int = Field(default=48 * 3600, gt=0)
    recovery_token_ttl: int = Field(default=60 * 60, gt=0)
    templates_dir: Path | None = None
    # Mails of one kind (verification, recovery) to one recipient per window.
    mail_max_per_recipient: int = Field(default=3, ge=1)
    mail_limit_window: int = Field(default=15 * 60, gt=0)
    # Sent and given-up mails are deleted this long after they were queued.
    mail_retention: int = Field(default=7 * 24 * 3600, gt=0)
    # How often expired sessions, links, attempts and old mails are deleted.
    purge_interval: float = Field(default=60.0, gt=0)

    # Request limits of the GraphQL endpoint.
    max_body_bytes: int = Field(default=100_000, gt=0)
    max_query_depth: int = Field(default=10, gt=0)
    max_query_aliases: int = Field(default=30, ge=0)
    max_query_fields: int = Field(default=300, gt=0)
    max_page_size: int = Field(default=100, gt=0)
    # Conditions of one public filter: comparisons, AND/OR groups, `in`/`nin` items.
    max_filter_conditions: int = Field(default=100, gt=0)
    # Public queries reach the first N matching users: their counts stop at N,
    # skip + limit (page × perPage) past N is refused (admin queries: no limit).
    public_result_window: int = Field(default=10_000, gt=0)

    # Observability.
    # GET /metrics in Prometheus' format; off by default (see the README).
    metrics: bool = False
    # Log lines as text, or as JSON objects (one a line) with the request id.
    log_format: Literal["text", "json"] = "text"

    # Second factors (mfa.py, passkeys.py): off; optional (users may add TOTP
    # or passkeys); required (a user without one enrols at their next login).
    mfa: Literal["off", "optional", "required"] = "{{ cookiecutter.mfa }}"
    # The key that encrypts TOTP secrets and keys recovery code hashes; created at first start.
    mfa_key_file: Path = Path("keys/mfa.key")
    # Seconds a login challenge lives, and the wrong codes that end it sooner.
    mfa_challenge_ttl: int = Field(default=300, gt=0)
    mfa_challenge_max_failures: int = Field(default=5, ge=1)
    # Seconds an enrolment challenge (mfa=required) lives: time to set up an app.
    mfa_enrolment_ttl: int = Field(default=900, gt=0)
    # Passkeys (passkeys.py) are second factors wherever mfa is not off; with
    # passwordless=passkeys a passkey alone (user-verified) also logs in.
    passwordless: Literal["off", "passkeys"] = "{{ cookiecutter.passwordless }}"
    # Seconds the options of a passkey registration or login stay usable.
    passkey_challenge_ttl: int = Field(default=300, gt=0)
    # passkeyLoginOptions per client address per window: each call keeps a challenge.
    passkey_options_max_per_address: int = Field(default=60, ge=1)
    passkey_options_window: int = Field(default=60, gt=0)
    # Audit trail and webhooks.
    # Audit events are deleted this long after they happened (default 90 days).
    audit_retention: int = Field(default=90 * 24 * 3600, gt=0)
    # Each audit event is POSTed to every URL, signed with the secret (webhooks.py);
    # failed deliveries are retried as mails are (AUTH_MAIL_MAX_ATTEMPTS, ...).
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_secret: str = ""
    webhook_timeout: float = Field(default=10.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        if isinstance(value, list) and "*" in value:
            raise ValueError(
                "AUTH_CORS_ORIGINS=* would let every website call with the user's cookie; list the origins"
            )
        return value

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_webhook_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [url.strip() for url in value.split(",") if url.strip()]
        for url in value if isinstance(value, list) else ():
            if urlsplit(url).scheme not in ("http", "https") or len(url) > 320:
                raise ValueError(
                    f"AUTH_WEBHOOK_URLS: {url[:100]!r} is not an http(s) URL of at most 320 characters"
                )
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> "Settings":
        if self.webhook_urls and len(self.webhook_secret) < 16:
            raise ValueError(
                "AUTH_WEBHOOK_URLS needs AUTH_WEBHOOK_SECRET (16 characters or more) to sign the deliveries"
            )
        return self

    @model_validator(mode="after")
    def _passkeys_need_factors(self) -> "Settings":
        if self.passwordless == "passkeys" and self.mfa == "off":
            raise ValueError(
                "AUTH_PASSWORDLESS=passkeys needs AUTH_MFA optional: passkeys are second factors"
            )
        return self

    @model_validator(mode="after")
    def _cookies_reach_browsers(self) -> "Settings":
        if self.cookie_samesite == "none" and not self.secure_cookies:
            raise ValueError(
                "AUTH_COOKIE_SAMESITE=none needs an https AUTH_PUBLIC_URL: browsers drop such cookies over http"
            )
        return self

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///./{SERVICE_NAME}.db"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_url).scheme == "https"

    @property
    def cookie_path(self) -> str:
        return urlsplit(self.public_url).path.rstrip("/") or "/"

    @property
    def public_origin(self) -> str:
        """scheme://host[:port] of AUTH_PUBLIC_URL: the origin passkeys are verified against."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def passkey_rp_id(self) -> str:
        """The WebAuthn relying party id: AUTH_PUBLIC_URL's host."""
        return urlsplit(self.public_url).hostname or ""

    @property
    def proxy_hops(self) -> int:
        return self.trusted_proxies or int(self.trust_forwarded_for)
