"""``neostore copy`` between repositories with different passwords and keys:
content is cut again for the destination, only missing chunks travel, and
snapshots copied before are skipped."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from neostore.commandline import ExitCode as exitcodes
from neostore.snapshots.catalog import list_snapshots, save_snapshot
from neostore.snapshots.lookup import find_snapshot

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


def _writer_key(repo: Cli, password: str, new: str) -> None:
    """Add a put-only writer key for the default target, password ``new``."""
    env = {"NEOSTORE_NEW_PASSWORD": new}
    repo.ok(
        "key", "add", "--role", "writer", "--target", "default", password=password, extra_env=env
    )


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
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.lifecycle import copy as copier

    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    _source_tree(src)
    one.ok("snapshot", src, password="first password")
    _writer_key(two, "second password", "writer password")
    monkeypatch.setattr(copier, "IN_MEMORY", 0)
    source = Repository.open(LocalBackend(str(one.repo)), b"first password")
    writer = Repository.open(LocalBackend(str(two.repo)), b"writer password")
    snapshots = list_snapshots(source, "default")
    done = copier.Copier(source, writer, "default").run(snapshots)
    assert [d.snapshot_id is not None for d in done] == [True]
    again = copier.Copier(source, writer, "default").run(snapshots)
    assert [d.snapshot_id for d in again] == [None]
    listed = two.ok("snapshots", "--json", password="second password").json()
    assert [r["id"] for r in listed] == [done[0].snapshot_id.hex()]  # type: ignore[union-attr]
    two.ok("check", "--read-data", password="second password")
    out = _restore(two, "latest", tmp_path / "out", "second password")
    assert_same_tree(src, out / str(src).lstrip("/"))


def test_copy_map_is_keyed_by_verified_content(cli: Cli, tmp_path: Path) -> None:
    """A leaked writer key of the source plants other content under a real
    blob id, in a snapshot copied first. The real file must not be copied
    as that content (found by review: the map was keyed by blob ids)."""
    import time

    from neostore.backend import LocalBackend
    from neostore.core.packer import Packer
    from neostore.core.repository import Repository
    from neostore.format import crypto
    from neostore.format.blob import Ref, encrypt_blob, make_ref
    from neostore.format.manifest import Manifest
    from neostore.format.targets import DATA, TREE
    from neostore.format.tree import FILE, Node, encode_tree
    from neostore.lifecycle.copy import Copier

    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"REAL CONTENT " * 10)
    real_id = one.ok("snapshot", src, "--json", password="first password").json()["id"]
    _writer_key(one, "first password", "leaked")
    owner = Repository.open(LocalBackend(str(one.repo)), b"first password")
    owner.load_index()
    nodes = {}
    refs = find_snapshot(owner, real_id, None).manifest.root
    while refs:  # down the path to the file
        listing = owner.blobs.load_tree(refs)
        refs = listing[0].subtree
        nodes[listing[0].name] = listing[0]
    real = nodes[b"f"].content[0]

    leaked = Repository.open(LocalBackend(str(one.repo)), b"leaked")
    leaked.load_index()
    record = leaked.target("default")
    domain = leaked.domain(record)
    evil = b"X" * real.length
    planted = Ref(real.blob_id, b"k" * 32, crypto.content_hash(evil), len(evil))
    packer = Packer(leaked, record, domain, leaked.writer)
    packer.add_stored(DATA, real.blob_id, encrypt_blob(leaked.repo_id, DATA, planted, evil))
    listing_bytes = encode_tree(
        [Node(b"evil", FILE, mode=0o100644, size=len(evil), content=[planted])]
    )
    root = make_ref(domain, TREE, listing_bytes)
    packer.add(TREE, root, listing_bytes)
    packer.flush()
    packer.close()
    manifest = Manifest(
        repo_id=leaked.repo_id,
        target_id=record.target_id,
        writer_id=leaked.writer.writer_id,
        epoch=domain.epoch,
        seq=1,
        prev=None,
        time_ns=time.time_ns(),
        host="h",
        user="u",
        paths=[b"/evil"],
        tags=[],
        parent=None,
        root=[root],
    )
    evil_id = save_snapshot(leaked, record, manifest)

    source = Repository.open(LocalBackend(str(one.repo)), b"first password")
    by_id = {i.snapshot_id: i for i in list_snapshots(source, "default")}
    dest = Repository.open(LocalBackend(str(two.repo)), b"second password")
    done = Copier(source, dest, "default").run([by_id[evil_id], by_id[bytes.fromhex(real_id)]])
    copied = done[1].snapshot_id
    assert copied is not None
    dumped = two.ok("dump", copied.hex(), str(src / "f"), password="second password")
    assert dumped.stdout_bytes == (src / "f").read_bytes()


def test_copy_skips_only_copies_it_can_trust(cli: Cli, tmp_path: Path) -> None:
    """A leaked put-only writer key of the destination signs an empty
    manifest claiming to be the copy of a source snapshot: copy must still
    copy it (found by review)."""
    import time

    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.format.manifest import Manifest

    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    _source_tree(src)
    source_id = one.ok("snapshot", src, "--json", password="first password").json()["id"]
    _writer_key(two, "second password", "leaked")
    source = Repository.open(LocalBackend(str(one.repo)), b"first password")
    leaked = Repository.open(LocalBackend(str(two.repo)), b"leaked")
    record = leaked.target("default")
    claim = Manifest(
        repo_id=leaked.repo_id,
        target_id=record.target_id,
        writer_id=leaked.writer.writer_id,
        epoch=leaked.domain(record).epoch,
        seq=1,
        prev=None,
        time_ns=time.time_ns(),
        host="h",
        user="u",
        paths=[b"/"],
        tags=[],
        parent=None,
        root=[],
        original=bytes.fromhex(source_id),
        original_repo=source.repo_id,
    )
    save_snapshot(leaked, record, claim)
    done = _copy(two, one)
    assert [r["skipped"] for r in done["snapshots"]] == [False]
    copied = done["snapshots"][0]["id"]
    out = _restore(two, copied, tmp_path / "out", "second password")
    assert_same_tree(src, out / str(src).lstrip("/"))
    # the owner's own copy counts
    assert [r["skipped"] for r in _copy(two, one)["snapshots"]] == [True]


def test_copy_between_two_repositories_on_a_server(
    neoserver: Any, cli: Cli, tmp_path: Path
) -> None:
    """Over real HTTPS, each side with its own account: the destination's
    token never goes to the source (found by review), so an account with
    rights on one repository only is enough on each side."""
    src = tmp_path / "src"
    _source_tree(src)
    admin = dict(cli.env, **neoserver.client_env())
    one = Cli(dict(admin, NEOSTORE_REPO=neoserver.url("copy-one")), cli.repo)
    one.ok("init", password="first password")
    source_id = one.ok("snapshot", src, "--json", password="first password").json()["id"]
    Cli(dict(admin, NEOSTORE_REPO=neoserver.url("copy-two")), cli.repo).ok(
        "init", password="second password"
    )
    reader = neoserver.account("copy-reader", ("copy-one", "repo", "read"))
    writer = neoserver.account("copy-writer", ("copy-two", "repo", "read,append"))
    env = dict(
        admin,
        NEOSTORE_SERVER_TOKEN=writer,
        NEOSTORE_FROM_SERVER_TOKEN=reader,
        NEOSTORE_FROM_SERVER_FINGERPRINT=neoserver.fingerprint,
        NEOSTORE_FROM_PASSWORD="first password",
        NEOSTORE_REPO=neoserver.url("copy-two"),
    )
    two = Cli(env, cli.repo)
    done = two.ok(
        "copy", "--from-repo", neoserver.url("copy-one"), "--json", password="second password"
    ).json()
    assert [r["source"] for r in done["snapshots"]] == [source_id]
    out = tmp_path / "out"
    two.ok("restore", "latest", "--to", out, password="second password")
    assert_same_tree(src, out / str(src).lstrip("/"))
    # without its own token the source refuses the destination's
    env.pop("NEOSTORE_FROM_SERVER_TOKEN")
    refused = Cli(env, cli.repo)(
        "copy", "--from-repo", neoserver.url("copy-one"), password="second password"
    )
    assert refused.code == exitcodes.FATAL and "copied" not in refused.out
    assert "(401)" in refused.err and "NEOSTORE_FROM_SERVER_TOKEN" in refused.err


def test_copy_streams_its_progress(cli: Cli, tmp_path: Path) -> None:
    """copy --json --progress (issue 20, item 8): the total is what the
    snapshots' files hold, and the last event reaches it."""
    import json

    one, two = _repos(cli, tmp_path)
    src = tmp_path / "src"
    _source_tree(src)
    one.ok("snapshot", src, password="first password")
    done = two(
        "--progress", "copy", "--from-repo", one.repo, "--json",
        password="second password", extra_env={"NEOSTORE_FROM_PASSWORD": "first password"},
    )  # fmt: skip
    assert done.code == 0, done.err
    events = [json.loads(line) for line in done.err.splitlines()]
    last = events[-1]
    assert last["phase"] == "copy" and last["bytes_total"] == SIZE + 2 * len("hello\n")
    assert last["bytes_done"] == last["bytes_total"]
