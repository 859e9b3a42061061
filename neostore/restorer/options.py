"""What a restore is asked to do, what it counts, and its overwrite policy."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import UsageError
from ..format.tree import Node
from ..progress import Reporter


class Overwrite(StrEnum):
    """What to do with a file that exists at the destination."""

    #: replace it (only the chunks it lacks are fetched)
    ALWAYS = "always"
    #: keep it when size and mtime match the snapshot
    IF_CHANGED = "if-changed"
    #: keep it unless the snapshot's mtime is newer
    IF_NEWER = "if-newer"
    #: keep it
    NEVER = "never"


OVERWRITE = tuple(Overwrite)


@dataclass(frozen=True)
class RestoreOptions:
    destination: str
    subpath: bytes = b"/"
    includes: Sequence[str] = ()
    excludes: Sequence[str] = ()
    workers: int = 3
    overwrite: str = Overwrite.ALWAYS
    #: remove what the destination holds and the snapshot does not
    delete: bool = False
    #: apply setuid/setgid bits, device nodes and security.*/trusted.*
    #: attributes from snapshots not signed by an owner key too
    preserve_privileged: bool = False

    def policy(self) -> Overwrite:
        if self.overwrite not in OVERWRITE:
            raise UsageError(
                f"{self.overwrite!r}: use one of {', '.join(OVERWRITE)}", option="overwrite"
            )
        return Overwrite(self.overwrite)


@dataclass
class RestoreStats:
    files: int = 0
    dirs: int = 0
    others: int = 0
    bytes_written: int = 0
    #: existing files left alone (overwrite never/if-newer/if-changed)
    files_skipped: int = 0
    #: existing files whose content was already right (only metadata set)
    files_unchanged: int = 0
    #: encrypted bytes fetched from the repository, and plaintext bytes
    #: taken from the files already at the destination instead
    bytes_downloaded: int = 0
    bytes_reused: int = 0
    #: entries ``delete`` removed
    removed: int = 0
    #: entries whose privileged metadata was dropped (a device node: not
    #: created), since the snapshot is not signed by an owner key
    privileged_dropped: int = 0
    errors: list[tuple[bytes, str]] = field(default_factory=list)


#: counters a worker sends back with its batch
COUNTERS = (
    "files",
    "bytes_written",
    "files_skipped",
    "files_unchanged",
    "bytes_downloaded",
    "bytes_reused",
)


class Tally:
    """A restore's counts and problems, safe to update from several threads."""

    def __init__(self, reporter: Reporter) -> None:
        self.stats = RestoreStats()
        self.reporter = reporter
        self._lock = threading.Lock()

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def fail(self, path: bytes, message: str) -> None:
        with self._lock:
            self.stats.errors.append((path, message))
        self.reporter.error(path, message)

    def counters(self) -> list[int]:
        return [getattr(self.stats, name) for name in COUNTERS]

    def merge(self, counters: list[int]) -> None:
        self.add(**dict(zip(COUNTERS, counters, strict=True)))


def keep_existing(policy: Overwrite, existing: os.stat_result, node: Node) -> bool:
    """Whether the policy leaves what is at the destination alone."""
    if policy == Overwrite.NEVER:
        return True
    if policy == Overwrite.IF_NEWER:
        return existing.st_mtime_ns >= node.mtime_ns
    if policy == Overwrite.IF_CHANGED:
        return (
            stat.S_ISREG(existing.st_mode)
            and existing.st_size == node.size
            and existing.st_mtime_ns == node.mtime_ns
        )
    return False
