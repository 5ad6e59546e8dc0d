"""The composition root: the long-lived services, built once at start."""

from dataclasses import dataclass

from .accounts import Accounts
from .background import Background
from .mail import Mailer
from .mfa import Factors
from .passkeys import Passkeys
from .passwords import Passwords
from .settings import Settings
from .store import Store, open_store
from .tokens import KeyPair


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
    factors: Factors
    passkeys: Passkeys

    @classmethod
    async def start(cls, settings: Settings) -> "Services":
        keys = KeyPair.load_or_create(
            settings.private_key_file, settings.public_key_file, settings.jwt_algorithm
        )
        passwords = Passwords(settings)
        store = open_store(settings.database, settings.database_pool_size)
        await store.open()
        mailer = Mailer(settings, store)
        await mailer.start()
        accounts = Accounts(settings, store, passwords, keys, mailer)
        background = Background(settings, store)
        await background.start()
        factors = Factors.start(settings, store, accounts, mailer)
        return cls(
            settings=settings,
            store=store,
            keys=keys,
            passwords=passwords,
            accounts=accounts,
            mailer=mailer,
            background=background,
            factors=factors,
            passkeys=Passkeys(settings, store, accounts, factors),
        )

    async def stop(self) -> None:
        await self.background.stop()
        await self.mailer.stop()
        await self.store.close()
        self.passwords.close()
