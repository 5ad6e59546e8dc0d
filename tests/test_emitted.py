"""The emitted example service, run for real: as a process over HTTP, and its own test-suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import EVERY_OPTION, EXAMPLE, authgen, run_service_tests

INTROSPECTION = (
    "{ __schema { queryType { name } mutationType { name } types { name } } }"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(out: Path, data: Path) -> dict[str, str]:
    """Run the generated code (not an installed copy), with its state in `data`."""
    return {
        **os.environ,
        "PYTHONPATH": str(out / "src"),
        "AUTH_DATABASE_URL": f"sqlite:///{data / 'test.db'}",
        "AUTH_PRIVATE_KEY_FILE": str(data / "keys" / "private.pem"),
        "AUTH_PUBLIC_KEY_FILE": str(data / "keys" / "public.pem"),
        "AUTH_OUTBOX_DIR": str(data / "outbox"),
    }


@pytest.fixture(scope="module")
def service_url(generated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = generated(EXAMPLE)
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data / "service.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "acme_auth", "serve", "--port", str(port)],
            cwd=data,
            env={**service_env(out, data), "AUTH_PUBLIC_URL": url},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_healthz(service_url: str) -> None:
    response = httpx.get(f"{service_url}/healthz")
    assert response.status_code == 200


def test_introspection_over_http(service_url: str) -> None:
    response = httpx.post(f"{service_url}/graphql", json={"query": INTROSPECTION})
    assert response.status_code == 200
    schema = response.json()["data"]["__schema"]
    assert schema["queryType"] == {"name": "Query"}
    assert schema["mutationType"] == {"name": "Mutation"}
    names = {t["name"] for t in schema["types"]}
    assert {"User", "UserPublicInfo", "UserRegisterInput", "Gender"} <= names


def test_the_service_root_is_the_same_endpoint(service_url: str) -> None:
    response = httpx.post(f"{service_url}/", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.emitted
@pytest.mark.parametrize(
    "spec", [EXAMPLE, EVERY_OPTION], ids=["example", "every-option"]
)
def test_the_emitted_test_suite_passes(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "service"
    generate = authgen("generate", spec, "-o", out)
    assert generate.returncode == 0, generate.stderr
    result = run_service_tests(out)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
