"""The store contract of second factors (FactorStore), on every adapter of test_store."""

import datetime as dt

import pytest
from sample import sample_user
import test_store

from {{ cookiecutter.package }}.store import new_id

pytestmark = pytest.mark.anyio

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# The adapters of the store contract (test_store.py), each on a fresh database.
anyio_backend = test_store.anyio_backend
opener = test_store.opener
store = test_store.store


def factor(user_id: str, **overrides: object) -> dict[str, object]:
    return {
        "user_id": user_id,
        "secret": "encrypted secret",
        "confirmed": False,
        "last_step": 0,
        "recovery": "",
        "created_at": NOW,
        **overrides,
    }


async def test_factor_round_trip_and_replace(store):
    user_id = new_id()
    assert await store.get_factor(user_id) is None
    await store.put_factor(factor(user_id))
    assert await store.get_factor(user_id) == factor(user_id)
    await store.put_factor(factor(user_id, secret="another", confirmed=True))
    assert await store.get_factor(user_id) == factor(
        user_id, secret="another", confirmed=True
    )


async def test_update_factor_is_conditional(store):
    """A step or a recovery code is accepted by one write only."""
    user_id = new_id()
    await store.put_factor(factor(user_id, confirmed=True, recovery="a b"))
    assert await store.update_factor(user_id, {"last_step": 7}, {"last_step": 0})
    assert not await store.update_factor(user_id, {"last_step": 7}, {"last_step": 0})
    assert await store.update_factor(user_id, {"recovery": "b"}, {"recovery": "a b"})
    assert not await store.update_factor(
        user_id, {"recovery": "b"}, {"recovery": "a b"}
    )
    assert not await store.update_factor(new_id(), {"last_step": 1}, {"last_step": 0})
    assert await store.get_factor(user_id) == factor(
        user_id, confirmed=True, last_step=7, recovery="b"
    )


async def test_delete_factor(store):
    user_id = new_id()
    await store.put_factor(factor(user_id))
    assert await store.delete_factor(user_id) is True
    assert await store.get_factor(user_id) is None
    assert await store.delete_factor(user_id) is False


async def test_delete_user_removes_their_factor(store):
    user = sample_user(1)
    await store.insert_user(user)
    await store.put_factor(factor(user["_id"]))
    await store.delete_user(user["_id"])
    assert await store.get_factor(user["_id"]) is None


async def test_delete_factors_removes_every_factor_of_the_user_only(store):
    user_id, other_id = new_id(), new_id()
    for owner in (user_id, other_id):
        await store.put_factor(factor(owner))
    assert await store.delete_factors(user_id) == 1
    assert await store.get_factor(user_id) is None
    assert await store.delete_factors(user_id) == 0
    assert await store.get_factor(other_id) is not None
