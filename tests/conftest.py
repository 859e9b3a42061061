"""Shared fixtures: an isolated environment and a runner for the real CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import traceback
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
    """Runs the ``neostore`` command line: in this process by default (the
    Typer app, with this environment, stdin that is no terminal and captured
    stdout/stderr), or as ``python -m neostore_cli.main`` with
    ``process=True`` (signals, kills, start-up, anything that may hang:
    a ``timeout`` implies it)."""

    def __init__(self, env: dict[str, str], repo: Path) -> None:
        self.env = env
        self.repo = repo

    def __call__(
        self,
        *args: str | os.PathLike[str],
        password: str | None = PASSWORD,
        timeout: float | None = None,
        extra_env: dict[str, str] | None = None,
        process: bool = False,
        **popen: Any,
    ) -> Result:
        env = dict(self.env, **(extra_env or {}))
        if password is not None:
            env["NEOSTORE_PASSWORD"] = password
        env.setdefault("NEOSTORE_REPO", str(self.repo))
        if process or timeout is not None or popen:
            return _in_subprocess([str(a) for a in args], env, timeout or 600, popen)
        return _in_process([str(a) for a in args], env)

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


def _in_subprocess(args: list[str], env: dict[str, str], timeout: float, popen: Any) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "neostore_cli.main", *args],
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


def _in_process(args: list[str], env: dict[str, str]) -> Result:
    """The command as its process would run it, minus interpreter start-up:
    the environment is replaced for the call, stdout and stderr are
    captured as bytes (names are written with surrogateescape, as ``run``
    sets up), and an unexpected exception ends it with exit 1 and its
    traceback on stderr, as it would a process."""
    from neostore_cli.main import app

    # one command at a time: the environment and sys.std* are process-wide
    assert threading.current_thread() is threading.main_thread(), "use process=True"
    saved_env = dict(os.environ)
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.BytesIO(), io.BytesIO()
    streams = [
        io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape"),
        io.TextIOWrapper(err, encoding="utf-8", errors="surrogateescape"),
    ]
    sys.stdin, sys.stdout, sys.stderr = streams
    os.environ.clear()
    os.environ.update(env)
    code = 0
    try:
        app(args=args, prog_name="neostore", standalone_mode=True)
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        code = 1
    finally:
        for stream in streams:
            stream.flush()
            stream.detach()  # the buffers outlive their text wrappers
        sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)
    return Result(
        code,
        out.getvalue().decode("utf-8", "surrogateescape"),
        err.getvalue().decode("utf-8", "replace"),
        out.getvalue(),
    )


@pytest.fixture(scope="session")
def neoserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One neostore-server for the session (tests use their own repositories)."""
    from serverutil import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


#: what the test run itself chooses (``NEOSTORE_START_METHOD=spawn`` runs
#: the suites with spawned workers, as scripts/test.sh does)
KEPT_VARIABLES = ("NEOSTORE_START_METHOD",)


def clean_env() -> dict[str, str]:
    """This process's environment without neostore's settings, but with
    the ones that choose how the test run runs."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_") or k in KEPT_VARIABLES
    }


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = clean_env()
    base.update(
        NEOSTORE_STATE_DIR=str(tmp_path / "state"),
        NEOSTORE_CACHE_DIR=str(tmp_path / "cache"),
    )
    return base


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Cli:
    return Cli(env, tmp_path / "repo")


@pytest.fixture(scope="session")
def _template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository made by ``neostore init``, copied for every test that
    wants a fresh one (each test has its own local state, so the copies do
    not know of each other)."""
    base = tmp_path_factory.mktemp("template")
    env = clean_env()
    env.update(NEOSTORE_STATE_DIR=str(base / "state"))
    Cli(env, base / "repo").ok("init")
    return base / "repo"


@pytest.fixture
def repo(cli: Cli, _template_repo: Path) -> Iterator[Cli]:
    shutil.copytree(_template_repo, cli.repo, symlinks=True)
    yield cli


@pytest.fixture(scope="session", autouse=True)
def _memoized_kdf() -> Iterator[None]:
    """Opening a key file again in this process costs no Argon2id run."""
    from neostore.testing import memoized_key_derivation

    with memoized_key_derivation():
        yield


@pytest.fixture(autouse=True)
def _isolated_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Library-level tests get the same isolation as CLI tests."""
    monkeypatch.setenv("NEOSTORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NEOSTORE_CACHE_DIR", str(tmp_path / "cache"))


def data_blob_count(repo_path: Path) -> int:
    """Count blobs in data packs by reading the library's view of the index."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository

    repository = Repository.open(LocalBackend(str(repo_path)), PASSWORD.encode())
    repository.load_index()
    count = 0
    for blob_id in list(repository.index.blob_ids()):
        location = repository.index.lookup(blob_id)
        assert location is not None
        count += location.btype == 0
    return count


@pytest.fixture(scope="session")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One single-node Ceph cluster with a RADOS Gateway for the session
    (tests use their own buckets or prefixes); tests/services/ceph.py."""
    from services import ceph as service

    if not service.installed():
        pytest.fail("the S3 tests need Ceph: run scripts/test.sh, which installs it")
    work = tmp_path_factory.mktemp("ceph")
    started = service.start(work, memstore_bytes=3 << 30)
    yield started
    service.stop(work)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One OpenSSH server on a loopback port for the session, with a
    throwaway host key and user key (tests/services/sshd.py)."""
    from services import sshd as service

    if not service.installed():
        pytest.fail("the SFTP tests need OpenSSH's server: run scripts/test.sh, which installs it")
    work = tmp_path_factory.mktemp("sshd")
    started = service.start(work)
    yield started
    service.stop(work)


@pytest.fixture(scope="session")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One ``rclone serve restic`` over a local directory for the session,
    with basic authentication (tests/services/rclone.py)."""
    from services import rclone as service

    if not service.installed():
        pytest.fail("the rest: tests need rclone: run scripts/test.sh, which installs it")
    work = tmp_path_factory.mktemp("rclone")
    started = service.start(work, cache_objects=False)
    yield started
    service.stop(work)
