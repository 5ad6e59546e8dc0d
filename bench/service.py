"""The emitted service under HTTP load, against its yardsticks and its peer.

The example spec is generated into a fresh folder; then, on SQLite and on
PostgreSQL in turn (a database created for the run and dropped after it),
the database is seeded with 1,000,000 users and the service started as users
run it (`python -m acme_auth serve --port P --workers N`). Beside it run the
bare Starlette `me` (bench/baseline_app.py, same database and key) and, on
SQLite, fastapi-users (bench/peer_fastapi_users.py, its own venv and
database). wrk loads them from its own process; in every round the sides of a
comparison run back to back, their order flipping from round to round.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import loadgen
from common import (
    BIN,
    ROOT,
    WORK,
    Sample,
    Section,
    Target,
    authgen_command,
    database,
    free_port,
    log,
    postgres_reachable,
    ratios,
)
from loadgen import Load, Request
from servers import PeakMemory, Server

SECONDS = float(os.environ.get("BENCH_SECONDS", 5))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
QUERY_SECONDS = 1
QUERY_ROUNDS = int(os.environ.get("BENCH_QUERY_ROUNDS", 2))
#: Connections measured for each number of workers; fewer with two workers
#: keeps `make bench` near 15 minutes with both databases.
RUNS = {1: (16, 64), 2: (16,)}
CONCURRENCY = RUNS[1]
#: Connections of the scale-out comparison (split over the two instances).
SCALE_CONNECTIONS = 32
USERS = int(os.environ.get("BENCH_USERS", 1_000_000))
PASSWORD = "bench-password-1"
# One account per connection at most: a login counts toward its (account, address)
# limit (10) while it is being checked, so 64 connections on 8 accounts would be throttled.
ACCOUNTS = 64
PEER_VENV = WORK / "peer-venv"

ME_QUERY = "{ me { _id email email_verified username gender age } }"
LOGIN = (
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
)
REGISTER = "mutation($f: UserRegisterInput!) { register(fields: $f) }"


def _graphql(query: str, variables: dict | None = None) -> str:
    return json.dumps({"query": query, "variables": variables or {}})


PAGE = (
    "query($f: FilterFindManyUserPublicInfoInput, $s: SortFindManyUserPublicInfoInput)"
    " { userPagination(page: 500, perPage: 20, filter: $f, sort: $s)"
    " { count items { _id username age } pageInfo { hasNextPage } } }"
)
COUNT = "query($f: FilterUserPublicInfoInput) { userCount(filter: $f) }"
ONE = "query($f: FilterFindOneUserPublicInfoInput) { userOne(filter: $f) { _id username age gender } }"


def stored_user(url: str) -> dict[str, Any]:
    """A seeded user's public values (bench/seed.py's user 12345), to look up."""
    query = '{ userOne(filter: {username: "use0012345"}) { _id %s } }' % (
        " ".join(("username", "gender", "age", "lastSeen", "website"))
    )
    answer = httpx.post(url + "/graphql", json={"query": query}, timeout=30)
    return answer.json()["data"]["userOne"]


def public_queries(user: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every filter a stranger can send on example-user.yaml's public fields
    (equality on each; gt/gte/lt/lte, ne, in, nin on the indexed ones), each
    as the deepest page a stranger may ask for (page 500 of 20, the result
    window's end) with its count; counts alone; sorts; userOne by the unique
    field. `user` gives stored values to look up."""
    operators = lambda field, ops: {"_operators": {field: ops}}  # noqa: E731
    filters: dict[str, dict[str, Any]] = {
        "none": {},
        "_id = x": {"_id": user["_id"]},
        "email_verified = false": {"email_verified": False},
        "username = x": {"username": user["username"]},
        "gender = M": {"gender": "M"},
        "age = 30": {"age": 30},
        "lastSeen = x": {"lastSeen": user["lastSeen"]},
        "website = x": {"website": user["website"]},
        "18 ≤ age ≤ 65": operators("age", {"gte": 18, "lte": 65}),
        "age > 140": operators("age", {"gt": 140}),
        "age < 10": operators("age", {"lt": 10}),
        "age ≠ 30": operators("age", {"ne": 30}),
        "age in [20, 30, 40]": operators("age", {"in": [20, 30, 40]}),
        "age not in [20, 30, 40]": operators("age", {"nin": [20, 30, 40]}),
        "username ≥ x": operators("username", {"gte": user["username"]}),
        "username in [x, y]": operators(
            "username", {"in": [user["username"], "use0000042"]}
        ),
        "username ≠ x": operators("username", {"ne": user["username"]}),
        "_id > x": operators("_id", {"gt": user["_id"]}),
        "_id in [x]": operators("_id", {"in": [user["_id"]]}),
        "gender = M or age < 10": {
            "OR": [{"gender": "M"}, operators("age", {"lt": 10})]
        },
    }
    found: dict[str, tuple[str, dict[str, Any]]] = {
        f"page 500 where {name}": (PAGE, {"f": where})
        for name, where in filters.items()
    }
    for name in ("none", "email_verified = false", "gender = M", "age ≠ 30"):
        found[f"userCount where {name}"] = (COUNT, {"f": filters[name]})
    for sort in ("AGE_DESC", "USERNAME_ASC", "_ID_DESC"):
        found[f"page 500 sorted {sort}"] = (PAGE, {"s": sort})
    found["page 500 where gender = M sorted AGE_ASC"] = (
        PAGE,
        {"f": filters["gender = M"], "s": "AGE_ASC"},
    )
    found["userOne where username = x"] = (ONE, {"f": {"username": user["username"]}})
    return found


