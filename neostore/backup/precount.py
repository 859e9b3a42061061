"""A quick count of what a snapshot of some paths will read, for an ETA.

It lists directories and lstat()s entries (no content, no xattrs, no key
needed), with the snapshot's excludes and ``--one-file-system``, so its
totals are what the archiver will walk. Files the files cache lets a
snapshot skip are counted too: the count is of the work's upper bound.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .exclude import Excluder, Exclusions
from .prewalk import normalise_paths


@dataclass
class PathCount:
    files: int = 0
    dirs: int = 0
    others: int = 0
    #: bytes of regular file content
    bytes: int = 0
    #: entries that could not be read (listed or stat()ed)
    unreadable: int = 0
    #: False when stopped before the end (the counts are then a floor)
    complete: bool = True


def count_paths(
    paths: Sequence[str],
    excludes: Sequence[str] | Exclusions = (),
    one_file_system: bool = False,
    stop: threading.Event | None = None,
) -> PathCount:
    """Files, folders and bytes below ``paths`` as a snapshot would walk
    them (folders excluded by a marker file are counted whole: an upper
    bound). Stops early (``complete`` False) once ``stop`` is set."""
    exclude = Excluder(excludes if isinstance(excludes, Exclusions) else Exclusions(excludes))
    count = PathCount()
    for root in normalise_paths(paths):
        try:
            st = os.lstat(root)
        except OSError:
            count.unreadable += 1
            continue
        pending = [root] if _tally(count, st) else []
        while pending:
            if stop is not None and stop.is_set():
                count.complete = False
                return count
            folder = pending.pop()
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        path = entry.path if folder != b"/" else b"/" + entry.name
                        try:
                            child = entry.stat(follow_symlinks=False)
                        except OSError:
                            count.unreadable += 1
                            continue
                        if exclude and exclude.excludes(path, child):
                            continue
                        if _tally(count, child) and not (
                            one_file_system and child.st_dev != st.st_dev
                        ):
                            pending.append(path)
            except OSError:
                count.unreadable += 1
    return count


def _tally(count: PathCount, st: os.stat_result) -> bool:
    """Count one entry; True for a directory (to be descended into)."""
    if stat.S_ISDIR(st.st_mode):
        count.dirs += 1
        return True
    if stat.S_ISREG(st.st_mode):
        count.files += 1
        count.bytes += st.st_size
    else:
        count.others += 1
    return False
