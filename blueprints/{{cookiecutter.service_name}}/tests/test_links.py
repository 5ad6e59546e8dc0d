"""One-time links die with what they were issued under, and the owner hears of every change.

Over HTTP against a started service, with the mails a real SMTP server
receives: a reset or confirmation link outlives neither a password change
(updateMe or a reset) nor an email change, and each change sends a notice,
with nothing in it that changes anything, to the address the account had.
"""

import asyncio
import re
import time
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
from conftest import GraphQLClient, MailSink, Service
from helpers import (
    LOGIN,
    ME,
    PASSWORD,
    UPDATE_ME,
    error_type,
    logged_in,
    registered,
    running_service,
)
from test_mail import RESET, SEND_RECOVERY, html_of, link_in, mail_to, text_of, token_of

from {{ cookiecutter.package }}.store import open_store

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]

NEW_PASSWORD = "a new and better password"
PASSWORD_CHANGED = "Your password was changed"
EMAIL_CHANGED = "Your email address was changed"


def new_address() -> str:
    return f"changed{uuid.uuid4().hex[:12]}@example.org"


def reset_link(smtp: MailSink, service: Service, email: str) -> str:
    """Ask for a recovery mail (logged out) and return its link."""
    assert service.client()(SEND_RECOVERY, {"email": email}) == {
        "data": {"sendPasswordRecoveryEmail": True}
    }
    (mail,) = titled(smtp, email, "Reset your password")
    return link_in(mail, "/form/reset/password")


def reset(
    client: GraphQLClient, link: str, password: str = NEW_PASSWORD
) -> dict[str, Any]:
    return client(RESET, {"password": password, "token": token_of(link)})


def can_log_in(client: GraphQLClient, email: str, password: str) -> bool:
    return "errors" not in client(LOGIN, {"email": email, "password": password})


def titled(
    smtp: MailSink, recipient: str, subject: str, timeout: float = 15.0
) -> list[EmailMessage]:
    """The mails to `recipient` with this subject, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m
            for m in smtp.wait_for(recipient, timeout=0)
            if m["To"] == recipient and m["Subject"] == subject
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def assert_no_way_in(message: EmailMessage) -> None:
    """A notice carries no link and no token: forwarding it or leaking it gives nothing."""
    for part in (text_of(message), html_of(message)):
        assert not re.search(r"https?://|href=|token", part, re.IGNORECASE), part


def change_email_in_the_store(service: Service, user_id: str, email: str) -> None:
    """What an admin script, or a crash between MongoDB's writes, can leave: a
    changed address whose links were not revoked."""

    async def change() -> None:
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            assert await store.update_user(user_id, {"email": email}) is not None
        finally:
            await store.close()

    asyncio.run(change())


# Links die.


def test_a_reset_link_dies_when_the_email_changes(service, client, smtp):
    fields = registered(client)
    link = reset_link(smtp, service, fields["email"])
    logged_in(client, fields)
    email = new_address()
    assert "errors" not in client(UPDATE_ME, {"fields": {"email": email}})

    stranger = service.client()
    assert error_type(reset(stranger, link)) == "UnauthorizedError"
    assert not can_log_in(stranger, email, NEW_PASSWORD)
    assert can_log_in(stranger, email, PASSWORD)


def test_links_die_when_the_password_changes_through_update_me(service, client, smtp):
    fields = registered(client)
    confirmation = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    link = reset_link(smtp, service, fields["email"])
    logged_in(client, fields)
    result = client(
        UPDATE_ME,
        {"fields": {"password": "a changed password", "previousPassword": PASSWORD}},
    )
    assert "errors" not in result, result

    assert error_type(reset(service.client(), link)) == "UnauthorizedError"
    assert not can_log_in(service.client(), fields["email"], NEW_PASSWORD)
    assert httpx.get(confirmation).status_code == 400
    assert client(ME)["data"]["me"]["email_verified"] is False


def test_a_reset_ends_the_confirmation_link_too(service, client, smtp):
    fields = registered(client)
    confirmation = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    result = reset(client, reset_link(smtp, service, fields["email"]))
    assert result["data"]["resetMyPassword"]["notifications"][0]["type"] == "success"
    assert httpx.get(confirmation).status_code == 400


def test_a_reset_link_only_works_for_the_address_it_was_sent_to(service, client, smtp):
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    link = reset_link(smtp, service, fields["email"])
    email = new_address()
    change_email_in_the_store(service, user_id, email)

    refused = reset(service.client(), link)
    assert error_type(refused) == "UnauthorizedError"
    assert "no longer" in refused["errors"][0]["message"]
    assert can_log_in(service.client(), email, PASSWORD)


# Notices.


def test_a_password_change_notifies_the_account_without_a_link(service, client, smtp):
    fields = registered(client)
    logged_in(client, fields)
    assert "errors" not in client(
        UPDATE_ME, {"fields": {"password": NEW_PASSWORD, "previousPassword": PASSWORD}}
    )
    (notice,) = titled(smtp, fields["email"], PASSWORD_CHANGED)
    assert fields["email"] in text_of(notice)
    assert_no_way_in(notice)


def test_a_reset_notifies_the_account_without_a_link(service, client, smtp):
    fields = registered(client)
    assert "errors" not in reset(client, reset_link(smtp, service, fields["email"]))
    (notice,) = titled(smtp, fields["email"], PASSWORD_CHANGED)
    assert_no_way_in(notice)


def test_an_email_change_notifies_the_old_address_without_a_link(service, client, smtp):
    fields = registered(client, email=f"owner{uuid.uuid4().hex[:8]}@example.org")
    logged_in(client, fields)
    email = f"zed{uuid.uuid4().hex[:8]}@elsewhere.net"
    assert "errors" not in client(UPDATE_ME, {"fields": {"email": email}})

    (notice,) = titled(smtp, fields["email"], EMAIL_CHANGED)
    for part in (text_of(notice), html_of(notice)):
        # The new address, masked: its owner recognises it, a reader of the old mailbox does not learn it.
        assert "z***@e***.net" in part and email not in part
    assert_no_way_in(notice)
    assert titled(smtp, fields["email"], PASSWORD_CHANGED, timeout=0.5) == []
    # The new address gets its confirmation link, and no notice.
    assert link_in(mail_to(smtp, email), "/user/email/confirmation")
    assert titled(smtp, email, EMAIL_CHANGED, timeout=0) == []


def test_email_change_needs_the_password_when_configured(tmp_path, smtp):
    with running_service(
        tmp_path, smtp, AUTH_EMAIL_CHANGE_NEEDS_PASSWORD="true"
    ) as service:
        client = service.client()
        fields = registered(client)
        logged_in(client, fields)
        email = new_address()
        for sent in (
            {"email": email},
            {"email": email, "previousPassword": "wrong password"},
        ):
            assert (
                error_type(client(UPDATE_ME, {"fields": sent})) == "WrongPasswordError"
            )
        assert client(ME)["data"]["me"]["email"] == fields["email"]
        result = client(
            UPDATE_ME, {"fields": {"email": email, "previousPassword": PASSWORD}}
        )
        assert "errors" not in result, result
        assert result["data"]["updateMe"]["user"]["email"] == email
        assert titled(smtp, fields["email"], EMAIL_CHANGED)
