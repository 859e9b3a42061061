"""What the server counts to enforce quotas and limits: bytes stored and in
flight per repository, connections per client address, requests in
progress per account.

This is one process's view. Several server processes on one data directory
each count their own in-flight bytes and connections (stored bytes come
from the directory itself); the hosted service puts shared counters behind
the same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from .storage import Storage


class OverQuota(Exception):
    def __init__(self, repo: str, quota: int) -> None:
        super().__init__(f"repository {repo} is over its quota of {quota} bytes")


class TooBusy(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    #: connections one client address may hold open at once
    connections_per_address: int = 64
    #: requests one account may have in progress at once
    requests_per_account: int = 64


class Accounting:
    def __init__(self, storage: Storage, limits: Limits | None = None) -> None:
        self.storage = storage
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self._connections: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()

    # -- bytes against quotas ------------------------------------------------

    def upload(self, repo: str, quota: int | None) -> Reservation:
        return Reservation(self, repo, quota)

    async def _grow(self, repo: str, quota: int | None, nbytes: int) -> None:
        if quota is None:
            with self._lock:
                self._in_flight[repo] += nbytes
            return
        used = await asyncio.to_thread(self.storage.usage, repo)
        with self._lock:
            if used + self._in_flight[repo] + nbytes > quota:
                raise OverQuota(repo, quota)
            self._in_flight[repo] += nbytes

    def _settle(self, repo: str, reserved: int, stored: int) -> None:
        with self._lock:
            self._in_flight[repo] -= reserved
            if self._in_flight[repo] <= 0:
                del self._in_flight[repo]
        if stored:
            self.storage.note_stored(repo, stored)

    # -- connections and requests --------------------------------------------

    def connect(self, address: str) -> bool:
        """Count a new connection; False when the address has too many."""
        with self._lock:
            if self._connections[address] >= self.limits.connections_per_address:
                return False
            self._connections[address] += 1
            return True

    def disconnect(self, address: str) -> None:
        with self._lock:
            self._connections[address] -= 1
            if self._connections[address] <= 0:
                del self._connections[address]

    @contextlib.contextmanager
    def request(self, account: str) -> Iterator[None]:
        with self._lock:
            if self._requests[account] >= self.limits.requests_per_account:
                raise TooBusy(
                    f"account {account} has {self._requests[account]} requests in progress "
                    "(the server's limit); retry later"
                )
            self._requests[account] += 1
        try:
            yield
        finally:
            with self._lock:
                self._requests[account] -= 1
                if self._requests[account] <= 0:
                    del self._requests[account]


class Reservation:
    """The bytes of one upload, counted against its repository's quota as
    they arrive (a declared length: all at once, before any is read)."""

    def __init__(self, accounting: Accounting, repo: str, quota: int | None) -> None:
        self._accounting = accounting
        self.repo = repo
        self.quota = quota
        self.reserved = 0

    async def grow(self, nbytes: int) -> None:
        await self._accounting._grow(self.repo, self.quota, nbytes)
        self.reserved += nbytes

    def settle(self, stored: int) -> None:
        """The upload ended: ``stored`` bytes were added (0: none)."""
        self._accounting._settle(self.repo, self.reserved, stored)
        self.reserved = 0
