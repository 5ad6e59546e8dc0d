"""Regeneration must keep the user's edits. These tests use real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from authgen import __version__
from authgen.errors import AuthgenError
from authgen.regenerate import ManifestError, Plan, apply, excluded, plan

APP_V1 = b"line 1\nline 2\nline 3\nline 4\nline 5\n"


def run(
    rendered: dict[str, bytes],
    out: Path,
    *,
    user_owned=(),
    executable=(),
    version=__version__,
) -> Plan:
    p = plan(rendered, out, user_owned=user_owned, version=version)
    apply(p, out, executable=executable)
    return p


def base_of(out: Path) -> dict[str, bytes]:
    """The merge base: each file as last generated (none without an archive)."""
    if not (out / ".authgen/base.zip").exists():
        return {}
    with zipfile.ZipFile(out / ".authgen/base.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def actions(p: Plan) -> dict[str, str]:
    return {c.path: c.action for c in p.changes}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root with its bytes, mtime and mode."""
    result: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        content = path.read_bytes() if path.is_file() else None
        result[path.relative_to(root).as_posix()] = (
            content,
            st.st_mtime_ns,
            st.st_mode,
        )
    return result


def age_tree(root: Path) -> None:
    """Move all mtimes into the past so that any rewrite shows up as a new mtime."""
    for path in root.rglob("*"):
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))


def test_first_generation_into_empty_folder(tmp_path: Path) -> None:
    rendered = {"README.md": b"# hi\n", "src/pkg/app.py": APP_V1}
    p = run(rendered, tmp_path)

    assert actions(p) == {"README.md": "created", "src/pkg/app.py": "created"}
    assert (tmp_path / "src/pkg/app.py").read_bytes() == APP_V1
    assert base_of(tmp_path)["src/pkg/app.py"] == APP_V1
    manifest = json.loads((tmp_path / ".authgen/manifest.json").read_text())
    assert manifest["format"] == 2
    assert set(manifest["generated"]) == {"README.md", "src/pkg/app.py"}
    assert manifest["user_owned"] == []
    assert not [f for f in tmp_path.rglob("*.tmp")]


def test_untouched_file_is_replaced(tmp_path: Path) -> None:
    run({"app.py": APP_V1}, tmp_path)
    v2 = APP_V1.replace(b"line 3", b"line three")
    p = run({"app.py": v2}, tmp_path)

    assert actions(p) == {"app.py": "updated"}
    assert (tmp_path / "app.py").read_bytes() == v2
    assert base_of(tmp_path)["app.py"] == v2


def test_user_edit_kept_through_clean_merge(tmp_path: Path) -> None:
    run({"app.py": APP_V1}, tmp_path)
    (tmp_path / "app.py").write_bytes(APP_V1.replace(b"line 1", b"user line 1"))
    v2 = APP_V1.replace(b"line 5", b"generated line 5")

    p = run({"app.py": v2}, tmp_path)

    assert actions(p) == {"app.py": "merged"}
    assert p.conflicts == []
    assert (
        tmp_path / "app.py"
    ).read_bytes() == b"user line 1\nline 2\nline 3\nline 4\ngenerated line 5\n"
    # The same rendering again: the merged file is the user's and stays as is.
    assert actions(run({"app.py": v2}, tmp_path)) == {"app.py": "unchanged"}


def test_conflict_writes_markers_and_resolution_survives(tmp_path: Path) -> None:
    run({"app.py": APP_V1}, tmp_path)
    (tmp_path / "app.py").write_bytes(APP_V1.replace(b"line 2", b"user line 2"))
    v2 = APP_V1.replace(b"line 2", b"generated line 2")

    p = run({"app.py": v2}, tmp_path)

    assert actions(p) == {"app.py": "conflict"}
    assert p.conflicts == ["app.py"]
    assert (tmp_path / "app.py").read_bytes() == (
        b"line 1\n"
        b"<<<<<<< yours\nuser line 2\n=======\ngenerated line 2\n>>>>>>> generated\n"
        b"line 3\nline 4\nline 5\n"
    )

    resolved = b"line 1\nresolved line 2\nline 3\nline 4\nline 5\n"
    (tmp_path / "app.py").write_bytes(resolved)
    assert actions(run({"app.py": v2}, tmp_path)) == {"app.py": "unchanged"}
    assert (tmp_path / "app.py").read_bytes() == resolved

    # A later generator change elsewhere merges cleanly into the resolution.
    v3 = v2.replace(b"line 5", b"generated line 5")
    p = run({"app.py": v3}, tmp_path)
    assert actions(p) == {"app.py": "merged"}
    assert (
        tmp_path / "app.py"
    ).read_bytes() == b"line 1\nresolved line 2\nline 3\nline 4\ngenerated line 5\n"


