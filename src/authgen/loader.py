"""YAML loading that remembers where every value came from.

The spec's error messages point at `file:line:col`, so we compose the YAML
node graph ourselves and keep the start mark of every key and value, keyed
by its path in the loaded data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from authgen.errors import AuthgenError

Path_ = tuple[str | int, ...]

_NOT_A_MAPPING = "the top level must be a mapping of keys (service:, fields:)"
_NOT_TEXT = "keys must be text; put this one in quotes"


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a spec, with the position it concerns (1-based)."""

    line: int
    column: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: {self.message}"


class SpecError(AuthgenError):
    """A spec with one or more mistakes; carries all of them at once."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = sorted(set(problems))
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.format(self.filename) for problem in self.problems]


@dataclass
class Document:
    """Plain data loaded from YAML plus the marks of its keys and values."""

    data: Any
    value_marks: dict[Path_, tuple[int, int]]
    key_marks: dict[Path_, tuple[int, int]]

    def position(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """The mark of the value (or key) at `path`, or of its nearest parent."""
        marks = self.key_marks if key else self.value_marks
        while path:
            if path in marks:
                return marks[path]
            if not key and path in self.key_marks:
                return self.key_marks[path]
            path = path[:-1]
        return self.value_marks.get((), (1, 1))

    def problem(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        line, column = self.position(path, key=key)
        return Problem(line, column, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load(text: str, filename: str) -> Document:
    """Parse YAML text, rejecting duplicate keys and non-mapping documents."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = error.problem or str(error)
        raise SpecError(filename, [Problem(line, column, f"invalid YAML: {message}")])
    if root is None:
        raise SpecError(
            filename,
            [Problem(1, 1, "the spec is empty; `authgen init` writes a starter")],
        )
    if not isinstance(root, yaml.MappingNode):
        raise SpecError(filename, [Problem(*_mark(root), _NOT_A_MAPPING)])
    document = Document(None, {}, {})
    problems: list[Problem] = []
    document.data = _construct(root, (), document, problems)
    if problems:
        raise SpecError(filename, problems)
    return document


def _construct(
    node: yaml.Node, path: Path_, document: Document, problems: list[Problem]
) -> Any:
    document.value_marks[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                problems.append(Problem(*_mark(key_node), _NOT_TEXT))
                continue
            if key in result:
                problems.append(
                    Problem(
                        *_mark(key_node), f"duplicate key '{key}'; keep one of them"
                    )
                )
                continue
            document.key_marks[path + (key,)] = _mark(key_node)
            result[key] = _construct(value_node, path + (key,), document, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, path + (index,), document, problems)
            for index, item in enumerate(node.value)
        ]
    return _scalar(node)


_constructor = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    try:
        return _constructor.construct_object(node)
    except ValueError:
        # A date-looking scalar that is not a real date (2020-13-45): keep the
        # text, so the spec check can say which value is wrong and where.
        return node.value


def read(path: Path) -> Document:
    """Load a spec file; an unreadable file is a spec error, not a traceback."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise SpecError(str(path), [Problem(1, 1, f"cannot read the spec: {reason}")])
    return load(text, str(path))
