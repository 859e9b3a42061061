"""A local journal of the packs a run uploaded and has not indexed yet.

Index files are written every ``INDEX_EVERY`` packs or ``INDEX_INTERVAL``
seconds (:mod:`.packer`): more often would mean an object per pack in the
store, for every later run to read. In between, each durable pack's record
(what the index will say about it) is appended to a file in the cache,
held under an exclusive lock while its run lives. A run killed before its
next index leaves the file behind; the next run of the same key on this
machine (any :class:`~.packer.Packer` of the same domain) finds it
unlocked, checks that each pack is in the store with the size recorded,
and indexes those: only the packs that were still uploading are lost, about
one per upload thread or content worker. The records hold blob ids and
offsets (no keys), in the cache directory (0700); losing the file costs
re-uploads, never data.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import msgpack

from .. import filelocks
from ..format.indexfile import PackRecord
from ..format.pack import PackEntry


class Journal:
    def __init__(self, directory: Path, prefix: str) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        self.prefix = prefix
        self.path = directory / f"{prefix}{os.getpid()}-{os.urandom(4).hex()}"
        #: held for the run: a journal whose lock is free is an orphan
        self._lock = filelocks.acquire(_lock_path(self.path))
        self._file = open(self.path, "ab")  # noqa: SIM115 -- held for the run

    def add(self, record: PackRecord) -> None:
        entries = [e.encode() for e in record.entries]
        self._file.write(msgpack.packb([record.pack_id, record.size, entries]))
        self._file.flush()  # in the page cache: survives the process, not the machine

    def clear(self) -> None:
        """Everything recorded so far is indexed."""
        self._file.truncate(0)
        self._file.seek(0)

    def close(self) -> None:
        """The run ended with its packs indexed: nothing to recover."""
        self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._lock.release()
        with contextlib.suppress(OSError):
            _lock_path(self.path).unlink()

    def orphans(self) -> Iterator[tuple[Path, list[PackRecord]]]:
        """Journals of runs that ended without indexing (unlocked ones of
        this prefix), each with its records; a torn last record is dropped.
        The caller removes a journal once it has indexed its records (the
        lock is let go after that)."""
        for path in sorted(self.directory.glob(f"{self.prefix}*")):
            if path == self.path or path.name.endswith(LOCK_SUFFIX):
                continue
            lock = filelocks.try_acquire(_lock_path(path))
            if lock is None:
                continue  # a live run's, or being recovered by another
            try:
                yield path, _records(path.read_bytes())
            except FileNotFoundError:
                continue  # just recovered by another
            finally:
                lock.release()
                if not path.exists():
                    with contextlib.suppress(OSError):
                        _lock_path(path).unlink()


#: a journal's lock file is its name with this after it
LOCK_SUFFIX = ".lock"


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + LOCK_SUFFIX)


def _records(data: bytes) -> list[PackRecord]:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    out = []
    try:
        for pack_id, size, entries in unpacker:
            out.append(PackRecord(pack_id, size, [PackEntry(*e) for e in entries]))
    except (ValueError, TypeError, msgpack.UnpackException):
        pass  # a record cut short by the kill, or a damaged file: keep what read
    return out
