"""``neostore rewrite --exclude`` (issue 20, item 6): new snapshots without
a file backed up by mistake, in the old one's place; with ``--forget`` the
originals go, and after ``prune`` the file's data is gone from the store.
Share holders see the rewritten snapshots; keys that may not are refused."""

from __future__ import annotations

import json
from pathlib import Path

from neostore.commandline import ExitCode

from conftest import Cli, data_blob_count


def _history(repo: Cli, src: Path) -> list[str]:
    (src / "shared").mkdir(parents=True)
    (src / "shared" / "deck.txt").write_text("slides\n")
    (src / "shared" / ".env").write_text("API_KEY=" + "s3cr3t" * 1000 + "\n")
    (src / "notes.txt").write_text("notes\n")
    ids = [repo.ok("snapshot", src, "--json").json()["id"]]
    (src / "notes.txt").write_text("more notes\n")
    ids.append(repo.ok("snapshot", src, "--json").json()["id"])
    return ids


def test_rewrite_leaves_out_a_secret_and_forget_prune_removes_it(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    ids = _history(repo, src)
    env = {"NEOSTORE_NEW_PASSWORD": "share pw"}
    repo.ok("share", "create", "-t", "default", "--path", f"{src}/shared", extra_env=env)
    repo.ok("share", "sync")
    before = repo.ok("snapshots", "--json").json()
    blobs = data_blob_count(repo.repo)

    dry_run = repo.ok("--progress", "rewrite", "--exclude", ".env", "--dry-run", "--json")
    dry = dry_run.json()
    assert [d["removed"] for d in dry] == [[f"{src}/shared/.env"]] * 2
    # progress (issue 20, item 8): listings read, no total (shared ones count once)
    last = json.loads(dry_run.err.splitlines()[-1])
    assert (last["phase"], last["bytes_total"]) == ("rewrite", None) and last["items_done"] >= 3
    assert repo.ok("snapshots", "--json").json() == before  # nothing changed

    done = repo.ok("rewrite", "--exclude", ".env", "--forget", "--json").json()
    assert [d["old"] for d in done] == ids and all(d["new"] for d in done)
    after = repo.ok("snapshots", "--json").json()
    assert [s["id"] for s in after] == [d["new"] for d in done]  # same places
    assert [s["time"] for s in after] == [s["time"] for s in before]
    assert [s["original"] for s in after] == ids
    for snapshot in after:
        names = [e["path"] for e in repo.ok("ls", snapshot["id"], src, "-R", "--json").json()]
        assert f"{src}/shared/.env" not in names and f"{src}/shared/deck.txt" in names
    assert repo.ok("dump", "latest", f"{src}/notes.txt").out == "more notes\n"
    # the share holder sees the rewritten snapshots, without the secret
    shared = repo.ok("snapshots", "--json", password="share pw").json()
    assert [s["id"] for s in shared] == [d["new"] for d in done]
    listed = repo.ok("ls", "latest", "/shared", "--json", password="share pw").json()
    assert sorted(e["path"].rsplit("/", 1)[-1] for e in listed) == ["deck.txt"]
    # nothing matches now: unchanged, nothing written
    again = repo.ok("rewrite", "--exclude", ".env", "--json").json()
    assert all(d["new"] is None and d["removed"] == [] for d in again)
    # the data goes with the originals once pruned (no other snapshot holds it)
    repo.ok("prune", "--grace", "0s", "--max-unused", "0%")
    repo.ok("prune", "--grace", "0s", "--max-unused", "0%")  # condemned, then deleted
    assert data_blob_count(repo.repo) == blobs - 1  # the secret's one chunk
    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out)
    assert not (out / str(src).lstrip("/") / "shared" / ".env").exists()
    repo.ok("check", "--read-data")


def test_rewrite_needs_a_pattern_and_the_right_key(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    ids = _history(repo, src)
    assert repo("rewrite", ids[0]).code == ExitCode.USAGE
    repo.ok("key", "add", "--role", "read-write", "--target", "default",
            extra_env={"NEOSTORE_NEW_PASSWORD": "rw pw"})  # fmt: skip
    refused = repo("rewrite", "--exclude", ".env", "--forget", password="rw pw")
    assert refused.code == ExitCode.PERMISSION and "owner" in refused.err
    # a read-write key may rewrite; its replacements stand beside the originals
    kept = repo("rewrite", ids[1], "--exclude", "notes.txt", "--json", password="rw pw")
    assert kept.code == 0, kept.err
    assert len(repo.ok("snapshots", "--json").json()) == 3
    repo.ok("key", "add", "--role", "writer", "--target", "default",
            extra_env={"NEOSTORE_NEW_PASSWORD": "w pw"})  # fmt: skip
    blind = repo("rewrite", "--exclude", ".env", password="w pw")
    assert blind.code == ExitCode.PERMISSION
