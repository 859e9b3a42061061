"""First sight: when this machine first listed a snapshot that claimed a
time in the future then (local state), which bounds its place in the
order for good (:mod:`.order`)."""

from __future__ import annotations

import dataclasses
import time

from ..core import localstate
from ..core.repository import Repository
from .info import SnapshotInfo
from .order import FUTURE_SLACK_NS


def pinned(repo: Repository, target_id: bytes, snapshots: list[SnapshotInfo]) -> list[SnapshotInfo]:
    """``snapshots`` (of one target) with ``pinned_ns`` set where known,
    remembering now for those claiming a time beyond the tolerance."""
    now = time.time_ns()
    pins = localstate.future_pins(repo.repo_id, target_id)
    new = {
        i.snapshot_id: now
        for i in snapshots
        if i.snapshot_id not in pins and i.manifest.time_ns > now + FUTURE_SLACK_NS
    }
    if new:
        localstate.pin_future(repo.repo_id, target_id, new)
        pins.update(new)
    return [dataclasses.replace(i, pinned_ns=pins.get(i.snapshot_id)) for i in snapshots]
