"""Fixtures: the service started as a real process, a real SMTP sink, a client.

The service runs as users run it (`python -m {{ cookiecutter.package }} serve`) on a free
port, with its own SQLite file, keys and settings in a temporary folder; mail
goes to an aiosmtpd server started here.

A module that sets `DATABASES = ["sqlite", "postgresql"]` runs its tests on
each: its `service` gets a fresh PostgreSQL database, created on the server of
AUTH_TEST_POSTGRESQL_URL and dropped after the module. Where no server
answers, the PostgreSQL runs are skipped with the reason, unless
AUTH_TEST_REQUIRE_POSTGRESQL is set (CI), which makes them fail instead.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller

SOURCE = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailSink:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            message_from_bytes(envelope.content, policy=policy.default)
        )
        return "250 OK"

    def wait_for(
        self, recipient: str, count: int = 1, timeout: float = 15.0
    ) -> list[EmailMessage]:
        """The messages to `recipient`, once at least `count` have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if recipient.lower() in m["To"].lower()]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailSink]:
    sink = MailSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


class Service:
    """A running service process and what it needs."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int = 1) -> None:
        self.folder = folder
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The service under test is this checkout's, whatever else is installed.
        pythonpath = os.pathsep.join(
            filter(None, [str(SOURCE), os.environ.get("PYTHONPATH")])
        )
        self.env = {
            **os.environ,
            **env,
            "AUTH_PUBLIC_URL": self.url,
            "PYTHONPATH": pythonpath,
        }
        self.process: subprocess.Popen | None = None
        self.log = folder / "service.log"

    def start(self, timeout: float = 30.0) -> None:
        command = [
            sys.executable,
            "-m",
            "{{ cookiecutter.package }}",
            "serve",
            "--port",
            str(self.port),
        ]
        command += ["--workers", str(self.workers)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the service did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def client(self) -> "GraphQLClient":
        return GraphQLClient(self.url)


class GraphQLClient:
    """An HTTP client that keeps cookies, as a browser would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)
        self.token: str | None = None

    def __call__(
        self, query: str, variables: dict | None = None, **headers: str
    ) -> dict:
        """POST a query; returns the whole JSON response ({data, errors})."""
        if self.token and "authorization" not in headers:
            headers["authorization"] = f"Bearer {self.token}"
        response = self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        return response.json()


#: A PostgreSQL server's maintenance database; the tests create and drop their own databases on it.
POSTGRESQL_URL = (
    os.environ.get("AUTH_TEST_POSTGRESQL_URL")
    or "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _postgresql_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRESQL_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_postgresql_database() -> str:
    """The URL of a new, empty database on the test server (skips without one).

    Its strings compare by a language's rules (ICU en-US), as most servers'
    databases do, where the server has ICU: the store must answer as the
    other stores, which compare bytes, whatever the database's collation.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        import asyncpg

        try:
            await _postgresql_admin(
                f'CREATE DATABASE "{name}" TEMPLATE template0'
                " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        except asyncpg.PostgresError:  # before PostgreSQL 15, or without ICU
            await _postgresql_admin(f'CREATE DATABASE "{name}"')
    except (OSError, ImportError) as error:
        reason = f"no PostgreSQL at AUTH_TEST_POSTGRESQL_URL={POSTGRESQL_URL}: {error}"
        if os.environ.get("AUTH_TEST_REQUIRE_POSTGRESQL"):
            pytest.fail(f"{reason} (AUTH_TEST_REQUIRE_POSTGRESQL is set)")
        pytest.skip(reason)
    return urlsplit(POSTGRESQL_URL)._replace(path=f"/{name}").geturl()


async def drop_postgresql_database(url: str) -> None:
    await _postgresql_admin(
        f'DROP DATABASE "{urlsplit(url).path.strip("/")}" WITH (FORCE)'
    )


@contextlib.contextmanager
def postgresql_database() -> Iterator[str]:
    """A new, empty database on the test server, dropped on leaving (skips without one)."""
    url = asyncio.run(create_postgresql_database())
    try:
        yield url
    finally:
        asyncio.run(drop_postgresql_database(url))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a module with DATABASES run once per database named there."""
    if "database" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "DATABASES", ["sqlite"])
        metafunc.parametrize("database", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A fresh PostgreSQL database's URL, or None for the default (SQLite in the service's folder)."""
    if request.param == "postgresql":
        with postgresql_database() as url:
            yield url
    else:
        yield None


def database_url_for(folder: Path) -> str:
    """SQLite in the folder, or a fresh database on the MongoDB of AUTH_TEST_MONGODB_URL."""
    mongodb = os.environ.get("AUTH_TEST_MONGODB_URL")
    if mongodb:
        return (
            urlsplit(mongodb)
            ._replace(path=f"/test_{folder.name}_{os.getpid()}")
            .geturl()
        )
    return f"sqlite:///{folder / 'test.db'}"


def service_env(folder: Path, smtp: MailSink | int | None = None) -> dict[str, str]:
    """The settings of a service in `folder`; mail to `smtp` (a sink, or the
    port of a server: one that is down, one started later), else to files."""
    env = {
        "AUTH_DATABASE_URL": database_url_for(folder),
        "AUTH_PRIVATE_KEY_FILE": str(folder / "keys" / "private.pem"),
        "AUTH_PUBLIC_KEY_FILE": str(folder / "keys" / "public.pem"),
        "AUTH_OUTBOX_DIR": str(folder / "outbox"),
        # Cheap hashing keeps the suite fast; production defaults are in settings.py.
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST": "8192",
        "AUTH_ARGON2_PARALLELISM": "1",
    }
    if smtp is not None:
        env.update(
            {
                "AUTH_SMTP_HOST": "127.0.0.1",
                "AUTH_SMTP_PORT": str(smtp if isinstance(smtp, int) else smtp.port),
                "AUTH_SMTP_TLS": "none",
            }
        )
    return env


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, smtp: MailSink, database: str | None
) -> Iterator[Service]:
    """A started service that mails to the `smtp` sink; one per test module (and database)."""
    folder = tmp_path_factory.mktemp("service")
    env = service_env(folder, smtp)
    if database is not None:
        env["AUTH_DATABASE_URL"] = database
    running = Service(folder, env)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(service: Service) -> GraphQLClient:
    return service.client()


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Starts services with their own settings, each in a folder of its own;
    all stop at the end of the test. `smtp` as in service_env."""
    started: list[Service] = []

    def make(
        smtp: MailSink | int | None = None, workers: int = 1, **env: str
    ) -> Service:
        folder = tmp_path / f"service{len(started)}"
        folder.mkdir()
        running = Service(folder, {**service_env(folder, smtp), **env}, workers)
        started.append(running)
        running.start()
        return running

    yield make
    for running in started:
        running.stop()
