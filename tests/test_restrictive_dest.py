"""Restoring onto file systems that fold case and refuse names (issue 19):
real exFAT and FAT volumes made and mounted by the test through FUSE
(tests/services/fatfs.py). No file is lost or silently overwritten: every
entry is restored under its own name or a listed, deterministic escaped
one (exit 3), and later restores into the same folder find the same files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import fatfs

from conftest import Cli

#: name in the snapshot -> content; every kind of name these volumes refuse
#: or fold together, nested too
TREE = {
    "Report.txt": "upper",
    "report.txt": "lower",
    "REPORT.TXT": "shout",
    "a?b": "question",
    "x:y<z>": "colon and angles",
    "CON": "device",
    "aux.txt": "device with extension",
    "LPT1": "printer",
    "trailing.": "dot",
    "space ": "space",
    "a%3Fb": "looks escaped already",
    "Dir/inner.txt": "in Dir",
    "dir/inner.txt": "in dir",
    "dir/Inner.TXT": "in dir, other case",
    "deep/sub?/leaf|.txt": "nested",
}


def _build(src: Path) -> None:
    for name, text in TREE.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture(params=fatfs.KINDS)
def volume(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    work = tmp_path_factory.mktemp(f"vol-{request.param}")
    point = fatfs.mount(request.param, work)
    try:
        yield point
    finally:
        fatfs.umount(work)


def _restore(repo: Cli, src: Path, dest: Path, *extra: str) -> tuple[int, dict]:
    result = repo("restore", f"latest:{src}", "--to", dest, "--json", *extra)
    return result.code, result.json() if result.out else {}


def _contents(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            out[str(path.relative_to(root))] = path.read_text()
    return out


def _where(report: dict, src: Path, dest: Path) -> dict[str, str]:
    """Snapshot name -> where the restore says it wrote it (relative)."""
    moved = {r["path"]: r["restored_as"] for r in report["renamed"]}
    out = {}
    for name in TREE:
        parts, path, written = name.split("/"), str(src), str(dest)
        for part in parts:
            path += "/" + part
            written = moved.get(path, written + "/" + part)
        out[name] = str(Path(written).relative_to(dest))
    return out


def test_every_file_arrives_under_a_listed_name(repo: Cli, tmp_path: Path, volume: Path) -> None:
    src = tmp_path / "src"
    _build(src)
    repo.ok("snapshot", src)
    dest = volume / "restored"
    code, report = _restore(repo, src, dest)
    assert code == 3, report
    where = _where(report, src, dest)
    # nothing lost, nothing overwritten: each file's content at its place
    assert _contents(dest) == {where[name]: text for name, text in TREE.items()}
    renamed = {Path(r["path"]).relative_to(src).as_posix() for r in report["renamed"]}
    assert renamed == {
        "Report.txt", "report.txt", "a?b", "x:y<z>", "CON", "aux.txt", "LPT1",
        "trailing.", "space ", "dir", "dir/inner.txt", "deep/sub?", "deep/sub?/leaf|.txt",
    }  # fmt: skip
    # the first of a case family in the snapshot's (byte) order keeps its name
    assert where["REPORT.TXT"] == "REPORT.TXT"
    assert where["Report.txt"] == "Report~2.txt" and where["report.txt"] == "report~3.txt"
    assert where["a?b"] == "a%3Fb~2"  # the literal "a%3Fb" came first
    assert where["CON"] == "CO%4E" and where["trailing."] == "trailing%2E"
    assert all(r["reason"] for r in report["renamed"])


def test_restoring_again_finds_the_same_files(repo: Cli, tmp_path: Path, volume: Path) -> None:
    """Delta restore, --overwrite if-changed and --delete into the folder a
    restore made: the escaped names are the same files (never duplicated,
    never deleted)."""
    src = tmp_path / "src"
    _build(src)
    repo.ok("snapshot", src)
    dest = volume / "restored"
    _, first = _restore(repo, src, dest)
    before = _contents(dest)
    for extra in ([], ["--overwrite", "if-changed", "--delete"], ["--delete"]):
        code, report = _restore(repo, src, dest, *extra)
        assert code == 3, (extra, report)
        assert report["removed"] == 0, extra
        assert report["renamed"] == first["renamed"], extra
        assert _contents(dest) == before, extra


def test_an_entry_differing_only_in_case_is_the_same_entry(
    repo: Cli, tmp_path: Path, volume: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Notes.txt").write_text("from the snapshot")
    repo.ok("snapshot", src)
    dest = volume / "restored"
    dest.mkdir()
    (dest / "NOTES.TXT").write_text("old copy")
    code, report = _restore(repo, src, dest, "--delete")
    assert code == 0, report
    assert report["renamed"] == [] and report["removed"] == 0
    assert [p.read_text() for p in dest.iterdir()] == ["from the snapshot"]


def test_skip_and_fail(repo: Cli, tmp_path: Path, volume: Path) -> None:
    src = tmp_path / "src"
    _build(src)
    repo.ok("snapshot", src)
    refused = repo("restore", f"latest:{src}", "--to", volume / "failed", "--on-conflict", "fail")
    assert refused.code == 1
    assert "cannot hold 13 name(s), nothing was restored" in refused.err
    assert "/CON (a Windows device name)" in refused.err and "and 8 more" in refused.err
    assert not (volume / "failed").exists()  # nothing written, not even the folder

    dest = volume / "skipped"
    code, report = _restore(repo, src, dest, "--on-conflict", "skip")
    assert code == 3
    skipped = {Path(r["path"]).relative_to(src).as_posix() for r in report["names_skipped"]}
    assert "report.txt" in skipped and "a?b" in skipped and "deep/sub?" in skipped
    assert report["renamed"] == []
    kept = {n: t for n, t in TREE.items() if not any(n.startswith(s) for s in skipped)}
    assert _contents(dest) == kept


def test_metadata_the_volume_drops_is_counted_not_fatal(
    repo: Cli, tmp_path: Path, volume: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_text(str(i))
        os.chmod(src / f"f{i}", 0o640)
        os.setxattr(src / f"f{i}", b"user.note", b"kept elsewhere")
        os.chown(src / f"f{i}", 1234, 1234)  # as root: exFAT refuses other owners
    repo.ok("snapshot", src)
    result = repo("restore", f"latest:{src}", "--to", volume / "r")
    assert result.code == 0, result.err
    assert "did not keep some metadata" in result.err
    _, report = _restore(repo, src, volume / "r")
    lost = report["metadata_not_applied"]
    assert lost["xattrs"] == 3 and (lost["mode"] >= 3 or lost["owner"] >= 3), lost
    assert _contents(volume / "r") == {f"f{i}": str(i) for i in range(3)}
