"""The mount's file system: the layout of :mod:`.layout` above each
snapshot's own tree, read-only, in terms a FUSE binding calls (paths in,
``stat`` dicts, names and bytes out, :class:`FsError` with an errno).

Listings are cached by their blob ids (content-addressed: the same ids
are the same listing in every snapshot) with a name lookup, so ``stat``
of each entry of a 100 000-entry folder is a dictionary lookup (plus,
for a listing kept encoded, decoding that one node); the cache takes at
most :data:`MAX_LISTING_CACHE` bytes, estimated.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import itertools
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..browse.navigate import listing_key, root_listing
from ..core.repository import Repository
from ..errors import NeostoreError
from ..format import crypto, tree
from ..format.listing import EncodedListing, EncodedRefs
from ..format.tree import Node
from ..snapshots.info import SnapshotInfo
from .chunks import ChunkCache, OpenFile
from .layout import Layout, TargetView

#: bytes the cached listings may take, estimated (:class:`_Folder`)
MAX_LISTING_CACHE = 256 << 20
#: listings of at most this many entries are cached decoded (a quarter of
#: the cache at ~600 bytes a node)
_DECODE_AT_MOST = MAX_LISTING_CACHE // 4 // 600
#: paths whose nodes are remembered (:meth:`SnapshotFs._node`)
_PATHS = 4096
#: files read without an open (handle 0) whose chunk offsets are kept
_UNASKED = 64
_TYPE_BITS = {
    tree.FILE: stat.S_IFREG,
    tree.DIR: stat.S_IFDIR,
    tree.SYMLINK: stat.S_IFLNK,
    tree.FIFO: stat.S_IFIFO,
    tree.CHARDEV: stat.S_IFCHR,
    tree.BLOCKDEV: stat.S_IFBLK,
    tree.SOCKET: stat.S_IFSOCK,
}
_KINDS = ("ids", "snapshots", "tags")

Warn = Callable[[str, str], None]


class FsError(OSError):
    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))


class _Virtual:
    """A folder or link of the layout (not of a snapshot)."""

    def __init__(self, names: list[str] | None = None, link: str | None = None) -> None:
        self.names = names
        self.link = link


class _Folder:
    """A cached listing, in its order, with where each name is: as its
    nodes (~600 bytes an entry) when that takes at most a quarter of the
    cache (an encoded listing is then decoded once, not at every ``stat``
    and page of a listing); a larger one kept encoded (format.listing), as
    its bytes and the name map (~150 bytes an entry), each node decoded
    when asked for."""

    __slots__ = ("_at", "_nodes", "cost")

    def __init__(self, listing: Sequence[Node]) -> None:
        if isinstance(listing, EncodedListing) and len(listing) > _DECODE_AT_MOST:
            self._nodes: Sequence[Node] = listing.detached()
            self._at = {node.name: i for i, node in enumerate(listing)}
            self.cost = listing.nbytes + 150 * len(self._at)
        else:
            self._nodes = list(listing)
            self._at = {node.name: i for i, node in enumerate(self._nodes)}
            self.cost = 600 * len(self._at)

    def get(self, name: bytes) -> Node | None:
        at = self._at.get(name)
        return None if at is None else self._nodes[at]

    def names(self) -> Iterable[bytes]:
        return self._at

    def nodes(self, start: int = 0) -> Iterator[Node]:
        return (self._nodes[i] for i in range(start, len(self._nodes)))


class SnapshotFs:
    """Thread-safe: FUSE calls it from several threads."""

    def __init__(self, repo: Repository, layout: Layout, cache: ChunkCache, warn: Warn) -> None:
        self._repo = repo
        self._layout = layout
        self._cache = cache
        self._warn = warn
        self._lock = threading.Lock()
        self._listings: OrderedDict[object, _Folder] = OrderedDict()
        self._cached = 0  # bytes, estimated
        self._files: dict[int, OpenFile] = {}
        self._handles = itertools.count(1)
        self._paths: OrderedDict[tuple[bytes, bytes], Node] = OrderedDict()
        self._unasked: OrderedDict[tuple[bytes, bytes], OpenFile] = OrderedDict()
        self._started = time.time_ns()

    # -- the layout ----------------------------------------------------------------

    def _resolve(self, path: str) -> _Virtual | tuple[SnapshotInfo, list[bytes]]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _Virtual(self._layout.targets())
        view = self._layout.view(parts[0])
        if view is None:
            raise FsError(errno.ENOENT)
        rest = parts[1:]
        if not rest:
            return _Virtual([*_KINDS, *(["latest"] if view.latest else [])])
        if rest == ["latest"] and view.latest:
            return _Virtual(link=f"snapshots/{view.latest}")
        return self._in_kind(view, rest[0], rest[1:])

    def _in_kind(
        self, view: TargetView, kind: str, rest: list[str]
    ) -> _Virtual | tuple[SnapshotInfo, list[bytes]]:
        if kind == "tags":
            if not rest:
                return _Virtual(sorted(view.by_tag))
            chosen = view.by_tag.get(rest[0])
            rest = rest[1:]
        elif kind in ("ids", "snapshots"):
            chosen = view.by_id if kind == "ids" else view.by_time
        else:
            raise FsError(errno.ENOENT)
        if chosen is None:
            raise FsError(errno.ENOENT)
        if not rest:
            return _Virtual(list(chosen))
        info = chosen.get(rest[0])
        if info is None:
            raise FsError(errno.ENOENT)
        return info, [os.fsencode(p) for p in rest[1:]]

    # -- inside a snapshot ---------------------------------------------------------

    def _entries(self, key: object, load: Callable[[], Sequence[Node]]) -> _Folder:
        with self._lock:
            found = self._listings.get(key)
            if found is not None:
                self._listings.move_to_end(key)
                return found
        with _gc_paused():
            folder = _Folder(load())
        with self._lock:
            if key not in self._listings:
                self._listings[key] = folder
                self._cached += folder.cost
            while self._cached > MAX_LISTING_CACHE and len(self._listings) > 1:
                _, old = self._listings.popitem(last=False)
                self._cached -= old.cost
        return folder

    def _root(self, info: SnapshotInfo) -> _Folder:
        return self._entries(("root", info.snapshot_id), lambda: root_listing(self._repo, info))

    def _children(self, node: Node) -> _Folder:
        key = listing_key(node.subtree)
        decode = _DECODE_AT_MOST  # decoded once, by the read that verifies it
        return self._entries(key, lambda: self._repo.blobs.load_tree(node.subtree, decode))

    def _node(self, info: SnapshotInfo, parts: list[bytes]) -> Node | None:
        """The node at ``parts`` below the snapshot's root (None: the root).
        Remembered for the last :data:`_PATHS` paths (a snapshot never
        changes): FUSE asks about one path several times in a row (open,
        read, listxattr, getxattr), each from the top."""
        if not parts:
            return None
        key = (info.snapshot_id, b"/".join(parts))
        with self._lock:
            node = self._paths.get(key)
        if node is None:
            node = self._walk(info, parts)
            with self._lock:
                self._paths[key] = node
                if len(self._paths) > _PATHS:
                    self._paths.popitem(last=False)
        return node

    def _walk(self, info: SnapshotInfo, parts: list[bytes]) -> Node:
        try:
            entries = self._root(info)
            node = None
            for part in parts:
                if node is not None:
                    if node.type != tree.DIR:
                        raise FsError(errno.ENOTDIR)
                    entries = self._children(node)
                node = entries.get(part)
                if node is None:
                    raise FsError(errno.ENOENT)
            assert node is not None
            return node
        except NeostoreError as e:
            self._warn(f"{info.hex_id[:8]}:/{os.fsdecode(b'/'.join(parts))}", str(e))
            raise FsError(errno.EIO) from e

    # -- operations ----------------------------------------------------------------

    def getattr(self, path: str) -> dict[str, Any]:
        found = self._resolve(path)
        if isinstance(found, _Virtual):
            if found.link is not None:
                return self._virtual_attrs(stat.S_IFLNK | 0o777, len(found.link))
            return self._virtual_attrs(stat.S_IFDIR | 0o555, 0)
        info, parts = found
        node = self._node(info, parts)
        if node is None:
            attrs = self._virtual_attrs(stat.S_IFDIR | 0o555, 0)
            attrs["st_mtime"] = attrs["st_ctime"] = info.manifest.time_ns
            return attrs
        return _attrs(node, self._repo.config.chunk_max)

    def _virtual_attrs(self, mode: int, size: int) -> dict[str, Any]:
        return {
            "st_mode": mode,
            "st_nlink": 2 if stat.S_ISDIR(mode) else 1,
            "st_size": size,
            "st_uid": os.getuid(),
            "st_gid": os.getgid(),
            "st_mtime": self._started,
            "st_ctime": self._started,
            "st_atime": self._started,
            "st_rdev": 0,
            "st_blocks": 0,
        }

    def readdir(self, path: str) -> list[str]:
        found = self._folder(path)
        names = found.names() if isinstance(found, _Folder) else found
        return [".", "..", *(os.fsdecode(name) for name in names)]

    def listing(self, path: str, start: int = 0) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """The entries of a folder from the ``start``-th, with their
        ``stat`` attributes: what readdirplus hands the kernel, so that it
        need not ask entry by entry."""
        found = self._folder(path)
        if not isinstance(found, _Folder):
            base = path.rstrip("/")
            for name in found[start:]:
                yield os.fsencode(name), self.getattr(f"{base}/{name}")
            return
        hole = self._repo.config.chunk_max
        try:
            for node in found.nodes(start):
                yield node.name, _attrs(node, hole)
        except NeostoreError as e:
            self._warn(path, str(e))
            raise FsError(errno.EIO) from e

    def _folder(self, path: str) -> _Folder | list[str]:
        found = self._resolve(path)
        if isinstance(found, _Virtual):
            if found.names is None:
                raise FsError(errno.ENOTDIR)
            return found.names
        info, parts = found
        node = self._node(info, parts)
        if node is not None and node.type != tree.DIR:
            raise FsError(errno.ENOTDIR)
        try:
            return self._root(info) if node is None else self._children(node)
        except NeostoreError as e:
            self._warn(path, str(e))
            raise FsError(errno.EIO) from e

    def readlink(self, path: str) -> str:
        found = self._resolve(path)
        if isinstance(found, _Virtual):
            if found.link is None:
                raise FsError(errno.EINVAL)
            return found.link
        node = self._node(*found)
        if node is None or node.type != tree.SYMLINK:
            raise FsError(errno.EINVAL)
        return os.fsdecode(node.link_target or b"")

    def _file(self, path: str) -> tuple[tuple[bytes, bytes], Node]:
        """The file at ``path``, and its key: snapshot id and path inside
        (not the mount's path: a time-stamped name can be reused)."""
        found = self._resolve(path)
        if isinstance(found, _Virtual):
            raise FsError(errno.EISDIR if found.names is not None else errno.EINVAL)
        info, parts = found
        node = self._node(info, parts)
        if node is None or node.type == tree.DIR:
            raise FsError(errno.EISDIR)
        return (info.snapshot_id, b"/".join(parts)), node

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise FsError(errno.EROFS)
        _, node = self._file(path)
        handle = next(self._handles)
        with self._lock:
            self._files[handle] = OpenFile(node.content, self._cache, self._repo)
        return handle

    def read(self, path: str, size: int, offset: int, handle: int) -> bytes:
        """``handle`` 0: a file the kernel opened without asking (see
        :mod:`.ops`), found by its path."""
        if handle:
            with self._lock:
                opened = self._files.get(handle)
            if opened is None:
                raise FsError(errno.EBADF)
        else:
            opened = self._unasked_file(path)
        try:
            return opened.read(size, offset)
        except NeostoreError as e:
            self._warn(path, f"cannot be read: {e}")
            raise FsError(errno.EIO) from e

    def _unasked_file(self, path: str) -> OpenFile:
        key, node = self._file(path)  # its node remembered: cheap per read
        with self._lock:
            opened = self._unasked.get(key)
        if opened is None:
            opened = OpenFile(node.content, self._cache, self._repo)
            with self._lock:
                self._unasked[key] = opened
                if len(self._unasked) > _UNASKED:
                    self._unasked.popitem(last=False)
        return opened

    def release(self, handle: int) -> None:
        with self._lock:
            self._files.pop(handle, None)

    def xattrs(self, path: str) -> dict[bytes, bytes]:
        found = self._resolve(path)
        if isinstance(found, _Virtual):
            return {}
        node = self._node(*found)
        return {} if node is None else node.xattrs


def _attrs(node: Node, hole: int) -> dict[str, Any]:
    return {
        "st_mode": _TYPE_BITS[node.type] | stat.S_IMODE(node.mode),
        "st_nlink": node.links if node.type != tree.DIR else 2,
        "st_size": node.size if node.type == tree.FILE else len(node.link_target or b""),
        "st_uid": node.uid,
        "st_gid": node.gid,
        "st_mtime": node.mtime_ns,
        "st_atime": node.atime_ns or node.mtime_ns,
        "st_ctime": node.ctime_ns or node.mtime_ns,
        "st_rdev": node.rdev,
        "st_blocks": _blocks(node, hole) if node.type == tree.FILE else 0,
    }


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a listing is decoded: its nodes
    all survive, so each collection on the way would walk every node made
    so far (a third of the time for 100 000 entries). Nodes hold no cycles;
    other threads only see collection postponed."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@functools.lru_cache(maxsize=64)
def _zero_digest(length: int) -> bytes:
    return crypto.content_hash(bytes(length))


def _blocks(node: Node, hole: int) -> int:
    """512-byte blocks a restore would allocate: holes take none, so
    ``du`` shows a sparse file as it was. A run of zeros is cut into
    chunks of the largest size (``hole`` bytes; no cut point is found in
    it), so only those are compared with the all-zero digest. A file of
    thousands of chunks is counted in full rather than read through
    (``stat`` stays cheap)."""
    if isinstance(node.content, EncodedRefs):
        return (node.size + 511) // 512
    zero = _zero_digest(hole)
    data = sum(r.length for r in node.content if r.length != hole or r.digest != zero)
    return (data + 511) // 512
