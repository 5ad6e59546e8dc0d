"""service.mfa: checked by `authgen validate`, and the emitted service's default AUTH_MFA."""

from __future__ import annotations

from pathlib import Path

from authgen.cli import app
from authgen.spec import check
from authgen.loader import load
from typer.testing import CliRunner

from test_spec import problems

from conftest import EXAMPLE


def test_an_unknown_mfa_mode_is_refused() -> None:
    text = "service:\n  name: acme\n  mfa: sometimes\nfields: {}\n"
    assert problems(text) == [
        "user.yaml:3:8: service.mfa: expected 'off', 'optional' or 'required',"
        " got 'sometimes'"
    ]


def test_validate_reports_the_mode(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text("service:\n  name: acme\n  mfa: always\nfields: {}\n")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert "service.mfa: expected 'off', 'optional' or 'required', got 'always'" in (
        result.output
    )
    spec.write_text("service:\n  name: acme\n  mfa: required\nfields: {}\n")
    assert CliRunner().invoke(app, ["validate", str(spec)]).exit_code == 0


def test_the_spec_sets_the_services_default(generated, tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    text = EXAMPLE.read_text().replace(
        "name: acme-auth ", 'mfa: "off"\n  name: acme-auth ', 1
    )
    spec.write_text(text)
    settings = (generated(spec) / "src/acme_auth/settings.py").read_text()
    assert 'mfa: Literal["off", "optional", "required"] = "off"' in settings
    default = (generated(EXAMPLE) / "src/acme_auth/settings.py").read_text()
    assert 'mfa: Literal["off", "optional", "required"] = "optional"' in default


def test_passwordless_needs_factors() -> None:
    text = (
        "service:\n  name: acme\n  mfa: 'off'\n  passwordless: passkeys\nfields: {}\n"
    )
    assert problems(text) == [
        "user.yaml:4:17: service.passwordless: passkeys needs service.mfa other"
        " than off: passkeys are second factors"
    ]
    check(load(text.replace("'off'", "optional"), "user.yaml"), "user.yaml")


def test_an_unknown_passwordless_mode_is_refused() -> None:
    text = "service:\n  name: acme\n  passwordless: magic-links\nfields: {}\n"
    assert problems(text) == [
        "user.yaml:3:17: service.passwordless: expected 'off' or 'passkeys',"
        " got 'magic-links'"
    ]


def test_the_spec_sets_passwordless(generated, tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    text = EXAMPLE.read_text().replace(
        "name: acme-auth ", "passwordless: passkeys\n  name: acme-auth ", 1
    )
    spec.write_text(text)
    settings = (generated(spec) / "src/acme_auth/settings.py").read_text()
    assert 'passwordless: Literal["off", "passkeys"] = "passkeys"' in settings
    default = (generated(EXAMPLE) / "src/acme_auth/settings.py").read_text()
    assert 'passwordless: Literal["off", "passkeys"] = "off"' in default
