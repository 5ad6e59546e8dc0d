"""Roles and the admin API over HTTP: the admin command, the roles claim, every
admin operation and its refusals, disabled accounts, login by other fields."""

import subprocess
import sys
import uuid

import jwt
import pytest
from helpers import (
    DELETE_ME,
    LOGIN,
    ME,
    PASSWORD,
    REFRESH,
    REGISTER,
    UPDATE_ME,
    error_type,
    logged_in,
    registered,
    registration,
    sample_value,
)

from {{ cookiecutter.package }}.models import FIELDS, LOGIN_FIELDS, ROLES

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]

ADMIN_SELECTION = "_id email email_verified roles disabled created_at " + " ".join(
    FIELDS
)
USERS = (
    "query($filter: AdminUserFilterInput, $emailPrefix: String, $role: String,"
    " $page: Int, $perPage: Int, $sort: AdminUserSortInput) {"
    " adminUsers(filter: $filter, emailPrefix: $emailPrefix, role: $role, page: $page,"
    " perPage: $perPage, sort: $sort) { count items { " + ADMIN_SELECTION + " }"
    " pageInfo { currentPage perPage pageCount hasNextPage } } }"
)
USER = "query($id: MongoID!) { adminUser(_id: $id) { " + ADMIN_SELECTION + " } }"
UPDATE = (
    "mutation($id: MongoID!, $fields: AdminUserUpdateInput!) {"
    " adminUpdateUser(_id: $id, fields: $fields) { " + ADMIN_SELECTION + " } }"
)
DISABLE = "mutation($id: MongoID!) { adminDisableUser(_id: $id) { _id disabled } }"
ENABLE = "mutation($id: MongoID!) { adminEnableUser(_id: $id) { _id disabled } }"
DELETE = "mutation($id: MongoID!) { adminDeleteUser(_id: $id) }"
END_SESSIONS = "mutation($id: MongoID!) { adminEndSessions(_id: $id) }"
SEND_RESET = "mutation($id: MongoID!) { adminSendPasswordReset(_id: $id) }"
#: Every admin operation, with variables that would be valid for an admin.
OPERATIONS = [
    (USERS, {}),
    (USER, {}),
    (UPDATE, {"fields": {"email_verified": True}}),
    (DISABLE, {}),
    (ENABLE, {}),
    (DELETE, {}),
    (END_SESSIONS, {}),
    (SEND_RESET, {}),
]


def admin_command(service, *args: str) -> subprocess.CompletedProcess:
    """`python -m {{ cookiecutter.package }} admin ARGS` on the service's database."""
    return subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package }}", "admin", *args],
        cwd=service.folder,
        env=service.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def new_user(client) -> dict:
    """A registered, logged-in user: its fields, _id and token."""
    fields = registered(client)
    login = logged_in(client, fields)
    return {**fields, "_id": login["user"]["_id"], "token": login["token"]}


@pytest.fixture(scope="module")
def admin(service):
    """A client logged in as a user made admin with the command (one per module:
    the command starts a process)."""
    client = service.client()
    fields = registered(client)
    result = admin_command(service, "grant", fields["email"], "admin")
    assert result.returncode == 0, result.stderr
    logged_in(client, fields)
    client.fields = fields
    return client


def me_id(client) -> str:
    return client(ME)["data"]["me"]["_id"]


def private_field():
    """A private single-valued field an equality filter can match, if any."""
    return next(
        (
            field
            for field in FIELDS.values()
            if not field.public
            and not field.list
            and field.type in ("string", "int", "float", "boolean")
            and not field.format
        ),
        None,
    )


# The admin command and the roles claim.


def test_the_admin_command_grants_lists_and_revokes_roles(service, client):
    fields = registered(client)
    email = fields["email"]
    granted = admin_command(service, "grant", email.upper(), "admin")
    assert granted.returncode == 0 and "admin" in granted.stdout
    assert f"{email} admin" in admin_command(service, "list").stdout
    logged_in(client, fields)
    assert client(ME)["data"]["me"]["roles"] == ["admin"]
    other = registered(client)
    assert admin_command(service, "grant", other["email"], "admin").returncode == 0
    revoked = admin_command(service, "revoke", other["email"], "admin")
    assert revoked.returncode == 0
    assert other["email"] not in admin_command(service, "list").stdout


