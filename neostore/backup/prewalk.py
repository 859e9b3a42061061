"""Reading the file system ahead of the archiver.

Opening a repository spends about half a second in Argon2id, which runs in C
without the GIL. A snapshot can use that time: :class:`Prewalk` lists
directories and reads file metadata (lstat, xattrs, link targets) in the
order the archiver will ask for them, until told to stop or until it holds
``max_entries`` entries, and the archiver takes each listing instead of
reading it again. It never reads file content and needs no key.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence

from ..errors import UsageError
from ..format import tree
from ..format.tree import Node
from ..hostfs import paths as hostpaths
from .exclude import Excluder, Exclusions
from .fsmeta import node_from_stat

#: (name, path, lstat or its error, node or its error; None when not read)
Entry = tuple[bytes, bytes, os.stat_result | OSError, Node | OSError | None]


def normalise_paths(paths: Sequence[str]) -> list[bytes]:
    """Absolute native paths, de-duplicated and sorted by the paths a
    snapshot records for them, with those inside another dropped."""
    if not paths:
        raise UsageError("nothing to back up: give at least one path")
    absolute = {os.fsencode(os.path.abspath(p)) for p in paths}
    kept: list[tuple[list[bytes], bytes]] = []
    for parts, path in sorted((hostpaths.components(p), p) for p in absolute):
        if not os.path.lexists(path):
            raise UsageError(f"{os.fsdecode(path)}: no such file or directory")
        if any(parts[: len(k)] == k for k, _ in kept):
            continue
        kept.append((parts, path))
    return [path for _, path in kept]


def list_dir(path: bytes) -> list[tuple[bytes, bytes, os.stat_result | OSError]]:
    """A directory's entries by name: (name, path, lstat or its error)."""
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    out: list[tuple[bytes, bytes, os.stat_result | OSError]] = []
    for entry in entries:
        child = entry.path if path != b"/" else b"/" + entry.name
        try:
            out.append((entry.name, child, entry.stat(follow_symlinks=False)))
        except OSError as e:
            out.append((entry.name, child, e))
    return out


class _Stop(Exception):
    pass


class Prewalk:
    def __init__(
        self,
        paths: Sequence[str],
        excludes: Sequence[str] | Exclusions = (),
        one_file_system: bool = False,
        max_entries: int = 25_000,
    ) -> None:
        self._paths = paths
        rules = excludes if isinstance(excludes, Exclusions) else Exclusions(excludes)
        self._exclude = Excluder(rules)
        self._one_file_system = one_file_system
        self._max = max_entries
        self._count = 0
        self._listings: dict[bytes, list[Entry] | OSError] = {}

    def run(self, stop: threading.Event) -> None:
        """Read ahead until ``stop`` is set, the cap is reached or all is read."""
        try:
            roots = normalise_paths(self._paths)
        except UsageError:
            return  # the archiver reports it
        try:
            for root in roots:
                try:
                    st = os.lstat(root)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode) and not self._excluded(root, st):
                    self._walk(root, st.st_dev, stop)
        except _Stop:
            pass

    def take(self, path: bytes) -> list[Entry] | OSError | None:
        """The listing read ahead for ``path`` (once), or None."""
        return self._listings.pop(path, None)

    def _excluded(self, path: bytes, st: os.stat_result) -> bool:
        return bool(self._exclude) and self._exclude.excludes(path, st)

    def _walk(self, path: bytes, root_dev: int, stop: threading.Event) -> None:
        try:
            listing = list_dir(path)
        except OSError as e:
            self._listings[path] = e
            return
        entries: list[Entry] = []
        for name, child, st in listing:
            if stop.is_set() or self._count >= self._max:
                raise _Stop  # a partial listing is not kept
            node: Node | OSError | None = None
            if not isinstance(st, OSError) and not self._excluded(child, st):
                try:
                    node = node_from_stat(name, child, st)
                except OSError as e:
                    node = e
            entries.append((name, child, st, node))
            self._count += 1
        self._listings[path] = entries
        for _, child, st, node in entries:
            if (
                isinstance(node, Node)
                and node.type == tree.DIR
                and isinstance(st, os.stat_result)
                and not (self._one_file_system and st.st_dev != root_dev)
            ):
                self._walk(child, root_dev, stop)
