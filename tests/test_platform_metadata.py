"""Metadata only other platforms have (issue 19): macOS and BSD file flags,
Windows file attributes, creation times. Stored as optional scalar node
fields (docs/format.md, "Trees"), so that readers before them skip them;
a restore on a platform that cannot set them restores everything else and
counts what it did not apply, without failing."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import msgpack
import pytest

from neostore.backup import fsmeta
from neostore.errors import IntegrityError
from neostore.format.tree import FILE, Node, decode_node

from conftest import Cli

UF_HIDDEN = 0x8000
HIDDEN_ARCHIVE = 0x2 | 0x20


def _round_trip(node: Node) -> Node:
    raw = msgpack.unpackb(msgpack.packb(node.encode(), use_bin_type=True), raw=False)
    return decode_node(raw, "test")


def test_platform_fields_round_trip_and_stay_out_when_absent() -> None:
    node = Node(name=b"a", type=FILE, flags=UF_HIDDEN, attributes=HIDDEN_ARCHIVE, birth_ns=123)
    back = _round_trip(node)
    assert (back.flags, back.attributes, back.birth_ns) == (UF_HIDDEN, HIDDEN_ARCHIVE, 123)
    plain = Node(name=b"b", type=FILE).encode()
    assert not {"fl", "wa", "bt"} & plain.keys()  # Linux snapshots are unchanged
    bad = dict(node.encode(), wa=b"x")
    with pytest.raises(IntegrityError, match="'wa' is not an integer"):
        decode_node(bad, "test")


def test_what_a_platform_stat_has_is_recorded() -> None:
    """node_from_stat takes st_flags (macOS, BSD), st_file_attributes
    (Windows) and the creation time when the platform's stat has them."""
    node = Node(name=b"a", type=FILE)
    mac = SimpleNamespace(st_flags=UF_HIDDEN, st_birthtime=1.5)
    fsmeta._platform_fields(node, mac)  # type: ignore[arg-type]
    assert (node.flags, node.attributes, node.birth_ns) == (UF_HIDDEN, None, 1_500_000_000)
    node = Node(name=b"a", type=FILE)
    windows = SimpleNamespace(st_file_attributes=HIDDEN_ARCHIVE, st_birthtime_ns=7)
    fsmeta._platform_fields(node, windows)  # type: ignore[arg-type]
    assert (node.flags, node.attributes, node.birth_ns) == (None, HIDDEN_ARCHIVE, 7)
    node = Node(name=b"a", type=FILE)
    fsmeta._platform_fields(node, os.stat("/"))
    assert (node.flags, node.attributes, node.birth_ns) == (None, None, None)  # Linux


def test_a_foreign_snapshot_restores_and_reports_what_does_not_map(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def as_if_from_another_platform(node: Node, st: os.stat_result) -> None:
        node.flags, node.attributes, node.birth_ns = UF_HIDDEN, HIDDEN_ARCHIVE, st.st_mtime_ns

    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    for name in ("a.txt", "docs/b.txt"):
        (src / name).write_text(name)
    monkeypatch.setattr(fsmeta, "_platform_fields", as_if_from_another_platform)
    repo.ok("snapshot", src)
    monkeypatch.undo()

    out = tmp_path / "out"
    result = repo("restore", f"latest:{src}", "--to", out, "--json")
    assert result.code == 0, result.err
    lost = result.json()["metadata_not_applied"]
    # two files and the folder docs (the restore root's own metadata is not set)
    assert (lost["flags"], lost["attributes"], lost["created"]) == (3, 3, 3)
    assert (out / "a.txt").read_text() == "a.txt"
    assert (out / "docs" / "b.txt").read_text() == "docs/b.txt"
    text = repo("restore", f"latest:{src}", "--to", tmp_path / "again")
    assert text.code == 0
    assert "not applied on this platform" in text.err and "flags of 3" in text.err
