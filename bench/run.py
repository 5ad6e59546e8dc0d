"""`make bench`: measure the generator and the emitted service, write docs/benchmarks.md.

BENCH_SECONDS (default 5), BENCH_ROUNDS (default 3) and BENCH_QUERY_ROUNDS
(default 2) trade time for precision; BENCH_ONLY=generator or
BENCH_ONLY=service runs one part; BENCH_USERS (default 1,000,000) users are
seeded into SQLite and into a PostgreSQL database made on BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import generator  # noqa: E402
import loadgen  # noqa: E402
import service  # noqa: E402
from common import (
    DOCS,
    WORK,
    Section,
    commit,
    log,
    machine,
    snapshot,  # noqa: E402
    tool_version,
    versions,
)

LIBRARIES = [
    "authgen",
    "cookiecutter",
    "black",
    "jinja2",
    "starlette",
    "ariadne",
    "graphql-core",
    "sqlalchemy",
    "aiosqlite",
    "pyjwt",
    "argon2-cffi",
    "uvicorn",
    "uvloop",
    "httptools",
]


def main() -> None:
    started = time.monotonic()
    DOCS.mkdir(exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    only = os.environ.get("BENCH_ONLY", "")
    sections: list[Section] = []
    source = snapshot()
    if only in ("", "generator"):
        sections.append(generator.run(source))
    if only in ("", "service"):
        loadgen.install_wrk()
        if not loadgen.wrk_available():
            sys.exit(
                "bench: wrk is missing and could not be installed (apt-get install wrk)"
            )
        sections += service.run_all(source)
    write_report(sections, time.monotonic() - started)
    log(f"done in {time.monotonic() - started:.0f} s: {DOCS / 'benchmarks.md'}")


def write_report(sections: list[Section], seconds: float) -> None:
    peer = service.PEER_VENV / "bin" / "python"
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/run.py) on {dt.date.today().isoformat()} for "
        f"commit {commit()}, in "
        f"{seconds / 60:.0f} minutes. Figures are the median of several runs with the "
        "min–max in parentheses. Every comparison is a ratio of two sides measured in the "
        "same run, one right after the other, round after round with the order flipped, "
        "because the machine is shared and noisy: trust the ratios more than the absolute "
        "numbers. Nothing in the test suite depends on timings.",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine().items()],
        *[f"| {k} | {v} |" for k, v in versions(LIBRARIES).items()],
        f"| wrk | {tool_version(['wrk', '-v'])} |",
        f"| fastapi-users (peer venv) | {_peer_versions(str(peer))} |",
        "",
        "## Targets",
        "",
        "| figure | measured | target | |",
        "|---|---:|:---:|:---:|",
    ]
    for section in sections:
        for target in section.targets:
            figure = (
                f"{target.sample.median:.0%} ({target.sample.low:.0%}–"
                f"{target.sample.high:.0%})"
                if target.goal.endswith("%")
                else target.sample.show(target.digits, target.unit)
            )
            lines.append(
                f"| {target.name} | {figure} | {target.goal} | {target.verdict} |"
            )
    for section in sections:
        lines += ["", f"## {section.title}", "", *section.text, ""]
        lines += [f"![{section.title}]({chart})" for chart in section.charts]
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _peer_versions(python: str) -> str:
    import subprocess

    code = (
        "from importlib.metadata import version as v; print(', '.join(f'{n} {v(n)}' for n "
        "in ('fastapi-users', 'fastapi', 'pwdlib', 'sqlalchemy', 'uvicorn')))"
    )
    try:
        return subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not installed"


if __name__ == "__main__":
    main()
