"""The store conditions the admin API adds (a list holding a role, an email
prefix) and the built-in roles and disabled fields, on every store."""

import pytest
import test_store
from sample import sample_user

from {{ cookiecutter.package }}.store import AllOf, Compare, UserQuery

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
