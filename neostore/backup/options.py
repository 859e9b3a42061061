"""What a snapshot is asked to do and what it reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from .exclude import Exclusions
from .stream import StreamSource


@dataclass(frozen=True)
class SnapshotOptions:
    paths: Sequence[str]
    target: str = "default"
    tags: Sequence[str] = ()
    excludes: Sequence[str] = ()
    #: --iexclude: patterns matched without regard to case
    iexcludes: Sequence[str] = ()
    #: NAME or NAME:HEADER: folders holding such a file keep only it
    exclude_if_present: Sequence[str] = ()
    exclude_larger_than: int | None = None
    #: recorded as the snapshot's host (default: this machine's name)
    host: str | None = None
    one_file_system: bool = False
    use_files_cache: bool = True
    #: walk, read and cut as a snapshot would, store nothing (the result's
    #: stats say what would be added; its snapshot id is empty)
    dry_run: bool = False
    #: back up this stream as one file instead of ``paths``
    stream: StreamSource | None = None
    #: content worker processes: one per core, at most 8 (each holds ~50 MiB
    #: at peak: its chunker's stream buffer, claims in flight, a pack's seal)
    workers: int = min(8, max(2, os.cpu_count() or 2))

    @property
    def exclusions(self) -> Exclusions:
        return Exclusions(
            self.excludes, self.iexcludes, self.exclude_if_present, self.exclude_larger_than
        )


@dataclass
class SnapshotStats:
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    dirs: int = 0
    others: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    bytes_added: int = 0
    blobs_new: int = 0
    #: copied out of packs a prune condemned while this run reused them
    blobs_copied: int = 0
    #: packs an interrupted run of this key uploaded and did not index,
    #: indexed by this one (instead of uploaded again)
    packs_recovered: int = 0
    duration: float = 0.0


@dataclass
class SnapshotResult:
    snapshot_id: bytes
    target: str
    stats: SnapshotStats
    errors: list[tuple[bytes, str]] = field(default_factory=list)
    #: capabilities sealed to the target's shares for this snapshot
    shares_published: int = 0
