"""Snapshot chain verification: the reader's defence against a store that
hides, replays or reorders snapshots.

Every writer numbers its snapshots (``seq``) and links each to its previous
one (``prev``). A missing link, or a chain head older than the one this
machine saw before, is reported as tampering. Two snapshots with the same
``seq`` are a fork (two runs of one key at once), not an attack: only the
writer can sign them. A snapshot named in an owner-signed forget record
(:mod:`.forgotten`) was removed legitimately and is not missed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound, TamperingDetected
from ..format.keyfile import Role
from ..format.targets import TargetRecord
from . import shared
from .catalog import list_snapshots
from .forgotten import forgotten
from .info import SnapshotInfo
from .order import FUTURE_SLACK_NS, chain_order


def verify_chains(
    repo: Repository, record: TargetRecord, snapshots: list[SnapshotInfo]
) -> list[NeostoreError]:
    """What is wrong with a target's chains: :class:`TamperingDetected` for
    snapshots hidden or rolled back, a plain warning for a claimed time in
    the future (a writer's clock can be wrong)."""
    problems: list[NeostoreError] = []
    by_writer: dict[bytes, list[SnapshotInfo]] = defaultdict(list)
    for info in snapshots:
        by_writer[info.manifest.writer_id].append(info)
    gone = forgotten(repo, record)
    present = {info.snapshot_id for info in snapshots}
    ids = present | set(gone)
    # forgotten snapshots stay in their chain as stand-ins: their links are
    # checked too, so the kept snapshot before one cannot vanish unnoticed
    links = [(i.snapshot_id, i.manifest.seq, i.manifest.prev, "") for i in snapshots]
    links += [(f.snapshot_id, f.seq, f.prev, "forgotten ") for f in gone.values()]
    for sid, seq, prev, kind in sorted(links, key=lambda x: x[1]):
        if seq > 1 and (prev is None or prev not in ids):
            problems.append(
                TamperingDetected(
                    f"target {record.name}: {kind}snapshot {sid.hex()[:12]} follows a snapshot "
                    "that is missing from the repository (deleted or hidden)"
                )
            )
    for info in snapshots:
        problems.extend(_ahead(record, info))
    for writer_id, (seq, sid) in localstate.seen_heads(repo.repo_id, record.target_id).items():
        newest = max((i.manifest.seq for i in by_writer.get(writer_id, [])), default=0)
        if newest < seq and sid not in ids and not _saved_since(repo, record, sid):
            problems.append(
                TamperingDetected(
                    f"target {record.name}: writer {writer_id.hex()[:8]} had snapshot #{seq} when "
                    f"this machine last looked, now only #{newest} (rolled back or hidden)"
                )
            )
    for writer_id, infos in by_writer.items():
        head = infos[-1]
        localstate.record_chain_head(
            repo.repo_id, record.target_id, writer_id, head.manifest.seq, head.snapshot_id
        )
    return problems


def _ahead(record: TargetRecord, info: SnapshotInfo) -> list[NeostoreError]:
    """A warning when a snapshot claims a time well after its place."""
    claimed, placed = info.manifest.time_ns, info.effective_ns
    if placed is None or claimed - placed <= FUTURE_SLACK_NS:
        return []
    why = (
        "when this machine first saw it"
        if info.pinned_ns is not None and placed == info.pinned_ns
        else "the snapshots known to follow it, or now"
    )
    return [
        NeostoreError(
            f"target {record.name}: snapshot {info.hex_id[:12]} claims a time in the future "
            f"({_utc(claimed)}; a wrong clock or a leaked key): ordered at "
            f"{_utc(placed)}, by {why}"
        )
    ]


def _utc(ns: int) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ns // 1_000_000_000))
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns after 1970"


def _saved_since(repo: Repository, record: TargetRecord, snapshot_id: bytes) -> bool:
    """Whether a snapshot missing from a listing is there now: saved by
    another process of this machine after the listing was taken (it then
    recorded its chain head), not hidden."""
    return repo.objects.exists(objects.snapshot(record.name, snapshot_id))


@dataclass
class Listing:
    """Snapshots as ``snapshots`` shows them, with what their check found."""

    snapshots: list[SnapshotInfo]
    #: snapshots hidden, rolled back or put back after being forgotten
    tampering: list[str] = field(default_factory=list)
    #: claimed times in the future, leftovers of an interrupted forget
    warnings: list[str] = field(default_factory=list)
    #: snapshots that could not be read or did not verify (left out)
    failures: list[str] = field(default_factory=list)

    def report(self, error: NeostoreError) -> None:
        """Sort a problem met while listing into its list."""
        if isinstance(error, TamperingDetected):
            self.tampering.append(str(error))
        elif isinstance(error, IntegrityError | NotFound):
            self.failures.append(str(error))
        else:
            self.warnings.append(str(error))


def list_verified(repo: Repository, target: str | None = None) -> Listing:
    """The snapshots of one or every readable target, oldest first, each
    target's chains verified (a share key: its share checked for a
    rollback instead, since a share sees some snapshots, not chains)."""
    listing = Listing([])
    on_problem, repo.on_problem = repo.on_problem, listing.report
    try:
        for name in [target] if target else repo.target_names():
            record = repo.target(name)
            infos = list_snapshots(repo, name, on_error=listing.report)
            if repo.role == Role.SHARE:
                problem = shared.rollback(repo, infos)
                listing.tampering.extend([problem] if problem is not None else [])
            else:
                for found in verify_chains(repo, record, infos):
                    listing.report(found)
            listing.snapshots.extend(infos)
    finally:
        repo.on_problem = on_problem
    if repo.role != Role.SHARE:
        listing.snapshots = chain_order(listing.snapshots)
    return listing
