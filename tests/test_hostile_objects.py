"""Hostile objects planted in a repository (by the store, or signed by a
leaked writer key) end in one of neostore's own errors naming the object,
never a traceback; one bad key file locks nobody out (issue 15, item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

from neostore.backend import LocalBackend
from neostore.core.packer import Packer
from neostore.core.repository import Repository
from neostore.format.codec import pack
from neostore.format.manifest import Manifest
from neostore.format.targets import TREE
from neostore.snapshots.catalog import chain_head, list_snapshots, save_snapshot

from conftest import PASSWORD, Cli, Result


def _clean(result: Result) -> Result:
    assert "Traceback" not in result.err, result.err
    return result


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a file\n")
    return src


def test_a_planted_key_file_is_skipped_with_a_warning(repo: Cli) -> None:
    """A key file whose salt is 5 bytes made PyNaCl raise for every password
    tried, so one planted file locked out every password."""
    (owner,) = (repo.repo / "keys").iterdir()
    header, sealed = msgpack.unpackb(owner.read_bytes())
    fields = msgpack.unpackb(header)
    fields["salt"] = b"12345"
    planted = repo.repo / "keys" / ("00" * 16)  # sorts before the real one
    planted.write_bytes(msgpack.packb([msgpack.packb(fields), sealed]))
    listed = _clean(repo("snapshots"))
    assert listed.code == 0
    assert "warning: skipped: key file 00000000" in listed.err and "salt" in listed.err
    wrong = _clean(repo("snapshots", password="not the password"))
    assert wrong.code == 12 and "00000000" in wrong.err


def test_a_target_record_of_two_strings(repo: Cli, tmp_path: Path) -> None:
    repo.ok("snapshot", _source(tmp_path))
    (repo.repo / "targets" / "default").write_bytes(pack(["body", "signature"]))
    # a machine that never opened it (no pin): the record is refused as malformed
    fresh = Cli(dict(repo.env, NEOSTORE_STATE_DIR=str(tmp_path / "other-state")), repo.repo)
    for args in (("snapshots",), ("ls", "latest"), ("check",)):
        result = _clean(fresh(*args))
        assert result.code == 1 and "target record default" in result.err, (args, result.err)


def test_a_pack_of_two_bytes(repo: Cli, tmp_path: Path) -> None:
    """check --read-data died with struct.error and reported nothing else."""
    repo.ok("snapshot", _source(tmp_path))
    name = "ab" * 32
    (repo.repo / "data" / "ab").mkdir(exist_ok=True)
    (repo.repo / "data" / "ab" / name).write_bytes(b"\0\0")
    checked = _clean(repo("check", "--read-data", "--json"))
    report = checked.json()
    assert checked.code == 1 and report["blobs_checked"] > 0
    assert any(name in e and "too short" in e for e in report["errors"])
    pruned = _clean(repo("prune", "--grace", "0s"))  # not indexed: kept, and said so
    assert pruned.code == 0 and f"pack {name}: header unreadable, kept" in pruned.err


def test_a_writer_signed_listing_with_a_broken_node(repo: Cli, tmp_path: Path) -> None:
    """A tree node whose content is an integer (a listing a leaked writer key
    can sign) raised TypeError in every command that read it."""
    repo.ok("snapshot", _source(tmp_path))
    node = {"n": b"evil", "t": "f", "m": 0o644, "u": 0, "g": 0, "mt": 0, "sz": 0, "c": 5}
    sid = _snapshot_with_root(repo, 1, pack({"v": 1, "nodes": [node]}))
    for args in (("ls", sid), ("restore", sid, "--to", tmp_path / "out"), ("check",)):
        result = _clean(repo(*args))
        assert result.code == 1 and "malformed reference list" in result.err, (args, result.err)
    assert not os.path.exists(tmp_path / "out" / "evil")


def _listing_of(count: int) -> bytes:
    nodes = [
        {"n": b"entry-%07d" % i, "t": "f", "m": 0o644, "u": 0, "g": 0, "mt": 0, "sz": 0, "c": []}
        for i in range(count)
    ]
    return pack({"v": 1, "nodes": nodes})


def _snapshot_with_root(repo: Cli, copies: int, piece: bytes) -> str:
    """A snapshot, signed by a certified key, whose root listing is
    ``copies`` references to ``piece``, stored once (or, ``copies`` 0, the
    pieces ``piece`` is cut into)."""
    writer = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    record = writer.target("default")
    domain = writer.domain(record)
    packer = Packer(writer, record, domain, writer.writer)
    refs = packer.store_buffer(TREE, piece)
    packer.flush()
    packer.close()
    seq, prev = chain_head(writer, record, list_snapshots(writer, "default"))
    manifest = Manifest(
        repo_id=writer.repo_id,
        target_id=record.target_id,
        writer_id=writer.writer.writer_id,
        epoch=domain.epoch,
        seq=seq + 1,
        prev=prev,
        time_ns=time.time_ns(),
        host="h",
        user="u",
        paths=[b"/"],
        tags=[],
        parent=None,
        root=refs * copies if copies else refs,
    )
    return save_snapshot(writer, record, manifest).hex()


def _limited(repo: Cli, *args: str, **env_vars: str) -> Result:
    """The command with at most 200 MiB of growth allowed (tests/memlimit.py)."""
    env = {**repo.env, "NEOSTORE_PASSWORD": PASSWORD, "NEOSTORE_REPO": str(repo.repo), **env_vars}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "memlimit.py"), "200", *args],
        env=env,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode(), proc.stdout)


def test_listing_bombs_fail_early_naming_the_snapshot(repo: Cli, tmp_path: Path) -> None:
    """The attack review's bomb: a writer-signed root listing of 20 000
    references to one 16 KiB tree blob took `ls` to 692 MB. Under a limit
    of 200 MiB of growth every command that reads it fails cleanly, naming
    the snapshot; a real listing reads fine under the same limit."""
    repo.ok("snapshot", _source(tmp_path))
    assert _clean(_limited(repo, "ls", "latest")).code == 0  # the limit leaves room to work
    piece = _listing_of(330)  # ~16 KiB: a whole listing, valid on its own
    assert 12_000 < len(piece) < 20_000
    # 20 000 copies claim ~320 MB: refused before anything is fetched
    over = _snapshot_with_root(repo, 20_000, piece)
    # 8 000 copies claim ~114 MB, within the limit: the second copy is
    # found to follow the end of the listing, and nothing more is fetched
    within = _snapshot_with_root(repo, 8_000, piece)
    for sid, reason in ((over, "more than the"), (within, "data after the end of the listing")):
        for args in (("ls", sid), ("find", "--snapshot", sid, "*"), ("dump", sid, "/x")):
            result = _clean(_limited(repo, *args))
            assert result.code == 1, (args, result.err)
            assert f"snapshot {sid[:12]}" in result.err and reason in result.err, (args, result.err)
        restored = _clean(_limited(repo, "restore", sid, "--to", str(tmp_path / sid)))
        assert restored.code == 1 and reason in restored.err
    checked = _clean(_limited(repo, "check", "--json"))
    assert checked.code == 1
    errors = checked.json()["errors"]
    assert any(over[:12] in e and "more than the" in e for e in errors), errors
    assert any(within[:12] in e and "after the end" in e for e in errors), errors


def test_a_listing_claiming_too_many_entries_is_refused_at_its_header() -> None:
    from neostore.format.tree import MAX_LISTING_ENTRIES, ListingTooLarge, decode_tree_stream

    header = b"\x82\xa1v\x01\xa5nodes\xdd" + (MAX_LISTING_ENTRIES + 1).to_bytes(4, "big")
    pieces = iter([header, b"never fetched"])
    with pytest.raises(ListingTooLarge, match="claims 1048577 entries"):
        decode_tree_stream(pieces, "tree x")
    assert next(pieces) == b"never fetched"


def test_a_walk_holds_a_bounded_number_of_entries(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the listings alive at once take is counted: a deep path of
    large listings is refused instead of growing without bound (a small
    limit here)."""
    from neostore.core import blobs
    from neostore.format.tree import ListingTooLarge

    src = tmp_path / "src"
    deep = src
    for level in range(4):
        deep = deep / f"level{level}"
        deep.mkdir(parents=True)
        for i in range(30):
            (deep / f"f{i}").write_text(str(i))
    repo.ok("snapshot", src)
    owner = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    from neostore.browse.navigate import entries
    from neostore.snapshots.lookup import find_snapshot

    latest = find_snapshot(owner, "latest")
    owner.load_index()
    assert len(list(entries(owner, latest, "/", recursive=True))) > 120
    assert owner.blobs._budget.held == 0  # every listing was let go
    monkeypatch.setattr(blobs, "MAX_HELD_BYTES", 100_000)
    with pytest.raises(ListingTooLarge, match=f"snapshot {latest.hex_id[:12]}: tree"):
        list(entries(owner, latest, "/", recursive=True))
    assert owner.blobs._budget.held == 0


