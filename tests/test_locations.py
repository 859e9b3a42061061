"""What a repository location may be: a directory, ``file://`` or
neostore-server's ``https://``; anything that looks like another kind of
store is refused, never taken for a local folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neostore.backend import s3settings, sftpsettings

from conftest import Cli


def test_a_location_of_an_unknown_kind_is_refused_not_made_a_folder(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init -r s3:bucket/x` used to create a local folder named `s3:bucket`
    (S3 is a store now: tests/test_remote_stores.py)."""
    monkeypatch.chdir(tmp_path)
    for location in ("b2:bucket/x", "azure:c:/x", "rclone:remote:path", "gs://b/x"):
        refused = cli("init", "-r", location, extra_env={"NEOSTORE_NEW_PASSWORD": "pw"})
        assert refused.code == 2, (location, refused.err)
        assert "does not know the location type" in refused.err and "https://" in refused.err
        assert "s3:" in refused.err and "sftp:" in refused.err  # what it does know
    assert os.listdir(tmp_path) == []  # nothing made
    # a folder whose name has a colon is still a folder, spelled as a path
    cli.ok("init", "-r", "./backups:2026", extra_env={"NEOSTORE_NEW_PASSWORD": "pw"})
    assert (tmp_path / "backups:2026" / "config").exists()


def test_the_ui_refuses_an_unknown_location_like_every_command(cli: Cli) -> None:
    refused = cli("ui", "--no-open", "-r", "b2:bucket/x", timeout=60)  # never serves
    assert refused.code == 2 and "does not know the location type" in refused.err


@pytest.mark.parametrize(
    ("location", "bucket", "prefix", "endpoint", "path_style"),
    [
        # a service at an endpoint: path-style requests
        (
            "s3:https://s3.example.org:9000/backups/laptop/",
            "backups",
            "laptop/",
            "https://s3.example.org:9000",
            True,
        ),
        ("s3:http://127.0.0.1:7480/b-1", "b-1", "", "http://127.0.0.1:7480", True),
        # AWS, restic's spelling and ours: virtual-hosted unless the name has a dot
        ("s3:s3.amazonaws.com/my-backups/a/b", "my-backups", "a/b/", None, False),
        ("s3:my-backups/laptop", "my-backups", "laptop/", None, False),
        ("s3:my.backups", "my.backups", "", None, True),
    ],
)
def test_s3_locations_in_restics_spelling(
    location: str, bucket: str, prefix: str, endpoint: str | None, path_style: bool
) -> None:
    where = s3settings.parse(location)
    assert (where.bucket, where.prefix, where.endpoint, where.path_style) == (
        bucket,
        prefix,
        endpoint,
        path_style,
    )


def test_s3_region_and_account(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "NEOSTORE_")):
            monkeypatch.delenv(name)
    # a regional AWS host names its region
    assert s3settings.parse("s3:s3.eu-west-3.amazonaws.com/b-1/x").region == "eu-west-3"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "DEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dest-secret")
    mine = s3settings.parse("s3:b-1/x")
    assert mine.region == "ap-south-1" and mine.account == {}  # boto3's own chain reads them
    # copy's source: the usual account unless it has one of its own ...
    assert s3settings.parse("s3:b-1/x", "NEOSTORE_FROM_").account == {}
    # ... and then only that one, never the destination's
    monkeypatch.setenv("NEOSTORE_FROM_AWS_ACCESS_KEY_ID", "SRC")
    monkeypatch.setenv("NEOSTORE_FROM_AWS_SECRET_ACCESS_KEY", "src-secret")
    source = s3settings.parse("s3:b-1/x", "NEOSTORE_FROM_")
    assert source.account == {"access_key_id": "SRC", "secret_access_key": "src-secret"}
    assert source.region is None  # none of its own: boto3 falls back, AWS redirects
    monkeypatch.setenv("NEOSTORE_S3_BUCKET_LOOKUP", "path")
    assert s3settings.parse("s3:b-1/x").path_style


@pytest.mark.parametrize("location", ["s3:", "s3:ab/x", "s3:Bad_Bucket/x", "s3:https:///b-1"])
def test_malformed_s3_locations_are_usage_errors(cli: Cli, location: str) -> None:
    refused = cli("snapshots", "-r", location)
    assert refused.code == 2 and "-r/--repo" in refused.err


@pytest.mark.parametrize(
    ("location", "user", "host", "port", "path"),
    [
        ("sftp:backup@nas.local:/srv/restic", "backup", "nas.local", None, "/srv/restic"),
        ("sftp:nas:2222:/srv/x/", None, "nas", 2222, "/srv/x"),
        ("sftp:nas:repos/laptop", None, "nas", None, "repos/laptop"),  # below the login dir
        ("sftp:me@[::1]:22:/r", "me", "::1", 22, "/r"),
        ("sftp://me@nas:2200//srv/r", "me", "nas", 2200, "/srv/r"),
        ("sftp://nas/relative", None, "nas", None, "relative"),
    ],
)
def test_sftp_locations_in_restics_spelling(
    location: str, user: str | None, host: str, port: int | None, path: str
) -> None:
    where = sftpsettings.parse(location)
    assert (where.user, where.host, where.port, where.path) == (user, host, port, path)


@pytest.mark.parametrize("location", ["sftp:", "sftp:host", "sftp:@:/x", "sftp://nas:99999//x"])
def test_malformed_sftp_locations_are_usage_errors(cli: Cli, location: str) -> None:
    refused = cli("snapshots", "-r", location)
    assert refused.code == 2 and "-r/--repo" in refused.err and "sftp:" in refused.err
