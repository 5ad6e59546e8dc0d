"""Write a rendering into an output folder without losing the user's edits.

A run is planned first (reads only) and then applied. Check and diff modes use
the same plan and just don't apply it, so all three modes always agree:

* apply: ``apply(plan(rendered, out), rendered, out)``
* check: ``[c.path for c in plan(rendered, out).pending]``
* diff:  ``plan(rendered, out).diff(out)``

State lives in ``OUT/.authgen/``:

* ``manifest.json``: the format version, the sha256 of each file as last
  generated, and the user-owned paths. Deterministic JSON, no timestamps.
* ``base/<path>``: a copy of each file as last generated. It is the base of
  three-way merges.

Decisions:

* A file that exists but has no manifest entry (first generation into a
  non-empty folder, or a file the user made under a generated name) is merged
  against an empty base. An identical file is left alone. Anything else
  becomes a whole-file conflict, because we never overwrite a file we did not
  write.
* If the generator's output is the same as last time, an edited file stays as
  the user left it, text or binary, because there is nothing to merge. So
  after a conflict, the user's resolution (or unresolved markers) is left
  alone until the rendering changes again. Then the merge uses the rendering
  from the conflicted run as its base.
* Only UTF-8 files are merged. An edited binary file stays as it is, and the
  new rendering is written beside it as ``<path>.generated``.
* A file that is no longer rendered is removed only if untouched. An edited
  one is reported once as "kept" and then dropped from the manifest, so it
  becomes the user's file.
* User-owned paths are written only when absent. The manifest remembers them,
  so they stay user-owned even if a later caller forgets to pass them.
* Modes: ``executable`` paths get 0o755 when written. A replaced file keeps
  its mode. A new file gets 0o644. A change of mode alone is not detected.
* Each file goes to a temp file in its folder and is then ``os.replace``-d in.
  The base copies come next and the manifest last, so running again after an
  interruption repairs the folder.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import merge3

STATE_DIR = ".authgen"
MANIFEST_FORMAT = 1
PENDING = ("created", "updated", "merged", "conflict", "removed")


@dataclass(frozen=True)
class Change:
    """One path's outcome. Plans are made of these so every mode agrees."""

    path: str
    action: str  # "created" | "updated" | "merged" | "conflict" | "removed" | "kept" | "unchanged"
    content: bytes | None = (
        None  # what will be written (None for removed/kept/unchanged)
    )
    write_to: str | None = None  # set when content goes beside `path` (binary conflict)

    @property
    def target(self) -> str:
        return self.write_to or self.path


@dataclass
class Plan:
    """Everything a run would do, computed without writing, so check and diff
    can report exactly what apply would do."""

    changes: list[Change]

    @property
    def conflicts(self) -> list[str]:
        return [c.path for c in self.changes if c.action == "conflict"]

    @property
    def pending(self) -> list[Change]:
        """Changes that write or remove something: what check mode reports."""
        return [c for c in self.changes if c.action in PENDING]

    def diff(self, out: Path) -> str:
        """Unified diff from disk to what apply would write, sorted by path."""
        return "".join(_diff_one(Path(out), c) for c in self.pending)


def plan(
    rendered: Mapping[str, bytes],
    out: Path,
    *,
    user_owned: Collection[str] = (),
) -> Plan:
    """Decide what to do with each path. Reads only, so it is safe for check and diff."""
    out = Path(out)
    for path in rendered:
        _check_path(path)
    recorded, recorded_owned = _read_manifest(out)
    owned = set(user_owned) | recorded_owned
    changes: list[Change] = []

    for path in sorted(rendered):
        new = rendered[path]
        current = _read(out / path)
        if path in owned:
            changes.append(
                Change(path, "created", new)
                if current is None
                else Change(path, "unchanged")
            )
        else:
            changes.append(_plan_file(out, path, current, new, recorded.get(path)))

    for path in sorted(set(recorded) - set(rendered) - owned):
        current = _read(out / path)
        if current is None:
            continue  # already gone: just forget it
        changes.append(
            Change(path, "removed" if _sha(current) == recorded[path] else "kept")
        )

    changes.sort(key=lambda c: c.path)
    return Plan(changes)


