"""Storage: one interface, an embedded SQLite default and MongoDB."""

from .base import (
    NOTHING,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DuplicateValueError,
    Rotation,
    SchemaError,
    SideWrites,
    Store,
    UserQuery,
    is_valid_id,
    new_id,
)


def open_store(url: str) -> Store:
    """The adapter for a database URL (not yet connected)."""
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from .mongodb import MongoStore

        return MongoStore(url)
    from .sql import SqlStore

    return SqlStore(url)


__all__ = [
    "NOTHING",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "DuplicateValueError",
    "Rotation",
    "SchemaError",
    "SideWrites",
    "Store",
    "UserQuery",
    "is_valid_id",
    "new_id",
    "open_store",
]
