"""What a request handler can reach: the long-lived services and the request."""

from dataclasses import dataclass, field

from starlette.requests import Request

from .accounts import Accounts
from .background import Background
from .errors import RequestTooLargeError
from .mail import Mailer
from .passwords import Passwords
from .settings import Settings
from .store import Store, open_store
from .tokens import KeyPair

REFRESH_COOKIE = "refreshToken"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (RequestTooLargeError) as soon as it passes
    `limit` bytes, declared or not, so an oversized body is never held whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"The request body is larger than {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestTooLargeError(f"The request body is larger than {limit} bytes.")
    return bytes(body)


@dataclass
class Services:
    """Everything built once at start and shared by all requests."""

    settings: Settings
    store: Store
    keys: KeyPair
    passwords: Passwords
    accounts: Accounts
    mailer: Mailer
    background: Background

    @classmethod
    async def start(cls, settings: Settings) -> "Services":
        keys = KeyPair.load_or_create(settings.private_key_file, settings.public_key_file, settings.jwt_algorithm)
        passwords = Passwords(settings)
        store = open_store(settings.database)
        await store.open()
        mailer = Mailer(settings, store)
        await mailer.start()
        accounts = Accounts(settings, store, passwords, keys, mailer)
        background = Background(settings, store)
        await background.start()
        return cls(
            settings=settings,
            store=store,
            keys=keys,
            passwords=passwords,
            accounts=accounts,
            mailer=mailer,
            background=background,
        )

    async def stop(self) -> None:
        await self.background.stop()
        await self.mailer.stop()
        await self.store.close()
        self.passwords.close()


@dataclass
class RequestContext:
    """One GraphQL request: the resolvers' view of HTTP."""

    services: Services
    request: Request
    # Cookie changes the endpoint applies to the response: (name, value, max_age).
    cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def bearer_token(self) -> str | None:
        scheme, _, token = self.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    @property
    def refresh_cookie(self) -> str | None:
        return self.request.cookies.get(REFRESH_COOKIE) or None

    @property
    def client_address(self) -> str:
        if self.settings.trust_forwarded_for:
            forwarded = self.request.headers.get("x-forwarded-for", "")
            if forwarded:
                return forwarded.split(",")[0].strip()
        client = self.request.client
        return client.host if client else "unknown"

    def set_refresh_cookie(self, value: str) -> None:
        self._replace_cookie(REFRESH_COOKIE, value, self.settings.refresh_token_ttl)

    def clear_refresh_cookie(self) -> None:
        self._replace_cookie(REFRESH_COOKIE, "", 0)

    def _replace_cookie(self, name: str, value: str, max_age: int) -> None:
        """The last change of a cookie wins: the response sets each cookie once."""
        self.cookies = [cookie for cookie in self.cookies if cookie[0] != name]
        self.cookies.append((name, value, max_age))
