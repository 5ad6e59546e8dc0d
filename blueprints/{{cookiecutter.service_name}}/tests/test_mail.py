"""Mail and the links in it: email confirmation, password recovery, delivery that loses nothing.

Every flow goes through the API of a running service and the mails a real
SMTP server receives; the store is only opened to look at what was kept.
"""

import asyncio
import re
import statistics
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from conftest import GraphQLClient, MailSink, Service, free_port
from helpers import PASSWORD, registration

from {{ cookiecutter.package }}.models import FIELDS
from {{ cookiecutter.package }}.rules import item_problem
from {{ cookiecutter.package }}.store import open_store

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]

REGISTER = "mutation ($fields: UserRegisterInput!) { register(fields: $fields) }"
LOGIN = "mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"
ME = "{ me { email email_verified } }"
SEND_VERIFICATION = "{ sendVerificationEmail }"
SEND_RECOVERY = "query ($email: String!) { sendPasswordRecoveryEmail(email: $email) }"
RESET = """mutation ($password: String!, $token: String!) {
  resetMyPassword(password: $password, passwordRecoveryToken: $token) { notifications { type message } }
}"""
NEW_PASSWORD = "a new and better password"

# Quick retries, so the delivery tests take seconds.
FAST_RETRIES = {"AUTH_MAIL_RETRY_DELAY": "0.2", "AUTH_MAIL_POLL_INTERVAL": "0.2"}


def error_type(result: dict) -> str:
    return result["errors"][0]["type"]


def register(client: GraphQLClient, **overrides: Any) -> dict[str, Any]:
    fields = registration(**overrides)
    result = client(REGISTER, {"fields": fields})
    assert result == {"data": {"register": True}}, result
    return fields


def log_in(client: GraphQLClient, email: str, password: str = PASSWORD) -> None:
    result = client(LOGIN, {"email": email, "password": password})
    client.token = result["data"]["login"]["token"]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message: EmailMessage, path: str) -> str:
    links = re.findall(r"https?://\S+", text_of(message))
    return next(link for link in links if path in link)


def token_of(link: str) -> str:
    return httpx.URL(link).params["token"]


def mail_to(smtp: MailSink, email: str, count: int = 1) -> EmailMessage:
    messages = smtp.wait_for(email, count)
    assert (
        len(messages) == count
    ), f"{len(messages)} mail(s) to {email}, expected {count}"
    return messages[-1]


