"""What differs between platforms' file systems (issue 19, item 3): the
paths a snapshot records (Windows paths as ``/C/Users/…``), extended
attributes through the ``xattr`` package (macOS's route, run here on
Linux), and the setters of file flags, Windows attributes and creation
times (checked through their plumbing: no macOS or Windows machine runs
them here)."""

from __future__ import annotations

import errno
import ntpath
import os
import posixpath
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from neostore.hostfs import fileattrs, xattrs
from neostore.hostfs import paths as hostpaths

from conftest import Cli


@pytest.mark.parametrize(
    ("given", "recorded", "native"),
    [
        ("C:/Users/me/Documents", b"/C/Users/me/Documents", "C:\\Users\\me\\Documents"),
        ("d:\\", b"/D", "D:\\"),
        (
            "\\\\server\\share\\dir\\f.txt",
            b"/UNC/server/share/dir/f.txt",
            "\\\\server\\share\\dir\\f.txt",
        ),
        ("\\\\?\\C:\\very\\long", b"/C/very/long", "C:\\very\\long"),
        ("\\\\?\\UNC\\server\\share\\x", b"/UNC/server/share/x", "\\\\server\\share\\x"),
        ("C:/Users/Zoë/naïve", "/C/Users/Zoë/naïve".encode(), "C:\\Users\\Zoë\\naïve"),
    ],
)
def test_windows_paths_are_recorded_as_restic_records_them(
    given: str, recorded: bytes, native: str
) -> None:
    raw = os.fsencode(str(PureWindowsPath(given)))
    assert hostpaths.recorded(raw, ntpath) == recorded
    back = hostpaths.native(hostpaths.components(raw, ntpath), ntpath)
    assert back is not None and PureWindowsPath(os.fsdecode(back)) == PureWindowsPath(native)


def test_windows_levels_above_a_share_have_no_native_path() -> None:
    parts = hostpaths.components(b"\\\\server\\share\\dir", ntpath)
    assert [hostpaths.native(parts[:n], ntpath) for n in range(4)] == [
        None,
        None,
        None,
        b"\\\\server\\share\\",
    ]
    with pytest.raises(ValueError, match="not an absolute Windows path"):
        hostpaths.components(b"Users\\me", ntpath)


def test_posix_paths_are_recorded_as_they_are() -> None:
    for path in (PurePosixPath("/"), PurePosixPath("/home/me/a b"), PurePosixPath("/x/\udcff")):
        raw = os.fsencode(str(path))
        assert hostpaths.recorded(raw, posixpath) == raw
        assert hostpaths.native(hostpaths.components(raw, posixpath), posixpath) == raw


def test_snapshot_paths_and_trees_use_the_recorded_form(repo: Cli, tmp_path: Path) -> None:
    """The snapshot's path list and the tree it browses agree, whatever
    the order the user gave (a path inside another is dropped)."""
    (tmp_path / "a-b").mkdir()
    (tmp_path / "a" / "c").mkdir(parents=True)
    (tmp_path / "a" / "c" / "f").write_text("f")
    (tmp_path / "a-b" / "g").write_text("g")
    repo.ok("snapshot", tmp_path / "a" / "c", tmp_path / "a-b", tmp_path / "a")
    listed = repo("snapshots", "--json").json()[-1]["paths"]
    assert listed == sorted([str(tmp_path / "a"), str(tmp_path / "a-b")])
    found = repo("ls", "latest", tmp_path / "a" / "c").out
    assert str(tmp_path / "a" / "c" / "f") in found


def _with_xattrs(root: Path) -> list[Path]:
    files = [root / "plain.txt", root / "docs" / "note.txt"]
    files[1].parent.mkdir(parents=True)
    for f in files:
        f.write_text(f.name)
    os.setxattr(files[0], "user.colour", b"\x00red\xff")
    os.setxattr(files[1], "user.tag", b"work")
    os.setxattr(files[1].parent, "user.dir", b"yes")
    return files


