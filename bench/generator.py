"""`authgen generate` against `cookiecutter --no-input` on the same blueprints.

Both sides bake the same template with the same context (the one authgen
builds from the spec), as whole processes into fresh folders, alternated
round after round. authgen also formats the Python with black (cached by
content under $XDG_CACHE_HOME/authgen) and plans a three-way merge, so the
ratio is the price of those on top of plain cookiecutter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

import charts
from common import BIN, WORK, Sample, Section, Target, authgen_command, log, ratios

SIZES = (5, 20, 100)
ROUNDS = 5


def make_spec(size: int) -> dict:
    """A valid spec of `size` fields cycling through every type and option."""
    fields: dict[str, dict] = {}
    for i in range(size):
        kind = ("string", "int", "float", "boolean", "date", "datetime", "enum")[i % 7]
        field: dict = {"type": kind, "description": f"Field number {i}."}
        if i % 3 == 0:
            field["public"] = True
        if kind == "string":
            variant = (i // 7) % 4
            if variant == 0:
                field.update(
                    unique=True,
                    required=True,
                    min_length=3,
                    max_length=40,
                    pattern="^[a-z0-9_]+$",
                    message="Lower-case letters, digits, _.",
                )
            elif variant == 1:
                field.update(list=True, max_length=20, default=[])
            elif variant == 2:
                field.update(format="url", index=True)
            else:
                field.update(format="email", default="nobody@example.com")
        elif kind in ("int", "float"):
            field.update(min=0, max=1000, index=i % 2 == 0)
            if i % 4 == 1:
                field["default"] = 1
        elif kind == "boolean":
            field["default"] = False
        elif kind == "date":
            field["index"] = True
        elif kind == "datetime":
            field["editable"] = False
        else:
            field.update(values=["Red", "Green", "Blue"], required=True, default="Red")
        fields[f"field{i}{kind.title()}"] = field
    return {"service": {"name": f"bench-{size}"}, "fields": fields}


def write_inputs(folder: Path, size: int, source: Path) -> tuple[Path, Path]:
    """The spec, and a cookiecutter config giving the same context by default."""
    spec_path = folder / f"spec-{size}.yaml"
    spec_path.write_text(yaml.safe_dump(make_spec(size), sort_keys=False))
    code = (
        "import json, sys; from authgen.context import build_context; "
        "from authgen.spec import load_spec; "
        "print(json.dumps(build_context(load_spec(__import__('pathlib').Path(sys.argv[1])))))"
    )
    context = json.loads(
        subprocess.run(
            [str(BIN / "python"), "-c", code, str(spec_path)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **authgen_command(source)[1]},
        ).stdout
    )
    config = folder / f"cookiecutter-{size}.yaml"
    config.write_text(
        json.dumps(
            {
                "default_context": context,
                "cookiecutters_dir": str(folder / "cookiecutters"),
                "replay_dir": str(folder / "replay"),
            }
        )
    )
    return spec_path, config


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(source: Path) -> Section:
    """`source` is the unpacked commit: its authgen and its blueprints are measured."""
    command, path = authgen_command(source)

    def authgen(spec: Path, out: Path, env: dict[str, str]) -> float:
        return timed([*command, "generate", str(spec), "-o", str(out)], {**env, **path})

    def cookiecutter(config: Path, out: Path, env: dict[str, str]) -> float:
        return timed(
            [
                str(BIN / "cookiecutter"),
                "--no-input",
                "--config-file",
                str(config),
                "-o",
                str(out),
                str(source / "blueprints"),
            ],
            env,
        )

    section = Section("Generator")
    root = WORK / "generator"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cache = root / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    rows = []
    chart: dict[str, tuple[Sample, Sample, Sample]] = {}
    for size in SIZES:
        spec, config = write_inputs(root, size, source)
        authgen(spec, root / f"warmup-{size}", env)
        cold, ours, theirs, again = [], [], [], []
        for round_ in range(ROUNDS):
            out = root / f"r{round_}-{size}"
            empty = {**env, "XDG_CACHE_HOME": tempfile.mkdtemp(dir=root)}
            steps = [
                lambda: cold.append(authgen(spec, out / "cold", empty)),
                lambda: ours.append(authgen(spec, out / "authgen", env)),
                lambda: theirs.append(cookiecutter(config, out / "cc", env)),
            ]
            for step in steps if round_ % 2 == 0 else reversed(steps):
                step()
            again.append(authgen(spec, out / "authgen", env))
            shutil.rmtree(out)
        sample_cold, sample_ours = Sample(cold), Sample(ours)
        sample_theirs, sample_again = Sample(theirs), Sample(again)
        cold_ratio = ratios(cold, theirs)
        ratio = ratios(ours, theirs)
        regen_ratio = ratios(again, theirs)
        log(
            f"generator {size} fields: authgen cold {sample_cold.median:.2f}s, "
            f"warm {sample_ours.median:.2f}s, cookiecutter {sample_theirs.median:.2f}s, "
            f"cold ratio {cold_ratio.median:.2f}"
        )
        rows.append(
            f"| {size} | {sample_cold.show(2, ' s')} | {sample_ours.show(2, ' s')} "
            f"| {sample_theirs.show(2, ' s')} | {cold_ratio.show(2, '×')} "
            f"| {'met' if cold_ratio.median <= 1.5 else '**missed**'} "
            f"| {ratio.show(2, '×')} | {sample_again.show(2, ' s')} "
            f"| {regen_ratio.show(2, '×')} |"
        )
        chart[str(size)] = (sample_cold, sample_theirs, sample_ours)
        section.targets.append(
            Target(
                f"authgen generate (cold cache), {size} fields ÷ cookiecutter",
                cold_ratio,
                "≤ 1.5×",
                cold_ratio.median <= 1.5,
                unit="×",
            )
        )
    section.text += [
        f"Whole processes into a fresh folder, {ROUNDS} rounds, the sides alternated "
        "(the order flips every round). Cookiecutter gets authgen's context for the spec "
        "through its config file's `default_context`, with a temporary `replay_dir`. "
        '"Cold" is a first generation: black\'s output cache (`$XDG_CACHE_HOME/authgen`) '
        'is empty, new every round; "warm" means it already holds the files. The '
        "blueprints render black-clean (a test checks every test spec), so black only "
        "runs on a file where the spec took a line past 88 columns. "
        '"Regenerate" is a second '
        "`authgen generate` into the same folder, with nothing to change.",
        "",
        "| fields | authgen generate (cold) | authgen generate (warm) "
        "| cookiecutter --no-input | cold ÷ cookiecutter | ≤ 1.5× | warm ÷ cookiecutter "
        "| regenerate, no change | regenerate ÷ cookiecutter |",
        "|---:|---:|---:|---:|---:|:---:|---:|---:|---:|",
        *rows,
    ]
    section.charts.append(charts.generator(chart))
    return section
