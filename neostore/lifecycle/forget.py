"""``forget``: remove snapshots, by id or by a retention policy.

The owner signs a forget record naming the snapshots first
(:mod:`neostore.snapshots.forgotten`), withdraws their share capabilities,
and only then deletes them: interrupted anywhere, readers see either the
snapshots or a record that explains their absence.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ..core import objects
from ..core.repository import Repository
from ..errors import NeostoreError, NotFound, UsageError
from ..format.forget import Forgotten
from ..format.targets import TargetRecord
from ..shares.publish import withdraw
from ..snapshots.catalog import by_target, list_snapshots
from ..snapshots.forgotten import forgotten, record_forgotten, seen_gone
from ..snapshots.info import SnapshotInfo
from .retention import Decision, Item, Policy, apply, local_time


def forget(
    repo: Repository,
    record: TargetRecord,
    snapshots: list[SnapshotInfo],
    replaced: dict[bytes, bytes] | None = None,
) -> int:
    """Remove snapshots of ``record`` (owner only): the signed record first,
    then their share capabilities (withdrawn; ``replaced`` names the
    snapshot that replaces one, see :func:`neostore.shares.publish.withdraw`), then the
    snapshot objects. Returns how many were removed."""
    repo.require_owner("forgetting snapshots")
    if not snapshots:
        return 0
    entries = [
        Forgotten(i.snapshot_id, i.manifest.writer_id, i.manifest.seq, i.manifest.prev)
        for i in snapshots
    ]
    record_forgotten(repo, record, entries)
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
            repo.objects.remove(objects.snapshot(record.name, info.snapshot_id))
            removed += 1
        except NotFound:
            pass  # removed already (an earlier, interrupted forget)
    forgotten(repo, record)  # remembered on this machine: putting one back is tampering
    seen_gone(repo, record, [i.snapshot_id for i in snapshots])
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
        raise UsageError(f"{','.join(group_by)!r}: use host, paths and/or tags", option="group_by")
    plans = []
    for name in targets:
        groups: dict[tuple[tuple[str, ...], ...], list[SnapshotInfo]] = {}
        for info in list_snapshots(repo, name, on_error=repo.on_problem):
            groups.setdefault(_group_key(info, group_by), []).append(info)
        for key in sorted(groups):
            # by effective time: a claimed future time does not outrank the
            # snapshots made after it (neostore.snapshots.order)
            now = time.time_ns()
            items = [
                Item(local_time(_placed(i, now)), frozenset(i.manifest.tags), i)
                for i in groups[key]
            ]
            shown: dict[str, str | list[str]] = {
                f: (v[0] if f == "host" else list(v)) for f, v in zip(group_by, key, strict=True)
            }
            plans.append(GroupPlan(name, shown, apply(policy, items)))
    return plans


def _placed(info: SnapshotInfo, now: int) -> int:
    if info.effective_ns is not None:
        return info.effective_ns
    return min(info.manifest.time_ns, now)


def forget_snapshots(repo: Repository, snapshots: list[SnapshotInfo]) -> int:
    """Forget snapshots named one by one: one record (and one pass over the
    shares) per target. Returns how many went."""
    return sum(
        forget(repo, repo.target(name), infos) for name, infos in by_target(snapshots).items()
    )


def execute(repo: Repository, plans: list[GroupPlan]) -> int:
    """Forget what the plans remove; returns how many snapshots went."""
    removed = 0
    for group in plans:
        if group.remove:
            removed += forget(repo, repo.target(group.target), group.remove)
    return removed
