"""The least a `me` endpoint can do: the yardstick for the GraphQL layer.

A bare Starlette route that does only the work of the emitted service's `me`:
verify the Bearer JWT with the same public key and algorithm, read the user
by id from the same database through SQLAlchemy async (the same driver: on
SQLite the same pragmas, on PostgreSQL the same pool size), answer the same
fields as JSON. Started with uvicorn exactly as the service is:

    BENCH_DATABASE_URL=sqlite:///... BENCH_PUBLIC_KEY=... BENCH_ALGORITHM=RS256 \\
        python -m uvicorn baseline_app:create_app --factory --app-dir bench
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import jwt
from sqlalchemy import MetaData, Table, event, select
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FIELDS = ("_id", "email", "email_verified", "username", "gender", "age")


def _pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=10000",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_app() -> Starlette:
    url = os.environ["BENCH_DATABASE_URL"]
    engine = create_async_engine(
        url.replace("sqlite:", "sqlite+aiosqlite:", 1).replace(
            "postgresql:", "postgresql+asyncpg:", 1
        ),
        pool_size=10,
        max_overflow=0,
    )
    if url.startswith("sqlite:"):
        event.listen(engine.sync_engine, "connect", _pragmas)
    with open(os.environ["BENCH_PUBLIC_KEY"], "rb") as handle:
        public_key = handle.read()
    algorithm = os.environ.get("BENCH_ALGORITHM", "RS256")
    users: Table | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal users
        metadata = MetaData()
        async with engine.connect() as connection:
            await connection.run_sync(metadata.reflect, only=["users"])
        users = metadata.tables["users"]
        yield
        await engine.dispose()

    async def me(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[algorithm],
                options={"require": ["sub", "iat", "exp"]},
            )
        except jwt.InvalidTokenError:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        assert users is not None
        async with engine.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(users).where(users.c._id == claims["sub"])
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"data": {"me": {name: row[name] for name in FIELDS}}})

    return Starlette(
        routes=[Route("/me", me, methods=["GET", "POST"])], lifespan=lifespan
    )
