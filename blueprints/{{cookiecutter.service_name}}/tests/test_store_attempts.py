"""The attempts primitive of the store (rate limits shared by every worker),
and the purge of old records, on every adapter."""

import asyncio
import datetime as dt

import pytest
from test_store import NOW, opener, store  # noqa: F401  (fixtures)

from {{ cookiecutter.package }}.mail import outbox_record
from {{ cookiecutter.package }}.store import SideWrites

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_attempts_are_counted_per_key_and_since_a_moment(store):
    first = await store.add_attempt(["pair:a", "account:a"], NOW)
    await store.add_attempt(["pair:a", "account:a"], NOW + dt.timedelta(minutes=1))
    await store.add_attempt(["pair:b", "account:a"], NOW + dt.timedelta(minutes=2))
    assert await store.count_attempts("account:a", NOW - dt.timedelta(seconds=1)) == 3
    assert await store.count_attempts("account:a", NOW) == 2
    assert await store.count_attempts("pair:a", NOW - dt.timedelta(seconds=1)) == 2
    assert await store.count_attempts("pair:c", NOW - dt.timedelta(seconds=1)) == 0
    await store.forget_attempt(first)
    assert await store.count_attempts("account:a", NOW - dt.timedelta(seconds=1)) == 2
    assert await store.count_attempts("pair:a", NOW - dt.timedelta(seconds=1)) == 1


async def test_simultaneous_attempts_each_see_their_own_record(store):
    """Record first, count after: of 20 attempts at once, each counts itself and
    at most `limit` of them can see a count within a limit."""

    async def attempt() -> int:
        await store.add_attempt(["burst"], NOW)
        return await store.count_attempts("burst", NOW - dt.timedelta(seconds=1))

    counts = await asyncio.gather(*(attempt() for _ in range(20)))
    assert all(count >= 1 for count in counts)
    assert sum(count <= 5 for count in counts) <= 5
    assert await store.count_attempts("burst", NOW - dt.timedelta(seconds=1)) == 20


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
    await store.purge_expired(NOW, NOW - dt.timedelta(hours=1), NOW - dt.timedelta(days=7))
    assert await store.count_attempts("old", NOW - dt.timedelta(days=1)) == 1
    assert await store.count_attempts("new", NOW - dt.timedelta(days=1)) == 1
    assert [mail["_id"] for mail in await store.list_mails()] == sorted([pending["_id"], recent["_id"]])
