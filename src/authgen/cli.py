"""The `authgen` command line: parses arguments, prints, sets the exit code."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from authgen import __version__, console, schema, starter
from authgen.errors import AuthgenError
from authgen.generate import Generation, prepare
from authgen.spec import SERVICE_NAME_PATTERN, load_spec
from authgen.upgrades import notes_between

app = typer.Typer(
    help="Generate a GraphQL authentication service from a YAML user model.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SpecArgument = Annotated[
    Path,
    typer.Argument(
        metavar="SPEC", help="The spec file describing the user model (user.yaml)."
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"authgen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = None,
) -> None:
    """authgen turns one user.yaml into a complete GraphQL auth service."""


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to write user.yaml.")
    ] = Path("."),
    name: Annotated[
        Optional[str],
        typer.Option(
            "--name",
            metavar="NAME",
            help="service.name (default: from DIR's name).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing user.yaml.")
    ] = False,
) -> None:
    """Write a starter user.yaml and its JSON Schema into DIR."""
    target = directory / "user.yaml"
    if target.exists() and not force:
        _fail(f"{target} already exists; use --force to overwrite it")
    if name is None:
        name = starter.service_name(directory.resolve().name)
    elif not SERVICE_NAME_PATTERN.match(name):
        _fail(
            f"--name {name!r} is not a valid service name; use lower-case letters,"
            f" digits and single dashes, starting with a letter"
            f" (e.g. {starter.service_name(name)})"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(starter.text(name), encoding="utf-8")
        (directory / starter.SCHEMA_FILE).write_text(schema.text(), encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write {target}: {error.strerror or error}")
    typer.echo(f"wrote {target} and {directory / starter.SCHEMA_FILE}")
    typer.echo(f"next: edit it, then run: authgen generate {shlex.quote(str(target))}")


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of user.yaml (for editors)."""
    sys.stdout.write(schema.text())


@app.command()
def validate(spec: SpecArgument) -> None:
    """Check SPEC: one SPEC:LINE:COL line per mistake."""
    try:
        load_spec(spec)
    except AuthgenError as error:
        _fail_lines(error.lines())
    typer.echo(f"{spec}: ok")


@app.command()
def generate(
    spec: SpecArgument,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            metavar="OUT",
            help="Output folder (default: ./<service.name>).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 and list the files that would change.",
        ),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff", help="Write nothing; print a unified diff of what would change."
        ),
    ] = False,
) -> None:
    """Generate the service from SPEC (again: your edits are kept)."""
    try:
        generation = prepare(spec, out, progress=console.progress(sys.stderr))
        if not (check or diff):
            generation.apply()
    except AuthgenError as error:
        _fail_lines(error.lines())
    plan = generation.plan
    if diff:
        sys.stdout.write(plan.diff(generation.out))
        return
    if check:
        for change in plan.pending:
            typer.echo(console.change_line(change, sys.stdout))
        _report_conflicts(generation)
        if plan.pending:
            raise typer.Exit(1)
        typer.echo(f"{generation.out} is up to date")
        return
    if plan.upgraded_from:
        typer.echo(f"upgraded from authgen {plan.upgraded_from} to {plan.version}:")
        for version, note in notes_between(plan.upgraded_from, plan.version):
            typer.echo(f"- {version}: {note}")
    for change in plan.pending:
        typer.echo(console.change_line(change, sys.stdout))
    for line in console.summary(plan.pending, generation.out, sys.stdout):
        typer.echo(line)
    _report_conflicts(generation)


def _report_conflicts(generation: Generation) -> None:
    """Files with conflict markers fail every run until they are resolved."""
    conflicts = generation.plan.conflicts
    if not conflicts:
        return
    typer.echo(
        f"{len(conflicts)} file(s) have conflicts; resolve the markers, then generate again:",
        err=True,
    )
    for path in conflicts:
        typer.echo(f"  {generation.out / path}", err=True)
    raise typer.Exit(1)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _fail_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


def main() -> None:
    app()
