"""The peer: fastapi-users' documented SQLAlchemy example, in one file.

Set up as the fastapi-users docs show (SQLAlchemy + aiosqlite, Bearer
transport, JWT strategy), with two changes so the comparison is about the
code, not the settings: the password helper uses argon2id with the emitted
service's production parameters (pwdlib's Argon2Hasher), and the JWT is
RS256 with an RSA key, as the emitted service signs. Runs in its own venv
(fastapi-users-db-sqlalchemy pins SQLAlchemy < 2.1), started like the service:

    BENCH_DATABASE=... BENCH_PRIVATE_KEY=... BENCH_PUBLIC_KEY=... \\
        python -m uvicorn peer_fastapi_users:create_app --factory --app-dir bench
"""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import AsyncGenerator, AsyncIterator

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    JWTStrategy,
)
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


def create_app() -> FastAPI:
    engine = create_async_engine(f"sqlite+aiosqlite:///{os.environ['BENCH_DATABASE']}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    with open(os.environ["BENCH_PRIVATE_KEY"]) as handle:
        private_key = handle.read()
    with open(os.environ["BENCH_PUBLIC_KEY"]) as handle:
        public_key = handle.read()
    password_helper = PasswordHelper(
        PasswordHash(
            (
                Argon2Hasher(
                    time_cost=int(os.environ.get("BENCH_ARGON2_TIME_COST", 3)),
                    memory_cost=int(os.environ.get("BENCH_ARGON2_MEMORY_COST", 65536)),
                    parallelism=int(os.environ.get("BENCH_ARGON2_PARALLELISM", 1)),
                ),
            )
        )
    )

    class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
        reset_password_token_secret = "bench"
        verification_token_secret = "bench"

    async def get_session() -> AsyncGenerator[AsyncSession, None]:
        async with sessions() as session:
            yield session

    async def get_user_db(session: AsyncSession = Depends(get_session)):
        yield SQLAlchemyUserDatabase(session, User)

    async def get_user_manager(user_db=Depends(get_user_db)):
        yield UserManager(user_db, password_helper)

    def get_jwt_strategy() -> JWTStrategy:
        return JWTStrategy(
            secret=private_key,
            public_key=public_key,
            algorithm="RS256",
            lifetime_seconds=3600,
        )

    backend = AuthenticationBackend(
        name="jwt",
        transport=BearerTransport(tokenUrl="auth/jwt/login"),
        get_strategy=get_jwt_strategy,
    )
    users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(
        users.get_auth_router(backend), prefix="/auth/jwt", tags=["auth"]
    )
    app.include_router(
        users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"]
    )
    app.include_router(
        users.get_users_router(UserRead, schemas.BaseUserUpdate),
        prefix="/users",
        tags=["users"],
    )
    return app
