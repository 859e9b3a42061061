"""Repositories on real remote stores, through the ``neostore`` command:
S3 on a single-node Ceph RADOS Gateway (tests/services/ceph.py), SFTP on
OpenSSH's server (tests/services/sshd.py). The whole life of a repository
(init → snapshot → restore → check → forget → prune → mount) and the
errors a user meets first: no bucket, a wrong key, an unknown host key,
an endpoint that does not answer."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import s3util
import sftputil
from mountutil import mounted

from conftest import PASSWORD, Cli


@pytest.fixture
def s3(cli: Cli, ceph: Any) -> Cli:
    """The CLI with the Ceph account in its environment and a repository
    location in a new bucket (not created)."""
    cli.env.update(s3util.account_env(ceph))
    cli.repo = s3util.location(ceph, f"t-{uuid.uuid4().hex[:16]}", "backups/laptop")  # type: ignore[assignment]
    return cli


def _tree(root: Path, generation: int) -> None:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "docs" / "notes.txt").write_text(f"generation {generation}\n" * 200)
    (root / "big.bin").write_bytes(os.urandom(3 << 20) if generation == 1 else b"small now")
    (root / f"only-{generation}.txt").write_text(str(generation))


def _same(a: Path, b: Path) -> None:
    left = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    right = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert left == right


def test_a_repository_lives_its_whole_life_on_s3(s3: Cli, ceph: Any, tmp_path: Path) -> None:
    missing = s3("init")
    assert (
        missing.code == 1 and "does not exist" in missing.err and "--create-bucket" in missing.err
    )
    s3.ok("init", "--create-bucket")
    bucket, prefix = str(s3.repo)[len(f"s3:{ceph.endpoint}/") :].split("/", 1)
    keys = s3util.objects(ceph, bucket, prefix)
    assert "config" in keys and any(k.startswith("keys/") for k in keys)
    assert not s3util.objects(ceph, bucket, "").keys() - {f"{prefix}/{k}" for k in keys}

    _life(s3, tmp_path)
    assert any(k.startswith("data/") for k in s3util.objects(ceph, bucket, prefix))


def _life(neo: Cli, tmp_path: Path) -> None:
    """Snapshot → restore → check → forget → prune → restore → mount on an
    initialised repository."""
    src = tmp_path / "src"
    _tree(src, 1)
    first = neo.ok("snapshot", src, "--json").json()
    _tree(src, 2)
    neo.ok("snapshot", src)

    out = tmp_path / "out"
    neo.ok("restore", "latest", "--to", out)
    _same(src, out / src.relative_to("/"))
    neo.ok("check", "--read-data")

    neo.ok("forget", "--keep-last", "1", "--prune", "--grace", "0s")
    neo.ok("prune", "--grace", "0s")  # the second run deletes what the first condemned
    listed = neo.ok("snapshots", "--json").json()
    assert len(listed) == 1 and listed[0]["id"] != first["id"]
    neo.ok("check", "--read-data")
    again = tmp_path / "again"
    neo.ok("restore", "latest", "--to", again)
    _same(src, again / src.relative_to("/"))

    mnt = tmp_path / "mnt"
    with mounted(neo, mnt):
        text = (
            mnt / "default" / "latest" / src.relative_to("/") / "docs" / "notes.txt"
        ).read_text()
        assert text == "generation 2\n" * 200


def test_errors_name_the_store_and_keep_their_exit_codes(s3: Cli, ceph: Any) -> None:
    s3.ok("init", "--create-bucket")
    denied = s3("snapshots", extra_env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    assert denied.code == 1 and "access denied" in denied.err and str(s3.repo) in denied.err
    nothing = s3("snapshots", "-r", s3util.location(ceph, "no-such-bucket-here", "x"))
    assert nothing.code == 10 and "no repository" in nothing.err
    gone = s3(
        "snapshots",
        "-r",
        "s3:http://127.0.0.1:9/bucket/x",
        extra_env={"NEOSTORE_HTTP_RETRIES": "1"},
    )
    assert gone.code == 1 and "unreachable" in gone.err


def test_copy_between_buckets_of_two_accounts(s3: Cli, ceph: Any, tmp_path: Path) -> None:
    """The source's account is NEOSTORE_FROM_AWS_*, the destination's the
    usual one; each bucket is private to its account, so a copy that used
    one account for both would be refused."""
    from services import ceph as service

    key, secret = service.add_user(ceph, f"u{uuid.uuid4().hex[:8]}")
    theirs = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    source = s3util.location(ceph, f"t-{uuid.uuid4().hex[:16]}", "old")
    src = tmp_path / "src"
    _tree(src, 1)
    s3.ok("init", "--create-bucket", "-r", source, extra_env=theirs)
    s3.ok("snapshot", src, "-r", source, extra_env=theirs)
    s3.ok("init", "--create-bucket")  # the destination, with the usual account
    assert s3("snapshots", "-r", source).code == 1  # not this account's bucket

    from_env = {f"NEOSTORE_FROM_{k}": v for k, v in theirs.items()}
    copied = s3.ok(
        "copy",
        "--from-repo",
        source,
        "--json",
        extra_env=dict(from_env, NEOSTORE_FROM_PASSWORD=PASSWORD),
    ).json()
    assert copied["stats"]["snapshots_copied"] == 1 and copied["problems"] == []
    out = tmp_path / "out"
    s3.ok("restore", "latest", "--to", out)
    _same(src, out / src.relative_to("/"))
    # without its own account the source is read with the usual one: refused
    refused = s3("copy", "--from-repo", source, extra_env={"NEOSTORE_FROM_PASSWORD": PASSWORD})
    assert refused.code == 1 and "access denied" in refused.err


def test_a_large_object_goes_up_in_parts_and_comes_back_whole(
    ceph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs from MULTIPART_FROM on (a --pack-size of 64 MiB or more) are sent
    as a multipart upload straight from their buffers, never joined."""
    from neostore.backend import s3 as s3backend

    for name, value in s3util.account_env(ceph).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(s3backend, "MULTIPART_FROM", 8 << 20)  # parts stay 16 MiB
    bucket = s3util.make_bucket(ceph)
    backend = s3backend.S3Backend(s3util.location(ceph, bucket, "big"))
    parts = [os.urandom(5 << 20), b"", os.urandom(13 << 20), os.urandom(3)]
    whole = b"".join(parts)
    name = "cd" * 32
    backend.save("data", name, parts)
    assert backend.load("data", name) == whole
    assert backend.load("data", name, (16 << 20) - 5, 10) == whole[(16 << 20) - 5 :][:10]
    head = s3util.client(ceph).head_object(Bucket=bucket, Key=f"big/data/cd/{name}")
    assert head["ETag"].strip('"').endswith("-2")  # S3's mark of a two-part upload


