"""The store contract of sessions' details and the audit trail, on every
adapter (the fixtures of test_store.py: SQLite, PostgreSQL, mongomock, and a
real MongoDB when AUTH_TEST_MONGODB_URL is set)."""

import datetime as dt
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
import test_store
from conftest import SOURCE
from sqlalchemy import inspect

from {{ cookiecutter.package }}.mail import outbox_record
from {{ cookiecutter.package }}.store import Rotation, timed_id
from {{ cookiecutter.package }}.store.sql import SqlStore

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
        "_id": timed_id(values.get("at", NOW)),
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


async def test_events_of_several_processes_list_in_the_order_they_happened(store):
    """Two workers (or a worker and the admin command) writing in one second:
    the listing is in the order of the events' times, whichever process
    wrote them (ObjectIds would group them by process within the second)."""
    start = NOW.replace(microsecond=0)
    moments = [start + dt.timedelta(milliseconds=n) for n in range(6)]
    make_ids = (
        "import sys, datetime as d; from {{ cookiecutter.package }}.store import timed_id;"
        " print(*(timed_id(d.datetime.fromisoformat(a)) for a in sys.argv[1:]))"
    )
    events = [audit_event("u1", at=moment) for moment in moments]
    for worker in (0, 1):
        made = subprocess.run(
            [
                sys.executable,
                "-c",
                make_ids,
                *(m.isoformat() for m in moments[worker::2]),
            ],
            env={**os.environ, "PYTHONPATH": str(SOURCE)},
            capture_output=True,
            text=True,
            check=True,
        )
        for event, _id in zip(events[worker::2], made.stdout.split(), strict=True):
            event["_id"] = _id
    for event in events[::2] + events[1::2]:
        await store.add_audit_event(event)
    assert await store.list_audit_events("u1") == events[::-1]
    assert await store.list_audit_events(since=moments[2], until=moments[4]) == [
        events[3],
        events[2],
    ]


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


async def test_audit_events_filter_by_actor_outcome_and_time(store):
    second = dt.timedelta(seconds=1)
    events = [
        audit_event("u1", at=NOW - 3 * second),
        audit_event("u1", "user_updated", actor="a1", at=NOW - second),
        audit_event("u2", outcome="failure", at=NOW),
        audit_event("u2", "account_disabled", actor="a1", outcome="failure", at=NOW),
    ]
    for event in events:
        await store.add_audit_event(event)
    assert await store.list_audit_events(actor="a1") == [events[3], events[1]]
    assert await store.list_audit_events(outcome="failure") == [events[3], events[2]]
    assert await store.list_audit_events("u2", outcome="failure", actor="a1") == [
        events[3]
    ]
    # `since` inclusive, `until` exclusive, to the microsecond (or MongoDB's millisecond).
    assert await store.list_audit_events(since=NOW - second) == events[:0:-1]
    assert await store.list_audit_events(until=NOW - second) == [events[0]]
    assert await store.list_audit_events(
        since=NOW - 2 * second, until=NOW, actor="a1"
    ) == [events[1]]
    assert await store.list_audit_events(since=NOW, before=events[3]["_id"]) == [
        events[2]
    ]


async def test_every_audit_filter_has_its_index(store):
    """(field, _id) for each filter: a listing walks one index newest first,
    whatever the filter; a database of an older generation gets them at start."""
    expected = {
        f"ix_audit_events_{key}" for key in ("user_id", "event", "actor", "outcome")
    }
    if isinstance(store, SqlStore):
        await test_store.execute_sql(store, 'DROP INDEX "ix_audit_events_actor"')
        await store.open()

        async def indexes() -> set[str]:
            async with store.engine.connect() as connection:
                found = await connection.run_sync(
                    lambda sync: inspect(sync).get_indexes("audit_events")
                )
            return {index["name"] for index in found}

        assert expected <= await indexes()
    else:
        assert expected <= set(await store.audit_events.index_information())
