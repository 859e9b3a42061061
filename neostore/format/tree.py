"""Directory listings (trees): nodes <-> msgpack. Pure.

A tree is ``msgpack({"v": 1, "nodes": [node, ...]})`` with nodes sorted by
name. Names are bytes, so non-UTF-8 names survive. The serialised tree is
chunked and stored like file content: a directory is referenced by a list
of blob refs whose concatenation is its listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack

from ..errors import IntegrityError
from .blob import Ref
from .codec import pack

FILE = "f"
DIR = "d"
SYMLINK = "l"
FIFO = "p"
CHARDEV = "c"
BLOCKDEV = "b"
SOCKET = "s"
NODE_TYPES = (FILE, DIR, SYMLINK, FIFO, CHARDEV, BLOCKDEV, SOCKET)
TREE_VERSION = 1


@dataclass(slots=True)
class Node:
    name: bytes
    type: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    user: str | None = None
    group: str | None = None
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0
    size: int = 0
    inode: int = 0
    device: int = 0
    links: int = 1
    rdev: int = 0
    link_target: bytes | None = None
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    #: recorded where the source platform has them (None elsewhere): BSD and
    #: macOS file flags (st_flags), Windows file attributes, creation time
    flags: int | None = None
    attributes: int | None = None
    birth_ns: int | None = None
    content: Sequence[Ref] = field(default_factory=list)
    subtree: Sequence[Ref] = field(default_factory=list)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.name,
            "t": self.type,
            "m": self.mode,
            "u": self.uid,
            "g": self.gid,
            "mt": self.mtime_ns,
            "at": self.atime_ns,
            "ct": self.ctime_ns,
            "ino": self.inode,
            "dev": self.device,
            "nl": self.links,
        }
        if self.user is not None:
            out["un"] = self.user
        if self.group is not None:
            out["gn"] = self.group
        if self.type == FILE:
            out["sz"] = self.size
            out["c"] = [r.encode() for r in self.content]
        if self.type == DIR:
            out["st"] = [r.encode() for r in self.subtree]
        if self.type == SYMLINK:
            out["lt"] = self.link_target or b""
        if self.type in (CHARDEV, BLOCKDEV):
            out["rd"] = self.rdev
        if self.xattrs:
            out["x"] = [[k, v] for k, v in sorted(self.xattrs.items())]
        for key, value in (("fl", self.flags), ("wa", self.attributes), ("bt", self.birth_ns)):
            if value is not None:
                out[key] = value
        return out


#: the fields of a node this version reads
_FIELDS = frozenset({"n", "t", "m", "u", "g", "un", "gn", "mt", "at", "ct", "ino"}) | frozenset(
    {"dev", "nl", "sz", "c", "st", "lt", "rd", "x", "fl", "wa", "bt"}
)  # "fl", "wa", "bt" (platform metadata) are scalars: readers before them skip them


def valid_name(name: bytes) -> bool:
    return bool(name) and name not in (b".", b"..") and b"/" not in name and b"\0" not in name


def _int(raw: dict[str, Any], key: str, what: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int):
        raise IntegrityError(f"{what}: field {key!r} missing or not an integer")
    return value


def _refs(raw: dict[str, Any], key: str, what: str) -> list[object]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise IntegrityError(f"{what}: malformed reference list {key!r}")
    return value


def _ref_list(
    raw: dict[str, Any], key: str, what: str, decoded: dict[str, Sequence[Ref]] | None
) -> Sequence[Ref]:
    if decoded and key in decoded:
        return decoded[key]
    return [Ref.decode(r, what) for r in _refs(raw, key, what)]


def _total(refs: Sequence[Ref]) -> int:
    if isinstance(refs, list):
        return refs[0].length if len(refs) == 1 else sum(r.length for r in refs)
    total = getattr(refs, "total", None)  # kept encoded: summed when read
    return total if isinstance(total, int) else sum(r.length for r in refs)


#: the integer fields of a node, with their defaults
_INT_FIELDS = (
    ("m", None), ("u", None), ("g", None), ("mt", None), ("at", 0), ("ct", 0),
    ("ino", 0), ("dev", 0), ("nl", 1),
)  # fmt: skip


def _ints(raw: dict[str, Any], what: str) -> tuple[int, ...]:
    """The integer fields of :data:`_INT_FIELDS` (checked in one pass: a
    listing decodes a node per entry)."""
    get = raw.get
    ints = (
        get("m"), get("u"), get("g"), get("mt"), get("at", 0), get("ct", 0),
        get("ino", 0), get("dev", 0), get("nl", 1),
    )  # fmt: skip
    for value in ints:
        if not isinstance(value, int):
            for key, default in _INT_FIELDS:  # which one, for the message
                _int(raw, key, what, default)
    return cast("tuple[int, ...]", ints)


def decode_node(raw: Any, what: str, decoded: dict[str, Sequence[Ref]] | None = None) -> Node:
    """A node from its msgpack map; ``decoded``: reference lists already
    read from the stream (large ones stay encoded, see format.listing)."""
    if not isinstance(raw, dict):
        raise IntegrityError(f"{what}: malformed node")
    if not raw.keys() <= _FIELDS:  # room for later fields, not for bombs
        for key in raw.keys() - _FIELDS:
            if isinstance(raw[key], (list, dict)):
                raise IntegrityError(f"{what}: unknown node field {key!r} holds a list")
    name = raw.get("n")
    if not isinstance(name, bytes) or not valid_name(name):
        raise IntegrityError(f"{what}: invalid file name {name!r}")
    ntype = raw.get("t")
    if ntype not in NODE_TYPES:
        raise IntegrityError(f"{what}: unknown node type {ntype!r}")
    mode, uid, gid, mtime, atime, ctime, inode, device, links = _ints(raw, what)
    user, group = raw.get("un"), raw.get("gn")
    # the content and subtree given at once: each default would be a list
    # made and thrown away, per entry of every listing read
    content = _ref_list(raw, "c", what, decoded) if ntype == FILE else []
    node = Node(
        name=name,
        type=ntype,
        mode=mode,
        uid=uid,
        gid=gid,
        user=user if isinstance(user, str) else None,
        group=group if isinstance(group, str) else None,
        mtime_ns=mtime,
        atime_ns=atime,
        ctime_ns=ctime,
        inode=inode,
        device=device,
        links=links,
        content=content,
        subtree=_ref_list(raw, "st", what, decoded) if ntype == DIR else [],
    )
    if ntype == FILE:
        node.size = _int(raw, "sz", what)
        if _total(content) != node.size:
            raise IntegrityError(f"{what}: content of {name!r} does not add up to its size")
    elif ntype == SYMLINK:
        target = raw.get("lt")
        if not isinstance(target, bytes):
            raise IntegrityError(f"{what}: symlink without target")
        node.link_target = target
    elif ntype in (CHARDEV, BLOCKDEV):
        node.rdev = _int(raw, "rd", what)
    if "x" in raw:
        node.xattrs = _xattrs(raw["x"], what)
    if "fl" in raw or "wa" in raw or "bt" in raw:
        node.flags = _optional_int(raw, "fl", what)
        node.attributes = _optional_int(raw, "wa", what)
        node.birth_ns = _optional_int(raw, "bt", what)
    return node


def _optional_int(raw: dict[str, Any], key: str, what: str) -> int | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, int):
        raise IntegrityError(f"{what}: field {key!r} is not an integer")
    return value


def _xattrs(pairs: Any, what: str) -> dict[bytes, bytes]:
    if not isinstance(pairs, list):
        raise IntegrityError(f"{what}: malformed xattrs")
    xattrs = {}
    for pair in pairs:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], bytes)
            and isinstance(pair[1], bytes)
        ):
            raise IntegrityError(f"{what}: malformed xattr")
        xattrs[pair[0]] = pair[1]
    return xattrs


#: the most entries one directory listing may hold, and the most bytes its
#: encoding may take; a snapshot refuses to write more, a reader to read
#: more (docs/design.md, "Attack review")
MAX_LISTING_ENTRIES = 1 << 20
MAX_LISTING_BYTES = 128 << 20
#: the extended attributes of one node may take at most this much
MAX_XATTR_BYTES = 16 << 20


class ListingTooLarge(IntegrityError):
    pass


def encode_tree(nodes: list[Node], what: str = "directory") -> bytes:
    builder = ListingBuilder(len(nodes), what)
    for node in sorted(nodes, key=lambda n: n.name):
        builder.add(node)
    return builder.finish()


class ListingBuilder:
    """A listing encoded node by node, nodes given in name order: the
    listing is never held as node objects (copy and repair rewrite
    listings of any size this way). Refuses what a reader would refuse."""

    def __init__(self, count: int, what: str = "directory") -> None:
        if count > MAX_LISTING_ENTRIES:
            raise ListingTooLarge(
                f"{what}: {count} entries, more than the {MAX_LISTING_ENTRIES} a directory "
                "listing may hold"
            )
        self._what = what
        self._count = count
        self._last: bytes | None = None
        self._out = bytearray(pack({"v": TREE_VERSION, "nodes": []})[:-1])
        self._out += msgpack.Packer().pack_array_header(count)

    def add(self, node: Node) -> None:
        if self._last is not None and node.name <= self._last:
            raise ValueError(f"{self._what}: nodes not in name order")
        self._last = node.name
        self._count -= 1
        fields = node.encode()
        if "x" in fields and len(pack(fields["x"])) > MAX_XATTR_BYTES:
            raise ListingTooLarge(
                f"{self._what}: {node.name!r}: extended attributes over {MAX_XATTR_BYTES} bytes"
            )
        self._out += pack(fields)
        if len(self._out) > MAX_LISTING_BYTES:
            raise ListingTooLarge(
                f"{self._what}: its listing takes more than the {MAX_LISTING_BYTES} bytes a "
                "listing may take"
            )

    def finish(self) -> bytes:
        if self._count:
            raise ValueError(f"{self._what}: {self._count} nodes announced and not added")
        return bytes(self._out)


def decode_tree(data: bytes, what: str) -> list[Node]:
    return decode_tree_stream([data], what)


def decode_tree_stream(chunks: Iterable[bytes], what: str) -> list[Node]:
    """A listing from its plaintext in pieces, decoded as they come: a
    listing that breaks a rule (sorted unique names, no data after its end,
    at most MAX_LISTING_ENTRIES entries) fails at the first piece that
    shows it, before the rest is fetched."""
    reader = Pieces(chunks, what)
    nodes: list[Node] = []

    def add() -> None:
        node = decode_node(reader.next(msgpack.Unpacker.unpack), what)
        if nodes and nodes[-1].name >= node.name:
            raise IntegrityError(f"{what}: names not sorted or duplicated")
        nodes.append(node)

    read_listing(reader, what, add)
    return nodes


def read_listing(reader: Pieces, what: str, read_node: Callable[[], None]) -> None:
    """The frame of a listing — its version, the node count within the
    limit, nothing after its end — with ``read_node`` reading each node."""
    fields = reader.next(msgpack.Unpacker.read_map_header)
    version, seen = None, False
    for _ in range(fields):
        key = reader.next(msgpack.Unpacker.unpack)
        if key == "nodes" and not seen:
            seen = True
            count = reader.next(msgpack.Unpacker.read_array_header)
            if count > MAX_LISTING_ENTRIES:
                raise ListingTooLarge(
                    f"{what}: claims {count} entries, more than the {MAX_LISTING_ENTRIES} a "
                    "listing may hold"
                )
            for _ in range(count):
                read_node()
        elif key == "v":
            version = reader.next(msgpack.Unpacker.unpack)
        else:
            raise IntegrityError(f"{what}: malformed tree")
    if version != TREE_VERSION or not seen:
        raise IntegrityError(f"{what}: malformed tree")
    reader.end()


class Pieces:
    """A msgpack stream fed from an iterator of pieces, one at a time."""

    def __init__(self, chunks: Iterable[bytes], what: str, **limits: int) -> None:
        self._chunks = iter(chunks)
        self._what = what
        self._unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=MAX_LISTING_BYTES, **limits
        )
        self._fed = 0

    @property
    def what(self) -> str:
        return self._what

    def tell(self) -> int:
        """Bytes of the stream read so far."""
        return int(self._unpacker.tell())

    def ensure(self) -> bool:
        """At least one byte fed past what was read (False at the end)."""
        while self.tell() >= self._fed:
            if not self._more():
                return False
        return True

    def next(self, read: Callable[[msgpack.Unpacker], Any]) -> Any:
        while True:
            try:
                return read(self._unpacker)
            except msgpack.OutOfData:
                if not self._more():
                    raise IntegrityError(f"{self._what}: listing cut short") from None
            except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError) as e:
                raise IntegrityError(f"{self._what}: malformed encoding") from e

    def end(self) -> None:
        """Nothing may follow the listing."""
        if self._unpacker.tell() < self._fed or self._more():
            raise IntegrityError(f"{self._what}: data after the end of the listing")

    def _more(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                try:
                    self._unpacker.feed(chunk)
                except msgpack.BufferFull as e:
                    raise ListingTooLarge(f"{self._what}: listing too large") from e
                self._fed += len(chunk)
                return True
        return False
