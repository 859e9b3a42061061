"""The files cache: lets an unchanged file skip reading.

Keyed by (path, inode, size, mtime_ns, ctime_ns); maps to the file's content
refs. One SQLite file per (repository, dedup domain, epoch) under the user's
cache directory. Always rebuildable: deleting it only costs a re-read.
Entries are used only when every blob they name is still in the index.
Refs include blob keys, so the directory is private to the user (0700).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .blob import Ref
from .codec import pack, unpack
from .errors import IntegrityError


class FilesCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (path BLOB PRIMARY KEY, inode INTEGER, size INTEGER,"
            " mtime INTEGER, ctime INTEGER, refs BLOB)"
        )
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, int, int, int, int, bytes]] = []

    def lookup(
        self, path: bytes, inode: int, size: int, mtime_ns: int, ctime_ns: int
    ) -> tuple[str, list[Ref] | None]:
        """``("new", None)``, ``("changed", None)`` or ``("unchanged", refs)``."""
        with self._lock:
            row = self._db.execute(
                "SELECT inode, size, mtime, ctime, refs FROM files WHERE path = ?", (path,)
            ).fetchone()
        if row is None:
            return "new", None
        if tuple(row[:4]) != (inode, size, mtime_ns, ctime_ns):
            return "changed", None
        try:
            raw = unpack(row[4], "files cache entry")
            return "unchanged", [Ref.decode(r, "files cache entry") for r in raw]
        except IntegrityError:
            return "changed", None

    def store(
        self, path: bytes, inode: int, size: int, mtime_ns: int, ctime_ns: int, refs: list[Ref]
    ) -> None:
        blob = pack([r.encode() for r in refs])
        with self._lock:
            self._pending.append((path, inode, size, mtime_ns, ctime_ns, blob))
            if len(self._pending) >= 1000:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", self._pending
        )
        self._db.execute("COMMIT")
        self._pending = []

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            self._db.close()
