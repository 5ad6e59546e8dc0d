"""The store contract: one suite, run on every adapter.

SQLite on a real file, MongoDB through mongomock, and a real MongoDB when
AUTH_TEST_MONGODB_URL is set. The queries are checked against a reference
evaluation in Python (with SQL's null semantics), so every adapter gives the
same answers for the same data. The suite adapts to the fields of the spec
the service was generated from.
"""

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from async_mongomock import AsyncMongomockClient
from conftest import create_postgresql_database, drop_postgresql_database
from pymongo import AsyncMongoClient
from sample import sample_user
from sqlalchemy import text

from {{ cookiecutter.package }}.mail import outbox_record
from {{ cookiecutter.package }}.models import FIELDS
from {{ cookiecutter.package }}.store import (
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
    new_id,
)
from {{ cookiecutter.package }}.store.mongodb import MongoStore
from {{ cookiecutter.package }}.store.schema import FEW_VALUED
from {{ cookiecutter.package }}.store.sql import SqlStore, SqlUsersSchema

pytestmark = pytest.mark.anyio

Opener = Callable[[], Awaitable[Store]]

UNIQUE = [name for name, field in FIELDS.items() if field.unique]
INDEXED = [name for name, field in FIELDS.items() if field.indexed and not field.unique]
WITH_DEFAULT = [name for name, field in FIELDS.items() if field.has_default]
REQUIRED_NO_DEFAULT = [
    name for name, field in FIELDS.items() if field.required and not field.has_default
]
#: Real time, because MongoDB (and mongomock) expire tokens and failures by TTL indexes.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def each(names: list[str], what: str) -> list[Any]:
    """Parameters over the spec's fields, or one skipped test that says why."""
    return names or [
        pytest.param(
            None, marks=pytest.mark.skip(reason=f"the spec has no {what} field")
        )
    ]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def mongodb_url(base: str, database: str) -> str:
    return urlsplit(base)._replace(path=f"/{database}").geturl()


@pytest.fixture(params=["sqlite", "postgresql", "mongomock", "mongodb"])
async def opener(
    request: pytest.FixtureRequest, tmp_path: Any
) -> AsyncIterator[Opener]:
    """Opens stores on one fresh database, as the service does at each start."""
    kind = request.param
    real_url = postgresql = client = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    elif kind == "postgresql":
        url = postgresql = await create_postgresql_database()
    elif kind == "mongomock":
        url, client = "mongodb://localhost/contract", AsyncMongomockClient()
    else:
        base = os.environ.get("AUTH_TEST_MONGODB_URL")
        if not base:
            pytest.skip(
                "AUTH_TEST_MONGODB_URL is not set: no real MongoDB to test against"
            )
        url = real_url = mongodb_url(base, f"contract_{uuid.uuid4().hex[:12]}")
    opened: list[Store] = []

    async def open_store() -> Store:
        store = (
            SqlStore(url)
            if kind in ("sqlite", "postgresql")
            else MongoStore(url, client=client)
        )
        await store.open()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()
    if postgresql:
        await drop_postgresql_database(postgresql)
    if real_url:
        client = AsyncMongoClient(real_url)
        await client.drop_database(urlsplit(real_url).path.strip("/"))
        await client.close()


@pytest.fixture
async def store(opener: Opener) -> Store:
    return await opener()


# Users.


async def test_user_round_trip(store):
    user = sample_user(1)
    await store.insert_user(user)
    assert await store.get_user(user["_id"]) == user
    assert await store.get_user_by_email(user["email"]) == user
    assert await store.get_user(new_id()) is None
    assert await store.get_user("not-an-id") is None


async def test_unset_fields_read_as_none(store):
    user = sample_user(2, **{name: None for name in FIELDS})
    await store.insert_user(user)
    assert await store.get_user(user["_id"]) == user


async def test_update_sets_and_unsets(store):
    user = sample_user(3)
    await store.insert_user(user)
    changes = {"email_verified": not user["email_verified"]}
    changes.update({name: None for name, field in FIELDS.items() if not field.required})
    updated = await store.update_user(user["_id"], changes)
    assert updated == {**user, **changes}
    assert await store.get_user(user["_id"]) == updated
    assert await store.update_user(user["_id"], {}) == updated
    assert await store.update_user(new_id(), {"email_verified": True}) is None


async def test_update_only_when_the_expected_values_hold(store):
    user = sample_user(4)
    await store.insert_user(user)
    stale = await store.update_user(
        user["_id"], {"email_verified": True}, expected={"email": "old@example.com"}
    )
    assert stale is None
    assert await store.get_user(user["_id"]) == user
    current = await store.update_user(
        user["_id"], {"email_verified": True}, expected={"email": user["email"]}
    )
    assert current == {**user, "email_verified": True}


async def test_delete_user(store):
    user = sample_user(4)
    await store.insert_user(user)
    assert await store.delete_user(user["_id"]) is True
    assert await store.get_user(user["_id"]) is None
    assert await store.delete_user(user["_id"]) is False


