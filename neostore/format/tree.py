"""Directory listings (trees): nodes <-> msgpack. Pure.

A tree is ``msgpack({"v": 1, "nodes": [node, ...]})`` with nodes sorted by
name. Names are bytes, so non-UTF-8 names survive. The serialised tree is
chunked and stored like file content: a directory is referenced by a list
of blob refs whose concatenation is its listing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..errors import IntegrityError
from .blob import Ref
from .codec import pack, unpack

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
    content: list[Ref] = field(default_factory=list)
    subtree: list[Ref] = field(default_factory=list)

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
        return out


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


def decode_node(raw: Any, what: str) -> Node:
    if not isinstance(raw, dict):
        raise IntegrityError(f"{what}: malformed node")
    name = raw.get("n")
    if not isinstance(name, bytes) or not valid_name(name):
        raise IntegrityError(f"{what}: invalid file name {name!r}")
    ntype = raw.get("t")
    if ntype not in NODE_TYPES:
        raise IntegrityError(f"{what}: unknown node type {ntype!r}")
    node = Node(
        name=name,
        type=ntype,
        mode=_int(raw, "m", what),
        uid=_int(raw, "u", what),
        gid=_int(raw, "g", what),
        user=raw.get("un") if isinstance(raw.get("un"), str) else None,
        group=raw.get("gn") if isinstance(raw.get("gn"), str) else None,
        mtime_ns=_int(raw, "mt", what),
        atime_ns=_int(raw, "at", what, 0),
        ctime_ns=_int(raw, "ct", what, 0),
        inode=_int(raw, "ino", what, 0),
        device=_int(raw, "dev", what, 0),
        links=_int(raw, "nl", what, 1),
    )
    if ntype == FILE:
        node.size = _int(raw, "sz", what)
        node.content = [Ref.decode(r, what) for r in _refs(raw, "c", what)]
        if sum(r.length for r in node.content) != node.size:
            raise IntegrityError(f"{what}: content of {name!r} does not add up to its size")
    elif ntype == DIR:
        node.subtree = [Ref.decode(r, what) for r in _refs(raw, "st", what)]
    elif ntype == SYMLINK:
        target = raw.get("lt")
        if not isinstance(target, bytes):
            raise IntegrityError(f"{what}: symlink without target")
        node.link_target = target
    elif ntype in (CHARDEV, BLOCKDEV):
        node.rdev = _int(raw, "rd", what)
    xattrs = raw.get("x", [])
    if not isinstance(xattrs, list):
        raise IntegrityError(f"{what}: malformed xattrs")
    for pair in xattrs:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, bytes) for p in pair)
        ):
            raise IntegrityError(f"{what}: malformed xattr")
        node.xattrs[pair[0]] = pair[1]
    return node


def encode_tree(nodes: list[Node]) -> bytes:
    ordered = sorted(nodes, key=lambda n: n.name)
    return pack({"v": TREE_VERSION, "nodes": [n.encode() for n in ordered]})


def decode_tree(data: bytes, what: str) -> list[Node]:
    raw = unpack(data, what)
    if (
        not isinstance(raw, dict)
        or raw.get("v") != TREE_VERSION
        or not isinstance(raw.get("nodes"), list)
    ):
        raise IntegrityError(f"{what}: malformed tree")
    nodes = [decode_node(n, what) for n in raw["nodes"]]
    for before, after in itertools.pairwise(nodes):
        if before.name >= after.name:
            raise IntegrityError(f"{what}: names not sorted or duplicated")
    return nodes
