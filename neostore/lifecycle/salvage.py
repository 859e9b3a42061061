"""``repair snapshots``: rewrite snapshots around data that is gone.

A snapshot whose trees or file contents name blobs that no existing pack
holds (or, with ``read_data``, whose stored copy fails to decrypt) is
replaced by one that keeps everything still readable:

- a file keeps the chunks that are left, in order (it gets shorter), and
  its name;
- a directory whose listing cannot be read becomes an empty directory;

each recorded in the new manifest's ``lost`` list (path, kind, bytes lost),
and the new snapshot is tagged ``repaired``. The replacement goes through
:func:`.rewrite.rewrite`: new tree blobs are stored first, then the new
manifests, then (with ``forget``) the originals are forgotten.

Only data known to be gone is cut: a blob no index names, a blob whose
every indexed pack is missing (each such pack is asked for once more by
name, so a listing that left one out does not count), or (``read_data``)
a blob whose every copy fails to decrypt. A store that cannot be read
(network, server errors) or index files that do not load stop the repair
before anything is written. Packs confirmed gone are condemned in this
process's copy of the index, so the new trees never dedup against them
(docs/design.md, "Tag and repair snapshots").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..backend.names import ObjectType
from ..core import objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError
from ..format.blob import Ref
from ..format.targets import DATA, TREE
from ..format.tree import DIR, FILE, ListingBuilder
from ..snapshots.catalog import by_target
from ..snapshots.info import SnapshotInfo
from .rewrite import ListingWriter, Rewritten

REPAIRED_TAG = "repaired"

Lost = tuple[bytes, str, int]


@dataclass
class Outcome:
    """What repair found in one snapshot, and what replaced it."""

    info: SnapshotInfo
    lost: list[Lost] = field(default_factory=list)
    replacement: SnapshotInfo | None = None


class Salvager:
    def __init__(
        self, repo: Repository, target: str, *, read_data: bool = False, dry_run: bool = False
    ) -> None:
        self.repo = repo
        self.read_data = read_data
        self._stored = {bytes.fromhex(name) for name in repo.objects.list(ObjectType.DATA)}
        self.missing_packs = []
        for pack_id, _ in repo.index.packs():
            if pack_id not in self._stored:
                if repo.objects.exists(objects.pack(pack_id)):  # the listing missed it
                    self._stored.add(pack_id)
                else:
                    self.missing_packs.append(pack_id)
        # the index may still name packs that are gone: never dedup against them
        repo.index.condemn(self.missing_packs)
        self._readable: dict[bytes, bool] = {}
        self._done: dict[tuple[tuple[bytes, ...], bytes], tuple[list[Ref], list[Lost]]] = {}
        self._new_roots: dict[bytes, list[Ref]] = {}
        self.listings = ListingWriter(repo, target, dry_run)

    def examine(self, info: SnapshotInfo) -> Outcome:
        root, lost = self._tree(info.manifest.root, b"")
        if lost:
            self._new_roots[info.snapshot_id] = root
        return Outcome(info, lost)

    def repair(self, outcomes: list[Outcome], *, forget_originals: bool) -> list[Rewritten]:
        """Store the new trees, then save the replacements (and forget the
        originals when asked)."""
        damaged = [o for o in outcomes if o.lost]
        changes = []
        for outcome in damaged:
            m = outcome.info.manifest
            tags = m.tags if REPAIRED_TAG in m.tags else [*m.tags, REPAIRED_TAG]
            changes.append(
                (
                    outcome.info,
                    {
                        "root": self._new_roots[outcome.info.snapshot_id],
                        "lost": [*m.lost, *outcome.lost],
                        "tags": tags,
                    },
                )
            )
        done = self.listings.replace(changes, forget_originals, "repair")
        for outcome, rewritten in zip(damaged, done, strict=True):
            outcome.replacement = rewritten.new
        return done

    def abort(self) -> None:
        self.listings.abort()

    # -- walking -------------------------------------------------------------------

    def _available(self, btype: int, ref: Ref) -> bool:
        known = self._readable.get(ref.blob_id)
        if known is not None:
            return known
        ok = any(loc.pack_id in self._stored for loc in self.repo.index.locations(ref.blob_id))
        if ok and self.read_data and btype == DATA:
            try:
                self.repo.blobs.read(btype, ref)
            except IntegrityError:  # a store that cannot answer stops the repair
                ok = False
        self._readable[ref.blob_id] = ok
        return ok

    def _tree(self, refs: Sequence[Ref], path: bytes) -> tuple[list[Ref], list[Lost]]:
        """The listing at ``path`` with damage removed (the same refs when
        nothing was), and what was lost below it."""
        key = (tuple(r.blob_id for r in refs), path)
        done = self._done.get(key)
        if done is not None:
            return done
        try:
            if not all(self._available(TREE, r) for r in refs):
                raise IntegrityError("tree blob missing")
            nodes = self.repo.blobs.load_tree(refs)
        except IntegrityError:
            empty = ListingBuilder(0).finish()
            result: tuple[list[Ref], list[Lost]] = (
                self.listings.store(empty),
                [(path or b"/", "dir", 0)],
            )
            self._done[key] = result
            return result
        lost: list[Lost] = []
        changed = False
        listing = ListingBuilder(len(nodes), "repaired directory")  # encoded node by node
        for node in nodes:
            child = os.path.join(path or b"/", node.name)
            if node.type == FILE:
                kept = [r for r in node.content if self._available(DATA, r)]
                if len(kept) != len(node.content):
                    size = sum(r.length for r in kept)
                    lost.append((child, "file", node.size - size))
                    node.content, node.size = kept, size
                    changed = True
            elif node.type == DIR:
                subtree, below = self._tree(node.subtree, child)
                if below:
                    node.subtree = subtree
                    lost += below
                    changed = True
            listing.add(node)
        del nodes
        result = (self.listings.store(listing.finish()) if changed else list(refs), lost)
        self._done[key] = result
        return result


def repair_snapshots(
    repo: Repository,
    target: str,
    snapshots: list[SnapshotInfo],
    *,
    forget_originals: bool = False,
    read_data: bool = False,
    dry_run: bool = False,
) -> tuple[list[Outcome], list[str]]:
    """Examine ``snapshots`` of ``target``; replace the damaged ones unless
    ``dry_run``. Returns the outcomes and the packs the index names that
    are gone (hex)."""
    repo.require_reader(repo.target(target))
    if not dry_run:
        repo.writer  # noqa: B018 -- refuse a read-only key before any work
        if forget_originals:
            repo.require_owner("forgetting the damaged originals")
    unreadable: list[NeostoreError] = []
    repo.load_index(on_error=unreadable.append)
    if unreadable:
        raise NeostoreError(
            f"{len(unreadable)} index file(s) could not be read ({unreadable[0]}); "
            "run `neostore repair index` first. Nothing was changed"
        )
    salvager = Salvager(repo, target, read_data=read_data, dry_run=dry_run)
    try:
        outcomes = [salvager.examine(info) for info in snapshots]
        if not dry_run and any(o.lost for o in outcomes):
            salvager.repair(outcomes, forget_originals=forget_originals)
        else:
            salvager.abort()
    except BaseException:
        salvager.abort()
        raise
    return outcomes, [p.hex() for p in salvager.missing_packs]


def repair_targets(
    repo: Repository,
    snapshots: list[SnapshotInfo],
    *,
    forget_originals: bool = False,
    read_data: bool = False,
    dry_run: bool = False,
) -> list[tuple[str, list[Outcome], list[str]]]:
    """:func:`repair_snapshots` for each target the snapshots belong to:
    (target, outcomes, packs the index names that are gone)."""
    return [
        (
            name,
            *repair_snapshots(
                repo,
                name,
                infos,
                forget_originals=forget_originals,
                read_data=read_data,
                dry_run=dry_run,
            ),
        )
        for name, infos in by_target(snapshots).items()
    ]
