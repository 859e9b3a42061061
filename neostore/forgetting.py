"""Forget records: the owner's signed word that snapshots were removed.

A reader reports a snapshot missing from a writer's chain as tampering
unless an owner-signed forget record names it (DESIGN §4). ``forget``
therefore writes ``forget/<target>/<H(stored)>`` first and deletes the
snapshots after: a crash in between leaves a record naming snapshots that
still exist, which is harmless.

``stored = msgpack([body, Sig(owner_sk; "neostore-v1-forget" ‖ repo_id ‖
body)])``, ``body = msgpack({"v": 1, "target_id", "time", "snapshots":
[id, …]})``. Snapshot ids are already public (they are object names), so
the record is signed, not encrypted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from . import crypto
from .codec import field, pack, unpack, unpack_parts
from .errors import IntegrityError, NotFound, UsageError
from .repository import Repository, SnapshotInfo
from .retention import Decision, Item, Policy, apply, local_time
from .targets import TargetRecord


def encode_record(
    snapshot_ids: list[bytes], *, owner: crypto.SigningKey, repo_id: bytes, target_id: bytes
) -> tuple[str, bytes]:
    body = pack(
        {"v": 1, "target_id": target_id, "time": time.time_ns(), "snapshots": sorted(snapshot_ids)}
    )
    stored = pack([body, owner.sign(crypto.SIG_FORGET + repo_id, body)])
    return crypto.object_hash(stored).hex(), stored


def decode_record(
    stored: bytes, *, what: str, repo_id: bytes, owner_vk: bytes, target_id: bytes
) -> list[bytes]:
    body_bytes, signature = unpack_parts(stored, 2, what)
    crypto.verify(owner_vk, crypto.SIG_FORGET + repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    if field(body, "v", int, what) != 1 or field(body, "target_id", bytes, what) != target_id:
        raise IntegrityError(f"{what}: made for another target")
    ids = field(body, "snapshots", list, what)
    if not all(isinstance(i, bytes) and len(i) == 32 for i in ids):
        raise IntegrityError(f"{what}: malformed snapshot ids")
    return [bytes(i) for i in ids]


def forgotten(repo: Repository, record: TargetRecord) -> set[bytes]:
    """Snapshot ids the owner removed from ``record`` (bad records are
    reported through ``repo.on_problem`` and ignored)."""
    out: set[bytes] = set()
    prefix = f"{record.name}/"
    for name, _ in repo.backend.list("forget"):
        if not name.startswith(prefix):
            continue
        what = f"forget record {name}"
        try:
            stored = repo.backend.load("forget", name)
            if crypto.object_hash(stored).hex() != name[len(prefix) :]:
                raise IntegrityError(f"{what}: content does not match its name")
            out.update(
                decode_record(
                    stored,
                    what=what,
                    repo_id=repo.repo_id,
                    owner_vk=repo.material.owner_vk,
                    target_id=record.target_id,
                )
            )
        except (IntegrityError, NotFound) as e:
            repo.on_problem(IntegrityError(f"ignored: {e}"))
    return out


def forget(repo: Repository, record: TargetRecord, snapshot_ids: list[bytes]) -> int:
    """Remove snapshots of ``record`` (owner only): the signed record first,
    then the snapshot objects. Returns how many were removed."""
    owner = repo.require_owner("forgetting snapshots")
    if not snapshot_ids:
        return 0
    name, stored = encode_record(
        snapshot_ids, owner=owner, repo_id=repo.repo_id, target_id=record.target_id
    )
    repo.backend.save("forget", f"{record.name}/{name}", stored)
    removed = 0
    for snapshot_id in snapshot_ids:
        try:
            repo.backend.remove("snapshots", f"{record.name}/{snapshot_id.hex()}")
            removed += 1
        except NotFound:
            pass  # removed already (an earlier, interrupted forget)
    return removed


GROUP_FIELDS = ("host", "paths", "tags")


@dataclass
class GroupPlan:
    """What a policy decides for one group of one target's snapshots."""

    target: str
    group: dict[str, str | list[str]]
    decisions: list[Decision[SnapshotInfo]]

    @property
    def remove(self) -> list[SnapshotInfo]:
        return [d.item.ref for d in self.decisions if not d.keep]


def _group_key(info: SnapshotInfo, fields: list[str]) -> tuple[tuple[str, ...], ...]:
    m = info.manifest
    values = {
        "host": (m.host,),
        "paths": tuple(sorted(os.fsdecode(p) for p in m.paths)),
        "tags": tuple(sorted(m.tags)),
    }
    return tuple(values[f] for f in fields)


def plan(
    repo: Repository, targets: list[str], policy: Policy, group_by: list[str]
) -> list[GroupPlan]:
    """Apply ``policy`` to each group (by ``group_by``) of each target."""
    if any(f not in GROUP_FIELDS for f in group_by):
        raise UsageError(f"--group-by {','.join(group_by)}: use host, paths and/or tags")
    plans = []
    for name in targets:
        groups: dict[tuple[tuple[str, ...], ...], list[SnapshotInfo]] = {}
        for info in repo.list_snapshots(name, on_error=repo.on_problem):
            groups.setdefault(_group_key(info, group_by), []).append(info)
        for key in sorted(groups):
            items = [
                Item(local_time(i.manifest.time_ns), frozenset(i.manifest.tags), i)
                for i in groups[key]
            ]
            shown: dict[str, str | list[str]] = {
                f: (v[0] if f == "host" else list(v)) for f, v in zip(group_by, key, strict=True)
            }
            plans.append(GroupPlan(name, shown, apply(policy, items)))
    return plans


def execute(repo: Repository, plans: list[GroupPlan]) -> int:
    """Forget what the plans remove; returns how many snapshots went."""
    removed = 0
    for group in plans:
        if group.remove:
            ids = [i.snapshot_id for i in group.remove]
            removed += forget(repo, repo.target(group.target), ids)
    return removed
