"""Regression tests for races and hostile inputs found in review."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from neostore.backend import LocalBackend
from neostore.backup.contentworker import open_for_backup
from neostore.commandline import ExitCode
from neostore.core.repository import Repository
from neostore.format.blob import Ref

from conftest import PASSWORD, Cli


def test_backed_up_path_below_a_symlinked_directory(repo: Cli, tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "sub" / "file.txt").write_text("hello\n")
    os.symlink("real", tmp_path / "link")
    repo.ok("snapshot", tmp_path / "link" / "sub")
    assert repo.ok("dump", "latest", str(tmp_path / "link" / "sub" / "file.txt")).out == "hello\n"
    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out)
    restored = out / str(tmp_path).lstrip("/") / "link"
    assert restored.is_dir() and not restored.is_symlink()
    assert (restored / "sub" / "file.txt").read_text() == "hello\n"


def test_hard_link_into_a_subdirectory_restores(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "a").write_text("shared\n")
    os.link(src / "a", src / "b" / "c")
    repo.ok("snapshot", src)
    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out, timeout=60)
    base = out / str(src).lstrip("/")
    assert os.stat(base / "a").st_ino == os.stat(base / "b" / "c").st_ino


def test_restore_over_existing_fifo_and_hard_link(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("from the snapshot\n")
    (src / "g").write_text("also\n")
    repo.ok("snapshot", src)
    out = tmp_path / "out"
    base = out / str(src).lstrip("/")
    base.mkdir(parents=True)
    os.mkfifo(base / "f")  # would block a plain open() for writing
    outside = tmp_path / "outside.txt"
    outside.write_text("must not change\n")
    os.link(outside, base / "g")  # writing through it would escape the destination
    repo.ok("restore", "latest", "--to", out, timeout=60)
    assert (base / "f").read_text() == "from the snapshot\n"
    assert (base / "g").read_text() == "also\n"
    assert outside.read_text() == "must not change\n"


def test_file_swapped_for_fifo_does_not_hang(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    regular = src / "victim"
    regular.write_text("x")
    st = os.lstat(regular)
    regular.unlink()
    os.mkfifo(regular)
    result: list[BaseException] = []

    def read() -> None:
        try:
            open_for_backup(os.fsencode(regular), st.st_ino)
        except BaseException as e:
            result.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "opening a FIFO blocked the backup"
    assert isinstance(result[0], OSError) and "replaced" in str(result[0])


def test_concurrent_target_creation_keeps_one_record(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    results: list[str] = []
    failures: list[str] = []

    def snap() -> None:
        done = repo("snapshot", src, "--target", "fresh", process=True)
        if done.code == 0:
            results.append(done.out.strip())
        else:
            failures.append(f"exit {done.code}: {done.err}")

    threads = [threading.Thread(target=snap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    listed = {s["id"] for s in repo.ok("snapshots", "--target", "fresh", "--json").json()}
    assert listed == set(results) and len(listed) == 4
    assert repo.ok("check").code == 0  # forks of one key's chain are not tampering


def test_hidden_target_record_is_tampering(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    repo.ok("snapshot", src, "--target", "docs")
    (repo.repo / "targets" / "docs").unlink()
    result = repo("snapshot", src, "--target", "docs")
    assert result.code == ExitCode.TAMPERED and "deleted or hidden" in result.err


def test_latest_refuses_a_rolled_back_target(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("old")
    repo.ok("snapshot", src)
    (src / "f").write_text("new")
    newest = repo.ok("snapshot", src).out.strip()
    (repo.repo / "snapshots" / "default" / newest).rename(tmp_path / "hidden")
    result = repo("dump", "latest", str(src / "f"))
    assert result.code == ExitCode.TAMPERED and "rolled back or hidden" in result.err


def test_reference_longer_than_any_chunk_is_refused(repo: Cli) -> None:
    repository = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    hostile = Ref(b"\1" * 32, b"\2" * 32, b"\3" * 32, 1 << 44)
    from neostore.errors import IntegrityError

    with pytest.raises(IntegrityError, match="more than the largest chunk"):
        repository.blobs.read(0, hostile)
