"""Forget records: the owner's signed word that snapshots were removed.

A reader reports a snapshot missing from a writer's chain as tampering
unless an owner-signed forget record names it (DESIGN §4). ``forget``
therefore writes ``forget/<target>/<H(stored)>`` first and deletes the
snapshots after: a crash in between leaves a record naming snapshots that
still exist, which is harmless.

A record names each forgotten snapshot with its place in its writer's chain
(writer id, seq, prev), so a forgotten snapshot stays in the chain as a
stand-in: its own ``prev`` link is still checked, and a store cannot hide
the kept snapshot before it. The record is sealed to the target's key like
a manifest (it says which writer made which snapshot):

``stored = crypto_box_seal(target_pk, msgpack([body, Sig(owner_sk;
"neostore-v1-forget" ‖ repo_id ‖ body)]))``, ``body = msgpack({"v": 1,
"target_id", "time", "snapshots": [[id, writer_id, seq, prev|nil], …]})``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ..core.repository import Repository, SnapshotInfo
from ..errors import IntegrityError, NeostoreError, NotFound, UsageError
from ..format import crypto
from ..format.codec import field, pack, unpack, unpack_parts
from ..format.targets import TargetRecord
from ..shares.sharing import withdraw
from .retention import Decision, Item, Policy, apply, local_time


@dataclass(frozen=True)
class Forgotten:
    """A removed snapshot's place in its writer's chain."""

    snapshot_id: bytes
    writer_id: bytes
    seq: int
    prev: bytes | None


def encode_record(
    forgotten_: list[Forgotten], *, owner: crypto.SigningKey, repo_id: bytes, record: TargetRecord
) -> tuple[str, bytes]:
    entries = [[f.snapshot_id, f.writer_id, f.seq, f.prev] for f in forgotten_]
    body = pack(
        {"v": 1, "target_id": record.target_id, "time": time.time_ns(), "snapshots": entries}
    )
    signed = pack([body, owner.sign(crypto.SIG_FORGET + repo_id, body)])
    stored = crypto.seal(record.seal_pk, signed)
    return crypto.object_hash(stored).hex(), stored


def decode_record(
    stored: bytes, *, what: str, repo_id: bytes, owner_vk: bytes, target_id: bytes, seal_sk: bytes
) -> list[Forgotten]:
    body_bytes, signature = unpack_parts(crypto.unseal(seal_sk, stored, what), 2, what)
    crypto.verify(owner_vk, crypto.SIG_FORGET + repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    if field(body, "v", int, what) != 1 or field(body, "target_id", bytes, what) != target_id:
        raise IntegrityError(f"{what}: made for another target")
    out = []
    for entry in field(body, "snapshots", list, what):
        if not (
            isinstance(entry, list)
            and len(entry) == 4
            and isinstance(entry[0], bytes)
            and len(entry[0]) == 32
            and isinstance(entry[1], bytes)
            and isinstance(entry[2], int)
            and (entry[3] is None or isinstance(entry[3], bytes))
        ):
            raise IntegrityError(f"{what}: malformed entry")
        out.append(Forgotten(entry[0], entry[1], entry[2], entry[3]))
    return out


def forgotten(repo: Repository, record: TargetRecord) -> dict[bytes, Forgotten]:
    """Snapshots the owner removed from ``record``, by id (bad records are
    reported through ``repo.on_problem`` and ignored)."""
    out: dict[bytes, Forgotten] = {}
    if not repo.can_read(record):
        return out
    seal_sk = repo.target_secret(record)
    prefix = f"{record.name}/"
    for name, _ in repo.backend.list("forget"):
        if not name.startswith(prefix):
            continue
        what = f"forget record {name}"
        try:
            stored = repo.backend.load("forget", name)
            if crypto.object_hash(stored).hex() != name[len(prefix) :]:
                raise IntegrityError(f"{what}: content does not match its name")
            for entry in decode_record(
                stored,
                what=what,
                repo_id=repo.repo_id,
                owner_vk=repo.material.owner_vk,
                target_id=record.target_id,
                seal_sk=seal_sk,
            ):
                out[entry.snapshot_id] = entry
        except (IntegrityError, NotFound) as e:
            repo.on_problem(IntegrityError(f"ignored: {e}"))
    return out


def forget(
    repo: Repository,
    record: TargetRecord,
    snapshots: list[SnapshotInfo],
    replaced: dict[bytes, bytes] | None = None,
) -> int:
    """Remove snapshots of ``record`` (owner only): the signed record first,
    then their share capabilities (withdrawn; ``replaced`` names the
    snapshot that replaces one, see :func:`.shares.withdraw`), then the
    snapshot objects. Returns how many were removed."""
    owner = repo.require_owner("forgetting snapshots")
    if not snapshots:
        return 0
    entries = [
        Forgotten(i.snapshot_id, i.manifest.writer_id, i.manifest.seq, i.manifest.prev)
        for i in snapshots
    ]
    name, stored = encode_record(entries, owner=owner, repo_id=repo.repo_id, record=record)
    repo.backend.save("forget", f"{record.name}/{name}", stored)
    try:
        withdraw(repo, record, [i.snapshot_id for i in snapshots], replaced)
    except NeostoreError as e:
        # the record stands (readers already accept the gap); forget again
        raise NeostoreError(
            f"snapshots not removed: their share capabilities could not be withdrawn ({e}); "
            "run forget again"
        ) from e
    removed = 0
    for info in snapshots:
        try:
            repo.backend.remove("snapshots", f"{record.name}/{info.hex_id}")
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
            # a claimed future time counts as now (a leaked writer key must
            # not outrank every real snapshot for ever)
            now = time.time_ns()
            items = [
                Item(local_time(min(i.manifest.time_ns, now)), frozenset(i.manifest.tags), i)
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
            removed += forget(repo, repo.target(group.target), group.remove)
    return removed
