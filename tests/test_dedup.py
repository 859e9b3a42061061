"""Deduplication, the files cache and incremental snapshots."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from neostore.snapshots.lookup import find_snapshot

from conftest import PASSWORD, Cli, data_blob_count

MiB = 1024 * 1024


def _stored(repo_path: Path) -> int:
    return sum(p.stat().st_size for p in (repo_path / "data").rglob("*") if p.is_file())


def test_unchanged_resnapshot_adds_no_data_and_reads_nothing(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    rng = random.Random(7)
    for i in range(40):
        (src / "a" / f"file{i}").write_bytes(rng.randbytes(rng.randint(0, 300_000)))
    first = repo.ok("snapshot", src, "--json").json()
    assert first["files_new"] == 40 and first["bytes_read"] == first["bytes_total"]
    blobs = data_blob_count(repo.repo)

    second = repo.ok("snapshot", src, "--json").json()
    assert second["files_unchanged"] == 40
    assert second["files_new"] == second["files_changed"] == 0
    assert second["bytes_read"] == 0
    assert data_blob_count(repo.repo) == blobs

    # without the cache every file is read again, and still nothing is added
    third = repo.ok("snapshot", src, "--no-cache", "--json").json()
    assert third["bytes_read"] == first["bytes_total"]
    assert data_blob_count(repo.repo) == blobs

    # a lost cache is rebuilt, not fatal
    shutil.rmtree(Path(repo.env["NEOSTORE_CACHE_DIR"]))
    fourth = repo.ok("snapshot", src, "--json").json()
    assert fourth["files_new"] == 40 and data_blob_count(repo.repo) == blobs
    fifth = repo.ok("snapshot", src, "--json").json()
    assert fifth["files_unchanged"] == 40


def test_changed_file_detected(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    target = src / "doc.txt"
    target.write_text("version one\n")
    repo.ok("snapshot", src)
    target.write_text("version two, longer\n")
    result = repo.ok("snapshot", src, "--json").json()
    assert result["files_changed"] == 1
    assert repo.ok("dump", "latest", str(target)).out == "version two, longer\n"
    # the old version is still restorable from the old snapshot
    first = repo.ok("snapshots", "--json").json()[0]["id"]
    assert repo.ok("dump", first, str(target)).out == "version one\n"


def test_one_mib_change_in_100_mib_file_adds_about_one_chunk(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    rng = random.Random(1)
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(rng.randbytes(MiB))
    repo.ok("snapshot", src)
    before = _stored(repo.repo)
    blobs_before = data_blob_count(repo.repo)
    assert before > 100 * MiB
    old = big.read_bytes()

    with open(big, "r+b") as f:
        f.seek(50 * MiB + 12345)
        f.write(rng.randbytes(MiB))
    result = repo.ok("snapshot", src, "--json").json()
    assert result["files_changed"] == 1
    # exactly the chunks of the new version that the old one lacks are stored,
    # as this repository's keyed chunker cuts them: the few around the 1 MiB
    # edit (≤ 8 MiB each), not the 100 MiB file
    growth = _stored(repo.repo) - before
    assert result["bytes_added"] == growth
    assert growth < 16 * MiB, growth
    new_chunks = data_blob_count(repo.repo) - blobs_before
    assert new_chunks == _chunks_only_in(repo.repo, big.read_bytes(), old)
    assert 1 <= new_chunks <= 6, new_chunks


def _chunks_only_in(repo_path: Path, data: bytes, other: bytes) -> int:
    """How many distinct chunks of ``data`` ``other`` does not have, cut with
    the repository's keyed chunker."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.format.chunker import Chunker
    from neostore.format.crypto import content_hash

    repository = Repository.open(LocalBackend(str(repo_path)), PASSWORD.encode())
    chunker = Chunker(
        repository.config, repository.domain(repository.target("default")).chunker_seed
    )
    known = {content_hash(c) for c in chunker.cut_buffer(other)}
    return len({content_hash(c) for c in chunker.cut_buffer(data)} - known)


