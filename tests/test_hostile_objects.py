"""Hostile objects planted in a repository (by the store, or signed by a
leaked writer key) end in one of neostore's own errors naming the object,
never a traceback; one bad key file locks nobody out (issue 15, item 7)."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack

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
    writer = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    record = writer.target("default")
    domain = writer.domain(record)
    packer = Packer(writer, record, domain, writer.writer)
    node = {"n": b"evil", "t": "f", "m": 0o644, "u": 0, "g": 0, "mt": 0, "sz": 0, "c": 5}
    root = packer.store_buffer(TREE, pack({"v": 1, "nodes": [node]}))
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
        time_ns=1,
        host="h",
        user="u",
        paths=[b"/"],
        tags=[],
        parent=None,
        root=root,
    )
    sid = save_snapshot(writer, record, manifest).hex()
    for args in (("ls", sid), ("restore", sid, "--to", tmp_path / "out"), ("check",)):
        result = _clean(repo(*args))
        assert result.code == 1 and "malformed reference list" in result.err, (args, result.err)
    assert not os.path.exists(tmp_path / "out" / "evil")
