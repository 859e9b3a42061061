"""The files cache: lets an unchanged file skip reading.

Keyed by (path, inode, size, mtime_ns, ctime_ns); maps to the file's content
refs. One SQLite file per (repository, dedup domain, epoch) under the user's
cache directory. Always rebuildable: deleting it only costs a re-read.
Entries are used only when every blob they name is still in the index.
Refs include blob keys, so the directory is private to the user (0700).

Rows are keyed by (directory, name) and fetched a directory at a time: the
walk asks about every entry of a directory in turn, so one query per
directory replaces one per file. Refs are stored as fixed 104-byte records
(blob id, key, digest, u64 LE length), so reading one back is slicing, not
decoding: an unchanged re-snapshot reads every row.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

from ..format.blob import Ref, refs_from_records, refs_to_records

SCHEMA_VERSION = 3
#: directories whose rows are kept in memory (the walk's current path and
#: the directories it will come back to)
_DIRS_KEPT = 256

_Row = tuple[int, int, int, int, bytes]


class FilesCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._db.execute("DROP TABLE IF EXISTS files")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (dir BLOB, name BLOB, inode INTEGER, size INTEGER,"
            " mtime INTEGER, ctime INTEGER, refs BLOB, PRIMARY KEY (dir, name)) WITHOUT ROWID"
        )
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, bytes, int, int, int, int, bytes]] = []
        self._dirs: OrderedDict[bytes, dict[bytes, _Row]] = OrderedDict()

    def _directory(self, directory: bytes) -> dict[bytes, _Row]:
        rows = self._dirs.get(directory)
        if rows is None:
            with self._lock:
                fetched = self._db.execute(
                    "SELECT name, inode, size, mtime, ctime, refs FROM files WHERE dir = ?",
                    (directory,),
                ).fetchall()
            rows = {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in fetched}
            self._dirs[directory] = rows
            if len(self._dirs) > _DIRS_KEPT:
                self._dirs.popitem(last=False)
        else:
            self._dirs.move_to_end(directory)
        return rows

    def lookup(
        self, path: bytes, inode: int, size: int, mtime_ns: int, ctime_ns: int
    ) -> tuple[str, list[Ref] | None]:
        """``("new", None)``, ``("changed", None)`` or ``("unchanged", refs)``.

        Called from the walking thread only.
        """
        directory, _, name = path.rpartition(b"/")
        row = self._directory(directory).get(name)
        if row is None:
            return "new", None
        if row[:4] != (inode, size, mtime_ns, ctime_ns):
            return "changed", None
        refs = refs_from_records(row[4])
        if refs is None:
            return "changed", None  # damaged: read the file again
        return "unchanged", refs

    def store(
        self, path: bytes, inode: int, size: int, mtime_ns: int, ctime_ns: int, refs: list[Ref]
    ) -> None:
        directory, _, name = path.rpartition(b"/")
        blob = refs_to_records(refs)
        with self._lock:
            self._pending.append((directory, name, inode, size, mtime_ns, ctime_ns, blob))
            if len(self._pending) >= 4096:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending
        )
        self._db.execute("COMMIT")
        self._pending = []

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            self._db.close()
