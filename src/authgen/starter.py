"""The starter user.yaml of `authgen init`: a few commented fields, named
after its folder, with the line that points editors at the JSON Schema."""

from __future__ import annotations

import re

#: Written beside user.yaml by `authgen init`; the starter's first line names it.
SCHEMA_FILE = "user.schema.json"

_STARTER = """\
# yaml-language-server: $schema=./{schema}
# The user model of {name}. `authgen generate user.yaml` turns it into a
# GraphQL authentication service; edit it and generate again, your own edits
# of the generated files are kept. Every user already has an email, a password
# and an id: declare the other fields below. Every option and its meaning:
# `authgen schema` (your editor shows them) or the spec tables of authgen's README.

service:
  name: {name}{padding}# lower-case letters, digits and dashes; the output folder

fields:
  username:
    type: string           # string | int | float | boolean | date | datetime | enum
    required: true         # register must give it
    unique: true           # no two users share one
    public: true           # anyone can read it (the user* queries); others: owner only
    max_length: 32
  newsletter:
    type: boolean
    default: false         # filled in at register when not given
"""


def service_name(folder: str) -> str:
    """A valid service.name made from a folder name: `My App` gives `my-app`."""
    words = re.findall(r"[a-z0-9]+", folder.lower())
    name = "-".join(words)
    if not name:
        return "auth-service"
    return name if name[0].isalpha() else f"auth-{name}"


def text(name: str) -> str:
    padding = " " * max(1, 19 - len(name))
    return _STARTER.format(schema=SCHEMA_FILE, name=name, padding=padding)
