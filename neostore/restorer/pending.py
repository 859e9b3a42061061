"""Directories whose metadata waits for their content.

A directory's metadata (mode, times, owner, xattrs) is applied after
everything inside it is written: creating a file changes its parent's
mtime, and a read-only mode would stop the writes. The walk does not
wait for that: it goes on to the next directory while worker processes
write files, and a batch of small files may span many directories (one
range request fetches them all on a remote store). :class:`PendingDirs`
counts what each directory still waits for — its own walk, batches
writing into it, its subdirectories — and finishes it when nothing is
left; deeper directories finish first.

Worker-pool callbacks only count (under a lock); finishing runs in the
walking thread (:meth:`PendingDirs.drain`), so metadata, warnings and
the tally are touched by one thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from .destination import Dest

#: directories that wait for workers keep their fd open up to this many;
#: beyond, a fd is closed and the directory opened again to be finished
MAX_OPEN = 256


class PendingDirs:
    def __init__(self, finish: Callable[[Dest], None]) -> None:
        self._finish = finish
        self._lock = threading.Lock()
        self._ready: list[Dest] = []
        self._open: set[Dest] = set()

    def opened(self, dest: Dest) -> None:
        """The walk enters ``dest`` (a subdirectory of a tracked one, or of
        the root)."""
        with self._lock:
            dest.pending = 1  # its walk
            self._add(dest.parent)
            self._open.add(dest)

    def walked(self, dest: Dest) -> None:
        """The walk of ``dest`` (its listing and subdirectories) is over."""
        with self._lock:
            self._release(dest)
            if dest.pending and len(self._open) > MAX_OPEN:
                dest.close()  # opened again when finished
        self.drain()

    def writing(self, dests: Iterable[Dest]) -> None:
        """A batch that writes into each of ``dests`` was handed over."""
        with self._lock:
            for dest in dests:
                self._add(dest)

    def written(self, dests: Iterable[Dest]) -> None:
        """That batch is over (any thread)."""
        with self._lock:
            for dest in dests:
                self._release(dest)

    def drain(self) -> None:
        """Finish every directory that waits for nothing (walking thread)."""
        while True:
            with self._lock:
                if not self._ready:
                    return
                ready, self._ready = self._ready, []
            for dest in ready:
                try:
                    self._finish(dest)
                finally:
                    dest.close()
                    with self._lock:
                        self._open.discard(dest)
                        self._release(dest.parent)

    def close_all(self) -> None:
        """After a failure: let go of every fd still held."""
        with self._lock:
            left, self._open = self._open, set()
        for dest in left:
            dest.close()

    def _add(self, dest: Dest | None) -> None:
        if dest is not None and dest.parent is not None:  # the root is never finished
            dest.pending += 1

    def _release(self, dest: Dest | None) -> None:
        if dest is None or dest.parent is None:
            return
        dest.pending -= 1
        if dest.pending == 0:
            self._ready.append(dest)
