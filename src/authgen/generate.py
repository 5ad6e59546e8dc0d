"""The generate pipeline: spec -> context -> rendering -> plan against OUT."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authgen import regenerate
from authgen.context import build_context, user_owned_paths
from authgen.errors import AuthgenError
from authgen.render import Rendering, render
from authgen.spec import load_spec


@dataclass
class Generation:
    """What one `authgen generate` would do to its output folder."""

    out: Path
    rendering: Rendering
    plan: regenerate.Plan

    def apply(self) -> None:
        try:
            regenerate.apply(self.plan, self.out, executable=self.rendering.executable)
        except OSError as error:
            raise AuthgenError(f"cannot write {self.out}: {error}") from error


def prepare(
    spec_path: Path,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Generation:
    """Check and render the spec and plan the writes; touches nothing."""
    spec = load_spec(spec_path)
    out = out or Path(spec.service.name)
    _check_out(out, spec_path)
    context = build_context(spec)
    rendering = render(context, progress=progress)
    # The spec travels with the service, so the service shows where it came from.
    rendering.files["user.yaml"] = spec_path.read_bytes()
    try:
        plan = regenerate.plan(
            rendering.files,
            out,
            user_owned=user_owned_paths(context),
            exclude=spec.exclude,
        )
    except OSError as error:
        raise AuthgenError(f"cannot read {out}: {error}") from error
    return Generation(out, rendering, plan)


def _check_out(out: Path, spec_path: Path) -> None:
    """Refuse to write a service inside another one (`svc/svc/`, `svc/src/`):
    running `authgen generate` inside a service without `-o .` did that."""
    for parent in out.resolve().parents:
        if (parent / regenerate.STATE_DIR).is_dir():
            service = os.path.relpath(parent)
            raise AuthgenError(
                f"{out} is inside the service generated in {service}; to regenerate"
                f" that service, run: authgen generate {spec_path} -o {service}"
            )
