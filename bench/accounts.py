"""Accounts benchmark: logins/s and authenticated `me`/s of the emitted service.

Generates example-user.yaml into a temporary folder, starts the service as
users run it (`python -m <package> serve`, one worker, embedded SQLite) with
the production argon2id parameters, registers users, then keeps CONCURRENCY
requests in flight with httpx.AsyncClient: first `login`, then `me` with the
tokens the logins gave. Also times one argon2id verify in this process, the
floor under a login's latency.

    .venv/bin/python bench/accounts.py [--users 32] [--seconds 10] [--concurrency 16]

The load generator runs on the same machine and takes CPU from the service,
so the figures are a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from argon2 import PasswordHasher, Type

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def generate(folder: Path) -> tuple[Path, str]:
    """The example service, generated; returns its folder and package name."""
    out = folder / "service"
    subprocess.run(
        [str(BIN / "authgen"), "generate", str(SPEC), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out, load_spec(SPEC).service.package_name


def start(service: Path, package: str, folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(
            service / "src"
        ),  # this generation, whatever else is installed
        "AUTH_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
        "AUTH_PUBLIC_URL": url,
        "AUTH_PRIVATE_KEY_FILE": str(folder / "keys" / "private.pem"),
        "AUTH_PUBLIC_KEY_FILE": str(folder / "keys" / "public.pem"),
        "AUTH_OUTBOX_DIR": str(folder / "outbox"),
        **{f"AUTH_ARGON2_{name.upper()}": str(value) for name, value in ARGON2.items()},
    }
    command = [
        sys.executable,
        "-m",
        package,
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = open(folder / "service.log", "ab")
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the service exited at start; see {folder / 'service.log'}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    sys.exit("the service did not start within 60 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


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
    hasher = PasswordHasher(type=Type.ID, **ARGON2)
    stored = hasher.hash(PASSWORD)
    timings = []
    for _ in range(rounds):
        began = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings) * 1000


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authgen-bench-") as name:
        folder = Path(name)
        service, package = generate(folder)
        process, url = start(service, package, folder)
        try:
            rows = asyncio.run(run(args, url))
        finally:
            stop(process)
    verify = argon2_verify_ms()
    parameters = ", ".join(f"{name}={value}" for name, value in ARGON2.items())
    print(
        f"argon2id ({parameters}); {os.cpu_count()} CPUs; concurrency {args.concurrency}; one worker; SQLite"
    )
    print(f"argon2id verify: {verify:.1f} ms per call (median of 20, this process)")
    print()
    print(f"{'operation':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for operation, rate, p50, p99 in rows:
        print(f"{operation:<18}{rate:>10}{p50:>10}{p99:>10}")


if __name__ == "__main__":
    main()
