"""Key files, the config pin and snapshot chains: what a malicious store or
a stolen key file can and cannot do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgpack
import pytest

from neostore.backend import LocalBackend
from neostore.commandline import ExitCode
from neostore.core.repository import Repository
from neostore.errors import IntegrityError, WrongPassword
from neostore.format import crypto
from neostore.format import keyfile as keys
from neostore.snapshots.catalog import list_snapshots, save_snapshot

from conftest import PASSWORD, Cli


def test_key_file_round_trip_and_wrong_password() -> None:
    material = keys.KeyMaterial(
        key_id=b"k" * 16,
        role="owner",
        repo_id=b"r" * 16,
        owner_vk=crypto.SigningKey.generate().verify_key,
        master=b"m" * 32,
    )
    data = keys.encode_keyfile(material, b"pw", keys.FLOOR_KDF)
    assert keys.open_keyfile(data, "k", b"pw") == material
    with pytest.raises(WrongPassword):
        keys.open_keyfile(data, "k", b"PW")
    header, _ = keys.decode_keyfile_header(data, "k")
    assert (header.params.ops, header.params.mem) == (2, 64 * 1024 * 1024)
    assert b"m" * 32 not in data


def test_key_file_below_floor_refused() -> None:
    material = keys.KeyMaterial(
        key_id=b"k" * 16,
        role="owner",
        repo_id=b"r" * 16,
        owner_vk=crypto.SigningKey.generate().verify_key,
    )
    weak = keys.encode_keyfile(material, b"pw", keys.KdfParams(ops=1, mem=8 * 1024 * 1024))
    with pytest.raises(IntegrityError, match="outside the accepted range"):
        keys.open_keyfile(weak, "k", b"pw")


def _kdf_of(path: Path) -> tuple[int, int]:
    header, _ = keys.decode_keyfile_header(path.read_bytes(), path.name)
    return header.params.ops, header.params.mem


def test_key_derivation_default_and_strong(cli: Cli, tmp_path: Path) -> None:
    """New key files: Argon2id 64 MiB, 3 passes (RFC 9106's second option),
    or 256 MiB when asked (--kdf strong); existing files open with their own
    parameters; a password change uses what it is given, never the old file's."""
    mib = 1024 * 1024
    cli.ok("init")
    (owner,) = (cli.repo / "keys").iterdir()
    assert _kdf_of(owner) == (3, 64 * mib)
    strong = cli.ok(
        "key", "add", "--kdf", "strong", "--json", extra_env={"NEOSTORE_NEW_PASSWORD": "second"}
    ).json()["key_id"]
    assert _kdf_of(cli.repo / "keys" / strong) == (3, 256 * mib)
    assert cli.ok("snapshots", password="second").code == 0  # opens with its stored cost
    cli.ok("key", "passwd", extra_env={"NEOSTORE_NEW_PASSWORD": "third"}, password="second")
    assert _kdf_of(cli.repo / "keys" / strong) == (3, 64 * mib)
    refused = cli("key", "add", "--kdf", "paranoid", extra_env={"NEOSTORE_NEW_PASSWORD": "x"})
    assert refused.code == 2 and "--kdf" in refused.err
    assert len(list((cli.repo / "keys").iterdir())) == 2
    other = Cli(cli.env, tmp_path / "strong-repo")
    other.ok("init", "--kdf", "strong")
    (only,) = (other.repo / "keys").iterdir()
    assert _kdf_of(only) == (3, 256 * mib)


def test_tampered_key_file_header_is_wrong_password(repo: Cli) -> None:
    keyfile = next((repo.repo / "keys").iterdir())
    header, sealed = msgpack.unpackb(keyfile.read_bytes())
    fields = msgpack.unpackb(header)
    fields["host"] = "evil"
    keyfile.write_bytes(msgpack.packb([msgpack.packb(fields), sealed]))
    result = repo("snapshots")
    assert result.code == 12


def test_replaced_owner_detected_by_pin(repo: Cli, tmp_path: Path) -> None:
    # a store swaps in a whole different repository that happens to share the
    # password and repo id: the owner key differs from the pinned one
    repo.ok("snapshots")
    original = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    from neostore.format import config as cfg
    from neostore.format import crypto

    owner = crypto.SigningKey.generate()
    material = keys.KeyMaterial(
        key_id=b"x" * 16,
        role="owner",
        repo_id=original.repo_id,
        owner_vk=owner.verify_key,
        owner_seed=owner.seed,
        master=b"y" * 32,
        writer_seed=b"z" * 32,
    )
    forged_config = cfg.encode_config(
        cfg.Config(repo_id=original.repo_id, owner_vk=owner.verify_key), owner
    )
    shutil.rmtree(repo.repo / "keys")
    (repo.repo / "keys").mkdir()
    (repo.repo / "keys" / ("78" * 16)).write_bytes(
        keys.encode_keyfile(material, PASSWORD.encode(), keys.FLOOR_KDF)
    )
    (repo.repo / "config").write_bytes(forged_config)
    result = repo("snapshots")
    assert result.code == ExitCode.TAMPERED
    assert "owner key changed" in result.err


def _snapshots_of(repo: Cli, src: Path, n: int) -> list[str]:
    ids = []
    for i in range(n):
        (src / "f").write_text(str(i))
        ids.append(repo.ok("snapshot", src).out.strip())
    return ids


def test_deleted_snapshot_reported_as_tampering(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = _snapshots_of(repo, src, 3)
    (repo.repo / "snapshots" / "default" / ids[1]).unlink()  # the store hides the middle one
    checked = repo("check", "--json")
    assert checked.code == ExitCode.TAMPERED
    assert any("missing from the repository" in t for t in checked.json()["tampering"])
    listed = repo("snapshots", "--json")
    # under --json, stderr is JSON too: the finding, then the error that ends it
    found = [json.loads(line) for line in listed.err.splitlines()]
    assert listed.code == ExitCode.TAMPERED and found[0]["type"] == "tampering"
    assert found[-1] == {
        "type": "error",
        "message": "tampering detected (1 finding(s) above)",
        "exit_code": 14,
    }
    text = repo("snapshots")
    assert text.code == ExitCode.TAMPERED and "tampering: " in text.err
    assert [s["id"] for s in listed.json()] == [ids[0], ids[2]]  # the rest is listed all the same
    # a command that reads one snapshot reports it too, after doing its work
    dumped = repo("dump", ids[2][:12], str(src / "f"))
    assert dumped.code == ExitCode.TAMPERED and dumped.out == "2"
    assert "missing from the repository" in dumped.err


def test_rolled_back_repository_reported(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _snapshots_of(repo, src, 1)
    saved = tmp_path / "saved"
    shutil.copytree(repo.repo, saved)
    _snapshots_of(repo, src, 2)
    repo.ok("snapshots")  # this machine has now seen snapshot #3
    shutil.rmtree(repo.repo)
    shutil.copytree(saved, repo.repo)  # the store rolls back to when there was one
    checked = repo("check")
    assert checked.code == ExitCode.TAMPERED
    assert "rolled back or hidden" in checked.err


def test_forged_snapshot_rejected(repo: Cli, tmp_path: Path) -> None:
    """Anyone can seal a manifest to the target's public key; only a
    certified writer's signature makes it a snapshot."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    repo.ok("snapshot", src)
    from neostore.format import crypto
    from neostore.format.manifest import seal_manifest
    from neostore.format.writer import WriterIdentity

    repository = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    record = repository.target("default")
    genuine = list_snapshots(repository, "default")[0]
    real = genuine.manifest
    real.seq = 2
    rogue = WriterIdentity(
        b"e" * 16, crypto.SigningKey.generate(), owner=crypto.SigningKey.generate()
    )
    sid, stored = seal_manifest(real, rogue, record.seal_pk)
    (repo.repo / "snapshots" / "default" / sid.hex()).write_bytes(stored)
    result = repo("snapshots", "--json")
    assert result.code == 1
    assert "writer certificate" in result.err
    assert [s["id"] for s in result.json()] == [genuine.hex_id]


def test_future_timestamp_cannot_become_latest(repo: Cli, tmp_path: Path) -> None:
    import time

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")
    repo.ok("snapshot", src)
    repository = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    record = repository.target("default")
    first = list_snapshots(repository, "default")[0]
    future = first.manifest
    future.seq, future.prev = 2, first.snapshot_id
    future.time_ns = time.time_ns() + 365 * 24 * 3600 * 10**9
    future_id = save_snapshot(repository, record, future).hex()
    (src / "f").write_text("3")
    third = repo.ok("snapshot", src).out.strip()
    listed = [s["id"] for s in repo.ok("snapshots", "--json").json()]
    assert listed[-1] == third and future_id in listed
    assert repo.ok("dump", "latest", str(src / "f")).out == "3"
    checked = repo("check")
    assert checked.code == 0 and "time in the future" in checked.err


def test_weak_passwords_are_warned_about(cli: Cli, tmp_path: Path) -> None:
    made = cli("init", password="x")
    assert made.code == 0 and "warning: weak password (about 5 bits" in made.err
    cli.ok("snapshots", password="x")  # the repository was made all the same
    strong = Cli(cli.env, tmp_path / "other")
    assert "weak password" not in strong.ok("init").err  # conftest's four words
    added = cli("key", "add", password="x", extra_env={"NEOSTORE_NEW_PASSWORD": "password123"})
    assert added.code == 0 and "weak password (about 57 bits" in added.err
