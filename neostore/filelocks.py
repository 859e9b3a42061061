"""Exclusive locks on files, on every platform (``filelock``: ``flock`` on
POSIX, ``LockFileEx`` on Windows), for the local state, the upload
journal and neostore-server's account store. A lock lasts until released
or until its process ends, so a crashed run never leaves one held.

A leaf module (no crypto, no repository logic): neostore-server shares it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from filelock import FileLock, Timeout


def acquire(path: str | os.PathLike[str]) -> FileLock:
    """Take the lock at ``path`` (created if missing), waiting for it."""
    lock = FileLock(os.fspath(path), thread_local=False)
    lock.acquire()
    return lock


def try_acquire(path: str | os.PathLike[str]) -> FileLock | None:
    """Take the lock at ``path`` if nobody holds it; None if someone does."""
    lock = FileLock(os.fspath(path), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


@contextlib.contextmanager
def held(path: str | os.PathLike[str]) -> Iterator[None]:
    """The lock at ``path`` for the block."""
    lock = acquire(path)
    try:
        yield
    finally:
        lock.release()
