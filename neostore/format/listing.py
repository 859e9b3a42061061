"""Large directory listings kept in their encoding. Pure.

A listing of up to :data:`~.tree.MAX_LISTING_BYTES` decoded into node
objects costs about ten times its encoding (a minimal entry: ~45 bytes of
msgpack, ~440 bytes of Python objects), so a listing made to be large —
a million minimal entries — would grow a reader by more than its limit
promises. A listing larger than :data:`EAGER_BYTES` is therefore read once
to verify every rule a decoded one obeys, and kept as its bytes plus where
each node starts; a node is decoded when it is asked for. A node's
reference list longer than :data:`INLINE_REFS` stays encoded the same way
(:class:`EncodedRefs`), so one file with a million chunks costs its
encoding, not three times it.

The verifying read skips each node first (in C, building nothing) to
learn where it ends, so the unpacker's buffer holds one whole node's bytes
at a time (a second copy of at most the largest node, within the
listing's own size). A node of up to 64 KiB is then decoded in one call;
a larger one is decoded field by field, holding one value at a time:
reference lists and extended attributes are read element by element,
other values are scalars of bounded size (a node field this version does
not know must be a scalar).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

import msgpack

from ..errors import IntegrityError
from .blob import Ref
from .tree import MAX_XATTR_BYTES, Node, Pieces, decode_node, read_listing

_T = TypeVar("_T")

#: listings up to this many bytes are decoded at once (cheaper to use)
EAGER_BYTES = 1 << 20
#: a node this large is decoded field by field (else in one call)
_SMALL_NODE = 64 << 10
#: reference lists longer than this stay encoded
INLINE_REFS = 4096
#: bounds on one value the verifying read may hold (names, targets, xattrs)
_LIMITS = {"max_bin_len": 16 << 20, "max_str_len": 1 << 20, "max_map_len": 64}
_REF_LISTS = ("c", "st")
_ARRAYS = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}
_CONTAINERS = _ARRAYS | frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
_FIXARRAY_2 = 0x92
_FIXARRAY_4 = 0x94


class _Encoded(Sequence[_T]):
    """Items kept in their encoding: ``_at`` holds where each starts, and
    where the last ends; :meth:`_decode` decodes one."""

    __slots__ = ("_at", "_raw")
    _raw: memoryview | bytes
    _at: array[int]

    def _decode(self, start: int, end: int) -> _T:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._at) - 1

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...
    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._decode(self._at[index], self._at[index + 1])

    def __iter__(self) -> Iterator[_T]:
        for index in range(len(self)):
            yield self._decode(self._at[index], self._at[index + 1])


class EncodedRefs(_Encoded[Ref]):
    """A verified reference list left in its encoding; refs are decoded as
    they are read. ``total`` is the sum of their lengths."""

    __slots__ = ("total",)

    def __init__(self, raw: memoryview | bytes, at: array[int], total: int) -> None:
        self._raw = raw
        self._at = at
        self.total = total

    def _decode(self, start: int, end: int) -> Ref:
        return Ref.decode(msgpack.unpackb(self._raw[start:end]), "reference")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent to a worker process as its own bytes, not the listing's."""
        start, end = self._at[0], self._at[-1]
        at = array("Q", (offset - start for offset in self._at))
        return (EncodedRefs, (bytes(self._raw[start:end]), at, self.total))


class EncodedListing(_Encoded[Node]):
    """A verified listing kept as its bytes; nodes decoded when read."""

    __slots__ = ("__weakref__", "_release", "_what")

    def __init__(self, raw: memoryview | bytes, starts: array[int], what: str) -> None:
        self._raw = raw
        self._at = starts
        self._what = what
        self._release: Callable[[], None] | None = None

    @property
    def nbytes(self) -> int:
        return len(self._raw)

    def detached(self) -> EncodedListing:
        """The same listing, no longer counted in its reader's budget of
        listings alive at once: for a cache with a bound of its own."""
        return EncodedListing(self._raw, self._at, self._what)

    def _decode(self, start: int, end: int) -> Node:
        return _decode_node_at(self._raw, start, end, self._what)

    def __del__(self) -> None:
        if self._release is not None:
            self._release()


