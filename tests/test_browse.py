"""``neostore find`` and ``neostore diff`` through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Cli


def test_diff_names_every_kind_of_change(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "keep" / "deep").mkdir(parents=True)
    (src / "keep" / "deep" / "same.txt").write_text("unchanged\n")
    (src / "edit.txt").write_text("before\n")
    (src / "chmod.txt").write_text("mode\n")
    (src / "gone").mkdir()
    (src / "gone" / "a.txt").write_text("a\n")
    (src / "becomes-dir").write_text("file\n")
    first = repo.ok("snapshot", src, "--json").json()["id"]
    (src / "edit.txt").write_text("after, longer\n")
    os.chmod(src / "chmod.txt", 0o600)
    (src / "gone" / "a.txt").unlink()
    (src / "gone").rmdir()
    (src / "becomes-dir").unlink()
    (src / "becomes-dir").mkdir()
    (src / "becomes-dir" / "inner.txt").write_text("inner\n")
    (src / "new.txt").write_text("new\n")
    second = repo.ok("snapshot", src, "--json").json()["id"]
    out = repo.ok("diff", first, second, "--json").json()
    base = str(src)
    changes = {c["path"].removeprefix(base): c["change"] for c in out["changes"]}
    expected = {
        "/edit.txt": "modified",
        "/chmod.txt": "metadata",
        "/gone": "removed",
        "/gone/a.txt": "removed",
        "/new.txt": "added",
        "/becomes-dir/inner.txt": "added",
        "": "metadata",  # the source directory's mtime changed
    }
    for path, kind in expected.items():
        assert changes.get(path) == kind, (path, changes)
    assert [changes[p] for p in changes if p == "/becomes-dir"] == ["added"]  # removed and added
    assert sum(1 for c in out["changes"] if c["path"] == f"{base}/becomes-dir") == 2
    assert not any(p.startswith("/keep") for p in changes)  # an unchanged subtree is skipped
    assert out["summary"]["added"] == 3 and out["summary"]["removed"] == 3
    # below a path, and the text form
    # a directory on one side only is itself removed, with what it held
    only = repo.ok("diff", first, second, f"{base}/gone", "--json").json()
    assert [(c["path"], c["change"]) for c in only["changes"]] == [
        (f"{base}/gone", "removed"),
        (f"{base}/gone/a.txt", "removed"),
    ]
    one = repo.ok("diff", first, second, f"{base}/edit.txt", "--json").json()["changes"]
    assert one == [{"path": f"{base}/edit.txt", "change": "modified"}]
    retyped = repo.ok("diff", first, second, f"{base}/becomes-dir", "--json").json()["changes"]
    assert [c["change"] for c in retyped] == ["removed", "added", "added"]
    missing = repo("diff", first, second, f"{base}/never-there")
    assert missing.code == 1 and "in neither snapshot" in missing.err
    # the same content in another target (another dedup domain) is not "modified"
    third = repo.ok("snapshot", src, "--target", "elsewhere", "--json").json()["id"]
    across = repo.ok("diff", second, third, "--json").json()["summary"]
    assert across["modified"] == 0 and across["added"] == across["removed"] == 0
    text = repo.ok("diff", first, second).out
    assert f"M    {base}/edit.txt" in text and f"U    {base}/chmod.txt" in text
    assert f"+    {base}/new.txt" in text and f"-    {base}/gone/a.txt" in text
    assert repo.ok("diff", first, first, "--json").json()["changes"] == []


def test_find_which_snapshots_hold_a_path(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "plan.txt").write_text("plan\n")
    first = repo.ok("snapshot", src, "--json").json()["id"]
    (src / "docs" / "report.odt").write_text("report\n")
    second = repo.ok("snapshot", src, "--json").json()["id"]
    (src / "docs" / "plan.txt").unlink()
    third = repo.ok("snapshot", src, "--json").json()["id"]
    found = repo.ok("find", "*.odt", "--json").json()
    assert [r["id"] for r in found] == [second, third]
    assert [m["path"] for m in found[0]["matches"]] == [f"{src}/docs/report.odt"]
    plans = repo.ok("find", "plan.txt", "--json").json()
    assert [r["id"] for r in plans] == [first, second]
    # a pattern with "/" is matched against the whole path
    whole = repo.ok("find", f"{src}/docs/*", "--json", "--snapshot", third).json()
    assert [m["path"] for m in whole[0]["matches"]] == [f"{src}/docs/report.odt"]
    assert repo.ok("find", "nothing-like-this", "--json").json() == []
    text = repo.ok("find", "*.odt").out
    assert f"snapshot {second[:8]}" in text and f"{src}/docs/report.odt" in text


def test_find_and_diff_respect_roles(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "shared").mkdir(parents=True)
    (src / "shared" / "deck.txt").write_text("deck\n")
    (src / "private.txt").write_text("private\n")
    first = repo.ok("snapshot", src, "--json").json()["id"]
    env = {"NEOSTORE_NEW_PASSWORD": "w"}
    repo.ok("key", "add", "--role", "writer", "--target", "default", extra_env=env)
    env = {"NEOSTORE_NEW_PASSWORD": "s"}
    repo.ok("share", "create", "-t", "default", "--path", f"{src}/shared", extra_env=env)
    repo.ok("share", "sync")
    denied = repo("find", "*.txt", password="w")
    assert denied.code == 13 and "reader" in denied.err
    assert repo("diff", first, first, password="w").code == 13
    shared = repo.ok("find", "*.txt", "--json", password="s").json()
    assert [m["path"] for r in shared for m in r["matches"]] == ["/shared/deck.txt"]


def test_stats_restore_size_and_raw_data(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "random.bin").write_bytes(os.urandom(300_000))
    text = b"".join(b"line %d of a compressible text\n" % n for n in range(6000))
    (src / "a.txt").write_bytes(text)
    (src / "sub" / "copy.txt").write_bytes(text)  # the same content twice
    first = repo.ok("snapshot", src, "--json").json()["id"]
    repo.ok("snapshot", src)
    files = 300_000 + 2 * len(text)
    both = repo.ok("stats", "--json").json()
    assert both["snapshots"] == 2 and both["files"] == 6
    assert both["restore_size"] == 2 * files
    assert 300_000 + len(text) <= both["raw_size"] < 300_000 + len(text) + 20_000
    assert both["stored_size"] < both["raw_size"]  # the text compresses
    assert both["compression_ratio"] > 1.2 and both["dedup_ratio"] > 2.5
    one = repo.ok("stats", first, "--json", "--mode", "raw-data").json()
    assert one["snapshots"] == 1 and one["restore_size"] == files
    # the second snapshot added listings only (directory times), no file data
    assert 0 <= both["raw_size"] - one["raw_size"] < 10_000
    shown = repo.ok("stats", "--mode", "raw-data").out
    assert "compression ratio" in shown and "dedup ratio" in shown
    assert "restore size" in repo.ok("stats").out
    assert repo("stats", "--mode", "sideways").code == 2
