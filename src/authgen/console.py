"""What `authgen` shows besides errors: the files written, a summary with the
commands to run next, progress, and colour on a terminal only."""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

import typer

from authgen.regenerate import Change

#: The outcomes a generation reports, in the order of the summary.
OUTCOMES = {
    "created": "green",
    "updated": "cyan",
    "merged": "yellow",
    "conflict": "red",
    "removed": "magenta",
}


def colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, name: str, stream: TextIO) -> str:
    return typer.style(text, fg=name) if colour(stream) else text


def change_line(change: Change, stream: TextIO) -> str:
    """`created: src/acme_auth/app.py`, the outcome coloured on a terminal."""
    name = OUTCOMES.get(change.action, "white")
    return f"{paint(change.action, name, stream)}: {change.path}"


def summary(changes: Iterable[Change], out: Path, stream: TextIO) -> list[str]:
    """One line of counts, then the commands to run next."""
    counts = Counter(change.action for change in changes)
    parts = []
    for action, name in OUTCOMES.items():
        if counts[action]:
            plural = "s" if action == "conflict" and counts[action] > 1 else ""
            parts.append(paint(f"{counts[action]} {action}{plural}", name, stream))
    if not parts:
        return [f"{out} is up to date"]
    lines = [f"generated {out}: {', '.join(parts)}"]
    if counts["conflict"]:
        return lines
    folder = [] if out.resolve() == Path.cwd() else [f"  cd {shlex.quote(str(out))}"]
    return [
        *lines,
        "next:",
        *folder,
        "  make run     # install the service, then serve http://127.0.0.1:5000/graphql",
        "  make test    # run the service's own tests",
    ]


def progress(stream: TextIO) -> Callable[[str], None]:
    """A callback that shows a slow step on a terminal (and stays quiet in pipes)."""

    def show(message: str) -> None:
        if stream.isatty():
            stream.write(paint(message, "bright_black", stream) + "\n")
            stream.flush()

    return show
