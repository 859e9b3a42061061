"""A target's snapshots: listing, lookup, order, saving, and chain heads.

Snapshots are listed oldest first in chain order (:func:`chain_order`);
``latest`` is refused while the newest snapshot this machine has seen of a
writer is missing and no owner-signed forget record explains it. A share
key sees the snapshots published to its share instead (:mod:`.shared`).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from ..backend.names import ObjectType
from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound, UsageError
from ..format.keyfile import Role
from ..format.manifest import Manifest, open_manifest, seal_manifest
from ..format.targets import TargetRecord
from . import heads, shared
from .forgotten import forgotten
from .info import SnapshotInfo

OnError = Callable[[NeostoreError], None]
T = TypeVar("T")


def list_snapshots(
    repo: Repository, target: str | None = None, on_error: OnError | None = None
) -> list[SnapshotInfo]:
    """Readable snapshots of one or every target, oldest first. A snapshot
    that does not verify goes to ``on_error`` (or raises)."""
    names = [target] if target else repo.target_names()
    records = {name: repo.target(name) for name in names}
    if repo.role == Role.SHARE:
        return shared.order(shared.shared_snapshots(repo, on_error))
    for record in records.values():
        repo.require_reader(record)
    out: list[SnapshotInfo] = []
    for address, _ in repo.objects.addresses(ObjectType.SNAPSHOTS):
        tname, _, sid = address.name.partition("/")
        if tname not in records:
            continue
        try:
            out.append(load_snapshot(repo, records[tname], sid))
        except NeostoreError as e:
            if on_error is None:
                raise
            on_error(e)
    return chain_order(out)


def load_snapshot(repo: Repository, record: TargetRecord, hex_id: str) -> SnapshotInfo:
    address = objects.snapshot(record.name, hex_id)
    manifest, by_owner = open_manifest(
        repo.objects.load_verified(address),
        what=address.what,
        target_sk=repo.target_secret(record),
        repo_id=repo.repo_id,
        owner_vk=repo.material.owner_vk,
        target_id=record.target_id,
    )
    return SnapshotInfo(bytes.fromhex(hex_id), record.name, manifest, by_owner=by_owner)


def find_snapshot(repo: Repository, spec: str, target: str | None = None) -> SnapshotInfo:
    """Resolve ``latest``, a full id or a unique prefix of at least 4 hex digits."""
    if spec == "latest":
        return _latest(repo, target or repo.default_target)
    spec = spec.lower()
    if len(spec) < 4 or any(c not in "0123456789abcdef" for c in spec):
        raise UsageError(f"{spec!r}: give `latest`, a snapshot id or a prefix of ≥ 4 hex digits")
    if target is not None:
        repo.target(target)  # a target this key may not use: refused here
    if repo.role == Role.SHARE:
        return _unique(spec, [i for i in list_snapshots(repo) if i.hex_id.startswith(spec)])
    wanted = {target} if target else set(repo.target_names())
    matches = []
    for address, _ in repo.objects.addresses(ObjectType.SNAPSHOTS):
        tname, _, sid = address.name.partition("/")
        if sid.startswith(spec) and tname in wanted:
            matches.append((tname, sid))
    tname, sid = _unique(spec, matches)
    return load_snapshot(repo, repo.target(tname), sid)


def _unique(spec: str, matches: list[T]) -> T:
    if not matches:
        raise NotFound(f"no snapshot matches {spec!r}")
    if len(matches) > 1:
        raise UsageError(f"{spec!r} matches {len(matches)} snapshots; give more digits")
    return matches[0]


def _latest(repo: Repository, name: str) -> SnapshotInfo:
    snapshots = list_snapshots(repo, name, on_error=repo.on_problem)
    if repo.role == Role.SHARE:
        problem = shared.rollback(repo, snapshots)
        if problem is not None:
            raise IntegrityError(f"{problem}; name a snapshot id to proceed")
    else:
        refuse_rollback(repo, repo.target(name), snapshots)
    if not snapshots:
        raise NotFound(f"target {name!r} has no snapshots")
    return snapshots[-1]


def refuse_rollback(repo: Repository, record: TargetRecord, snapshots: list[SnapshotInfo]) -> None:
    """``latest`` must not quietly fall back to an older snapshot when the
    store hides the newest one this machine has seen."""
    newest: dict[bytes, int] = {}
    for info in snapshots:
        m = info.manifest
        newest[m.writer_id] = max(newest.get(m.writer_id, 0), m.seq)
    present = {info.snapshot_id for info in snapshots}
    gone = None
    for writer_id, (seq, sid) in localstate.seen_heads(repo.repo_id, record.target_id).items():
        if newest.get(writer_id, 0) >= seq:
            continue
        gone = forgotten(repo, record) if gone is None else gone
        # the owner forgot it: the newest snapshot it kept before it must be here
        kept: bytes | None = sid
        for _ in range(len(gone) + 1):
            if kept is None or kept not in gone:
                break
            kept = gone[kept].prev
        if sid in gone and (kept is None or kept in present):
            continue
        raise IntegrityError(
            f"target {record.name}: snapshot #{seq} of writer {writer_id.hex()[:8]} was "
            "seen before and is missing now (rolled back or hidden); name a snapshot "
            "id to proceed"
        )


def select(repo: Repository, specs: list[str] | None, target: str | None) -> list[SnapshotInfo]:
    """The snapshots named by ``specs``, or every readable one (of ``target``)."""
    if specs:
        return [find_snapshot(repo, spec, target) for spec in specs]
    names = [target] if target else repo.target_names()
    return [i for n in names for i in list_snapshots(repo, n, repo.on_problem)]


def by_target(snapshots: list[SnapshotInfo]) -> dict[str, list[SnapshotInfo]]:
    """Snapshots grouped by target, each once, in the order given."""
    out: dict[str, list[SnapshotInfo]] = {}
    for info in snapshots:
        group = out.setdefault(info.target, [])
        if all(i.snapshot_id != info.snapshot_id for i in group):
            group.append(info)
    return out


def chain_order(snapshots: list[SnapshotInfo]) -> list[SnapshotInfo]:
    """Oldest first. A writer's own sequence numbers are authoritative, and
    a claimed time is trusted no further than "now" and no later than the
    moment the writer's next manifest was made, so a future timestamp
    cannot make a snapshot `latest`. A manifest that rewrote an older
    snapshot (tag, repair, copy) keeps that snapshot's time and place; it
    bounds the writer's earlier manifests only by when it was written."""
    effective: dict[bytes, int] = {}
    now = time.time_ns()
    by_writer: dict[bytes, list[SnapshotInfo]] = {}
    for info in snapshots:
        by_writer.setdefault(info.manifest.writer_id, []).append(info)
    for infos in by_writer.values():
        bound = now
        for info in sorted(infos, key=lambda i: i.manifest.seq, reverse=True):
            effective[info.snapshot_id] = min(bound, info.manifest.time_ns)
            bound = min(bound, info.manifest.made_ns)
    # on a tie a replacement follows what it replaced (and a later
    # replacement an earlier one); otherwise the writer's seq decides
    return sorted(
        snapshots,
        key=lambda i: (
            effective[i.snapshot_id],
            min(i.manifest.rewritten_ns or 0, now),
            i.manifest.seq,
        ),
    )


