"""What an operator sees: Prometheus metrics on GET /metrics (AUTH_METRICS),
JSON log lines (AUTH_LOG_FORMAT=json) and the request id that ties a response
to its log lines.
"""

import json
import re
import time

import httpx
from conftest import Service, free_port
from helpers import PASSWORD, registered
from prometheus_client.parser import text_string_to_metric_families

LOGIN = "mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"


def scrape(service: Service) -> dict[tuple[str, frozenset], float]:
    """The samples of GET /metrics: (name, labels) -> value."""
    response = httpx.get(f"{service.url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_off_unless_asked_for_and_count_requests_logins_throttling_and_mails(
    service, make_service, smtp
):
    assert httpx.get(f"{service.url}/metrics").status_code == 404  # the default service
    service = make_service(
        smtp,
        AUTH_METRICS="true",
        AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT="2",
    )
    client = service.client()
    fields = registered(client)
    smtp.wait_for(fields["email"])
    assert "errors" not in client(
        LOGIN, {"email": fields["email"], "password": PASSWORD}
    )
    for _ in range(3):  # two failures, then the account is throttled
        client(LOGIN, {"email": fields["email"], "password": "not the password"})
    # A login under an alias, beside another field, is counted too.
    both = 'mutation ($e: String!) { a: login(email: $e, password: "x") { token } b: logout }'
    client(both, {"e": "nobody@example.org"})
    # Names a client chooses never become labels.
    for index in range(5):
        httpx.post(
            f"{service.url}/graphql",
            json={
                "query": f"query Chosen{index} " + "{ publicKey }",
                "operationName": f"Chosen{index}",
            },
        )
    client('{ publicKey emailAvailable(email: "someone@example.org") }')
    client("{ nope }")
    httpx.post(
        f"{service.url}/graphql",
        content=b"not json",
        headers={"content-type": "application/json"},
    )

    samples = scrape(service)
    assert value(samples, "auth_logins_total", outcome="success") == 1
    assert value(samples, "auth_logins_total", outcome="UserNotFoundError") == 3
    assert value(samples, "auth_logins_total", outcome="TooManyRequestsError") == 1
    assert value(samples, "auth_throttled_requests_total", operation="login") == 1
    assert (
        value(samples, "auth_graphql_requests_total", operation="login", result="ok")
        == 1
    )
    assert (
        value(samples, "auth_graphql_requests_total", operation="login", result="error")
        == 3
    )
    assert (
        value(
            samples, "auth_graphql_requests_total", operation="(several)", result="ok"
        )
        == 1
    )
    assert (
        value(
            samples, "auth_graphql_requests_total", operation="publicKey", result="ok"
        )
        == 5
    )
    assert (
        value(
            samples,
            "auth_graphql_requests_total",
            operation="(invalid)",
            result="error",
        )
        == 1
    )
    assert (
        value(
            samples,
            "auth_graphql_requests_total",
            operation="(refused)",
            result="error",
        )
        == 1
    )
    assert (
        value(
            samples, "auth_graphql_request_duration_seconds_count", operation="register"
        )
        == 1
    )
    assert value(samples, "auth_mails_total", result="sent") == 1
    assert value(samples, "auth_mails_queued") == 0
    assert value(samples, "auth_mail_oldest_pending_age_seconds") == 0
    operations = {dict(labels).get("operation") for _, labels in samples}
    assert not any(name and name.startswith("Chosen") for name in operations)


def test_metrics_show_the_outbox_backlog(make_service):
    # Nothing listens on the SMTP port: the mail waits for its next attempt.
    service = make_service(
        free_port(), AUTH_METRICS="true", AUTH_MAIL_RETRY_DELAY="600"
    )
    registered(service.client())
    samples: dict = {}
    # Until the worker's first attempt, however loaded the machine.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = scrape(service)
        if value(samples, "auth_mails_total", result="retrying") >= 1:
            break
        time.sleep(0.05)
    assert value(samples, "auth_mails_total", result="retrying") == 1
    assert value(samples, "auth_mails_queued") == 1
    assert value(samples, "auth_mail_oldest_pending_age_seconds") > 0


def test_metrics_add_up_over_workers(make_service):
    service = make_service(workers=2, AUTH_METRICS="true")
    for _ in range(20):
        assert (
            httpx.post(
                f"{service.url}/graphql", json={"query": "{ publicKey }"}
            ).status_code
            == 200
        )
    # Each scrape reaches one worker or the other; every one reports all requests.
    for _ in range(6):
        samples = scrape(service)
        assert (
            value(
                samples,
                "auth_graphql_requests_total",
                operation="publicKey",
                result="ok",
            )
            == 20
        )


def test_every_response_carries_a_request_id(service):
    generated = {
        httpx.get(f"{service.url}/healthz").headers["x-request-id"] for _ in range(2)
    }
    assert len(generated) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in generated)
    sent = "3f2a9c1e-8d4b-4c6e-9a1f-0b5e7d2c4a68"
    response = httpx.post(
        f"{service.url}/graphql",
        json={"query": "{ publicKey }"},
        headers={"x-request-id": sent},
    )
    assert response.headers["x-request-id"] == sent
    # One that is not well-formed (too long, odd characters) is replaced.
    for malformed in ("x" * 200, "a b", "<script>"):
        replaced = httpx.get(
            f"{service.url}/healthz", headers={"x-request-id": malformed}
        ).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_json_logs_carry_the_request_id(make_service, smtp):
    service = make_service(smtp, AUTH_LOG_FORMAT="json")
    sent = "request-0001"
    client = service.client()
    fields = registered(client)
    smtp.wait_for(fields["email"])
    client(
        LOGIN,
        {"email": fields["email"], "password": PASSWORD},
        **{"x-request-id": sent},
    )
    service.stop()
    lines = [
        json.loads(line)
        for line in service.log.read_text().splitlines()
        if line.strip()
    ]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [
        line
        for line in lines
        if line["logger"] == "uvicorn.access" and line.get("request_id") == sent
    ]
    assert len(access) == 1 and "POST /graphql" in access[0]["message"]
    # The mail worker's lines come from the service's own loggers.
    assert any(
        line["logger"].endswith(".mail") and fields["email"] in line["message"]
        for line in lines
    )
