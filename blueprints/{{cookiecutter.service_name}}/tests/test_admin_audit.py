"""Admins and the audit trail over HTTP: an admin reads and filters every
account's events, every admin action is recorded with the admin as actor, an
admin removes a user's second factors, and the last enabled admin survives
two admins removing each other at the same instant."""

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import MailSink, Service
from helpers import LOGIN, PASSWORD, error_type, logged_in, running_service
from test_admin import (
    DELETE,
    DISABLE,
    ENABLE,
    END_SESSIONS,
    SEND_RESET,
    UPDATE,
    admin,
    admin_command,
    me_id,
    new_user,
)
from test_links import titled
from test_mail import link_in, token_of
from test_mfa import REMOVED, SECOND, challenge_of, enrolled

from {{ cookiecutter.package }}.store import AllOf, Compare, open_store

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]
#: AUTH_MAX_PAGE_SIZE of this module's service: the cap of a page of events.
PAGE_CAP = 5

EVENTS = (
    "query($userId: MongoID, $event: String, $outcome: String, $actor: String,"
    " $since: Date, $until: Date, $before: String, $limit: Int) {"
    " adminAuditEvents(userId: $userId, event: $event, outcome: $outcome, actor: $actor,"
    " since: $since, until: $until, before: $before, limit: $limit)"
    " { id at userId event actor outcome address userAgent details } }"
)
REMOVE_FACTORS = "mutation($id: MongoID!) { adminRemoveSecondFactors(_id: $id) }"
REFRESH = "mutation { refreshToken { token } }"

__all__ = ["admin"]  # the admin fixture of test_admin.py, for this module's service


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink, database: str | None
) -> Iterator[Service]:
    """A page of events is at most PAGE_CAP long."""
    env = {"AUTH_MAX_PAGE_SIZE": str(PAGE_CAP)}
    if database is not None:
        env["AUTH_DATABASE_URL"] = database
    with running_service(tmp_path_factory.mktemp("adminaudit"), smtp, **env) as running:
        yield running


def events(client: Any, **filters: Any) -> list[dict[str, Any]]:
    result = client(EVENTS, {"limit": PAGE_CAP, **filters})
    assert "errors" not in result, result
    return result["data"]["adminAuditEvents"]


def every_event(client: Any, **filters: Any) -> list[dict[str, Any]]:
    """Every page of a listing, newest first, following the cursor."""
    found: list[dict[str, Any]] = []
    while page := events(client, before=found[-1]["id"] if found else None, **filters):
        assert len(page) <= PAGE_CAP
        found += page
    return found


def summary(found: list[dict[str, Any]]) -> list[tuple[str, str, str, dict]]:
    """(event, actor, outcome, details), oldest first."""
    return [
        (e["event"], e["actor"], e["outcome"], json.loads(e["details"]))
        for e in reversed(found)
    ]


def enabled_admins(service: Service) -> int:
    """How many users hold the admin role and are not disabled, read in the database."""
    enabled = AllOf((Compare("roles", "has", "admin"), Compare("disabled", "ne", True)))

    async def count() -> int:
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            return await store.count_users(enabled)
        finally:
            await store.close()

    return asyncio.run(count())


# Reading and filtering every account's events.


def test_an_admin_reads_and_filters_every_accounts_events(service, admin):
    first, second = new_user(service.client()), new_user(service.client())
    service.client()(LOGIN, {"email": second["email"], "password": "wrong password"})
    started = events(admin, limit=1)[0]["at"]
    logged_in(service.client(), first)

    mine = every_event(admin, userId=second["_id"])
    assert [(e["event"], e["outcome"]) for e in reversed(mine)] == [
        ("register", "success"),
        ("login", "success"),
        ("login", "failure"),
    ]
    assert {e["userId"] for e in mine} == {second["_id"]}
    failed = events(admin, userId=second["_id"], outcome="failure")
    assert [e["id"] for e in failed] == [mine[0]["id"]]
    logins = every_event(admin, event="login", userId=first["_id"])
    assert len(logins) == 2 and all(e["event"] == "login" for e in logins)
    # A time window: since is inclusive, until exclusive.
    recent = every_event(admin, since=started)
    assert [e["event"] for e in recent][0] == "login"
    assert all(e["at"] >= started for e in recent)
    assert recent[-1]["at"] == started
    assert every_event(admin, until=started, userId=first["_id"]) == [
        e for e in every_event(admin, userId=first["_id"]) if e["at"] < started
    ]
    # By actor: the admin's own actions (none yet in this test), and self.
    assert all(e["actor"] == "self" for e in events(admin, actor="self"))


