"""Knobs for tests of neostore and of programs built on it. Nothing in the
library imports this module; importing it changes nothing until a function
here is called.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from .backend.base import Backend, ObjectStream, Payload


@contextlib.contextmanager
def memoized_key_derivation() -> Iterator[None]:
    """Within the block, Argon2id runs once per (password, salt, cost) in
    this process: opening the same key file again costs nothing. Key files
    are still written and checked exactly as in production; only repeated
    derivations are skipped."""
    from .format import keyfile

    original: Callable[..., bytes] = keyfile._wrapping_key
    keyfile._wrapping_key = functools.lru_cache(maxsize=256)(original)
    try:
        yield
    finally:
        keyfile._wrapping_key = original


class ChangeCounter:
    """A backend wrapper that counts the changes made through it (saves,
    creates, removals, committed streams) and calls ``before(n)`` before
    the nth. Reads pass through."""

    def __init__(self, inner: Backend, before: Callable[[int], None]) -> None:
        self.inner = inner
        self.before = before
        self.changes = 0
        self.location = inner.location
        self.batch_reads = inner.batch_reads

    def _change(self) -> None:
        self.changes += 1
        self.before(self.changes)

    def save(self, otype: str, name: str, data: Payload) -> None:
        self._change()
        self.inner.save(otype, name, data)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        self._change()
        return self.inner.save_new(otype, name, data)

    def remove(self, otype: str, name: str) -> None:
        self._change()
        self.inner.remove(otype, name)

    def create_stream(self, otype: str) -> ObjectStream:
        stream = self.inner.create_stream(otype)
        counter = self

        class Counted:
            def write(self, data: bytes | memoryview) -> None:
                stream.write(data)

            def commit(self, name: str) -> None:
                counter._change()
                stream.commit(name)

            def abort(self) -> None:
                stream.abort()

        return Counted()

    def __getattr__(self, name: str) -> Any:  # reads: exists, load, list, size, …
        return getattr(self.inner, name)
