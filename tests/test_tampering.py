"""Attacks on a repository's history, through the CLI: snapshots put back
after the owner forgot them, and what every command does when it finds
tampering (exit 14 after doing what is still safe)."""

from __future__ import annotations

import shutil
from pathlib import Path

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
