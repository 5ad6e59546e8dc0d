"""The README is the reference: it must name every option, command and setting."""

from __future__ import annotations

import re

from authgen.cli import app
from authgen.spec import FIELD_TYPES, FieldSpec, ServiceSpec

from conftest import EXAMPLE, ROOT

README = (ROOT / "README.md").read_text()


def test_every_spec_key_and_type_is_documented() -> None:
    for key in (*FieldSpec.model_fields, *ServiceSpec.model_fields):
        assert f"`{key}`" in README, key
    for kind in FIELD_TYPES:
        assert f"`{kind}`" in README, kind


def test_every_command_and_option_is_documented() -> None:
    for command in app.registered_commands:
        assert f"authgen {command.name or command.callback.__name__}" in README
    for text in (
        "--force",
        "--name NAME",
        "-o OUT",
        "--check",
        "--diff",
        "--version",
        "--help",
        "--install-completion",
        "--show-completion",
    ):
        assert text in README, text


def test_every_setting_of_the_emitted_service_is_documented(generated) -> None:
    settings = (generated(EXAMPLE) / "src/acme_auth/settings.py").read_text()
    body = settings.split("class Settings", 1)[1]
    names = re.findall(r"^    (\w+): ", body, flags=re.MULTILINE)
    assert "database_url" in names
    for name in names:
        assert f"AUTH_{name.upper()}" in README, name