def test_a_snapshot_never_writes_a_listing_readers_would_refuse(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neostore.format import tree

    src = tmp_path / "src"
    (src / "crowded").mkdir(parents=True)
    for i in range(5):
        (src / "crowded" / f"f{i}").write_text(str(i))
    monkeypatch.setattr(tree, "MAX_LISTING_ENTRIES", 4)  # a small limit, as a big one
    failed = _clean(repo("snapshot", src))
    assert failed.code == 1
    assert f"directory {src}/crowded: 5 entries, more than the 4" in failed.err
    assert not list((repo.repo / "snapshots").rglob("*"))


def test_a_listing_as_large_as_the_limits_allow_stays_within_the_bound(
    repo: Cli, tmp_path: Path
) -> None:
    """The worst a writer can sign within the limits: 1 048 576 minimal
    entries (~40 MiB of msgpack). Decoded whole it grew a reader by 438
    MiB; kept encoded, every command reads it under the 200 MiB bound."""
    from neostore.format.tree import MAX_LISTING_ENTRIES

    repo.ok("snapshot", _source(tmp_path))
    listing = _listing_of(MAX_LISTING_ENTRIES)
    sid = _snapshot_with_root(repo, 0, listing)
    shown = _clean(_limited(repo, "ls", sid))
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert len(lines) == MAX_LISTING_ENTRIES and lines[-1] == f"/entry-{len(lines) - 1:07d}"
    last = f"/entry-{MAX_LISTING_ENTRIES - 1:07d}"
    one = _clean(_limited(repo, "ls", sid, last, "--json"))
    assert one.code == 0 and [e["path"] for e in one.json()] == [last], one.err
    found = _clean(_limited(repo, "find", "--snapshot", sid, "entry-0000007"))
    assert found.code == 0 and "/entry-0000007" in found.out, found.err
    checked = _clean(_limited(repo, "check"))
    assert checked.code == 0, checked.err
    out = tmp_path / "out"
    restored = _clean(_limited(repo, "restore", sid, "--to", str(out), "--include", last))
    assert restored.code == 0 and os.listdir(out) == [last[1:]], restored.err
    other = Cli(repo.env, tmp_path / "other")
    other.ok("init")
    copied = _limited(
        repo,
        "copy",
        "--from-repo",
        str(repo.repo),
        NEOSTORE_REPO=str(other.repo),
        NEOSTORE_FROM_PASSWORD=PASSWORD,
    )
    assert _clean(copied).code == 0, copied.err
    assert other.ok("ls", "latest", last).out.strip() == last


def test_one_file_with_a_million_chunks_stays_within_the_bound(repo: Cli, tmp_path: Path) -> None:
    """A file node whose content list fills a listing to its limit (the
    chunks of a 1.2 TiB file; here one real 7-byte blob over and over):
    its references stay encoded (~108 bytes each, against ~300 decoded)."""
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    owner = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    from neostore.browse.navigate import entries
    from neostore.snapshots.lookup import find_snapshot

    owner.load_index()
    ((_, node),) = [
        e for e in entries(owner, find_snapshot(owner, "latest"), src) if e[0].endswith(b"a.txt")
    ]
    (ref,) = node.content
    count = 1_150_000
    big = {"n": b"big", "t": "f", "m": 0o644, "u": 0, "g": 0, "mt": 0, "sz": count * ref.length}
    big["c"] = [ref.encode()] * count
    sid = _snapshot_with_root(repo, 0, pack({"v": 1, "nodes": [big]}))
    shown = _clean(_limited(repo, "ls", "-l", sid))
    assert shown.code == 0 and str(count * ref.length) in shown.out, shown.err
    checked = _clean(_limited(repo, "check"))
    assert checked.code == 0, checked.err
    out = tmp_path / "out"
    restored = _clean(_limited(repo, "restore", sid, "--to", str(out)))
    assert restored.code == 0, restored.err
    assert (out / "big").read_bytes() == b"a file\n" * count
