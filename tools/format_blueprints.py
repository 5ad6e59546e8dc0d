"""Black over the blueprints' Python files (`make format-blueprints`).

Plain files are formatted as they are. A file whose only template syntax is
`{{ ... }}` expressions is formatted with each expression swapped for a
Python name of the same length, then swapped back. Files with `{% ... %}`
blocks cannot be parsed by black: they are listed, to be formatted by hand
(tests/test_render.py says which emitted lines black would change).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import black

ROOT = Path(__file__).resolve().parents[1] / "blueprints"
MODE = black.Mode(target_versions={black.TargetVersion.PY311})
EXPRESSION = re.compile(r"\{\{.*?\}\}")


def formatted(source: str) -> str:
    names: dict[str, str] = {}

    def swap(match: re.Match[str]) -> str:
        name = f"_{len(names):03d}".rjust(len(match.group(0)), "X")
        names[name] = match.group(0)
        return name

    text = black.format_str(EXPRESSION.sub(swap, source), mode=MODE)
    for name, expression in names.items():
        text = text.replace(name, expression)
    return text


def main() -> int:
    by_hand = []
    for path in sorted(ROOT.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "{%" in source:
            by_hand.append(path)
            continue
        try:
            text = formatted(source)
        except black.InvalidInput as error:
            by_hand.append(path)
            print(f"{path.relative_to(ROOT)}: {error}", file=sys.stderr)
            continue
        if text != source:
            path.write_text(text, encoding="utf-8")
            print(f"formatted {path.relative_to(ROOT)}")
    for path in by_hand:
        print(f"format by hand: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
