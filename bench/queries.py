"""Latency of the public user queries on a seeded database (a benchmark, not a test).

    python bench/seed.py SERVICE_DIR             # once: 100,000 users into SERVICE_DIR/bench.db
    python bench/queries.py SERVICE_DIR [--requests 300]

Two figures per query, from sequential requests (one at a time):
- app: the ASGI app timed in-process through httpx.ASGITransport: the time
  the service spends on a request (GraphQL, store, JSON), without network;
- http: the started service (`python -m PACKAGE serve`) over one keep-alive
  connection on the loopback, as a client sees it.
Target: p50 < 10 ms at 100,000 users.
"""

import argparse
import asyncio
import importlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from seed import package_of

TARGET_MS = 10.0


def queries(fields: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The benchmarked queries, on the spec's own indexed and unique public fields."""
    indexed = next(
        name
        for name, field in fields.items()
        if field.public and field.indexed and not field.unique
    )
    unique = next(
        name for name, field in fields.items() if field.public and field.unique
    )
    page = """query($filter: FilterFindManyUserPublicInfoInput) {
      userPagination(page: 500, perPage: 20, filter: $filter) {
        count items { _id %s %s } pageInfo { currentPage pageCount hasNextPage }
      }
    }""" % (
        indexed,
        unique,
    )
    return {
        f"userPagination(page: 500, perPage: 20) where {indexed} >= 20": (
            page,
            {"filter": {"_operators": {indexed: {"gte": 20}}}},
        ),
        f"userPagination(page: 500, perPage: 20) where 18 <= {indexed} <= 65": (
            page,
            {"filter": {"_operators": {indexed: {"gte": 18, "lte": 65}}}},
        ),
        f"userPagination(page: 500, perPage: 20, sort: {indexed.upper()}_DESC) where 18 <= {indexed} <= 65": (
            page.replace(
                "$filter: FilterFindManyUserPublicInfoInput",
                "$filter: FilterFindManyUserPublicInfoInput, $sort: SortFindManyUserPublicInfoInput",
            ).replace("filter: $filter)", "filter: $filter, sort: $sort)"),
            {
                "filter": {"_operators": {indexed: {"gte": 18, "lte": 65}}},
                "sort": f"{indexed.upper()}_DESC",
            },
        ),
        f"userCount where {indexed} >= 20": (
            "query($filter: FilterUserPublicInfoInput) { userCount(filter: $filter) }",
            {"filter": {"_operators": {indexed: {"gte": 20}}}},
        ),
        f"userOne by {unique}": (
            "query($filter: FilterFindOneUserPublicInfoInput) { userOne(filter: $filter) { _id %s } }"
            % unique,
            {"filter": {unique: None}},  # filled in with a stored value
        ),
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def check(body: dict[str, Any]) -> None:
    if "errors" in body or not body.get("data"):
        raise SystemExit(f"the query failed: {body}")


async def time_app(
    package: str, url: str, work: dict, requests: int
) -> dict[str, tuple[float, float]]:
    settings = importlib.import_module(f"{package}.settings").Settings(database_url=url)
    app = importlib.import_module(f"{package}.app").create_app(settings)
    results = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench"
        ) as client:
            for name, (query, variables) in work.items():
                samples = []
                for i in range(requests + 20):
                    started = time.perf_counter()
                    response = await client.post(
                        "/graphql", json={"query": query, "variables": variables}
                    )
                    elapsed = time.perf_counter() - started
                    check(response.json())
                    if i >= 20:  # warm-up: caches, SQLite pages
                        samples.append(elapsed)
                results[name] = percentiles(samples)
    return results


def time_http(
    package: str, url: str, work: dict, requests: int
) -> dict[str, tuple[float, float]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="bench-")
    env = {**os.environ, "AUTH_DATABASE_URL": url, "AUTH_GRAPHIQL": "false"}
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
    process = subprocess.Popen(command, cwd=folder, env=env)
    results = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the service did not start")
                time.sleep(0.1)
            for name, (query, variables) in work.items():
                samples = []
                for i in range(requests + 20):
                    started = time.perf_counter()
                    response = client.post(
                        "/graphql", json={"query": query, "variables": variables}
                    )
                    elapsed = time.perf_counter() - started
                    check(response.json())
                    if i >= 20:
                        samples.append(elapsed)
                results[name] = percentiles(samples)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Latency of the public user queries on a seeded database."
    )
    parser.add_argument(
        "service",
        type=Path,
        help="a folder made by `authgen generate`, seeded by bench/seed.py",
    )
    parser.add_argument("--database", type=Path, help="default: SERVICE/bench.db")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    service = args.service.resolve()
    database = (args.database or service / "bench.db").resolve()
    if not database.exists():
        raise SystemExit(
            f"{database} does not exist: run bench/seed.py {args.service} first"
        )
    package = package_of(service)
    sys.path.insert(0, str(service / "src"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(service / "src"), os.environ.get("PYTHONPATH", "")]
    )
    url = f"sqlite:///{database}"
    fields = importlib.import_module(f"{package}.models").FIELDS
    work = queries(fields)
    import sqlite3

    with sqlite3.connect(database) as connection:
        users = connection.execute("SELECT count(*) FROM users").fetchone()[0]
        name = next(key for key in work if key.startswith("userOne"))
        unique = name.removeprefix("userOne by ")
        middle = connection.execute(
            f'SELECT "{unique}" FROM users ORDER BY _id LIMIT 1 OFFSET ?', (users // 2,)
        )
        work[name][1]["filter"][unique] = middle.fetchone()[0]
    print(
        f"{users} users, {args.requests} sequential requests per query (after 20 warm-up ones)"
    )
    app = asyncio.run(time_app(package, url, work, args.requests))
    http = time_http(package, url, work, args.requests)
    width = max(len(name) for name in work)
    print(f"{'query':<{width}}  app p50  app p99  http p50  http p99   (ms)")
    for name in work:
        flag = "" if http[name][0] < TARGET_MS else "  <- misses the 10 ms target"
        print(
            f"{name:<{width}}  {app[name][0]:7.2f}  {app[name][1]:7.2f}  {http[name][0]:8.2f}  {http[name][1]:8.2f}{flag}"
        )


if __name__ == "__main__":
    main()
