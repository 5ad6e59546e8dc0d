"""The store contract of passkeys (PasskeyStore) and of the ceremonies'
challenges (one-time tokens read in place), on every adapter of test_store."""

import datetime as dt

import pytest
from sample import sample_user
import test_store
from test_store_factors import factor

from {{ cookiecutter.package }}.store import SideWrites, new_id

pytestmark = pytest.mark.anyio

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# The adapters of the store contract (test_store.py), each on a fresh database.
anyio_backend = test_store.anyio_backend
opener = test_store.opener
store = test_store.store


def passkey(user_id: str, credential_id: str, **overrides: object) -> dict[str, object]:
    return {
        "credential_id": credential_id,
        "user_id": user_id,
        "name": "Laptop",
        "public_key": "pQECAyYgASFYIA",
        "sign_count": 0,
        "transports": ["internal", "hybrid"],
        "backed_up": False,
        "created_at": NOW,
        "last_used_at": None,
        **overrides,
    }


async def test_passkeys_round_trip(store):
    user_id = new_id()
    assert await store.list_passkeys(user_id) == []
    first = passkey(user_id, "A" * 1364)  # the longest credential id WebAuthn allows
    second = passkey(user_id, "b", created_at=NOW + dt.timedelta(seconds=1))
    assert await store.add_passkey(second)
    assert await store.add_passkey(first)
    assert await store.get_passkey("A" * 1364) == first
    assert await store.list_passkeys(user_id) == [first, second]
    assert await store.get_passkey("c") is None


async def test_a_credential_id_is_registered_once(store):
    assert await store.add_passkey(passkey(new_id(), "same"))
    assert not await store.add_passkey(passkey(new_id(), "same"))


async def test_the_sign_counter_moves_once(store):
    user_id = new_id()
    await store.add_passkey(passkey(user_id, "k", sign_count=4))
    used = {"sign_count": 5, "last_used_at": NOW}
    assert await store.update_passkey("k", used, {"sign_count": 4})
    assert not await store.update_passkey("k", used, {"sign_count": 4})
    assert await store.get_passkey("k") == passkey(
        user_id, "k", sign_count=5, last_used_at=NOW
    )


async def test_delete_passkey_is_the_owners(store):
    owner, other = new_id(), new_id()
    await store.add_passkey(passkey(owner, "k"))
    assert not await store.delete_passkey(other, "k")
    assert await store.delete_passkey(owner, "k")
    assert await store.get_passkey("k") is None
    assert not await store.delete_passkey(owner, "k")


async def test_delete_factors_removes_totp_and_passkeys(store):
    """An admin's reset: every second factor of one user, nobody else's."""
    user_id, other = new_id(), new_id()
    await store.put_factor(factor(user_id, confirmed=True))
    await store.add_passkey(passkey(user_id, "k1"))
    await store.add_passkey(passkey(user_id, "k2"))
    await store.add_passkey(passkey(other, "k3"))
    assert await store.delete_factors(user_id) == 3
    assert await store.get_factor(user_id) is None
    assert await store.list_passkeys(user_id) == []
    assert [key["credential_id"] for key in await store.list_passkeys(other)] == ["k3"]
    assert await store.delete_factors(user_id) == 0


async def test_delete_factor_removes_the_totp_only(store):
    """disableTotp: the user's passkeys stay."""
    user_id = new_id()
    await store.put_factor(factor(user_id, confirmed=True))
    await store.add_passkey(passkey(user_id, "k"))
    assert await store.delete_factor(user_id)
    assert await store.get_factor(user_id) is None
    assert [key["credential_id"] for key in await store.list_passkeys(user_id)] == ["k"]


async def test_delete_user_removes_their_passkeys(store):
    user = sample_user(1)
    await store.insert_user(user)
    await store.add_passkey(passkey(user["_id"], "k"))
    await store.delete_user(user["_id"])
    assert await store.get_passkey("k") is None


async def test_a_token_is_read_in_place(store):
    """A passkey login's options read the MFA challenge without using it up."""
    token = {
        "token_hash": "h" * 64,
        "user_id": "",
        "purpose": "passkey_login",
        "email": None,
        # From now, not from the module's import: a long run outlives that.
        "expires_at": dt.datetime.now(dt.UTC).replace(microsecond=0)
        + dt.timedelta(minutes=5),
    }
    await store.add_side_writes(SideWrites(tokens=[token]))
    assert await store.get_user_token("h" * 64, "mfa_login") is None
    assert await store.get_user_token("h" * 64, "passkey_login") == token
    assert await store.consume_user_token("h" * 64, "passkey_login") == token
    assert await store.get_user_token("h" * 64, "passkey_login") is None