def test_pages_of_events_are_capped_and_follow_the_cursor(service, admin):
    for _ in range(3):
        new_user(service.client())
    result = admin(EVENTS, {"limit": 1000})["data"]["adminAuditEvents"]
    assert len(result) == PAGE_CAP
    everything = every_event(admin)
    assert everything[:PAGE_CAP] == result
    ids = [e["id"] for e in everything]
    assert ids == sorted(set(ids), reverse=True)


@pytest.mark.parametrize(
    "variables, kind",
    [
        ({"limit": 0}, "BadRequestError"),
        ({"before": "not an id"}, "BadRequestError"),
        ({"userId": "123"}, "BadRequestError"),
        ({"outcome": "maybe"}, "BadRequestError"),
        ({"since": "yesterday"}, None),  # refused by the Date type: a GraphQL error
    ],
)
def test_bad_filters_get_typed_errors(admin, variables, kind):
    result = admin(EVENTS, variables)
    assert result.get("data") in (None, {"adminAuditEvents": None})
    if kind is not None:
        assert error_type(result) == kind, result


# Every admin action is recorded, with the admin as actor.


def test_every_admin_action_is_recorded_with_the_admin_as_actor(service, admin, smtp):
    admin_id = me_id(admin)
    client = service.client()
    user = new_user(client)
    changes: dict[str, Any] = {
        "email": f"renamed-{user['email']}",
        "email_verified": True,
        "roles": ["admin"],
    }
    assert "errors" not in admin(UPDATE, {"id": user["_id"], "fields": changes})
    admin(UPDATE, {"id": user["_id"], "fields": {"roles": []}})
    admin(DISABLE, {"id": user["_id"]})
    admin(ENABLE, {"id": user["_id"]})
    admin(END_SESSIONS, {"id": user["_id"]})
    assert admin(SEND_RESET, {"id": user["_id"]}) == {
        "data": {"adminSendPasswordReset": True}
    }
    assert admin(DELETE, {"id": user["_id"]}) == {"data": {"adminDeleteUser": True}}

    by_admin = every_event(admin, userId=user["_id"], actor=admin_id)
    assert summary(by_admin) == [
        ("user_updated", admin_id, "success", {"fields": sorted(changes)}),
        ("roles_changed", admin_id, "success", {"granted": ["admin"], "revoked": []}),
        ("user_updated", admin_id, "success", {"fields": ["roles"]}),
        ("roles_changed", admin_id, "success", {"granted": [], "revoked": ["admin"]}),
        ("account_disabled", admin_id, "success", {}),
        ("account_enabled", admin_id, "success", {}),
        ("session_ended", admin_id, "success", {"sessions": "all", "count": 0}),
        ("password_reset_requested", admin_id, "success", {}),
        ("account_deleted", admin_id, "success", {}),
    ]
    # Field names only: no value, no secret, in any event of the trail.
    recorded = json.dumps(every_event(admin, userId=user["_id"]))
    reset_mail = smtp.wait_for(changes["email"])[-1]
    reset_token = token_of(link_in(reset_mail, "/form/reset/password"))
    for secret in [PASSWORD, user["token"], changes["email"], reset_token]:
        assert secret not in recorded
    assert "$argon2" not in recorded and "hash" not in recorded


def test_a_refused_admin_action_is_recorded_as_a_failure(service, admin):
    own_id = me_id(admin)
    listing = admin('{ adminUsers(role: "admin", perPage: 100) { items { _id } } }')[
        "data"
    ]["adminUsers"]["items"]
    for item in listing:
        if item["_id"] != own_id:
            admin(UPDATE, {"id": item["_id"], "fields": {"roles": []}})
    assert error_type(admin(DISABLE, {"id": own_id})) == "LastAdminError"
    [refused] = events(admin, userId=own_id, event="account_disabled", limit=1)
    assert (refused["actor"], refused["outcome"], json.loads(refused["details"])) == (
        own_id,
        "failure",
        {"reason": "last_admin"},
    )


def test_the_admin_command_is_recorded_with_the_system_as_actor(service, admin):
    user = new_user(service.client())
    assert admin_command(service, "grant", user["email"], "admin").returncode == 0
    assert admin_command(service, "revoke", user["email"], "admin").returncode == 0
    assert summary(every_event(admin, userId=user["_id"], actor="system")) == [
        ("roles_changed", "system", "success", {"granted": ["admin"], "revoked": []}),
        ("roles_changed", "system", "success", {"granted": [], "revoked": ["admin"]}),
    ]


