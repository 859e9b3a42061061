"""Publishing snapshots to a target's shares, and withdrawing them.

For each snapshot, a writer seals to every active share a **capability**:
the node of the shared path P in that snapshot (its blob keys open P's
subtree and nothing else), signed by the writer. When the owner forgets a
snapshot, it first leaves a signed **withdrawal** for each share that had
it, so the holder does not take the gap for a store hiding snapshots
(formats: :mod:`neostore.format.shares`).
"""

from __future__ import annotations

import time

from ..backend.names import ObjectType
from ..browse.navigate import find_node
from ..core import objects
from ..core.repository import Repository
from ..errors import NeostoreError, NotFound
from ..format.keyfile import Role
from ..format.shares import (
    Capability,
    Withdrawal,
    cap_name,
    is_hex64,
    seal_cap,
    seal_withdrawal,
    withdrawal_name,
)
from ..format.targets import TargetRecord
from ..format.writer import WriterIdentity
from ..snapshots.catalog import list_snapshots, load_snapshot
from ..snapshots.forgotten import forgotten
from ..snapshots.info import SnapshotInfo
from .lists import current_sharelist


def withdraw(
    repo: Repository,
    record: TargetRecord,
    snapshot_ids: list[bytes],
    replaced: dict[bytes, bytes] | None = None,
) -> int:
    """Remove the capabilities of forgotten snapshots from the target's
    shares, revoked ones included (owner keys). Each gets an owner-signed
    withdrawal first, sealed to the share, so its holder does not take the
    gap for a store hiding snapshots; then the capability is deleted.
    ``replaced``: the snapshot that replaces a forgotten one (tag, repair),
    named in the withdrawal so a holder can insist on seeing it. Returns
    how many went."""
    owner = repo.require_owner("withdrawing share capabilities")
    shares = current_sharelist(repo, record).shares
    if not shares or not snapshot_ids:
        return 0
    existing = repo.objects.list(ObjectType.SHARES)
    removed = 0
    for share in shares:
        for snapshot_id in snapshot_ids:
            cap = cap_name(share.share_id, snapshot_id)
            if objects.share_object(share.name, cap).name not in existing:
                continue
            successor = (replaced or {}).get(snapshot_id)
            follows = None if successor is None else cap_name(share.share_id, successor)
            if follows is not None and objects.share_object(share.name, follows).name not in (
                existing
            ):
                follows = None  # not published to this share (revoked, or not in it)
            stored = seal_withdrawal(
                Withdrawal(cap, follows),
                repo_id=repo.repo_id,
                share=share,
                owner=owner,
                time_ns=time.time_ns(),
            )
            leaf = withdrawal_name(share.share_id, cap)
            repo.objects.save(objects.share_object(share.name, leaf), stored)
            repo.objects.remove(objects.share_object(share.name, cap), missing_ok=True)
            removed += 1
    return removed


def publish(
    repo: Repository,
    record: TargetRecord,
    writer: WriterIdentity,
    snapshots: list[SnapshotInfo],
    only: set[str] | None = None,
) -> int:
    """Seal each snapshot's capability to every active share (or those
    named in ``only``) that lacks one; returns how many were written."""
    shares = [s for s in current_sharelist(repo, record).active if only is None or s.name in only]
    if only is not None and len(shares) != len(only):
        missing = only - {s.name for s in shares}
        raise NotFound(f"no active share named {', '.join(sorted(missing))} in {record.name}")
    if not shares or not snapshots:
        return 0
    existing = repo.objects.list(ObjectType.SHARES)
    written = 0
    for info in snapshots:
        for share in shares:
            address = objects.share_object(share.name, cap_name(share.share_id, info.snapshot_id))
            if address.name in existing:
                continue
            node = find_node(repo, info.manifest.root, share.path)
            if node is None:
                continue  # P is not in this snapshot
            m = info.manifest
            cap = Capability(
                snapshot_id=info.snapshot_id,
                target_id=record.target_id,
                epoch=m.epoch,
                writer_id=m.writer_id,
                seq=m.seq,
                time_ns=m.time_ns,
                host=m.host,
                tags=m.tags,
                node=node,
                after=tuple(m.after),
            )
            stored = seal_cap(cap, repo_id=repo.repo_id, share=share, writer=writer)
            if repo.objects.save_new(address, stored):
                written += 1
    return written


def publish_or_warn(
    repo: Repository, record: TargetRecord, writer: WriterIdentity, snapshots: list[SnapshotInfo]
) -> int:
    """:func:`publish` right after saving snapshots: they are safe already,
    so a failure here is a warning (``share sync`` publishes them later)."""
    try:
        return publish(repo, record, writer, snapshots)
    except NeostoreError as e:
        repo.on_problem(NeostoreError(f"snapshot saved, but not published to shares: {e}"))
        return 0


def sync(repo: Repository, target: str, only: set[str] | None = None) -> int:
    """Publish every existing snapshot of ``target`` to the shares (needed
    for snapshots made before a share existed). The key must read the
    target's snapshots and sign for it: owner or read-write."""
    record = repo.target(target)
    if repo.role not in (Role.OWNER, Role.READ_WRITE):
        raise repo.deny(
            f"publishing snapshots of target {target!r} to its shares", "an owner or read-write key"
        )
    repo.require_reader(record)
    writer = repo.writer
    live = list_snapshots(repo, target, on_error=repo.on_problem)
    gone = forgotten(repo, record)
    repo.load_index()
    published = publish(repo, record, writer, live, only)
    if repo.role == Role.OWNER and gone:  # capabilities a forget left behind
        withdraw(repo, record, list(gone), _replacements(repo, record, live, set(gone)))
    return published


def _replacements(
    repo: Repository, record: TargetRecord, live: list[SnapshotInfo], gone: set[bytes]
) -> dict[bytes, bytes]:
    """For forgotten snapshots still in the store (an interrupted tag or
    repair): the newest live snapshot of the same line (same ``original``)."""
    out: dict[bytes, bytes] = {}
    for leaf in repo.objects.list_group(ObjectType.SNAPSHOTS, record.name):
        if not is_hex64(leaf) or bytes.fromhex(leaf) not in gone:
            continue
        try:
            info = load_snapshot(repo, record, leaf)
        except NeostoreError:
            continue  # unreadable: withdrawn without a replacement
        line = info.manifest.original or info.snapshot_id
        for candidate in live:
            if candidate.manifest.original == line:
                out[info.snapshot_id] = candidate.snapshot_id
    return out
