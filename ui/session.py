"""The unlocked repository and what the pages read from it.

Calls into the library block, so they run on a small thread pool; those
that walk trees hold one lock (a Repository's caches are not meant for
concurrent writers), file content is read without it. The snapshot
listing and the last folders opened are kept for a few seconds / a few
folders, so paging and sorting a 100 000-entry folder does not decode it
again. The password is kept in memory only, for the job processes that
open the repository themselves (:mod:`.jobs`); nothing writes it anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import neostore

T = TypeVar("T")

#: how long a snapshot listing is reused (a backup run from the page drops it)
LISTING_TTL = 5.0
#: folders kept decoded for paging and sorting
FOLDERS_KEPT = 4


@dataclass(frozen=True)
class Unlock:
    """What a job process needs to open the repository itself."""

    location: str
    options: neostore.BackendOptions
    password: bytes = field(repr=False)


class Session:
    def __init__(self, location: str | None, options: neostore.BackendOptions) -> None:
        self.location = location
        self.options = options
        self.unlock: Unlock | None = None
        self.repo: neostore.Repository | None = None
        self.problems: list[str] = []
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ui-repo")
        self.lock = threading.Lock()
        self._listing: tuple[float, neostore.Listing] | None = None
        self._folders: OrderedDict[tuple[str, bytes], list[neostore.Node]] = OrderedDict()
        self._stored: tuple[float, int] | None = None
        self._warmed = False
        self._generation = 0
        self._spare: neostore.Repository | None = None
        self._spare_lock = threading.Lock()

    # -- unlocking ---------------------------------------------------------------

    def open(self, location: str, password: bytes) -> None:
        """Open the repository (blocking: Argon2id). Raises what
        :func:`neostore.open_repository` raises."""
        repo = neostore.open_repository(location, password, options=self.options)
        repo.on_problem = self._problem
        with self.lock:
            self.repo, self.location = repo, location
            self.unlock = Unlock(location, self.options, password)
            self._listing = None
            self._folders.clear()

    def warm(self) -> None:
        """Once, after the first page is served: load the index (through
        the newest snapshot's top folder) while the user reads it, so the
        first folder opened does not wait for it. A failure shows on the
        page that needs what failed."""
        if self._warmed:
            return
        self._warmed = True

        def run() -> None:
            with self.lock:
                try:
                    listing = self.listing()
                    if listing.snapshots:
                        self.folder(listing.snapshots[-1], b"/")
                except neostore.NeostoreError:
                    self._listing = None

        self.pool.submit(run)

    def _problem(self, error: neostore.NeostoreError) -> None:
        self.problems = [*self.problems[-19:], str(error)]

    @property
    def locked(self) -> bool:
        return self.repo is None

    @contextlib.contextmanager
    def another(self) -> Iterator[neostore.Repository]:
        """The repository opened a second time, for a caller that reads it
        for long in a thread of its own (an archive being sent). One such
        copy is kept for the next caller (opening costs Argon2id and an
        index load); callers at once each get their own."""
        with self._spare_lock:
            repo, self._spare = self._spare, None
        if repo is None:
            unlock = self.unlock
            if unlock is None:
                raise neostore.UsageError("the repository is not unlocked")
            repo = neostore.open_repository(
                unlock.location, unlock.password, options=unlock.options
            )
        yield repo
        with self._spare_lock:
            self._spare = self._spare or repo

    def need(self) -> neostore.Repository:
        if self.repo is None:
            raise neostore.UsageError("the repository is not unlocked")
        return self.repo

    # -- running library calls -----------------------------------------------------

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """``func(*args)`` on the pool, under the tree lock."""

        def locked() -> T:
            with self.lock:
                return func(*args)

        return await asyncio.get_running_loop().run_in_executor(self.pool, locked)

    async def run_unlocked(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    # -- cached reads (call on the pool, under the lock) ------------------------------

    def listing(self) -> neostore.Listing:
        now = time.monotonic()
        if self._listing is None or now - self._listing[0] > LISTING_TTL:
            repo = self.need()
            generation = self._generation
            neostore.check_reachable(repo)  # a vanished store is not "no snapshots"
            listing = neostore.list_snapshots(repo)
            if generation != self._generation:  # a backup ended meanwhile: not kept
                return listing
            self._listing = (now, listing)
        return self._listing[1]

    def forget_cached(self) -> None:
        """After a backup (from a job's thread, without the lock): the next
        page lists snapshots again, also if a listing was under way."""
        self._generation += 1
        self._listing = None
        self._stored = None

    def snapshot(self, snapshot_id: str) -> neostore.SnapshotInfo:
        """The snapshot with this full id (a prefix is not a stable URL)."""
        for info in self.listing().snapshots:
            if info.hex_id == snapshot_id:
                return info
        self._listing = None  # perhaps it is new
        for info in self.listing().snapshots:
            if info.hex_id == snapshot_id:
                return info
        raise neostore.NotFound(f"no snapshot {snapshot_id[:64]} (forgotten, or never made)")

    def folder(self, info: neostore.SnapshotInfo, path: bytes) -> list[neostore.Node]:
        """The nodes at ``path``: a folder's children in name order, or the
        file itself."""
        key = (info.hex_id, path)
        found = self._folders.get(key)
        if found is None:
            found = [node for _, node in neostore.list_directory(self.need(), info, path)]
            self._folders[key] = found
            while len(self._folders) > FOLDERS_KEPT:
                self._folders.popitem(last=False)
        self._folders.move_to_end(key)
        return found

    def stored_bytes(self) -> int | None:
        now = time.monotonic()
        if self._stored is None or now - self._stored[0] > 60:
            try:
                self._stored = (now, neostore.stored_bytes(self.need()))
            except neostore.NeostoreError:
                return None
        return self._stored[1]


def parse_path(raw: bytes) -> bytes | None:
    """A snapshot path from a URL: absolute, no ``.`` or ``..`` component
    (None: refuse it)."""
    parts = raw.split(b"/")
    if any(p in (b".", b"..") for p in parts) or b"\0" in raw:
        return None
    inner = [p for p in parts if p]
    return b"/" + b"/".join(inner) if inner else b"/"


def is_writable_dir(path: str) -> str | None:
    """Why a restore cannot write to ``path`` (None: it can)."""
    if not os.path.isabs(path):
        return f"{path}: give an absolute path"
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe}: not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe}: not writable by this user"
    return None