def test_the_admin_command_names_an_unknown_email_or_role(service, client):
    unknown = admin_command(service, "grant", "nobody@example.org", "admin")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "{{ cookiecutter.package }} admin: no user has the email 'nobody@example.org'"
    ]
    fields = registered(client)
    bad_role = admin_command(service, "grant", fields["email"], "emperor")
    assert bad_role.returncode == 1
    assert len(bad_role.stderr.strip().splitlines()) == 1
    assert "unknown role 'emperor'" in bad_role.stderr
    assert ", ".join(ROLES) in bad_role.stderr


def test_the_roles_claim_verifies_with_the_jwks(service, admin):
    token = admin.token
    key = jwt.PyJWKClient(
        f"{service.url}/.well-known/jwks.json"
    ).get_signing_key_from_jwt(token)
    assert jwt.decode(token, key.key, algorithms=["RS256"])["roles"] == ["admin"]
    user = new_user(service.client())
    assert jwt.decode(user["token"], key.key, algorithms=["RS256"])["roles"] == []


# Refusals.


@pytest.mark.parametrize("caller", ["anonymous", "user"])
def test_every_admin_operation_is_refused_to_non_admins(service, caller):
    target = new_user(service.client())
    client = service.client()
    if caller == "user":
        new_user(client)
    for query, variables in OPERATIONS:
        result = client(query, {"id": target["_id"], **variables})
        assert error_type(result) == "UnauthorizedError", (query, result)
    # Nothing changed: the target still logs in, unchanged.
    login = service.client()(LOGIN, {"email": target["email"], "password": PASSWORD})
    assert login["data"]["login"]["user"]["email_verified"] is False


def test_roles_cannot_be_set_through_register_or_update_me(client):
    fields = registration()
    result = client(REGISTER, {"fields": {**fields, "roles": ["admin"]}})
    assert "errors" in result and result["data"] is None
    assert client(REGISTER, {"fields": fields})["data"]["register"] is True
    logged_in(client, fields)
    result = client(UPDATE_ME, {"fields": {"roles": ["admin"]}})
    assert "errors" in result and result["data"] is None
    assert client(ME)["data"]["me"]["roles"] == []


def test_a_revoked_admin_is_refused_with_a_live_token(service, admin):
    client = service.client()
    other = new_user(client)
    admin(UPDATE, {"id": other["_id"], "fields": {"roles": ["admin"]}})
    logged_in(client, other)  # a token with the roles claim
    assert "errors" not in client(USERS)
    # The token still claims the role; the stored user no longer has it.
    admin(UPDATE, {"id": other["_id"], "fields": {"roles": []}})
    assert jwt.decode(client.token, options={"verify_signature": False})["roles"] == [
        "admin"
    ]
    assert error_type(client(USERS)) == "UnauthorizedError"


# Listing and searching.


def test_an_admin_lists_and_searches_users_over_every_field(service, admin):
    prefix = f"find{uuid.uuid4().hex[:8]}"
    found = [new_user(service.client()) for _ in range(3)]
    for index, user in enumerate(found):
        email = f"{prefix}.{index}@example.org"
        result = admin(UPDATE, {"id": user["_id"], "fields": {"email": email}})
        assert result["data"]["adminUpdateUser"]["email"] == email
        user["email"] = email
    # A case-insensitive email prefix, sorted, a page at a time.
    result = admin(
        USERS, {"emailPrefix": prefix.upper(), "perPage": 2, "sort": "EMAIL_DESC"}
    )["data"]["adminUsers"]
    assert result["count"] == 3
    assert [item["email"] for item in result["items"]] == [
        f"{prefix}.2@example.org",
        f"{prefix}.1@example.org",
    ]
    assert result["pageInfo"]["hasNextPage"] is True
    # Every field is shown, the password never.
    item = result["items"][0]
    assert item["roles"] == [] and item["disabled"] is False and item["created_at"]
    # Filters on private fields and email, with operators and groups.
    field = private_field()
    if field is not None:
        value = sample_value(field, 7)
        admin(UPDATE, {"id": found[1]["_id"], "fields": {field.name: value}})
        result = admin(USERS, {"emailPrefix": prefix, "filter": {field.name: value}})[
            "data"
        ]["adminUsers"]
        assert [item["_id"] for item in result["items"]] == [found[1]["_id"]]
    result = admin(
        USERS,
        {
            "filter": {
                "OR": [{"email": found[0]["email"]}, {"email": found[2]["email"]}],
                "_operators": {"email": {"ne": found[2]["email"]}},
            }
        },
    )["data"]["adminUsers"]
    assert [item["_id"] for item in result["items"]] == [found[0]["_id"]]
    # By role.
    result = admin(USERS, {"role": "admin", "perPage": 100})["data"]["adminUsers"]
    assert me_id(admin) in [item["_id"] for item in result["items"]]
    assert all("admin" in item["roles"] for item in result["items"])