# Removing a user's second factors.


def test_an_admin_removes_a_users_second_factors(service, admin, smtp):
    device, other_device = service.client(), service.client()
    user = new_user(device)
    enrolled(device, user)
    logged_in_elsewhere = challenge_of(other_device, user)  # waiting for a code
    assert admin(REMOVE_FACTORS, {"id": user["_id"]}) == {
        "data": {"adminRemoveSecondFactors": 1}
    }
    # The sessions ended, the pending login cannot finish, the user is told.
    assert error_type(device(REFRESH)) == "UnauthorizedError"
    late = other_device(SECOND, {"challenge": logged_in_elsewhere, "code": "000000"})
    assert "errors" in late
    [notice] = titled(smtp, user["email"], REMOVED)
    assert (
        "(all of them, by an administrator)"
        in notice.get_body(("plain",)).get_content()
    )
    # The password alone logs in now.
    login = service.client()(LOGIN, {"email": user["email"], "password": PASSWORD})
    assert "errors" not in login, login
    [event] = events(admin, userId=user["_id"], event="second_factors_removed")
    assert (event["actor"], json.loads(event["details"])) == (
        me_id(admin),
        {"factors": 1},
    )
    # Nothing left to remove: a typed error, nothing recorded.
    again = admin(REMOVE_FACTORS, {"id": user["_id"]})
    assert error_type(again) == "NoSecondFactorError"
    unknown = admin(REMOVE_FACTORS, {"id": "0" * 24})
    assert error_type(unknown) == "UserNotFoundError"
    assert len(events(admin, event="second_factors_removed", userId=user["_id"])) == 1


@pytest.mark.parametrize("caller", ["anonymous", "user"])
def test_non_admins_can_neither_read_events_nor_remove_factors(service, caller):
    target_client = service.client()
    target = new_user(target_client)
    enrolled(target_client, target)
    client = service.client()
    if caller == "user":
        new_user(client)
    assert error_type(client(EVENTS, {"userId": target["_id"]})) == "UnauthorizedError"
    refused = client(REMOVE_FACTORS, {"id": target["_id"]})
    assert error_type(refused) == "UnauthorizedError"
    # The factor is still there: the login asks for it.
    challenge_of(service.client(), target)


# The last admin under concurrency.

#: Two admins, each sending one of these against the other at the same instant.
RACES = {
    "demote": (UPDATE, {"fields": {"roles": []}}),
    "disable": (DISABLE, {}),
    "delete": (DELETE, {}),
}


def at_once(calls: list) -> list[dict]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[dict] = [{} for _ in calls]

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("race", list(RACES))
def test_two_admins_removing_each_other_at_once_leave_one(service, admin, race):
    query, variables = RACES[race]
    holder = admin  # an admin who hands the role on, then steps down
    for _ in range(6):
        pair = [service.client(), service.client()]
        users = [new_user(client) for client in pair]
        for user in users:
            admin_made = holder(
                UPDATE, {"id": user["_id"], "fields": {"roles": ["admin"]}}
            )
            assert "errors" not in admin_made, admin_made
        stepped_down = holder(UPDATE, {"id": me_id(holder), "fields": {"roles": []}})
        assert "errors" not in stepped_down, stepped_down
        for client, user in zip(pair, users):
            logged_in(client, user)
        assert enabled_admins(service) == 2
        results = at_once(
            [
                lambda: pair[0](query, {"id": users[1]["_id"], **variables}),
                lambda: pair[1](query, {"id": users[0]["_id"], **variables}),
            ]
        )
        remaining = enabled_admins(service)
        if remaining == 0:  # put an admin back for the tests after this one
            admin_command(service, "grant", admin.fields["email"], "admin")
        assert remaining == 1, results
        refused = [error_type(r) for r in results if "errors" in r]
        # The loser was refused by the guard, or had already lost the role.
        assert len(refused) == 1 and refused[0] in (
            "LastAdminError",
            "UnauthorizedError",
            "AccountDisabledError",
        ), results
        holder = pair[0] if "errors" not in results[0] else pair[1]
    # The module's admin gets the role back from the last holder, who steps down.
    restored = holder(UPDATE, {"id": me_id(admin), "fields": {"roles": ["admin"]}})
    assert "errors" not in restored, restored
    holder(UPDATE, {"id": me_id(holder), "fields": {"roles": []}})
