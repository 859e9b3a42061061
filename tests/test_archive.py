"""``dump --archive tar|zip`` (issue 16): a folder of a snapshot as an
archive, extracted by the real ``tar`` and ``unzip`` and compared with the
source."""

from __future__ import annotations

import io
import os
import random
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import PASSWORD, Cli

MTIME_NS = 1_600_000_000_123_456_789
BAD_NAME = b"caf\xe9-latin1.txt"  # not UTF-8


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    rng = random.Random(3)
    (src / "docs" / "deep").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("hello\n")
    (src / "docs" / "deep" / "big.bin").write_bytes(rng.randbytes(5_000_000))
    (src / "docs" / "empty").write_bytes(b"")
    os.link(src / "docs" / "a.txt", src / "docs" / "deep" / "hard")
    os.symlink("../a.txt", src / "docs" / "deep" / "link")
    long_dir = src / "docs" / ("d" * 120)
    long_dir.mkdir()
    (long_dir / ("f" * 200)).write_text("a long path\n")
    with open(os.path.join(os.fsencode(src / "docs"), BAD_NAME), "wb") as f:
        f.write(b"latin-1 name\n")
    (src / "docs" / "script").write_text("#!/bin/sh\n")
    os.chmod(src / "docs" / "script", 0o751)
    os.setxattr(src / "docs" / "a.txt", "user.note", b"\x00binary\xff")
    os.mkfifo(src / "docs" / "pipe")
    for root, dirs, files in os.walk(src, topdown=False):
        for name in dirs + files:
            os.utime(os.path.join(root, name), ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    return src


def _compare(src: Path, out: Path, *, tar: bool) -> None:
    """The extracted folder ``out`` holds what ``src`` holds."""
    seen = []
    for root, dirs, files in os.walk(os.fsencode(src)):
        for name in dirs + files:
            a = os.path.join(root, name)
            rel = os.path.relpath(a, os.fsencode(src))
            if not tar and (name == b"pipe" or name == BAD_NAME):
                continue  # zip holds no FIFOs; a bad name is stored replaced
            b = os.path.join(os.fsencode(out), rel)
            sa, sb = os.lstat(a), os.lstat(b)
            assert stat.S_IFMT(sa.st_mode) == stat.S_IFMT(sb.st_mode), rel
            if not stat.S_ISLNK(sa.st_mode):
                assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), rel
                assert sa.st_mtime_ns // 10**9 == sb.st_mtime_ns // 10**9, rel
            if stat.S_ISREG(sa.st_mode):
                assert Path(os.fsdecode(a)).read_bytes() == Path(os.fsdecode(b)).read_bytes()
            if stat.S_ISLNK(sa.st_mode):
                assert os.readlink(a) == os.readlink(b)
            seen.append(rel)
    assert len(seen) == (11 if tar else 9)  # every entry, minus what zip cannot hold


def test_a_folder_as_tar_extracted_by_gnu_tar(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    archive = tmp_path / "docs.tar"
    repo.ok("dump", "latest", str(src / "docs"), "--archive", "tar", "--to", archive)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "--xattrs", "-xpf", archive, "-C", out], check=True)
    assert sorted(os.listdir(out)) == ["docs"]  # named from the folder's parent
    _compare(src / "docs", out / "docs", tar=True)
    assert os.stat(out / "docs" / "a.txt").st_nlink == 2  # the hard link is one
    assert os.getxattr(out / "docs" / "a.txt", "user.note") == b"\x00binary\xff"
    assert stat.S_ISFIFO(os.lstat(out / "docs" / "pipe").st_mode)
    with tarfile.open(archive) as t:  # sub-second mtimes are kept (pax)
        assert t.getmember("docs/a.txt").mtime == pytest.approx(MTIME_NS / 1e9, abs=1e-6)
    # to stdout, SNAPSHOT:PATH, the whole snapshot from /
    whole = repo.ok("dump", "latest:/", "--archive", "tar").stdout_bytes
    with tarfile.open(fileobj=io.BytesIO(whole)) as t:
        names = t.getnames()
    assert str(src / "docs" / "deep" / "big.bin").lstrip("/") in names


def test_a_folder_as_zip_extracted_by_unzip(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    dumped = repo.ok("dump", f"latest:{src / 'docs'}", "--archive", "zip")
    assert "pipe: left out: this archive format cannot hold a FIFO" in dumped.err
    assert "name is not UTF-8" in dumped.err
    archive = tmp_path / "docs.zip"
    archive.write_bytes(dumped.stdout_bytes)  # written to a pipe: data descriptors
    out = tmp_path / "out"
    subprocess.run(["unzip", "-q", archive, "-d", out], check=True)
    _compare(src / "docs", out / "docs", tar=False)
    assert (out / "docs" / "deep" / "hard").read_text() == "hello\n"  # a copy in a zip
    assert os.path.exists(out / "docs" / BAD_NAME.decode("utf-8", "replace"))


def test_zip64_for_a_file_over_4_gib(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    size = (4 << 30) + 12345
    with open(src / "huge", "wb") as f:  # sparse: all holes but a few bytes
        f.truncate(size)
        f.seek(size - 5)
        f.write(b"tail!")
    repo.ok("snapshot", src)
    archive = tmp_path / "huge.zip"
    repo.ok("dump", "latest", str(src), "--archive", "zip", "--to", archive)
    with zipfile.ZipFile(archive) as z:
        (info,) = [i for i in z.infolist() if i.filename == "src/huge"]
        assert info.file_size == size
    tested = subprocess.run(["unzip", "-tq", archive], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_bad_arguments(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    both = repo("dump", f"latest:{src}", str(src), "--archive", "tar")
    assert both.code == 2 and "give the path once" in both.err
    assert repo("dump", "latest", str(src), "--archive", "rar").code == 2
    assert repo("dump", "latest").code == 2
    # without --archive, a folder is still an error (dump of one file is unchanged)
    folder = repo("dump", "latest", str(src))
    assert folder.code == 1 and "not a regular file" in folder.err and "--archive" in folder.err
    assert repo.ok("dump", "latest", str(src / "docs" / "a.txt")).out == "hello\n"
    assert not list(tmp_path.glob("*.partial"))
    # the library refuses an unknown format too (before anything is written)
    from neostore.api import find_snapshot, open_repository
    from neostore.errors import UsageError
    from neostore.restorer.archive import write_archive

    owner = open_repository(repo.repo, PASSWORD)
    out = io.BytesIO()
    with pytest.raises(UsageError, match="'rar' is not an archive format"):
        write_archive(owner, find_snapshot(owner, "latest"), "/", "rar", out, print)
    assert out.getvalue() == b""


def test_a_damaged_chunk_is_named_and_the_archive_stays_whole(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    packs = sorted((repo.repo / "data").rglob("*"), key=lambda p: p.stat().st_size)
    biggest = packs[-1]  # holds big.bin's chunks
    data = bytearray(biggest.read_bytes())
    data[1000] ^= 0xFF
    biggest.write_bytes(bytes(data))
    archive = tmp_path / "docs.tar"
    result = repo("dump", "latest", str(src / "docs"), "--archive", "tar", "--to", archive)
    assert result.code == 1, result.err
    assert "big.bin: cannot be read" in result.err and "1 file(s) could not be read" in result.err
    with tarfile.open(archive) as t:  # well-formed, every entry present
        assert t.getmember("docs/deep/big.bin").size == 5_000_000
        assert t.extractfile("docs/a.txt").read() == b"hello\n"  # type: ignore[union-attr]