def test_conflict_on_last_line_without_newline_keeps_markers_on_their_own_lines(
    tmp_path: Path,
) -> None:
    run({"a.txt": b"x\ny"}, tmp_path)
    (tmp_path / "a.txt").write_bytes(b"x\nuser")
    p = run({"a.txt": b"x\ngen"}, tmp_path)

    assert p.conflicts == ["a.txt"]
    assert (
        tmp_path / "a.txt"
    ).read_bytes() == b"x\n<<<<<<< yours\nuser\n=======\ngen\n>>>>>>> generated\n"


def test_crlf_line_endings_survive_a_merge(tmp_path: Path) -> None:
    v1 = b"a\r\nb\r\nc\r\nd\r\n"
    run({"w.bat": v1}, tmp_path)
    (tmp_path / "w.bat").write_bytes(b"A\r\nb\r\nc\r\nd\r\n")
    p = run({"w.bat": b"a\r\nb\r\nc\r\nD\r\n"}, tmp_path)

    assert actions(p) == {"w.bat": "merged"}
    assert (tmp_path / "w.bat").read_bytes() == b"A\r\nb\r\nc\r\nD\r\n"


def test_no_longer_rendered_removed_when_untouched_and_empty_folders_cleaned(
    tmp_path: Path,
) -> None:
    run({"keep.py": b"k\n", "a/b/old.py": b"old\n", "a/other.py": b"o\n"}, tmp_path)

    p = run({"keep.py": b"k\n", "a/other.py": b"o\n"}, tmp_path)
    assert actions(p) == {
        "a/b/old.py": "removed",
        "a/other.py": "unchanged",
        "keep.py": "unchanged",
    }
    assert not (tmp_path / "a/b").exists()
    assert (tmp_path / "a/other.py").exists()  # a/ still holds a file

    p = run({"keep.py": b"k\n"}, tmp_path)
    assert actions(p) == {"a/other.py": "removed", "keep.py": "unchanged"}
    assert not (tmp_path / "a").exists()
    assert set(base_of(tmp_path)) == {"keep.py"}
    assert tmp_path.is_dir()
    assert set(
        json.loads((tmp_path / ".authgen/manifest.json").read_text())["generated"]
    ) == {"keep.py"}


