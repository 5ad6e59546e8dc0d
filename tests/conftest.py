"""Shared helpers: run the real CLI, write specs, generate a spec once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example-user.yaml"
SPECS = Path(__file__).resolve().parent / "specs"
MINIMAL = SPECS / "minimal.yaml"
EVERY_OPTION = SPECS / "every-option.yaml"
#: A service name long enough to take emitted lines past 88 columns (black's work).
LONG_NAME = "a-service-whose-name-is-long-enough-to-push-its-imports-past-the-limit"


def example_specs() -> list[Path]:
    """Every spec the tests know: the example and those under tests/specs."""
    return [EXAMPLE, *sorted(SPECS.glob("*.yaml"))]


def authgen(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m authgen ARGS` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "authgen", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_service_tests(out: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    """Run a generated service's own test-suite (or these of its test modules)
    on its own code, not an installed copy."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
        + [f"tests/{module}" for module in modules],
        cwd=out,
        env={**os.environ, "PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), the state folder included."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write spec text to tmp_path/user.yaml and return its path."""

    def write(text: str, name: str = "user.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """Generate a spec through the CLI once per session; returns the output folder.

    Tests that only read the emitted tree share it; tests that change it make
    their own.
    """
    outputs: dict[Path, Path] = {}

    def generate(spec: Path) -> Path:
        if spec not in outputs:
            out = tmp_path_factory.mktemp(spec.stem) / "service"
            result = authgen("generate", spec, "-o", out)
            assert result.returncode == 0, result.stderr
            outputs[spec] = out
        return outputs[spec]

    return generate
