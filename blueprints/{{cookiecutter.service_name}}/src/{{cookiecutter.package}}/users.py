"""The public user queries: GraphQL filters and sorts turned into store queries.

Only public fields reach this module: the schema has no others in
UserPublicInfo or in the filter and sort types, so GraphQL validation refuses
them before any resolver runs.
"""

import math
from typing import Any

from .errors import BadRequestError
from .models import FIELDS, PUBLIC_FIELDS, parse_value
from .store import (
    NOTHING,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Store,
    UserQuery,
    is_valid_id,
)

OPERATORS = ("gt", "gte", "lt", "lte", "ne", "in", "nin")


def public_view(user: dict[str, Any]) -> dict[str, Any]:
    return {name: user.get(name) for name in PUBLIC_FIELDS}


def to_condition(graphql_filter: dict[str, Any] | None) -> Condition | None:
    """A GraphQL filter input as a store condition (None: everything)."""
    if not graphql_filter:
        return None
    conditions: list[Condition] = []
    for name, value in graphql_filter.items():
        if name == "AND":
            conditions.append(AllOf(tuple(_nested(value))))
        elif name == "OR":
            conditions.append(AnyOf(tuple(_nested(value))))
        elif name == "_operators":
            for field, operators in (value or {}).items():
                for op, operand in (operators or {}).items():
                    conditions.append(_compare(field, op, operand))
        else:
            conditions.append(_compare(name, "eq", value))
    return AllOf(tuple(conditions))


def count_conditions(graphql_filter: dict[str, Any] | None, limit: int) -> int:
    """The filter's conditions: each comparison, `in`/`nin` item, AND/OR group
    and empty filter in a group (it still becomes a term of the SQL expression).

    Walked without recursion and given up past `limit`, since the input can be
    nested as deep as the body allows.
    """
    count, pending = 0, [graphql_filter or {}]
    while pending and count <= limit:
        for name, value in pending.pop().items():
            if name in ("AND", "OR"):
                count += 1
                for item in value or []:
                    if item:
                        pending.append(item)
                    else:
                        count += 1
            elif name == "_operators":
                for operators in (value or {}).values():
                    for operand in (operators or {}).values():
                        count += len(operand) if isinstance(operand, list) else 1
            else:
                count += 1
    return count


def _nested(filters: list[dict[str, Any]] | None) -> list[Condition]:
    return [to_condition(item) or AllOf(()) for item in filters or []]


def _compare(field: str, op: str, value: Any) -> Condition:
    """One comparison, with SQL's view of null: it equals only null, and orders with nothing.

    A null in an `in`/`nin` list is dropped (no value equals it), and a null
    operand of gt, gte, lt or lte matches no user.
    """
    if op in ("in", "nin"):
        items = [item for item in value or [] if item is not None]
        if field == "_id":
            return Compare("_id", op, [item for item in items if is_valid_id(item)])
        return Compare(field, op, [_parse(field, item) for item in items])
    if value is None:
        return NOTHING if op in ("gt", "gte", "lt", "lte") else Compare(field, op, None)
    if field == "_id" and not is_valid_id(value):
        # No user has an id that cannot exist.
        return Compare("_id", "ne", None) if op == "ne" else NOTHING
    return Compare(field, op, _parse(field, value))


def _parse(field: str, value: Any) -> Any:
    info = FIELDS.get(field)
    try:
        return parse_value(info, value) if info is not None else value
    except ValueError as error:  # a date out of range
        raise BadRequestError(f"{field}: {error}") from None


def to_sort(
    value: str | None, fields: tuple[str, ...] = PUBLIC_FIELDS
) -> tuple[tuple[str, int], ...]:
    """`AGE_DESC` -> (("age", -1), ("_id", -1)): ties broken by id, in the same
    direction, so that the (field, _id) index gives the order without a sort."""
    if not value:
        return (("_id", 1),)
    key, _, direction = value.rpartition("_")
    order = 1 if direction == "ASC" else -1
    if key == "_ID":
        return (("_id", order),)
    field = next(name for name in fields if name.upper() == key)
    return ((field, order), ("_id", order))


