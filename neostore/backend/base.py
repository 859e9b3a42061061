"""The Backend protocol: a dumb store of named, opaque objects.

Contract, for every implementation:

* Objects are addressed by ``(otype, name)`` (see :mod:`.names`), never by a
  raw path; addresses are validated before any I/O.
* ``save`` takes the object's bytes, or a list of buffers that are its bytes in
  order (a pack is written from its parts without joining them: one copy less
  of 16 MiB per pack).
* ``save`` is atomic: a reader sees either the old object, nothing, or the
  complete new one — never a prefix. When ``save`` returns, the object is
  durable. Saving an existing name replaces it (content-addressed objects are
  identical, so the operation is idempotent).
* ``load`` raises :class:`~neostore.errors.NotFound` for a missing object,
  returns exactly the requested range (shorter only at end of object).
* Errors are :class:`~neostore.errors.TransientBackendError` (retry may help)
  or :class:`~neostore.errors.PermanentBackendError`; no other exception type
  escapes.
* Every method is safe to call from several threads at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeAlias, runtime_checkable

from ..errors import NotFound

#: what ``save`` accepts: bytes, or the object's bytes as buffers in order
Payload: TypeAlias = bytes | bytearray | memoryview | list[bytes]


def exists_by_size(size: Callable[[str, str], int], otype: str, name: str) -> bool:
    """``exists`` for a store that answers a size request (a HEAD, a stat)."""
    try:
        size(otype, name)
    except NotFound:
        return False
    return True


def joined(data: Payload) -> bytes:
    """The payload as one bytes object."""
    return b"".join(data) if isinstance(data, list) else bytes(data)


class ObjectStream(Protocol):
    """An object written piece by piece, named when complete (packs: their
    name is the hash of all their bytes). Nothing is visible under any name
    before :meth:`commit`; an uncommitted stream leaves nothing but, after a
    crash, a temporary file that listings skip."""

    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self, name: str) -> None:
        """Make the object durable and visible as ``name``, atomically."""
        ...

    def abort(self) -> None:
        """Discard what was written."""
        ...


@runtime_checkable
class Backend(Protocol):
    location: str
    #: True when a request costs more than reading a few hundred KiB more
    #: (a server): readers then fetch neighbouring blobs in one range read
    batch_reads: bool

    def exists_repository(self) -> bool:
        """True when a repository (its ``config`` object) is present."""
        ...

    def create_repository(self) -> None:
        """Prepare an empty store (directories etc.); fails if one exists."""
        ...

    def save(self, otype: str, name: str, data: Payload) -> None: ...

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        """Create an object only if the name is free; atomic against other
        writers. Returns False (and changes nothing) when it exists."""
        ...

    def create_stream(self, otype: str) -> ObjectStream:
        """Start an object of ``otype`` whose name is known only at the end."""
        ...

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def size(self, otype: str, name: str) -> int: ...

    def exists(self, otype: str, name: str) -> bool: ...

    def remove(self, otype: str, name: str) -> None: ...

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        """Yield ``(name, size)`` of every object of a type, in no order."""
        ...

    def temporaries(self) -> Iterator[tuple[str, int]]:
        """Yield ``(path, mtime in ns)`` of what interrupted writes left
        (a store that cleans up after itself, like neostore-server, yields
        nothing)."""
        ...

    def remove_temporary(self, path: str) -> None: ...


class _Saver(Protocol):
    def save(self, otype: str, name: str, data: Payload) -> None: ...


class BufferedStream:
    """An :class:`ObjectStream` for stores that take an object in one piece
    (memory, a server): the parts are kept until :meth:`commit` saves them
    under the name. Up to one object in memory per stream."""

    def __init__(self, backend: _Saver, otype: str) -> None:
        self._backend = backend
        self._otype = otype
        self._parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self._parts.append(bytes(data))

    def commit(self, name: str) -> None:
        parts, self._parts = self._parts, []
        self._backend.save(self._otype, name, parts)

    def abort(self) -> None:
        self._parts = []
