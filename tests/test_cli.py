"""The `authgen` command as users run it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from authgen import __version__
from authgen.cli import app

from conftest import (
    EXAMPLE,
    LONG_NAME,
    MINIMAL,
    ROOT,
    authgen,
    example_specs,
    tree,
)

runner = CliRunner()

BAD_SPEC = (
    "service:\n  name: acme\n"
    "fields:\n"
    "  2fa:\n    type: boolean\n"
    "  age:\n    type: integer\n"
)
BAD_LINES = [
    "{spec}:4:3: field name '2fa' must start with a letter and contain only letters,"
    " digits and underscores (a GraphQL and Python name)",
    "{spec}:7:11: fields.age.type: unknown type 'integer'; expected one of"
    " string, int, float, boolean, date, datetime, enum",
]


def console_script() -> str:
    """The installed `authgen` script next to this interpreter."""
    script = Path(sys.executable).parent / "authgen"
    assert script.exists(), "authgen is not installed in this environment"
    return str(script)


def test_version_through_the_console_script() -> None:
    result = subprocess.run(
        [console_script(), "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout == f"authgen {__version__}\n"


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [console_script(), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("init", "validate", "generate"):
        assert command in result.stdout
    assert "--version" in result.stdout


def test_no_arguments_shows_help() -> None:
    result = authgen()
    assert result.returncode != 0
    assert "Usage:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_generate_help_names_its_options() -> None:
    result = runner.invoke(app, ["generate", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "-o", "--check", "--diff", "./<service.name>"):
        assert option in result.output


def test_init_writes_a_short_starter_named_after_its_folder(tmp_path: Path) -> None:
    result = authgen("init", tmp_path / "shop-accounts")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "shop-accounts" / "user.yaml"
    data = yaml.safe_load(written.read_text())
    assert data["service"] == {"name": "shop-accounts"}
    assert 1 <= len(data["fields"]) <= 4
    assert written.read_text().count("\n#") + written.read_text().count("  # ") > 5
    assert authgen("validate", written).returncode == 0
    assert "authgen generate" in result.stdout

    generate = authgen("generate", "user.yaml", cwd=written.parent)
    assert generate.returncode == 0, generate.stderr
    assert (written.parent / "shop-accounts/src/shop_accounts/app.py").is_file()


def test_init_points_editors_at_the_schema_beside_the_starter(tmp_path: Path) -> None:
    assert authgen("init", tmp_path).returncode == 0
    first = (tmp_path / "user.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./user.schema.json"
    written = json.loads((tmp_path / "user.schema.json").read_text())
    assert written == json.loads(authgen("schema").stdout)


@pytest.mark.parametrize(
    ("folder", "name"),
    [("My App", "my-app"), ("2048", "auth-2048"), ("__", "auth-service")],
)
def test_init_derives_a_valid_name_from_any_folder(
    tmp_path: Path, folder: str, name: str
) -> None:
    assert authgen("init", tmp_path / folder).returncode == 0
    spec = tmp_path / folder / "user.yaml"
    assert yaml.safe_load(spec.read_text())["service"]["name"] == name
    assert authgen("validate", spec).returncode == 0


def test_init_takes_a_name(tmp_path: Path) -> None:
    assert authgen("init", tmp_path, "--name", "team-auth").returncode == 0
    spec = yaml.safe_load((tmp_path / "user.yaml").read_text())
    assert spec["service"]["name"] == "team-auth"


def test_init_refuses_an_invalid_name_and_says_the_rule(tmp_path: Path) -> None:
    result = authgen("init", tmp_path, "--name", "Team_Auth")
    assert result.returncode == 1
    assert result.stderr == (
        "error: --name 'Team_Auth' is not a valid service name; use lower-case letters,"
        " digits and single dashes, starting with a letter (e.g. team-auth)\n"
    )
    assert not (tmp_path / "user.yaml").exists()


def test_init_defaults_to_the_current_folder(tmp_path: Path) -> None:
    assert authgen("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "user.yaml").is_file()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text("mine\n")
    result = authgen("init", tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr == f"error: {spec} already exists; use --force to overwrite it\n"
    )
    assert spec.read_text() == "mine\n"


def test_init_force_overwrites(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text("mine\n")
    assert authgen("init", tmp_path, "--force").returncode == 0
    assert authgen("validate", spec).returncode == 0


def test_validate_ok() -> None:
    result = subprocess.run(
        [console_script(), "validate", str(EXAMPLE)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout == f"{EXAMPLE}: ok\n"


def test_validate_lists_every_mistake_without_a_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text(BAD_SPEC)
    result = authgen("validate", spec)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [line.format(spec=spec) for line in BAD_LINES]


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = authgen("validate", tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert result.stderr == (
        f"{tmp_path / 'nope.yaml'}:1:1: cannot read the spec: No such file or directory\n"
    )


def test_validate_a_yaml_syntax_error(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text("service:\n  name: [acme\n")
    result = authgen("validate", spec)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{spec}:3:1: invalid YAML: ")


def test_generate_refuses_a_bad_spec_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text(BAD_SPEC)
    result = authgen("generate", spec, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [line.format(spec=spec) for line in BAD_LINES]
    assert not (tmp_path / "out").exists()


def test_generate_defaults_to_the_service_name(tmp_path: Path) -> None:
    shutil.copy(MINIMAL, tmp_path / "user.yaml")
    result = authgen("generate", "user.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "created: src/bare_auth/app.py\n" in result.stdout
    assert (tmp_path / "bare-auth" / "src" / "bare_auth" / "app.py").is_file()
    assert (tmp_path / "bare-auth" / "user.yaml").read_bytes() == MINIMAL.read_bytes()


def test_check_and_diff_on_a_stale_then_fresh_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = tmp_path / "user.yaml"
    shutil.copy(MINIMAL, spec)

    # Nothing generated yet: everything is stale, and nothing is written.
    check = authgen("generate", spec, "-o", out, "--check")
    assert check.returncode == 1
    assert "created: src/bare_auth/app.py" in check.stdout.splitlines()
    assert not out.exists()

    assert authgen("generate", spec, "-o", out).returncode == 0
    fresh = authgen("generate", spec, "-o", out, "--check")
    assert (fresh.returncode, fresh.stdout) == (0, f"{out} is up to date\n")
    assert authgen("generate", spec, "-o", out, "--diff").stdout == ""

    # A new field makes the output stale again; --check and --diff change nothing.
    spec.write_text(MINIMAL.read_text() + "fields:\n  nickname:\n    type: string\n")
    before = (out / "src/bare_auth/models.py").read_bytes()
    stale = authgen("generate", spec, "-o", out, "--check")
    assert stale.returncode == 1
    assert "updated: src/bare_auth/models.py" in stale.stdout.splitlines()
    assert "updated: src/bare_auth/schema.graphql" in stale.stdout.splitlines()
    diff = authgen("generate", spec, "-o", out, "--diff")
    assert diff.returncode == 0
    assert "+++ b/src/bare_auth/schema.graphql" in diff.stdout
    assert "+  nickname: String\n" in diff.stdout
    assert (out / "src/bare_auth/models.py").read_bytes() == before


def test_generate_reports_an_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    result = authgen("generate", MINIMAL, "-o", blocker / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")


def test_a_corrupt_manifest_is_one_line_naming_the_file_and_the_fix(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert authgen("generate", MINIMAL, "-o", out).returncode == 0
    manifest = out / ".authgen/manifest.json"
    manifest.write_text(manifest.read_text()[:-20])
    for mode in ((), ("--check",), ("--diff",)):
        result = authgen("generate", MINIMAL, "-o", out, *mode)
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"error: {manifest} is corrupt (")
        assert (
            f"restore it from version control, or delete {out / '.authgen'}"
            in result.stderr
        )


def test_every_expected_error_is_one_authgen_error() -> None:
    from authgen.errors import AuthgenError
    from authgen.loader import SpecError
    from authgen.regenerate import ManifestError
    from authgen.render import RenderError

    for error in (SpecError, RenderError, ManifestError):
        assert issubclass(error, AuthgenError)


def _set_manifest_version(out: Path, version: str) -> None:
    manifest = out / ".authgen/manifest.json"
    manifest.write_text(
        re.sub(r'"authgen": "[^"]*"', f'"authgen": "{version}"', manifest.read_text())
    )


def test_an_older_authgen_refuses_a_newer_service_and_touches_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    spec = tmp_path / "user.yaml"
    spec.write_text(MINIMAL.read_text() + "fields:\n  nickname:\n    type: string\n")
    assert authgen("generate", MINIMAL, "-o", out).returncode == 0
    _set_manifest_version(out, "99.0.0")
    before = tree(out)
    for mode in ((), ("--check",), ("--diff",)):
        result = authgen("generate", spec, "-o", out, *mode)
        assert result.returncode == 1
        assert result.stderr == (
            f"error: {out} was generated by authgen 99.0.0, newer than this authgen {__version__};"
            " upgrade authgen (pip install --upgrade authgen), then generate again\n"
        )
        assert result.stdout == ""
    assert tree(out) == before


def test_a_newer_authgen_says_what_it_upgrades(tmp_path: Path) -> None:
    from authgen.upgrades import NOTES

    out = tmp_path / "out"
    assert authgen("generate", MINIMAL, "-o", out).returncode == 0
    _set_manifest_version(out, "0.1.0")
    result = authgen("generate", MINIMAL, "-o", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"upgraded from authgen 0.1.0 to {__version__}:"
    assert lines[1 : 1 + len(NOTES[__version__])] == [
        f"- {__version__}: {note}" for note in NOTES[__version__]
    ]
    assert any(note.startswith("new hooks: ") for note in NOTES[__version__])
    assert f'"authgen": "{__version__}"' in (out / ".authgen/manifest.json").read_text()
    assert "upgraded" not in authgen("generate", MINIMAL, "-o", out).stdout


def test_generate_inside_a_generated_service_is_refused(tmp_path: Path) -> None:
    shutil.copy(MINIMAL, tmp_path / "user.yaml")
    assert authgen("generate", "user.yaml", cwd=tmp_path).returncode == 0
    service = tmp_path / "bare-auth"

    inside = authgen("generate", "user.yaml", cwd=service)
    assert inside.returncode == 1
    assert inside.stderr == (
        "error: bare-auth is inside the service generated in .; to regenerate that"
        " service, run: authgen generate user.yaml -o .\n"
    )
    assert not (service / "bare-auth").exists()

    src = authgen("generate", "user.yaml", "-o", "bare-auth/src", cwd=tmp_path)
    assert src.returncode == 1
    assert src.stderr.endswith("run: authgen generate user.yaml -o bare-auth\n")
    assert sorted(p.name for p in (service / "src").iterdir()) == ["bare_auth"]

    assert authgen("generate", "user.yaml", "-o", ".", cwd=service).returncode == 0


def test_an_excluded_file_stays_deleted(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    out = tmp_path / "out"
    shutil.copy(MINIMAL, spec)
    assert authgen("generate", spec, "-o", out).returncode == 0
    (out / "docs/security.md").unlink()
    (out / "Makefile").write_text("my own\n")

    spec.write_text(
        MINIMAL.read_text() + "exclude:\n  - docs/security.md\n  - Makefile\n"
    )
    result = authgen("generate", spec, "-o", out)
    assert result.returncode == 0, result.stderr
    assert not (out / "docs/security.md").exists()
    assert (out / "Makefile").read_text() == "my own\n"
    # A model change later still leaves them alone.
    spec.write_text(spec.read_text() + "fields:\n  nickname:\n    type: string\n")
    assert authgen("generate", spec, "-o", out).returncode == 0
    assert not (out / "docs/security.md").exists()
    assert (out / "Makefile").read_text() == "my own\n"
    check = authgen("generate", spec, "-o", out, "--check")
    assert (check.returncode, check.stdout) == (0, f"{out} is up to date\n")


def test_a_bad_exclude_entry_is_a_spec_mistake(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text(
        MINIMAL.read_text() + "exclude:\n  - docs\n  - ../etc/passwd\n  - 7\n"
    )
    result = authgen("validate", spec)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{spec}:6:5: exclude.1: '../etc/passwd' is not a path inside the service;"
        " write it relative to the service, with / (e.g. docs/security.md or src/*/templates/*.html)",
        f"{spec}:7:5: exclude.2: expected a string, got 7",
    ]


def test_generate_ends_with_a_summary_and_the_next_commands(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    shutil.copy(MINIMAL, spec)
    first = authgen("generate", "user.yaml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    created = first.stdout.count("created: ")
    assert created > 40
    assert first.stdout.splitlines()[created:] == [
        f"generated bare-auth: {created} created",
        "next:",
        "  cd bare-auth",
        "  make run     # install the service, then serve http://127.0.0.1:5000/graphql",
        "  make test    # run the service's own tests",
    ]

    # Regeneration counts each outcome; the output folder can be the current one.
    spec.write_text(MINIMAL.read_text() + "fields:\n  nickname:\n    type: string\n")
    app = tmp_path / "bare-auth/src/bare_auth/app.py"
    app.write_text(app.read_text() + "# mine\n")
    (tmp_path / "bare-auth/src/bare_auth/models.py").write_text("# mine\n")
    again = authgen("generate", spec, "-o", ".", cwd=tmp_path / "bare-auth")
    assert again.returncode == 1
    summary = [
        line for line in again.stdout.splitlines() if line.startswith("generated")
    ]
    updated = again.stdout.count("updated: ")
    assert updated >= 1
    assert summary == [f"generated .: {updated} updated, 1 conflict"]
    assert "next:" not in again.stdout
    assert "resolve the markers" in again.stderr

    (tmp_path / "bare-auth/src/bare_auth/models.py").unlink()
    third = authgen("generate", spec, "-o", ".", cwd=tmp_path / "bare-auth")
    assert third.stdout.splitlines()[-4:] == [
        "generated .: 1 created",
        "next:",
        "  make run     # install the service, then serve http://127.0.0.1:5000/graphql",
        "  make test    # run the service's own tests",
    ]
    fourth = authgen("generate", spec, "-o", ".", cwd=tmp_path / "bare-auth")
    assert fourth.stdout == ". is up to date\n"


def test_help_has_no_type_placeholders_for_flags() -> None:
    for command in ([], ["init"], ["validate"], ["generate"], ["schema"]):
        result = subprocess.run(
            [console_script(), *command, "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0
        assert "<bool>" not in result.stdout, command
        assert "{spec}" not in result.stdout, command
    assert "schema" in authgen("--help").stdout


def test_shell_completion_installs_and_completes(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    result = subprocess.run(
        [console_script(), "--install-completion", "bash"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    script = (tmp_path / ".bash_completions" / "authgen.sh").read_text()
    assert "_AUTHGEN_COMPLETE=complete_bash" in script
    assert "authgen.sh" in (tmp_path / ".bashrc").read_text()

    # What bash runs when TAB is pressed after `authgen gen`, and after `--ch`.
    for words, cword, expected in (
        ("authgen gen", "1", "generate"),
        ("authgen generate user.yaml --ch", "3", "--check"),
    ):
        completion = subprocess.run(
            [console_script()],
            capture_output=True,
            text=True,
            env={
                **env,
                "_AUTHGEN_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": cword,
            },
        )
        assert completion.stdout.split() == [expected]


def on_a_terminal(*args: str | Path, env: dict[str, str]) -> str:
    """Run `authgen ARGS` with stdout and stderr on a pseudo-terminal; its output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [console_script(), *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, **env},
    )
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        try:
            chunk = os.read(controller, 65536) if ready else b""
        except OSError:  # the terminal closed
            chunk = b""
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(controller)
    return output.decode()


