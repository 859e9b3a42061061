"""Delta restore: ``restore`` into a directory that holds an older copy
fetches only the chunks that differ; ``--overwrite`` and ``--delete``."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from conftest import Cli
from treeutil import assert_same_tree

SMALL_CHUNKS = ("--chunk-min", "4096", "--chunk-avg", "16384", "--chunk-max", "65536")


def _corpus(root: Path, rng: random.Random) -> int:
    root.mkdir(parents=True)
    total = 0
    for n in range(8):
        data = rng.randbytes(512 * 1024)
        (root / f"file{n}.bin").write_bytes(data)
        total += len(data)
    (root / "sub").mkdir()
    (root / "sub" / "notes.txt").write_text("notes\n" * 1000)
    return total + 6000


def _change(root: Path, rng: random.Random) -> None:
    """About 1 % of the bytes: an edit in place, an insertion that shifts
    the rest of a file, a new small file, a removed file."""
    with open(root / "file1.bin", "r+b") as f:
        f.seek(200_000)
        f.write(rng.randbytes(3000))
    data = (root / "file2.bin").read_bytes()
    (root / "file2.bin").write_bytes(data[:100_000] + rng.randbytes(2000) + data[100_000:])
    (root / "sub" / "new.txt").write_text("new\n" * 500)
    (root / "file7.bin").unlink()


def _restore(repo: Cli, snapshot: str, dest: Path, *extra: str, **kw: object) -> dict:
    return repo.ok("restore", snapshot, "--to", dest, "--json", *extra, **kw).json()


def test_delta_restore_fetches_only_what_changed(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init", *SMALL_CHUNKS)
    rng = random.Random(6)
    src = tmp_path / "src"
    total = _corpus(src, rng)
    first = cli.ok("snapshot", src, "--json").json()["id"]
    dest = tmp_path / "dest"
    full = _restore(cli, first, dest)
    assert full["bytes_downloaded"] >= total  # everything travels once
    _change(src, rng)
    second = cli.ok("snapshot", src, "--json").json()["id"]

    delta = _restore(cli, second, dest, "--delete")
    restored = dest / str(src).lstrip("/")
    assert_same_tree(src, restored)
    # the changed chunks only: two edits of a few KB each, in chunks of
    # 4-64 KB, plus the new file
    assert 0 < delta["bytes_downloaded"] < 0.1 * total, delta
    assert delta["bytes_reused"] > 0.8 * total, delta
    assert delta["files_unchanged"] >= 5 and delta["removed"] == 1

    # restoring the same snapshot again fetches nothing at all
    again = _restore(cli, second, dest)
    assert again["bytes_downloaded"] == 0 and again["files"] == 0

    # and back to the first version: file7 comes back, new.txt stays without --delete
    back = _restore(cli, first, dest)
    assert (restored / "file7.bin").exists() and (restored / "sub" / "new.txt").exists()
    assert back["bytes_downloaded"] < 0.3 * total
    back = _restore(cli, first, dest, "--delete")
    assert not (restored / "sub" / "new.txt").exists() and back["removed"] == 1


def test_delta_restore_without_the_chunker_seed(cli: Cli, tmp_path: Path) -> None:
    """A reader key cannot cut files as the repository does (it holds no
    domain secret): it compares at the snapshot's own chunk boundaries, which
    still finds edits in place."""
    cli.ok("init", *SMALL_CHUNKS)
    cli.ok(
        "key",
        "add",
        "--role",
        "reader",
        "--target",
        "default",
        extra_env={"NEOSTORE_NEW_PASSWORD": "reader pw"},
    )
    rng = random.Random(7)
    src = tmp_path / "src"
    total = _corpus(src, rng)
    first = cli.ok("snapshot", src, "--json").json()["id"]
    dest = tmp_path / "dest"
    _restore(cli, first, dest, password="reader pw")
    with open(src / "file3.bin", "r+b") as f:
        f.seek(300_000)
        f.write(b"edited in place" * 10)
    second = cli.ok("snapshot", src, "--json").json()["id"]
    delta = _restore(cli, second, dest, password="reader pw")
    assert_same_tree(src, dest / str(src).lstrip("/"))
    assert 0 < delta["bytes_downloaded"] < 0.05 * total, delta


def test_overwrite_policies(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c", "d"):
        (src / name).write_text(f"snapshot version of {name}\n")
    snap = repo.ok("snapshot", src, "--json").json()["id"]
    dest = tmp_path / "dest"
    _restore(repo, snap, dest)
    here = dest / str(src).lstrip("/")
    old = os.stat(src / "a").st_mtime_ns
    (here / "a").write_text("local change, same size!!!!!\n"[: len("snapshot version of a\n")])
    os.utime(here / "a", ns=(old, old))  # same size and mtime: if-changed trusts it
    (here / "b").write_text("local, newer\n")
    os.utime(here / "b", ns=(old + 10**12, old + 10**12))
    (here / "c").write_text("local, older\n")
    os.utime(here / "c", ns=(old - 10**12, old - 10**12))
    (here / "extra").write_text("not in the snapshot\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("must stay\n")
    (here / "d").unlink()
    (here / "d").symlink_to(outside)

    never = _restore(repo, snap, dest, "--overwrite", "never")
    assert never["files_skipped"] == 4 and (here / "b").read_text() == "local, newer\n"
    newer = _restore(repo, snap, dest, "--overwrite", "if-newer")
    assert (here / "b").read_text() == "local, newer\n"  # newer than the snapshot's
    assert (here / "c").read_text() == "snapshot version of c\n"
    assert newer["files_skipped"] >= 2
    changed = _restore(repo, snap, dest, "--overwrite", "if-changed")
    assert (here / "a").read_text() != "snapshot version of a\n"  # size and mtime agreed
    assert changed["files_skipped"] >= 1
    _restore(repo, snap, dest, "--overwrite", "always")
    for name in ("a", "b", "c", "d"):
        assert (here / name).read_text() == f"snapshot version of {name}\n"
        assert not (here / name).is_symlink()
    assert outside.read_text() == "must stay\n"  # the symlink was replaced, not followed
    assert (here / "extra").exists()
    _restore(repo, snap, dest, "--delete")
    assert not (here / "extra").exists()
    assert repo("restore", snap, "--to", dest, "--overwrite", "sometimes").code == 2


def test_existing_hard_links_and_other_types(repo: Cli, tmp_path: Path) -> None:
    """A destination file hard-linked to a file outside the destination is
    replaced, never changed in place (not even its metadata), and
    --overwrite never also keeps what stands where the snapshot has a
    symlink (found by review)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("same content\n")
    os.chmod(src / "a", 0o644)
    (src / "link").symlink_to("a")
    (src / "dir").mkdir()
    (src / "dir" / "inside").write_text("in the directory\n")
    snap = repo.ok("snapshot", src, "--json").json()["id"]
    dest = tmp_path / "dest"
    _restore(repo, snap, dest)
    here = dest / str(src).lstrip("/")
    outside = tmp_path / "outside"
    outside.write_text("same content\n")  # the content is right: only metadata differs
    os.chmod(outside, 0o600)
    os.utime(outside, ns=(10**18, 10**18))
    (here / "a").unlink()
    os.link(outside, here / "a")
    (here / "link").unlink()
    (here / "link").write_text("a local file where the snapshot has a symlink\n")
    shutil.rmtree(here / "dir")
    (here / "dir").write_text("a local file where the snapshot has a directory\n")

    kept = _restore(repo, snap, dest, "--overwrite", "never")
    assert kept["files_skipped"] == 3
    assert (here / "link").read_text().startswith("a local file")
    assert (here / "dir").read_text().startswith("a local file")
    _restore(repo, snap, dest)
    st = os.stat(outside)
    assert (st.st_mode & 0o777, st.st_mtime_ns, st.st_nlink) == (0o600, 10**18, 1)
    assert os.stat(here / "a").st_mode & 0o777 == 0o644
    assert (here / "link").is_symlink()
    assert (here / "dir" / "inside").read_text() == "in the directory\n"
