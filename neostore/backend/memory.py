"""In-memory backend: the test double for :class:`Backend`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ..errors import NotFound, PermanentBackendError
from .base import BufferedStream, ObjectStream, Payload, joined
from .names import validate, validate_type


class MemoryBackend:
    batch_reads = False

    def __init__(self) -> None:
        self.location = "memory:"
        self._objects: dict[tuple[str, str], bytes] = {}
        self._created = False
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("an in-memory store cannot be handed to a spawned worker process")

    def exists_repository(self) -> bool:
        return ("config", "config") in self._objects

    def create_repository(self) -> None:
        if self._created:
            raise PermanentBackendError("repository already exists")
        self._created = True

    def save(self, otype: str, name: str, data: Payload) -> None:
        validate(otype, name)
        with self._lock:
            self._objects[(otype, name)] = joined(data)

    def create_stream(self, otype: str) -> ObjectStream:
        return BufferedStream(self, otype)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        validate(otype, name)
        with self._lock:
            if (otype, name) in self._objects:
                return False
            self._objects[(otype, name)] = joined(data)
        return True

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        validate(otype, name)
        with self._lock:
            data = self._objects.get((otype, name))
        if data is None:
            raise NotFound(f"{otype}/{name} does not exist")
        end = None if length is None else offset + length
        return data[offset:end]

    def size(self, otype: str, name: str) -> int:
        return len(self.load(otype, name))

    def exists(self, otype: str, name: str) -> bool:
        validate(otype, name)
        with self._lock:
            return (otype, name) in self._objects

    def remove(self, otype: str, name: str) -> None:
        validate(otype, name)
        with self._lock:
            if self._objects.pop((otype, name), None) is None:
                raise NotFound(f"{otype}/{name} does not exist")

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        validate_type(otype)
        with self._lock:
            items = [(n, len(d)) for (t, n), d in self._objects.items() if t == otype]
        yield from items

    def temporaries(self) -> Iterator[tuple[str, int]]:
        return iter(())  # writes are atomic here

    def remove_temporary(self, path: str) -> None:
        raise NotFound(f"{path}: no temporary files in memory")
