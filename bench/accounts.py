"""Accounts benchmark: logins/s and authenticated `me`/s of the emitted service.

Generates example-user.yaml into a temporary folder, starts the service as
users run it (`python -m <package> serve`, one worker, SQLite or --url) with
the production argon2id parameters, registers users, then keeps CONCURRENCY
requests in flight with httpx.AsyncClient: first `login`, then `me` with the
tokens the logins gave. Also times one argon2id verify in this process, the
floor under a login's latency.

    .venv/bin/python bench/accounts.py [--users 32] [--seconds 10] [--concurrency 16] [--url URL]

The load generator runs on the same machine and takes CPU from the service,
so the figures are a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from argon2_alone import one_verify
from common import free_port
from servers import Server

from authgen.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "example-user.yaml"
BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery staple"
# The defaults of the emitted settings.py, written out so the figures say what they measured.
ARGON2 = {
    "time_cost": 3,
    "memory_cost": 65536,
    "parallelism": 1,
}  # the service defaults

LOGIN = (
    "mutation($email: String!, $password: String!)"
    " { login(email: $email, password: $password) { token expiryDate user { _id } } }"
)
ME = "{ me { _id email username } }"
REGISTER = "mutation($fields: UserRegisterInput!) { register(fields: $fields) }"


def generate(folder: Path) -> tuple[Path, str]:
    """The example service, generated; returns its folder and package name."""
    out = folder / "service"
    subprocess.run(
        [str(BIN / "authgen"), "generate", str(SPEC), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out, load_spec(SPEC).service.package_name


def server(service: Path, package: str, folder: Path, url: str | None) -> Server:
    """The service as users run it, on `url` (default: SQLite in `folder`)."""
    port = free_port()
    env = {
        # This generation, whatever else is installed.
        "PYTHONPATH": str(service / "src"),
        "AUTH_DATABASE_URL": url or f"sqlite:///{folder / 'bench.db'}",
        "AUTH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "AUTH_PRIVATE_KEY_FILE": str(folder / "keys" / "private.pem"),
        "AUTH_PUBLIC_KEY_FILE": str(folder / "keys" / "public.pem"),
        "AUTH_OUTBOX_DIR": str(folder / "outbox"),
        **{f"AUTH_ARGON2_{name.upper()}": str(value) for name, value in ARGON2.items()},
    }
    command = [sys.executable, "-m", package, "serve", "--port", str(port)]
    return Server(
        package, command, folder, env, port, "/healthz", folder / "service.log"
    )


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict | None = None, **headers: str
) -> dict:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    result = response.json()
    if "errors" in result:
        raise RuntimeError(
            f"{query.split('{')[0].strip() or 'query'} failed: {result['errors'][0]['message']}"
        )
    return result["data"]


async def register(url: str, count: int, concurrency: int) -> list[str]:
    emails = [f"bench{i}@example.org" for i in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, client: httpx.AsyncClient) -> None:
        fields = {
            "email": emails[i],
            "password": PASSWORD,
            "username": f"bench{i:04d}",
            "gender": "Other",
            "age": 30,
        }
        async with gate:
            await graphql(client, REGISTER, {"fields": fields})

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(one(i, client) for i in range(count)))
    return emails


async def load(
    url: str, seconds: float, concurrency: int, request
) -> tuple[int, list[float], float]:
    """Keeps `concurrency` requests in flight for `seconds`: count, latencies (s), elapsed."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        # One client per worker, as one device each: logins carry their own cookie.
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                await request(client, n)
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return len(latencies), latencies, time.perf_counter() - began


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def argon2_verify_ms(rounds: int = 20) -> float:
    return one_verify(ARGON2, rounds) * 1000


async def run(args: argparse.Namespace, url: str) -> list[tuple[str, str, str, str]]:
    emails = await register(url, args.users, args.concurrency)
    tokens: list[str] = []

    async def login(client: httpx.AsyncClient, n: int) -> None:
        data = await graphql(
            client, LOGIN, {"email": random.choice(emails), "password": PASSWORD}
        )
        tokens.append(data["login"]["token"])

    async def me(client: httpx.AsyncClient, n: int) -> None:
        await graphql(client, ME, authorization=f"Bearer {tokens[n % len(tokens)]}")

    rows = []
    for name, request in (("login", login), ("me (Bearer JWT)", me)):
        count, latencies, elapsed = await load(
            url, args.seconds, args.concurrency, request
        )
        rows.append(
            (
                name,
                f"{count / elapsed:,.1f}",
                f"{percentile(latencies, 0.50) * 1000:,.1f}",
                f"{percentile(latencies, 0.99) * 1000:,.1f}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--url", help="the database URL (default: SQLite, a new file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authgen-bench-") as name:
        folder = Path(name)
        service, package = generate(folder)
        with server(service, package, folder, args.url) as running:
            rows = asyncio.run(run(args, running.url))
    verify = argon2_verify_ms()
    parameters = ", ".join(f"{name}={value}" for name, value in ARGON2.items())
    print(
        f"argon2id ({parameters}); {os.cpu_count()} CPUs; concurrency {args.concurrency}; one worker; {args.url or 'SQLite'}"
    )
    print(f"argon2id verify: {verify:.1f} ms per call (median of 20, this process)")
    print()
    print(f"{'operation':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for operation, rate, p50, p99 in rows:
        print(f"{operation:<18}{rate:>10}{p50:>10}{p99:>10}")


if __name__ == "__main__":
    main()
