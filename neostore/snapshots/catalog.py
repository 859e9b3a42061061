"""A target's snapshots: listing, lookup, order, saving, and chain heads.

Snapshots are listed oldest first (:func:`.order.chain_order`),
without those an owner's forget record names (:mod:`.forgotten`). A share
key sees the snapshots published to its share instead (:mod:`.shared`).
Naming one (``latest``, an id) is :mod:`.lookup`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

from .. import owners
from ..backend.names import ObjectType
from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError
from ..format.keyfile import Role
from ..format.manifest import Manifest, open_manifest, seal_manifest
from ..format.targets import TargetRecord
from . import heads, shared
from .firstsight import pinned
from .forgotten import forgotten, resurrected, seen_gone
from .info import SnapshotInfo
from .order import chain_order

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
        return shared.order(repo, shared.shared_snapshots(repo, on_error))
    for record in records.values():
        repo.require_reader(record)
    gone = {name: forgotten(repo, record) for name, record in records.items()}
    present: dict[str, set[bytes]] = {name: set() for name in records}
    out: list[SnapshotInfo] = []
    for address, _ in repo.objects.addresses(ObjectType.SNAPSHOTS):
        tname, _, sid = address.name.partition("/")
        if tname not in records:
            continue
        try:
            snapshot_id = _snapshot_id(address.what, sid)
            present[tname].add(snapshot_id)
            if snapshot_id in gone[tname]:
                (on_error or repo.on_problem)(resurrected(repo, records[tname], snapshot_id))
                continue
            out.append(load_snapshot(repo, records[tname], sid))
        except NeostoreError as e:
            if on_error is None:
                raise
            on_error(e)
    for name, record in records.items():
        seen_gone(repo, record, [sid for sid in gone[name] if sid not in present[name]])
    return chain_order(_pinned(repo, records, out))


def _pinned(
    repo: Repository, records: dict[str, TargetRecord], snapshots: list[SnapshotInfo]
) -> list[SnapshotInfo]:
    """Each snapshot with its first sight here (:mod:`.firstsight`)."""
    out = []
    for name, record in records.items():
        out += pinned(repo, record.target_id, [i for i in snapshots if i.target == name])
    return out


def _snapshot_id(what: str, hex_id: str) -> bytes:
    try:
        return bytes.fromhex(hex_id)
    except ValueError:
        raise IntegrityError(f"{what}: not a snapshot id") from None


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


def by_target(snapshots: list[SnapshotInfo]) -> dict[str, list[SnapshotInfo]]:
    """Snapshots grouped by target, each once, in the order given."""
    out: dict[str, list[SnapshotInfo]] = {}
    for info in snapshots:
        group = out.setdefault(info.target, [])
        if all(i.snapshot_id != info.snapshot_id for i in group):
            group.append(info)
    return out


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
    return socket.gethostname(), owners.login_name()