# -- writing ---------------------------------------------------------------------


def save_snapshot(repo: Repository, record: TargetRecord, manifest: Manifest) -> bytes:
    """Seal and save a manifest (after its packs and index: the write order
    is the durability rule); record it as this key's chain head."""
    snapshot_id, stored = seal_manifest(manifest, repo.writer, record.seal_pk)
    repo.objects.save(objects.snapshot(record.name, snapshot_id), stored)
    localstate.record_chain_head(
        repo.repo_id, record.target_id, manifest.writer_id, manifest.seq, snapshot_id
    )
    if not repo.can_read(record):  # a put-only writer keeps its head in the store
        try:
            heads.save_head(repo, record, manifest.seq, snapshot_id)
        except NeostoreError as e:
            repo.on_problem(NeostoreError(f"snapshot saved; its chain head copy not: {e}"))
    return snapshot_id


def chain_head(
    repo: Repository, record: TargetRecord, snapshots: list[SnapshotInfo]
) -> tuple[int, bytes | None]:
    """This key's last (seq, snapshot id) in a target, from local state and
    from the target's snapshots (when this key can read them)."""
    key_id = repo.material.key_id
    local = localstate.chain_head(repo.repo_id, record.target_id, key_id)
    best: tuple[int, bytes | None] = local or (0, None)
    if local is None and not repo.can_read(record):  # a put-only writer on a new machine
        try:
            stored = heads.recover_head(repo, record)
        except NeostoreError as e:
            repo.on_problem(NeostoreError(f"chain head not recovered, starting anew: {e}"))
            stored = None
        if stored is not None and stored[0] > best[0]:
            best = stored
    for info in snapshots:
        if info.manifest.writer_id == key_id and info.manifest.seq > best[0]:
            best = (info.manifest.seq, info.snapshot_id)
    return best


def default_host_user() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return socket.gethostname(), user
