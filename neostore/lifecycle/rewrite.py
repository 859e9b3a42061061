"""Replacement manifests: how ``tag``, ``rewrite`` and ``repair snapshots`` change a
snapshot that is already saved.

A manifest is signed by the writer that made it and sealed; nobody can edit
it. A change is therefore a new manifest, signed by this key and appended
to this key's own chain (next ``seq``, ``prev`` its last snapshot), that
keeps the old snapshot's time, host, paths and parent and records
``original`` (the snapshot the line began with) and ``rewritten`` (when
this manifest was made; :func:`neostore.snapshots.order.chain_order` keeps it in its
old place). The old snapshot is then forgotten through an owner-signed
forget record, so its chain stays whole for every reader
(docs/design.md, "Tag and repair snapshots").

Order: new manifests → forget record → old manifests deleted. Interrupted
in between, both versions exist; nothing is lost.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from ..core.condemned import keep_condemned
from ..core.packer import Packer
from ..core.repository import Repository
from ..format.blob import Ref
from ..format.targets import TREE
from ..shares.lists import current_sharelist
from ..shares.publish import publish_or_warn
from ..snapshots.catalog import chain_head, list_snapshots, save_snapshot
from ..snapshots.info import SnapshotInfo
from .forget import forget


@dataclass
class Rewritten:
    old: SnapshotInfo
    new: SnapshotInfo


def rewrite(
    repo: Repository,
    target: str,
    changes: list[tuple[SnapshotInfo, dict[str, Any]]],
    *,
    forget_originals: bool = True,
) -> list[Rewritten]:
    """Save a replacement for each ``(snapshot, {field: new value})`` of one
    target, then forget the originals (owner keys only)."""
    record = repo.target(target)
    if forget_originals:
        repo.require_owner("replacing snapshots (the originals are forgotten)")
    writer = repo.writer
    epoch = repo.domain(record).epoch
    if current_sharelist(repo, record).active:
        repo.load_index()  # publishing to shares reads the trees
    existing = list_snapshots(repo, target, on_error=repo.on_problem)
    seq, prev = chain_head(repo, record, existing)
    done: list[Rewritten] = []
    for old, fields in changes:
        m = old.manifest
        manifest = dataclasses.replace(
            m,
            writer_id=writer.writer_id,
            epoch=epoch,
            seq=seq + 1,
            prev=prev,
            original=m.original if m.original is not None else old.snapshot_id,
            rewritten_ns=time.time_ns(),
            privileged=old.owner_tree,
            **fields,
        )
        snapshot_id = save_snapshot(repo, record, manifest)
        seq, prev = manifest.seq, snapshot_id
        done.append(Rewritten(old, SnapshotInfo(snapshot_id, target, manifest)))
    publish_or_warn(repo, record, writer, [r.new for r in done])
    if forget_originals and done:
        replaced = {r.old.snapshot_id: r.new.snapshot_id for r in done}
        forget(repo, record, [r.old for r in done], replaced)
    return done


class ListingWriter:
    """The new directory listings of one target's rewritten snapshots, and
    then their replacements (``repair snapshots``, ``rewrite --exclude``):
    listings first, the manifests that name them after."""

    def __init__(self, repo: Repository, target: str, dry_run: bool = False) -> None:
        self.repo = repo
        self.record = repo.target(target)
        self.dry_run = dry_run
        self._packer: Packer | None = None

    def store(self, listing: bytes) -> list[Ref]:
        if self.dry_run:
            return []  # and needs no key that can write
        if self._packer is None:
            domain = self.repo.domain(self.record)
            self._packer = Packer(self.repo, self.record, domain, self.repo.writer)
        return self._packer.store_buffer(TREE, listing)

    def replace(
        self, changes: list[tuple[SnapshotInfo, dict[str, Any]]], forget_originals: bool, what: str
    ) -> list[Rewritten]:
        """Each ``(snapshot, fields)`` with its new ``root``: the listings
        made durable, the data they reuse kept from a prune's condemnation,
        then the replacements saved."""
        if self._packer is not None:
            self._packer.flush()
            for _, fields in changes:  # a prune may have condemned what they reuse
                keep_condemned(self.repo, fields["root"], self._packer, what)
            self._packer.close()
        return rewrite(self.repo, self.record.name, changes, forget_originals=forget_originals)

    def abort(self) -> None:
        if self._packer is not None:
            self._packer.abort()


def retag(
    tags: list[str], add: list[str], remove: list[str], set_to: list[str] | None
) -> list[str]:
    """restic's order: ``--set`` replaces, then ``--add``, then ``--remove``."""
    out = list(dict.fromkeys(set_to)) if set_to is not None else list(tags)
    out += [t for t in dict.fromkeys(add) if t not in out]
    return [t for t in out if t not in set(remove)]


def tag(
    repo: Repository,
    snapshots: list[SnapshotInfo],
    add: list[str],
    remove: list[str],
    set_to: list[str] | None = None,
) -> tuple[list[Rewritten], list[SnapshotInfo]]:
    """Change the tags of ``snapshots``; returns what was rewritten and the
    snapshots whose tags were already as asked."""
    repo.require_owner("changing tags (the old versions are forgotten)")
    by_target: dict[str, list[tuple[SnapshotInfo, dict[str, Any]]]] = {}
    unchanged: list[SnapshotInfo] = []
    seen: set[bytes] = set()
    for info in snapshots:
        if info.snapshot_id in seen:
            continue
        seen.add(info.snapshot_id)
        new_tags = retag(info.manifest.tags, add, remove, set_to)
        if new_tags == info.manifest.tags:
            unchanged.append(info)
        else:
            by_target.setdefault(info.target, []).append((info, {"tags": new_tags}))
    done: list[Rewritten] = []
    for target, changes in by_target.items():
        done += rewrite(repo, target, changes)
    return done, unchanged