def test_an_endpoint_whose_certificate_fails_is_refused_at_once(cli: Cli, neoserver: Any) -> None:
    """neostore-server's self-signed certificate, taken for an S3 endpoint:
    a TLS failure is permanent (not retried as "unreachable")."""
    endpoint = neoserver.url("x").rsplit("/", 1)[0]
    refused = cli(
        "snapshots",
        "-r",
        f"s3:{endpoint}/bucket/x",
        extra_env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    assert refused.code == 1 and "TLS verification failed" in refused.err


@pytest.fixture
def sftp(cli: Cli, sshd: Any, tmp_path: Path) -> Cli:
    """The CLI with a home whose ~/.ssh/config reaches the test server, and
    a repository location in a new directory there."""
    cli.env["HOME"] = str(sftputil.ssh_home(sshd, tmp_path / "home"))
    cli.repo = sftputil.location(tmp_path / "on-the-server" / "repo")  # type: ignore[assignment]
    return cli


def test_a_repository_lives_its_whole_life_over_sftp(sftp: Cli, tmp_path: Path) -> None:
    sftp.ok("init")
    stored = tmp_path / "on-the-server" / "repo"
    assert (stored / "config").is_file() and any((stored / "keys").iterdir())
    _life(sftp, tmp_path)
    assert any(p.is_file() for p in (stored / "data").rglob("*"))
    assert not [p for p in stored.rglob("*") if ".tmp-" in p.name]


def test_sftp_refuses_an_unknown_host_key_and_shows_its_fingerprint(
    sftp: Cli, sshd: Any, tmp_path: Path
) -> None:
    sftp.ok("init")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    sftputil.ssh_home(sshd, tmp_path / "home", known_hosts=str(empty))
    refused = sftp("snapshots")
    assert refused.code == 1 and "host key refused" in refused.err
    assert sshd.host_key_fingerprint in refused.err and str(sftp.repo) in refused.err
    # a changed key: known_hosts names another key for the host
    other = tmp_path / "other_known_hosts"
    other.write_text(
        f"[{sshd.host}]:{sshd.port} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIHeQ0VcIc5gHxJAxDD3sZc1m2l1p2j7oZ3w3eG8l2v8D\n"
    )
    sftputil.ssh_home(sshd, tmp_path / "home", known_hosts=str(other))
    changed = sftp("snapshots")
    assert changed.code == 1 and sshd.host_key_fingerprint in changed.err


def test_sftp_errors_keep_their_exit_codes(sftp: Cli, sshd: Any, tmp_path: Path) -> None:
    nothing = sftp("snapshots")
    assert nothing.code == 10 and "no repository" in nothing.err
    sftp.ok("init")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger], check=True)
    home = sftputil.ssh_home(sshd, tmp_path / "home")
    config = (home / ".ssh" / "config").read_text().replace(sshd.identity, str(stranger))
    (home / ".ssh" / "config").write_text(config)
    denied = sftp("snapshots")
    assert denied.code == 1 and "access denied" in denied.err
    gone = sftp(
        "snapshots", "-r", "sftp:root@127.0.0.1:9:/x", extra_env={"NEOSTORE_HTTP_RETRIES": "1"}
    )
    assert gone.code == 1 and "unreachable" in gone.err


