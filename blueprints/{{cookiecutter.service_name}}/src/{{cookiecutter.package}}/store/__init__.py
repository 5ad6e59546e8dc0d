"""Storage: one interface (split by concern in base.py), SQL (SQLite, PostgreSQL) and MongoDB."""

from .base import (
    NOTHING,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DuplicateValueError,
    LastMatchError,
    Rotation,
    SchemaError,
    SideWrites,
    Store,
    UnreachableDatabase,
    UserQuery,
    is_valid_id,
    new_id,
    timed_id,
)

#: What AUTH_DATABASE_URL may start with.
SCHEMES = ("sqlite", "postgresql", "postgres", "mongodb", "mongodb+srv")


def open_store(url: str, pool_size: int = 10) -> Store:
    """The adapter for a database URL (not yet connected); raises
    UnreachableDatabase for a URL that names no database this service speaks."""
    scheme, separator, _ = url.partition("://")
    if not separator or scheme.split("+")[0] not in SCHEMES:
        raise UnreachableDatabase(
            f"{url.split('@')[-1]!r} is not a database URL; use sqlite:///path/to/file.db,"
            " postgresql://user:password@host:5432/database or mongodb://host:27017/database"
        )
    if scheme.startswith("mongodb"):
        from .mongodb import MongoStore

        return MongoStore(url, pool_size=pool_size)
    from .sql import SqlStore

    return SqlStore(url, pool_size=pool_size)


__all__ = [
    "NOTHING",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "DuplicateValueError",
    "LastMatchError",
    "Rotation",
    "SchemaError",
    "SideWrites",
    "Store",
    "UnreachableDatabase",
    "UserQuery",
    "is_valid_id",
    "new_id",
    "open_store",
    "timed_id",
]
