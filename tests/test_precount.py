"""The pre-count a progress bar's total comes from: what a snapshot of the
same paths, with the same excludes, walks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import neostore

from conftest import Cli


def test_the_count_matches_what_a_snapshot_walks(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "cache").mkdir()
    (src / "a" / "one").write_bytes(b"1" * 1000)
    (src / "a" / "b" / "two").write_bytes(b"2" * 20)
    (src / "cache" / "skip").write_bytes(b"3" * 5000)
    (src / "x.tmp").write_bytes(b"4" * 7)
    os.symlink("a/one", src / "link")
    os.mkfifo(src / "fifo")
    count = neostore.count_paths([str(src), str(src / "a")], excludes=["cache", "*.tmp"])
    assert (count.files, count.dirs, count.others) == (2, 3, 2)
    assert count.bytes == 1020 and count.complete and count.unreadable == 0
    stats = repo.ok("snapshot", src, "--exclude", "cache", "--exclude", "*.tmp", "--json").json()
    assert stats["files_new"] == count.files and stats["bytes_total"] == count.bytes
    stop = threading.Event()
    stop.set()
    assert not neostore.count_paths([str(src)], stop=stop).complete
    with pytest.raises(neostore.UsageError):
        neostore.count_paths([str(tmp_path / "nothing")])


def test_an_unreadable_folder_is_counted_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "f").write_bytes(b"xy")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "f").write_bytes(b"x")
    real = os.scandir

    def scandir(path: bytes) -> object:  # root reads every folder: refuse one here
        if path.endswith(b"/locked"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    count = neostore.count_paths([str(tmp_path)])
    assert (count.files, count.dirs, count.unreadable, count.bytes) == (1, 3, 1, 2)
