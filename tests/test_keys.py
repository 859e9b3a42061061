"""Several passwords per repository: key add, list, remove, passwd (owner
keys; the per-target roles are tested in test_roles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PASSWORD, Cli


def test_a_second_password_opens_the_repository(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("shared\n")
    first = repo.ok("snapshot", src, "--json").json()["id"]
    added = repo.ok("key", "add", "--json", extra_env={"NEOSTORE_NEW_PASSWORD": "second pw"}).json()
    assert added["role"] == "owner" and len(added["key_id"]) == 32
    # both passwords open it; the new key writes its own snapshots
    assert [s["id"] for s in repo.ok("snapshots", "--json", password="second pw").json()] == [first]
    repo.ok("snapshot", src, password="second pw")
    assert len(repo.ok("snapshots", "--json").json()) == 2
    listed = repo.ok("key", "list", "--json").json()
    assert len(listed) == 2 and [k["current"] for k in listed] == [True, False]
    assert listed[1]["id"] == added["key_id"] and listed[1]["role"] == "owner"
    as_second = repo.ok("key", "list", "--json", password="second pw").json()
    assert [k["current"] for k in as_second] == [False, True]
    assert repo.ok("check", "--read-data").code == 0
    # the key in use cannot remove itself; another key can remove it
    refused = repo("key", "remove", added["key_id"][:8], password="second pw")
    assert refused.code == 1 and "in use" in refused.err
    assert repo.ok("key", "remove", added["key_id"][:8]).code == 0
    gone = repo("snapshots", password="second pw")
    assert gone.code == 12 and "wrong password" in gone.err
    assert len(repo.ok("snapshots", "--json").json()) == 2  # the first key still works
    assert len(repo.ok("key", "list", "--json").json()) == 1


def test_passwd_keeps_the_key_and_changes_the_password(repo: Cli) -> None:
    before = repo.ok("key", "list", "--json").json()
    repo.ok("key", "passwd", extra_env={"NEOSTORE_NEW_PASSWORD": "new password"})
    assert repo("snapshots", password=PASSWORD).code == 12
    after = repo.ok("key", "list", "--json", password="new password").json()
    assert [k["id"] for k in after] == [k["id"] for k in before]
    assert after[0]["created"] != before[0]["created"]  # a new file, same key


def test_key_commands_refuse_what_they_cannot_do(repo: Cli, tmp_path: Path) -> None:
    writer = repo("key", "add", "--role", "writer", extra_env={"NEOSTORE_NEW_PASSWORD": "x"})
    assert writer.code == 1 and "--target: a writer key is for one target" in writer.err
    bogus = repo(
        "key", "add", "--role", "admin", "--target", "t", extra_env={"NEOSTORE_NEW_PASSWORD": "x"}
    )
    # a value outside the listed choices is a malformed command line
    assert bogus.code == 2 and "'admin' is not one of 'owner', 'writer'" in bogus.err
    assert repo("key", "remove", "abc").code == 1  # too short a prefix
    missing = repo("key", "remove", "ffffffff")
    assert missing.code == 1 and "no key" in missing.err
    no_password = repo("key", "add")
    assert no_password.code == 1 and "NEOSTORE_NEW_PASSWORD" in no_password.err
    tampered_dir = repo.repo / "keys"
    key_file = next(tampered_dir.iterdir())
    data = bytearray(key_file.read_bytes())
    data[-5] ^= 1  # inside the sealed material
    key_file.write_bytes(bytes(data))
    tampered = repo("snapshots")
    assert tampered.code == 12 and "was altered" in tampered.err


def test_the_key_used_last_is_tried_first(repo: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """With several key files, opening costs one KDF run once this machine
    knows which key file its password opens."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.format import keyfile as keys

    for n in range(3):
        repo.ok("key", "add", extra_env={"NEOSTORE_NEW_PASSWORD": f"extra {n}"})
    runs: list[int] = []
    real = keys._wrapping_key

    def counting(*args: object) -> bytes:
        runs.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(keys, "_wrapping_key", counting)
    backend = LocalBackend(str(repo.repo))
    opened = set()
    for password in [PASSWORD, "extra 0", "extra 1", "extra 2"]:
        Repository.open(backend, password.encode())  # may try several key files
        runs.clear()
        repository = Repository.open(backend, password.encode())
        assert len(runs) == 1, password  # the hint: the key file it opened just before
        runs.clear()
        opened.add(repository.material.key_id)
    assert len(opened) == 4  # four passwords, four key files


def test_host_and_user_are_sealed_to_owner_keys(repo: Cli, tmp_path: Path) -> None:
    """Anyone who can read the store used to learn which host and user made
    each key file; now only owner keys can."""
    import getpass
    import shutil
    import socket

    import msgpack

    reader = {"NEOSTORE_NEW_PASSWORD": "reader pw"}
    repo.ok("key", "add", "--role", "reader", "--target", "default", extra_env=reader)
    host = socket.gethostname().encode()
    for key_file in (repo.repo / "keys").iterdir():
        raw_header = msgpack.unpackb(key_file.read_bytes())[0]
        assert host not in raw_header and getpass.getuser().encode() not in raw_header
    as_owner = repo.ok("key", "list", "--json").json()
    assert {(k["host"], k["user"]) for k in as_owner} == {(host.decode(), getpass.getuser())}
    as_reader = repo.ok("key", "list", "--json", password="reader pw").json()
    assert {(k["host"], k["user"]) for k in as_reader} == {(None, None)}
    assert repo.ok("key", "list", password="reader pw").out.rstrip().endswith(" -")
    # a key file from before, with host and user in clear, shows them to all
    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "compat-v1" / "repo", old)
    listed = Cli(repo.env, old).ok("key", "list", "--json", password="owner-password").json()
    assert all(k["host"] and k["user"] for k in listed)