def test_identical_files_stored_once(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    payload = os.urandom(5 * MiB)
    for i in range(4):
        (src / f"copy{i}").write_bytes(payload)
    result = repo.ok("snapshot", src, "--json").json()
    assert result["bytes_read"] == 20 * MiB
    assert result["bytes_added"] < 6 * MiB


def test_compressible_data_is_compressed(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "text").write_text("the same sentence again and again\n" * 300_000)
    result = repo.ok("snapshot", src, "--json").json()
    assert result["bytes_added"] < result["bytes_read"] / 20


def test_no_plaintext_names_or_content_in_repository(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src-VISIBLENAME"
    src.mkdir()
    marker = b"SECRET-CONTENT-MARKER-0123456789"
    (src / "VISIBLEFILE.txt").write_bytes(marker * 1000)
    (src / "incompressible").write_bytes(marker + os.urandom(100_000))
    repo.ok("snapshot", src, "--tag", "VISIBLETAG")
    for path in repo.repo.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in (marker, b"VISIBLENAME", b"VISIBLEFILE", b"VISIBLETAG", os.fsencode(src)):
                assert needle not in data, (path, needle)
        assert "VISIBLE" not in path.name


def test_read_ahead_walk_changes_nothing(repo: Cli, tmp_path: Path) -> None:
    """The snapshot taken from listings read ahead (while the key is derived)
    is the one a plain walk takes: same trees, so the same root."""
    import threading

    from neostore.backend import LocalBackend
    from neostore.backup.archiver import Archiver
    from neostore.backup.options import SnapshotOptions
    from neostore.backup.prewalk import Prewalk
    from neostore.core.repository import Repository

    src = tmp_path / "src"
    for d in range(3):
        (src / f"d{d}" / "sub").mkdir(parents=True)
        for i in range(40):
            (src / f"d{d}" / f"f{i}").write_bytes(os.urandom(i * 100))
        os.symlink("f1", src / f"d{d}" / "link")
    (src / "d1" / "g").write_text("x")
    repo.ok("snapshot", src)  # the files cache now knows every file
    repository = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    roots = []
    for read_ahead in (False, True):
        prewalk = None
        if read_ahead:
            prewalk = Prewalk([str(src)])
            prewalk.run(threading.Event())
            assert prewalk.take(os.fsencode(src / "d0")), "it read ahead"
            prewalk = Prewalk([str(src)])
            prewalk.run(threading.Event())
        result = Archiver(repository, SnapshotOptions(paths=[str(src)]), prewalk=prewalk).run()
        assert result.stats.files_unchanged == 121 and not result.errors
        if prewalk is not None:  # the walk took what was read ahead
            assert prewalk.take(os.fsencode(src / "d0")) is None
        roots.append(find_snapshot(repository, result.snapshot_id.hex(), None).manifest.root)
    assert roots[0] == roots[1]


@pytest.mark.parametrize(("interval", "many"), [(0.0, True), (3600.0, False)])
def test_index_files_follow_time_too(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: float, many: bool
) -> None:
    """Packs are indexed every 64 packs *or* once the oldest unindexed one
    is INDEX_INTERVAL old, so a cut-off run on a slow link loses at most
    about a minute of uploads."""
    from neostore.backend import LocalBackend
    from neostore.backup.archiver import Archiver
    from neostore.backup.options import SnapshotOptions
    from neostore.core import packer
    from neostore.core.repository import Repository

    cli.ok("init", "--chunk-min", "16384", "--chunk-avg", "65536", "--chunk-max", "262144",
           "--pack-size", "262144")  # fmt: skip
    src = tmp_path / "src"
    src.mkdir()
    (src / "random").write_bytes(os.urandom(6 * 1024 * 1024))
    monkeypatch.setattr(packer, "INDEX_INTERVAL", interval)
    repository = Repository.open(LocalBackend(str(cli.repo)), PASSWORD.encode())
    result = Archiver(repository, SnapshotOptions(paths=[str(src)])).run()
    assert not result.errors
    packs = sum(1 for p in (cli.repo / "data").rglob("*") if p.is_file())
    indexes = sum(1 for _ in (cli.repo / "index").iterdir())
    assert packs >= 20
    if many:
        assert indexes >= packs // 2
    else:
        assert indexes <= 2