def test_xattrs_through_the_package_macos_uses(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code path macOS takes (no os.listxattr there), run on Linux:
    extended attributes are read and restored through the ``xattr``
    package alone."""
    access = xattrs.package_access()
    assert access is not None and access.name == "xattr"
    monkeypatch.setenv("NEOSTORE_START_METHOD", "fork")  # the workers see the patch
    monkeypatch.setattr(xattrs, "ACCESS", access)
    src = tmp_path / "src"
    _with_xattrs(src)
    for call in ("listxattr", "getxattr", "setxattr"):
        monkeypatch.delattr(os, call)  # as on macOS
    repo.ok("snapshot", src)
    out = tmp_path / "out"
    result = repo("restore", f"latest:{src}", "--to", out, "--json")
    assert result.code == 0, result.err
    got = {
        f: access.get(os.fsencode(out / f), name)
        for f, name in (
            ("plain.txt", b"user.colour"),
            ("docs/note.txt", b"user.tag"),
            ("docs", b"user.dir"),
        )
    }
    assert got == {"plain.txt": b"\x00red\xff", "docs/note.txt": b"work", "docs": b"yes"}
    assert result.json()["metadata_not_applied"]["xattrs"] == 0


def test_the_package_refuses_a_name_macos_could_not_hold(tmp_path: Path) -> None:
    access = xattrs.package_access()
    assert access is not None
    f = tmp_path / "f"
    f.write_text("x")
    os.setxattr(f, b"user.\xff", b"v")
    with pytest.raises(OSError, match="not UTF-8") as caught:
        access.names(os.fsencode(f))
    assert caught.value.errno == errno.EILSEQ


def test_without_xattr_support_nothing_is_read_and_a_restore_counts_them(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows: no extended attributes to read, and those a snapshot from
    elsewhere holds are counted as not applied (the files are restored)."""
    monkeypatch.setenv("NEOSTORE_START_METHOD", "fork")
    src = tmp_path / "src"
    files = _with_xattrs(src)
    repo.ok("snapshot", src)
    monkeypatch.setattr(xattrs, "ACCESS", None)
    assert xattrs.read(os.fsencode(files[0])) == {}
    out = tmp_path / "out"
    result = repo("restore", f"latest:{src}", "--to", out, "--json")
    assert result.code == 0, result.err
    assert result.json()["metadata_not_applied"]["xattrs"] == 3
    assert (out / "docs" / "note.txt").read_text() == "note.txt"
    assert os.listxattr(out / "plain.txt") == []


def test_windows_times_and_attributes_as_the_api_takes_them() -> None:
    assert fileattrs.filetime(0) == 116_444_736_000_000_000
    # 2000-01-01T00:00:00Z, as Windows documents it
    assert fileattrs.filetime(946_684_800 * 10**9) == 125_911_584_000_000_000
    hidden_dir_archive = 0x2 | 0x10 | 0x20
    assert fileattrs.windows_attributes(hidden_dir_archive) == 0x22  # not "directory"
    assert fileattrs.windows_attributes(0x10) == fileattrs.NORMAL  # 0 would mean "unchanged"
    info = fileattrs.basic_info(None, 0)
    assert (info.creation, info.attributes, info.last_write) == (116_444_736_000_000_000, 0, 0)


def test_this_platform_sets_none_of_them() -> None:
    """On Linux there is no setter, and apply says so for each kind given."""
    assert fileattrs.SET_FLAGS is None and fileattrs.SET_BASIC_INFO is None
    assert fileattrs.apply(0, 0x8000, None, None) == ["flags"]
    assert fileattrs.apply(0, None, 0x2, 5) == ["attributes", "created"]
    assert fileattrs.apply(0, None, None, None) == []


def test_a_restore_sets_flags_and_attributes_where_a_setter_exists(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore hands each file's recorded flags to the platform's
    setter, on the restored file; a setter that
    refuses is counted, not an error. (Stand-in setters: the real ones
    call fchflags on macOS and SetFileInformationByHandle on Windows.)"""
    from neostore.backup import fsmeta

    def as_if_from_macos(node: object, st: os.stat_result) -> None:
        node.flags = 0x8000  # type: ignore[attr-defined]
        node.attributes = 0x2  # type: ignore[attr-defined]

    def set_flags(fd: int, flags: int) -> None:
        os.setxattr(fd, "user.test-flags", str(flags).encode())

    def refuse(fd: int, attributes: int | None, birth_ns: int | None) -> None:
        raise OSError(errno.EPERM, "refused")

    monkeypatch.setenv("NEOSTORE_START_METHOD", "fork")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("content")
    monkeypatch.setattr(fsmeta, "_platform_fields", as_if_from_macos)
    repo.ok("snapshot", src)
    monkeypatch.undo()
    monkeypatch.setenv("NEOSTORE_START_METHOD", "fork")
    monkeypatch.setattr(fileattrs, "SET_FLAGS", set_flags)
    monkeypatch.setattr(fileattrs, "SET_BASIC_INFO", refuse)
    out = tmp_path / "out"
    result = repo("restore", f"latest:{src}", "--to", out, "--json")
    assert result.code == 0, result.err
    lost = result.json()["metadata_not_applied"]
    assert (lost["flags"], lost["attributes"]) == (0, 2)  # d and d/f
    assert os.getxattr(out / "d" / "f", "user.test-flags") == b"32768"
    assert (out / "d" / "f").read_text() == "content"
