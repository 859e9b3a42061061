"""``rewrite --exclude``: new snapshots without the files that match, for
"I backed up a secret by mistake".

Each snapshot's trees are walked; an entry whose path matches the
patterns (restic's, as for ``snapshot --exclude``) is left out with
everything below it, and each directory on the way gets a new listing.
Unchanged subtrees keep their blob ids, so only the listings on the way
to a cut are stored again. The replacements go through
:func:`.rewrite.rewrite` (new trees → new manifests → with
``forget_originals``, an owner-signed forget record), as ``tag`` and
``repair snapshots`` do: chains stay whole, shares get the new snapshots.
The data of the cut files stays in the repository until the originals
are forgotten and ``prune`` runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.repository import Repository
from ..format.blob import Ref
from ..format.tree import DIR, ListingBuilder
from ..matcher import PathMatcher
from ..progress import Reporter
from ..snapshots.catalog import by_target
from ..snapshots.info import SnapshotInfo
from .rewrite import ListingWriter


@dataclass
class Cut:
    """What rewrite left out of one snapshot, and what replaced it."""

    info: SnapshotInfo
    removed: list[bytes] = field(default_factory=list)
    replacement: SnapshotInfo | None = None


class PathCutter:
    def __init__(
        self,
        repo: Repository,
        target: str,
        matcher: PathMatcher,
        dry_run: bool,
        reporter: Reporter | None = None,
    ) -> None:
        self.repo = repo
        self.reporter = reporter or Reporter()
        self.matcher = matcher
        self.listings = ListingWriter(repo, target, dry_run)
        self._done: dict[tuple[tuple[bytes, ...], bytes], tuple[list[Ref], list[bytes]]] = {}
        self.roots: dict[bytes, list[Ref]] = {}

    def examine(self, info: SnapshotInfo) -> Cut:
        root, removed = self._tree(info.manifest.root, b"")
        if removed:
            self.roots[info.snapshot_id] = root
        return Cut(info, removed)

    def _tree(self, refs: Sequence[Ref], path: bytes) -> tuple[list[Ref], list[bytes]]:
        """The listing at ``path`` without what matches (the same refs
        when nothing does), and the paths left out."""
        key = (tuple(r.blob_id for r in refs), path)
        done = self._done.get(key)
        if done is not None:
            return done
        nodes = self.repo.blobs.load_tree(refs)
        self.reporter.advance(0, 1)  # a listing read
        self.reporter.item(path or b"/")
        removed: list[bytes] = []
        kept = []
        for node in nodes:
            child = os.path.join(path or b"/", node.name)
            if self.matcher.matches(child):
                removed.append(child)
                continue
            if node.type == DIR:
                subtree, below = self._tree(node.subtree, child)
                if below:
                    node.subtree = subtree
                    removed += below
            kept.append(node)
        if removed:
            listing = ListingBuilder(len(kept), "rewritten directory")
            for node in kept:
                listing.add(node)
            result = (self.listings.store(listing.finish()), removed)
        else:
            result = (list(refs), removed)
        self._done[key] = result
        return result

    def save(self, cuts: list[Cut], forget_originals: bool) -> None:
        changed = [c for c in cuts if c.removed]
        changes = [(c.info, {"root": self.roots[c.info.snapshot_id]}) for c in changed]
        done = self.listings.replace(changes, forget_originals, "rewrite")
        for cut, rewritten in zip(changed, done, strict=True):
            cut.replacement = rewritten.new


def rewrite_excluding(
    repo: Repository,
    snapshots: list[SnapshotInfo],
    matcher: PathMatcher,
    *,
    forget_originals: bool = False,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> list[Cut]:
    """For each snapshot, a replacement without the paths ``matcher``
    matches (none for a snapshot where nothing matches). Needs a key that
    reads and writes the target; an owner key to forget the originals."""
    if not matcher:
        raise ValueError("rewrite needs at least one pattern")
    if not dry_run:
        repo.writer  # noqa: B018 -- refuse a read-only key before any work
        if forget_originals:
            repo.require_owner("forgetting the originals of rewritten snapshots")
    repo.load_index()
    progress = reporter or Reporter()
    progress.start("rewrite")  # no total: listings shared between snapshots are read once
    cuts: list[Cut] = []
    for name, infos in by_target(snapshots).items():
        repo.require_reader(repo.target(name))
        cutter = PathCutter(repo, name, matcher, dry_run, progress)
        try:
            found = [cutter.examine(info) for info in infos]
            if dry_run or not any(c.removed for c in found):
                cutter.listings.abort()
            else:
                cutter.save(found, forget_originals)
        except BaseException:
            cutter.listings.abort()
            raise
        cuts += found
    progress.finish()
    return cuts
