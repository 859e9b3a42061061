"""Retrying a remote store: a wrapper any :class:`Backend` can be put in.

A request that failed with :class:`~neostore.errors.TransientBackendError`
(a dropped connection, a timeout, 408/429/5xx from a server) is tried again
after an exponential, jittered pause, but only where repeating it cannot
change the outcome: reads, listings, deletes, and saves of
content-addressed objects (the same name always carries the same bytes, and
the server accepts them again). A create-only save or the replacement of a
named object (a key file, the config) is tried once: its answer may have
been lost after it took effect.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import PermanentBackendError, TransientBackendError
from .base import Backend, BufferedStream, ObjectStream, Payload
from .names import CONTENT_ADDRESSED

T = TypeVar("T")
#: the first pause, and the longest (seconds)
FIRST_DELAY = 0.25
MAX_DELAY = 8.0


class RetryingBackend:
    """Thread-safe as the backend it wraps."""

    def __init__(self, inner: Backend, retries: int = 5) -> None:
        self.inner = inner
        self.retries = retries
        self.location = inner.location
        self.batch_reads = inner.batch_reads

    def _retry(self, call: Callable[[], T]) -> T:
        delay = FIRST_DELAY
        for _ in range(self.retries):
            try:
                return call()
            except TransientBackendError:
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, MAX_DELAY)
        return call()

    def exists_repository(self) -> bool:
        return self._retry(self.inner.exists_repository)

    def create_repository(self) -> None:
        self._retry(self.inner.create_repository)

    def save(self, otype: str, name: str, data: Payload) -> None:
        if otype in CONTENT_ADDRESSED:
            self._retry(lambda: self.inner.save(otype, name, data))
        else:
            self.inner.save(otype, name, data)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        return self.inner.save_new(otype, name, data)

    def create_stream(self, otype: str) -> ObjectStream:
        """Remote stores take an object in one piece: the parts are kept and
        the commit is a (retried) save."""
        if otype not in CONTENT_ADDRESSED:
            raise PermanentBackendError(f"no streamed objects of type {otype!r}")
        return BufferedStream(self, otype)

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._retry(lambda: self.inner.load(otype, name, offset, length))

    def size(self, otype: str, name: str) -> int:
        return self._retry(lambda: self.inner.size(otype, name))

    def exists(self, otype: str, name: str) -> bool:
        return self._retry(lambda: self.inner.exists(otype, name))

    def remove(self, otype: str, name: str) -> None:
        self._retry(lambda: self.inner.remove(otype, name))

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        return iter(self._retry(lambda: list(self.inner.list(otype))))

    def temporaries(self) -> Iterator[tuple[str, int]]:
        return iter(self._retry(lambda: list(self.inner.temporaries())))

    def remove_temporary(self, path: str) -> None:
        self._retry(lambda: self.inner.remove_temporary(path))