@dataclass
class Measures:
    """Everything measured, by key, one value per round."""

    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, key: str, value: float) -> None:
        self.values[key].append(value)

    def sample(self, key: str) -> Sample:
        return Sample(self.values[key])


class Bench:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.root = WORK / "service"
        self.m = Measures()
        self.notes: list[str] = []

    # --- setup -----------------------------------------------------------------

    def prepare(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.project = self.root / "acme-auth"
        command, path = authgen_command(self.source)
        subprocess.run(
            [
                *command,
                "generate",
                str(self.source / "example-user.yaml"),
                "-o",
                str(self.project),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **path},
        )
        self.env = {
            "PYTHONPATH": str(self.project / "src"),
            "AUTH_AUTH_TOKEN_TTL": "7200",
            "AUTH_OUTBOX_DIR": str(self.root / "outbox"),
        }
        self.settings = self._production_settings()
        self._peer_venv()
        self.databases = ["sqlite"]
        if postgres_reachable():
            self.databases.append("postgresql")
        else:
            self.notes.append(
                "PostgreSQL unreachable (BENCH_POSTGRES_URL): SQLite only"
            )

    def seed(self, url: str) -> None:
        log(f"seeding {USERS:,} users into {url}")
        started = time.monotonic()
        subprocess.run(
            [
                str(BIN / "python"),
                str(ROOT / "bench" / "seed.py"),
                str(self.project),
                "--users",
                str(USERS),
                "--url",
                url,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.m.add(f"seed {url.split(':')[0]} s", time.monotonic() - started)

    def _production_settings(self) -> dict[str, int]:
        """The argon2 parameters the service runs with (its defaults)."""
        code = (
            "import json; from acme_auth.settings import Settings; s = Settings(); "
            "print(json.dumps({k: getattr(s, 'argon2_' + k) for k in "
            "('time_cost', 'memory_cost', 'parallelism')}))"
        )
        output = subprocess.run(
            [str(BIN / "python"), "-c", code],
            cwd=self.project,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output)

    def _peer_venv(self) -> None:
        python = PEER_VENV / "bin" / "python"
        if not python.exists():
            log("creating the fastapi-users venv")
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "-r",
                    str(ROOT / "bench" / "peer-requirements.txt"),
                ],
                check=True,
            )

    def ours(self, url: str, workers: int) -> Server:
        port = free_port()
        return Server(
            f"acme-auth ×{workers}",
            [
                str(BIN / "python"),
                "-m",
                "acme_auth",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            self.project,
            {**self.env, "AUTH_DATABASE_URL": url},
            port,
            "/healthz",
            self.root / "acme-auth.log",
        )

    def baseline(self, url: str, workers: int) -> Server:
        port = free_port()
        return Server(
            f"baseline ×{workers}",
            [
                str(BIN / "python"),
                "-m",
                "uvicorn",
                "baseline_app:create_app",
                "--factory",
                "--app-dir",
                str(ROOT / "bench"),
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            self.project,
            {
                "BENCH_DATABASE_URL": url,
                "BENCH_PUBLIC_KEY": str(self.project / "keys" / "public.pem"),
            },
            port,
            "/me",
            self.root / "baseline.log",
        )

    def peer(self) -> Server:
        port = free_port()
        return Server(
            "fastapi-users",
            [
                str(PEER_VENV / "bin" / "python"),
                "-m",
                "uvicorn",
                "peer_fastapi_users:create_app",
                "--factory",
                "--app-dir",
                str(ROOT / "bench"),
                "--port",
                str(port),
            ],
            self.root,
            {
                "BENCH_DATABASE": str(self.root / "peer.db"),
                "BENCH_PRIVATE_KEY": str(self.project / "keys" / "private.pem"),
                "BENCH_PUBLIC_KEY": str(self.project / "keys" / "public.pem"),
                **{
                    f"BENCH_ARGON2_{k.upper()}": str(v)
                    for k, v in self.settings.items()
                },
            },
            port,
            "/docs",
            self.root / "peer.log",
        )

    # --- requests ----------------------------------------------------------------

    def our_accounts(self, server: Server) -> tuple[Request, Request, Request]:
        """Register accounts, log one in: the login, me and register loads."""
        emails = [f"bench{i}@example.com" for i in range(ACCOUNTS)]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for i, email in enumerate(emails):
                fields = {
                    "email": email,
                    "password": PASSWORD,
                    "username": f"bench{i}",
                    "gender": "Other",
                    "age": 30,
                }
                client.post(
                    "/graphql",
                    content=_graphql(REGISTER, {"f": fields}),
                    headers={"Content-Type": "application/json"},
                )
            answer = client.post(
                "/graphql",
                json={"query": LOGIN, "variables": {"e": emails[0], "p": PASSWORD}},
            )
            token = answer.json()["data"]["login"]["token"]
        login = Request(
            "/graphql", [_graphql(LOGIN, {"e": e, "p": PASSWORD}) for e in emails]
        )
        me = Request(
            "/graphql",
            [_graphql(ME_QUERY)],
            headers={"Authorization": f"Bearer {token}"},
        )
        register = Request(
            "/graphql",
            [
                _graphql(
                    REGISTER,
                    {
                        "f": {
                            "email": "{n}@example.com",
                            "password": PASSWORD,
                            "username": "{n}",
                            "gender": "M",
                            "age": 40,
                        }
                    },
                )
            ],
        )
        self._check(server, [login, me, register])
        return login, me, register

    def baseline_me(self, server: Server, me: Request) -> Request:
        request = Request("/me", [""], method="GET", headers=me.headers, graphql=False)
        self._check(server, [request])
        return request

    def peer_accounts(self, server: Server) -> tuple[Request, Request, Request]:
        emails = [f"bench{i}@example.com" for i in range(ACCOUNTS)]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for email in emails:
                client.post(
                    "/auth/register", json={"email": email, "password": PASSWORD}
                )
            answer = client.post(
                "/auth/jwt/login", data={"username": emails[0], "password": PASSWORD}
            )
            token = answer.json()["access_token"]
        login = Request(
            "/auth/jwt/login",
            [f"username={e}&password={PASSWORD}" for e in emails],
            headers=form,
            graphql=False,
        )
        me = Request(
            "/users/me",
            [""],
            method="GET",
            headers={"Authorization": f"Bearer {token}"},
            graphql=False,
        )
        register = Request(
            "/auth/register",
            [json.dumps({"email": "{n}@example.com", "password": PASSWORD})],
            graphql=False,
        )
        self._check(server, [login, me, register])
        return login, me, register

    @staticmethod
    def _check(server: Server, requests: list[Request], settle: bool = True) -> None:
        """One short run of each load must succeed, or the figures mean nothing."""
        for request in requests:
            for seconds in (2, 10, 30):  # a loaded machine may hash slowly
                tag = f"check{time.time_ns()}"
                load = loadgen.run(server.url, request, 1, seconds, tag=tag)
                if load.requests:
                    break
            if settle:
                server.settle()
            if not load.clean:
                raise RuntimeError(
                    f"{server.name} {request.path}: {load.failures} of "
                    f"{load.requests} requests failed in the check run"
                )

    def load(
        self,
        key: str,
        server: Server,
        request: Request,
        connections: int,
        seconds: float = SECONDS,
        settle: bool = True,
        tag: str = "r",
    ) -> Load:
        result = loadgen.run(server.url, request, connections, seconds, tag=tag)
        if settle:
            server.settle()
        if not result.clean:
            self.notes.append(
                f"{key}: {result.failures} of {result.requests} requests failed"
            )
        self.m.add(f"{key} rps", result.per_second)
        self.m.add(f"{key} p50", result.p50_ms)
        self.m.add(f"{key} p99", result.p99_ms)
        log(
            f"{key}: {result.per_second:,.1f}/s p50 {result.p50_ms:.1f} ms "
            f"p99 {result.p99_ms:.1f} ms ({result.failures} failed)"
        )
        return result

    # --- phases ------------------------------------------------------------------

    def argon2_bound(self, key: str) -> None:
        """cores ÷ one verify's time on 4 KiB pages (argon2-cffi as it comes), and
        what `cores` threads verify per second that way and on huge pages, as the
        service runs its hashes."""
        plain = self._argon2_alone("glibc.malloc.hugetlb=0")
        huge = self._argon2_alone("glibc.malloc.hugetlb=1")
        cores = os.cpu_count() or 1
        self.m.add(f"{key} verify ms", plain["verify_s"] * 1000)
        self.m.add(f"{key} bound", cores / plain["verify_s"])
        self.m.add(f"{key} parallel", plain["parallel"])
        self.m.add(f"{key} parallel huge", huge["parallel"])

    def _argon2_alone(self, tunables: str) -> dict[str, float]:
        output = subprocess.run(
            [
                str(BIN / "python"),
                str(ROOT / "bench" / "argon2_alone.py"),
                json.dumps(self.settings),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "GLIBC_TUNABLES": tunables},
        ).stdout
        return json.loads(output)

    def queries(self, db: str, server: Server) -> None:
        """Every public query of the example spec, one request at a time."""
        for name, (query, variables) in public_queries(stored_user(server.url)).items():
            request = Request("/graphql", [_graphql(query, variables)])
            self._check(server, [request], settle=False)
            for _ in range(QUERY_ROUNDS):
                self.load(
                    f"query {db} {name} c1", server, request, 1, QUERY_SECONDS, False
                )

    def run(self) -> tuple[Section, Section]:
        self.prepare()
        for db in self.databases:
            with database(db, "service") as url:
                self.seed(url)
                self.measure(db, url)
        return self.service_section(), self.peer_section()

    def measure(self, db: str, url: str) -> None:
        for workers, concurrency in RUNS.items():
            ours, baseline = self.ours(url, workers), self.baseline(url, workers)
            with ours, baseline:
                login, me, register = self.our_accounts(ours)
                bare_me = self.baseline_me(baseline, me)
                time.sleep(1)
                self.m.add(f"rss idle {db} w{workers}", ours.rss_mib())
                peer = self.peer() if db == "sqlite" and workers == 1 else None
                if workers == 1:
                    self.queries(db, ours)
                with peer or contextlib.nullcontext():
                    theirs = self.peer_accounts(peer) if peer else None
                    if peer:
                        self.m.add("peer rss idle", peer.rss_mib())
                    self.rounds(
                        db,
                        workers,
                        concurrency,
                        ours,
                        baseline,
                        (login, me, register, bare_me),
                        peer,
                        theirs,
                    )
        if db == "postgresql":
            self.scale_out(url)

    def scale_out(self, url: str) -> None:
        """`me`/s of two instances (two ports, as two hosts) on one database against one."""
        one, two = self.ours(url, 1), self.ours(url, 1)
        with one, two:
            _, me, _ = self.our_accounts(one)
            for round_ in range(ROUNDS):

                def alone() -> None:
                    self.load("scale one", one, me, SCALE_CONNECTIONS)

                def both() -> None:
                    halves = [
                        loadgen.start(server.url, me, SCALE_CONNECTIONS // 2, SECONDS)
                        for server in (one, two)
                    ]
                    loads = [loadgen.finish(process) for process in halves]
                    self.m.add("scale two rps", sum(load.per_second for load in loads))
                    log(f"scale two: {sum(load.per_second for load in loads):,.0f}/s")

                _alternate([alone, both], round_ % 2 == 1)

    def rounds(
        self,
        db: str,
        workers: int,
        concurrency: tuple[int, ...],
        ours: Server,
        baseline: Server,
        requests: tuple[Request, Request, Request, Request],
        peer: Server | None = None,
        theirs: tuple[Request, Request, Request] | None = None,
    ) -> None:
        login, me, register, bare_me = requests
        for connections in concurrency:
            at = f"{db} w{workers} c{connections}"
            for round_ in range(ROUNDS):
                flip = round_ % 2 == 1
                tag = f"{db}w{workers}c{connections}r{round_}"
                self.argon2_bound(at)
                with PeakMemory(ours) as memory:
                    pair = [
                        lambda: self.load(f"ours login {at}", ours, login, connections)
                    ]
                    if peer and theirs:
                        pair.append(
                            lambda: self.load(
                                f"peer login {at}", peer, theirs[0], connections
                            )
                        )
                    _alternate(pair, flip)
                    trio = [
                        lambda: self.load(f"ours me {at}", ours, me, connections),
                        lambda: self.load(
                            f"bare me {at}", baseline, bare_me, connections
                        ),
                    ]
                    if peer and theirs:
                        trio.append(
                            lambda: self.load(
                                f"peer me {at}", peer, theirs[1], connections
                            )
                        )
                    _alternate(trio, flip)
                    if connections == concurrency[0]:
                        self.mixed(at, ours, me, login, connections)
                self.m.add(f"rss load {db} w{workers}", memory.peak)
                if peer and theirs:
                    with PeakMemory(peer) as peer_memory:
                        _alternate(
                            [
                                lambda: self.load(
                                    f"ours register {at}",
                                    ours,
                                    register,
                                    connections,
                                    tag=tag + "o",
                                ),
                                lambda: self.load(
                                    f"peer register {at}",
                                    peer,
                                    theirs[2],
                                    connections,
                                    tag=tag + "p",
                                ),
                            ],
                            flip,
                        )
                    self.m.add("peer rss load", peer_memory.peak)

    def mixed(
        self, at: str, ours: Server, me: Request, login: Request, connections: int
    ) -> None:
        """`me` while logins run at the same time: hashing must not stall the loop."""
        logins = loadgen.start(ours.url, login, connections, SECONDS)
        time.sleep(0.5)  # the logins are hashing before `me` starts
        mixed = loadgen.run(ours.url, me, connections, SECONDS - 1)
        loadgen.finish(logins)
        ours.settle()
        alone = self.m.values[f"ours me {at} p99"][-1]
        self.m.add(f"mixed me {at} p99", mixed.p99_ms)
        self.m.add(f"mixed me {at} p99 ratio", mixed.p99_ms / alone)
        log(f"me p99 with logins {at}: {mixed.p99_ms:.1f} ms (alone {alone:.1f} ms)")

    # --- report ------------------------------------------------------------------

    def service_section(self) -> Section:
        import charts

        s = Section("Emitted service")
        m = self.m
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        seeded = ", ".join(
            f"{names[db]} {m.sample(f'seed {db} s').show(0, ' s')}"
            for db in self.databases
        )
        s.text.append(
            f"The example spec, generated and started with `python -m acme_auth serve "
            f"--workers N`, on {' and on '.join(names[db] for db in self.databases)} "
            f"(PostgreSQL {_server_version()} on the same machine, a database created "
            f"for the run and dropped after it), each seeded with {USERS:,} users "
            f"(bench/seed.py: {seeded}). wrk (1 thread, its own process) keeps C "
            f"connections busy for {SECONDS:g} s per measurement, {ROUNDS} rounds; the "
            "sides of each ratio run back to back, the order flipping every round. "
            f"argon2id parameters: {self.settings}."
        )
        runs = [
            (db, workers, connections)
            for db in self.databases
            for workers, concurrency in RUNS.items()
            for connections in concurrency
        ]
        s.text += [
            "",
            "### Logins against the argon2id bound",
            "",
            "The bound is cores ÷ the time of one verify (argon2-cffi, the service's "
            "parameters, on the usual 4 KiB pages), measured in the same round. The "
            "service runs its hashes on huge pages (glibc's `glibc.malloc.hugetlb`, "
            "set by `serve`; docs/performance.md), which makes each one faster, so "
            "it can pass that bound. The last two columns show its own overhead: "
            "what `cores` threads of argon2 alone verify per second on huge pages, "
            "and the logins against that.",
            "",
            "| database | workers, connections | logins/s | bound (cores ÷ verify) | ratio "
            "| ≥ 90% | one verify | argon2 alone, cores threads, 4 KiB pages "
            "| the same, huge pages | logins ÷ that |",
            "|---|---|---:|---:|---:|:---:|---:|---:|---:|---:|",
        ]
        for db, workers, connections in runs:
            at = f"{db} w{workers} c{connections}"
            logins = m.values[f"ours login {at} rps"]
            ratio = ratios(logins, m.values[f"{at} bound"])
            overhead = ratios(logins, m.values[f"{at} parallel huge"])
            target = _at_least_90(
                f"logins/s ÷ argon2id bound, {names[db]} w{workers} c{connections}",
                ratio,
            )
            s.targets.append(target)
            s.text.append(
                f"| {names[db]} | {workers}, {connections} "
                f"| {m.sample(f'ours login {at} rps').show(1)} "
                f"| {m.sample(f'{at} bound').show(1)} | {_pct(ratio)} | {target.verdict} "
                f"| {m.sample(f'{at} verify ms').show(0, ' ms')} "
                f"| {m.sample(f'{at} parallel').show(1)}/s "
                f"| {m.sample(f'{at} parallel huge').show(1)}/s | {_pct(overhead)} |"
            )
        s.text += [
            "",
            "### `me` against the bare Starlette baseline",
            "",
            "The baseline (bench/baseline_app.py) does only `me`'s work: JWT verify "
            "(same key, same algorithm), the user by id from the same database through "
            "SQLAlchemy async (same driver and pool size), JSON. The ratio is the cost "
            "of the GraphQL layer.",
            "",
            "| database | workers, connections | ours me/s | baseline /s | ratio | ≥ 90% "
            "| ours p99 | baseline p99 |",
            "|---|---|---:|---:|---:|:---:|---:|---:|",
        ]
        for db, workers, connections in runs:
            at = f"{db} w{workers} c{connections}"
            ratio = ratios(m.values[f"ours me {at} rps"], m.values[f"bare me {at} rps"])
            target = _at_least_90(
                f"me ÷ bare baseline, {names[db]} w{workers} c{connections}", ratio
            )
            s.targets.append(target)
            s.text.append(
                f"| {names[db]} | {workers}, {connections} "
                f"| {m.sample(f'ours me {at} rps').show(0)} "
                f"| {m.sample(f'bare me {at} rps').show(0)} | {_pct(ratio)} "
                f"| {target.verdict} | {m.sample(f'ours me {at} p99').show(1, ' ms')} "
                f"| {m.sample(f'bare me {at} p99').show(1, ' ms')} |"
            )
        s.text += [
            "",
            "### `me` p99 while logins run",
            "",
            "`me` alone, then again while a second wrk keeps as many logins in flight.",
            "",
            "| database | workers, connections | p99 alone | p99 with logins | ratio | ≤ 3× |",
            "|---|---|---:|---:|---:|:---:|",
        ]
        for db in self.databases:
            for workers, concurrency in RUNS.items():
                at = f"{db} w{workers} c{concurrency[0]}"
                ratio = m.sample(f"mixed me {at} p99 ratio")
                target = Target(
                    f"me p99 with logins ÷ alone, {names[db]} w{workers} c{concurrency[0]}",
                    ratio,
                    "≤ 3×",
                    ratio.median <= 3,
                    unit="×",
                )
                s.targets.append(target)
                s.text.append(
                    f"| {names[db]} | {workers}, {concurrency[0]} "
                    f"| {m.sample(f'ours me {at} p99').show(1, ' ms')} "
                    f"| {m.sample(f'mixed me {at} p99').show(1, ' ms')} "
                    f"| {ratio.show(2, '×')} | {target.verdict} |"
                )
        if "postgresql" in self.databases:
            ratio = ratios(m.values["scale two rps"], m.values["scale one rps"])
            s.text += [
                "",
                "### Two instances on PostgreSQL against one",
                "",
                f"Two `serve` processes (1 worker each, two ports, as two hosts would "
                f"be) on one PostgreSQL database, {SCALE_CONNECTIONS // 2} connections "
                f"each, against one of them with {SCALE_CONNECTIONS}. The machine has "
                f"{os.cpu_count()} cores shared by the instances, PostgreSQL and wrk, so "
                "the ratio shows what sharing costs (sessions, the database), not what a "
                "second host would add.",
                "",
                "| two instances `me`/s | one instance `me`/s | ratio |",
                "|---:|---:|---:|",
                f"| {m.sample('scale two rps').show(0)} "
                f"| {m.sample('scale one rps').show(0)} | {ratio.show(2, '×')} |",
            ]
        s.text += [
            "",
            f"### Public queries at {USERS:,} users (1 worker)",
            "",
            "Every filter a stranger can send on the example spec's public fields, "
            "one request at a time (wrk, 1 connection, "
            f"{QUERY_SECONDS:g} s × {QUERY_ROUNDS} rounds): p50 is the query's latency "
            "as a client sees it. `page 500` is `userPagination(page: 500, perPage: "
            "20)`, the deepest page within `AUTH_PUBLIC_RESULT_WINDOW` (10,000), with "
            "its count (which stops at 10,000).",
            "",
            "| query | "
            + " | ".join(f"{names[db]} p50 | < 10 ms | p99" for db in self.databases)
            + " |",
            "|---|" + "---:|:---:|---:|" * len(self.databases),
        ]
        for name in self.query_names():
            cells = []
            for db in self.databases:
                p50 = m.sample(f"query {db} {name} c1 p50")
                target = Target(
                    f"{names[db]}: {name} p50",
                    p50,
                    "< 10 ms",
                    p50.median < 10,
                    digits=1,
                    unit=" ms",
                )
                s.targets.append(target)
                cells.append(
                    f"{p50.show(1, ' ms')} | {target.verdict} "
                    f"| {m.sample(f'query {db} {name} c1 p99').show(1, ' ms')}"
                )
            s.text.append(f"| `{name}` | " + " | ".join(cells) + " |")
        s.text += [
            "",
            "### Resident memory (RSS, all processes of the server)",
            "",
            "| database | workers | idle | peak under load (logins + me) |",
            "|---|---|---:|---:|",
        ]
        for db in self.databases:
            for workers in RUNS:
                s.text.append(
                    f"| {names[db]} | {workers} "
                    f"| {m.sample(f'rss idle {db} w{workers}').show(0, ' MiB')} "
                    f"| {m.sample(f'rss load {db} w{workers}').show(0, ' MiB')} |"
                )
        if self.notes:
            s.text += [
                "",
                "Notes (failed requests are not counted as throughput):",
                "",
                *[f"- {note}" for note in self.notes],
            ]
        s.charts.append(charts.service(m, [f"{db} w{w} c{c}" for db, w, c in runs]))
        return s

    def query_names(self) -> list[str]:
        """The public queries measured, in their order."""
        prefix = "query sqlite "
        return [
            key[len(prefix) : -len(" c1 p50")]
            for key in self.m.values
            if key.startswith(prefix) and key.endswith(" c1 p50")
        ]

    def peer_section(self) -> Section:
        import charts

        s = Section("Against fastapi-users")
        m = self.m
        s.text += [
            "fastapi-users' documented SQLAlchemy setup (bench/peer_fastapi_users.py) on "
            "SQLite, 1 worker each, in its own venv (fastapi-users-db-sqlalchemy pins "
            "SQLAlchemy < 2.1). Same argon2id parameters (pwdlib's Argon2Hasher accepts "
            "them), same RS256 key. What still differs: fastapi-users hashes on the event "
            "loop; our login also opens a session (a refresh-token row and cookie), our "
            "register also validates the spec's fields and queues a verification mail; "
            "their `me` is a REST GET, ours a GraphQL query.",
            "",
            "| flow, connections | ours /s | fastapi-users /s | ratio | ≥ 1× | ours p99 "
            "| theirs p99 |",
            "|---|---:|---:|---:|:---:|---:|---:|",
        ]
        for flow in ("register", "login", "me"):
            for connections in CONCURRENCY:
                at = f"sqlite w1 c{connections}"
                ratio = ratios(
                    m.values[f"ours {flow} {at} rps"], m.values[f"peer {flow} {at} rps"]
                )
                target = Target(
                    f"{flow} ÷ fastapi-users, c{connections}",
                    ratio,
                    "≥ 1×",
                    ratio.median >= 1,
                    unit="×",
                )
                s.targets.append(target)
                s.text.append(
                    f"| {flow}, {connections} | {m.sample(f'ours {flow} {at} rps').show(1)} "
                    f"| {m.sample(f'peer {flow} {at} rps').show(1)} | {ratio.show(2, '×')} "
                    f"| {target.verdict} | {m.sample(f'ours {flow} {at} p99').show(0, ' ms')} "
                    f"| {m.sample(f'peer {flow} {at} p99').show(0, ' ms')} |"
                )
        s.text += [
            "",
            f"fastapi-users RSS: idle {m.sample('peer rss idle').show(0, ' MiB')}, "
            f"peak under register load {m.sample('peer rss load').show(0, ' MiB')}.",
        ]
        s.charts.append(charts.peer(m, "sqlite w1", CONCURRENCY))
        return s


def _alternate(steps: list, flip: bool) -> None:
    for step in (reversed(steps) if flip else steps):
        step()


def _server_version() -> str:
    try:
        return subprocess.run(
            ["psql", "--version"], capture_output=True, text=True
        ).stdout.split()[
            2
        ]  # psql (PostgreSQL) 15.20 (Debian ...)
    except (OSError, IndexError):
        return "(version unknown)"


def _at_least_90(figure: str, ratio: Sample) -> Target:
    """The 90 % bar the service's throughput ratios are held to."""
    return Target(figure, ratio, "≥ 90%", ratio.median >= 0.9)


def _pct(sample: Sample) -> str:
    if not sample.values:
        return "n/a"
    return f"{sample.median:.0%} ({sample.low:.0%}–{sample.high:.0%})"


def run_all(source: Path) -> list[Section]:
    """`source` is the unpacked commit whose generated service is measured."""
    return list(Bench(source).run())
