"""What `authgen generate` writes: a tree that compiles, is formatted, imports,
and whose GraphQL schema is valid and exposes exactly what the spec says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import black
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    build_schema,
)

from authgen.spec import load_spec

from conftest import (
    EVERY_OPTION,
    EXAMPLE,
    MINIMAL,
    ROOT,
    authgen,
    example_specs,
    tree,
)

SPECS = [MINIMAL, EXAMPLE, EVERY_OPTION]
BLACK_MODE = black.Mode(target_versions={black.TargetVersion.PY311})
FILTERS = (
    "FilterFindOneUserPublicInfoInput",
    "FilterFindManyUserPublicInfoInput",
    "FilterUserPublicInfoInput",
)
SORTS = (
    "SortFindOneUserPublicInfoInput",
    "SortFindManyUserPublicInfoInput",
    "SortFindByIdsUserPublicInfoInput",
)


@pytest.fixture(params=SPECS, ids=lambda p: p.stem)
def spec(request: pytest.FixtureRequest) -> Path:
    return request.param


def package_of(spec: Path) -> str:
    return load_spec(spec).service.package_name


def schema_of(out: Path, spec: Path):
    return build_schema((out / "src" / package_of(spec) / "schema.graphql").read_text())


def test_layout(generated, spec: Path) -> None:
    out = generated(spec)
    package = package_of(spec)
    for path in (
        "pyproject.toml",
        "README.md",
        "Makefile",
        "user.yaml",
        f"src/{package}/__main__.py",
        f"src/{package}/app.py",
        f"src/{package}/transport.py",
        f"src/{package}/settings.py",
        f"src/{package}/schema.graphql",
        f"src/{package}/resolvers.py",
        f"src/{package}/errors.py",
        f"src/{package}/models.py",
        f"src/{package}/hooks.py",
        f"src/{package}/store/__init__.py",
        "tests/conftest.py",
        ".authgen/manifest.json",
    ):
        assert (out / path).is_file(), path
    assert (out / "user.yaml").read_bytes() == spec.read_bytes()


def test_every_python_file_compiles_and_is_black_formatted(
    generated, spec: Path
) -> None:
    out = generated(spec)
    sources = [p for p in out.rglob("*.py") if ".authgen" not in p.parts]
    assert sources
    for path in sources:
        source = path.read_text()
        compile(source, str(path), "exec")
        assert black.format_str(source, mode=BLACK_MODE) == source, path


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for every spec: the libraries are analysed once, not per spec."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.mark.emitted
@pytest.mark.parametrize("every_spec", example_specs(), ids=lambda p: p.stem)
def test_the_emitted_code_passes_mypy_and_ruff(
    generated, every_spec: Path, mypy_cache: Path
) -> None:
    """The service's `make check`: mypy and ruff as its pyproject.toml
    configures them, so the test also checks that configuration."""
    out = generated(every_spec)
    for command in (
        ["mypy", "--cache-dir", str(mypy_cache)],
        ["ruff", "check", "--no-cache", "."],
    ):
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=out,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_imports_and_builds_its_app(generated, spec: Path) -> None:
    out = generated(spec)
    package = package_of(spec)
    result = subprocess.run(
        [sys.executable, "-c", f"import {package}.app; {package}.app.create_app()"],
        cwd=out,
        env={**os.environ, "PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def requirement_names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[\[<>=~! ;]", line, maxsplit=1)[0].lower() for line in requirements
    }


def test_the_test_extra_installs_what_the_emitted_service_needs(generated) -> None:
    """The tests run emitted services and their suites in authgen's own venv:
    a library the service adds must be added to authgen's test extra too, or a
    fresh machine fails where a developer's long-lived venv passes."""
    emitted = tomllib.loads((generated(MINIMAL) / "pyproject.toml").read_text())
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = requirement_names(emitted["project"]["dependencies"]) | requirement_names(
        emitted["project"]["optional-dependencies"]["test"]
    )
    missing = needed - requirement_names(
        ours["project"]["optional-dependencies"]["test"]
    )
    assert not missing, f"add to authgen's test extra: {sorted(missing)}"


def test_schema_has_the_contract_types(generated, spec: Path) -> None:
    schema = schema_of(generated(spec), spec)
    for name in (
        "User",
        "UserPublicInfo",
        "UserRegisterInput",
        "UserUpdateInput",
        "UserAndToken",
        "Token",
        "Notifications",
        "Notification",
        "UserPublicInfoPagination",
        "PaginationInfo",
        "MongoID",
        "Date",
        *FILTERS,
    ):
        assert name in schema.type_map, name
    for name in SORTS:
        assert isinstance(schema.type_map[name], GraphQLEnumType), name
    for name in ("User", "UserPublicInfo", "UserAndToken", "Token", "Notifications"):
        assert isinstance(schema.type_map[name], GraphQLObjectType)
    for name in ("UserRegisterInput", "UserUpdateInput", *FILTERS):
        assert isinstance(schema.type_map[name], GraphQLInputObjectType)


def test_fields_visibility_and_descriptions_follow_the_spec(
    generated, spec: Path
) -> None:
    schema = schema_of(generated(spec), spec)
    fields = load_spec(spec).fields
    user = schema.type_map["User"].fields
    public = schema.type_map["UserPublicInfo"].fields
    register = schema.type_map["UserRegisterInput"].fields
    update = schema.type_map["UserUpdateInput"].fields

    assert set(user) == {"_id", "email", "email_verified", "roles", *fields}
    assert "roles" not in register and "roles" not in update
    assert set(public) == {
        "_id",
        "email_verified",
        *(n for n, f in fields.items() if f.public),
    }
    for name in FILTERS:
        filterable = set(schema.type_map[name].fields) - {"_operators", "OR", "AND"}
        assert filterable == set(public), name
    assert "password" not in user and "password" not in public
    assert {"email", "password"} <= set(register)
    assert {"email", "password", "previousPassword"} <= set(update)
    for name, field in fields.items():
        assert user[name].description == field.description, name
        assert register[name].description == field.description, name
        if field.public:
            assert public[name].description == field.description, name
        assert (name in update) == field.editable, name
        required_at_register = field.required and field.default is None
        assert str(register[name].type).endswith("!") == required_at_register, name


def test_private_fields_are_absent_from_public_sorts(generated) -> None:
    schema = schema_of(generated(EVERY_OPTION), EVERY_OPTION)
    private = [n for n, f in load_spec(EVERY_OPTION).fields.items() if not f.public]
    assert private
    for sort in SORTS:
        values = " ".join(schema.type_map[sort].values)
        for name in private:
            assert name.upper() not in values, (sort, name)


def test_enum_types_come_from_the_spec(generated) -> None:
    schema = schema_of(generated(EVERY_OPTION), EVERY_OPTION)
    assert list(schema.type_map["Colour"].values) == ["RED", "GREEN", "blue_ish"]
    assert str(schema.type_map["User"].fields["moods"].type) == "[Moods]"


def test_two_generations_are_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert authgen("generate", EVERY_OPTION, "-o", first).returncode == 0
    assert authgen("generate", EVERY_OPTION, "-o", second).returncode == 0
    assert tree(first) == tree(second)
    assert ".authgen/manifest.json" in tree(second)


def test_regenerating_an_unchanged_spec_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "service"
    assert authgen("generate", EXAMPLE, "-o", out).returncode == 0
    before = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }

    again = authgen("generate", EXAMPLE, "-o", out)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{out} is up to date\n"
    after = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }
    assert after == before
    check = authgen("generate", EXAMPLE, "-o", out, "--check")
    assert (check.returncode, check.stdout) == (0, f"{out} is up to date\n")