def test_a_repository_lives_its_whole_life_on_rclone_serve_restic(
    cli: Cli, rclone: Any, tmp_path: Path
) -> None:
    """restic's REST protocol as rclone serves it: the account in the URL,
    plain http on loopback (allowed with --insecure-http)."""
    url = rclone.url.replace("http://", f"http://{rclone.user}:{rclone.password}@")
    cli.repo = f"rest:{url}neostore/{uuid.uuid4().hex[:8]}/laptop"  # type: ignore[assignment]
    refused = cli("init")
    assert refused.code != 0 and "--insecure-http" in refused.err  # credentials over http
    cli.env["NEOSTORE_INSECURE_HTTP"] = "1"  # what --insecure-http sets
    cli.ok("init")
    stored = Path(rclone.workdir) / "data" / str(cli.repo).split("/", 3)[3]
    assert (stored / "config").is_file()
    assert cli("init").code != 0  # never over an existing repository
    _life(cli, tmp_path)
    # two-part names are stored flat (rclone lists leaf names only)
    names = [p.name for p in (stored / "snapshots").iterdir()]
    assert len(names) == 1 and names[0].startswith("default+")
    wrong = str(cli.repo).replace(rclone.password, "wrong-password")
    denied = cli("snapshots", "-r", wrong)
    assert denied.code == 1 and "refused the credentials" in denied.err


def test_rest_locations_reach_neostore_server_with_an_account(
    cli: Cli, neoserver: Any, tmp_path: Path
) -> None:
    token = neoserver.account("rest-user", ("over-rest", "repo", "read,append"))
    rest = "rest:" + neoserver.url("over-rest").replace("https://", "https://{}@")
    env = dict(cli.env, NEOSTORE_SERVER_FINGERPRINT=neoserver.fingerprint)
    Cli(env, rest.format(f"admin:{neoserver.admin_token}")).ok("init")  # as the admin
    neo = Cli(env, rest.format(f"rest-user:{token}"))
    src = tmp_path / "src"
    _tree(src, 1)
    neo.ok("snapshot", src)
    # the server keeps its usual two-part names: an https:// client sees them
    https = Cli(
        dict(cli.env, **neoserver.client_env(token, "rest-user")), neoserver.url("over-rest")
    )
    assert len(https.ok("snapshots", "--json").json()) == 1
    out = tmp_path / "out"
    neo.ok("restore", "latest", "--to", out)
    _same(src, out / src.relative_to("/"))


def test_copy_from_sftp_and_rest_sources_into_s3(
    sftp: Cli, rclone: Any, ceph: Any, tmp_path: Path
) -> None:
    """copy --from-repo takes every kind of location: SFTP and rclone
    sources (each with its own way to an account) into an S3 bucket."""
    src = tmp_path / "src"
    _tree(src, 1)
    sftp.ok("init")
    sftp.ok("snapshot", src)
    url = rclone.url.replace("http://", f"http://{rclone.user}:{rclone.password}@")
    rest = f"rest:{url}copy-source/{uuid.uuid4().hex[:8]}"
    sftp.env["NEOSTORE_INSECURE_HTTP"] = "1"
    sftp.ok("init", "-r", rest)
    _tree(src, 2)
    sftp.ok("snapshot", src, "-r", rest)
    sftp.env.update(s3util.account_env(ceph))
    dest = s3util.location(ceph, f"t-{uuid.uuid4().hex[:16]}", "copies")
    sftp.ok("init", "--create-bucket", "-r", dest)
    for source in (str(sftp.repo), rest):
        copied = sftp.ok(
            "copy", "--from-repo", source, "-r", dest, "--json",
            extra_env={"NEOSTORE_FROM_PASSWORD": PASSWORD},
        ).json()  # fmt: skip
        assert copied["stats"]["snapshots_copied"] == 1 and copied["problems"] == []
    assert len(sftp.ok("snapshots", "-r", dest, "--json").json()) == 2
    out = tmp_path / "out"
    sftp.ok("restore", "latest", "--to", out, "-r", dest)
    _same(src, out / src.relative_to("/"))