def apply(
    plan: Plan,
    rendered: Mapping[str, bytes],
    out: Path,
    *,
    user_owned: Collection[str] = (),
    executable: Collection[str] = (),
) -> None:
    """Carry out a plan made from the same rendered/out/user_owned.

    The manifest is written last so that a rerun repairs an interrupted run.
    """
    out = Path(out)
    owned = (
        set(user_owned) | _read_manifest(out)[1]
    )  # read before it is rewritten below
    generated = {
        path: content for path, content in rendered.items() if path not in owned
    }

    for change in plan.pending:
        target = out / change.target
        if change.action == "removed":
            target.unlink()
            _prune_empty_parents(target.parent, stop=out)
        else:
            assert change.content is not None
            _write(target, change.content, executable=change.path in executable)

    base_dir = out / STATE_DIR / "base"
    for path, content in generated.items():
        if _read(base_dir / path) != content:
            _write(base_dir / path, content)
    if base_dir.is_dir():
        for file in sorted(base_dir.rglob("*")):
            if (
                file.is_file()
                and file.relative_to(base_dir).as_posix() not in generated
            ):
                file.unlink()
                _prune_empty_parents(file.parent, stop=base_dir)

    manifest = _manifest_bytes(generated, sorted(owned))
    manifest_path = out / STATE_DIR / "manifest.json"
    if _read(manifest_path) != manifest:
        _write(manifest_path, manifest)


def _plan_file(
    out: Path, path: str, current: bytes | None, new: bytes, recorded_sha: str | None
) -> Change:
    if current is None:
        return Change(path, "created", new)
    if current == new:
        return Change(path, "unchanged")
    base = b""
    if recorded_sha is not None:
        if _sha(current) == recorded_sha:
            return Change(path, "updated", new)  # the user did not touch it
        if _sha(new) == recorded_sha:
            return Change(
                path, "unchanged"
            )  # the generator did not change it: the user's edit stands
        base = _read(out / STATE_DIR / "base" / path) or b""
    if not _is_text(base, current, new):
        return Change(path, "conflict", new, write_to=path + ".generated")
    merged, conflict = _merge(base, current, new)
    if merged == current:
        return Change(path, "unchanged")
    return Change(path, "conflict" if conflict else "merged", merged)


def _merge(base: bytes, yours: bytes, generated: bytes) -> tuple[bytes, bool]:
    """Three-way merge. Returns the result and whether it has conflict markers."""
    m = merge3.Merge3(_lines(base), _lines(yours), _lines(generated))
    conflict = any(region[0] == "conflict" for region in m.merge_regions())
    lines = list(
        m.merge_lines(
            name_a="yours",
            name_b="generated",
            start_marker="<<<<<<<",
            mid_marker="=======",
            end_marker=">>>>>>>",
            base_marker=None,
        )
    )
    if conflict:
        # A side whose last line has no newline would run into the next marker.
        for i, line in enumerate(lines[:-1]):
            if not line.endswith(("\n", "\r")):
                lines[i] = line + "\n"
    return "".join(lines).encode("utf-8"), conflict


def _lines(data: bytes) -> list[str]:
    # bytes.splitlines splits only on \n, \r and \r\n. str.splitlines also splits
    # on form feeds and other separators, which are not real line ends.
    return [line.decode("utf-8") for line in data.splitlines(keepends=True)]


def _is_text(*blobs: bytes) -> bool:
    try:
        for blob in blobs:
            blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _diff_one(out: Path, change: Change) -> str:
    name = change.target
    old = _read(out / name) or b""
    new = change.content or b""
    if not _is_text(old, new):
        return f"Binary files a/{name} and b/{name} differ\n"
    lines = difflib.unified_diff(_lines(old), _lines(new), f"a/{name}", f"b/{name}")
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in lines
    )


def _read_manifest(out: Path) -> tuple[dict[str, str], set[str]]:
    raw = _read(out / STATE_DIR / "manifest.json")
    if raw is None:
        return {}, set()
    data = json.loads(raw)
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(
            f"{out / STATE_DIR / 'manifest.json'}: unsupported format {data.get('format')!r}"
        )
    generated, owned = dict(data["generated"]), set(data["user_owned"])
    for path in [*generated, *owned]:
        _check_path(path)  # the manifest decides what we delete: don't trust it blindly
    return generated, owned


def _manifest_bytes(generated: Mapping[str, bytes], user_owned: list[str]) -> bytes:
    data = {
        "format": MANIFEST_FORMAT,
        "generated": {path: _sha(content) for path, content in generated.items()},
        "user_owned": user_owned,
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _check_path(path: str) -> None:
    parts = path.split("/")
    if (
        "\\" in path
        or any(part in ("", ".", "..") for part in parts)
        or parts[0] == STATE_DIR
    ):
        raise ValueError(f"not a safe relative POSIX path: {path!r}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(target: Path, content: bytes, *, executable: bool = False) -> None:
    """Write via a temp file and os.replace so no reader ever sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if executable:
        mode = 0o755
    elif target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _prune_empty_parents(folder: Path, stop: Path) -> None:
    """Remove folders left empty, up to but never including `stop`."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or already gone): stop here
        folder = folder.parent
