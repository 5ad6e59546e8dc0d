"""No public query reads more than an index's share of the users.

Every filter a stranger can send on a public field is answered from an
index: the plans asserted here are the databases' own (EXPLAIN) for the SQL
the store builds, on SQLite and on a fresh PostgreSQL database (where
sequential scans are discouraged, so that a small table cannot hide a filter
no index serves). Counts and pages of the public queries stop at
AUTH_PUBLIC_RESULT_WINDOW matches, so a filter that matches half the users
reads no more index entries than that.
"""

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import error_type, registered, running_service
from sample import sample_user, sample_value
from sqlalchemy import event, insert, select

from {{ cookiecutter.package }}.models import FIELDS
from {{ cookiecutter.package }}.store import AllOf, AnyOf, Compare, Condition, UserQuery
from {{ cookiecutter.package }}.store.schema import FEW_VALUED
from {{ cookiecutter.package }}.store.sql import (
    SqlStore,
    _condition,
    _order,
    _values,
    users,
)
from {{ cookiecutter.package }}.users import to_sort

DATABASES = ["sqlite", "postgresql"]
USERS = 300
PUBLIC = [name for name, field in FIELDS.items() if field.public]
RANGES = [name for name in PUBLIC if FIELDS[name].indexed and not FIELDS[name].list]
#: Public fields whose index holds each value's users in id order: (field, _id).
BY_VALUE_IN_ID_ORDER = [
    name for name in PUBLIC if not FIELDS[name].unique and not FIELDS[name].list
]


def _params(names: list[str]) -> list[Any]:
    return names or [pytest.param(None, marks=pytest.mark.skip("no such field"))]


@pytest.fixture(scope="module")
def url(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of USERS sample users, with the store's schema and indexes."""
    url = database or f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}"

    async def fill() -> None:
        store = SqlStore(url)
        await store.open()
        try:
            async with store.engine.begin() as connection:
                rows = [_values(sample_user(i)) for i in range(USERS)]
                await connection.execute(insert(users), rows)
            # Statistics, and on PostgreSQL the visibility map that lets the
            # planner read an index without the table (index-only scans).
            async with store.engine.connect() as connection:
                autocommit = await connection.execution_options(
                    isolation_level="AUTOCOMMIT"
                )
                postgresql = connection.dialect.name == "postgresql"
                await autocommit.exec_driver_sql(
                    "VACUUM ANALYZE" if postgresql else "ANALYZE"
                )
        finally:
            await store.close()

    asyncio.run(fill())
    return url


