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


class OnConflict(StrEnum):
    """What to do with an entry whose name the destination cannot hold as
    it is (:mod:`.names`)."""

    #: restore it under its escaped name, and list the rename
    RENAME = "rename"
    #: leave it out, and list it
    SKIP = "skip"
    #: check every name first; restore nothing if one conflicts
    FAIL = "fail"


ON_CONFLICT = tuple(OnConflict)


@dataclass(frozen=True)
class RestoreOptions:
    destination: str
    subpath: bytes = b"/"
    includes: Sequence[str] = ()
    excludes: Sequence[str] = ()
    #: --iinclude, --iexclude: matched without regard to case
    iincludes: Sequence[str] = ()
    iexcludes: Sequence[str] = ()
    workers: int = 3
    overwrite: str = Overwrite.ALWAYS
    #: remove what the destination holds and the snapshot does not
    delete: bool = False
    #: apply setuid/setgid bits, device nodes and security.*/trusted.*
    #: attributes from snapshots not signed by an owner key too
    preserve_privileged: bool = False
    #: names the destination cannot hold (:class:`OnConflict`)
    on_conflict: str = OnConflict.RENAME

    def policy(self) -> Overwrite:
        if self.overwrite not in OVERWRITE:
            raise UsageError(
                f"{self.overwrite!r}: use one of {', '.join(OVERWRITE)}", option="overwrite"
            )
        if self.on_conflict not in ON_CONFLICT:
            raise UsageError(
                f"{self.on_conflict!r}: use one of {', '.join(ON_CONFLICT)}",
                option="on_conflict",
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
    #: items whose owner, mode, times or extended attributes the
    #: destination did not keep (FAT keeps no owners, modes or attributes)
    owner_not_applied: int = 0
    mode_not_applied: int = 0
    times_not_applied: int = 0
    xattrs_not_applied: int = 0
    #: items with metadata of another platform that this one does not set
    flags_not_applied: int = 0
    attributes_not_applied: int = 0
    created_not_applied: int = 0
    #: entries restored under another name: (snapshot path, path written, why)
    renamed: list[tuple[bytes, bytes, str]] = field(default_factory=list)
    #: entries left out for their names (``on_conflict`` skip): (path, why)
    names_skipped: list[tuple[bytes, str]] = field(default_factory=list)
    errors: list[tuple[bytes, str]] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        """Done, but not everything as asked (exit 3): renamed or left out."""
        return bool(self.renamed or self.names_skipped)


#: counters a worker sends back with its batch
COUNTERS = (
    "files",
    "bytes_written",
    "files_skipped",
    "files_unchanged",
    "bytes_downloaded",
    "bytes_reused",
    "owner_not_applied",
    "mode_not_applied",
    "times_not_applied",
    "xattrs_not_applied",
    "flags_not_applied",
    "attributes_not_applied",
    "created_not_applied",
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

    def record(self, kind: str, item: tuple[bytes | str, ...]) -> None:
        """Append to a list of the stats (``renamed``, ``names_skipped``)."""
        with self._lock:
            getattr(self.stats, kind).append(item)

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
