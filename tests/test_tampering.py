"""Attacks on a repository's history, through the CLI: snapshots put back
after the owner forgot them, and what every command does when it finds
tampering (exit 14 after doing what is still safe)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from neostore.commandline import ExitCode

from conftest import PASSWORD, Cli


def _snapshots(repo: Cli, src: Path, count: int) -> list[str]:
    ids = []
    for n in range(count):
        (src / "f.txt").write_text(f"version {n}\n")
        ids.append(repo.ok("snapshot", src, "--json").json()["id"])
    return ids


def _ids(result: object) -> list[str]:
    return [row["id"] for row in result.json()]  # type: ignore[attr-defined]


def test_a_forgotten_snapshot_put_back_is_never_used_again(repo: Cli, tmp_path: Path) -> None:
    """The store (or the writer whose snapshot it was) keeps a copy of a
    snapshot object and puts it back after the owner forgot it."""
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 3)
    kept = tmp_path / "kept"
    shutil.copy(repo.repo / "snapshots" / "default" / ids[2], kept)
    repo.ok("forget", ids[2])  # the newest, so the one put back would be `latest`
    shutil.copy(kept, repo.repo / "snapshots" / "default" / ids[2])

    listed = repo("snapshots", "--json")
    assert listed.code == ExitCode.TAMPERED and _ids(listed) == ids[:2]
    assert f"snapshot {ids[2][:12]} was forgotten by the owner and is back" in listed.err
    checked = repo("check", "--json")
    assert checked.code == ExitCode.TAMPERED and not checked.json()["errors"]
    assert any(ids[2][:12] in t for t in checked.json()["tampering"])
    out = tmp_path / "out"
    restored = repo("restore", "latest", "--to", out)  # the snapshot before it
    assert restored.code == ExitCode.TAMPERED
    assert (out / src.relative_to("/") / "f.txt").read_text() == "version 1\n"
    named = repo("dump", ids[2][:12], str(src / "f.txt"))
    assert named.code == ExitCode.TAMPERED and named.out == "" and "back in the store" in named.err

    # a machine that never saw it gone cannot tell a put-back from a forget
    # killed before its deletes: it still never lists it, and says why
    fresh = {"NEOSTORE_STATE_DIR": str(tmp_path / "fresh-state")}
    other = repo("snapshots", "--json", extra_env=fresh)
    assert other.code == 0 and _ids(other) == ids[:2]
    assert "named in the owner's forget record but still in the store" in other.err

    # the store deletes the forget record as well: this machine remembers
    record = next((repo.repo / "forget" / "default").iterdir())
    saved_record = record.read_bytes()
    record.unlink()
    remembered = repo("snapshots", "--json")
    assert remembered.code == ExitCode.TAMPERED and _ids(remembered) == ids[:2]
    assert "forget records for 1 snapshot(s) this machine saw forgotten are missing" in (
        remembered.err
    )
    record.write_bytes(saved_record)

    # the owner's prune completes the forget; then all is quiet again
    pruned = repo.ok("prune")
    assert "remove 1 forgotten snapshot(s) still in the store" in pruned.out
    assert not (repo.repo / "snapshots" / "default" / ids[2]).exists()
    clean = repo.ok("snapshots", "--json")
    assert _ids(clean) == ids[:2] and clean.err == ""
    assert repo.ok("check", "--json").json()["ok"]


def test_restore_by_id_checks_the_chains(repo: Cli, tmp_path: Path) -> None:
    """Naming a snapshot no longer skips the chain check: the store hid
    another snapshot, so the command restores the one asked for (it is
    authentic) and then exits 14 naming what it found."""
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 3)
    (repo.repo / "snapshots" / "default" / ids[1]).unlink()
    out = tmp_path / "out"
    restored = repo("restore", ids[0][:12], "--to", out)
    assert restored.code == ExitCode.TAMPERED
    assert (out / src.relative_to("/") / "f.txt").read_text() == "version 0\n"
    assert f"snapshot {ids[2][:12]} follows a snapshot that is missing" in restored.err
    assert "tampering detected (1 finding(s) above)" in restored.err
    # the JSON of a command is unchanged by the finding (it goes to stderr)
    listed = repo("snapshots", "--json")
    assert listed.code == ExitCode.TAMPERED and _ids(listed) == [ids[0], ids[2]]


def test_copy_reports_tampering_in_its_source(repo: Cli, cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 3)
    (repo.repo / "snapshots" / "default" / ids[1]).unlink()
    dest = Cli(cli.env, tmp_path / "dest")
    dest.ok("init")
    source_password = {"NEOSTORE_FROM_PASSWORD": PASSWORD}
    copied = dest("copy", "--from-repo", repo.repo, "--json", extra_env=source_password)
    assert copied.code == ExitCode.TAMPERED
    report = copied.json()
    assert len(report["snapshots"]) == 2 and not report["problems"]
    assert any("missing from the repository" in t for t in report["tampering"])


def test_a_withdrawn_share_capability_put_back_stays_withdrawn(repo: Cli, tmp_path: Path) -> None:
    """A share holder cannot read forget records; it trusts the owner's
    withdrawals, and remembers them: a store that deletes a withdrawal and
    puts the capability back is caught."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.format.shares import cap_name, withdrawal_name

    src = tmp_path / "src"
    (src / "shared").mkdir(parents=True)
    ids = []
    for n in range(2):
        (src / "shared" / "deck.txt").write_text(f"slides v{n}\n")
        ids.append(repo.ok("snapshot", src, "--json").json()["id"])
    new_password = {"NEOSTORE_NEW_PASSWORD": "share pw"}
    repo.ok(
        "share",
        "create",
        "-t",
        "default",
        "--path",
        src / "shared",
        "--name",
        "deck",
        extra_env=new_password,
    )
    repo.ok("share", "sync")
    holder = Repository.open(LocalBackend(str(repo.repo)), b"share pw")
    share_id = holder.share_secrets.share_id
    assert share_id is not None
    cap = cap_name(share_id, bytes.fromhex(ids[0]))
    kept = (repo.repo / "shares" / "deck" / cap).read_bytes()
    repo.ok("forget", ids[0])
    assert len(repo.ok("snapshots", "--json", password="share pw").json()) == 1
    (repo.repo / "shares" / "deck" / withdrawal_name(share_id, cap)).unlink()
    (repo.repo / "shares" / "deck" / cap).write_bytes(kept)
    listed = repo("snapshots", "--json", password="share pw")
    assert listed.code == ExitCode.TAMPERED and len(listed.json()) == 1
    assert "the owner withdrew are back" in listed.err
    dumped = repo("dump", "latest", "/shared/deck.txt", password="share pw")
    assert dumped.out == "slides v1\n" and dumped.code == ExitCode.TAMPERED


