"""Load users into the store of a generated service, fast: SQLite or PostgreSQL.

    python bench/seed.py SERVICE_DIR [--users 100000] [--url DATABASE_URL]

The users are the service's own test samples (tests/sample.py: valid values
for any spec, distinct values of unique fields) with a fake argon2 hash: the
first BLOCK are made in Python, the rest are copies of them made by the
database (INSERT ... SELECT), each copy with new ids and its unique string
values prefixed, so a million users take seconds, not minutes. The store
creates its schema as the service does at start; the users' indexes are
dropped while loading (one sorted build is much faster than a million
inserts into a dozen B-trees) and the store's next start creates them again.
Python's block goes in through SQLAlchemy core on SQLite, with COPY
(asyncpg's copy_records_to_table) on PostgreSQL; then ANALYZE (PostgreSQL:
VACUUM ANALYZE, so index-only scans have a visibility map).
"""

import argparse
import asyncio
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, literal, select

BATCH = 20_000
#: Users made in Python; the rest are copies of these.
BLOCK = 20_000


def package_of(service: Path) -> str:
    """The Python package of a generated service (its only package under src/)."""
    return next(
        path.name
        for path in sorted((service / "src").iterdir())
        if (path / "__init__.py").exists()
    )


async def seed(package: str, url: str, count: int) -> None:
    sql = importlib.import_module(f"{package}.store.sql")
    schema = importlib.import_module(f"{package}.store.schema")
    sample_user = importlib.import_module("sample").sample_user
    store = sql.SqlStore(url)
    await store.open()
    try:
        async with store.engine.begin() as connection:
            for name in schema.user_indexes():
                await connection.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')
            first = (
                await connection.exec_driver_sql("SELECT count(*) FROM users")
            ).scalar_one()
            made = min(count, BLOCK) if _copyable(sql) else count
            batches = range(first, first + made, BATCH)
            if connection.dialect.name == "postgresql":
                raw = (await connection.get_raw_connection()).driver_connection
                columns = [column.name for column in sql.users.columns]
                for start in batches:
                    end = min(start + BATCH, first + made)
                    await raw.copy_records_to_table(
                        "users",
                        columns=columns,
                        records=[
                            _record(sql, columns, sample_user(i))
                            for i in range(start, end)
                        ],
                    )
            else:
                for start in batches:
                    end = min(start + BATCH, first + made)
                    await connection.execute(
                        insert(sql.users),
                        [sql._values(sample_user(i)) for i in range(start, end)],
                    )
            await _copies(connection, sql, made, count)
    finally:
        await store.close()
    store = sql.SqlStore(url)
    await store.open()  # the indexes, built once over the loaded users
    try:
        async with store.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.exec_driver_sql("VACUUM ANALYZE users")
            else:
                await connection.exec_driver_sql("ANALYZE")
                await connection.commit()
    finally:
        await store.close()


def _unique(sql: Any) -> set[str]:
    return {"email", *(name for name, field in sql.FIELDS.items() if field.unique)}


def _copyable(sql: Any) -> bool:
    """Copies can be told apart when every unique field is a string (prefixed)."""
    return all(isinstance(sql.users.c[name].type, sql.String) for name in _unique(sql))


async def _copies(connection: Any, sql: Any, made: int, count: int) -> None:
    """Users `made` to `count` of this run: copies of the block just made.

    Copy k replaces the ids' 8 timestamp digits with k (ids stay 24 hex
    digits and distinct) and prefixes the unique values with `c<k>.`.
    """
    users = sql.users
    # Copies' ids sort before every real one: the block is the `made` largest ids.
    lowest = (
        await connection.execute(
            select(users.c._id).order_by(users.c._id.desc()).offset(made - 1).limit(1)
        )
    ).scalar_one()
    ids = select(users.c._id).where(users.c._id >= lowest).order_by(users.c._id)
    unique = _unique(sql)
    done, copy = made, 0
    while done < count:
        copy += 1
        size = min(made, count - done)
        columns = [
            (
                literal(f"{copy:08x}").concat(sql.func.substr(column, 9))
                if column.name == "_id"
                else (
                    literal(f"c{copy}.").concat(column)
                    if column.name in unique
                    else column
                )
            )
            for column in users.columns
        ]
        await connection.execute(
            insert(users).from_select(
                [column.name for column in users.columns],
                select(*columns).where(
                    users.c._id.in_(ids.limit(size).scalar_subquery())
                ),
            )
        )
        done += size


def _record(sql: Any, columns: list[str], user: dict[str, Any]) -> tuple:
    """A user as COPY takes it: naive UTC datetimes, JSON columns as text."""
    values = sql._values(user)
    return tuple(
        (
            json.dumps(values.get(name), default=str)
            if isinstance(sql.users.c[name].type, sql.JSON)
            else values.get(name)
        )
        for name in columns
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Load users into a generated service's SQL store."
    )
    parser.add_argument(
        "service", type=Path, help="a folder made by `authgen generate`"
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--url", help="the database URL (default: sqlite:///SERVICE/bench.db)"
    )
    args = parser.parse_args()
    service = args.service.resolve()
    url = args.url or f"sqlite:///{service / 'bench.db'}"
    sys.path[:0] = [str(service / "src"), str(service / "tests")]
    started = time.perf_counter()
    asyncio.run(seed(package_of(service), url, args.users))
    print(
        f"seeded {args.users} users into {url} in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
