"""The generate pipeline: spec -> context -> rendering -> plan against OUT."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authgen import regenerate
from authgen.context import build_context, user_owned_paths
from authgen.render import Rendering, render
from authgen.spec import load_spec


@dataclass
class Generation:
    """What one `authgen generate` would do to its output folder."""

    out: Path
    rendering: Rendering
    user_owned: set[str]
    plan: regenerate.Plan

    def apply(self) -> None:
        regenerate.apply(
            self.plan,
            self.rendering.files,
            self.out,
            user_owned=self.user_owned,
            executable=self.rendering.executable,
        )


def prepare(
    spec_path: Path,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Generation:
    """Check and render the spec and plan the writes; touches nothing."""
    spec = load_spec(spec_path)
    context = build_context(spec)
    rendering = render(context, progress=progress)
    # The spec travels with the service, so the service shows where it came from.
    rendering.files["user.yaml"] = spec_path.read_bytes()
    out = out or Path(spec.service.name)
    user_owned = user_owned_paths(context)
    return Generation(
        out,
        rendering,
        user_owned,
        regenerate.plan(rendering.files, out, user_owned=user_owned),
    )
