"""``neostore tag``: a changed snapshot is a new manifest that keeps the old
one's time and place, and the old one is forgotten by the owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neostore.commandline import ExitCode
from neostore.snapshots.lookup import find_snapshot

from conftest import PASSWORD, Cli


def _three(repo: Cli, src: Path) -> list[str]:
    src.mkdir()
    ids = []
    for n in range(3):
        (src / "f.txt").write_text(f"version {n}\n")
        ids.append(repo.ok("snapshot", src, "--json").json()["id"])
    return ids


def test_tag_keeps_order_content_and_chains(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    ids = _three(repo, src)
    before = {s["id"]: s for s in repo.ok("snapshots", "--json").json()}
    done = repo.ok("tag", ids[1][:8], "--add", "a,b", "--add", "c", "--json").json()
    assert len(done) == 1 and done[0]["old"] == ids[1] and done[0]["tags"] == ["a", "b", "c"]
    middle = done[0]["new"]
    assert middle != ids[1]
    listed = repo.ok("snapshots", "--json")
    rows = listed.json()
    # same place in the history (the rewrite must not become `latest`)
    assert [r["id"] for r in rows] == [ids[0], middle, ids[2]]
    assert "warning" not in listed.err
    row = rows[1]
    assert row["tags"] == ["a", "b", "c"] and row["original"] == ids[1]
    assert row["time"] == before[ids[1]]["time"] and row["paths"] == before[ids[1]]["paths"]
    assert row["rewritten"] is not None
    assert repo.ok("dump", "latest", str(src / "f.txt")).out == "version 2\n"
    assert repo.ok("dump", middle, str(src / "f.txt")).out == "version 1\n"
    # the old id is gone, legitimately: no tampering warnings, check passes
    assert repo("dump", ids[1], str(src / "f.txt")).code == ExitCode.FATAL
    repo.ok("check", "--read-data")

    # a second change keeps pointing at the first version; --set replaces
    again = repo.ok("tag", middle, "--remove", "a", "--json").json()[0]
    assert again["tags"] == ["b", "c"]
    rows = repo.ok("snapshots", "--json").json()
    assert rows[1]["id"] == again["new"] and rows[1]["original"] == ids[1]
    replaced = repo.ok("tag", again["new"], "--set", "x", "--json").json()[0]
    assert replaced["tags"] == ["x"]
    # nothing to change: same id, nothing written
    same = repo.ok("tag", replaced["new"], "--add", "x", "--json").json()[0]
    assert same["old"] == same["new"] == replaced["new"]
    assert len(repo.ok("snapshots", "--json").json()) == 3

    # tagging the newest keeps it the newest, and forget sees the new tags
    newest = repo.ok("tag", "latest", "--add", "keep", "--json").json()[0]["new"]
    rows = repo.ok("snapshots", "--json").json()
    assert rows[-1]["id"] == newest
    plan = repo.ok("forget", "--keep-tag", "keep", "--dry-run", "--json").json()
    assert plan[0]["keep"] == [newest]

    # a snapshot made after the rewrites follows them in the chain
    (src / "f.txt").write_text("version 3\n")
    later = repo.ok("snapshot", src, "--json").json()["id"]
    listed = repo.ok("snapshots", "--json")
    assert listed.json()[-1]["id"] == later and "warning" not in listed.err
    repo.ok("check")


def test_tag_is_for_owners_and_needs_a_change(repo: Cli, tmp_path: Path) -> None:
    ids = _three(repo, tmp_path / "src")
    assert repo("tag", ids[0]).code == ExitCode.USAGE
    env = {"NEOSTORE_NEW_PASSWORD": "rw pw"}
    repo.ok("key", "add", "--role", "read-write", "--target", "default", extra_env=env)
    refused = repo("tag", ids[0], "--add", "x", password="rw pw")
    assert refused.code == ExitCode.PERMISSION, refused.err
    assert "owner" in refused.err
    assert [s["tags"] for s in repo.ok("snapshots", "--json").json()] == [[], [], []]


def test_shares_follow_tags_and_forgets(repo: Cli, tmp_path: Path) -> None:
    """A share holder sees a tagged snapshot once, with its new tags, and
    no longer sees forgotten ones, without taking either for a store hiding
    snapshots: the owner withdraws their capabilities with a signed record
    first. A withdrawn capability that is still there (an interrupted
    forget) stays hidden."""
    import shutil

    src = tmp_path / "src"
    (src / "shared").mkdir(parents=True)
    ids = []
    for n in range(3):
        (src / "shared" / "deck.txt").write_text(f"slides v{n}\n")
        ids.append(repo.ok("snapshot", src, "--json").json()["id"])
    env = {"NEOSTORE_NEW_PASSWORD": "share pw"}
    repo.ok("share", "create", "-t", "default", "--path", f"{src}/shared", extra_env=env)
    repo.ok("share", "sync")

    def seen() -> list[dict[str, object]]:
        listed = repo.ok("snapshots", "--json", password="share pw")
        assert "warning" not in listed.err, listed.err
        rows: list[dict[str, object]] = listed.json()
        return rows

    assert [r["id"] for r in seen()] == ids
    newest = repo.ok("tag", "latest", "--add", "final", "--json").json()[0]["new"]
    rows = seen()
    assert [r["id"] for r in rows] == [*ids[:2], newest] and rows[-1]["tags"] == ["final"]
    caps = repo.repo / "shares" / next(p.name for p in (repo.repo / "shares").iterdir())
    before = {p.name: p.read_bytes() for p in caps.iterdir()}
    repo.ok("forget", ids[0])
    assert [r["id"] for r in seen()] == [ids[1], newest]
    dumped = repo.ok("dump", "latest", "/shared/deck.txt", password="share pw")
    assert dumped.out == "slides v2\n"
    # an interrupted forget: the withdrawn capability is back in the store
    for name, data in before.items():
        if not (caps / name).exists():
            (caps / name).write_bytes(data)
    assert [r["id"] for r in seen()] == [ids[1], newest]
    # a name that is no capability at all is skipped (found by review: crashed)
    (caps / "not-a-capability.txt").write_text("junk")
    assert [r["id"] for r in seen()] == [ids[1], newest]
    # the store hides a replacement but keeps the withdrawal of what it
    # replaced: called out, since the withdrawal names its replacement
    # (the holder last saw `newest`; it does not look in between)
    repo.ok("tag", "latest", "--add", "again")
    by_age = sorted(caps.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    by_age[-2].unlink()  # published just before the old version's withdrawal
    hidden = repo("snapshots", "--json", password="share pw")
    assert hidden.code == ExitCode.TAMPERED and [r["id"] for r in hidden.json()] == [ids[1]]
    assert "rolled back or hidden" in hidden.err
    # a capability deleted without a withdrawal is still called out
    shutil.rmtree(caps)
    caps.mkdir()
    hidden = repo("snapshots", "--json", password="share pw")
    assert hidden.code == ExitCode.TAMPERED and "rolled back or hidden" in hidden.err


def test_interrupted_forgets_and_revoked_shares(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: (1) a tag whose withdrawal failed, finished by
    `share sync`, must still name the replacement, or the store can hide it
    from a holder; (2) `share sync` after an interrupted forget must not
    publish the forgotten snapshots again; (3) a revoked share's holder,
    which gets no replacement, must not see a tag as a rollback."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.errors import NeostoreError
    from neostore.format.shares import cap_name
    from neostore.lifecycle import forget as forgetting
    from neostore.lifecycle import rewrite

    src = tmp_path / "src"
    (src / "shared").mkdir(parents=True)
    ids = []
    for n in range(3):
        (src / "shared" / "deck.txt").write_text(f"slides v{n}\n")
        ids.append(repo.ok("snapshot", src, "--json").json()["id"])
    for name in ("first", "second"):
        env = {"NEOSTORE_NEW_PASSWORD": f"{name} pw"}
        repo.ok(
            "share",
            "create",
            "-t",
            "default",
            "--path",
            f"{src}/shared",
            "--name",
            name,
            extra_env=env,
        )
    repo.ok("share", "sync")
    for name in ("first", "second"):
        assert len(repo.ok("snapshots", "--json", password=f"{name} pw").json()) == 3
    repo.ok("share", "revoke", "second")

    def failing(*args: Any, **kwargs: Any) -> int:
        raise NeostoreError("store unavailable")

    owner = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    problems: list[NeostoreError] = []
    owner.on_problem = problems.append  # the library's default raises
    monkeypatch.setattr(forgetting, "withdraw", failing)
    with pytest.raises(NeostoreError, match="run forget again"):
        rewrite.tag(owner, [find_snapshot(owner, "latest", None)], ["final"], [])
    with pytest.raises(NeostoreError, match="run forget again"):
        forgetting.forget(owner, owner.target("default"), [find_snapshot(owner, ids[0], None)])
    assert ["interrupted forget" in str(p) for p in problems] == [True]
    monkeypatch.undo()
    # the signed record is the forget's commit point: the snapshots it names
    # are not listed any more, though their objects are still there
    listed = repo.ok("snapshots", "--json")
    assert len(listed.json()) == 2 and listed.err.count("interrupted forget") == 2
    assert len(list((repo.repo / "snapshots" / "default").iterdir())) == 4

    for _ in range(2):  # the forgotten ones are withdrawn, never published again
        assert "published 0" in repo.ok("share", "sync").out
    revoked = repo.ok("snapshots", "--json", password="second pw")
    assert "rolled back" not in revoked.err
    # the holder of "first" last saw the old version; the store hides the
    # replacement: the old version's withdrawal names it, so it shows
    final = next(r["id"] for r in repo.ok("snapshots", "--json").json() if r["tags"] == ["final"])
    holder = Repository.open(LocalBackend(str(repo.repo)), b"first pw")
    share_id = holder.share_secrets.share_id
    assert share_id is not None
    hidden = repo.repo / "shares" / "first" / cap_name(share_id, bytes.fromhex(final))
    kept = hidden.read_bytes()
    hidden.unlink()
    rolled = repo("snapshots", password="first pw")
    assert rolled.code == ExitCode.TAMPERED and "rolled back or hidden" in rolled.err
    hidden.write_bytes(kept)
    rows = repo.ok("snapshots", "--json", password="first pw")
    assert "warning" not in rows.err
    assert [r["tags"] for r in rows.json()] == [[], ["final"]]
