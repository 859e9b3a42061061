"""What a repository location may be: a directory, ``file://`` or
neostore-server's ``https://``; anything that looks like another kind of
store is refused, never taken for a local folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Cli


def test_a_location_of_an_unknown_kind_is_refused_not_made_a_folder(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init -r s3:bucket/x` used to create a local folder named `s3:bucket`
    (S3 is a store now: tests/test_remote_stores.py)."""
    monkeypatch.chdir(tmp_path)
    for location in ("b2:bucket/x", "sftp:host:/srv/repo", "rclone:remote:path", "gs://b/x"):
        refused = cli("init", "-r", location, extra_env={"NEOSTORE_NEW_PASSWORD": "pw"})
        assert refused.code == 2, (location, refused.err)
        assert "does not know the location type" in refused.err and "https://" in refused.err
        assert "s3:" in refused.err  # what it does know
    assert os.listdir(tmp_path) == []  # nothing made
    # a folder whose name has a colon is still a folder, spelled as a path
    cli.ok("init", "-r", "./backups:2026", extra_env={"NEOSTORE_NEW_PASSWORD": "pw"})
    assert (tmp_path / "backups:2026" / "config").exists()


def test_the_ui_refuses_an_unknown_location_like_every_command(cli: Cli) -> None:
    refused = cli("ui", "--no-open", "-r", "b2:bucket/x", timeout=60)  # never serves
    assert refused.code == 2 and "does not know the location type" in refused.err
