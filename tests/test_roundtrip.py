"""Round trip through the real CLI: every kind of file, compared by content
and metadata."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Cli
from treeutil import IS_ROOT, build_fidelity_tree, describe


def test_fidelity_round_trip(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    build_fidelity_tree(src)
    before = describe(src)
    made = repo.ok("snapshot", src, "--json").json()
    assert made["errors"] == []
    assert made["files_new"] >= 15

    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out)
    restored_root = out / str(src).lstrip("/")
    after = describe(restored_root)

    assert set(after) == set(before)
    for rel, info in before.items():
        assert after[rel] == info, rel

    # sparse: the 40 MiB hole and the trailing hole are holes again
    sparse = os.stat(restored_root / "sparse.img")
    assert sparse.st_size == 64 * 1024 * 1024
    assert sparse.st_blocks * 512 < 1024 * 1024

    # hard links are links, not copies
    a = os.stat(restored_root / "hl" / "a")
    assert a.st_ino == os.stat(restored_root / "hl" / "b").st_ino
    assert a.st_ino == os.stat(restored_root / "sticky" / "c").st_ino
    assert a.st_nlink == 3

    if IS_ROOT:
        assert os.stat(restored_root / "owned").st_uid == 1234
        assert os.lstat(restored_root / "link-rel").st_gid == 8765

    # the ancestors of the backed-up path were recreated too, with metadata
    ancestor = src.parent
    restored_ancestor = out / str(ancestor).lstrip("/")
    assert restored_ancestor.is_dir()
    assert os.stat(restored_ancestor).st_mode == os.stat(ancestor).st_mode
    top = Path("/") / src.parts[1]
    assert os.stat(out / src.parts[1]).st_mode == os.stat(top).st_mode


def test_subpath_restore_and_filters(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "docs" / "keep").mkdir(parents=True)
    (src / "docs" / "keep" / "a.txt").write_text("a")
    (src / "docs" / "keep" / "b.log").write_text("b")
    (src / "docs" / "other.txt").write_text("o")
    (src / "top.txt").write_text("t")
    repo.ok("snapshot", src)

    out = tmp_path / "sub"
    repo.ok("restore", f"latest:{src}/docs", "--to", out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "keep",
        "keep/a.txt",
        "keep/b.log",
        "other.txt",
    ]

    out2 = tmp_path / "filtered"
    repo.ok("restore", "latest", "--to", out2, "--include", "*.txt", "--exclude", "other.txt")
    files = sorted(p.name for p in out2.rglob("*") if p.is_file())
    assert files == ["a.txt", "top.txt"]


def test_ls_and_dump(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    payload = os.urandom(2_500_000)
    (src / "sub" / "data.bin").write_bytes(payload)
    (src / "readme").write_text("read me\n")
    os.symlink("readme", src / "link")
    snap = repo.ok("snapshot", src).out.strip()
    assert len(snap) == 64

    top = repo.ok("ls", snap[:8], str(src)).out.splitlines()
    assert top == [f"{src}/link", f"{src}/readme", f"{src}/sub"]
    rec = repo.ok("ls", "latest", str(src), "--recursive").out.splitlines()
    assert f"{src}/sub/data.bin" in rec
    long = repo.ok("ls", "latest", str(src), "--long").out
    assert f"{src}/link -> readme" in long
    entries = repo.ok("ls", "latest", str(src / "sub"), "--json").json()
    assert entries[0]["size"] == len(payload) and entries[0]["type"] == "file"

    dumped = repo.ok("dump", "latest", str(src / "sub" / "data.bin")).stdout_bytes
    assert dumped == payload

    missing = repo("dump", "latest", str(src / "nope"))
    assert missing.code == 1 and "not in snapshot" in missing.err


def test_snapshot_ids_prefixes_and_targets(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")
    first = repo.ok("snapshot", src, "--tag", "daily", "--json").json()
    second = repo.ok("snapshot", src, "--target", "work", "--json").json()
    assert first["target"] == "default" and second["target"] == "work"
    listed = repo.ok("snapshots", "--json").json()
    assert {s["id"] for s in listed} == {first["id"], second["id"]}
    assert [s["tags"] for s in listed if s["id"] == first["id"]] == [["daily"]]
    only_work = repo.ok("snapshots", "--target", "work", "--json").json()
    assert [s["id"] for s in only_work] == [second["id"]]
    # `latest` follows --target; too-short prefixes are refused
    assert repo.ok("ls", "latest", "--target", "work", str(src)).out.strip() == f"{src}/f"
    assert repo("ls", "abc", str(src)).code == 1
    bad_target = repo("snapshot", src, "--target", "Bad/Name")
    assert bad_target.code == 1 and "invalid target name" in bad_target.err


def test_smoke_in_real_processes(cli: Cli, tmp_path: Path) -> None:
    """The other tests run the command line in the test process; this one
    runs the installed entry point as separate processes, as a user does:
    init, snapshot, list, browse, restore, check, with their exit codes."""
    src = tmp_path / "src"
    build_fidelity_tree(src)
    assert cli("init", process=True).code == 0
    made = cli.ok("snapshot", src, "--json", process=True).json()
    assert made["files_new"] >= 15 and made["errors"] == []
    listed = cli.ok("snapshots", "--json", process=True).json()
    assert [s["id"] for s in listed] == [made["id"]]
    assert cli.ok("dump", "latest", src / "small.txt", process=True).out == "hello neostore\n" * 100
    out = tmp_path / "out"
    cli.ok("restore", made["id"][:8], "--to", out, process=True)
    assert describe(out / str(src).lstrip("/")) == describe(src)
    assert cli.ok("check", "--read-data", process=True).out.startswith("no errors")
    assert cli("snapshots", password="wrong", process=True).code == 12
    assert cli("ls", "latest", "/no/such/path", process=True).code == 1
    assert cli("restore", "latest", process=True).code == 2  # --to is missing


def test_a_restore_leaves_no_directory_open(repo: Cli, tmp_path: Path) -> None:
    """Every directory fd the restore opened is closed when it returns (a
    directory whose files were queued but not yet handed to a worker was
    once finished early, opened again by its subdirectory, and kept)."""
    src = tmp_path / "src"
    (src / "deep" / "sub").mkdir(parents=True)
    (src / "deep" / "sub" / "leaf.txt").write_text("leaf")
    (src / "top.txt").write_text("top")
    repo.ok("snapshot", src)
    out = tmp_path / "out"

    def open_below_out() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(out)):
                found.append(target)
        return found

    repo.ok("restore", "latest", "--to", out)
    assert (out / str(src).lstrip("/") / "deep" / "sub" / "leaf.txt").read_text() == "leaf"
    assert open_below_out() == []


def test_hard_links_follow_the_file_they_name_when_a_neighbour_fails(
    repo: Cli, tmp_path: Path
) -> None:
    """A worker answers for a batch directory by directory; a folder's files
    queued before and after a sub-folder's must still get their own
    answers. Before 097b5d2 ``b1`` took ``c2``'s failure, so the hard link
    to it was made as a separate file."""
    src = tmp_path / "src"
    (src / "A" / "b").mkdir(parents=True)
    (src / "d").mkdir()
    (src / "A" / "a1").write_text("a1")
    (src / "A" / "b" / "b1").write_text("b1")
    (src / "A" / "c2").write_text("c2")
    os.link(src / "A" / "b" / "b1", src / "d" / "link")
    repo.ok("snapshot", src)
    out = tmp_path / "out"
    root = out / str(src).lstrip("/")
    (root / "A" / "c2").mkdir(parents=True)  # a folder in the way: c2 fails
    (root / "A" / "c2" / "keep").write_text("in the way")
    done = repo("restore", "latest", "--to", out)
    assert done.code == 1 and "A/c2: cannot create" in done.err
    assert (root / "A" / "b" / "b1").read_text() == "b1"
    assert (root / "d" / "link").stat().st_ino == (root / "A" / "b" / "b1").stat().st_ino
