"""Load users into the embedded SQLite store of a generated service, fast.

    python bench/seed.py SERVICE_DIR [--users 100000] [--database PATH]

The users are the service's own test samples (tests/sample.py: valid values
for any spec, distinct values of unique fields) with a fake argon2 hash,
written in batches of 5,000 through SQLAlchemy core, after the store has
created its schema and indexes as the service does at start.
"""

import argparse
import asyncio
import importlib
import sys
import time
from pathlib import Path

from sqlalchemy import insert

BATCH = 5000


def package_of(service: Path) -> str:
    """The Python package of a generated service (its only package under src/)."""
    return next(
        path.name
        for path in sorted((service / "src").iterdir())
        if (path / "__init__.py").exists()
    )


async def seed(package: str, url: str, count: int) -> None:
    sql = importlib.import_module(f"{package}.store.sql")
    sample_user = importlib.import_module("sample").sample_user
    store = sql.SqlStore(url)
    await store.open()
    try:
        async with store.engine.begin() as connection:
            first = (
                await connection.exec_driver_sql("SELECT count(*) FROM users")
            ).scalar_one()
            for start in range(first, first + count, BATCH):
                end = min(start + BATCH, first + count)
                await connection.execute(
                    insert(sql.users),
                    [sql._values(sample_user(i)) for i in range(start, end)],
                )
            await connection.exec_driver_sql("ANALYZE")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Load users into a generated service's SQLite store."
    )
    parser.add_argument(
        "service", type=Path, help="a folder made by `authgen generate`"
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database", type=Path, help="default: SERVICE/bench.db")
    args = parser.parse_args()
    service = args.service.resolve()
    database = (args.database or service / "bench.db").resolve()
    sys.path[:0] = [str(service / "src"), str(service / "tests")]
    started = time.perf_counter()
    asyncio.run(seed(package_of(service), f"sqlite:///{database}", args.users))
    print(
        f"seeded {args.users} users into {database} in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
