"""Reading a file of a snapshot without restoring it: in order (``dump``),
or as a seekable binary stream (the Python API, a mount).

Every byte is verified against the content hash its chunk reference names.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Iterator, Sequence

from ..core.repository import Repository
from ..errors import NotFound, UsageError
from ..format.blob import Ref
from ..format.targets import DATA
from ..format.tree import DIR, FILE, Node
from ..snapshots.info import SnapshotInfo
from .navigate import normalise, resolve


def file_node(repo: Repository, snapshot: SnapshotInfo, path: str | bytes) -> Node:
    """The regular file at ``path`` in a snapshot."""
    wanted = normalise(path)
    node, _ = resolve(repo, snapshot, wanted)
    if node is None or node.type != FILE:
        raise UsageError(
            f"{os.fsdecode(wanted)}: not a regular file in snapshot {snapshot.hex_id[:8]}"
            + (" (a folder: dump --archive tar|zip)" if node is None or node.type == DIR else "")
        )
    return node


def read_file(repo: Repository, snapshot: SnapshotInfo, path: str | bytes) -> Iterator[bytes]:
    """A file's content, chunk by chunk, verified (one window in memory)."""
    return repo.blobs.stream(DATA, file_node(repo, snapshot, path).content)


class FileReader(io.RawIOBase):
    """A snapshot's file as a read-only, seekable binary stream. Reads fetch
    only the chunks they touch (the last one is kept for the next read)."""

    def __init__(self, repo: Repository, node: Node) -> None:
        super().__init__()
        if node.type != FILE:
            raise NotFound(f"{os.fsdecode(node.name)}: not a regular file")
        self._repo = repo
        self._refs: Sequence[Ref] = node.content
        self._starts: list[int] = []
        offset = 0
        for ref in self._refs:
            self._starts.append(offset)
            offset += ref.length
        self._size = offset
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _chunk(self, index: int) -> bytes:
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, self._repo.blobs.read(DATA, self._refs[index]))
        return self._cached[1]

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._size or not len(buffer):
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        data = self._chunk(index)
        start = self._pos - self._starts[index]
        count = min(len(buffer), len(data) - start)
        buffer[:count] = data[start : start + count]
        self._pos += count
        return count


def open_file(repo: Repository, snapshot: SnapshotInfo, path: str | bytes) -> io.BufferedReader:
    """The file at ``path`` in a snapshot, opened for reading (binary,
    seekable, buffered)."""
    return io.BufferedReader(FileReader(repo, file_node(repo, snapshot, path)), 1 << 20)