def plan(
    url: str, condition: Condition | None, sort: tuple[tuple[str, int], ...] = ()
) -> str:
    """The database's plan for the ids of the users the condition selects, in
    the sort's order (a page of them)."""

    def explain(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        prefix = "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN "
        return prefix + statement, parameters

    async def run() -> str:
        store = SqlStore(url)
        try:
            async with store.engine.connect() as connection:
                dialect = connection.dialect.name
                if dialect == "postgresql":
                    await connection.exec_driver_sql("SET enable_seqscan = off")
                    await connection.exec_driver_sql("SET enable_sort = off")
                statement = select(users.c._id)
                if condition is not None:
                    statement = statement.where(_condition(condition, dialect))
                if sort:
                    order = [_order(users.c[key], way, dialect) for key, way in sort]
                    statement = statement.order_by(*order).offset(100).limit(20)
                sync = store.engine.sync_engine
                event.listen(sync, "before_cursor_execute", explain, retval=True)
                try:
                    rows = (await connection.execute(statement)).all()
                finally:
                    event.remove(sync, "before_cursor_execute", explain)
        finally:
            await store.close()
        return "\n".join(str(row[-1]) for row in rows)

    return asyncio.run(run())


def page_plan(url: str, query: UserQuery) -> str:
    """The database's plan for the statement the store runs to find a page
    (find_page, with its count): what the store ran is replayed in one
    transaction, settings it made included, and the page's statement (the
    last that reads users' rows) explained."""
    ran: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        ran.append((statement, parameters))

    async def run() -> str:
        store = SqlStore(url)
        try:
            sync = store.engine.sync_engine
            event.listen(sync, "before_cursor_execute", record)
            try:
                await store.find_page(query)
            finally:
                event.remove(sync, "before_cursor_execute", record)
            last = max(i for i, (sql, _) in enumerate(ran) if "users.email" in sql)
            *before, (statement, parameters) = ran[: last + 1]
            prefix = "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN "
            async with store.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
                for earlier, values in before:
                    await connection.exec_driver_sql(earlier, values)
                rows = await connection.exec_driver_sql(prefix + statement, parameters)
                return "\n".join(str(row[-1]) for row in rows)
        finally:
            await store.close()

    return asyncio.run(run())


def assert_searched(url: str, condition: Condition, name: str) -> None:
    """The plan looks the condition up in the field's index, never in the table."""
    found = plan(url, condition)
    assert f"_users_{name}" in found, found
    table_scans = [
        line
        for line in found.splitlines()
        if "Seq Scan" in line or ("SCAN users" in line and "INDEX" not in line)
    ]
    assert not table_scans, found


@pytest.mark.parametrize("name", _params(PUBLIC))
def test_an_equality_filter_on_any_public_field_searches_its_index(url, name):
    assert_searched(url, Compare(name, "eq", sample_value(FIELDS[name], 7)), name)


@pytest.mark.parametrize("name", _params(RANGES))
def test_a_range_on_an_indexed_public_field_searches_its_index(url, name):
    low, high = sample_value(FIELDS[name], 3), sample_value(FIELDS[name], 9)
    assert_searched(url, Compare(name, "gte", min(low, high)), name)
    assert_searched(url, Compare(name, "lt", max(low, high)), name)


@pytest.mark.parametrize(
    "name", _params([name for name in PUBLIC if FIELDS[name].list])
)
def test_list_equality_still_compares_the_whole_list(url, name):
    """The index finds lists holding the items; only equal lists are answered."""
    field = FIELDS[name]
    value = sample_value(field, 7)

    async def count(condition: Condition) -> int:
        store = SqlStore(url)
        try:
            return await store.count_users(condition)
        finally:
            await store.close()

    equal = sum(sample_value(field, i) == value for i in range(USERS))
    assert asyncio.run(count(Compare(name, "eq", value))) == equal
    assert asyncio.run(count(Compare(name, "eq", value * 2))) == 0


@pytest.mark.parametrize("name", _params(RANGES))
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_a_public_sort_reads_an_index_in_order(url, name, direction):
    """Pages sorted on a field (ties broken by id) are read along an index, not sorted."""
    found = plan(url, None, to_sort(f"{name.upper()}_{direction}"))
    assert f"_users_{name}" in found, found
    # PostgreSQL may read a unique field's index and order its ties (users
    # without a value) by id as it goes: an incremental sort, not a sort.
    full_sorts = re.findall(r"^\s*(?:->\s+)?Sort\s+\(|TEMP B-TREE", found, re.M)
    assert not full_sorts, found


@pytest.mark.parametrize("name", _params(BY_VALUE_IN_ID_ORDER))
@pytest.mark.parametrize("direction", [1, -1])
def test_a_page_filtered_by_in_merges_the_values_ranges(url, name, direction):
    """`field in [a, b, c]` in id order is read as one index range per value,
    merged, never as every match collected and sorted."""
    values = list({sample_value(FIELDS[name], i): None for i in (3, 5, 9)})
    query = UserQuery(Compare(name, "in", values), (("_id", direction),), 1, 20)
    found = page_plan(url, query)
    merged = re.search(r"MERGE \(UNION ALL\)|Merge Append", found)
    assert merged or len(values) < 2, found
    assert "TEMP B-TREE" not in found, found


@pytest.mark.parametrize("sort", _params(RANGES))
@pytest.mark.parametrize("name", FEW_VALUED)
def test_a_sorted_page_filtered_by_a_few_valued_field_reads_one_index(url, sort, name):
    """`gender = M` sorted by age walks the age index alone: the index carries
    gender, so no user's row is read to test it."""
    if sort == name:
        pytest.skip("a field sorted and filtered by itself reads its own index")
    value = sample_value(FIELDS[name], 7) if name in FIELDS else True
    found = plan(url, Compare(name, "eq", value), to_sort(f"{sort.upper()}_ASC"))
    index_only = re.search(
        rf"COVERING INDEX ix_users_{sort}\b|Index Only Scan using ix_users_{sort}\b",
        found,
    )
    assert index_only, found


@pytest.mark.parametrize("field", _params(RANGES))
@pytest.mark.parametrize("name", FEW_VALUED)
def test_a_page_in_id_order_filtered_by_either_of_two_fields_reads_one_index(
    url, field, name
):
    """`gender = M or age < 10` in id order walks the (_id, age) index alone: it
    carries gender, so no user's row is read to test either side."""
    if field == name:
        pytest.skip("one field")
    value = sample_value(FIELDS[name], 7) if name in FIELDS else True
    either = AnyOf(
        (
            Compare(name, "eq", value),
            Compare(field, "lt", sample_value(FIELDS[field], 5)),
        )
    )
    found = plan(url, either, (("_id", 1),))
    index_only = re.search(
        rf"COVERING INDEX ix_users_{field}_by_id\b"
        rf"|Index Only Scan using ix_users_{field}_by_id\b",
        found,
    )
    assert index_only, found


@pytest.mark.parametrize("name", _params(RANGES))
@pytest.mark.parametrize("direction", [1, -1])
def test_a_page_filtered_by_a_range_of_few_values_merges_them(url, name, direction):
    """`age > 140` (a few values, many users) in id order is read as one index
    range per value, merged: neither every match sorted nor the id index walked."""
    values = sorted({sample_value(FIELDS[name], i) for i in range(USERS)})
    low, high = values[1], values[min(4, len(values) - 1)]
    between = AllOf((Compare(name, "gte", low), Compare(name, "lte", high)))
    query = UserQuery(between, (("_id", direction),), 1, 20)
    found = page_plan(url, query)
    assert re.search(r"MERGE \(UNION ALL\)|Merge Append", found) or low == high, found
    assert "TEMP B-TREE" not in found, found


@pytest.mark.parametrize("name", _params(RANGES))
def test_a_deep_page_of_a_wide_range_in_id_order_walks_the_id_index(url, name):
    """A page in id order past many matches of a range reads the field's
    indexes in id order (walks (_id, field), or merges the range's values
    when it holds few), never sorts every match: PostgreSQL's estimates
    of the two are close, and at 1,000,000 users its sort took 47 ms where the
    walk takes 5."""
    values = sorted(sample_value(FIELDS[name], i) for i in range(USERS))
    wide = Compare(name, "gte", values[USERS * 3 // 4])
    query = UserQuery(wide, (("_id", 1),), 30, 20, count_limit=50)
    found = page_plan(url, query)
    assert re.search(rf"ix_users_{name}(_by_id)?\b", found), found
    assert not re.search(r"^\s*(?:->\s+)?Sort\s+\(|TEMP B-TREE", found, re.M), found


def test_a_count_with_a_limit_stops_there(url):
    async def counts() -> tuple[int, int]:
        store = SqlStore(url)
        try:
            return await store.count_users(None, 50), await store.count_users(None)
        finally:
            await store.close()

    assert asyncio.run(counts()) == (50, USERS)


def test_strangers_reach_the_first_window_of_matches(tmp_path: Path):
    with running_service(tmp_path, AUTH_PUBLIC_RESULT_WINDOW="2") as service:
        client = service.client()
        for _ in range(3):
            registered(client)
        assert client("{ userCount }") == {"data": {"userCount": 2}}
        page = client(
            "{ userPagination(page: 1, perPage: 2)"
            " { count items { _id } pageInfo { pageCount hasNextPage } } }"
        )["data"]["userPagination"]
        assert page["count"] == 2 and len(page["items"]) == 2
        assert page["pageInfo"] == {"pageCount": 1, "hasNextPage": False}
        assert client("{ userOne(skip: 1) { _id } }")["data"]["userOne"]
        for refused in (
            "{ userOne(skip: 2) { _id } }",
            "{ userMany(skip: 1, limit: 2) { _id } }",
            "{ userPagination(page: 2, perPage: 2) { count } }",
        ):
            result = client(refused)
            assert error_type(result) == "BadRequestError", result
            assert "first 2 matching users" in result["errors"][0]["message"]
