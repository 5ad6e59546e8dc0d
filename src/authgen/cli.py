"""The `authgen` command line: parses arguments, prints, sets the exit code."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from authgen import __version__
from authgen.generate import prepare
from authgen.loader import SpecError
from authgen.render import RenderError, blueprints_dir
from authgen.spec import load_spec

app = typer.Typer(
    help="Generate a GraphQL authentication service from a YAML user model.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SpecArgument = Annotated[
    Path, typer.Argument(help="The spec file describing the user model (user.yaml).")
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
    directory: Annotated[Path, typer.Argument(help="Where to write user.yaml.")] = Path(
        "."
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing user.yaml.")
    ] = False,
) -> None:
    """Write a commented starter user.yaml into DIRECTORY."""
    target = directory / "user.yaml"
    if target.exists() and not force:
        _fail(f"{target} already exists; use --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(blueprints_dir().parent / "example-user.yaml", target)
    typer.echo(f"wrote {target}; edit it, then run: authgen generate {target}")


@app.command()
def validate(spec: SpecArgument) -> None:
    """Check SPEC; print one line per mistake as SPEC:LINE:COL: message."""
    try:
        load_spec(spec)
    except SpecError as error:
        _fail_lines(error.lines())
    typer.echo(f"{spec}: ok")


@app.command()
def generate(
    spec: SpecArgument,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output folder (default: ./<service.name>)."),
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
    """Generate the service from SPEC, or regenerate it keeping your edits."""
    try:
        generation = prepare(spec, out)
    except SpecError as error:
        _fail_lines(error.lines())
    except RenderError as error:
        _fail(f"cannot render the service: {error}")
    except OSError as error:
        _fail(f"cannot read {out or 'the output folder'}: {error}")
    plan = generation.plan
    if diff:
        sys.stdout.write(plan.diff(generation.out))
        return
    if check:
        for change in plan.pending:
            typer.echo(f"{change.action}: {change.path}")
        if plan.pending:
            raise typer.Exit(1)
        typer.echo(f"{generation.out} is up to date")
        return
    try:
        generation.apply()
    except OSError as error:
        _fail(f"cannot write {generation.out}: {error}")
    for change in plan.pending:
        typer.echo(f"{change.action}: {change.path}")
    if plan.conflicts:
        typer.echo(
            f"{len(plan.conflicts)} file(s) have conflicts; resolve the markers, then generate again:",
            err=True,
        )
        for path in plan.conflicts:
            typer.echo(f"  {generation.out / path}", err=True)
        raise typer.Exit(1)
    typer.echo(f"generated {generation.out}")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _fail_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


def main() -> None:
    app()
