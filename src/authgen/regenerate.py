"""Write a rendering into an output folder without losing the user's edits.

A run is planned first (reads only) and then applied. Check and diff modes use
the same plan and just don't apply it, so all three modes always agree:

* apply: ``apply(plan(rendered, out), rendered, out)``
* check: ``[c.path for c in plan(rendered, out).pending]``
* diff:  ``plan(rendered, out).diff(out)``

State lives in ``OUT/.authgen/``:

* ``manifest.json``: the format version, the authgen version that wrote it,
  the sha256 of each file as last generated, and the user-owned paths.
  Deterministic JSON, no timestamps.
* ``base.zip``: each file as last generated, the base of three-way merges.
  One archive rather than a second tree of ``.py`` files, so that linters,
  type checkers, test runners and editors do not read everything twice.
  Format 1 (authgen 0.1.0) kept that tree under ``base/``; it is read once
  and replaced by the archive on the next apply.

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
* Conflicts are remembered until resolved: every run lists the files that
  still hold the markers it writes (or a ``<path>.generated`` beside them),
  whether this run or an earlier one left them.
* A manifest written by a newer authgen is refused: its files would be
  merged back to an older blueprint.
* ``exclude`` patterns opt paths out: never written, merged or removed, and
  forgotten by the manifest, so an excluded file the user deleted stays
  deleted and one they keep is theirs.
* Each file goes to a temp file in its folder and is then ``os.replace``-d in.
  The base archive comes next and the manifest last, so running again after
  an interruption repairs the folder.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import merge3

from authgen import __version__
from authgen.errors import AuthgenError

STATE_DIR = ".authgen"
MANIFEST = f"{STATE_DIR}/manifest.json"
BASE = f"{STATE_DIR}/base.zip"
OLD_BASE_DIR = f"{STATE_DIR}/base"  # format 1
MANIFEST_FORMAT = 2
#: Format 1 manifests had no version field; only authgen 0.1.0 wrote them.
FORMAT_1_VERSION = "0.1.0"
PENDING = ("created", "updated", "merged", "conflict", "removed")
#: A conflict as `_merge` writes it: its first and last markers at line starts.
_MARKERS = re.compile(
    rb"^<<<<<<< yours\r?$.*^>>>>>>> generated\r?$", re.MULTILINE | re.DOTALL
)


class ManifestError(AuthgenError):
    """A state file under .authgen/ that cannot be read or trusted."""


@dataclass(frozen=True)
class Change:
    """One path's outcome. Plans are made of these so every mode agrees."""

    path: str
    action: str  # "created" | "updated" | "merged" | "conflict" | "removed" | "kept" | "unchanged"
    # What will be written (None for removed/kept/unchanged).
    content: bytes | None = None
    write_to: str | None = None  # set when content goes beside `path` (binary conflict)

    @property
    def target(self) -> str:
        return self.write_to or self.path


@dataclass
class Plan:
    """Everything a run would do, computed without writing, so check and diff
    can report exactly what apply would do."""

    changes: list[Change]
    #: Files that hold conflicts once the plan is applied: made by this run or
    #: left unresolved by an earlier one.
    conflicts: list[str] = field(default_factory=list)
    #: What the manifest and the base record after apply.
    generated: dict[str, bytes] = field(default_factory=dict)
    user_owned: list[str] = field(default_factory=list)
    version: str = __version__
    #: The authgen version that generated the folder (None: first generation).
    previous_version: str | None = None
    base: dict[str, bytes] = field(default_factory=dict)
    base_format: int = MANIFEST_FORMAT

    @property
    def pending(self) -> list[Change]:
        """Changes that write or remove something: what check mode reports."""
        return [c for c in self.changes if c.action in PENDING]

    @property
    def upgraded_from(self) -> str | None:
        """The version of the older authgen that generated the folder, if one did."""
        if self.previous_version and _version_key(self.previous_version) < _version_key(
            self.version
        ):
            return self.previous_version
        return None

    def diff(self, out: Path) -> str:
        """Unified diff from disk to what apply would write, sorted by path."""
        return "".join(_diff_one(Path(out), c) for c in self.pending)


