"""The store contract of sessions' details and the audit trail, on every
adapter (the fixtures of test_store.py: SQLite, PostgreSQL, mongomock, and a
real MongoDB when AUTH_TEST_MONGODB_URL is set)."""

import datetime as dt
import uuid
from typing import Any

import pytest
import test_store

from {{ cookiecutter.package }}.mail import outbox_record
from {{ cookiecutter.package }}.store import Rotation, new_id

pytestmark = pytest.mark.anyio

# The contract's fixtures: a store on each adapter, as test_store.py opens them.
anyio_backend, opener, store = (
    test_store.anyio_backend,
    test_store.opener,
    test_store.store,
)
NOW = test_store.NOW


def session_token(
    user_id: str,
    session_id: str,
    expires_at: dt.datetime = NOW + dt.timedelta(hours=1),
    **details: Any,
) -> dict[str, Any]:
    return {
        "token_hash": uuid.uuid4().hex * 2,
        "session_id": session_id,
        "user_id": user_id,
        "expires_at": expires_at,
        "created_at": NOW - dt.timedelta(hours=1),
        "last_used_at": NOW - dt.timedelta(hours=1),
        "address": "192.0.2.1",
        "user_agent": "Laptop",
        **details,
    }


async def test_a_rotation_keeps_the_sessions_start_and_records_its_use(store):
    first = session_token("u1", "s1")
    await store.add_refresh_token(first)
    second = {
        "token_hash": uuid.uuid4().hex * 2,
        "expires_at": NOW + dt.timedelta(hours=2),
        "last_used_at": NOW,
        "address": "198.51.100.7",
        "user_agent": "Laptop 2",
    }
    assert (await store.rotate_refresh_token(first["token_hash"], second, NOW))[
        0
    ] is Rotation.ROTATED
    [live] = await store.list_sessions("u1", NOW)
    assert {key: live[key] for key in second} == second
    assert (live["session_id"], live["created_at"]) == ("s1", first["created_at"])
    # The rotated token is listed only as the request's own.
    listed = await store.list_sessions("u1", NOW, current=first["token_hash"])
    assert sorted(r["token_hash"] for r in listed) == sorted(
        [first["token_hash"], second["token_hash"]]
    )


async def test_list_sessions_shows_the_users_live_ones_only(store):
    mine = session_token("u1", "s1")
    await store.add_refresh_token(mine)
    await store.add_refresh_token(
        session_token("u1", "s2", expires_at=NOW - dt.timedelta(seconds=1))
    )
    theirs = session_token("u2", "s3")
    await store.add_refresh_token(theirs)
    assert [r["session_id"] for r in await store.list_sessions("u1", NOW)] == ["s1"]
    assert [
        r["session_id"]
        for r in await store.list_sessions("u1", NOW, current=theirs["token_hash"])
    ] == ["s1"]


async def test_records_of_an_older_generation_list_without_details(store):
    await store.add_refresh_token(
        {
            "token_hash": "a" * 64,
            "session_id": "s1",
            "user_id": "u1",
            "expires_at": NOW + dt.timedelta(hours=1),
        }
    )
    [live] = await store.list_sessions("u1", NOW)
    assert (live["created_at"], live["address"], live["user_agent"]) == (
        None,
        None,
        None,
    )


async def test_end_user_session_ends_only_the_users_own(store):
    for user, session in (("u1", "s1"), ("u1", "s2"), ("u2", "s3")):
        await store.add_refresh_token(session_token(user, session))
    assert await store.end_user_session("u1", "s3") is False
    assert await store.end_user_session("u1", "s1") is True
    assert await store.end_user_session("u1", "s1") is False
    assert [r["session_id"] for r in await store.list_sessions("u1", NOW)] == ["s2"]
    assert [r["session_id"] for r in await store.list_sessions("u2", NOW)] == ["s3"]


async def test_end_user_sessions_may_keep_one(store):
    for session in ("s1", "s2", "s3"):
        await store.add_refresh_token(session_token("u1", session))
    assert await store.end_user_sessions("u1", keep="s2") == 2
    assert [r["session_id"] for r in await store.list_sessions("u1", NOW)] == ["s2"]


def audit_event(user_id: str | None, event: str = "login", **values: Any) -> dict:
    return {
        "_id": new_id(),
        "at": NOW,
        "event": event,
        "user_id": user_id,
        "actor": "self",
        "address": "192.0.2.1",
        "user_agent": "Laptop",
        "outcome": "success",
        "details": {"session_id": "s1", "count": 2},
        **values,
    }


async def test_audit_events_round_trip_newest_first(store):
    events = [audit_event("u1"), audit_event("u2"), audit_event("u1", "logout")]
    for event in events:
        await store.add_audit_event(event)
    assert await store.list_audit_events("u1") == [events[2], events[0]]
    assert await store.list_audit_events() == events[::-1]
    assert await store.list_audit_events("u1", limit=1) == [events[2]]
    assert await store.list_audit_events("u1", before=events[2]["_id"]) == [events[0]]
    assert await store.list_audit_events(events=["logout"]) == [events[2]]
    assert await store.list_audit_events("u3") == []
    assert await store.list_audit_events(limit=0) == []


async def test_an_event_is_written_with_its_deliveries(store):
    event = audit_event(None, outcome="failure")
    delivery = outbox_record("https://hooks.example.org/a", "webhook", {"id": "x"})
    await store.add_audit_event(event, [delivery])
    assert (await store.get_mail(delivery["_id"]))["context"] == {"id": "x"}
    assert (await store.list_audit_events())[0]["user_id"] is None


async def test_purge_forgets_events_older_than_the_retention(store):
    old = audit_event("u1", at=NOW - dt.timedelta(days=91))
    recent = audit_event("u1", at=NOW - dt.timedelta(days=89))
    for event in (old, recent):
        await store.add_audit_event(event)
    await store.purge_expired(NOW, NOW, NOW)
    assert len(await store.list_audit_events()) == 2  # no retention given
    await store.purge_expired(NOW, NOW, NOW, audit_before=NOW - dt.timedelta(days=90))
    assert await store.list_audit_events() == [recent]
