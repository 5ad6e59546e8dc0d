"""The emitted `.env.example` shows every setting with the default settings.py gives it.

The emitted service's own test checks only that every setting is listed: a
user who changes a default in settings.py may leave the example behind; the
blueprint may not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import EXAMPLE

# Runs in the generated service: each setting's default as `.env.example` writes
# it, empty when there is none or it is computed (the machine's cores).
DEFAULTS = """
import json
from acme_auth.settings import Settings

def shown(field):
    if field.default_factory is not None or field.default is None:
        return ""
    if isinstance(field.default, bool):
        return str(field.default).lower()
    return str(field.default)

print(json.dumps({f"AUTH_{name.upper()}": shown(field) for name, field in Settings.model_fields.items()}))
"""


def test_env_example_shows_every_default(generated) -> None:
    out = generated(EXAMPLE)
    listed = dict(
        re.findall(
            r"^# (AUTH_[A-Z0-9_]+)=(.*)$",
            (out / ".env.example").read_text(),
            re.MULTILINE,
        )
    )
    result = subprocess.run(
        [sys.executable, "-c", DEFAULTS],
        env={**os.environ, "PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        check=True,
        cwd=out,
    )
    assert listed == json.loads(result.stdout)