async def test_duplicate_email(store):
    await store.insert_user(sample_user(5))
    with pytest.raises(DuplicateValueError) as caught:
        await store.insert_user(sample_user(6, email=sample_user(5)["email"]))
    assert caught.value.field == "email"
    other = sample_user(7)
    await store.insert_user(other)
    with pytest.raises(DuplicateValueError) as caught:
        await store.update_user(other["_id"], {"email": sample_user(5)["email"]})
    assert caught.value.field == "email"


@pytest.mark.parametrize("name", each(UNIQUE, "unique"))
async def test_duplicate_unique_field(store, name):
    first, second = sample_user(8), sample_user(9)
    await store.insert_user(first)
    with pytest.raises(DuplicateValueError) as caught:
        await store.insert_user({**second, name: first[name]})
    assert caught.value.field == name
    await store.insert_user(second)
    with pytest.raises(DuplicateValueError) as caught:
        await store.update_user(second["_id"], {name: first[name]})
    assert caught.value.field == name
    assert (await store.get_user(second["_id"]))[name] == second[name]


@pytest.mark.parametrize("name", each(UNIQUE, "unique"))
async def test_users_without_a_unique_value_do_not_collide(store, name):
    await store.insert_user(sample_user(10, **{name: None}))
    await store.insert_user(sample_user(11, **{name: None}))
    assert await store.count_users(Compare(name, "eq", None)) == 2


# Queries, against a reference evaluation with SQL's null semantics.


def dataset() -> list[dict[str, Any]]:
    """Users with every kind of value, and every fourth one without any field set."""
    users = []
    for i in range(24):
        user = sample_user(100 + i)
        if i % 4 == 1:
            user.update({name: None for name in FIELDS})
        users.append(user)
    return users