def test_removal_never_removes_out_itself(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run({"only.py": b"x\n"}, out)
    assert actions(run({}, out)) == {"only.py": "removed"}
    assert out.is_dir()


def test_no_longer_rendered_kept_when_edited_then_forgotten(tmp_path: Path) -> None:
    run({"keep.py": b"k\n", "old.py": b"old\n"}, tmp_path)
    (tmp_path / "old.py").write_bytes(b"old, edited\n")

    p = run({"keep.py": b"k\n"}, tmp_path)
    assert actions(p) == {"keep.py": "unchanged", "old.py": "kept"}
    assert p.pending == []
    assert (tmp_path / "old.py").read_bytes() == b"old, edited\n"

    # From now on it is the user's file: not reported again.
    assert actions(run({"keep.py": b"k\n"}, tmp_path)) == {"keep.py": "unchanged"}


def test_missing_file_that_is_no_longer_rendered_is_forgotten(tmp_path: Path) -> None:
    run({"keep.py": b"k\n", "old.py": b"old\n"}, tmp_path)
    (tmp_path / "old.py").unlink()
    assert actions(run({"keep.py": b"k\n"}, tmp_path)) == {"keep.py": "unchanged"}


def test_user_owned_file_written_once_and_never_again(tmp_path: Path) -> None:
    hooks = "src/pkg/hooks.py"
    p = run({hooks: b"# hooks v1\n"}, tmp_path, user_owned={hooks})
    assert actions(p) == {hooks: "created"}

    (tmp_path / hooks).write_bytes(b"# my hooks\n")
    p = run({hooks: b"# hooks v2\n"}, tmp_path, user_owned={hooks})
    assert actions(p) == {hooks: "unchanged"}
    assert (tmp_path / hooks).read_bytes() == b"# my hooks\n"

    manifest = json.loads((tmp_path / ".authgen/manifest.json").read_text())
    assert manifest["user_owned"] == [hooks]
    assert manifest["generated"] == {}
    assert base_of(tmp_path) == {}

    # The manifest remembers it: a caller that forgets user_owned, or stops
    # rendering it, still does not touch it.
    assert actions(run({hooks: b"# hooks v3\n"}, tmp_path)) == {hooks: "unchanged"}
    assert actions(run({}, tmp_path)) == {}
    assert (tmp_path / hooks).read_bytes() == b"# my hooks\n"


def test_existing_file_without_manifest_entry(tmp_path: Path) -> None:
    (tmp_path / "same.py").write_bytes(b"same\n")
    (tmp_path / "mine.py").write_bytes(b"mine\n")

    p = run({"same.py": b"same\n", "mine.py": b"generated\n"}, tmp_path)

    assert actions(p) == {"mine.py": "conflict", "same.py": "unchanged"}
    assert (
        tmp_path / "mine.py"
    ).read_bytes() == b"<<<<<<< yours\nmine\n=======\ngenerated\n>>>>>>> generated\n"


def _mixed_tree(out: Path) -> dict[str, bytes]:
    """A tree in which the next rendering produces every kind of action. Returns that rendering."""
    run(
        {
            "conflict.py": APP_V1,
            "kept.py": b"kept\n",
            "merged.py": APP_V1,
            "removed.py": b"removed\n",
            "same.py": b"same\n",
            "updated.py": b"v1\n",
        },
        out,
    )
    (out / "conflict.py").write_bytes(APP_V1.replace(b"line 2", b"user line 2"))
    (out / "merged.py").write_bytes(APP_V1.replace(b"line 1", b"user line 1"))
    (out / "kept.py").write_bytes(b"kept, edited\n")
    return {
        "conflict.py": APP_V1.replace(b"line 2", b"generated line 2"),
        "created.py": b"new\n",
        "merged.py": APP_V1.replace(b"line 5", b"generated line 5"),
        "same.py": b"same\n",
        "updated.py": b"v2\n",
    }


def test_check_and_diff_write_nothing_and_report_the_right_paths(
    tmp_path: Path,
) -> None:
    rendered = _mixed_tree(tmp_path)
    before = snapshot(tmp_path)

    p = plan(rendered, tmp_path)
    pending = [c.path for c in p.pending]
    text = p.diff(tmp_path)

    assert snapshot(tmp_path) == before
    assert pending == [
        "conflict.py",
        "created.py",
        "merged.py",
        "removed.py",
        "updated.py",
    ]
    assert actions(p)["kept.py"] == "kept"
    assert actions(p)["same.py"] == "unchanged"
    headers = [line for line in text.splitlines() if line.startswith("+++ ")]
    assert headers == [f"+++ b/{path}" for path in pending]
    assert "--- a/updated.py\n+++ b/updated.py\n@@ -1 +1 @@\n-v1\n+v2\n" in text
    assert "+<<<<<<< yours\n" in text
    assert "-removed\n" in text

    # Applying that same plan does what check reported.
    apply(p, tmp_path)
    assert plan(rendered, tmp_path).pending == []


def test_regenerating_an_unchanged_rendering_touches_nothing(tmp_path: Path) -> None:
    rendered = _mixed_tree(tmp_path)
    run(rendered, tmp_path, executable={"created.py"})
    age_tree(tmp_path)
    before = snapshot(tmp_path)

    p = run(rendered, tmp_path, executable={"created.py"})

    assert p.pending == []
    assert p.diff(tmp_path) == ""
    assert snapshot(tmp_path) == before


def test_manifest_is_deterministic(tmp_path: Path) -> None:
    rendered = {"b.py": b"b\n", "a/x.py": b"x\n", "hooks.py": b"h\n"}
    backwards = dict(reversed(list(rendered.items())))
    run(rendered, tmp_path / "one", user_owned=["hooks.py"])
    run(backwards, tmp_path / "two", user_owned=("hooks.py",))
    first = (tmp_path / "one/.authgen/manifest.json").read_bytes()
    run(rendered, tmp_path / "one", user_owned=["hooks.py"])

    assert (tmp_path / "one/.authgen/manifest.json").read_bytes() == first
    assert (tmp_path / "two/.authgen/manifest.json").read_bytes() == first
    data = json.loads(first)
    assert first.decode() == json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_binary_files(tmp_path: Path) -> None:
    v1, v2, mine = b"\x89PNG\x00\xff1", b"\x89PNG\x00\xff2", b"\x89PNG\x00\xffmine"
    run({"logo.png": v1, "icon.png": v1}, tmp_path)

    # Untouched binary: replaced.
    (tmp_path / "logo.png").write_bytes(mine)
    p = run({"logo.png": v2, "icon.png": v2}, tmp_path)
    assert actions(p) == {"icon.png": "updated", "logo.png": "conflict"}
    assert (tmp_path / "icon.png").read_bytes() == v2

    # Edited binary: the user's file stays, the new one goes beside it.
    assert p.conflicts == ["logo.png"]
    assert (tmp_path / "logo.png").read_bytes() == mine
    assert (tmp_path / "logo.png.generated").read_bytes() == v2

    # Keeping their version is a resolution: the next run leaves it alone.
    (tmp_path / "logo.png.generated").unlink()
    assert (
        actions(run({"logo.png": v2, "icon.png": v2}, tmp_path))["logo.png"]
        == "unchanged"
    )
    assert (tmp_path / "logo.png").read_bytes() == mine


def test_binary_conflict_diff(tmp_path: Path) -> None:
    run({"logo.png": b"\xff1"}, tmp_path)
    (tmp_path / "logo.png").write_bytes(b"\xffmine")
    p = plan({"logo.png": b"\xff2"}, tmp_path)
    assert (
        p.diff(tmp_path)
        == "Binary files a/logo.png.generated and b/logo.png.generated differ\n"
    )


def test_executable_bit(tmp_path: Path) -> None:
    p = run(
        {"bin/run.sh": b"#!/bin/sh\n", "lib.sh": b"x\n"},
        tmp_path,
        executable={"bin/run.sh"},
    )
    assert actions(p) == {"bin/run.sh": "created", "lib.sh": "created"}
    assert (tmp_path / "bin/run.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "lib.sh").stat().st_mode & 0o777 == 0o644

    run(
        {"bin/run.sh": b"#!/bin/sh\necho\n", "lib.sh": b"x\n"},
        tmp_path,
        executable={"bin/run.sh"},
    )
    assert (tmp_path / "bin/run.sh").stat().st_mode & 0o777 == 0o755


def test_rerun_after_interrupted_manifest_write_repairs(tmp_path: Path) -> None:
    run({"app.py": APP_V1, "plain.py": b"v1\n"}, tmp_path)
    (tmp_path / "app.py").write_bytes(APP_V1.replace(b"line 1", b"user line 1"))
    old_manifest = (tmp_path / ".authgen/manifest.json").read_bytes()
    v2 = {"app.py": APP_V1.replace(b"line 5", b"generated line 5"), "plain.py": b"v2\n"}

    run(v2, tmp_path)
    expected = snapshot(tmp_path)
    # As if the run had stopped just before writing the manifest.
    (tmp_path / ".authgen/manifest.json").write_bytes(old_manifest)

    p = run(v2, tmp_path)

    assert p.pending == []
    after = snapshot(tmp_path)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in expected.items()}


@pytest.mark.parametrize(
    "bad",
    ["/etc/passwd", "../x", "a/../../x", "a//b", "", ".authgen/manifest.json", "a\\b"],
)
def test_unsafe_paths_are_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        plan({bad: b"x"}, tmp_path)


def test_conflicts_stay_listed_until_resolved(tmp_path: Path) -> None:
    run({"app.py": APP_V1, "logo.png": b"\xff1"}, tmp_path)
    (tmp_path / "app.py").write_bytes(APP_V1.replace(b"line 2", b"user line 2"))
    (tmp_path / "logo.png").write_bytes(b"\xffmine")
    v2 = {
        "app.py": APP_V1.replace(b"line 2", b"generated line 2"),
        "logo.png": b"\xff2",
    }
    assert run(v2, tmp_path).conflicts == ["app.py", "logo.png"]

    # The same rendering again: nothing to write, but the conflicts are still there.
    again = run(v2, tmp_path)
    assert again.pending == []
    assert again.conflicts == ["app.py", "logo.png"]

    # A later rendering that changes something else keeps the markers, and the listing.
    v3 = {**v2, "app.py": v2["app.py"].replace(b"line 5", b"generated line 5")}
    assert run(v3, tmp_path).conflicts == ["app.py", "logo.png"]

    text = (tmp_path / "app.py").read_bytes()
    (tmp_path / "app.py").write_bytes(
        text.split(b"<<<<<<< yours\n")[0]
        + b"resolved\nline 3\nline 4\ngenerated line 5\n"
    )
    assert run(v3, tmp_path).conflicts == ["logo.png"]
    (tmp_path / "logo.png.generated").unlink()
    assert run(v3, tmp_path).conflicts == []


def test_markers_in_crlf_files_are_found(tmp_path: Path) -> None:
    run({"w.bat": b"a\r\n"}, tmp_path)
    (tmp_path / "w.bat").write_bytes(
        b"a\r\n<<<<<<< yours\r\nb\r\n=======\r\nc\r\n>>>>>>> generated\r\n"
    )
    assert plan({"w.bat": b"a\r\n"}, tmp_path).conflicts == ["w.bat"]


def test_the_base_is_one_archive_beside_the_manifest(tmp_path: Path) -> None:
    run(
        {"src/pkg/app.py": APP_V1, "src/pkg/models.py": b"m\n", "README.md": b"r\n"},
        tmp_path,
    )
    assert sorted(p.name for p in (tmp_path / ".authgen").iterdir()) == [
        "base.zip",
        "manifest.json",
    ]
    assert base_of(tmp_path) == {
        "README.md": b"r\n",
        "src/pkg/app.py": APP_V1,
        "src/pkg/models.py": b"m\n",
    }
    archive = (tmp_path / ".authgen/base.zip").read_bytes()
    run(
        {"src/pkg/app.py": APP_V1, "README.md": b"r\n", "src/pkg/models.py": b"m\n"},
        tmp_path / "again",
    )
    assert (tmp_path / "again/.authgen/base.zip").read_bytes() == archive


def _old_layout(out: Path, files: dict[str, bytes]) -> None:
    """A folder as authgen 0.1.0 left it: manifest format 1 and a base/ tree."""
    for path, content in files.items():
        for root in (out, out / ".authgen/base"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
    manifest = {
        "format": 1,
        "generated": {p: hashlib.sha256(c).hexdigest() for p, c in files.items()},
        "user_owned": [],
    }
    (out / ".authgen/manifest.json").write_text(json.dumps(manifest))


def test_the_old_base_tree_is_read_then_migrated(tmp_path: Path) -> None:
    _old_layout(tmp_path, {"src/app.py": APP_V1, "plain.py": b"v1\n"})
    (tmp_path / "src/app.py").write_bytes(APP_V1.replace(b"line 1", b"user line 1"))
    v2 = {
        "src/app.py": APP_V1.replace(b"line 5", b"generated line 5"),
        "plain.py": b"v2\n",
    }

    p = run(v2, tmp_path)

    assert p.upgraded_from == "0.1.0"
    assert actions(p) == {"plain.py": "updated", "src/app.py": "merged"}
    assert (
        tmp_path / "src/app.py"
    ).read_bytes() == b"user line 1\nline 2\nline 3\nline 4\ngenerated line 5\n"
    assert not (tmp_path / ".authgen/base").exists()
    assert base_of(tmp_path) == v2
    manifest = json.loads((tmp_path / ".authgen/manifest.json").read_text())
    assert (manifest["format"], manifest["authgen"]) == (2, __version__)
    assert run(v2, tmp_path).upgraded_from is None


def test_a_newer_authgen_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    run({"app.py": APP_V1}, tmp_path, version="3.0.0")
    before = snapshot(tmp_path)
    with pytest.raises(AuthgenError) as caught:
        run({"app.py": b"older\n"}, tmp_path, version="2.10.0")
    assert str(caught.value) == (
        f"{tmp_path} was generated by authgen 3.0.0, newer than this authgen 2.10.0;"
        " upgrade authgen (pip install --upgrade authgen), then generate again"
    )
    assert snapshot(tmp_path) == before
    assert run({"app.py": APP_V1}, tmp_path, version="3.0.1").upgraded_from == "3.0.0"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"format": 2, "generated": {}, "user_owned": []}',
        b'{"format": 2, "authgen": "latest", "generated": {}, "user_owned": []}',
        b'{"format": 7, "authgen": "0.0.1", "generated": {}, "user_owned": []}',
        b'{"format": 2, "authgen": "0.1.0", "generated": {"../x": "0"}, "user_owned": []}',
    ],
)
def test_a_corrupt_manifest_names_the_file_and_the_fix(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / ".authgen").mkdir()
    (tmp_path / ".authgen/manifest.json").write_bytes(content)
    with pytest.raises(ManifestError) as caught:
        plan({"app.py": APP_V1}, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / '.authgen/manifest.json'} is corrupt (")
    assert "restore it from version control, or delete" in message
    assert "\n" not in message


def test_a_corrupt_base_archive_names_the_file(tmp_path: Path) -> None:
    run({"app.py": APP_V1}, tmp_path)
    (tmp_path / ".authgen/base.zip").write_bytes(b"not a zip")
    with pytest.raises(ManifestError, match="base.zip is corrupt"):
        plan({"app.py": b"new\n"}, tmp_path)


def test_excluded_paths_are_never_written_merged_or_removed(tmp_path: Path) -> None:
    rendered = {
        "app.py": APP_V1,
        "docs/a.md": b"a\n",
        "docs/b.md": b"b\n",
        "Makefile": b"m\n",
        "old.py": b"o\n",
    }
    run(rendered, tmp_path)
    (tmp_path / "docs/a.md").unlink()
    (tmp_path / "Makefile").write_bytes(b"my make\n")
    later = {
        "app.py": APP_V1,
        "docs/a.md": b"a2\n",
        "docs/b.md": b"b2\n",
        "Makefile": b"m2\n",
    }

    p = plan(later, tmp_path, exclude=["docs/", "Make*", "old.py"])
    apply(p, tmp_path)

    assert actions(p) == {"app.py": "unchanged"}
    assert not (tmp_path / "docs/a.md").exists()
    assert (tmp_path / "docs/b.md").read_bytes() == b"b\n"
    assert (tmp_path / "Makefile").read_bytes() == b"my make\n"
    assert (tmp_path / "old.py").read_bytes() == b"o\n"
    assert set(
        json.loads((tmp_path / ".authgen/manifest.json").read_text())["generated"]
    ) == {"app.py"}
    # Forgotten: the next runs leave them alone too.
    assert actions(run({"app.py": APP_V1}, tmp_path)) == {"app.py": "unchanged"}
    assert (tmp_path / "old.py").exists() and not (tmp_path / "docs/a.md").exists()


@pytest.mark.parametrize("path", ["docs/security.md", "src/pkg/app.py"])
def test_exclude_patterns(path: str) -> None:
    assert excluded(path, [path])
    assert excluded(path, [path.split("/")[0]])
    assert excluded(path, [path.split("/")[0] + "/"])
    assert excluded(path, ["*" + path[-3:]])
    assert not excluded(path, [path[:-1]])
    assert not excluded(path, [])
