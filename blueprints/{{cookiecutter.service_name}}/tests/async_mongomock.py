"""A thin async facade over mongomock, for testing the MongoDB adapter without a server.

It exposes the few awaitable methods the adapter uses, and gives duplicate
key errors the `keyPattern` detail a real server sends.
"""

from typing import Any

import mongomock
from pymongo.errors import DuplicateKeyError


class AsyncMongomockClient:
    def __init__(self) -> None:
        self.sync = mongomock.MongoClient(tz_aware=True)

    def __getitem__(self, name: str) -> "AsyncDatabase":
        return AsyncDatabase(self.sync[name])

    @property
    def admin(self) -> "AsyncDatabase":
        return AsyncDatabase(self.sync.admin)

    async def close(self) -> None:
        """The data stays, so a second store can be opened on it."""


class AsyncDatabase:
    def __init__(self, database: Any) -> None:
        self.sync = database

    def __getitem__(self, name: str) -> "AsyncCollection":
        return AsyncCollection(self.sync[name])

    async def command(self, name: str) -> dict[str, Any]:
        return self.sync.command(name)


class AsyncCollection:
    def __init__(self, collection: Any) -> None:
        self.sync = collection

    def find(self, *args: Any, **kwargs: Any) -> "AsyncCursor":
        return AsyncCursor(self.sync.find(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except DuplicateKeyError as error:
                raise self._described(error, name, args) from None

        return call

    def _described(
        self, error: DuplicateKeyError, method: str, args: tuple
    ) -> DuplicateKeyError:
        """The error with the index's key pattern, found by looking for the colliding document."""
        if method == "insert_one":
            values, own_id = args[0], args[0].get("_id")
        elif method in ("update_one", "find_one_and_update"):
            values, own_id = args[1].get("$set", {}), args[0].get("_id")
        else:
            return error
        for index in self.sync.index_information().values():
            field = index["key"][0][0]
            if index.get("unique") and field in values:
                other = self.sync.find_one(
                    {field: values[field], "_id": {"$ne": own_id}}
                )
                if other is not None:
                    details = {
                        "keyPattern": {field: 1},
                        "keyValue": {field: values[field]},
                    }
                    return DuplicateKeyError(str(error), 11000, details)
        return error


class AsyncCursor:
    def __init__(self, cursor: Any) -> None:
        self.sync = cursor

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        return list(self.sync)
