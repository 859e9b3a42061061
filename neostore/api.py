"""The supported Python API: open a repository, list and browse snapshots,
read files, back up, restore and check. ``neostore`` re-exports it (its
``__all__``); docs/api.md shows it at work.

Paths in snapshots are the absolute paths backed up, as bytes or str
(``/home/me/notes.txt``). Long operations report progress and problems to
a :class:`~neostore.progress.Reporter`. Every error is a
:class:`~neostore.errors.NeostoreError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO

from .backend import BackendOptions, open_backend
from .backend.names import OBJECT_TYPES, ObjectType
from .backup.archiver import Archiver
from .backup.options import SnapshotOptions, SnapshotResult
from .backup.precount import PathCount
from .backup.precount import count_paths as _count_paths
from .browse import diff as diffs
from .browse import files, navigate
from .browse.diff import Change
from .browse.find import find as _find
from .core import localstate
from .core.repository import Repository
from .errors import RepositoryNotFound, UsageError
from .format.keyfile import kdf_profile
from .format.tree import DIR, Node
from .lifecycle import check as checks
from .lifecycle.check import Checker, CheckResult, LastCheck
from .progress import Reporter
from .restorer.archive import ArchiveStats, write_archive
from .restorer.options import RestoreOptions, RestoreStats
from .restorer.walk import Restorer
from .snapshots import chains, lookup
from .snapshots.chains import Listing
from .snapshots.info import SnapshotInfo


def _secret(password: bytes | str | None, password_file: str | os.PathLike[str] | None) -> bytes:
    if (password is None) == (password_file is None):
        raise UsageError("give a password or a password file (one of them)", option="password")
    if password_file is not None:
        with open(password_file, "rb") as f:
            return f.read().rstrip(b"\r\n")
    assert password is not None
    return password.encode() if isinstance(password, str) else password


def open_repository(
    location: str | os.PathLike[str],
    password: bytes | str | None = None,
    *,
    password_file: str | os.PathLike[str] | None = None,
    options: BackendOptions | None = None,
) -> Repository:
    """Open the repository at ``location`` (a directory, ``file://`` or
    ``https://HOST:PORT/REPO`` URL) with the key file that ``password`` (or
    the first line of ``password_file``) opens. Raises
    :class:`~neostore.errors.RepositoryNotFound`,
    :class:`~neostore.errors.WrongPassword`, …"""
    secret = _secret(password, password_file)
    return Repository.open(open_backend(os.fspath(location), options), secret)


def init_repository(
    location: str | os.PathLike[str],
    password: bytes | str | None = None,
    *,
    password_file: str | os.PathLike[str] | None = None,
    options: BackendOptions | None = None,
    chunk_sizes: tuple[int, int, int] | None = None,
    pack_size: int | None = None,
    kdf: str = "default",
) -> Repository:
    """Create a repository and its owner key (opened by ``password``; its
    key derivation ``kdf``: ``default``, Argon2id 64 MiB, or ``strong``)."""
    secret = _secret(password, password_file)
    backend = open_backend(os.fspath(location), options)
    return Repository.init(
        backend, secret, chunk_sizes=chunk_sizes, pack_size=pack_size, kdf=kdf_profile(kdf)
    )


def list_targets(repo: Repository) -> list[str]:
    """The targets this key can use: every one for an owner key, its own else."""
    return repo.target_names()


def list_snapshots(repo: Repository, target: str | None = None) -> Listing:
    """The snapshots of one or every readable target, oldest first, with
    what verifying their chains found (``tampering``: snapshots hidden,
    rolled back or put back after being forgotten; ``warnings``: claimed
    times in the future, leftovers of an interrupted forget; ``failures``:
    snapshots that do not verify, left out)."""
    return chains.list_verified(repo, target)


def find_snapshot(repo: Repository, spec: str, target: str | None = None) -> SnapshotInfo:
    """``latest`` (of ``target``, default the key's own), a full snapshot id
    or a unique prefix of at least 4 hex digits."""
    return lookup.find_snapshot(repo, spec, target)


def list_directory(
    repo: Repository, snapshot: SnapshotInfo, path: str | bytes = "/"
) -> list[tuple[bytes, Node]]:
    """(path, node) of each entry of the directory at ``path`` (or of the
    file itself)."""
    repo.load_index()
    return list(navigate.entries(repo, snapshot, path))


def walk(
    repo: Repository, snapshot: SnapshotInfo, path: str | bytes = "/"
) -> Iterator[tuple[bytes, Node]]:
    """(path, node) of everything below ``path``, depth first."""
    repo.load_index()
    for child_path, child in navigate.entries(repo, snapshot, path):
        yield child_path, child
        if child.type == DIR:
            yield from navigate.walk(repo, child.subtree, child_path)


def open_file(repo: Repository, snapshot: SnapshotInfo, path: str | bytes) -> BufferedReader:
    """The regular file at ``path``, as a read-only binary stream that
    fetches (and verifies) only the chunks it reads."""
    repo.load_index()
    return files.open_file(repo, snapshot, path)


def read_file(repo: Repository, snapshot: SnapshotInfo, path: str | bytes) -> Iterator[bytes]:
    """The regular file at ``path``, from start to end, in pieces (verified,
    fetched ahead, as ``neostore dump`` reads it): for a whole file this is
    faster than :func:`open_file`, which fetches a chunk when it is read."""
    repo.load_index()
    return files.read_file(repo, snapshot, path)


def snapshot(
    repo: Repository, options: SnapshotOptions, reporter: Reporter | None = None
) -> SnapshotResult:
    """Back up ``options.paths`` into a new snapshot of ``options.target``."""
    return Archiver(repo, options, reporter).run()


def restore(
    repo: Repository,
    snapshot: SnapshotInfo,
    options: RestoreOptions,
    reporter: Reporter | None = None,
) -> RestoreStats:
    """Restore a snapshot (``options.subpath`` of it) under
    ``options.destination``; files that could not be restored are listed
    in the result's ``errors``."""
    return Restorer(repo, options, reporter).run(snapshot)


def check(
    repo: Repository, read_data: bool = False, reporter: Reporter | None = None
) -> CheckResult:
    """Verify the repository as ``neostore check`` does (an owner key; with
    ``read_data`` every blob is read and verified too). What it found is
    kept on this machine: :func:`last_check`."""
    repo.require_owner("check")
    return Checker(repo, reporter).run(read_data=read_data)


def last_check(repo: Repository) -> LastCheck | None:
    """When this machine last checked the repository, and what it found
    (None if it never did)."""
    return checks.last_check(repo)


def find(
    repo: Repository, snapshots: Sequence[SnapshotInfo], patterns: Sequence[str]
) -> Iterator[tuple[SnapshotInfo, list[tuple[bytes, Node]]]]:
    """For each snapshot, the (path, node) pairs whose path matches one of
    ``patterns`` (as ``neostore find``: a glob without "/" matches a name,
    one with "/" the whole path). A folder that several snapshots share
    is searched once."""
    repo.load_index()
    return _find(repo, list(snapshots), list(patterns))


def diff(
    repo: Repository, before: SnapshotInfo, after: SnapshotInfo, path: str | bytes = "/"
) -> Iterator[Change]:
    """What changed below ``path`` from ``before`` to ``after``, in path
    order (as ``neostore diff``); each :class:`Change` is ``added``,
    ``removed``, ``modified`` (content) or ``metadata``."""
    repo.load_index()
    return diffs.diff_at(repo, before, after, path)


def dump_archive(
    repo: Repository,
    snapshot: SnapshotInfo,
    path: str | bytes,
    kind: str,
    out: BinaryIO,
    reporter: Reporter | None = None,
) -> ArchiveStats:
    """Write the folder (or file) at ``path`` to ``out`` as a ``"tar"`` or
    ``"zip"`` archive (as ``neostore dump --archive``). A file that fails
    verification is zero-filled, reported to ``reporter.error`` and listed
    in the result's ``errors``; the archive stays well-formed."""
    report = reporter or Reporter()
    return write_archive(repo, snapshot, path, kind, out, report.error)


def count_paths(
    paths: Sequence[str],
    excludes: Sequence[str] = (),
    one_file_system: bool = False,
    stop: threading.Event | None = None,
) -> PathCount:
    """A quick count (no content read, no key) of the files, folders and
    bytes a snapshot of ``paths`` will walk, for a progress bar's total
    and an ETA; ``stop`` ends it early (``complete`` is then False)."""
    return _count_paths(paths, excludes, one_file_system, stop)


def check_reachable(repo: Repository) -> None:
    """Raise :class:`~neostore.errors.RepositoryNotFound` when the store no
    longer holds the repository (a folder moved, a disk unmounted) and a
    :class:`~neostore.errors.BackendError` when the store cannot be
    reached; return otherwise. One cheap request: for a program that keeps
    a repository open, before it reads "no snapshots" as the truth."""
    if not repo.objects.exists_repository():
        raise RepositoryNotFound(f"{repo.objects.location}: the repository is no longer there")


def state_dir() -> Path:
    """Where neostore keeps this user's local state (``$NEOSTORE_STATE_DIR``,
    else ``$XDG_STATE_HOME/neostore``, else ``~/.local/state/neostore``):
    pins, last checks, and what programs built on neostore keep there."""
    return localstate.state_dir()


def stored_bytes(repo: Repository) -> int:
    """Space the repository takes in its store: every object, as listed."""
    return sum(sum(repo.objects.list(otype).values()) for otype in map(ObjectType, OBJECT_TYPES))
