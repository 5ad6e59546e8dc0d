"""The generator's one error type: a mistake the user can fix.

Every error authgen expects (a bad spec, a blueprint that does not render, an
output folder it cannot use, a corrupt manifest) is an AuthgenError whose
message says what is wrong and how to fix it, as copier's UserMessageError.
The CLI catches this type alone and prints its lines; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class AuthgenError(Exception):
    """A message for the user; `lines()` is what the CLI prints on stderr."""

    def lines(self) -> list[str]:
        return [f"error: {self}"]
