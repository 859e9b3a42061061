"""``neostore forget`` through the CLI: policies, ids, dry runs, and the
owner-signed forget records that keep readers from calling it tampering."""

from __future__ import annotations

from pathlib import Path

from neostore.commandline import ExitCode
from neostore.snapshots.lookup import find_snapshot

from conftest import Cli


def _snapshots(repo: Cli, src: Path, count: int, *extra: str) -> list[str]:
    ids = []
    for n in range(count):
        (src / "counter.txt").write_text(f"version {n}\n")
        ids.append(repo.ok("snapshot", src, "--json", *extra).json()["id"])
    return ids


def test_forget_by_policy_is_not_tampering(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("x")
    ids = _snapshots(repo, src, 4)
    tagged = _snapshots(repo, src, 1, "--tag", "keepme")[0]
    newest = _snapshots(repo, src, 1)[0]
    lone = repo.ok("snapshot", other, "--json").json()["id"]  # another group (paths)
    plan = repo.ok("forget", "--keep-last", "2", "--dry-run", "--json").json()
    assert [len(g["remove"]) for g in plan] == [4, 0] or [len(g["remove"]) for g in plan] == [0, 4]
    assert len(repo.ok("snapshots", "--json").json()) == 7  # a dry run removes nothing
    done = repo.ok("forget", "--keep-last", "1", "--keep-tag", "keepme", "--json").json()
    group = next(g for g in done if lone not in g["keep"])
    assert set(group["keep"]) == {newest, tagged} and set(group["remove"]) == set(ids)
    reasons = {r["id"]: r["matches"] for r in group["reasons"]}
    assert reasons[tagged] == ["has tags keepme"] and reasons[newest] == ["last snapshot"]
    listed = repo.ok("snapshots", "--json")
    assert {s["id"] for s in listed.json()} == {newest, tagged, lone}
    assert "missing" not in listed.err and "warning" not in listed.err
    assert len(list((repo.repo / "forget" / "default").iterdir())) == 1
    checked = repo.ok("check", "--read-data", "--json").json()
    assert checked["ok"] and not checked["warnings"], checked
    out = tmp_path / "out"
    repo.ok("restore", newest, "--to", out)
    restored = out / src.relative_to("/") / "counter.txt"
    assert restored.read_text() == "version 0\n"
    # the text form says what is kept and why
    text = repo.ok("forget", "--keep-last", "5", "--dry-run").out
    assert "keep 5 latest snapshots" in text and "last snapshot" in text


def test_forget_by_id_and_the_newest(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 3)
    repo.ok("forget", ids[2][:10])  # the newest this machine has seen
    listed = repo.ok("snapshots", "--json")
    assert [s["id"] for s in listed.json()] == ids[:2] and "warning" not in listed.err
    # `latest` falls back to the one before without calling it a rollback
    assert repo.ok("dump", "latest", str(src / "counter.txt")).out == "version 1\n"
    # the next snapshot's chain links to the forgotten one: still fine
    later = _snapshots(repo, src, 1)[0]
    listed = repo.ok("snapshots", "--json")
    assert [s["id"] for s in listed.json()] == [*ids[:2], later] and "warning" not in listed.err
    assert repo.ok("check").code == 0


def test_removal_without_a_valid_record_is_reported(repo: Cli, tmp_path: Path) -> None:
    """What makes forget legitimate is the owner's signature: a snapshot
    deleted by the store, or "forgotten" by a record someone else signed,
    is reported."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.format import crypto
    from neostore.format.forget import Forgotten, encode_record

    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 3)
    backend = LocalBackend(str(repo.repo))
    owner = Repository.open(backend, b"correct horse battery staple")
    record = owner.target("default")
    victim = find_snapshot(owner, ids[1], None).manifest
    stored = encode_record(
        [Forgotten(bytes.fromhex(ids[1]), victim.writer_id, victim.seq, victim.prev)],
        owner=crypto.SigningKey.generate(),
        repo_id=owner.repo_id,
        record=record,
    )
    backend.save("forget", f"default/{crypto.object_hash(stored).hex()}", stored)
    backend.remove("snapshots", f"default/{ids[1]}")
    listed = repo("snapshots")
    assert listed.code == ExitCode.TAMPERED
    assert "ignored: forget record" in listed.err and "missing from the repository" in listed.err
    checked = repo("check", "--json")
    assert checked.code == ExitCode.TAMPERED
    assert any("missing" in e for e in checked.json()["tampering"])


def test_forget_refusals(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 2)
    empty = repo("forget")
    assert empty.code == 0 and "nothing is removed" in empty.err
    assert len(repo.ok("snapshots", "--json").json()) == 2
    # malformed prune options are refused before anything is forgotten
    assert repo("forget", "--keep-last", "1", "--prune", "--max-unused", "x").code == 2
    assert len(repo.ok("snapshots", "--json").json()) == 2
    assert repo("forget", "--keep-last", "-2").code == 2
    assert repo("forget", ids[0], "--keep-last", "1").code == 2
    assert repo("forget", "--keep-within", "3w").code == 2  # an invalid duration
    assert repo("forget", "--keep-last", "1", "--group-by", "colour").code == 2
    # durations reaching before year 1 keep everything rather than crash
    assert repo.ok("forget", "--keep-within", "3000y", "--json").json()[0]["remove"] == []
    repo.ok(
        "key",
        "add",
        "--role",
        "read-write",
        "--target",
        "default",
        extra_env={"NEOSTORE_NEW_PASSWORD": "rw"},
    )
    denied = repo("forget", "--keep-last", "1", password="rw")
    assert denied.code == 13 and "owner" in denied.err
    assert len(repo.ok("snapshots", "--json").json()) == 2


def test_a_store_cannot_hide_kept_snapshots_behind_forgotten_ones(
    repo: Cli, tmp_path: Path
) -> None:
    """Forgotten snapshots stay in their chain as stand-ins: the snapshot
    kept before a forgotten one cannot disappear unnoticed."""
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots(repo, src, 5)
    repo.ok("forget", ids[1][:12], ids[3][:12])
    clean = repo.ok("snapshots", "--json")
    assert [s["id"] for s in clean.json()] == [ids[0], ids[2], ids[4]] and not clean.err
    stash = tmp_path / "stash"
    stash.mkdir()
    for hidden in (ids[0], ids[2]):
        (repo.repo / "snapshots" / "default" / hidden).rename(stash / hidden)
    listed = repo("snapshots", "--json")
    assert listed.code == ExitCode.TAMPERED and [s["id"] for s in listed.json()] == [ids[4]]
    assert listed.err.count("follows a snapshot that is missing") == 2
    assert repo("check").code == ExitCode.TAMPERED
    for hidden in (ids[0], ids[2]):
        (stash / hidden).rename(repo.repo / "snapshots" / "default" / hidden)
    # the newest seen was forgotten: the one kept before it must still be there
    repo.ok("forget", ids[4][:12])
    (repo.repo / "snapshots" / "default" / ids[2]).rename(stash / ids[2])
    stale = repo("dump", "latest", str(src / "counter.txt"))
    assert stale.code == ExitCode.TAMPERED and "rolled back or hidden" in stale.err
    (stash / ids[2]).rename(repo.repo / "snapshots" / "default" / ids[2])
    assert repo.ok("dump", "latest", str(src / "counter.txt")).out == "version 2\n"
