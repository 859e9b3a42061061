"""``neostore repair index``: the index rebuilt from the packs' signed headers."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from neostore.snapshots.catalog import list_snapshots
from neostore.snapshots.lookup import find_snapshot

from conftest import PASSWORD, Cli
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
    assert dry["packs_indexed"] == dry["packs"]
    assert len(list((repo.repo / "index").iterdir())) == len(index) - 1  # nothing written
    fixed = repo.ok("repair", "index", "--json").json()
    # the dry run said what the real run would do
    assert (dry["index_files_written"], dry["index_files_removed"]) == (
        fixed["index_files_written"],
        fixed["index_files_removed"],
    )
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


def _library(repo_path: Path) -> Any:
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository

    opened = Repository.open(LocalBackend(str(repo_path)), PASSWORD.encode())
    opened.load_index()
    return opened


def _files(lib: Any, refs: list[Any], path: str) -> dict[str, Any]:
    """Every node below a listing, by absolute path."""
    out = {}
    for node in lib.blobs.load_tree(refs):
        child = f"{path.rstrip('/')}/{node.name.decode()}"
        out[child] = node
        if node.type == "d":
            out.update(_files(lib, node.subtree, child))
    return out


def test_repair_snapshots_cuts_what_is_gone(cli: Cli, tmp_path: Path) -> None:
    small = ("--pack-size", "1024", "--chunk-min", "256", "--chunk-avg", "1024")
    cli.ok("init", *small, "--chunk-max", "4096")
    rng = random.Random(11)
    src = tmp_path / "src"
    (src / "keep").mkdir(parents=True)
    (src / "keep" / "a.bin").write_bytes(rng.randbytes(30_000))
    (src / "hurt.bin").write_bytes(rng.randbytes(20_000))
    (src / "doomed" / "inner").mkdir(parents=True)
    (src / "doomed" / "inner" / "x").write_bytes(rng.randbytes(3000))
    (src / "doomed" / "y").write_text("y")
    first = cli.ok("snapshot", src, "--json").json()["id"]
    (src / "keep" / "b.txt").write_text("added later")
    second = cli.ok("snapshot", src, "--json").json()["id"]

    lib = _library(cli.repo)
    trees = {
        sid: _files(lib, find_snapshot(lib, sid, None).manifest.root, "/")
        for sid in (first, second)
    }
    nodes = trees[second]
    hurt = nodes[str(src / "hurt.bin")]
    victim = lib.index.lookup(hurt.content[len(hurt.content) // 2].blob_id).pack_id
    # lose one data pack, and corrupt the listing of doomed/ inside its pack
    # (each snapshot's: atimes may differ)
    (cli.repo / "data" / victim.hex()[:2] / victim.hex()).unlink()
    for listing in {t[str(src / "doomed")].subtree[0].blob_id for t in trees.values()}:
        where = lib.index.lookup(listing)
        pack = cli.repo / "data" / where.pack_id.hex()[:2] / where.pack_id.hex()
        data = bytearray(pack.read_bytes())
        data[where.offset + where.length // 2] ^= 1
        pack.write_bytes(bytes(data))
    lost_in: dict[str, dict[str, Any]] = {}
    for sid, tree in trees.items():
        expected = lost_in[sid] = {}
        for path, node in tree.items():
            if node.type == "f" and not path.startswith(str(src / "doomed")):
                gone = sum(
                    r.length for r in node.content if lib.index.lookup(r.blob_id).pack_id == victim
                )
                if gone:
                    expected[path] = {"path": path, "type": "file", "bytes": gone}
        expected[str(src / "doomed")] = {"path": str(src / "doomed"), "type": "dir", "bytes": 0}
    assert str(src / "hurt.bin") in lost_in[second]
    assert cli("check").code == 1

    # a dry run, with the index still naming the lost pack, writes nothing
    packs_before = sorted(p.name for p in (cli.repo / "data").rglob("*") if p.is_file())
    dry = cli.ok("repair", "snapshots", "--dry-run", "--json").json()
    assert dry["dry_run"] and [s["id"] for s in dry["snapshots"]] == [first, second]
    for row in dry["snapshots"]:
        assert row["damaged"] and row["new"] is None
        assert {e["path"]: e for e in row["lost"]} == lost_in[row["id"]]
    assert sorted(p.name for p in (cli.repo / "data").rglob("*") if p.is_file()) == packs_before
    assert len(cli.ok("snapshots", "--json").json()) == 2

    cli.ok("repair", "index")
    done = cli.ok("repair", "snapshots", "--forget", "--json").json()["snapshots"]
    assert all(r["damaged"] and r["forgotten"] for r in done)
    new = {r["id"]: r["new"] for r in done}
    listed = cli.ok("snapshots", "--json")
    assert "warning" not in listed.err
    rows = listed.json()
    assert [r["id"] for r in rows] == [new[first], new[second]]
    assert [r["original"] for r in rows] == [first, second]
    assert all(r["tags"] == ["repaired"] for r in rows)
    assert {e["path"]: e for e in rows[0]["lost"]} == lost_in[first]
    assert {e["path"]: e for e in rows[1]["lost"]} == lost_in[second]
    cli.ok("check")

    out = tmp_path / "out"
    cli.ok("restore", new[second], "--to", out)
    here = out / str(src).lstrip("/")
    if str(src / "keep" / "a.bin") not in lost_in[second]:
        assert (here / "keep" / "a.bin").read_bytes() == (src / "keep" / "a.bin").read_bytes()
    original = (src / "hurt.bin").read_bytes()
    kept, offset = b"", 0
    for ref in hurt.content:
        if lib.index.lookup(ref.blob_id).pack_id != victim:
            kept += original[offset : offset + ref.length]
        offset += ref.length
    assert (here / "hurt.bin").read_bytes() == kept and len(kept) < len(original)
    assert list((here / "doomed").iterdir()) == []
    # nothing needs the damaged data any more: prune clears it all away
    cli.ok("prune", "--grace", "0s", "--max-unused", "0%")
    cli.ok("prune", "--grace", "0s", "--max-unused", "0%")
    cli.ok("check", "--read-data")
    # nothing left to repair
    again = cli.ok("repair", "snapshots", "--json").json()["snapshots"]
    assert not any(r["damaged"] for r in again)


def test_repair_snapshots_cuts_nothing_on_a_glitch(repo: Cli, tmp_path: Path) -> None:
    """A listing that leaves a pack out, or a store that fails to answer,
    is not lost data: nothing is cut and nothing forgotten (found by review:
    both emptied snapshots and forgot the originals)."""
    from collections.abc import Iterator

    import pytest

    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.errors import BackendError, TransientBackendError
    from neostore.lifecycle.salvage import repair_snapshots

    src = tmp_path / "src"
    _tree(src, 4)
    sid = repo.ok("snapshot", src, "--json").json()["id"]
    packs = sorted(p.name for p in (repo.repo / "data").rglob("*") if p.is_file())
    failing: list[bool] = [False]

    class Flaky(LocalBackend):
        def list(self, otype: str) -> Iterator[tuple[str, int]]:
            for name, size in super().list(otype):
                if not (otype == "data" and name in packs[:2]):
                    yield name, size

        def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
            if failing[0] and otype == "data":
                raise TransientBackendError("503 from the store")
            return super().load(otype, name, offset, length)

    opened = Repository.open(Flaky(str(repo.repo)), PASSWORD.encode())
    infos = list_snapshots(opened, "default")
    outcomes, gone = repair_snapshots(opened, "default", infos, forget_originals=True)
    assert gone == [] and [o.lost for o in outcomes] == [[]]
    failing[0] = True
    opened = Repository.open(Flaky(str(repo.repo)), PASSWORD.encode())
    with pytest.raises(BackendError):
        repair_snapshots(
            opened, "default", list_snapshots(opened, "default"), forget_originals=True
        )
    assert [s["id"] for s in repo.ok("snapshots", "--json").json()] == [sid]
    repo.ok("check", "--read-data")
    # a reader may look (found by review: it needed a key that writes), not change
    env = {"NEOSTORE_NEW_PASSWORD": "reader pw"}
    repo.ok("key", "add", "--role", "reader", "--target", "default", extra_env=env)
    looked = repo.ok("repair", "snapshots", "--dry-run", "--json", password="reader pw").json()
    assert [s["damaged"] for s in looked["snapshots"]] == [False]
    assert repo("repair", "snapshots", password="reader pw").code == 13
