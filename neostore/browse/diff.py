"""``diff``: what changed between two snapshots.

A subtree whose listing has the same blob ids on both sides is the same
subtree (listings are content-addressed): ``diff`` does not descend into it.
Content is compared by plaintext hash, not blob id (ids are keyed per
dedup domain, so the same content has other ids in another target).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..core.repository import Repository
from ..errors import NotFound
from ..format.tree import DIR, FILE, Node
from ..snapshots.info import SnapshotInfo
from .navigate import listing_key, normalise, resolve

ADDED, REMOVED, MODIFIED, METADATA = "added", "removed", "modified", "metadata"


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
    repo: Repository, before: Sequence[Node], after: Sequence[Node], prefix: bytes = b""
) -> Iterator[Change]:
    """Changes from listing ``before`` to ``after``, in path order: a merge
    of the two (listings are sorted by name), so neither is held decoded."""
    for name, a, b in _merged(before, after):
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
        if a.type == DIR and listing_key(a.subtree) != listing_key(b.subtree):
            yield from diff(
                repo, repo.blobs.load_tree(a.subtree), repo.blobs.load_tree(b.subtree), path
            )


def _merged(
    before: Iterable[Node], after: Iterable[Node]
) -> Iterator[tuple[bytes, Node | None, Node | None]]:
    """Each name of two name-sorted listings with its node on each side
    (None on a side without it), in name order."""
    old, new = iter(before), iter(after)
    a, b = next(old, None), next(new, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.name < b.name):
            assert a is not None
            yield a.name, a, None
            a = next(old, None)
        elif a is None or b.name < a.name:
            yield b.name, None, b
            b = next(new, None)
        else:
            yield a.name, a, b
            a, b = next(old, None), next(new, None)


def diff_at(
    repo: Repository, before: SnapshotInfo, after: SnapshotInfo, path: str | bytes = b"/"
) -> Iterator[Change]:
    """Changes below ``path`` from snapshot ``before`` to ``after``; a path
    that is not a directory on both sides is compared as one entry.
    Raises NotFound when it is in neither."""
    wanted = normalise(path)

    def at_path(info: SnapshotInfo) -> tuple[Node | None, Sequence[Node]]:
        try:
            return resolve(repo, info, wanted)
        except NotFound:
            return None, []

    (node_a, old), (node_b, new) = at_path(before), at_path(after)
    prefix = wanted.rstrip(b"/")
    if wanted != b"/" and node_a is None and node_b is None:
        raise NotFound(f"{os.fsdecode(wanted)}: in neither snapshot")
    if wanted != b"/" and any(n is None or n.type != DIR for n in (node_a, node_b)):
        prefix = prefix.rsplit(b"/", 1)[0]
        old = [node_a] if node_a is not None else []
        new = [node_b] if node_b is not None else []
    return diff(repo, old, new, prefix)