@dataclass(frozen=True)
class Manifest:
    generated: dict[str, str]  # path -> sha256 as last generated
    user_owned: set[str]
    version: str
    format: int


def plan(
    rendered: Mapping[str, bytes],
    out: Path,
    *,
    user_owned: Collection[str] = (),
    exclude: Collection[str] = (),
    version: str = __version__,
) -> Plan:
    """Decide what to do with each path. Reads only, so it is safe for check and diff."""
    out = Path(out)
    for path in rendered:
        _check_path(path)
    manifest = read_manifest(out, version)
    recorded = manifest.generated if manifest else {}
    owned = set(user_owned) | (manifest.user_owned if manifest else set())
    base = _read_base(out, manifest)
    rendered = {
        path: content
        for path, content in rendered.items()
        if not excluded(path, exclude)
    }
    changes: list[Change] = []
    conflicts: list[str] = []

    for path in sorted(rendered):
        new = rendered[path]
        current = _read(out / path)
        if path in owned:
            changes.append(
                Change(path, "created", new)
                if current is None
                else Change(path, "unchanged")
            )
            continue
        change = _plan_file(path, current, new, recorded.get(path), base.get(path, b""))
        changes.append(change)
        after = (
            change.content
            if change.content is not None and change.write_to is None
            else current
        )
        if (
            change.write_to
            or _has_markers(after)
            or (out / f"{path}.generated").exists()
        ):
            conflicts.append(path)

    for path in sorted(set(recorded) - set(rendered) - owned):
        current = _read(out / path)
        if current is None or excluded(path, exclude):
            continue  # gone, or no longer ours: just forget it
        changes.append(
            Change(path, "removed" if _sha(current) == recorded[path] else "kept")
        )

    changes.sort(key=lambda c: c.path)
    return Plan(
        changes,
        conflicts,
        generated={
            path: content for path, content in rendered.items() if path not in owned
        },
        user_owned=sorted(owned),
        version=version,
        previous_version=manifest.version if manifest else None,
        base=base,
        base_format=manifest.format if manifest else MANIFEST_FORMAT,
    )


def apply(plan: Plan, out: Path, *, executable: Collection[str] = ()) -> None:
    """Carry out a plan made for `out`.

    The manifest is written last so that a rerun repairs an interrupted run.
    """
    out = Path(out)
    for change in plan.pending:
        target = out / change.target
        if change.action == "removed":
            target.unlink()
            _prune_empty_parents(target.parent, stop=out)
        else:
            assert change.content is not None
            _write(target, change.content, executable=change.path in executable)

    if plan.base != plan.generated or plan.base_format != MANIFEST_FORMAT:
        _write(out / BASE, _archive(plan.generated))
    manifest = _manifest_bytes(plan.generated, plan.user_owned, plan.version)
    if _read(out / MANIFEST) != manifest:
        _write(out / MANIFEST, manifest)
    # The format 1 base, once the archive and the manifest that points at it are in place.
    shutil.rmtree(out / OLD_BASE_DIR, ignore_errors=True)


def excluded(path: str, patterns: Collection[str]) -> bool:
    """Whether an `exclude` pattern names `path`: the path itself, a folder
    above it, or a glob (`*` also matches `/`)."""
    return any(
        path == pattern
        or path.startswith(pattern.rstrip("/") + "/")
        or fnmatch.fnmatchcase(path, pattern)
        for pattern in patterns
    )


