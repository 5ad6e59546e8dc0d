"""Prometheus metrics, served on GET /metrics when AUTH_METRICS=true.

Labels take their values from closed sets only, so a client cannot grow the
number of series: an operation is named by its root field (a field of the
schema), never by the client's operationName; outcomes are error type names.
With `serve --workers N`, the workers write their counts to files in one folder
(prometheus-client's multiprocess mode, set up by `serve`), so a scrape that
reaches any worker reports all of them. The outbox gauges are read from the
store at each scrape: every process sees the same outbox.
"""

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The operation label of requests refused before GraphQL ran them (body,
#: media type, origin, a mutation over GET), of documents that are not valid,
#: and of operations with several root fields.
REFUSED, INVALID, SEVERAL = "(refused)", "(invalid)", "(several)"

REQUESTS = Counter(
    "auth_graphql_requests",
    "GraphQL requests by operation (root field) and result (ok, or error when the response has errors).",
    ["operation", "result"],
)
LATENCY = Histogram(
    "auth_graphql_request_duration_seconds",
    "Time to answer a GraphQL request, by operation (root field).",
    ["operation"],
)
LOGINS = Counter(
    "auth_logins", "Logins by outcome: success, or the error type.", ["outcome"]
)
THROTTLED = Counter(
    "auth_throttled_requests",
    "Requests refused with TooManyRequestsError, by operation.",
    ["operation"],
)
MAILS = Counter(
    "auth_mails",
    "Delivery attempts by result: sent, retrying (failed, will be retried), failed (given up).",
    ["result"],
)


def operation_label(root_fields: list[tuple[str, str]] | None) -> str:
    """The root field of an operation; INVALID or SEVERAL when there is not one."""
    if root_fields is None:
        return INVALID
    names = {name for name, _ in root_fields}
    return names.pop() if len(names) == 1 else SEVERAL


def graphql_request(
    root_fields: list[tuple[str, str]] | None, response: dict[str, Any], seconds: float
) -> None:
    """Counts an answered request; `root_fields` are (name, response key) pairs."""
    operation = operation_label(root_fields)
    errors = response.get("errors") or []
    REQUESTS.labels(operation, "error" if errors else "ok").inc()
    LATENCY.labels(operation).observe(seconds)
    if any(error.get("type") == "TooManyRequestsError" for error in errors):
        THROTTLED.labels(operation).inc()
    data = response.get("data") or {}
    for name, key in root_fields or ():
        if name == "login":
            failure = next(
                (error for error in errors if (error.get("path") or [None])[0] == key),
                None,
            )
            if failure is not None:
                LOGINS.labels(failure.get("type", "unknown")).inc()
            elif data.get(key) is not None:
                LOGINS.labels("success").inc()


def refused_request(seconds: float) -> None:
    REQUESTS.labels(REFUSED, "error").inc()
    LATENCY.labels(REFUSED).observe(seconds)


class _Outbox:
    """The outbox as read at one scrape."""

    def __init__(self, queued: int, oldest_age: float) -> None:
        self.queued = queued
        self.oldest_age = oldest_age

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "auth_mails_queued",
            "Mails waiting in the outbox to be sent.",
            value=self.queued,
        )
        yield GaugeMetricFamily(
            "auth_mail_oldest_pending_age_seconds",
            "Age of the oldest mail waiting in the outbox; 0 when it is empty.",
            value=self.oldest_age,
        )


async def scrape(store: Store) -> bytes:
    """Every metric in Prometheus' text format."""
    queued, oldest = await store.outbox_backlog()
    age = (
        0.0 if oldest is None else (datetime.now(UTC) - _aware(oldest)).total_seconds()
    )
    outbox = CollectorRegistry(auto_describe=True)
    outbox.register(_Outbox(queued, age))
    return generate_latest(_registry()) + generate_latest(outbox)


def _registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        shared = CollectorRegistry()
        MultiProcessCollector(shared)
        return shared
    return REGISTRY


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
