"""Reading blobs: find a copy in the index, fetch it, decrypt and verify it.

The one reader of blobs for every operation (restore, browse, copy, check,
prune). It owns how blobs are fetched: one range read per blob from a
local directory; from a server (``batch_reads``), neighbouring blobs of a
pack in one range request, a file's next window of blobs at once, and
listings by segments of their packs (a walk opens them in the order a
snapshot wrote them, close together).
Nothing it returns is unverified: every plaintext is checked against the
content hash in its reference, and a copy that fails (missing, corrupt,
planted by a leaked writer key) makes it try the blob's other copies.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from ..errors import IntegrityError, NeostoreError, NotFound
from ..format.blob import Ref, decrypt_blob
from ..format.listing import EAGER_BYTES, EncodedListing, read_encoded_listing
from ..format.targets import TREE
from ..format.tree import MAX_LISTING_BYTES, ListingTooLarge, Node, decode_tree_stream
from . import objects
from .index import Location, MasterIndex
from .objects import ObjectStore

#: blobs of one pack less than this far apart are fetched in one request
MAX_GAP = 256 * 1024
#: at most this many bytes per range request
MAX_READ = 8 << 20
#: a file's blobs are fetched ahead in windows of this many plaintext bytes
WINDOW = 8 << 20
#: listings are read from a remote store in segments of their pack this large
TREE_SEGMENT = 4 << 20
#: segments kept in memory, at most (the least recently used go first)
TREE_SEGMENTS_HELD = 32 << 20


class BlobReader:
    """Thread-safe; one per repository (worker processes inherit it)."""

    def __init__(
        self, store: ObjectStore, index: MasterIndex, repo_id: bytes, chunk_max: int
    ) -> None:
        self._store = store
        self._index = index
        self._repo_id = repo_id
        self._chunk_max = chunk_max
        self._budget = ListingBudget()
        self._segments_lock = threading.Lock()
        #: (pack id, first byte) -> a segment of a pack of listings (remote stores)
        self._segments: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self._segments_bytes = 0

    @property
    def batch_reads(self) -> bool:
        """Whether fetching neighbours together pays (a remote store)."""
        return self._store.batch_reads

    def check_ref(self, ref: Ref) -> None:
        """Refuse a reference no writer could have made (hostile trees)."""
        if ref.length > self._chunk_max:
            raise IntegrityError(
                f"blob {ref.blob_id.hex()}: reference claims {ref.length} bytes, more than the "
                f"largest chunk ({self._chunk_max})"
            )

    def stored_size(self, ref: Ref) -> int:
        """Encrypted bytes a fetch of the blob's first copy moves (0: unknown)."""
        location = self._index.lookup(ref.blob_id)
        return location.length if location is not None else 0

    # -- one blob --------------------------------------------------------------------

    def read(self, btype: int, ref: Ref, stored: bytes | None = None) -> bytes:
        """A blob's plaintext, verified. ``stored``: its encrypted bytes when
        already fetched (:meth:`prefetch`, from the first indexed copy),
        checked all the same. When that copy fails (wrong type, missing,
        corrupt or planted by a leaked writer key), the blob's other
        indexed copies are tried; they are looked up only then."""
        self.check_ref(ref)
        first = self._index.lookup(ref.blob_id)
        if first is None:
            raise IntegrityError(f"blob {ref.blob_id.hex()} is not in any index (missing data)")
        try:
            return self.read_copy(btype, ref, first, stored)
        except IntegrityError as e:
            failure = e
        for location in self._index.locations(ref.blob_id)[1:]:
            try:
                return self.read_copy(btype, ref, location, None)
            except IntegrityError:
                continue
        raise failure

    def read_copy(
        self, btype: int, ref: Ref, location: Location, stored: bytes | None = None
    ) -> bytes:
        """The plaintext of one copy of a blob, verified."""
        if location.btype != btype:
            raise IntegrityError(f"blob {ref.blob_id.hex()} has the wrong type in the index")
        try:
            if stored is None or len(stored) != location.length:
                stored = self._load_stored(ref, location)
            return decrypt_blob(self._repo_id, btype, ref, stored)
        except IntegrityError as e:
            raise IntegrityError(f"pack {location.pack_id.hex()}: {e}") from None

    def verified_stored(self, btype: int, ref: Ref) -> bytes:
        """The encrypted bytes of a copy of a blob that decrypts and matches
        its content hash (copies in condemned packs last)."""
        failure: IntegrityError | None = None
        for location in self._index.locations(ref.blob_id):
            try:
                if location.btype != btype:
                    raise IntegrityError(f"blob {ref.blob_id.hex()} has the wrong type")
                stored = self._load_stored(ref, location)
                decrypt_blob(self._repo_id, btype, ref, stored)
                return stored
            except IntegrityError as e:
                failure = e
        raise failure or IntegrityError(f"blob {ref.blob_id.hex()} is not in any index")

    def _load_stored(self, ref: Ref, location: Location) -> bytes:
        try:
            stored = self._store.load(
                objects.pack(location.pack_id), location.offset, location.length
            )
        except NotFound:
            raise IntegrityError(f"missing (needed for blob {ref.blob_id.hex()})") from None
        if len(stored) != location.length:
            raise IntegrityError("truncated")
        return stored

    # -- many blobs ----------------------------------------------------------------

    def prefetch(self, btype: int, refs: Sequence[Ref]) -> dict[bytes, bytes]:
        """The encrypted bytes of many blobs, read with as few range requests
        as possible: blobs of one pack less than ``MAX_GAP`` apart are read
        together (up to ``MAX_READ`` bytes a request). For a store where a
        request costs more than reading a gap (a server). Nothing is verified
        here; a blob that cannot be fetched is left out (:meth:`read` then
        fetches it alone and reports the problem)."""
        wanted: list[tuple[bytes, int, int, bytes]] = []
        for ref in refs:
            location = self._index.lookup(ref.blob_id)
            if location is not None and location.btype == btype:
                wanted.append((location.pack_id, location.offset, location.length, ref.blob_id))
        wanted.sort()
        out: dict[bytes, bytes] = {}
        start = 0
        while start < len(wanted):
            end, first, stop = self._run(wanted, start)
            try:
                data = self._store.load(objects.pack(wanted[start][0]), first, stop - first)
            except NeostoreError:
                data = b""
            for _, offset, length, blob_id in wanted[start:end]:
                if offset + length - first <= len(data):
                    out[blob_id] = data[offset - first : offset - first + length]
            start = end
        return out

    @staticmethod
    def _run(wanted: list[tuple[bytes, int, int, bytes]], start: int) -> tuple[int, int, int]:
        """The blobs from ``start`` on that one range request covers: (end
        index, first byte, byte after the last)."""
        pack_id, first, _, _ = wanted[start]
        end, stop = start, first
        while end < len(wanted):
            p, offset, length, _ = wanted[end]
            if p != pack_id or offset - stop > MAX_GAP or offset + length - first > MAX_READ:
                break
            stop = max(stop, offset + length)
            end += 1
        return max(end, start + 1), first, stop

    def window(self, refs: Sequence[Ref], start: int, skip: set[bytes] | None = None) -> list[Ref]:
        """The blobs of a stream from ``start`` on, up to ``WINDOW`` bytes
        (digests in ``skip`` left out: holes, chunks found locally): what to
        :meth:`prefetch` next. A snapshot writes a file's blobs side by
        side, so a window is a few range reads."""
        chosen: list[Ref] = []
        total = 0
        for index in range(start, len(refs)):  # no slice: refs may be kept encoded
            ref = refs[index]
            if skip and ref.digest in skip:
                continue
            if chosen and total + ref.length > WINDOW:
                break
            chosen.append(ref)
            total += ref.length
        return chosen

    def _tree_stored(self, location: Location) -> bytes | None:
        """The encrypted bytes of a listing's piece from the segment of its
        pack that holds it, read whole on first use (remote stores): a
        snapshot writes the listings of a walk side by side, so one request
        brings the next thousands. Verified by the caller like any fetch."""
        first = location.offset // TREE_SEGMENT * TREE_SEGMENT
        end = location.offset + location.length
        key = (location.pack_id, first)
        with self._segments_lock:
            held = self._segments.get(key)
            if held is not None and end <= first + len(held):
                self._segments.move_to_end(key)
                return held[location.offset - first : end - first]
        stop = max(end, min(first + TREE_SEGMENT, self._index.pack_size(location.pack_id) or end))
        try:
            data = self._store.load(objects.pack(location.pack_id), first, stop - first)
        except NeostoreError:
            return None
        if len(data) < end - first:
            return None
        with self._segments_lock:
            old = self._segments.pop(key, b"")
            self._segments[key] = data
            self._segments_bytes += len(data) - len(old)
            while self._segments_bytes > TREE_SEGMENTS_HELD and len(self._segments) > 1:
                _, dropped = self._segments.popitem(last=False)
                self._segments_bytes -= len(dropped)
        return data[location.offset - first : end - first]

    def stream(self, btype: int, refs: Sequence[Ref]) -> Iterator[bytes]:
        """The plaintext of ``refs`` in order, verified, fetched a window at
        a time where that pays (bounded memory: one window)."""
        ahead: dict[bytes, bytes] = {}
        for index, ref in enumerate(refs):
            stored = ahead.pop(ref.blob_id, None)
            if stored is None and btype == TREE and self.batch_reads:
                location = self._index.lookup(ref.blob_id)
                if location is not None and location.btype == TREE:
                    stored = self._tree_stored(location)
            if stored is None and self.batch_reads:
                ahead = self.prefetch(btype, self.window(refs, index))
                stored = ahead.pop(ref.blob_id, None)
            yield self.read(btype, ref, stored)

    def read_stream(self, btype: int, refs: Sequence[Ref]) -> bytes:
        return b"".join(self.stream(btype, refs))

    def load_tree(self, refs: Sequence[Ref], decode_at_most: int = 0) -> Sequence[Node]:
        """A directory listing, verified as its blobs arrive. Refused before
        anything is fetched when its references add up to more than a
        listing may take, and as soon as a piece breaks a rule. A small
        listing is decoded; a large one is kept encoded and its nodes
        decoded as they are read (format.listing), unless it has at most
        ``decode_at_most`` entries. What it holds counts against this
        process's budget of listings alive at once (:class:`ListingBudget`)."""
        if not refs:
            return []
        what = f"tree {refs[0].blob_id.hex()[:16]}"
        declared = sum(ref.length for ref in refs)
        if declared > MAX_LISTING_BYTES:
            raise ListingTooLarge(
                f"{what}: its {len(refs)} pieces add up to {declared} bytes, more than the "
                f"{MAX_LISTING_BYTES} a listing may take"
            )
        for ref in refs:
            self.check_ref(ref)
        pieces = self.stream(TREE, refs)
        if declared <= EAGER_BYTES:
            # decoded: a node costs ~10 times its encoding at most
            nodes = decode_tree_stream(pieces, what)
            return self._budget.hold(Listing(nodes), 10 * declared + 512 * len(nodes), what)
        self._budget.reserve(declared, what)  # before its bytes are fetched
        try:
            if _decoded_cost(declared, 0) > MAX_HELD_BYTES // 2:
                decode_at_most = 0  # its nodes could take too much of the budget
            encoded = read_encoded_listing(pieces, declared, what, decode_at_most)
        finally:
            self._budget.give(declared)
        if isinstance(encoded, list):
            cost = _decoded_cost(declared, len(encoded))
            return self._budget.hold(Listing(encoded), cost, what)
        return self._budget.hold(encoded, encoded.nbytes + 8 * len(encoded), what)