def test_colour_and_progress_on_a_terminal_only(tmp_path: Path, write_spec) -> None:
    spec = write_spec(f"service:\n  name: {LONG_NAME}\n")
    app = f"src/{LONG_NAME.replace('-', '_')}/app.py"
    cold = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "NO_COLOR": "", "TERM": "xterm"}
    shown = on_a_terminal("generate", spec, "-o", tmp_path / "a", env=cold)
    assert re.search(r"formatting \d+ Python files with black…", shown)
    assert f"\x1b[32mcreated\x1b[0m: {app}" in shown
    assert "\x1b[" in shown.split("generated")[1]

    plain = on_a_terminal(
        "generate", spec, "-o", tmp_path / "b", env={**cold, "NO_COLOR": "1"}
    )
    assert f"created: {app}" in plain
    assert "\x1b[" not in plain

    piped = authgen(
        "generate", spec, "-o", tmp_path / "c", env={"TERM": "xterm", "NO_COLOR": ""}
    )
    assert "\x1b[" not in piped.stdout + piped.stderr
    assert "formatting" not in piped.stdout + piped.stderr


@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_the_schema_accepts_every_valid_spec(spec: Path) -> None:
    schema = json.loads(authgen("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(spec.read_text()), schema)


def test_the_schema_accepts_the_starter(tmp_path: Path) -> None:
    assert authgen("init", tmp_path).returncode == 0
    schema = json.loads((tmp_path / "user.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((tmp_path / "user.yaml").read_text()), schema)


@pytest.mark.parametrize(
    "spec",
    [
        {"service": {"name": "Acme"}},
        {"service": {"name": "acme", "pakage": "x"}},
        {"service": {"name": "acme"}, "fields": {"age": {"type": "integer"}}},
        {"service": {"name": "acme"}, "fields": {"2fa": {"type": "boolean"}}},
        {"service": {"name": "acme"}, "fields": {"age": {"type": "int", "min": "0"}}},
        {
            "service": {"name": "acme"},
            "fields": {"g": {"type": "enum", "values": ["a b"]}},
        },
    ],
)
def test_the_schema_flags_mistakes_as_they_are_typed(spec: dict) -> None:
    schema = json.loads(authgen("schema").stdout)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def readme_rows(heading: str) -> dict[str, list[str]]:
    """The rows of the README table after `heading`, by key."""
    lines = (ROOT / "README.md").read_text().split(heading, 1)[1].splitlines()
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for key in re.findall(r"^`([a-z_]+)`|, `([a-z_]+)`", cells[0]):
            rows["".join(key)] = cells
    return rows


def test_the_schema_describes_every_key_with_the_readme() -> None:
    schema = json.loads(authgen("schema").stdout)
    for model, heading in (
        ("ServiceSpec", "`service`:\n"),
        ("FieldSpec", "ignoring case.\n"),
    ):
        properties = schema["$defs"][model]["properties"]
        rows = readme_rows(heading)
        assert set(rows) == set(properties), model
        for key, cells in rows.items():
            meaning, default = cells[-1], cells[1]
            applies = (
                ""
                if len(cells) == 3 or cells[2] == "all"
                else f" Applies to: {cells[2]}."
            )
            ending = {
                "(required)": " Required.",
                "(required for enum)": " Required for an enum.",
            }.get(default, f" Default: {default}.")
            assert properties[key]["description"] == f"{meaning}.{applies}{ending}", key


def test_authgen_own_tree_is_black_clean() -> None:
    """pyproject configures black for authgen itself (the blueprints aside)."""
    result = subprocess.run(
        [sys.executable, "-m", "black", "--check", "src", "tests", "bench", "tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
