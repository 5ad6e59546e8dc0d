"""YAML loading: positions of keys and values, and the YAML-level mistakes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from authgen.loader import SpecError, load, read


def lines(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(text, "user.yaml")
    return caught.value.lines()


def test_positions_of_keys_and_values_are_one_based() -> None:
    document = load(
        "service:\n  name: acme\nfields:\n  age:\n    type: int\n", "u.yaml"
    )

    assert document.data == {
        "service": {"name": "acme"},
        "fields": {"age": {"type": "int"}},
    }
    assert document.position(("service", "name")) == (2, 9)
    assert document.position(("service", "name"), key=True) == (2, 3)
    assert document.position(("fields", "age", "type")) == (5, 11)
    # A path that is not in the document points at its nearest parent.
    assert document.position(("fields", "age", "min")) == (5, 5)


def test_yaml_syntax_error_points_at_the_problem() -> None:
    assert lines("service:\n  name: acme\n fields: x\n") == [
        "user.yaml:3:2: invalid YAML: expected <block end>, but found '<block mapping start>'"
    ]


def test_unclosed_flow_sequence() -> None:
    assert lines("service:\n  name: acme\nfields: [\n") == [
        "user.yaml:4:1: invalid YAML: expected the node content, but found '<stream end>'"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    assert lines(text) == [
        "user.yaml:1:1: the spec is empty; `authgen init` writes a starter"
    ]


@pytest.mark.parametrize("text", ["- service\n- fields\n", "just text\n"])
def test_top_level_not_a_mapping(text: str) -> None:
    assert lines(text) == [
        "user.yaml:1:1: the top level must be a mapping of keys (service:, fields:)"
    ]


def test_top_level_not_a_mapping_after_comments() -> None:
    assert lines("# spec\n\n  [1, 2]\n") == [
        "user.yaml:3:3: the top level must be a mapping of keys (service:, fields:)"
    ]


def test_duplicate_keys_are_all_reported() -> None:
    text = (
        "service:\n  name: a\n"
        "fields:\n"
        "  age:\n    type: int\n    type: string\n"
        "  age:\n    type: int\n"
    )
    assert lines(text) == [
        "user.yaml:6:5: duplicate key 'type'; keep one of them",
        "user.yaml:7:3: duplicate key 'age'; keep one of them",
    ]


def test_non_string_key() -> None:
    assert lines("service:\n  name: a\nfields:\n  12:\n    type: int\n") == [
        "user.yaml:4:3: keys must be text; put this one in quotes"
    ]


def test_impossible_date_is_kept_as_text_not_a_crash() -> None:
    document = load("d: 2020-13-45\ne: 2020-02-29\n", "u.yaml")
    assert document.data == {"d": "2020-13-45", "e": dt.date(2020, 2, 29)}


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        read(tmp_path / "missing.yaml")
    (line,) = caught.value.lines()
    assert (
        line
        == f"{tmp_path / 'missing.yaml'}:1:1: cannot read the spec: No such file or directory"
    )


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("service:\n  name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as caught:
        read(path)
    (line,) = caught.value.lines()
    assert line.startswith(
        f"{path}:1:1: cannot read the spec: 'utf-8' codec can't decode"
    )
