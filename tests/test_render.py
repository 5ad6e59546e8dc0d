"""Rendering the blueprints: baked by cookiecutter (pytest-cookies) and by authgen.

A broken blueprint must be reported with the file it concerns.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from graphql import build_schema

from authgen.context import build_context
from authgen.render import RenderError, blueprints_dir, render
from authgen.spec import load_spec

from conftest import EVERY_OPTION, EXAMPLE, LONG_NAME, MINIMAL, authgen, example_specs

PROJECT = "{{cookiecutter.service_name}}"
PACKAGE_DIR = f"{PROJECT}/src/{{{{cookiecutter.package}}}}"
#: Broken Python that black is given: rendering makes it longer than 88 columns.
BROKEN = "\ndef broken(:  # {{ cookiecutter.package }}" + "x" * 80 + "\n"


def test_cookiecutter_json_defaults_render_a_service(cookies) -> None:
    """The blueprint is a plain cookiecutter template: its defaults bake too."""
    defaults = json.loads((blueprints_dir() / "cookiecutter.json").read_text())
    result = cookies.bake(template=str(blueprints_dir()))

    assert result.exit_code == 0, result.exception
    assert result.project_path.name == defaults["service_name"]
    package = defaults["service_name"].replace("-", "_")
    build_schema((result.project_path / f"src/{package}/schema.graphql").read_text())


@pytest.mark.parametrize("spec", [MINIMAL, EXAMPLE, EVERY_OPTION], ids=lambda p: p.stem)
def test_bake_with_the_spec_context(cookies, spec: Path) -> None:
    context = build_context(load_spec(spec))
    result = cookies.bake(extra_context=context, template=str(blueprints_dir()))

    assert result.exit_code == 0, result.exception
    project = result.project_path
    assert project.name == context["service_name"]
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    schema = build_schema(
        (project / f"src/{context['package']}/schema.graphql").read_text()
    )
    for name in context["_fields"]:
        assert name in schema.type_map["User"].fields


def copy_blueprints(tmp_path: Path) -> Path:
    copy = tmp_path / "blueprints"
    shutil.copytree(blueprints_dir(), copy)
    return copy


def render_error(tmp_path: Path, name: str, appended: str) -> str:
    """The error of rendering a copy of the blueprints with `appended` added to one module."""
    template = copy_blueprints(tmp_path)
    broken = template / PACKAGE_DIR / name
    broken.write_text(broken.read_text() + appended)
    with pytest.raises(RenderError) as caught:
        render(build_context(load_spec(MINIMAL)), template=template)
    return str(caught.value)


def test_template_syntax_error_names_the_file(tmp_path: Path) -> None:
    message = render_error(tmp_path, "users.py", "\n{% if %}\n")
    assert message.startswith("src/{{cookiecutter.package}}/users.py:")


def test_undefined_variable_names_the_file(tmp_path: Path) -> None:
    message = render_error(
        tmp_path, "errors.py", "\nX = {{ cookiecutter.no_such_thing.attr }}\n"
    )
    assert message == (
        "src/{{cookiecutter.package}}/errors.py: 'dict object' has no attribute 'no_such_thing'"
    )


def test_black_failure_names_the_rendered_file(tmp_path: Path) -> None:
    message = render_error(tmp_path, "models.py", BROKEN)
    assert message.startswith("src/bare_auth/models.py: black cannot format it:")


def test_broken_blueprint_through_the_cli(tmp_path: Path) -> None:
    """The CLI renders the installed blueprints; a copy of the package shows it the broken one."""
    package = tmp_path / "site" / "authgen"
    shutil.copytree(Path(__import__("authgen").__file__).parent, package)
    template = copy_blueprints(package)
    broken = template / PACKAGE_DIR / "models.py"
    broken.write_text(broken.read_text() + BROKEN)

    result = authgen(
        "generate",
        MINIMAL,
        "-o",
        tmp_path / "out",
        env={"PYTHONPATH": str(package.parent)},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "error: cannot render the service: src/bare_auth/models.py: black cannot format it:"
    )
    assert not (tmp_path / "out").exists()


def test_rendering_is_deterministic() -> None:
    context = build_context(load_spec(EXAMPLE))
    first, second = render(context), render(context)
    assert first.files == second.files
    assert first.executable == second.executable


def test_byte_code_caches_of_installed_blueprints_are_not_emitted(
    tmp_path: Path,
) -> None:
    """pip byte-compiles the blueprints it installs; those caches must not ship."""
    template = copy_blueprints(tmp_path)
    cache = template / PACKAGE_DIR / "__pycache__"
    cache.mkdir()
    (cache / "models.cpython-311.pyc").write_bytes(b"\x00compiled")

    files = render(build_context(load_spec(MINIMAL)), template=template).files

    assert not [
        path for path in files if "__pycache__" in path or path.endswith(".pyc")
    ]


def blueprint_python() -> list[Path]:
    return sorted(
        path
        for path in (blueprints_dir() / PROJECT).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def test_plain_blueprint_files_are_black_clean() -> None:
    """A plain file is emitted as written, without black (see render.needs_black)."""
    import black

    mode = black.Mode(target_versions={black.TargetVersion.PY311})
    plain = [p for p in blueprint_python() if not re.search("{{|{%", p.read_text())]
    assert len(plain) > 10
    unformatted = [
        str(path.relative_to(blueprints_dir()))
        for path in plain
        if black.format_str(path.read_text(), mode=mode) != path.read_text()
    ]
    assert unformatted == [], "run black over these blueprint files"


@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_the_blueprints_render_black_clean(spec: Path) -> None:
    """No test spec needs black (see render.needs_black): every Python file
    renders as black writes it, so a template that does not is caught here."""
    import black

    from authgen.render import needs_black

    mode = black.Mode(target_versions={black.TargetVersion.PY311})
    context = build_context(load_spec(spec))
    package = context["package"]
    files = render(context).files
    python = {path: text for path, text in files.items() if path.endswith(".py")}
    sources = {
        path.relative_to(blueprints_dir() / PROJECT)
        .as_posix()
        .replace("{{cookiecutter.package}}", package): path.read_bytes()
        for path in blueprint_python()
    }
    assert not [
        path for path, text in python.items() if needs_black(text, sources[path])
    ]
    unformatted = [
        path
        for path, text in python.items()
        if black.format_str(text.decode(), mode=mode) != text.decode()
    ]
    assert unformatted == []


def test_a_line_a_spec_makes_too_long_is_wrapped_by_black(write_spec) -> None:
    """A long service name lengthens the package's import lines past 88
    columns: those files go through black, and come out black-clean."""
    import black

    spec = write_spec(f"service:\n  name: {LONG_NAME}\n")
    files = render(build_context(load_spec(spec))).files
    package = LONG_NAME.replace("-", "_")
    source = files["tests/test_store.py"].decode()
    assert f"from {package}.store.sql import (\n" in source
    mode = black.Mode(target_versions={black.TargetVersion.PY311})
    for path, text in files.items():
        if path.endswith(".py"):
            assert black.format_str(text.decode(), mode=mode) == text.decode(), path


def test_needs_black_only_for_lines_rendering_made_too_long() -> None:
    from authgen.render import needs_black

    source = b"from {{ p }} import x\n" + b"'" + b"y" * 90 + b"'\n"
    long = b"a" * 80
    assert not needs_black(b"from acme import x\n" + source.split(b"\n")[1], source)
    assert needs_black(b"from " + long + b" import x\n", source)
    # Columns are characters, not bytes.
    assert not needs_black(b"from " + "\u00e9".encode() * 70 + b" import x\n", source)
    # A file that is not in the blueprint (none is) goes through black.
    assert needs_black(b"import os\n", None)