def stored_mails(service: Service, recipient: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            return [
                mail
                for mail in await store.list_mails()
                if mail["recipient"] == recipient
            ]
        finally:
            await store.close()

    return asyncio.run(read())


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


# Email verification.


def test_register_mails_a_link_that_confirms_the_email(service, client, smtp):
    fields = register(client)
    message = mail_to(smtp, fields["email"])
    assert message["Subject"] == "Confirm your email address"
    link = link_in(message, "/user/email/confirmation?token=")
    assert link.startswith(service.url)
    assert link in html_of(message)

    page = httpx.get(link)
    assert page.status_code == 200
    assert f"{fields['email']} is confirmed" in page.text
    log_in(client, fields["email"])
    assert client(ME)["data"]["me"] == {
        "email": fields["email"],
        "email_verified": True,
    }

    again = httpx.get(link)
    assert again.status_code == 400
    assert "invalid or was already used" in again.text


def test_unknown_confirmation_link_shows_an_error_page(service):
    for query in ("?token=nonsense", ""):
        page = httpx.get(f"{service.url}/user/email/confirmation{query}")
        assert page.status_code == 400
        assert "invalid or was already used" in page.text


def test_an_email_change_is_confirmed_by_the_new_address_only(client, smtp):
    fields = register(client)
    old_link = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    log_in(client, fields["email"])
    new_email = f"new.{fields['email']}"
    result = client(
        "mutation ($fields: UserUpdateInput!) { updateMe(fields: $fields) { token } }",
        {"fields": {"email": new_email}},
    )
    assert "errors" not in result, result
    new_link = link_in(mail_to(smtp, new_email), "/user/email/confirmation")

    assert httpx.get(old_link).status_code == 400
    assert httpx.get(new_link).status_code == 200
    log_in(client, new_email)
    assert client(ME)["data"]["me"] == {"email": new_email, "email_verified": True}


def test_send_verification_email_replaces_the_earlier_link(client, smtp):
    assert error_type(client(SEND_VERIFICATION)) == "UnauthorizedError"
    fields = register(client)
    first_link = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    log_in(client, fields["email"])

    assert client(SEND_VERIFICATION) == {"data": {"sendVerificationEmail": True}}
    second_link = link_in(
        mail_to(smtp, fields["email"], count=2), "/user/email/confirmation"
    )
    assert second_link != first_link
    assert httpx.get(first_link).status_code == 400
    assert httpx.get(second_link).status_code == 200
    assert error_type(client(SEND_VERIFICATION)) == "EmailAlreadyConfirmedError"


def test_verification_mail_that_is_refused_gives_email_not_sent(make_service):
    refusing = RefusingSink(free_port())
    controller = Controller(refusing, hostname="127.0.0.1", port=refusing.port)
    controller.start()
    try:
        service = make_service(refusing.port, **FAST_RETRIES)
        client = service.client()
        fields = register(client, email="refused@example.org")
        log_in(client, fields["email"])
        assert error_type(client(SEND_VERIFICATION)) == "EmailNotSentError"
        mails = stored_mails(service, fields["email"])
        assert [mail["status"] for mail in mails] == ["failed", "failed"]
        assert all(
            mail["attempts"] == 1 and "550" in mail["last_error"] for mail in mails
        )
    finally:
        controller.stop()


class RefusingSink(MailSink):
    """An SMTP server on which no mailbox exists."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list
    ) -> str:
        return "550 5.1.1 No such mailbox"


# Password recovery.


def test_password_recovery_sets_a_new_password_and_ends_sessions(service, client, smtp):
    fields = register(client)
    mail_to(smtp, fields["email"])
    log_in(client, fields["email"])
    assert (
        error_type(client(SEND_RECOVERY, {"email": fields["email"]}))
        == "AlreadyLoggedInError"
    )

    stranger = service.client()
    assert stranger(SEND_RECOVERY, {"email": fields["email"].upper()}) == {
        "data": {"sendPasswordRecoveryEmail": True}
    }
    message = mail_to(smtp, fields["email"], count=2)
    assert message["Subject"] == "Reset your password"
    link = link_in(message, "/form/reset/password?token=")

    form = httpx.get(link)
    assert form.status_code == 200
    assert "<form" in form.text and "resetMyPassword" in form.text
    assert (
        error_type(stranger(RESET, {"password": "short", "token": token_of(link)}))
        == "UserValidationError"
    )
    result = stranger(RESET, {"password": NEW_PASSWORD, "token": token_of(link)})
    assert result["data"]["resetMyPassword"]["notifications"][0]["type"] == "success"

    assert (
        error_type(client("mutation { refreshToken { token } }")) == "UnauthorizedError"
    )
    assert (
        error_type(stranger(LOGIN, {"email": fields["email"], "password": PASSWORD}))
        == "UserNotFoundError"
    )
    assert "errors" not in stranger(
        LOGIN, {"email": fields["email"], "password": NEW_PASSWORD}
    )
    again = stranger(
        RESET, {"password": "yet another password", "token": token_of(link)}
    )
    assert error_type(again) == "UnauthorizedError"


def test_reset_form_posted_without_javascript(client, smtp):
    fields = register(client)
    client(SEND_RECOVERY, {"email": fields["email"]})
    link = link_in(mail_to(smtp, fields["email"], count=2), "/form/reset/password")
    form = {
        "token": token_of(link),
        "password": NEW_PASSWORD,
        "confirmation": NEW_PASSWORD,
    }

    mismatch = httpx.post(link, data={**form, "confirmation": "something else"})
    assert mismatch.status_code == 400 and "differ" in mismatch.text
    page = httpx.post(link, data=form)
    assert page.status_code == 200
    assert "Your password has been changed" in page.text
    assert "errors" not in client(
        LOGIN, {"email": fields["email"], "password": NEW_PASSWORD}
    )


def test_recovery_of_an_unknown_email_says_true_and_sends_nothing(
    service, client, smtp
):
    fields = register(client)
    mail_to(smtp, fields["email"])
    unknown = "nobody@example.org"

    def duration(email: str) -> float:
        start = time.perf_counter()
        assert client(SEND_RECOVERY, {"email": email}) == {
            "data": {"sendPasswordRecoveryEmail": True}
        }
        return time.perf_counter() - start

    known_times, unknown_times = [], []
    for _ in range(7):
        known_times.append(duration(fields["email"]))
        unknown_times.append(duration(unknown))
    # Neither path waits for SMTP: both answer after a few store reads and writes.
    assert abs(statistics.median(known_times) - statistics.median(unknown_times)) < 0.05
    assert smtp.wait_for(unknown, timeout=1) == []
    assert stored_mails(service, unknown) == []


def test_unknown_and_expired_recovery_tokens(make_service, smtp):
    service = make_service(smtp.port, AUTH_RECOVERY_TOKEN_TTL="1")
    client = service.client()
    assert (
        error_type(client(RESET, {"password": NEW_PASSWORD, "token": "nonsense"}))
        == "UnauthorizedError"
    )

    fields = register(client)
    mail_to(smtp, fields["email"])
    client(SEND_RECOVERY, {"email": fields["email"]})
    link = link_in(mail_to(smtp, fields["email"], count=2), "/form/reset/password")
    time.sleep(1.1)
    assert (
        error_type(client(RESET, {"password": NEW_PASSWORD, "token": token_of(link)}))
        == "UpdatePasswordTooLateError"
    )


# Templates.


def test_reset_form_escapes_the_token_from_the_address(service):
    page = httpx.get(
        f"{service.url}/form/reset/password",
        params={"token": '"><script>alert(1)</script>'},
    )
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_templates_are_overridden_file_by_file_and_escaped(
    make_service, smtp, tmp_path
):
    field = next(
        (
            f
            for f in FIELDS.values()
            if f.type == "string" and not f.list and item_problem(f, "<b>&</b>") is None
        ),
        None,
    )
    if field is None:
        pytest.skip("no string field of the model accepts markup")
    overrides = tmp_path / "templates"
    overrides.mkdir()
    {%- raw %}
    override = (
        "<html><head><title>{% block subject %}Hi {{ user.FIELD }}{% endblock %}</title></head>"
        '<body><p>Value: {{ user.FIELD }}</p><a href="{{ link }}">confirm</a></body></html>'
    )
    {%- endraw %}
    (overrides / "verify_email.html").write_text(override.replace("FIELD", field.name))
    service = make_service(smtp.port, AUTH_TEMPLATES_DIR=str(overrides))
    fields = register(service.client(), **{field.name: "<b>&</b>"})
    message = mail_to(smtp, fields["email"])
    assert message["Subject"] == "Hi <b>&</b>"
    assert "<p>Value: &lt;b&gt;&amp;&lt;/b&gt;</p>" in html_of(message)
    # The plain-text part still comes from the built-in template.
    assert "Please confirm that" in text_of(message)


# Delivery.


def test_without_smtp_mail_goes_to_the_outbox_folder(make_service):
    service = make_service()
    fields = register(service.client())
    outbox = service.folder / "outbox"
    files = wait_until(lambda: list(outbox.glob("*.eml")))
    assert len(files) == 1
    assert fields["email"] in files[0].read_text()
    assert wait_until(
        lambda: "/user/email/confirmation?token=" in service.log.read_text()
    )


def test_mail_waits_for_the_smtp_server_to_come_up(make_service):
    port = free_port()
    service = make_service(port, **FAST_RETRIES)
    fields = register(service.client())
    assert wait_until(
        lambda: stored_mails(service, fields["email"])[0]["attempts"] >= 1
    )

    sink = MailSink(port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail_to(sink, fields["email"])
    finally:
        controller.stop()
    [mail] = stored_mails(service, fields["email"])
    assert mail["status"] == "sent"
    assert "link" not in mail["context"]


def test_mail_survives_a_restart_and_is_sent_once(make_service):
    port = free_port()
    service = make_service(port, **FAST_RETRIES)
    fields = register(service.client())
    assert wait_until(
        lambda: stored_mails(service, fields["email"])[0]["attempts"] >= 1
    )
    service.stop()

    sink = MailSink(port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        service.start()
        mail_to(sink, fields["email"])
        time.sleep(1)
        assert len(sink.wait_for(fields["email"], timeout=0)) == 1
    finally:
        controller.stop()


def test_mail_that_keeps_failing_is_marked_failed(make_service):
    service = make_service(free_port(), AUTH_MAIL_MAX_ATTEMPTS="3", **FAST_RETRIES)
    fields = register(service.client())
    mail = wait_until(
        lambda: next(
            (
                m
                for m in stored_mails(service, fields["email"])
                if m["status"] == "failed"
            ),
            None,
        )
    )
    assert mail is not None
    assert mail["attempts"] == 3
    assert "connect" in mail["last_error"].lower()
    assert "link" not in mail["context"]
    assert wait_until(
        lambda: f"to {fields['email']} failed after 3 attempt(s)"
        in service.log.read_text()
    )


# Headers.


def test_every_mail_has_a_date_and_a_message_id(client, smtp):
    first = register(client)
    second = register(client)
    messages = [mail_to(smtp, first["email"]), mail_to(smtp, second["email"])]
    for message in messages:
        # RFC 5322's Date: the time it was sent (a generous margin: no clock is exact).
        assert abs(message["Date"].datetime.timestamp() - time.time()) < 600
        assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", message["Message-ID"].strip())
    assert messages[0]["Message-ID"].strip() != messages[1]["Message-ID"].strip()


class RefusesFirst(MailSink):
    """An SMTP server that refuses the first mail for now (451), then accepts."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.refused: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.refused:
            self.refused.append(
                message_from_bytes(envelope.content, policy=policy.default)
            )
            return "451 try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_retried_mail_keeps_its_message_id(make_service):
    sink = RefusesFirst(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        service = make_service(sink.port, **FAST_RETRIES)
        fields = register(service.client())
        sent = mail_to(sink, fields["email"])
    finally:
        controller.stop()
    assert sent["Message-ID"].strip() == sink.refused[0]["Message-ID"].strip()
