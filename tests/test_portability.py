"""neostore on a platform without POSIX-only modules (issue 19): the
library, the CLI and the server import and run with ``fcntl``, ``pwd``,
``grp``, ``termios`` and ``resource`` unavailable, as on Windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import PASSWORD

HERE = Path(__file__).parent


def _blocked(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(HERE / "blocked_imports.py"), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (args, done.stderr)
    return done


def test_the_library_cli_and_server_import_with_the_modules_blocked(env: dict[str, str]) -> None:
    """Every module stays unavailable while all of neostore is imported (a
    dependency that imported one anyway would fail here, not pass)."""
    probe = json.loads(_blocked(env, "probe").stdout)
    assert probe == {name: True for name in ("fcntl", "pwd", "grp", "termios", "resource")}


def test_every_everyday_command_runs_without_posix_only_modules(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(env, NEOSTORE_PASSWORD=PASSWORD, NEOSTORE_NEW_PASSWORD=PASSWORD)
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("portable\n" * 100)
    (src / "b.bin").write_bytes(os.urandom(200_000))
    repo = tmp_path / "repo"
    _blocked(env, "neostore", "init", "-r", repo)
    _blocked(env, "neostore", "snapshot", "-r", repo, src)
    (src / "docs" / "a.txt").write_text("changed\n")
    _blocked(env, "neostore", "snapshot", "-r", repo, src)
    listed = json.loads(_blocked(env, "neostore", "snapshots", "-r", repo, "--json").stdout)
    assert len(listed) == 2
    out = tmp_path / "out"
    _blocked(env, "neostore", "restore", "-r", repo, "latest", "--to", out)
    restored = out / src.relative_to("/")
    assert (restored / "docs" / "a.txt").read_text() == "changed\n"
    assert (restored / "b.bin").read_bytes() == (src / "b.bin").read_bytes()
    _blocked(env, "neostore", "check", "-r", repo, "--read-data")
    _blocked(env, "neostore", "forget", "-r", repo, "--keep-last", "1", "--prune")
    assert len(json.loads(_blocked(env, "neostore", "snapshots", "-r", repo, "--json").stdout)) == 1


def test_the_server_runs_without_posix_only_modules(env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "srv"
    info = json.loads(_blocked(env, "neostore-server", "init", "--data", data, "--json").stdout)
    assert info["admin_token"]
    added = _blocked(env, "neostore-server", "account", "add", "bob", "--data", data, "--json")
    assert json.loads(added.stdout)["name"] == "bob"
    _blocked(env, "neostore-server", "account", "grant", "bob", "--data", data, "--repo", "r",
             "--perms", "read")  # fmt: skip
    assert "bob" in _blocked(env, "neostore-server", "account", "list", "--data", data).stdout
    assert "serve" in _blocked(env, "neostore-server", "--help").stdout
