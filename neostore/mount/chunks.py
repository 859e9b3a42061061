"""Reading files through a mount: only the chunks a read touches, a
bounded cache of plaintext chunks shared by every open file, and
read-ahead for sequential reads (from a remote store, the file's next
window of blobs in one request)."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Sequence

from ..core.repository import Repository
from ..format.blob import Ref
from ..format.targets import DATA

#: the default size of the chunk cache
DEFAULT_CACHE = 256 << 20


class ChunkCache:
    """Verified plaintext chunks by blob id, least recently used evicted
    past ``capacity`` bytes. Thread-safe."""

    def __init__(self, repo: Repository, capacity: int = DEFAULT_CACHE) -> None:
        self._repo = repo
        self._capacity = capacity
        self._lock = threading.Lock()
        self._chunks: OrderedDict[bytes, bytes] = OrderedDict()
        self.size = 0

    def get(self, ref: Ref, stored: bytes | None = None) -> bytes:
        with self._lock:
            data = self._chunks.get(ref.blob_id)
            if data is not None:
                self._chunks.move_to_end(ref.blob_id)
                return data
        data = self._repo.blobs.read(DATA, ref, stored)  # verified
        self._put(ref.blob_id, data)
        return data

    def has(self, ref: Ref) -> bool:
        with self._lock:
            return ref.blob_id in self._chunks

    def _put(self, blob_id: bytes, data: bytes) -> None:
        with self._lock:
            if blob_id in self._chunks or len(data) > self._capacity:
                return
            self._chunks[blob_id] = data
            self.size += len(data)
            while self.size > self._capacity:
                _, old = self._chunks.popitem(last=False)
                self.size -= len(old)


class OpenFile:
    """One open file: where each chunk starts, and where the last read
    ended (a read that starts there is sequential)."""

    def __init__(self, refs: Sequence[Ref], cache: ChunkCache, repo: Repository) -> None:
        self._refs = refs
        self._cache = cache
        self._repo = repo
        self._starts: list[int] = []
        offset = 0
        for ref in refs:
            self._starts.append(offset)
            offset += ref.length
        self.size = offset
        self._next = 0

    def read(self, size: int, offset: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        end = min(self.size, offset + size)
        index = bisect.bisect_right(self._starts, offset) - 1
        sequential = offset == self._next
        if sequential and self._repo.blobs.batch_reads:
            self._read_ahead(index)
        parts = []
        while offset < end:
            data = self._cache.get(self._refs[index])
            start = offset - self._starts[index]
            piece = data[start : start + (end - offset)]
            parts.append(piece)
            offset += len(piece)
            index += 1
        self._next = end
        return b"".join(parts)

    def _read_ahead(self, index: int) -> None:
        """From a remote store: the file's next window of blobs not yet
        cached, in as few requests as the store allows."""
        if self._cache.has(self._refs[index]):
            return
        blobs = self._repo.blobs
        window = blobs.window(self._refs, index)
        stored = blobs.prefetch(DATA, window)
        for ref in window:
            if ref.blob_id in stored:
                self._cache.get(ref, stored[ref.blob_id])
