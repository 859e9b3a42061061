"""``stats``: what restoring snapshots writes, and the distinct data behind
them. Each distinct directory listing is read once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core.repository import Repository
from ..format.blob import Ref
from ..format.tree import DIR, FILE, Node
from ..snapshots.info import SnapshotInfo
from .navigate import listing_key, root_listing


@dataclass
class Stats:
    snapshots: int = 0
    files: int = 0
    dirs: int = 0
    others: int = 0
    restore_size: int = 0  # bytes of file content a restore of them all writes
    blobs: int = 0  # distinct blobs they reference (content and listings)
    plain_bytes: int = 0  # their size before compression and encryption
    stored_bytes: int = 0  # their size in packs

    @property
    def compression(self) -> float:
        return self.plain_bytes / self.stored_bytes if self.stored_bytes else 1.0

    @property
    def dedup(self) -> float:
        """Restore size over the distinct data it is made of."""
        return self.restore_size / self.plain_bytes if self.plain_bytes else 1.0


def stats(repo: Repository, snapshots: list[SnapshotInfo]) -> Stats:
    """Counts for restoring ``snapshots`` and for the data they share.
    Each distinct directory listing is read once."""
    out = Stats(snapshots=len(snapshots))
    seen: set[bytes] = set()
    memo: dict[tuple[bytes, ...], tuple[int, int, int, int]] = {}

    def blobs(refs: Sequence[Ref]) -> None:
        for ref in refs:
            if ref.blob_id not in seen:
                seen.add(ref.blob_id)
                out.blobs += 1
                out.plain_bytes += ref.length
                out.stored_bytes += repo.blobs.stored_size(ref)

    def walk(nodes: Sequence[Node]) -> tuple[int, int, int, int]:
        files = dirs = others = size = 0
        for node in nodes:
            if node.type == FILE:
                files, size = files + 1, size + node.size
                blobs(node.content)
            elif node.type == DIR:
                key = listing_key(node.subtree)
                below = memo.get(key)
                if below is None:
                    blobs(node.subtree)
                    below = memo[key] = walk(repo.blobs.load_tree(node.subtree))
                dirs += 1 + below[1]
                files, others, size = files + below[0], others + below[2], size + below[3]
            else:
                others += 1
        return files, dirs, others, size

    for info in snapshots:
        if info.shared_root is None:
            blobs(info.manifest.root)
        files, dirs, others, size = walk(root_listing(repo, info))
        out.files, out.dirs, out.others = out.files + files, out.dirs + dirs, out.others + others
        out.restore_size += size
    return out
