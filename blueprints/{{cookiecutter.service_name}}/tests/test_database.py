"""AUTH_DATABASE_URL at start: every accepted spelling opens, and a bad URL or
a database that does not answer stops `serve` at once with one line that names
the setting and the cause, never a traceback."""

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import POSTGRESQL_URL, SOURCE, Service, postgresql_database, service_env


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(folder: Path, url: str) -> tuple[int, str, float]:
    """Runs `serve` with the URL until it stops; its exit code, output and duration."""
    env = {**service_env(folder), "AUTH_DATABASE_URL": url, "PYTHONPATH": str(SOURCE)}
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package }}",
        "serve",
        "--port",
        str(closed_port()),
    ]
    done = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=30
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    "url, cause",
    [
        ("/var/lib/auth.db", "is not a database URL"),
        ("mysql://root@127.0.0.1/auth", "is not a database URL"),
        ("postgresql://user@127.0.0.1:port/auth", "malformed database URL"),
        ("mongodb://a:b:c@127.0.0.1/auth", "malformed database URL"),
        (
            f"postgresql://postgres@127.0.0.1:{closed_port()}/auth",
            "cannot connect to the database",
        ),
        (f"mongodb://127.0.0.1:{closed_port()}/auth", "MongoDB"),
        ("sqlite:////nonexistent-folder/auth.db", "cannot open the SQLite file"),
    ],
)
def test_a_bad_or_unreachable_database_stops_the_start_with_one_line(
    tmp_path, url, cause
):
    code, output, seconds = serve(tmp_path, url)
    assert code == 1
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "AUTH_DATABASE_URL" in lines[0] and cause in lines[0], output
    assert seconds < 15


def test_a_missing_postgresql_database_is_named(tmp_path):
    missing = POSTGRESQL_URL.rsplit("/", 1)[0] + "/no_such_database_here"
    with postgresql_database():  # skips, or fails in CI, without a server
        code, output, _ = serve(tmp_path, missing)
    assert code == 1 and "Traceback" not in output
    assert (
        'AUTH_DATABASE_URL: cannot connect to the database: database "no_such_database_here" does not exist'
        in output
    )


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_both_postgresql_spellings_serve(tmp_path, scheme):
    with postgresql_database() as url:
        service = Service(
            tmp_path,
            {
                **service_env(tmp_path),
                "AUTH_DATABASE_URL": url.replace("postgresql", scheme, 1),
            },
        )
        service.start()
        try:
            assert service.client()("{ userCount }") == {"data": {"userCount": 0}}
        finally:
            service.stop()


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="counts threads in /proc"
)
def test_the_pool_size_bounds_sqlite_connections_too(make_service):
    """Each SQLite connection is a thread of its own (aiosqlite): under a burst
    the service keeps to AUTH_DATABASE_POOL_SIZE of them, instead of starting
    and stopping one per query beyond it."""
    service = make_service(AUTH_DATABASE_POOL_SIZE="2")
    tasks = Path(f"/proc/{service.process.pid}/task")
    before = len(list(tasks.iterdir()))
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(list(tasks.iterdir())))
            time.sleep(0.001)

    async def burst() -> None:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            for _ in range(5):
                answers = await asyncio.gather(
                    *(
                        client.post("/graphql", json={"query": "{ userCount }"})
                        for _ in range(48)
                    )
                )
                assert all(answer.status_code == 200 for answer in answers)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        asyncio.run(burst())
    finally:
        done.set()
        watcher.join()
    assert peak - before <= 2