YEAR_NS = 365 * 24 * 3600 * 10**9


def test_a_future_dated_snapshot_never_overtakes_later_ones(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certified writer whose clock says ten years from now (or a leaked
    key lying on purpose) makes a snapshot: it must not stay `latest` once
    other writers made snapshots after it — not when this machine's clock
    passes the claimed time either, and not on a machine that first sees
    it years later."""
    import time

    real_time_ns = time.time_ns
    src = tmp_path / "src"
    src.mkdir()
    writers = {}
    for name in ("skewed", "honest"):
        env = {"NEOSTORE_NEW_PASSWORD": f"{name} pw"}
        repo.ok("key", "add", "--role", "writer", "--target", "default", extra_env=env)
        writers[name] = f"{name} pw"

    def snapshot(content: str, password: str) -> str:
        (src / "f.txt").write_text(content)
        return repo.ok("snapshot", src, "--json", password=password).json()["id"]

    first = snapshot("owner's first\n", PASSWORD)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 10 * YEAR_NS)
    future = snapshot("from the future\n", writers["skewed"])
    monkeypatch.undo()
    listed = repo.ok("snapshots", "--json")
    assert _ids(listed) == [first, future]  # the newest there is, for now
    assert "claims a time in the future" in listed.err and "first saw it" in listed.err
    by_writer = snapshot("honest writer, after it\n", writers["honest"])  # put-only: names
    by_owner = snapshot("owner, after both\n", PASSWORD)  # reads: names each writer's newest
    order = [first, future, by_writer, by_owner]
    assert _ids(repo.ok("snapshots", "--json")) == order
    dumped = repo.ok("dump", "latest", str(src / "f.txt"))
    assert dumped.out == "owner, after both\n"

    # eleven years on, here and on a machine that never saw it in the future
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 11 * YEAR_NS)
    assert _ids(repo.ok("snapshots", "--json")) == order
    fresh = {"NEOSTORE_STATE_DIR": str(tmp_path / "fresh-state")}
    assert _ids(repo.ok("snapshots", "--json", extra_env=fresh)) == order
    monkeypatch.undo()
    elsewhere = repo.ok("snapshots", "--json", extra_env=fresh)
    assert _ids(elsewhere) == order and "by the snapshots known to follow it" in elsewhere.err
    checked = repo("check", "--json")
    assert checked.code == 0 and any(
        "claims a time in the future" in w for w in checked.json()["warnings"]
    )

    # a retention policy goes by the same order: the future one is not "last"
    kept = repo.ok("forget", "--keep-last", "1", "--dry-run", "--json").json()
    assert [g["keep"] for g in kept] == [[by_owner]]


def test_share_holders_order_a_future_dated_snapshot_alike(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A share key cannot trust the writer and seq a capability claims, but
    the ``after`` list it carries orders a future-dated snapshot all the
    same, on any machine and at any time."""
    import time

    real_time_ns = time.time_ns
    src = tmp_path / "src"
    (src / "shared").mkdir(parents=True)
    new = {"NEOSTORE_NEW_PASSWORD": "skewed pw"}
    repo.ok("key", "add", "--role", "writer", "--target", "default", extra_env=new)
    new = {"NEOSTORE_NEW_PASSWORD": "share pw"}
    repo.ok("share", "create", "-t", "default", "--path", src / "shared", extra_env=new)

    def snapshot(content: str, password: str) -> str:
        (src / "shared" / "f.txt").write_text(content)
        return repo.ok("snapshot", src, "--json", password=password).json()["id"]

    first = snapshot("first\n", PASSWORD)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 10 * YEAR_NS)
    future = snapshot("from the future\n", "skewed pw")
    monkeypatch.undo()
    last = snapshot("after it\n", PASSWORD)
    holder = {"password": "share pw"}
    assert _ids(repo.ok("snapshots", "--json", **holder)) == [first, future, last]
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 11 * YEAR_NS)
    fresh = {"NEOSTORE_STATE_DIR": str(tmp_path / "fresh-state")}
    later = repo.ok("snapshots", "--json", extra_env=fresh, **holder)
    assert _ids(later) == [first, future, last]
    dumped = repo.ok("dump", "latest", "/shared/f.txt", extra_env=fresh, **holder)
    assert dumped.out == "after it\n"
