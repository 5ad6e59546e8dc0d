"""Shared pieces of the benchmarks: paths, the machine, statistics, results.

Every comparison is a ratio of two sides measured in the same run, one
after the other, round after round, because the machine is shared and noisy:
absolute numbers drift, ratios of interleaved runs much less.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterator

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCS = ROOT / "docs"
WORK = ROOT / "build" / "bench"


@dataclass
class Sample:
    """Several runs of one measurement."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        return min(self.values, default=math.nan)

    @property
    def high(self) -> float:
        return max(self.values, default=math.nan)

    def show(self, digits: int = 0, unit: str = "") -> str:
        """`median (min–max)`, the way every table cell shows a figure."""
        if not self.values:
            return "n/a"
        fmt = f"{{:,.{digits}f}}"
        return (
            f"{fmt.format(self.median)}{unit} "
            f"({fmt.format(self.low)}–{fmt.format(self.high)})"
        )


def ratios(ours: list[float], theirs: list[float]) -> Sample:
    """Round-by-round ratios: each pair ran back to back on the same machine."""
    return Sample([a / b for a, b in zip(ours, theirs, strict=True) if b])


@dataclass
class Target:
    """A figure with its goal, shown met/missed in the tables."""

    name: str
    sample: Sample
    goal: str
    met: bool
    digits: int = 2
    unit: str = ""
    note: str = ""

    @property
    def verdict(self) -> str:
        return "met" if self.met else "**missed**"


@dataclass
class Section:
    """One part of the report: tables (markdown) and charts (file names)."""

    title: str
    text: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def snapshot() -> Path:
    """The committed tree (HEAD), unpacked: what the figures describe.

    The working tree changes under a long run when others edit it; HEAD does
    not, and its commit id goes into the report.
    """
    folder = WORK / "snapshot"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()


def authgen_command(source: Path) -> tuple[list[str], dict[str, str]]:
    """`authgen` run from the snapshot: the command and its environment."""
    return [str(BIN / "python"), "-m", "authgen"], {"PYTHONPATH": str(source / "src")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    memory = psutil.virtual_memory().total / 2**30
    try:
        os_name = platform.freedesktop_os_release()["PRETTY_NAME"]
    except OSError:
        os_name = platform.system()
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": f"{memory:.0f} GiB",
        "OS": f"{os_name}, kernel {platform.release()}",
        "Python": platform.python_version(),
    }


def versions(names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def tool_version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return (result.stdout or result.stderr).strip().splitlines()[0]


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


#: The PostgreSQL server the benchmarks create their databases on.
POSTGRES = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def database(kind: str, name: str) -> Iterator[str]:
    """A fresh, empty database of `kind` ("sqlite" or "postgresql"): its URL.

    A PostgreSQL database is created on POSTGRES for this run and dropped
    after it, so runs never see each other's users.
    """
    if kind == "sqlite":
        folder = WORK / "databases"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{name}.db*"):
            old.unlink()
        yield f"sqlite:///{folder / name}.db"
        return
    name = f"bench_{name}_{os.getpid()}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_reachable() -> bool:
    try:
        asyncio.run(_postgres("SELECT 1"))
        return True
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError):
        return False


async def _postgres(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
