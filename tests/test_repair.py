"""``neostore repair index``: the index rebuilt from the packs' signed headers."""

from __future__ import annotations

import random
from pathlib import Path

from conftest import Cli
from treeutil import assert_same_tree


def _tree(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(6):
        (root / f"f{n}").write_bytes(rng.randbytes(150_000))


def test_repair_index_after_losing_and_corrupting_index_files(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src, 1)
    repo.ok("snapshot", src)
    _tree(src, 2)
    latest = repo.ok("snapshot", src, "--json").json()["id"]
    # forget the first, and let a prune condemn what it alone used (a mark)
    first = repo.ok("snapshots", "--json").json()[0]["id"]
    repo.ok("forget", first)
    marked = repo.ok("prune", "--grace", "0s", "--json").json()
    assert marked["packs_condemned"] > 0
    index = sorted((repo.repo / "index").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    index[0].unlink()  # lost
    data = bytearray(index[1].read_bytes())
    data[len(data) // 2] ^= 1  # corrupt
    index[1].write_bytes(bytes(data))
    broken = repo("check")
    assert broken.code == 1

    dry = repo.ok("repair", "index", "--dry-run", "--json").json()
    assert dry["packs_indexed"] == dry["packs"] and dry["index_files_removed"] == 0
    fixed = repo.ok("repair", "index", "--json").json()
    assert fixed["packs_indexed"] == fixed["packs"] > 0
    assert fixed["marks_kept"] >= 1 and fixed["index_files_written"] >= 1
    repo.ok("check", "--read-data")
    out = tmp_path / "out"
    repo.ok("restore", latest, "--to", out)
    assert_same_tree(src, out / str(src).lstrip("/"))
    # the kept mark still counts: the next prune deletes what it condemned
    swept = repo.ok("prune", "--grace", "0s", "--json").json()
    assert swept["packs_deleted"] == marked["packs_condemned"]
    repo.ok("check", "--read-data")


def test_repair_index_reports_a_pack_with_a_bad_header(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src, 3)
    repo.ok("snapshot", src)
    packs = [p for p in (repo.repo / "data").rglob("*") if p.is_file()]
    victim = max(packs, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF  # inside the header
    victim.write_bytes(bytes(data))
    result = repo("repair", "index", "--json")
    assert result.code == 1 and victim.name in result.err
    stats = result.json()
    assert stats["packs_indexed"] == stats["packs"] - 1
    # the other packs are indexed; check reports the blobs that pack held
    check = repo("check")
    assert check.code == 1 and "missing" in check.err
