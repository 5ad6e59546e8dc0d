"""`make bench`: measure the generator and the emitted service, write docs/benchmarks.md.

BENCH_SECONDS (default 5), BENCH_ROUNDS (default 3) and BENCH_QUERY_ROUNDS
(default 2) trade time for precision; BENCH_ONLY=generator or
BENCH_ONLY=service runs one part; BENCH_USERS (default 1,000,000) users are
seeded into SQLite and into a PostgreSQL database made on BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
from pathlib import Path

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


PARTS = ("generator", "service")


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    only = os.environ.get("BENCH_ONLY", "")
    if only not in ("", *PARTS):
        sys.exit(f"bench: BENCH_ONLY is one of {', '.join(PARTS)} (got {only!r})")
    source = snapshot()
    report = DOCS / "benchmarks.md"
    old = report.read_text(encoding="utf-8") if report.exists() else ""
    blocks = {part: kept_part(old, part) for part in PARTS}
    for part in PARTS if not only else (only,):
        started = time.monotonic()
        blocks[part] = render_part(
            part, measure(part, source), time.monotonic() - started
        )
    report.write_text(render_report(blocks), encoding="utf-8")
    log(f"done: {report}")


def measure(part: str, source: Path) -> list[Section]:
    if part == "generator":
        return [generator.run(source)]
    loadgen.install_wrk()
    if not loadgen.wrk_available():
        sys.exit(
            "bench: wrk is missing and could not be installed (apt-get install wrk)"
        )
    return service.run_all(source)


def kept_part(report: str, part: str) -> str:
    """A part's block from an earlier report, so that `BENCH_ONLY=` the other
    part updates its own figures and leaves these as they were measured."""
    found = re.search(
        rf"^<!-- part: {part} -->\n.*?^<!-- end: {part} -->\n", report, re.M | re.S
    )
    return found.group(0) if found else ""


def render_part(part: str, sections: list[Section], seconds: float) -> str:
    lines = [
        f"<!-- part: {part} -->",
        f"**{part.capitalize()} figures:** measured on {dt.date.today().isoformat()} "
        f"for commit {commit()}, in {seconds / 60:.0f} minutes.",
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
    return "\n".join([*lines, f"<!-- end: {part} -->", ""])


def render_report(blocks: dict[str, str]) -> str:
    peer = service.PEER_VENV / "bin" / "python"
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/run.py); `BENCH_ONLY=generator` or "
        "`BENCH_ONLY=service` measures one part and keeps the other's figures as they "
        "were, each with the date and commit it was measured on. Figures are the median "
        "of several runs with the min–max in parentheses. Every comparison is a ratio of "
        "two sides measured in the same run, one right after the other, round after "
        "round with the order flipped, because the machine is shared and noisy: trust "
        "the ratios more than the absolute numbers. Nothing in the test suite depends on "
        "timings.",
        "",
        "## Machine and versions (of the latest run)",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine().items()],
        *[f"| {k} | {v} |" for k, v in versions(LIBRARIES).items()],
        f"| wrk | {tool_version(['wrk', '-v'])} |",
        f"| fastapi-users (peer venv) | {_peer_versions(str(peer))} |",
        "",
    ]
    return (
        "\n".join(lines) + "\n" + "\n".join(block for block in blocks.values() if block)
    )


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
