"""Fill a generated service's SQLite database with N users, fast.

Run with the service's `src` on PYTHONPATH: the rows go through the service's
own table definition (same columns and indexes), in one transaction, with one
argon2id hash shared by all (hashing 100,000 passwords would take hours and
measures nothing the login benchmark does not).

    PYTHONPATH=acme-auth/src python bench/seed_users.py sqlite:////abs/db.sqlite 100000
"""

from __future__ import annotations

import datetime as dt
import random
import sys

from argon2 import PasswordHasher
from sqlalchemy import create_engine, insert


def rows(count: int, password_hash: str) -> list[dict]:
    rng = random.Random(7)
    now = dt.datetime(2025, 1, 1)
    return [
        {
            "_id": f"{index:024x}",
            "email": f"seed{index}@example.com",
            "email_verified": index % 2 == 0,
            "password_hash": password_hash,
            "created_at": now,
            "username": f"user{index}",
            "gender": rng.choice(["M", "Mrs", "Other"]),
            "age": rng.randint(13, 90),
            "height": round(rng.uniform(1.4, 2.1), 2),
            "birthday": dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 20000)),
            "lastSeen": now - dt.timedelta(minutes=index),
            "website": f"https://example.com/{index}",
            "backupEmail": None,
            "nickname": "newcomer",
            "tags": ["seed"],
            "receiveNewsletter": False,
        }
        for index in range(count)
    ]


def main(url: str, count: int) -> None:
    from importlib import import_module

    package = sys.argv[3] if len(sys.argv) > 3 else "acme_auth"
    sql = import_module(f"{package}.store.sql")
    engine = create_engine(url)
    sql.metadata.create_all(engine)
    password_hash = PasswordHasher().hash("seeded-password")
    with engine.begin() as connection:
        connection.execute(insert(sql.users), rows(count, password_hash))
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