def read_encoded_listing(
    chunks: Iterable[bytes], size: int, what: str, decode_at_most: int = 0
) -> EncodedListing | list[Node]:
    """Verify a listing of ``size`` bytes arriving in ``chunks`` and keep it
    encoded. Fails, like :func:`~.tree.decode_tree_stream`, at the first
    piece that breaks a rule. A listing of at most ``decode_at_most``
    entries is returned as its nodes instead (the ones this read decoded
    to verify it: a caller that wants them all pays one decoding, not
    two); no more than that many nodes are kept meanwhile."""
    raw = memoryview(bytearray(size))
    filled = 0

    def kept() -> Iterator[bytes]:
        nonlocal filled
        for chunk in chunks:
            if filled + len(chunk) > size:
                raise IntegrityError(f"{what}: listing longer than its references say")
            raw[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            yield chunk

    reader = Pieces(kept(), what, **_LIMITS)
    starts = array("Q")
    last: list[Any] = [b"", 0]  # the name and end of the node read last
    decoded: list[Node] | None = [] if decode_at_most > 0 else None

    def scan() -> None:
        # skipped over first (in C, allocating nothing) to learn where the
        # node ends, then decoded from its bytes, which have arrived by then
        start = reader.tell()
        starts.append(start)
        nonlocal decoded
        reader.next(msgpack.Unpacker.skip)
        node = _decode_node_at(raw, start, reader.tell(), what)
        if len(starts) > 1 and last[0] >= node.name:
            raise IntegrityError(f"{what}: names not sorted or duplicated")
        last[:] = [node.name, reader.tell()]
        if decoded is not None:
            decoded = decoded if len(decoded) < decode_at_most else None
            if decoded is not None:
                decoded.append(node)

    read_listing(reader, what, scan)
    if filled != size:
        raise IntegrityError(f"{what}: listing shorter than its references say")
    if decoded is not None:
        return decoded
    starts.append(last[1] if len(starts) else 0)
    return EncodedListing(raw, starts, what)


def _decode_node_at(raw: memoryview | bytes, start: int, end: int, what: str) -> Node:
    """The node encoded in ``raw[start:end]``: a small one in one call, a
    larger one field by field (its long reference lists kept encoded)."""
    if end - start <= _SMALL_NODE:
        value = msgpack.unpackb(raw[start:end], raw=False, strict_map_key=False, **_LIMITS)
        return decode_node(value, what)
    pieces = (bytes(raw[at : min(at + (1 << 20), end)]) for at in range(start, end, 1 << 20))
    return _NodeReader(Pieces(pieces, what, **_LIMITS), raw, start).read()


class _NodeReader:
    """Nodes read field by field from a stream whose bytes are also in
    ``raw`` from offset ``base`` (to look at a value's type before reading
    it, and to keep long reference lists encoded)."""

    def __init__(self, reader: Pieces, raw: memoryview | bytes, base: int) -> None:
        self._reader = reader
        self._raw = raw
        self._base = base

    def read(self) -> Node:
        reader = self._reader
        fields = reader.next(msgpack.Unpacker.read_map_header)
        scalars: dict[str, Any] = {}
        lists: dict[str, Sequence[Ref]] = {}
        for _ in range(fields):
            key = reader.next(msgpack.Unpacker.unpack)
            if key in _REF_LISTS:
                lists[key] = self._refs(key)
            elif key == "x":
                scalars[key] = self._xattrs()
            elif self._peek() in _CONTAINERS:
                raise IntegrityError(f"{reader.what}: unknown node field {key!r} holds a list")
            else:
                scalars[key] = reader.next(msgpack.Unpacker.unpack)
        return decode_node(scalars, reader.what, lists)

    def _peek(self) -> int:
        if not self._reader.ensure():
            raise IntegrityError(f"{self._reader.what}: listing cut short")
        return self._raw[self._base + self._reader.tell()]

    def _array(self, malformed: str) -> int:
        if self._peek() not in _ARRAYS:
            raise IntegrityError(f"{self._reader.what}: {malformed}")
        return int(self._reader.next(msgpack.Unpacker.read_array_header))

    def _refs(self, key: str) -> Sequence[Ref]:
        reader, what = self._reader, self._reader.what
        count = self._array(f"malformed reference list {key!r}")
        inline = count <= INLINE_REFS
        at = array("Q")  # where each ref starts, for a list kept encoded
        refs: list[Ref] = []
        total = 0
        for _ in range(count):
            if not inline:
                at.append(self._base + reader.tell())
            if self._peek() != _FIXARRAY_4:
                raise IntegrityError(f"{what}: malformed blob reference")
            ref = Ref.decode(reader.next(msgpack.Unpacker.unpack), what)
            total += ref.length
            if inline:
                refs.append(ref)
        if inline:
            return refs
        at.append(self._base + reader.tell())
        return EncodedRefs(self._raw, at, total)

    def _xattrs(self) -> list[Any]:
        reader = self._reader
        pairs = []
        start = reader.tell()
        for _ in range(self._array("malformed xattrs")):
            if self._peek() != _FIXARRAY_2:
                raise IntegrityError(f"{reader.what}: malformed xattr")
            pairs.append(reader.next(msgpack.Unpacker.unpack))
            if reader.tell() - start > MAX_XATTR_BYTES:
                raise IntegrityError(
                    f"{reader.what}: extended attributes over {MAX_XATTR_BYTES} bytes"
                )
        return pairs
