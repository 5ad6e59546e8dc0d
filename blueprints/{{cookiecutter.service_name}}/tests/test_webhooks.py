"""Webhooks over HTTP: every audit event is POSTed, signed, to each receiver
(local HTTP servers started here); a failing receiver gets it again until it
takes it, with the same body and idempotency key."""

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, service_env
from helpers import PASSWORD, logged_in, registered, running_service

SECRET = "a webhook secret of some length"
URL_KEY = "a-key-the-receiver-put-in-its-url"
MY_EVENTS = "{ myAuditEvents(limit: 10) { id event } }"


def verify(secret: str, headers: Any, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as the README gives it."""
    timestamp = headers["X-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old: a replay
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["X-Signature"], f"sha256={expected}")


class Receiver:
    """A webhook receiver on a free port: keeps each POST, and answers 500
    to the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[Any, bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.received) < receiver.failures else 204
                receiver.received.append((self.headers, body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, status: int = 204) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, code in self.received if code == status]

    def wait_for(self, check: Any, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert check(), self.received


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    pair = Receiver(), Receiver(failures=2)
    yield pair
    for receiver in pair:
        receiver.server.shutdown()


@pytest.fixture
def service(tmp_path: Path, receivers: tuple[Receiver, Receiver]) -> Iterator[Service]:
    with running_service(
        tmp_path,
        AUTH_WEBHOOK_URLS=",".join(f"{r.url}?key={URL_KEY}" for r in receivers),
        AUTH_WEBHOOK_SECRET=SECRET,
        AUTH_MAIL_RETRY_DELAY="0.2",
        AUTH_MAIL_POLL_INTERVAL="0.2",
    ) as running:
        yield running


def test_every_event_reaches_every_receiver_signed(service, receivers):
    healthy, _ = receivers
    client = service.client()
    fields = registered(client)
    user_id = logged_in(client, fields)["user"]["_id"]
    healthy.wait_for(lambda: len(healthy.events()) == 2)
    register, login = healthy.events()
    assert (register["event"], login["event"]) == ("register", "login")
    assert login["user_id"] == user_id and login["outcome"] == "success"
    assert set(login) == {
        "id",
        "at",
        "event",
        "user_id",
        "actor",
        "address",
        "user_agent",
        "outcome",
        "details",
    }
    mine = client(MY_EVENTS)["data"]["myAuditEvents"]
    assert [event["id"] for event in mine] == [login["id"], register["id"]]
    for headers, body, _ in healthy.received:
        assert verify(SECRET, headers, body)
        assert not verify("another secret", headers, body)
        assert headers["Content-Type"] == "application/json"
        assert headers["Idempotency-Key"] == json.loads(body)["id"]
        assert PASSWORD.encode() not in body and b"$argon2" not in body


def test_a_failing_receiver_gets_the_event_again_until_it_takes_it(service, receivers):
    _, failing = receivers
    client = service.client()
    registered(client)
    failing.wait_for(lambda: len(failing.events()) == 1)
    statuses = [status for _, _, status in failing.received]
    assert statuses == [500, 500, 204]
    # Each attempt: the same body and key, signed anew.
    assert len({body for _, body, _ in failing.received}) == 1
    assert len({headers["Idempotency-Key"] for headers, _, _ in failing.received}) == 1
    for headers, body, _ in failing.received:
        assert verify(SECRET, headers, body)
    # The log names the receiver, without the key in its URL.
    log = service.log.read_text()
    assert f"{failing.url} answered HTTP 500" in log
    assert URL_KEY not in log


def test_a_tampered_body_or_an_old_timestamp_fails_the_check(service, receivers):
    healthy, _ = receivers
    registered(service.client())
    healthy.wait_for(lambda: healthy.events())
    headers, body, _ = healthy.received[0]
    assert not verify(SECRET, headers, body.replace(b"register", b"reg1ster"))
    old = {**headers, "X-Timestamp": str(int(headers["X-Timestamp"]) - 3600)}
    assert not verify(SECRET, old, body)


def test_webhooks_without_a_secret_stop_the_start(tmp_path):
    env = {
        **service_env(tmp_path),
        "AUTH_WEBHOOK_URLS": "https://hooks.example.org/auth",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
    }
    service = Service(tmp_path, env)
    command = [sys.executable, "-m", "{{ cookiecutter.package }}", "serve"]
    command += ["--port", str(service.port)]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=service.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "AUTH_WEBHOOK_SECRET" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
