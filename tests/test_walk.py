"""Walk behaviour: --one-file-system, files that change while read."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Cli


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A directory with a different file system mounted inside it."""
    src = tmp_path / "src"
    mnt = src / "mnt"
    mnt.mkdir(parents=True)
    (src / "local.txt").write_text("on the root file system")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "neostore-test", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the test (needs root): {done.stderr!r}")
    try:
        (mnt / "other-fs.txt").write_text("on a tmpfs")
        yield src
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_one_file_system(repo: Cli, mounted: Path) -> None:
    repo.ok("snapshot", mounted)
    everything = repo.ok("ls", "latest", str(mounted), "-R").out.splitlines()
    assert f"{mounted}/mnt/other-fs.txt" in everything
    repo.ok("snapshot", mounted, "--one-file-system")
    confined = repo.ok("ls", "latest", str(mounted), "-R").out.splitlines()
    assert f"{mounted}/local.txt" in confined
    assert not any("other-fs" in line for line in confined)


def test_file_changing_while_read_is_stored_and_reported(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    growing = src / "growing.log"
    growing.write_bytes(os.urandom(32 * 1024 * 1024))
    stop = threading.Event()

    def append() -> None:
        with open(growing, "ab") as f:
            while not stop.is_set():
                f.write(b"more\n")
                f.flush()
                time.sleep(0.001)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        result = repo.ok("snapshot", src, "--json").json()
    finally:
        stop.set()
        writer.join()
    assert [w["path"] for w in result["warnings"]] == [str(growing)]
    assert "changed while it was read" in result["warnings"][0]["message"]
    # what was read is in the snapshot and restores consistently
    listed = repo.ok("ls", "latest", str(growing), "--json").json()
    assert listed[0]["size"] >= 32 * 1024 * 1024
    dumped = repo.ok("dump", "latest", str(growing)).stdout_bytes
    assert len(dumped) == listed[0]["size"]
    # the next run reads it again rather than trusting a cache entry
    again = repo.ok("snapshot", src, "--json").json()
    assert again["files_unchanged"] == 0
