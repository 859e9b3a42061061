"""The in-memory index: where each blob of the loaded index files lives,
which copies to trust for dedup, and which packs a prune condemned."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..format.indexfile import PackRecord
from . import sharedindex
from .blobtable import BlobTable


@dataclass(frozen=True)
class Location:
    pack_id: bytes
    offset: int
    length: int
    btype: int


class MasterIndex:
    """blob_id → location, for the domains this key can read. Thread-safe;
    compact (see :mod:`.blobtable`): about 60 bytes per blob.

    Packs are *trusted* (written by this key or an owner key's writer) or
    not (another delegated writer's). Dedup (``in``, :meth:`has_all`)
    considers trusted copies only, so a leaked writer key that plants
    garbage under a real blob id cannot make honest writers skip the upload
    (docs/design.md, "Dedup trust"). Reads (:meth:`lookup`,
    :meth:`locations`) use every copy, trusted ones first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: sharedindex.SharedIndex | None = None
        self.clear()

    # to a spawned worker: the index as loaded, not the lock; while shared
    # (:meth:`share`), only the name of the shared-memory block holding it
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self._shared is not None:
            return (sharedindex.load, (self._shared.name, self._shared.size))
        with self._lock:
            state = dict(self.__dict__)
        del state["_lock"], state["_shared"]
        return (_revive, (state,))

    def share(self) -> None:
        """Until :meth:`unshare`, workers get this index through one
        shared-memory block (:mod:`.sharedindex`) instead of each its copy
        through its start-up pipe."""
        if self._shared is None:
            self._shared = sharedindex.SharedIndex(self)

    def unshare(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def clear(self) -> None:
        """Forget everything (the index is loaded afresh after a prune swept)."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._packs: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._pack_size: dict[bytes, int] = {}
        #: for packs no trusted listing names: every size an untrusted one claims
        self._claimed_sizes: dict[bytes, set[int]] = {}
        self._trusted_size: set[bytes] = set()
        self._blobs = BlobTable()
        self._other = BlobTable(16)
        #: further copies of a blob (first copy wins in the tables)
        self._extra: dict[bytes, list[tuple[int, int, int, int]]] = {}
        #: those of the further copies a trusted listing names, as (blob id,
        #: pack number, offset): trust is per listing, not per pack (an
        #: untrusted file may claim anything is in a trusted pack)
        self._trusted_extra: set[tuple[bytes, int, int]] = set()
        #: numbers of condemned packs
        self._condemned: set[int] = set()

    def add_pack(self, record: PackRecord, trusted: bool = True) -> None:
        with self._lock:
            number = self._pack_no.get(record.pack_id)
            if number is None:
                number = len(self._packs)
                self._packs.append(record.pack_id)
                self._pack_no[record.pack_id] = number
            if trusted or record.pack_id not in self._pack_size:
                # a pack's size as its own writer or an owner recorded it
                self._pack_size[record.pack_id] = record.size
            if trusted:
                self._trusted_size.add(record.pack_id)
                self._claimed_sizes.pop(record.pack_id, None)
            elif record.pack_id not in self._trusted_size:
                self._claimed_sizes.setdefault(record.pack_id, set()).add(record.size)
            items = [(e.blob_id, e.offset, e.length, e.btype) for e in record.entries]
            table = self._blobs if trusted else self._other
            skipped: list[tuple[bytes, int, int, int]] = []
            table.add_many(number, items, skipped)
            for blob_id, offset, length, btype in skipped:
                here = (number, offset, length, btype)
                if table.get(blob_id) != here and here not in self._extra.get(blob_id, ()):
                    self._extra.setdefault(blob_id, []).append(here)
                if trusted and table.get(blob_id) != here:
                    self._trusted_extra.add((blob_id, number, offset))

    def _location(self, found: tuple[int, int, int, int]) -> Location:
        number, offset, length, btype = found
        return Location(self._packs[number], offset, length, btype)

    def lookup(self, blob_id: bytes) -> Location | None:
        found = self._blobs.get(blob_id) or self._other.get(blob_id)
        if found is not None and found[0] in self._condemned:
            return self.locations(blob_id)[0]
        return None if found is None else self._location(found)

    def locations(self, blob_id: bytes) -> list[Location]:
        """Every known copy of a blob: uncondemned before condemned, and
        within each, copies a trusted listing names first (a reader falls
        back to the next when one fails to verify)."""
        main = self._blobs.get(blob_id)
        found = [main, self._other.get(blob_id)]
        found.extend(self._extra.get(blob_id, ()))
        copies = [f for f in found if f is not None]
        if self._condemned or len(copies) > 2:

            def rank(f: tuple[int, int, int, int]) -> tuple[bool, bool]:
                trusted = f == main or (blob_id, f[0], f[1]) in self._trusted_extra
                return (f[0] in self._condemned, not trusted)

            copies.sort(key=rank)
        return [self._location(f) for f in copies]

    def condemn(self, pack_ids: Iterable[bytes]) -> None:
        """Packs a prune has marked for deletion: still read, never deduped
        against (a writer that reused them would lose its data)."""
        with self._lock:
            for pack_id in pack_ids:
                number = self._pack_no.get(pack_id)
                if number is None:
                    number = len(self._packs)
                    self._packs.append(pack_id)
                    self._pack_no[pack_id] = number
                self._condemned.add(number)

    def is_condemned(self, pack_id: bytes) -> bool:
        number = self._pack_no.get(pack_id)
        return number is not None and number in self._condemned

    def __contains__(self, blob_id: bytes) -> bool:
        """Whether a trusted copy in a pack no prune condemned exists (the
        dedup question)."""
        found = self._blobs.get(blob_id)
        if found is None:
            return False
        if not self._condemned or found[0] not in self._condemned:
            return True
        return any(
            (blob_id, number, offset) in self._trusted_extra and number not in self._condemned
            for number, offset, _, _ in self._extra.get(blob_id, ())
        )

    def has_all(self, blob_ids: list[bytes]) -> bool:
        if not self._condemned:
            return self._blobs.has_all(blob_ids)
        return all(blob_id in self for blob_id in blob_ids)

    def knows(self, blob_id: bytes) -> bool:
        """Whether any copy, trusted or not, is indexed."""
        return blob_id in self._blobs or blob_id in self._other

    def __len__(self) -> int:
        return len(self._blobs) + len(self._other)

    def blob_ids(self) -> Iterator[bytes]:
        yield from self._blobs.ids()
        for blob_id in self._other.ids():
            if blob_id not in self._blobs:
                yield blob_id

    def size_fits(self, pack_id: bytes, size: int) -> bool:
        """Whether a stored size agrees with the index: with the trusted
        listing's size, or, for a pack only untrusted files list, with any
        of theirs (one leaked writer key's wrong size must not make the
        honest writer's pack look damaged)."""
        claims = self._claimed_sizes.get(pack_id)
        if claims is not None:
            return size in claims
        return self._pack_size.get(pack_id) == size

    def pack_size(self, pack_id: bytes) -> int | None:
        """A pack's size as the index records it (None: not indexed)."""
        return self._pack_size.get(pack_id)

    def packs(self) -> Iterator[tuple[bytes, int]]:
        with self._lock:
            items = list(self._pack_size.items())
        yield from items


def _revive(state: dict[str, Any]) -> MasterIndex:
    index = MasterIndex.__new__(MasterIndex)
    index.__dict__.update(state)
    index._lock = threading.Lock()
    index._shared = None
    return index
