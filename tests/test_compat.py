"""The on-disk format stays readable: a repository written by neostore at
commit 6769438 (before the architecture change of issue 14), built by
``tests/fixtures/compat-v1/make.sh``, opens, lists, checks and restores
for every role it holds keys of, and takes new snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli

FIXTURE = Path(__file__).parent / "fixtures" / "compat-v1"
SRC = "/tmp/neostore-fixture-src"


def _expected(name: str) -> Any:
    text = (FIXTURE / "expected" / name).read_bytes().decode("utf-8", "surrogateescape")
    return json.loads(text)


def _listing(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["id"], r["target"], r["tags"], r["writer"], r["seq"]) for r in rows]


@pytest.fixture
def old(cli: Cli, tmp_path: Path) -> Cli:
    shutil.copytree(FIXTURE / "repo", cli.repo)
    return cli


def test_owner_lists_checks_and_restores_an_old_repository(old: Cli, tmp_path: Path) -> None:
    listed = old.ok("snapshots", "--json", password="owner-password")
    assert _listing(listed.json()) == _listing(_expected("snapshots-owner.json"))
    assert "warning" not in listed.err
    checked = old.ok("check", "--read-data", "--json", password="owner-password").json()
    assert checked["ok"] and checked["blobs_checked"] > 0 and checked["snapshots"] == 3
    for target, name in (("default", "ls-latest.json"), ("work", "ls-work.json")):
        shown = old.ok(
            "ls", "latest", "-R", "--json", "--target", target, password="owner-password"
        )
        assert json.loads(shown.out) == _expected(name)
    out = tmp_path / "out"
    old.ok("restore", f"latest:{SRC}", "--to", out, password="owner-password")
    digests = {}
    for dirpath, _dirs, files in os.walk(out):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                digests[os.path.relpath(path, out)] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digests == _expected("content-latest.json")
    assert os.readlink(out / "link") == "docs/readme.txt"
    assert os.getxattr(out / "docs" / "readme.txt", "user.note") == b"xattr value"
    assert (out / "script.sh").stat().st_ino == (out / "script-hardlink.sh").stat().st_ino
    assert (out / "media" / "random.bin").stat().st_mtime_ns == 1_700_000_000_123_456_789


def test_other_roles_of_an_old_repository(old: Cli, tmp_path: Path) -> None:
    for role in ("reader", "share"):
        listed = old.ok("snapshots", "--json", password=f"{role}-password")
        assert [r["id"] for r in listed.json()] == [
            r["id"] for r in _expected(f"snapshots-{role}.json")
        ]
    out = tmp_path / "shared"
    old.ok("restore", "latest", "--to", out, password="share-password")
    notes = out / "docs" / "sub" / "notes.md"
    assert (
        hashlib.sha256(notes.read_bytes()).hexdigest()
        == (_expected("content-latest.json")["docs/sub/notes.md"])
    )
    # the put-only writer and the owner go on adding snapshots to it
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.txt").write_text("after the change\n")
    old.ok("snapshot", src, password="writer-password")
    old.ok("snapshot", src, "--target", "work", password="owner-password")
    assert len(old.ok("snapshots", "--json", password="owner-password").json()) == 5
    old.ok("check", "--read-data", password="owner-password")
