"""Render the blueprints with a context; black formats what the spec made too long.

Rendering happens in a temporary folder; the result is a mapping of relative
path to bytes, so that writing it out (and merging with the user's edits) is
a separate step that can also be previewed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cookiecutter.exceptions import CookiecutterException, UndefinedVariableInTemplate
from cookiecutter.generate import generate_files
from jinja2 import TemplateError

from authgen.errors import AuthgenError

# black is imported only when the cache misses: importing it costs more than
# a whole warm generation's rendering.
_BLACK_OPTIONS = "target_versions={PY311}"
#: Black's default line length, which the emitted code uses.
LINE_LENGTH = 88
#: A line black leaves however long: one string (double-quoted, as black
#: quotes) as an argument or an item of a call or collection split by line.
_ONE_STRING = re.compile(rb'\s*(?:\w+=)?[rbfuRBFU]*"(?:[^"\\]|\\.)*",')
#: The blueprint's project folder and package folder, as named in it.
PROJECT = "{{cookiecutter.service_name}}"
PACKAGE = "{{cookiecutter.package}}"


class RenderError(AuthgenError):
    """A blueprint that cannot be rendered or formatted, naming the file."""

    def lines(self) -> list[str]:
        return [f"error: cannot render the service: {self}"]


@dataclass
class Rendering:
    files: dict[str, bytes] = field(default_factory=dict)
    executable: set[str] = field(default_factory=set)


def blueprints_dir() -> Path:
    """The blueprints shipped in the wheel, or those of a source checkout."""
    packaged = Path(str(resources.files("authgen"))) / "blueprints"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "blueprints"


def render(
    context: dict[str, Any],
    template: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Rendering:
    """`progress` hears of the slow step (black on files it never saw) before it."""
    template = template or blueprints_dir()
    with tempfile.TemporaryDirectory(prefix="authgen-") as tmp:
        project = _bake(template, context, Path(tmp))
        rendering, unformatted = _collect(project, _sources(template, context))
    misses = [
        content for content in unformatted.values() if not _cached(content).is_file()
    ]
    if misses and progress:
        progress(f"formatting {len(misses)} Python files with black…")
    for path, content in unformatted.items():
        rendering.files[path] = format_python(path, content)
    return rendering


def _bake(template: Path, context: dict[str, Any], output: Path) -> Path:
    full_context = {"cookiecutter": {**_defaults(template), **context}}
    full_context["cookiecutter"]["_template"] = str(template)
    try:
        project = generate_files(
            repo_dir=str(template),
            context=full_context,
            output_dir=str(output),
            overwrite_if_exists=True,
            accept_hooks=False,
        )
    except UndefinedVariableInTemplate as error:
        # Jinja does not say where an undefined name was used; cookiecutter's
        # message names the file or folder ("Unable to create file 'x'").
        where = error.message.partition(" '")[2].rstrip("'") or _where(error.error)
        raise RenderError(f"{where}: {error.error.message}") from error
    except TemplateError as error:
        raise RenderError(f"{_where(error)}: {error}") from error
    except CookiecutterException as error:
        raise RenderError(f"blueprint error: {error}") from error
    return Path(project)


def _defaults(template: Path) -> dict[str, Any]:
    with open(template / "cookiecutter.json", encoding="utf-8") as handle:
        return {k: v for k, v in json.load(handle).items() if k.startswith("_")}


def _where(error: Exception) -> str:
    filename = getattr(error, "filename", None) or getattr(error, "name", None)
    lineno = getattr(error, "lineno", None)
    if filename and lineno:
        return f"{filename}:{lineno}"
    return filename or "blueprint"


def _sources(template: Path, context: dict[str, Any]) -> dict[str, bytes]:
    """The blueprint's Python files by the path they are rendered to."""
    root = template / PROJECT
    return {
        path.relative_to(root)
        .as_posix()
        .replace(PACKAGE, context["package"]): path.read_bytes()
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _collect(
    project: Path, sources: dict[str, bytes]
) -> tuple[Rendering, dict[str, bytes]]:
    """The rendered files, and those of them still to go through black."""
    rendering = Rendering()
    unformatted = {}
    for path in sorted(project.rglob("*")):
        # pip byte-compiles the installed blueprints; their caches are not ours to emit.
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        relative = path.relative_to(project).as_posix()
        content = path.read_bytes()
        if path.suffix == ".py" and needs_black(content, sources.get(relative)):
            unformatted[relative] = content
        rendering.files[relative] = content
        if os.stat(path).st_mode & stat.S_IXUSR:
            rendering.executable.add(relative)
    return rendering, unformatted


def needs_black(rendered: bytes, source: bytes | None) -> bool:
    """Whether a rendered file may not be black-clean: rendering made a line
    of it longer than 88 columns (its blueprint `source` has no such line).

    Black costs about 30 ms a file even on formatted code: most of a first
    generation. So the blueprints render black-clean by construction: spec
    values go into literals written as black writes them
    (context.python_literal), into collections exploded one item a line with
    a trailing comma (black keeps those whatever their length), or into
    strings; tests/test_render.py checks every test spec's rendering with
    black. What a spec can still do is lengthen a line past black's limit
    (a long package name or pattern): black wraps such a file. Long lines
    the blueprint has as they are are black's choice, and so is one string
    argument or item on its own line (`key="...",`), which black cannot split.
    """
    if source is None:
        return True
    written = set(source.splitlines())
    return any(
        len(line.decode("utf-8", "replace")) > LINE_LENGTH
        and line not in written
        and not _ONE_STRING.fullmatch(line)
        for line in rendered.splitlines()
    )


def format_python(relative: str, content: bytes) -> bytes:
    """Black's output for `content`, from the cache when black saw it before.

    Formatting is most of the cost of a generation, and most rendered files
    are the same from one run to the next, so results are kept by the hash of
    their input (and black's version).
    """
    cached = _cached(content)
    try:
        return cached.read_bytes()
    except OSError:
        pass
    import black

    mode = black.Mode(target_versions={black.TargetVersion.PY311})
    try:
        source = content.decode("utf-8")
        formatted = black.format_str(source, mode=mode).encode("utf-8")
    except (black.InvalidInput, UnicodeDecodeError, ValueError) as error:
        raise RenderError(f"{relative}: black cannot format it: {error}") from error
    _store(cached, formatted)
    return formatted


def _cached(content: bytes) -> Path:
    """Where black's output for `content` is kept."""
    key = hashlib.sha256(_cache_salt() + content).hexdigest()
    return _cache_dir() / key[:2] / key


@functools.cache
def _cache_salt() -> bytes:
    """Names the installed black without importing it: a new or reinstalled
    black has another file, so its results are never mixed with the old one's."""
    spec = importlib.util.find_spec("black")
    origin = Path(spec.origin) if spec and spec.origin else Path("black")
    try:
        stamp = origin.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return f"black {origin} {stamp} {_BLACK_OPTIONS}\n".encode()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "authgen" / "black"


def _store(path: Path, content: bytes) -> None:
    """Best effort: a cache that cannot be written only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(content)
        os.replace(temporary, path)
    except OSError:
        pass
