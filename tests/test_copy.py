"""``neostore copy`` between repositories with different passwords and keys:
content is cut again for the destination, only missing chunks travel, and
snapshots copied before are skipped."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from neostore_cli import exitcodes

from conftest import Cli
from treeutil import assert_same_tree

SIZE = 3_000_000


def _source_tree(root: Path) -> None:
    rng = random.Random(5)
    (root / "sub").mkdir(parents=True)
    (root / "big.bin").write_bytes(rng.randbytes(SIZE))
    (root / "sub" / "small.txt").write_text("hello\n")
    (root / "sub" / "empty").write_bytes(b"")
    os.link(root / "sub" / "small.txt", root / "sub" / "hardlink")
    os.symlink("small.txt", root / "sub" / "link")


def _repos(cli: Cli, tmp_path: Path) -> tuple[Cli, Cli]:
    one = Cli(cli.env, tmp_path / "one")
    two = Cli(cli.env, tmp_path / "two")
    small = ("--chunk-min", "16384", "--chunk-avg", "65536", "--chunk-max", "262144")
    one.ok("init", *small, password="first password")
    two.ok("init", *small, password="second password")
    return one, two


def _copy(dest: Cli, source: Cli, *args: str, password: str = "second password") -> Any:
    return dest.ok(
        "copy",
        "--from-repo",
        source.repo,
        "--json",
        *args,
        password=password,
        extra_env={"NEOSTORE_FROM_PASSWORD": "first password"},
    ).json()


def _restore(repo: Cli, snapshot: str, to: Path, password: str) -> Path:
    repo.ok("restore", snapshot, "--to", to, password=password)
    return to


def test_copy_between_repositories_with_different_keys(cli: Cli, tmp_path: Path) -> None:
    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    _source_tree(src)
    first = one.ok("snapshot", src, "--tag", "t1", "--json", password="first password").json()
    with open(src / "big.bin", "r+b") as f:  # 1 KiB changed in the middle
        f.seek(SIZE // 2)
        f.write(random.Random(9).randbytes(1024))
    second = one.ok("snapshot", src, "--json", password="first password").json()

    done = _copy(two, one, first["id"])
    assert [r["source"] for r in done["snapshots"]] == [first["id"]]
    assert done["stats"]["bytes_read"] >= SIZE and done["stats"]["bytes_added"] > SIZE // 2
    # the next snapshot: only the changed file is read, only its new chunks travel
    more = _copy(two, one)
    assert [r["skipped"] for r in more["snapshots"]] == [True, False]
    stats = more["stats"]
    assert stats["files_known"] >= 2 and stats["bytes_read"] == SIZE
    assert 0 < stats["bytes_added"] < SIZE // 10, stats
    # nothing left to copy
    again = _copy(two, one)
    assert all(r["skipped"] for r in again["snapshots"]) and again["stats"]["bytes_added"] == 0

    listed = two.ok("snapshots", "--json", password="second password").json()
    assert [r["original"] for r in listed] == [first["id"], second["id"]]
    source_rows = one.ok("snapshots", "--json", password="first password").json()
    assert [r["time"] for r in listed] == [r["time"] for r in source_rows]
    assert [r["tags"] for r in listed] == [["t1"], []]
    assert listed[0]["original_repo"] == listed[1]["original_repo"] is not None
    two.ok("check", "--read-data", password="second password")
    for row, source_row in zip(listed, source_rows, strict=True):
        ours = _restore(two, row["id"], tmp_path / f"two-{row['id'][:8]}", "second password")
        theirs = _restore(
            one, source_row["id"], tmp_path / f"one-{row['id'][:8]}", "first password"
        )
        assert_same_tree(theirs, ours)
    assert (
        tmp_path / f"two-{listed[1]['id'][:8]}" / str(src).lstrip("/") / "big.bin"
    ).read_bytes() == (src / "big.bin").read_bytes()

    # a wrong source password changes nothing
    wrong = two(
        "copy",
        "--from-repo",
        one.repo,
        password="second password",
        extra_env={"NEOSTORE_FROM_PASSWORD": "not it"},
    )
    assert wrong.code == exitcodes.WRONG_PASSWORD, wrong.err
    assert two("copy", password="second password").code == exitcodes.USAGE


def test_copy_reuses_the_destinations_own_backup(cli: Cli, tmp_path: Path) -> None:
    """The destination backed up the same files itself: copying uploads
    only listings, because content is cut with the destination's chunker."""
    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    _source_tree(src)
    source_id = one.ok("snapshot", src, "--json", password="first password").json()["id"]
    two.ok("snapshot", src, password="second password")
    done = _copy(two, one, source_id)
    assert done["stats"]["bytes_read"] >= SIZE  # read: the first copy has no map
    assert done["stats"]["bytes_added"] < SIZE // 50, done["stats"]
    two.ok("check", "--read-data", password="second password")


def test_copy_with_a_put_only_writer_and_a_stream_cut(
    cli: Cli, tmp_path: Path, monkeypatch: Any
) -> None:
    """A writer key cannot list the destination's snapshots: it skips what
    it copied before by its own record. Through the library, with every
    file cut as a stream (the path for files over 64 MiB)."""
    from neostore import copier
    from neostore.backend import LocalBackend
    from neostore.repository import Repository

    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    _source_tree(src)
    one.ok("snapshot", src, password="first password")
    two.ok(
        "key",
        "add",
        "--role",
        "writer",
        "--target",
        "default",
        password="second password",
        extra_env={"NEOSTORE_NEW_PASSWORD": "writer password"},
    )
    monkeypatch.setattr(copier, "IN_MEMORY", 0)
    source = Repository.open(LocalBackend(str(one.repo)), b"first password")
    writer = Repository.open(LocalBackend(str(two.repo)), b"writer password")
    snapshots = source.list_snapshots("default")
    done = copier.Copier(source, writer, "default").run(snapshots)
    assert [d.snapshot_id is not None for d in done] == [True]
    again = copier.Copier(source, writer, "default").run(snapshots)
    assert [d.snapshot_id for d in again] == [None]
    listed = two.ok("snapshots", "--json", password="second password").json()
    assert [r["id"] for r in listed] == [done[0].snapshot_id.hex()]  # type: ignore[union-attr]
    two.ok("check", "--read-data", password="second password")
    out = _restore(two, "latest", tmp_path / "out", "second password")
    assert_same_tree(src, out / str(src).lstrip("/"))
