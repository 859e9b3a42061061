"""Worker processes under every start method (issue 19): ``fork`` (Linux's
default), ``spawn`` (Windows; macOS's default) and ``forkserver``. A
spawned worker inherits nothing: the repository, its keys and index, the
backend and the restore root cross by pickle (neostore/core/workerstart.py)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from neostore.backend import LocalBackend, MemoryBackend
from neostore.core import objects, workerstart
from neostore.core.repository import Repository
from neostore.errors import NeostoreError
from neostore.progress import Reporter
from neostore.restorer.files import FileRestorer
from neostore.restorer.options import Overwrite, Tally

from conftest import PASSWORD, Cli
from treeutil import build_fidelity_tree, describe

METHODS = ["fork", "spawn", "forkserver"]


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_under_each_start_method(
    repo: Cli, tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    choose = workerstart.context

    def spy() -> object:
        ctx = choose()
        used.append(ctx.get_start_method())
        return ctx

    monkeypatch.setattr(workerstart, "context", spy)
    src = tmp_path / "src"
    build_fidelity_tree(src)
    for i in range(40):  # enough files that every worker gets some
        (src / f"many-{i}.txt").write_bytes(os.urandom(3000 + i))
    env = {"NEOSTORE_START_METHOD": method}
    shm_before = set(os.listdir("/dev/shm"))
    made = repo.ok("snapshot", src, "--json", extra_env=env).json()
    assert made["errors"] == []
    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out, extra_env=env)
    assert used == [method, method]  # the snapshot's pool, the restore's
    # the index shared with spawned workers is freed when they are done
    assert set(os.listdir("/dev/shm")) == shm_before
    assert describe(out / str(src).lstrip("/")) == describe(src)
    checked = repo.ok("check", "--read-data", extra_env=env)
    assert "no errors" in checked.out


def test_an_unknown_start_method_is_refused(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    result = repo("snapshot", src, extra_env={"NEOSTORE_START_METHOD": "thread"})
    assert result.code == 1
    assert "NEOSTORE_START_METHOD=thread" in result.err
    assert "spawn" in result.err
    assert repo.ok("snapshots", "--json").json() == []


def _open(repo: Cli) -> Repository:
    return Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())


def test_a_shared_index_crosses_by_name(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(600):  # an index of ~60 bytes a blob: over 16 KiB
        (src / f"f{i}").write_bytes(os.urandom(200))
    repo.ok("snapshot", src)
    parent = _open(repo)
    parent.load_index()
    whole = pickle.dumps(parent)
    parent.index.share()
    try:
        small = pickle.dumps(parent)
        child = pickle.loads(small)
    finally:
        parent.index.unshare()
    assert len(small) < 16 * 1024 < len(whole)
    assert sorted(child.index.blob_ids()) == sorted(parent.index.blob_ids())
    assert len(pickle.dumps(parent)) == len(whole)  # whole again once unshared


def test_the_repository_crosses_by_pickle(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(200_000))
    repo.ok("snapshot", src)
    parent = _open(repo)
    parent.load_index()
    record = parent.target(parent.default_target)
    domain = parent.domain(record)

    child = pickle.loads(pickle.dumps(parent))

    assert len(child.index) == len(parent.index) > 0
    assert child.material == parent.material
    assert child.domain(child.target(record.name)).chunker_seed == domain.chunker_seed
    assert child.writer.verify_key == parent.writer.verify_key
    blob_id = next(parent.index.blob_ids())
    location = child.index.lookup(blob_id)
    assert location is not None and location == parent.index.lookup(blob_id)
    # the child reads through its own backend, opened again from the path
    assert child.objects.location == parent.objects.location
    assert child.blobs is not parent.blobs
    address = objects.pack(location.pack_id.hex())
    assert child.objects.load(address, location.offset, location.length) == (
        parent.objects.load(address, location.offset, location.length)
    )


def test_an_in_memory_store_is_refused_to_a_spawned_worker() -> None:
    with pytest.raises(TypeError, match="in-memory store"):
        pickle.dumps(MemoryBackend())


def _restorer(repo: Cli, dest: Path) -> FileRestorer:
    dest.mkdir()
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    return FileRestorer(_open(repo), (str(dest), fd), Overwrite.ALWAYS, Tally(Reporter()), None)


def test_a_spawned_restore_worker_reopens_the_same_root(repo: Cli, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    files = _restorer(repo, dest)
    worker = pickle.loads(pickle.dumps(files))
    assert worker.root_fd != files.root_fd
    assert os.path.samestat(os.fstat(worker.root_fd), os.stat(dest))
    oks, _, errors, _ = worker.run_batch([])
    assert (oks, errors) == ([], [])


def test_a_spawned_restore_worker_refuses_a_swapped_root(repo: Cli, tmp_path: Path) -> None:
    """The destination renamed away and another directory put at its path
    (or a symlink to one) between the restore's start and a worker's: the
    worker writes nothing there."""
    dest = tmp_path / "dest"
    files = _restorer(repo, dest)
    brief = pickle.dumps(files)
    dest.rename(tmp_path / "moved")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.symlink_to(elsewhere)
    worker = pickle.loads(brief)
    with pytest.raises(NeostoreError, match="not the directory the restore opened"):
        worker.run_batch([])
    assert list(elsewhere.iterdir()) == []