def matches(user: dict[str, Any], condition: Condition) -> bool:
    if isinstance(condition, AllOf):
        return all(matches(user, inner) for inner in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(matches(user, inner) for inner in condition.conditions)
    value, operand = user[condition.field], condition.value
    if condition.op == "eq":
        return value == operand
    if condition.op == "ne":
        return (
            value is not None if operand is None else value is None or value != operand
        )
    if condition.op == "in":
        return value is not None and value in operand
    if condition.op == "nin":
        return value is None or value not in operand
    if value is None:
        return False
    return {
        "gt": value > operand,
        "gte": value >= operand,
        "lt": value < operand,
        "lte": value <= operand,
    }[condition.op]


def reference(users: list[dict[str, Any]], query: UserQuery) -> list[dict[str, Any]]:
    """The users a query returns: NULLs first when ascending, last when descending."""
    found = [
        user for user in users if query.where is None or matches(user, query.where)
    ]
    for name, direction in reversed(query.sort):
        present = sorted(
            (u for u in found if u[name] is not None),
            key=lambda u: u[name],
            reverse=direction < 0,
        )
        absent = [u for u in found if u[name] is None]
        found = absent + present if direction > 0 else present + absent
    return found[query.skip : query.skip + query.limit]


def conditions(users: list[dict[str, Any]]) -> list[Condition]:
    """Every operator on every field, with present, absent and null values.

    (A null operand of gt, gte, lt or lte is not a condition: the public
    queries turn it into NOTHING before it reaches a store.)
    """
    pivot, other = users[6], users[11]
    found: list[Condition] = [NOTHING, AllOf(())]
    for name in ["_id", "email_verified", *FIELDS]:
        listed = name in FIELDS and FIELDS[name].list
        values = [pivot[name], other[name]]
        found += [
            Compare(name, "eq", pivot[name]),
            Compare(name, "eq", None),
            Compare(name, "ne", pivot[name]),
            Compare(name, "ne", None),
        ]
        if not listed:  # lists compare as a whole, with equality only
            found += [Compare(name, "in", values), Compare(name, "nin", values)]
            # A value named twice still finds each user once.
            found.append(Compare(name, "in", [*values, pivot[name]]))
            found += [
                Compare(name, op, pivot[name]) for op in ("gt", "gte", "lt", "lte")
            ]
        if isinstance(pivot[name], str) and not listed and name != "_id":
            # Strings compare byte by byte ("USE1" < "use0") on every store,
            # whatever the database's collation. (Ids reach a store in
            # lowercase only: store.is_valid_id.)
            found += [Compare(name, op, pivot[name].upper()) for op in ("gt", "lt")]
    for name in INDEXED + UNIQUE:
        low, high = Compare(name, "gte", users[0][name]), Compare(
            name, "lt", pivot[name]
        )
        found += [
            AllOf((low, high)),
            AnyOf((high, Compare(name, "eq", None))),
            AllOf((AnyOf((low, NOTHING)), Compare("email_verified", "eq", True))),
        ]
    return found


def queries(users: list[dict[str, Any]]) -> list[UserQuery]:
    found = [UserQuery(where=condition, limit=1000) for condition in conditions(users)]
    found += [
        UserQuery(where=condition, skip=2, limit=3) for condition in conditions(users)
    ]
    for name in ["_id", "email_verified", *INDEXED, *UNIQUE]:
        for direction in (1, -1):
            sort = (
                ((name, direction),)
                if name == "_id"
                else ((name, direction), ("_id", 1))
            )
            found += [
                UserQuery(sort=sort, limit=1000),
                UserQuery(sort=sort, skip=3, limit=5),
            ]
    for condition in conditions(users):
        merged = ("in", "gt", "gte", "lt", "lte")
        if isinstance(condition, Compare) and condition.op in merged:
            # `in` and range pages in id order, both ways (the SQL adapter may
            # merge one index range per value).
            found += [
                UserQuery(where=condition, sort=(("_id", -1),), skip=1, limit=3),
                UserQuery(
                    where=AllOf((condition, Compare("email_verified", "eq", True))),
                    skip=1,
                    limit=2,
                ),
            ]
    found += [UserQuery(skip=20, limit=10), UserQuery(skip=30), UserQuery(limit=0)]
    return found


async def test_find_and_count_match_the_reference(store):
    users = dataset()
    for user in users:
        await store.insert_user(user)
    for query in queries(users):
        expected = reference(users, query)
        found = await store.find_users(query)
        assert [u["_id"] for u in found] == [u["_id"] for u in expected], query
        assert found == expected
        if query.skip == 0 and query.limit >= len(users):
            assert await store.count_users(query.where) == len(expected), query.where
        # A page and its count read together, as pagination does (the SQL
        # adapter may then choose another plan: the results must not change).
        count = len(reference(users, replace(query, skip=0, limit=len(users))))
        assert await store.find_page(query) == (count, expected), query


async def test_a_page_past_a_count_limit_matches_the_reference(store):
    """The public queries' pages count up to a window: once it is reached the
    SQL adapter may read a page in id order along the id index instead."""
    users = dataset()
    for user in users:
        await store.insert_user(user)
    for condition in conditions(users):
        for direction in (1, -1):
            query = UserQuery(condition, (("_id", direction),), 2, 3, count_limit=5)
            expected = reference(users, query)
            total = len(reference(users, replace(query, skip=0, limit=len(users))))
            found = await store.find_page(query)
            assert found == (min(total, 5), expected if total > 2 else []), query


async def test_adapters_give_identical_results(tmp_path):
    stores: list[Store] = [
        SqlStore(f"sqlite:///{tmp_path / 'same.db'}"),
        MongoStore("mongodb://localhost/same", client=AsyncMongomockClient()),
    ]
    users = dataset()
    for store in stores:
        await store.open()
        for user in users:
            await store.insert_user(user)
    try:
        for query in queries(users):
            sql, mongo = [await store.find_users(query) for store in stores]
            assert sql == mongo, query
            assert await stores[0].count_users(query.where) == await stores[
                1
            ].count_users(query.where)
    finally:
        for store in stores:
            await store.close()


# Sessions.


def refresh_token(
    user_id: str, session_id: str, expires_at: dt.datetime = NOW + dt.timedelta(hours=1)
) -> dict:
    return {
        "token_hash": uuid.uuid4().hex * 2,
        "session_id": session_id,
        "user_id": user_id,
        "expires_at": expires_at,
    }


def replacement() -> dict[str, Any]:
    return {
        "token_hash": uuid.uuid4().hex * 2,
        "expires_at": NOW + dt.timedelta(hours=2),
    }


async def test_rotation_and_reuse_detection(store):
    first = refresh_token("u1", "s1")
    await store.add_refresh_token(first)
    second = replacement()
    outcome, record = await store.rotate_refresh_token(first["token_hash"], second, NOW)
    assert outcome is Rotation.ROTATED
    assert record["session_id"] == "s1" and record["user_id"] == "u1"
    third = replacement()
    assert (await store.rotate_refresh_token(second["token_hash"], third, NOW))[
        0
    ] is Rotation.ROTATED
    # The first token again: stolen or replayed. Its whole session ends.
    outcome, record = await store.rotate_refresh_token(
        first["token_hash"], replacement(), NOW
    )
    assert outcome is Rotation.REUSED and record["session_id"] == "s1"
    assert await store.rotate_refresh_token(
        third["token_hash"], replacement(), NOW
    ) == (Rotation.INVALID, None)


async def test_expired_and_unknown_tokens_do_not_rotate(store):
    expired = refresh_token("u1", "s1", expires_at=NOW - dt.timedelta(seconds=1))
    await store.add_refresh_token(expired)
    assert await store.rotate_refresh_token(
        expired["token_hash"], replacement(), NOW
    ) == (Rotation.INVALID, None)
    assert await store.rotate_refresh_token("0" * 64, replacement(), NOW) == (
        Rotation.INVALID,
        None,
    )


async def test_concurrent_refreshes_cannot_both_win(store):
    token = refresh_token("u1", "s1")
    await store.add_refresh_token(token)
    outcomes = await asyncio.gather(
        store.rotate_refresh_token(token["token_hash"], replacement(), NOW),
        store.rotate_refresh_token(token["token_hash"], replacement(), NOW),
    )
    assert sorted(outcome.value for outcome, _ in outcomes) == ["reused", "rotated"]


async def test_a_token_rotated_within_the_reuse_interval_continues_its_session(store):
    first = refresh_token("u1", "s1")
    await store.add_refresh_token(first)
    second, sibling = replacement(), replacement()
    assert (await store.rotate_refresh_token(first["token_hash"], second, NOW, 10))[
        0
    ] is Rotation.ROTATED
    soon = NOW + dt.timedelta(seconds=9)
    outcome, record = await store.rotate_refresh_token(
        first["token_hash"], sibling, soon, 10
    )
    assert (
        outcome is Rotation.ROTATED
        and record["session_id"] == "s1"
        and record["user_id"] == "u1"
    )
    # Both replacements are current tokens of the session.
    heads = [replacement(), replacement()]
    for token, head in zip((second, sibling), heads):
        assert (await store.rotate_refresh_token(token["token_hash"], head, soon, 10))[
            0
        ] is Rotation.ROTATED
    # The interval runs from the first rotation, whatever was presented since:
    # after it, the first token is a replay and the whole session ends.
    late = NOW + dt.timedelta(seconds=11)
    outcome, record = await store.rotate_refresh_token(
        first["token_hash"], replacement(), late, 10
    )
    assert outcome is Rotation.REUSED and record["session_id"] == "s1"
    for head in heads:
        assert await store.end_session(head["token_hash"]) is None


async def test_concurrent_refreshes_within_the_interval_all_continue_the_session(store):
    token = refresh_token("u1", "s1")
    await store.add_refresh_token(token)
    replacements = [replacement() for _ in range(8)]
    outcomes = await asyncio.gather(
        *(
            store.rotate_refresh_token(token["token_hash"], new, NOW, 10)
            for new in replacements
        )
    )
    assert [(outcome, record["session_id"]) for outcome, record in outcomes] == [
        (Rotation.ROTATED, "s1")
    ] * 8
    for new in replacements:
        assert (
            await store.rotate_refresh_token(new["token_hash"], replacement(), NOW, 10)
        )[0] is Rotation.ROTATED


async def test_the_reuse_interval_does_not_revive_an_ended_or_expired_session(store):
    first = refresh_token("u1", "s1")
    await store.add_refresh_token(first)
    second = replacement()
    await store.rotate_refresh_token(first["token_hash"], second, NOW, 10)
    await store.end_session(second["token_hash"])
    assert await store.rotate_refresh_token(
        first["token_hash"], replacement(), NOW, 10
    ) == (Rotation.INVALID, None)
    expiring = refresh_token("u1", "s2", expires_at=NOW + dt.timedelta(seconds=5))
    await store.add_refresh_token(expiring)
    await store.rotate_refresh_token(expiring["token_hash"], replacement(), NOW, 10)
    later = NOW + dt.timedelta(seconds=6)
    assert (
        await store.rotate_refresh_token(
            expiring["token_hash"], replacement(), later, 10
        )
    )[0] is not Rotation.ROTATED


async def test_refresh_tokens_of_an_older_generation_gain_the_rotation_time(tmp_path):
    """A database made before the reuse interval existed lacks the column; the start adds it."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = SqlStore(url)
    await store.open()
    token = refresh_token("u1", "s1")
    await store.add_refresh_token(token)
    async with store.engine.begin() as connection:
        await connection.execute(
            text("ALTER TABLE refresh_tokens DROP COLUMN rotated_at")
        )
    await store.close()
    store = SqlStore(url)
    await store.open()
    try:
        for _ in range(2):
            outcome, _ = await store.rotate_refresh_token(
                token["token_hash"], replacement(), NOW, 10
            )
            assert outcome is Rotation.ROTATED
    finally:
        await store.close()


async def test_end_session_ends_only_that_session(store):
    first, other = refresh_token("u1", "s1"), refresh_token("u1", "s2")
    await store.add_refresh_token(first)
    await store.add_refresh_token(other)
    second = replacement()
    await store.rotate_refresh_token(first["token_hash"], second, NOW)
    record = await store.end_session(second["token_hash"])
    assert record["session_id"] == "s1"
    assert await store.end_session(first["token_hash"]) is None
    assert await store.end_session("0" * 64) is None
    assert (await store.rotate_refresh_token(other["token_hash"], replacement(), NOW))[
        0
    ] is Rotation.ROTATED


async def test_end_user_sessions(store):
    for session in ("s1", "s2"):
        await store.add_refresh_token(refresh_token("u1", session))
    kept = refresh_token("u2", "s3")
    await store.add_refresh_token(kept)
    assert await store.end_user_sessions("u1") == 2
    assert await store.end_user_sessions("u1") == 0
    assert (await store.end_session(kept["token_hash"]))["user_id"] == "u2"


async def test_purge_expired(store):
    expired = refresh_token("u1", "s1", expires_at=NOW - dt.timedelta(minutes=1))
    current = refresh_token("u1", "s2")
    await store.add_refresh_token(expired)
    await store.add_refresh_token(current)
    await store.add_side_writes(
        SideWrites(
            tokens=[one_time_token("u1", "verify", NOW - dt.timedelta(minutes=1))]
        )
    )
    await store.purge_expired(
        NOW, NOW - dt.timedelta(hours=1), NOW - dt.timedelta(days=7)
    )
    assert await store.end_session(expired["token_hash"]) is None
    assert await store.end_session(current["token_hash"]) is not None
    assert await store.consume_user_token("1" * 64, "verify") is None


async def test_delete_user_ends_their_sessions_and_tokens(store):
    user = sample_user(12)
    token = refresh_token(user["_id"], "s1")
    await store.insert_user(
        user, SideWrites(tokens=[one_time_token(user["_id"], "verify")])
    )
    await store.add_refresh_token(token)
    await store.delete_user(user["_id"])
    assert await store.end_session(token["token_hash"]) is None
    assert await store.consume_user_token("1" * 64, "verify") is None


# One-time tokens.


def one_time_token(
    user_id: str, purpose: str, expires_at: dt.datetime = NOW + dt.timedelta(hours=1)
) -> dict:
    return {
        "token_hash": "1" * 64,
        "user_id": user_id,
        "purpose": purpose,
        "email": "someone@example.com",
        "expires_at": expires_at,
    }


async def test_one_time_token_is_consumed_once(store):
    token = one_time_token("u1", "verify")
    await store.add_side_writes(SideWrites(tokens=[token]))
    assert await store.consume_user_token(token["token_hash"], "recover") is None
    assert await store.consume_user_token(token["token_hash"], "verify") == token
    assert await store.consume_user_token(token["token_hash"], "verify") is None


async def test_delete_user_tokens_by_purpose(store):
    await store.add_side_writes(SideWrites(tokens=[one_time_token("u1", "recover")]))
    await store.delete_user_tokens("u1", "verify")
    await store.delete_user_tokens("u2", "recover")
    assert await store.consume_user_token("1" * 64, "recover") is not None


async def test_side_writes_travel_with_the_user(store):
    user = sample_user(13)
    mail = outbox_record(
        user["email"], "verify_email", {"link": "https://example.org/x"}
    )
    await store.insert_user(
        user, SideWrites(tokens=[one_time_token(user["_id"], "verify")], mails=[mail])
    )
    assert (await store.get_mail(mail["_id"]))["recipient"] == user["email"]
    second = outbox_record(user["email"], "reset_password_email", {})
    await store.update_user(user["_id"], {}, SideWrites(mails=[second]))
    assert [m["_id"] for m in await store.list_mails("pending")] == [
        mail["_id"],
        second["_id"],
    ]
    assert (
        await store.update_user(
            new_id(), {}, SideWrites(mails=[outbox_record("x@y.z", "t", {})])
        )
        is None
    )
    assert len(await store.list_mails()) == 2


# Mail outbox.


async def test_outbox_leases(store):
    mails = [
        outbox_record(f"r{i}@example.com", "verify_email", {"n": i}) for i in range(3)
    ]
    await store.add_side_writes(SideWrites(mails=mails))
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    lease = now + dt.timedelta(minutes=5)
    first = await store.claim_mails(now, lease, limit=2)
    assert len(first) == 2 and first[0]["context"] == {"n": 0}
    rest = await store.claim_mails(now, lease, limit=10)
    assert [m["_id"] for m in rest] == [mails[2]["_id"]]
    assert await store.claim_mails(now, lease, limit=10) == []  # all leased
    after = await store.claim_mails(
        lease + dt.timedelta(seconds=1), lease + dt.timedelta(minutes=10), limit=10
    )
    assert sorted(m["_id"] for m in after) == sorted(
        m["_id"] for m in mails
    )  # the leases expired


async def test_outbox_updates(store):
    mail = outbox_record("r@example.com", "verify_email", {})
    await store.add_side_writes(SideWrites(mails=[mail]))
    sent_at = NOW.replace(microsecond=0)
    await store.update_mail(
        mail["_id"], {"status": "sent", "sent_at": sent_at, "attempts": 1}
    )
    stored = await store.get_mail(mail["_id"])
    assert (stored["status"], stored["sent_at"], stored["attempts"]) == (
        "sent",
        sent_at,
        1,
    )
    assert await store.list_mails("pending") == []
    assert await store.claim_mails(dt.datetime.now(dt.UTC), NOW, limit=10) == []
    assert await store.get_mail(new_id()) is None


async def test_outbox_backlog_counts_pending_mails_and_dates_the_oldest(store):
    assert await store.outbox_backlog() == (0, None)
    mails = [outbox_record(f"b{i}@example.com", "verify_email", {}) for i in range(3)]
    mails[1]["created_at"] = NOW - dt.timedelta(hours=1)
    await store.add_side_writes(SideWrites(mails=mails))
    await store.update_mail(mails[1]["_id"], {"status": "sent"})
    queued, oldest = await store.outbox_backlog()
    assert queued == 2
    # The sent mail is the oldest record; MongoDB keeps milliseconds only.
    since_first = oldest.replace(tzinfo=dt.UTC) - mails[0]["created_at"]
    assert abs(since_first) < dt.timedelta(milliseconds=1)


# Schema evolution: a store opened on data written under an older model.


async def execute_sql(store: SqlStore, *statements: str) -> None:
    async with store.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def forget_field(store: Store, name: str) -> None:
    """Make stored users look as if the field had not existed when they were written."""
    if isinstance(store, SqlStore):
        indexes = await user_indexes(store)
        await execute_sql(
            store,
            *(
                f'DROP INDEX "{index}"'
                for index, keys in indexes.items()
                if name in keys
            ),
            f'ALTER TABLE users DROP COLUMN "{name}"',
        )
    else:
        await store.users.update_many({}, {"$unset": {name: ""}})
        await store.schema.update_one(
            {"_id": "users"}, {"$unset": {f"fields.{name}": ""}}
        )


async def user_indexes(store: Store) -> dict[str, list[str]]:
    """The users' indexes in the database: their keys by name."""
    if isinstance(store, SqlStore):
        async with store.engine.connect() as connection:
            found = await SqlUsersSchema(connection).indexes()
    else:
        found = {
            name: [key for key, _ in info["key"]]
            for name, info in (await store.users.index_information()).items()
        }
    return {name: list(keys) for name, keys in found.items()}


async def index_names(store: Store) -> set[str]:
    return set(await user_indexes(store))


async def drop_index(store: Store, name: str) -> None:
    if isinstance(store, SqlStore):
        await execute_sql(store, f'DROP INDEX "{name}"')
    else:
        await store.users.drop_index(name)


@pytest.mark.parametrize("name", each(WITH_DEFAULT, "defaulted"))
async def test_new_field_with_default_is_filled_in(opener, name):
    store = await opener()
    users = [sample_user(20), sample_user(21)]
    for user in users:
        await store.insert_user(user)
    await forget_field(store, name)
    reopened = await opener()
    for user in users:
        assert (await reopened.get_user(user["_id"]))[name] == FIELDS[
            name
        ].python_default()


async def test_removed_field_is_harmless(opener):
    store = await opener()
    user = sample_user(22)
    await store.insert_user(user)
    if isinstance(store, SqlStore):
        await execute_sql(
            store,
            "ALTER TABLE users ADD COLUMN retired TEXT",
            "UPDATE users SET retired = 'old'",
            'CREATE UNIQUE INDEX "ux_users_retired" ON users (retired)',
        )
    else:
        await store.users.update_many({}, {"$set": {"retired": "old"}})
        await store.users.create_index("retired", name="ux_users_retired", unique=True)
    reopened = await opener()
    assert await reopened.get_user(user["_id"]) == user
    assert "ux_users_retired" not in await index_names(reopened)
    await reopened.insert_user(sample_user(23))
    assert await reopened.count_users() == 2


@pytest.mark.parametrize("name", each(INDEXED + UNIQUE, "indexed"))
async def test_new_index_is_created_on_existing_data(opener, name):
    store = await opener()
    await store.insert_user(sample_user(24))
    index = f"{'ux' if FIELDS[name].unique else 'ix'}_users_{name}"
    await drop_index(store, index)
    assert index not in await index_names(store)
    reopened = await opener()
    assert index in await index_names(reopened)


def carried(name: str) -> list[str]:
    """The few-valued public fields an indexed field's index carries after its id."""
    return [other for other in FEW_VALUED if other != name]


async def index_columns(store: Store, index: str) -> list[str]:
    return (await user_indexes(store))[index]


@pytest.mark.parametrize(
    "name", each([n for n in INDEXED if n not in UNIQUE], "indexed, not unique")
)
async def test_an_index_of_an_older_shape_is_rebuilt(opener, name):
    """Indexes of an older generation may have other columns under the same name."""
    store = await opener()
    await store.insert_user(sample_user(25))
    index = f"ix_users_{name}"
    await drop_index(store, index)
    if isinstance(store, SqlStore):
        await execute_sql(store, f'CREATE INDEX "{index}" ON users ("{name}")')
    else:
        await store.users.create_index(name, name=index)
    assert await index_columns(store, index) == [name]
    reopened = await opener()
    assert await index_columns(reopened, index) == [name, "_id", *carried(name)]


async def test_strings_of_an_older_generation_compare_byte_by_byte_after_a_start(
    opener,
):
    """A PostgreSQL table of an older generation compared strings by the
    database's collation; the start makes them compare bytes, as the other
    stores do, and keeps every user."""
    store = await opener()
    if not isinstance(store, SqlStore) or store.engine.dialect.name != "postgresql":
        pytest.skip("a collation is PostgreSQL's")
    users = [sample_user(100 + i) for i in range(12)]
    for user in users:
        await store.insert_user(user)
    await execute_sql(
        store,
        'ALTER TABLE users ALTER COLUMN _id TYPE VARCHAR(24) COLLATE "default",'
        ' ALTER COLUMN email TYPE VARCHAR(320) COLLATE "default"',
    )
    reopened = await opener()
    pivot = users[6]["email"].upper()
    for query in (
        UserQuery(Compare("email", "gt", pivot), limit=100),
        UserQuery(Compare("email", "lt", pivot), sort=(("_id", -1),), limit=100),
        UserQuery(limit=100),
    ):
        assert await reopened.find_users(query) == reference(users, query), query


@pytest.mark.parametrize("name", each(UNIQUE, "unique"))
async def test_new_unique_index_over_duplicates_stops_the_start(opener, name):
    store = await opener()
    await drop_index(store, f"ux_users_{name}")
    first = sample_user(25)
    await store.insert_user(first)
    await store.insert_user(sample_user(26, **{name: first[name]}))
    with pytest.raises(
        SchemaError, match=f"'{name}' is now unique.*make those values distinct"
    ):
        await opener()


@pytest.mark.parametrize(
    "name", each(REQUIRED_NO_DEFAULT, "required field without default")
)
async def test_new_required_field_on_existing_users_stops_the_start(opener, name):
    store = await opener()
    await store.insert_user(sample_user(27))
    await forget_field(store, name)
    with pytest.raises(
        SchemaError, match=f"'{name}' is required.*give '{name}' a default"
    ):
        await opener()


async def test_required_field_is_fine_on_empty_data(opener):
    store = await opener()
    for name in REQUIRED_NO_DEFAULT:
        await forget_field(store, name)
    await opener()


# Attempts: the rate limits' primitive (record, then count), and the purge.


async def attempts(store, key: str, since: dt.datetime) -> int:
    return (await store.count_attempts({key: since}))[key]


async def test_attempts_are_counted_per_key_and_since_a_moment(store):
    first = await store.add_attempt(["pair:a", "account:a"], NOW)
    await store.add_attempt(["pair:a", "account:a"], NOW + dt.timedelta(minutes=1))
    await store.add_attempt(["pair:b", "account:a"], NOW + dt.timedelta(minutes=2))
    assert await attempts(store, "account:a", NOW - dt.timedelta(seconds=1)) == 3
    assert await attempts(store, "account:a", NOW) == 2
    assert await attempts(store, "pair:a", NOW - dt.timedelta(seconds=1)) == 2
    assert await attempts(store, "pair:c", NOW - dt.timedelta(seconds=1)) == 0
    await store.forget_attempt(first)
    assert await attempts(store, "account:a", NOW - dt.timedelta(seconds=1)) == 2
    assert await attempts(store, "pair:a", NOW - dt.timedelta(seconds=1)) == 1


async def test_several_keys_are_counted_at_once_each_since_its_own_moment(store):
    """A login checks three limits of different windows in one read."""
    await store.add_attempt(["pair:a", "account:a"], NOW)
    await store.add_attempt(["pair:a", "account:a"], NOW + dt.timedelta(minutes=1))
    await store.add_attempt(["account:a"], NOW + dt.timedelta(minutes=2))
    counts = await store.count_attempts(
        {
            "account:a": NOW - dt.timedelta(seconds=1),
            "pair:a": NOW + dt.timedelta(seconds=30),
            "pair:z": NOW - dt.timedelta(days=1),
        }
    )
    assert counts == {"account:a": 3, "pair:a": 1, "pair:z": 0}
    assert await store.count_attempts({}) == {}


async def test_simultaneous_attempts_each_see_their_own_record(store):
    """Record first, count after: of 20 attempts at once, each counts itself and
    at most `limit` of them can see a count within a limit."""

    async def attempt() -> int:
        await store.add_attempt(["burst"], NOW)
        return await attempts(store, "burst", NOW - dt.timedelta(seconds=1))

    counts = await asyncio.gather(*(attempt() for _ in range(20)))
    assert all(count >= 1 for count in counts)
    assert sum(count <= 5 for count in counts) <= 5
    assert await attempts(store, "burst", NOW - dt.timedelta(seconds=1)) == 20


async def test_purge_forgets_old_attempts_and_old_mails(store):
    await store.add_attempt(["old"], NOW - dt.timedelta(hours=2))
    await store.add_attempt(["old", "new"], NOW - dt.timedelta(minutes=1))
    sent = outbox_record("a@example.com", "verify_email", {})
    failed = outbox_record("b@example.com", "verify_email", {})
    pending = outbox_record("c@example.com", "verify_email", {})
    recent = outbox_record("d@example.com", "verify_email", {})
    long_ago = NOW - dt.timedelta(days=8)
    for mail in (sent, failed, pending):
        mail["created_at"] = long_ago
    await store.add_side_writes(SideWrites(mails=[sent, failed, pending, recent]))
    await store.update_mail(sent["_id"], {"status": "sent", "sent_at": long_ago})
    await store.update_mail(failed["_id"], {"status": "failed"})
    await store.update_mail(recent["_id"], {"status": "sent", "sent_at": NOW})
    await store.purge_expired(
        NOW, NOW - dt.timedelta(hours=1), NOW - dt.timedelta(days=7)
    )
    assert await store.count_attempts(
        {"old": NOW - dt.timedelta(days=1), "new": NOW - dt.timedelta(days=1)}
    ) == {"old": 1, "new": 1}
    assert [mail["_id"] for mail in await store.list_mails()] == sorted(
        [pending["_id"], recent["_id"]]
    )


async def test_every_public_field_has_an_equality_index(store):
    """Strangers filter on public fields: none of them is a full scan."""
    leading = {keys[0] for keys in (await user_indexes(store)).values()}
    public = [name for name, field in FIELDS.items() if field.public and not field.list]
    assert set(public) | {"email_verified"} <= leading


async def test_a_session_ended_while_it_rotates_is_gone_with_its_replacement(store):
    """Logouts racing refreshes of the same sessions (on PostgreSQL a delete
    cannot see the replacement a rotation inserts meanwhile): whichever wins,
    nothing of a session is left to refresh."""
    tokens = [refresh_token("u1", f"race{number}") for number in range(100)]
    for token in tokens:
        await store.add_refresh_token(token)
    replacements = [replacement() for _ in tokens]
    calls = []
    for token, new in zip(tokens, replacements):
        calls += [
            store.rotate_refresh_token(token["token_hash"], new, NOW, 10),
            store.end_session(token["token_hash"]),
        ]
    await asyncio.gather(*calls)
    for new in replacements:
        assert (
            await store.rotate_refresh_token(new["token_hash"], replacement(), NOW, 10)
        )[0] is Rotation.INVALID


# Model changes at start: renames, type changes, defaults once (store/schema.py).

OPTIONAL_WITH_DEFAULT = [
    n for n, f in FIELDS.items() if f.has_default and not f.required
]
SINGLE_INTS = [n for n, f in FIELDS.items() if f.type == "int" and not f.list]
#: One single-valued field, unique if the spec has one (its index must follow).
ONE_SCALAR = sorted(
    (n for n, f in FIELDS.items() if not f.list), key=lambda n: not FIELDS[n].unique
)[:1]


async def move_field(store: Store, name: str, old: str) -> None:
    """Make stored users look as if the field had been called `old`."""
    if isinstance(store, SqlStore):
        await execute_sql(store, f'ALTER TABLE users RENAME COLUMN "{name}" TO "{old}"')
    else:
        await store.users.update_many({}, {"$rename": {name: old}})
        recorded = (await store.schema.find_one({"_id": "users"}))["fields"]
        recorded[old] = recorded.pop(name)
        await store.schema.update_one({"_id": "users"}, {"$set": {"fields": recorded}})


async def store_as_text(store: Store, name: str, value: str) -> None:
    """Make stored users look as if the field had been a string holding `value`."""
    await forget_field(store, name)
    if isinstance(store, SqlStore):
        await execute_sql(
            store,
            f'ALTER TABLE users ADD COLUMN "{name}" TEXT',
            f"UPDATE users SET \"{name}\" = '{value}'",
        )
    else:
        await store.users.update_many({}, {"$set": {name: value}})
        await store.schema.update_one(
            {"_id": "users"}, {"$set": {f"fields.{name}": "str"}}
        )


@pytest.mark.parametrize("name", each(OPTIONAL_WITH_DEFAULT, "optional defaulted"))
async def test_a_cleared_default_stays_cleared_after_a_restart(opener, name):
    store = await opener()
    user = sample_user(40)
    await store.insert_user(user)
    await store.update_user(user["_id"], {name: None})
    reopened = await opener()
    assert (await reopened.get_user(user["_id"]))[name] is None


@pytest.mark.parametrize("name", each(ONE_SCALAR, "single-valued"))
async def test_a_declared_rename_moves_the_values_and_their_index(
    opener, name, monkeypatch
):
    store = await opener()
    user = sample_user(41)
    await store.insert_user(user)
    await move_field(store, name, f"{name}Old")
    monkeypatch.setitem(FIELDS, name, replace(FIELDS[name], renamed_from=f"{name}Old"))
    reopened = await opener()
    assert (await reopened.get_user(user["_id"]))[name] == user[name]
    indexes = await user_indexes(reopened)
    assert all(f"{name}Old" not in keys for keys in indexes.values())
    if FIELDS[name].unique:
        assert indexes[f"ux_users_{name}"] == [name]
    # Started again with the declaration (nothing left to move): no change.
    again = await opener()
    assert (await again.get_user(user["_id"]))[name] == user[name]


@pytest.mark.parametrize("name", each(ONE_SCALAR, "single-valued"))
async def test_a_new_field_while_a_removed_one_holds_values_stops_the_start(
    opener, name
):
    store = await opener()
    await store.insert_user(sample_user(42))
    await move_field(store, name, f"{name}Old")
    with pytest.raises(SchemaError) as refused:
        await opener()
    message = str(refused.value)
    assert f"'{name}'" in message and f"'{name}Old'" in message
    assert f"renamed_from: {name}Old" in message


@pytest.mark.parametrize("name", each(SINGLE_INTS[:1], "int"))
async def test_a_type_change_the_values_take_is_converted(opener, name):
    store = await opener()
    user = sample_user(43)
    await store.insert_user(user)
    await store_as_text(store, name, "41")
    reopened = await opener()
    assert (await reopened.get_user(user["_id"]))[name] == 41


@pytest.mark.parametrize("name", each(SINGLE_INTS[:1], "int"))
async def test_a_type_change_the_values_cannot_take_stops_the_start(opener, name):
    store = await opener()
    await store.insert_user(sample_user(44))
    await store.insert_user(sample_user(45))
    await store_as_text(store, name, "forty")
    with pytest.raises(
        SchemaError,
        match=rf"field '{name}' is now int but 2 stored user\(s\).*'forty'.*user\.yaml",
    ):
        await opener()
