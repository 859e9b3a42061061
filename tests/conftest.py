"""Shared fixtures: an isolated environment and a runner for the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "correct horse battery staple"


@dataclass
class Result:
    code: int
    out: str
    err: str
    stdout_bytes: bytes

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """Runs ``python -m neostore_cli.main`` (the installed ``neostore``)."""

    def __init__(self, env: dict[str, str], repo: Path) -> None:
        self.env = env
        self.repo = repo

    def __call__(
        self,
        *args: str | os.PathLike[str],
        password: str | None = PASSWORD,
        timeout: float = 600,
        extra_env: dict[str, str] | None = None,
        **popen: Any,
    ) -> Result:
        env = dict(self.env, **(extra_env or {}))
        if password is not None:
            env["NEOSTORE_PASSWORD"] = password
        env.setdefault("NEOSTORE_REPO", str(self.repo))
        proc = subprocess.run(
            [sys.executable, "-m", "neostore_cli.main", *map(str, args)],
            env=env,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **popen,
        )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "surrogateescape"),
            proc.stderr.decode("utf-8", "replace"),
            proc.stdout,
        )

    def ok(self, *args: str | os.PathLike[str], **kw: Any) -> Result:
        result = self(*args, **kw)
        assert result.code == 0, f"neostore {args} exited {result.code}: {result.err}"
        return result

    def popen(self, *args: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        env = dict(self.env, NEOSTORE_PASSWORD=PASSWORD, NEOSTORE_REPO=str(self.repo))
        return subprocess.Popen(
            [sys.executable, "-m", "neostore_cli.main", *map(str, args)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session")
def neoserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One neostore-server for the session (tests use their own repositories)."""
    from serverutil import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    base.update(
        NEOSTORE_TEST_KDF="floor",
        NEOSTORE_STATE_DIR=str(tmp_path / "state"),
        NEOSTORE_CACHE_DIR=str(tmp_path / "cache"),
    )
    return base


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Cli:
    return Cli(env, tmp_path / "repo")


@pytest.fixture
def repo(cli: Cli) -> Iterator[Cli]:
    cli.ok("init")
    yield cli


@pytest.fixture(autouse=True)
def _cheap_kdf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Library-level tests get the same isolation as CLI tests."""
    monkeypatch.setenv("NEOSTORE_TEST_KDF", "floor")
    monkeypatch.setenv("NEOSTORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NEOSTORE_CACHE_DIR", str(tmp_path / "cache"))


def data_blob_count(repo_path: Path) -> int:
    """Count blobs in data packs by reading the library's view of the index."""
    from neostore.backend import LocalBackend
    from neostore.repository import Repository

    repository = Repository.open(LocalBackend(str(repo_path)), PASSWORD.encode())
    repository.load_index()
    count = 0
    for blob_id in list(repository.index.blob_ids()):
        location = repository.index.lookup(blob_id)
        assert location is not None
        count += location.btype == 0
    return count
