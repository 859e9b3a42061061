"""``check --read-data-subset``: parts that add up to the whole, and the
part holding a corrupt pack is the one that fails."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import PASSWORD, Cli


def test_read_data_subsets_cover_every_pack_once(cli: Cli, tmp_path: Path) -> None:
    repo = cli
    repo.ok("init", "--pack-size", "65536", "--chunk-min", "4096", "--chunk-avg", "16384",
            "--chunk-max", "65536")  # fmt: skip
    src = tmp_path / "src"
    src.mkdir()
    for n in range(6):
        (src / f"f{n}").write_bytes(os.urandom(150_000))
    repo.ok("snapshot", src)
    full = repo.ok("check", "--read-data", "--json").json()
    assert full["ok"] and full["packs"] >= 6 and full["packs_read"] == full["packs"]
    parts = [repo.ok("check", "--read-data-subset", f"{n}/3", "--json").json() for n in (1, 2, 3)]
    assert sum(p["packs_read"] for p in parts) == full["packs"]
    assert sum(p["blobs_checked"] for p in parts) == full["blobs_checked"]
    assert all(p["packs_read"] < full["packs"] for p in parts)
    sample = repo.ok("check", "--read-data-subset", "34%", "--json").json()
    assert sample["packs_read"] == -(-full["packs"] * 34 // 100)
    # corrupt one pack: only the part that reads it fails
    victim = _a_pack_of_file_data(repo)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    outcomes = [repo("check", "--read-data-subset", f"{n}/3") for n in (1, 2, 3)]
    assert sorted(o.code for o in outcomes) == [0, 0, 1]
    failed = next(o for o in outcomes if o.code == 1)
    assert victim.name in failed.err
    assert repo("check").code == 0  # the structure alone does not read packs
    for bad in ("0/3", "4/3", "x", "0%", "101%"):
        refused = repo("check", "--read-data-subset", bad)
        assert refused.code == 2 and "--read-data-subset" in refused.err
    assert repo("check", "--read-data", "--read-data-subset", "1/2").code == 2
    # a stray file among the packs is reported, by part 1 only, not a crash
    (repo.repo / "data" / "00" / "zz-notes").write_text("not a pack")
    stray = [repo("check", "--read-data-subset", f"{n}/2") for n in (1, 2)]
    assert "zz-notes: cannot be read" in stray[0].err
    assert "zz-notes: cannot be read" not in stray[1].err
    assert "Traceback" not in stray[0].err + stray[1].err


def _a_pack_of_file_data(repo: Cli) -> Path:
    """A pack holding file content only: a corrupt pack of directory
    listings fails every part's structure check, not only its own part."""
    from neostore.backend import LocalBackend
    from neostore.backend.names import relative_path
    from neostore.core.repository import Repository
    from neostore.format.targets import TREE

    repository = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    repository.load_index()
    kinds: dict[bytes, set[int]] = {}
    for blob_id in repository.index.blob_ids():
        location = repository.index.lookup(blob_id)
        assert location is not None
        kinds.setdefault(location.pack_id, set()).add(location.btype)
    pack_id = min(p for p, k in kinds.items() if TREE not in k)
    return repo.repo / relative_path("data", pack_id.hex())


def test_the_last_check_is_remembered_on_this_machine(repo: Cli, tmp_path: Path) -> None:
    """``neostore check`` records when and what it found; the Python API
    reads it back (for the graphical front-end's status page)."""
    import neostore

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    repo.ok("snapshot", src)
    opened = neostore.open_repository(repo.repo, PASSWORD)
    assert neostore.last_check(opened) is None
    before = time.time_ns()
    repo.ok("check", "--read-data", process=True)
    status = neostore.last_check(opened)
    assert status is not None and status.ok and status.read_data
    assert before <= status.time_ns <= time.time_ns() and status.snapshots == 1
    # damage: the next check's record says so
    pack = sorted(p for p in (repo.repo / "data").rglob("*") if p.is_file())[0]
    data = bytearray(pack.read_bytes())
    data[100] ^= 1
    pack.write_bytes(bytes(data))
    assert repo("check", "--read-data", process=True).code != 0
    damaged = neostore.last_check(opened)
    assert damaged is not None and not damaged.ok and damaged.errors >= 1
