"""A user's own sessions over HTTP: listed with their details, ended one by
one, all others, or all; an ended device's refresh cookie is refused at once."""

import datetime as dt

import httpx
from conftest import Service
from helpers import REFRESH, error_type, logged_in, post, registered

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]

MY_SESSIONS = "{ mySessions { id createdAt lastUsedAt address userAgent current } }"
END_SESSION = "mutation($id: String!) { endSession(id: $id) }"
END_OTHER_SESSIONS = "mutation { endOtherSessions }"
LOGOUT_EVERYWHERE = "mutation { logoutEverywhere }"


def device(service: Service, user_agent: str):
    """A client that sends its own User-Agent, as a browser on one device does."""
    client = service.client()
    client.http.headers["user-agent"] = user_agent
    return client


def refresh_with(service: Service, cookie: str) -> dict:
    return post(service.url, REFRESH, cookie=f"refreshToken={cookie}").json()


def test_sessions_are_listed_with_their_details(service):
    laptop, phone = device(service, "Laptop/1.0"), device(service, "Phone/2.0")
    fields = registered(laptop)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    logged_in(laptop, fields)
    logged_in(phone, fields)
    assert "errors" not in phone(REFRESH)

    result = laptop(MY_SESSIONS)
    assert "errors" not in result, result
    sessions = result["data"]["mySessions"]
    assert [s["userAgent"] for s in sessions] == ["Phone/2.0", "Laptop/1.0"]
    assert [s["current"] for s in sessions] == [False, True]
    for session in sessions:
        assert session["address"] == "127.0.0.1"
        created = dt.datetime.fromisoformat(session["createdAt"])
        last_used = dt.datetime.fromisoformat(session["lastUsedAt"])
        assert before <= created <= last_used
    # The phone's refresh moved its last use, not its start.
    phone_session = sessions[0]
    assert phone_session["lastUsedAt"] > phone_session["createdAt"]
    assert phone(MY_SESSIONS)["data"]["mySessions"][0]["current"] is True


def test_a_long_user_agent_is_cut(service):
    client = device(service, "A" * 5000)
    logged_in(client, registered(client))
    [session] = client(MY_SESSIONS)["data"]["mySessions"]
    assert session["userAgent"] == "A" * 256


def test_ending_a_session_refuses_its_refresh_at_once(service):
    laptop, phone = device(service, "Laptop"), device(service, "Phone")
    fields = registered(laptop)
    logged_in(laptop, fields)
    logged_in(phone, fields)
    phone_cookie = phone.http.cookies.get("refreshToken")
    phone_id = next(
        s["id"] for s in laptop(MY_SESSIONS)["data"]["mySessions"] if not s["current"]
    )
    assert laptop(END_SESSION, {"id": phone_id}) == {"data": {"endSession": True}}
    assert error_type(refresh_with(service, phone_cookie)) == "UnauthorizedError"
    assert [s["userAgent"] for s in laptop(MY_SESSIONS)["data"]["mySessions"]] == [
        "Laptop"
    ]
    assert laptop(END_SESSION, {"id": phone_id}) == {"data": {"endSession": False}}
    assert "errors" not in laptop(REFRESH)


def test_a_user_cannot_end_another_users_session(service):
    mine, theirs = service.client(), service.client()
    logged_in(mine, registered(mine))
    logged_in(theirs, registered(theirs))
    [their_session] = theirs(MY_SESSIONS)["data"]["mySessions"]
    assert mine(END_SESSION, {"id": their_session["id"]}) == {
        "data": {"endSession": False}
    }
    assert "errors" not in theirs(REFRESH)


def test_ending_the_current_session_clears_its_cookie(service):
    client = service.client()
    logged_in(client, registered(client))
    [session] = client(MY_SESSIONS)["data"]["mySessions"]
    response = client.http.post(
        "/graphql",
        json={"query": END_SESSION, "variables": {"id": session["id"]}},
        headers={"authorization": f"Bearer {client.token}"},
    )
    assert response.json() == {"data": {"endSession": True}}
    assert 'refreshToken=""' in response.headers["set-cookie"]
    assert error_type(client(REFRESH)) == "UnauthorizedError"


def test_end_other_sessions_keeps_this_one(service):
    laptop, phone, tablet = (device(service, name) for name in ("L", "P", "T"))
    fields = registered(laptop)
    for client in (laptop, phone, tablet):
        logged_in(client, fields)
    cookies = [c.http.cookies.get("refreshToken") for c in (phone, tablet)]
    assert laptop(END_OTHER_SESSIONS) == {"data": {"endOtherSessions": True}}
    for cookie in cookies:
        assert error_type(refresh_with(service, cookie)) == "UnauthorizedError"
    assert "errors" not in laptop(REFRESH)
    assert [s["userAgent"] for s in laptop(MY_SESSIONS)["data"]["mySessions"]] == ["L"]


def test_end_other_sessions_needs_this_sessions_cookie(service):
    client = service.client()
    logged_in(client, registered(client))
    result = post(
        service.url, END_OTHER_SESSIONS, authorization=f"Bearer {client.token}"
    ).json()
    assert error_type(result) == "UnauthorizedError"
    assert "errors" not in client(REFRESH)


def test_logout_everywhere_ends_every_session(service):
    laptop, phone = service.client(), service.client()
    fields = registered(laptop)
    logged_in(laptop, fields)
    logged_in(phone, fields)
    cookies = [c.http.cookies.get("refreshToken") for c in (laptop, phone)]
    assert laptop(LOGOUT_EVERYWHERE) == {"data": {"logoutEverywhere": True}}
    for cookie in cookies:
        assert error_type(refresh_with(service, cookie)) == "UnauthorizedError"
    assert laptop(MY_SESSIONS) == {"data": {"mySessions": []}}


def test_sessions_need_an_auth_token(service):
    for query, variables in (
        (MY_SESSIONS, None),
        (END_SESSION, {"id": "x"}),
        (END_OTHER_SESSIONS, None),
        (LOGOUT_EVERYWHERE, None),
    ):
        result = httpx.post(
            f"{service.url}/graphql", json={"query": query, "variables": variables}
        ).json()
        assert error_type(result) == "UnauthorizedError", query
