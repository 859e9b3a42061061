"""``find``: which snapshots hold a path matching a pattern.

Work is skipped by blob ids: a subtree whose listing has the same blob ids
in two snapshots is the same subtree (listings are content-addressed), so a
directory that many snapshots share is searched once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..core.repository import Repository
from ..format.tree import DIR, Node
from ..matcher import PathMatcher
from ..snapshots.info import SnapshotInfo
from .navigate import in_snapshot, listing_key, root_listing


def find(
    repo: Repository,
    snapshots: list[SnapshotInfo],
    patterns: list[str],
    ignore_case: bool = False,
) -> Iterator[tuple[SnapshotInfo, list[tuple[bytes, Node]]]]:
    """For each snapshot, the (path, node) pairs whose path matches one of
    ``patterns`` (restic's globs, as for --exclude; a match is the path
    itself, not what lies below it)."""
    matcher = PathMatcher([], patterns) if ignore_case else PathMatcher(patterns)
    # results per (listing, prefix); the prefix matters only to whole-path patterns
    memo: dict[tuple[tuple[bytes, ...], bytes], list[tuple[bytes, Node]]] = {}

    def search(nodes: Sequence[Node], prefix: bytes) -> list[tuple[bytes, Node]]:
        found = []
        for node in nodes:
            path = prefix + b"/" + node.name
            if matcher.matches_exactly(path):
                found.append((path, node))
            if node.type == DIR:
                found.extend(search_dir(node, path))
        return found

    def search_dir(node: Node, path: bytes) -> list[tuple[bytes, Node]]:
        key = (listing_key(node.subtree), b"" if matcher.by_name else path)
        cached = memo.get(key)
        if cached is None:
            cached = [
                (p[len(path) :], n) for p, n in search(repo.blobs.load_tree(node.subtree), path)
            ]
            memo[key] = cached
        return [(path + p, n) for p, n in cached]

    for info in snapshots:
        with in_snapshot(info):
            found = search(root_listing(repo, info), b"")
        yield info, found
