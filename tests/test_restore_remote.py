"""Restore from a store where a request is expensive: few range reads for
many small directories, and directory metadata applied after the files
(which the walk no longer waits for)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from serverutil import ServerProcess

from neostore.restorer import pending

from conftest import Cli
from treeutil import assert_same_tree

DIRS, SUBDIRS, FILES = 8, 6, 3


def _many_small_directories(root: Path) -> None:
    """DIRS × SUBDIRS directories of FILES small files, with old mtimes
    and some read-only directories (their metadata must come last)."""
    for i in range(DIRS):
        for j in range(SUBDIRS):
            leaf = root / f"d{i}" / f"s{j}"
            leaf.mkdir(parents=True)
            for k in range(FILES):
                (leaf / f"f{k}").write_bytes(os.urandom(1500 + 100 * k))
            os.utime(leaf, ns=(10**18, 10**18 + i * 1000 + j))
            if j == 0:
                os.chmod(leaf, 0o555)
        os.utime(root / f"d{i}", ns=(10**18, 10**18 - i))


def _data_reads(log: Path, start: int, repo: str) -> int:
    reads = 0
    for line in log.read_bytes()[start:].splitlines():
        if not line.startswith(b"{"):
            continue
        record = json.loads(line)
        if record["method"] == "GET" and record["path"].startswith(f"/{repo}/data/"):
            reads += 1
    return reads


def test_restore_from_a_server_reads_packs_not_each_directory(
    neoserver: ServerProcess, cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _many_small_directories(src)
    env = dict(cli.env, **neoserver.client_env(), NEOSTORE_REPO=neoserver.url("fewreads"))
    neo = Cli(env, cli.repo)
    neo.ok("init")
    neo.ok("snapshot", src)
    before = neoserver.log.stat().st_size
    neo.ok("restore", "latest", "--to", tmp_path / "out")
    assert_same_tree(src, tmp_path / "out" / src.relative_to("/"))
    # 48 directories of 3 files: a request per listing and per directory
    # was ~100; listings come by pack segment, small files by batch
    reads = _data_reads(neoserver.log, before, "fewreads")
    assert 0 < reads <= 8, reads


def test_directories_finished_after_their_files_when_their_fds_are_let_go(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    _many_small_directories(src)
    repo.ok("snapshot", src)
    monkeypatch.setattr(pending, "MAX_OPEN", 1)  # directories waiting for workers are closed
    repo.ok("restore", "latest", "--to", tmp_path / "out")
    assert_same_tree(src, tmp_path / "out" / src.relative_to("/"))