def _decoded_cost(encoded: int, entries: int) -> int:
    """Bytes a decoded listing takes at most, estimated: ~3 times its
    references, names and xattrs, ~400 bytes a node besides."""
    return 3 * encoded + 400 * entries


#: bytes the directory listings alive at once in a process may take: one
#: listing of the largest size and more (a walk holds the listings on its
#: path, a diff two per level)
MAX_HELD_BYTES = 160 << 20


class Listing(list[Node]):
    """A decoded directory listing; while it is alive, what it holds
    counts against the budget of the reader that loaded it."""

    __slots__ = ("_release",)
    _release: Callable[[], None]

    def __del__(self) -> None:
        release = getattr(self, "_release", None)
        if release is not None:
            release()


_Held = TypeVar("_Held", Listing, EncodedListing)


class ListingBudget:
    """Bytes the listings alive at once take. A tree made to exhaust
    memory — a deep path of large listings — is refused once they pass
    :data:`MAX_HELD_BYTES`, instead of growing until the process is
    killed. (Listings are let go when their last reference goes, which in
    CPython is at once.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = 0

    def reserve(self, cost: int, what: str) -> None:
        with self._lock:
            if self.held + cost > MAX_HELD_BYTES:
                raise ListingTooLarge(
                    f"{what}: the directory listings open on the way to it would take "
                    f"{self.held + cost} bytes, more than the {MAX_HELD_BYTES} a walk may"
                )
            self.held += cost

    def hold(self, listing: _Held, cost: int, what: str) -> _Held:
        self.reserve(cost, what)
        listing._release = functools.partial(self.give, cost)
        return listing

    def give(self, cost: int) -> None:
        with self._lock:
            self.held -= cost