class PublicUsers:
    """userById, userByIds, userOne, userMany, userCount, userPagination."""

    #: What the queries show of a user, and the fields they sort on.
    view = staticmethod(public_view)
    sort_fields = PUBLIC_FIELDS

    def __init__(
        self,
        store: Store,
        max_page_size: int,
        max_filter_conditions: int,
        result_window: int | None = None,
    ) -> None:
        self.store = store
        self.max_page_size = max_page_size
        self.max_filter_conditions = max_filter_conditions
        #: Strangers reach the first this many matches: counts stop there and
        #: pages past it are refused, so no request reads more index entries.
        self.result_window = result_window

    def _where(self, graphql_filter: dict | None) -> Condition | None:
        """The filter as a store condition; too large a filter is refused before
        it reaches the database (SQLite's expression depth is 1000)."""
        if (
            count_conditions(graphql_filter, self.max_filter_conditions)
            > self.max_filter_conditions
        ):
            raise BadRequestError(
                f"A filter may have at most {self.max_filter_conditions} conditions."
            )
        return to_condition(graphql_filter)

    def _limit(self, name: str, value: int | None, default: int) -> int:
        if value is None:
            return min(default, self.max_page_size)
        if value < 1:
            raise BadRequestError(f"{name} must be at least 1.")
        return min(value, self.max_page_size)

    def _skip(self, value: int | None, limit: int = 0) -> int:
        if value is not None and value < 0:
            raise BadRequestError("skip must not be negative.")
        skip = value or 0
        if self.result_window is not None and skip + limit > self.result_window:
            raise BadRequestError(
                f"Only the first {self.result_window} matching users can be reached"
                " (skip + limit, or page × perPage); narrow the filter or reverse"
                " the sort."
            )
        return skip

    async def by_id(self, user_id: str) -> dict[str, Any] | None:
        user = await self.store.get_user(user_id) if is_valid_id(user_id) else None
        return self.view(user) if user else None

    async def by_ids(
        self, ids: list[str | None], limit: int | None, sort: str | None
    ) -> list[dict[str, Any]]:
        wanted = [item for item in ids if is_valid_id(item)]
        if not wanted:
            return []
        query = UserQuery(
            where=Compare("_id", "in", wanted),
            sort=to_sort(sort, self.sort_fields),
            limit=self._limit("limit", limit, 100),
        )
        return [self.view(user) for user in await self.store.find_users(query)]

    async def one(
        self, graphql_filter: dict | None, skip: int | None, sort: str | None
    ) -> dict[str, Any] | None:
        query = UserQuery(
            where=self._where(graphql_filter),
            sort=to_sort(sort, self.sort_fields),
            skip=self._skip(skip, 1),
            limit=1,
        )
        found = await self.store.find_users(query)
        return self.view(found[0]) if found else None

    async def many(
        self,
        graphql_filter: dict | None,
        skip: int | None,
        limit: int | None,
        sort: str | None,
    ) -> list[dict[str, Any]]:
        limit = self._limit("limit", limit, 100)
        query = UserQuery(
            where=self._where(graphql_filter),
            sort=to_sort(sort, self.sort_fields),
            skip=self._skip(skip, limit),
            limit=limit,
        )
        return [self.view(user) for user in await self.store.find_users(query)]

    async def count(self, graphql_filter: dict | None) -> int:
        return await self.store.count_users(
            self._where(graphql_filter), self.result_window
        )

    async def pagination(
        self,
        graphql_filter: dict | None,
        page: int | None,
        per_page: int | None,
        sort: str | None,
    ) -> dict[str, Any]:
        page = 1 if page is None else page
        if page < 1:
            raise BadRequestError("page must be at least 1.")
        per_page = self._limit("perPage", per_page, 20)
        query = UserQuery(
            where=self._where(graphql_filter),
            sort=to_sort(sort, self.sort_fields),
            skip=self._skip((page - 1) * per_page, per_page),
            limit=per_page,
            count_limit=self.result_window,
        )
        count, items = await self.store.find_page(query)
        page_count = math.ceil(count / per_page)
        return {
            "count": count,
            "items": [self.view(user) for user in items],
            "pageInfo": {
                "currentPage": page,
                "perPage": per_page,
                "pageCount": page_count,
                "itemCount": count,
                "hasNextPage": page < page_count,
                "hasPreviousPage": page > 1,
            },
        }
