"""The store conditions the admin API adds (a list holding a role, an email
prefix) and the built-in roles and disabled fields, on every store."""

import asyncio

import pytest
import test_store
from sample import sample_user
from test_store_audit import NOW, session_token

from {{ cookiecutter.package }}.store import (
    AllOf,
    Compare,
    LastMatchError,
    SideWrites,
    UserQuery,
)
from {{ cookiecutter.package }}.store.sql import SqlStore

pytestmark = pytest.mark.anyio
# The stores of the contract tests: SQLite, PostgreSQL, mongomock, MongoDB.
anyio_backend = test_store.anyio_backend
opener = test_store.opener
store = test_store.store


async def emails(store, *conditions) -> list[str]:
    found = await store.find_users(UserQuery(where=AllOf(conditions)))
    return sorted(user["email"] for user in found)


async def test_roles_and_disabled_round_trip_and_filter(store):
    users = [
        sample_user(1, email="ann@example.com", roles=["admin", "editor"]),
        sample_user(2, email="bob@example.com", roles=["editor"], disabled=True),
        sample_user(3, email="cy_x@example.com"),
        sample_user(4, email="cyrus@example.com", roles=["admin_x"]),
    ]
    for user in users:
        await store.insert_user(user)
    assert await store.get_user(users[0]["_id"]) == users[0]
    assert await emails(store, Compare("roles", "has", "admin")) == ["ann@example.com"]
    assert await emails(store, Compare("roles", "has", "editor")) == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert await emails(store, Compare("disabled", "ne", True)) == [
        "ann@example.com",
        "cy_x@example.com",
        "cyrus@example.com",
    ]
    # The prefix is literal: `_` and `%` match only themselves.
    assert await emails(store, Compare("email", "prefix", "cy")) == [
        "cy_x@example.com",
        "cyrus@example.com",
    ]
    assert await emails(store, Compare("email", "prefix", "cy_")) == [
        "cy_x@example.com"
    ]
    assert await emails(store, Compare("email", "prefix", "c%")) == []
    assert await emails(store, Compare("email", "prefix", ".*")) == []
    updated = await store.update_user(users[1]["_id"], {"disabled": False, "roles": []})
    assert updated["disabled"] is False and updated["roles"] == []


ENABLED_ADMINS = AllOf(
    (Compare("roles", "has", "admin"), Compare("disabled", "ne", True))
)


async def test_a_guarded_write_never_leaves_nobody_matching(store):
    ann = sample_user(1, roles=["admin"])
    bob = sample_user(2, roles=["admin"])
    for user in (ann, bob):
        await store.insert_user(user)
    await store.add_refresh_token(session_token(bob["_id"], "s1"))
    keep = ENABLED_ADMINS
    demoted = await store.update_user(ann["_id"], {"roles": []}, keep=keep)
    assert demoted["roles"] == []
    for refused in (
        store.update_user(bob["_id"], {"roles": []}, keep=keep),
        store.update_user(
            bob["_id"], {"disabled": True}, SideWrites(end_sessions=True), keep=keep
        ),
        store.delete_user(bob["_id"], keep=keep),
    ):
        with pytest.raises(LastMatchError):
            await refused
    # Nothing of the refused writes stayed: the user, their session.
    assert await store.get_user(bob["_id"]) == bob
    assert len(await store.list_sessions(bob["_id"], NOW)) == 1
    # Unguarded, or with another match left, the same writes pass.
    await store.update_user(ann["_id"], {"roles": ["admin"]})
    assert await store.delete_user(bob["_id"], keep=keep) is True


async def test_guarded_writes_at_the_same_instant_leave_one_match(store):
    if not isinstance(store, SqlStore):
        pytest.skip("MongoDB guards without a lock: best effort (see mongodb.py)")
    for _ in range(5):
        pair = [sample_user(1, roles=["admin"]), sample_user(2, roles=["admin"])]
        for user in pair:
            await store.insert_user(user)
        results = await asyncio.gather(
            store.update_user(pair[0]["_id"], {"roles": []}, keep=ENABLED_ADMINS),
            store.delete_user(pair[1]["_id"], keep=ENABLED_ADMINS),
            return_exceptions=True,
        )
        assert [type(r) for r in results].count(LastMatchError) == 1, results
        assert await store.count_users(ENABLED_ADMINS) == 1
        for user in pair:
            await store.delete_user(user["_id"])