def test_a_bad_search_gets_a_typed_error(admin):
    result = admin(USERS, {"sort": "PASSWORD_ASC"})
    assert "errors" in result and result["data"] is None
    result = admin(USERS, {"perPage": 0})
    assert error_type(result) == "BadRequestError"
    result = admin(USER, {"id": "0" * 24})
    assert error_type(result) == "UserNotFoundError"


# Reading and changing one user.


def test_an_admin_reads_and_updates_any_field(service, admin):
    user = new_user(service.client())
    shown = admin(USER, {"id": user["_id"]})["data"]["adminUser"]
    assert shown["email"] == user["email"] and shown["roles"] == []
    changes = {"email_verified": True, "roles": ["admin", ROLES[-1]]}
    field = private_field()
    if field is not None:
        changes[field.name] = sample_value(field, 11)
    updated = admin(UPDATE, {"id": user["_id"], "fields": changes})
    assert "errors" not in updated, updated
    updated = updated["data"]["adminUpdateUser"]
    assert updated["email_verified"] is True
    assert updated["roles"] == list(dict.fromkeys(["admin", ROLES[-1]]))
    if field is not None:
        assert updated[field.name] == changes[field.name]
    # The user sees the change, and their next token carries the roles.
    client = service.client()
    login = logged_in(client, user)
    assert login["user"]["roles"] == updated["roles"]
    assert (
        jwt.decode(login["token"], options={"verify_signature": False})["roles"]
        == updated["roles"]
    )


def test_admin_updates_are_validated(service, admin):
    user = new_user(service.client())
    result = admin(UPDATE, {"id": user["_id"], "fields": {"roles": ["emperor"]}})
    assert error_type(result) == "UserValidationError"
    assert "emperor" in result["errors"][0]["message"]
    result = admin(UPDATE, {"id": user["_id"], "fields": {"email": "not an email"}})
    assert error_type(result) == "UserValidationError"
    taken = admin(
        UPDATE, {"id": user["_id"], "fields": {"email": admin.fields["email"]}}
    )
    assert error_type(taken) == "EmailAlreadyExistsError"
    required = next((f for f in FIELDS.values() if f.required), None)
    if required is not None:
        result = admin(UPDATE, {"id": user["_id"], "fields": {required.name: None}})
        assert error_type(result) == "UserValidationError"


# Disabling, deleting, ending sessions, reset mails.


def test_a_disabled_user_is_refused_at_once_and_an_enabled_one_comes_back(
    service, admin
):
    client = service.client()
    user = new_user(client)
    assert client(ME)["data"]["me"]["_id"] == user["_id"]
    disabled = admin(DISABLE, {"id": user["_id"]})
    assert disabled["data"]["adminDisableUser"] == {
        "_id": user["_id"],
        "disabled": True,
    }
    # The live token, the refresh cookie and a new login are all refused.
    assert error_type(client(ME)) == "AccountDisabledError"
    assert error_type(client(REFRESH)) in ("AccountDisabledError", "UnauthorizedError")
    login = service.client()(LOGIN, {"email": user["email"], "password": PASSWORD})
    assert error_type(login) == "AccountDisabledError"
    # A wrong password says nothing about the account.
    wrong = service.client()(LOGIN, {"email": user["email"], "password": "wrong" * 3})
    assert error_type(wrong) == "UserNotFoundError"
    enabled = admin(ENABLE, {"id": user["_id"]})
    assert enabled["data"]["adminEnableUser"]["disabled"] is False
    again = service.client()
    logged_in(again, user)
    assert again(ME)["data"]["me"]["_id"] == user["_id"]


