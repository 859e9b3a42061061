"""Searching and comparing snapshots: ``find`` and ``diff``.

Both skip work by blob ids: a subtree whose listing has the same blob ids in
two places is the same subtree (listings are content-addressed), so ``diff``
does not descend into unchanged directories and ``find`` searches a
directory that many snapshots share once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..core.repository import Repository
from ..format.tree import DIR, FILE, Node
from ..matcher import PathMatcher
from ..snapshots.info import SnapshotInfo
from .navigate import root_listing

ADDED, REMOVED, MODIFIED, METADATA = "added", "removed", "modified", "metadata"


def _ids(refs: list) -> tuple[bytes, ...]:  # type: ignore[type-arg]
    return tuple(r.blob_id for r in refs)


# -- find -----------------------------------------------------------------------------


def find(
    repo: Repository, snapshots: list[SnapshotInfo], patterns: list[str]
) -> Iterator[tuple[SnapshotInfo, list[tuple[bytes, Node]]]]:
    """For each snapshot, the (path, node) pairs whose path matches one of
    ``patterns`` (globs as for --exclude: without "/", a name; with "/",
    the whole path)."""
    matcher = PathMatcher(patterns)
    # results per (listing, prefix); the prefix matters only to whole-path patterns
    memo: dict[tuple[tuple[bytes, ...], bytes], list[tuple[bytes, Node]]] = {}

    def search(nodes: list[Node], prefix: bytes) -> list[tuple[bytes, Node]]:
        found = []
        for node in nodes:
            path = prefix + b"/" + node.name
            if matcher.matches(path):
                found.append((path, node))
            if node.type == DIR:
                found.extend(search_dir(node, path))
        return found

    def search_dir(node: Node, path: bytes) -> list[tuple[bytes, Node]]:
        key = (_ids(node.subtree), path if matcher.full else b"")
        cached = memo.get(key)
        if cached is None:
            cached = [
                (p[len(path) :], n) for p, n in search(repo.blobs.load_tree(node.subtree), path)
            ]
            memo[key] = cached
        return [(path + p, n) for p, n in cached]

    for info in snapshots:
        yield info, search(root_listing(repo, info), b"")


# -- diff -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    path: bytes
    kind: str  # added | removed | modified | metadata
    before: Node | None
    after: Node | None


def _metadata(node: Node) -> tuple[object, ...]:
    """What counts as a metadata change (not atime, ctime or inode numbers,
    which change without the user changing anything)."""
    return (
        node.mode,
        node.uid,
        node.gid,
        node.user,
        node.group,
        node.mtime_ns,
        node.size,
        node.rdev,
        sorted(node.xattrs.items()),
    )


def _content(node: Node) -> object:
    """By plaintext hash, not blob id: blob ids are keyed per dedup domain,
    so the same content has other ids in another target."""
    if node.type == FILE:
        return tuple((r.digest, r.length) for r in node.content)
    return node.link_target


def _everything(repo: Repository, node: Node, path: bytes, kind: str) -> Iterator[Change]:
    before, after = (node, None) if kind == REMOVED else (None, node)
    yield Change(path, kind, before, after)
    if node.type == DIR:
        for child in repo.blobs.load_tree(node.subtree):
            yield from _everything(repo, child, path + b"/" + child.name, kind)


def diff(
    repo: Repository, before: list[Node], after: list[Node], prefix: bytes = b""
) -> Iterator[Change]:
    """Changes from listing ``before`` to ``after``, in path order."""
    old = {n.name: n for n in before}
    new = {n.name: n for n in after}
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        path = prefix + b"/" + name
        if a is None or b is None or a.type != b.type:
            if a is not None:
                yield from _everything(repo, a, path, REMOVED)
            if b is not None:
                yield from _everything(repo, b, path, ADDED)
            continue
        if _content(a) != _content(b):
            yield Change(path, MODIFIED, a, b)
        elif _metadata(a) != _metadata(b):
            yield Change(path, METADATA, a, b)
        if a.type == DIR and _ids(a.subtree) != _ids(b.subtree):
            yield from diff(
                repo, repo.blobs.load_tree(a.subtree), repo.blobs.load_tree(b.subtree), path
            )


# -- stats ----------------------------------------------------------------------------


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

    def blobs(refs: list) -> None:  # type: ignore[type-arg]
        for ref in refs:
            if ref.blob_id not in seen:
                seen.add(ref.blob_id)
                location = repo.index.lookup(ref.blob_id)
                out.blobs += 1
                out.plain_bytes += ref.length
                out.stored_bytes += location.length if location is not None else 0

    def walk(nodes: list[Node]) -> tuple[int, int, int, int]:
        files = dirs = others = size = 0
        for node in nodes:
            if node.type == FILE:
                files, size = files + 1, size + node.size
                blobs(node.content)
            elif node.type == DIR:
                key = _ids(node.subtree)
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
