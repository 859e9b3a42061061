"""A compact blob_id → (pack number, offset, length, type) table.

A ``dict`` of 32-byte keys to tuples costs ~250 bytes per blob; this table
costs ~52–60: the ids live side by side in one ``bytearray`` (32 B), the
locations in one ``array`` of uint32 (12 B), and an open-addressing hash
table of uint32 slots (load ≤ 1/2, 8–16 B) points into them. Blob ids are
keyed BLAKE3 outputs, so their first 8 bytes are already a uniform hash.

Readers do not lock: every mutation happens under the writer lock and a
resize swaps in a complete new slot array, so a concurrent reader sees an
old consistent state at worst and may miss a blob added meanwhile — which
for dedup means one redundant upload, never a wrong answer (ids are
compared in full).
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator

_ID = 32
_TYPE_BIT = 1 << 31


def _slots(capacity: int) -> array[int]:
    return array("I", bytes(4 * capacity))


class BlobTable:
    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity * 2:
            size *= 2
        # (slots, mask) change together: readers take both in one read
        self._state = (_slots(size), size - 1)
        self._ids = bytearray()
        self._locations = array("I")  # pack_no | type << 31, offset, length
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    # to a spawned worker: the arrays (a few flat buffers), not the lock
    def __getstate__(self) -> dict[str, object]:
        with self._lock:
            state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _find(self, blob_id: bytes) -> int:
        """Entry number of ``blob_id``, or -1."""
        (table, mask), ids = self._state, self._ids
        h = int.from_bytes(blob_id[:8], "little") & mask
        while True:
            slot = table[h]
            if slot == 0:
                return -1
            start = (slot - 1) * _ID
            if ids[start : start + _ID] == blob_id:
                return slot - 1
            h = (h + 1) & mask

    def __contains__(self, blob_id: bytes) -> bool:
        return self._find(blob_id) >= 0

    def has_all(self, blob_ids: list[bytes]) -> bool:
        """Whether every id is present (the walk asks this for each cached
        file: one call instead of three per id)."""
        (table, mask), ids = self._state, self._ids
        for blob_id in blob_ids:
            h = int.from_bytes(blob_id[:8], "little") & mask
            while True:
                slot = table[h]
                if slot == 0:
                    return False
                start = (slot - 1) * _ID
                if ids[start : start + _ID] == blob_id:
                    break
                h = (h + 1) & mask
        return True

    def get(self, blob_id: bytes) -> tuple[int, int, int, int] | None:
        """``(pack_no, offset, length, btype)`` or None."""
        entry = self._find(blob_id)
        if entry < 0:
            return None
        packed, offset, length = self._locations[3 * entry : 3 * entry + 3]
        return packed & ~_TYPE_BIT, offset, length, packed >> 31

    def add(self, blob_id: bytes, pack_no: int, offset: int, length: int, btype: int) -> bool:
        """Insert unless present (the first location wins); True if added."""
        if len(blob_id) != _ID or not 0 <= pack_no < _TYPE_BIT or btype not in (0, 1):
            raise ValueError("malformed index entry")
        with self._lock:
            if self._find(blob_id) >= 0:
                return False
            entry = self._count
            self._ids += blob_id
            self._locations.extend((pack_no | (btype << 31), offset, length))
            if (entry + 1) * 2 > self._state[1] + 1:
                self._grow()
            self._place(*self._state, blob_id, entry)
            self._count = entry + 1
            return True

    def add_many(
        self,
        pack_no: int,
        items: list[tuple[bytes, int, int, int]],
        skipped: list[tuple[bytes, int, int, int]] | None = None,
    ) -> int:
        """Bulk :meth:`add` of ``(blob_id, offset, length, btype)`` for one
        pack (index loading); returns how many were new. Items already
        present are appended to ``skipped`` when given."""
        if not 0 <= pack_no < _TYPE_BIT:
            raise ValueError("malformed index entry")
        with self._lock:
            while (self._count + len(items)) * 2 > self._state[1] + 1:
                self._grow()
            (table, mask), ids, locations = self._state, self._ids, self._locations
            entry = self._count
            for blob_id, offset, length, btype in items:
                if len(blob_id) != _ID or btype not in (0, 1):
                    raise ValueError("malformed index entry")
                h = int.from_bytes(blob_id[:8], "little") & mask
                slot = table[h]
                while slot:
                    start = (slot - 1) * _ID
                    if ids[start : start + _ID] == blob_id:
                        break
                    h = (h + 1) & mask
                    slot = table[h]
                if slot:  # known: the first location wins
                    if skipped is not None:
                        skipped.append((blob_id, offset, length, btype))
                    continue
                ids += blob_id
                locations.extend((pack_no | (btype << 31), offset, length))
                entry += 1
                table[h] = entry
            added = entry - self._count
            self._count = entry
            return added

    @staticmethod
    def _place(table: array[int], mask: int, blob_id: bytes | bytearray, entry: int) -> None:
        h = int.from_bytes(blob_id[:8], "little") & mask
        while table[h]:
            h = (h + 1) & mask
        table[h] = entry + 1

    def _grow(self) -> None:
        size = (self._state[1] + 1) * 2
        table, mask, ids = _slots(size), size - 1, self._ids
        for entry in range(self._count):
            h = int.from_bytes(ids[entry * _ID : entry * _ID + 8], "little") & mask
            while table[h]:
                h = (h + 1) & mask
            table[h] = entry + 1
        self._state = (table, mask)  # readers see the old or the new, whole

    def ids(self) -> Iterator[bytes]:
        for entry in range(self._count):
            yield bytes(self._ids[entry * _ID : (entry + 1) * _ID])