def _plan_file(
    path: str, current: bytes | None, new: bytes, recorded_sha: str | None, base: bytes
) -> Change:
    if current is None:
        return Change(path, "created", new)
    if current == new:
        return Change(path, "unchanged")
    if recorded_sha is not None:
        if _sha(current) == recorded_sha:
            return Change(path, "updated", new)  # the user did not touch it
        if _sha(new) == recorded_sha:
            # The generator did not change it: the user's edit stands.
            return Change(path, "unchanged")
    else:
        base = b""  # not ours until now: merged against nothing
    if not _is_text(base, current, new):
        return Change(path, "conflict", new, write_to=path + ".generated")
    merged, conflict = _merge(base, current, new)
    if merged == current:
        return Change(path, "unchanged")
    return Change(path, "conflict" if conflict else "merged", merged)


def _has_markers(content: bytes | None) -> bool:
    return content is not None and _MARKERS.search(content) is not None


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


def read_manifest(out: Path, version: str = __version__) -> Manifest | None:
    """The manifest of `out`, or None before its first generation.

    It decides what is removed, so anything unexpected in it stops the run,
    and so does a manifest of a newer authgen than `version`: its files would
    be merged back to an older blueprint.
    """
    path = out / MANIFEST
    raw = _read(path)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        fmt = data["format"]
        recorded_version = (
            data.get("authgen", FORMAT_1_VERSION) if fmt == 1 else data["authgen"]
        )
        if _version_key(recorded_version) > _version_key(version):
            raise AuthgenError(
                f"{out} was generated by authgen {recorded_version}, newer than this authgen {version};"
                " upgrade authgen (pip install --upgrade authgen), then generate again"
            )
        if fmt not in (1, MANIFEST_FORMAT):
            raise ValueError(f"unknown format {fmt!r}")
        generated, owned = dict(data["generated"]), set(data["user_owned"])
        for name in [*generated, *owned]:
            _check_path(name)
        if not all(isinstance(sha, str) for sha in generated.values()):
            raise ValueError("a hash is not a string")
    except KeyError as error:
        raise ManifestError(_corrupt(out, path, f"no {error} entry")) from None
    except (TypeError, AttributeError):
        raise ManifestError(
            _corrupt(out, path, "not the JSON object authgen writes")
        ) from None
    except ValueError as error:
        raise ManifestError(_corrupt(out, path, error)) from None
    return Manifest(generated, owned, recorded_version, fmt)


def _read_base(out: Path, manifest: Manifest | None) -> dict[str, bytes]:
    """Each file as last generated, from the archive (or the format 1 tree)."""
    if manifest is None:
        return {}
    if manifest.format == 1:
        old = out / OLD_BASE_DIR
        return {
            path: content
            for path in manifest.generated
            if (content := _read(old / path)) is not None
        }
    raw = _read(out / BASE)
    if raw is None:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as error:
        raise ManifestError(_corrupt(out, out / BASE, error)) from None


def _corrupt(out: Path, path: Path, reason: object) -> str:
    return (
        f"{path} is corrupt ({reason}); restore it from version control, or delete"
        f" {out / STATE_DIR} to start afresh (every file that differs from the new"
        " generation then comes back as a conflict to resolve)"
    )


def _archive(files: Mapping[str, bytes]) -> bytes:
    """A zip of `files`, the same bytes for the same files (fixed order and times).

    The fastest deflate level: half the time of the default on every
    generation, for an archive about 10 % larger.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            archive.writestr(
                zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)),
                files[path],
                zipfile.ZIP_DEFLATED,
                compresslevel=1,
            )
    return buffer.getvalue()


def _manifest_bytes(
    generated: Mapping[str, bytes], user_owned: list[str], version: str
) -> bytes:
    data = {
        "format": MANIFEST_FORMAT,
        "authgen": version,
        "generated": {path: _sha(content) for path, content in generated.items()},
        "user_owned": user_owned,
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _version_key(version: str) -> tuple[int, ...]:
    """authgen's versions are numbers joined by dots (0.2.0)."""
    if not isinstance(version, str) or not re.fullmatch(r"\d+(\.\d+)*", version):
        raise ValueError(f"not an authgen version: {version!r}")
    return tuple(int(part) for part in version.split("."))


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