def test_an_admin_deletes_a_user(service, admin):
    client = service.client()
    user = new_user(client)
    assert admin(DELETE, {"id": user["_id"]}) == {"data": {"adminDeleteUser": True}}
    assert error_type(client(ME)) == "UnauthorizedError"
    assert error_type(admin(USER, {"id": user["_id"]})) == "UserNotFoundError"
    login = service.client()(LOGIN, {"email": user["email"], "password": PASSWORD})
    assert error_type(login) == "UserNotFoundError"


def test_an_admin_ends_every_session_of_a_user(service, admin):
    devices = [service.client(), service.client()]
    user = new_user(devices[0])
    logged_in(devices[1], user)
    ended = admin(END_SESSIONS, {"id": user["_id"]})["data"]["adminEndSessions"]
    assert ended >= 2
    for device in devices:
        assert error_type(device(REFRESH)) == "UnauthorizedError"


def test_an_admin_sends_a_password_reset_mail(service, admin, smtp):
    user = new_user(service.client())
    before = len(smtp.wait_for(user["email"], 1))
    assert admin(SEND_RESET, {"id": user["_id"]}) == {
        "data": {"adminSendPasswordReset": True}
    }
    messages = smtp.wait_for(user["email"], before + 1)
    assert len(messages) == before + 1
    assert "reset" in str(messages[-1]).lower()


def test_the_last_admin_cannot_be_removed(service, admin):
    own_id = me_id(admin)
    # Every other admin of this module's service steps down.
    listing = admin(USERS, {"role": "admin", "perPage": 100})["data"]["adminUsers"]
    for item in listing["items"]:
        if item["_id"] != own_id:
            admin(UPDATE, {"id": item["_id"], "fields": {"roles": []}})
    for query, variables in [
        (UPDATE, {"fields": {"roles": []}}),
        (DISABLE, {}),
        (DELETE, {}),
    ]:
        result = admin(query, {"id": own_id, **variables})
        assert error_type(result) == "LastAdminError", (query, result)
    # Nor by deleting their own account.
    result = admin(DELETE_ME, {"password": PASSWORD})
    assert error_type(result) == "LastAdminError", result
    refused = admin_command(service, "revoke", admin.fields["email"], "admin")
    assert refused.returncode == 1 and "last admin" in refused.stderr
    # With a second admin, either may step down.
    other = new_user(service.client())
    promoted = admin(UPDATE, {"id": other["_id"], "fields": {"roles": ["admin"]}})
    assert promoted["data"]["adminUpdateUser"]["roles"] == ["admin"]
    demoted = admin(UPDATE, {"id": other["_id"], "fields": {"roles": []}})
    assert demoted["data"]["adminUpdateUser"]["roles"] == []
    assert me_id(admin) == own_id


# Login with another unique field.


def test_login_by_another_login_field(service, client):
    others = [name for name in LOGIN_FIELDS if name != "email"]
    if not others:
        pytest.skip("service.login_fields lists only email")
    name = others[0]
    fields = registered(client)
    login = client(LOGIN, {"email": fields[name], "password": PASSWORD})
    assert login["data"]["login"]["user"]["email"] == fields["email"]
    # Every kind of miss is the same error.
    for value, password in [
        (fields[name], "wrong password!"),
        (fields[name] + "nobody", PASSWORD),
        ("nobody@example.org", PASSWORD),
        ("\x00", PASSWORD),
    ]:
        result = service.client()(LOGIN, {"email": value, "password": password})
        assert error_type(result) == "UserNotFoundError", (value, result)
    # The email still works, in any case.
    login = client(LOGIN, {"email": fields["email"].upper(), "password": PASSWORD})
    assert login["data"]["login"]["user"][name] == fields[name]
