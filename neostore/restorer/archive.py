"""A folder of a snapshot as a tar or zip archive, written to a stream.

A restore into an archive instead of a directory: the same walk, the same
rule about privileged metadata (dropped from trees an owner key did not
sign unless asked), every byte verified. Entries are named relative to
the parent of the folder asked for (``/home/me/docs`` gives ``docs/…``,
``/`` gives ``home/…``), as ``tar -C /home/me docs`` would.

tar (POSIX pax): modes, owners (ids and names), mtimes to the
microsecond, symlinks, hard links (within the archive), FIFOs and device
nodes, extended attributes (``SCHILY.xattr.*``, which GNU tar restores
with ``--xattrs``), long and non-UTF-8 names (pax ``hdrcharset=BINARY``),
files of any size. zip: modes and file types (Unix external attributes),
mtimes (DOS time plus the extended timestamp, in seconds), symlinks (as
Info-ZIP stores them), files over 4 GiB (zip64); hard links are stored as
full copies, owners, xattrs, FIFOs and devices are left out, and a name
that is not UTF-8 is stored with its bad bytes replaced (each a warning).
Sparse files are stored in full in both. Memory is bounded: a file is
streamed chunk by chunk.
"""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import struct
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

from ..browse.navigate import in_snapshot, normalise, resolve
from ..core.repository import Repository
from ..errors import NeostoreError, UsageError
from ..format import tree
from ..format.targets import DATA
from ..format.tree import Node
from ..snapshots.info import SnapshotInfo
from .privileged import unprivileged

FORMATS = ("tar", "zip")
#: zip's DOS time covers these years
_DOS_YEARS = (1980, 2107)
_COPY = 1 << 20

Warn = Callable[[bytes, str], None]


@dataclasses.dataclass
class ArchiveStats:
    """What the caller reports: items whose privileged metadata was left
    out, and files that could not be read (everything else is warned
    about as it happens)."""

    privileged_dropped: int = 0
    errors: list[tuple[bytes, str]] = dataclasses.field(default_factory=list)


class _Sink(Protocol):
    def directory(self, name: bytes, node: Node) -> None: ...
    def file(self, name: bytes, node: Node, content: BinaryIO, link_to: bytes | None) -> None: ...
    def symlink(self, name: bytes, node: Node) -> None: ...
    def special(self, name: bytes, node: Node) -> bool: ...
    def close(self) -> None: ...


def write_archive(
    repo: Repository,
    snapshot: SnapshotInfo,
    path: str | bytes,
    kind: str,
    out: BinaryIO,
    warn: Warn,
    preserve_privileged: bool = False,
) -> ArchiveStats:
    """Write the folder (or file) at ``path`` of ``snapshot`` to ``out`` as
    a ``kind`` ("tar" or "zip") archive. A chunk that fails verification
    is reported (``warn``, and in ``errors``) and its file is completed
    with zeros, so the archive stays well-formed; the caller decides the
    exit status."""
    if kind not in FORMATS:
        raise UsageError(f"{kind!r} is not an archive format ({', '.join(FORMATS)})", option="kind")
    repo.load_index()
    wanted = normalise(path)
    node, listing = resolve(repo, snapshot, wanted)
    stats = ArchiveStats()
    sink: _Sink = _Tar(out, warn) if kind == "tar" else _Zip(out, warn)
    walk = _Walk(repo, sink, stats, warn, vet=not (snapshot.owner_tree or preserve_privileged))
    with in_snapshot(snapshot):
        if node is None:  # the whole snapshot: its top-level entries
            walk.nodes(listing, b"", b"")
        else:
            walk.one(node, wanted, wanted.rsplit(b"/", 1)[-1])
    sink.close()
    return stats


class _Walk:
    def __init__(
        self, repo: Repository, sink: _Sink, stats: ArchiveStats, warn: Warn, vet: bool
    ) -> None:
        self._repo, self._sink, self._stats, self._warn, self._vet = repo, sink, stats, warn, vet
        #: (device, inode) of a hard-linked file -> its name in the archive
        self._links: dict[tuple[int, int], bytes] = {}

    def nodes(self, listing: Iterable[Node], path: bytes, name: bytes) -> None:
        for child in listing:
            prefix = name + b"/" if name else b""
            self.one(child, path + b"/" + child.name, prefix + child.name)

    def one(self, listed: Node, path: bytes, name: bytes) -> None:
        node = unprivileged(listed) if self._vet else listed
        if node is not listed:
            self._stats.privileged_dropped += 1
            if node is None:
                self._warn(path, "device node left out (not from an owner's snapshot)")
                return
        if node.type == tree.DIR:
            self._sink.directory(name, node)
            self.nodes(self._repo.blobs.load_tree(node.subtree), path, name)
        elif node.type == tree.FILE:
            self._file(node, path, name)
        elif node.type == tree.SYMLINK:
            self._sink.symlink(name, node)
        elif not self._sink.special(name, node):
            self._warn(path, f"left out: this archive format cannot hold a {_kind(node)}")

    def _file(self, node: Node, path: bytes, name: bytes) -> None:
        key = (node.device, node.inode)
        link_to = self._links.get(key) if node.links > 1 else None
        if node.links > 1 and link_to is None:
            self._links[key] = name
        content = _Content(self._repo, node, path, self._failed)
        self._sink.file(name, node, io.BufferedReader(content, _COPY), link_to)

    def _failed(self, path: bytes, message: str) -> None:
        self._stats.errors.append((path, message))
        self._warn(path, f"{message}; stored with zeros in its place")


def _kind(node: Node) -> str:
    return {tree.FIFO: "FIFO", tree.SOCKET: "socket"}.get(node.type, "device node")


class _Content(io.RawIOBase):
    """A file's content, chunk by chunk, verified. After a chunk fails,
    the rest of the file reads as zeros (and the failure is reported)."""

    def __init__(
        self, repo: Repository, node: Node, path: bytes, failed: Callable[[bytes, str], None]
    ) -> None:
        super().__init__()
        self._chunks = repo.blobs.stream(DATA, node.content)
        self._left = node.size
        self._path, self._failed = path, failed
        self._data = memoryview(b"")
        self._broken = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._left:
            return 0
        if not self._data:
            self._data = memoryview(self._next())
        count = min(len(buffer), len(self._data), self._left)
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        self._left -= count
        return count

    def _next(self) -> bytes:
        if not self._broken:
            try:
                return next(self._chunks)
            except NeostoreError as e:
                self._broken = True
                self._failed(self._path, f"cannot be read: {e}")
            except StopIteration:
                self._broken = True
                self._failed(self._path, "content shorter than its size")
        return bytes(min(self._left, _COPY))


def _text(name: bytes) -> str:
    """A name for tarfile: bytes that are not UTF-8 survive (pax BINARY)."""
    return name.decode("utf-8", "surrogateescape")


class _Tar:
    def __init__(self, out: BinaryIO, warn: Warn) -> None:
        self._tar = tarfile.open(  # noqa: SIM115 (closed by close())
            fileobj=out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
            bufsize=_COPY,
        )

    def _info(self, name: bytes, node: Node, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(_text(name))
        info.type = kind
        info.mode = stat.S_IMODE(node.mode)
        info.uid, info.gid = node.uid, node.gid
        info.uname, info.gname = node.user or "", node.group or ""
        whole, rest = divmod(node.mtime_ns, 10**9)
        info.mtime = whole + rest // 1000 / 1e6 if rest else whole  # pax keeps microseconds
        info.pax_headers = {
            "SCHILY.xattr." + _text(key): _text(value) for key, value in node.xattrs.items()
        }
        return info

    def directory(self, name: bytes, node: Node) -> None:
        self._tar.addfile(self._info(name, node, tarfile.DIRTYPE))

    def file(self, name: bytes, node: Node, content: BinaryIO, link_to: bytes | None) -> None:
        if link_to is not None:
            info = self._info(name, node, tarfile.LNKTYPE)
            info.linkname = _text(link_to)
            self._tar.addfile(info)
            return
        info = self._info(name, node, tarfile.REGTYPE)
        info.size = node.size
        self._tar.addfile(info, content)

    def symlink(self, name: bytes, node: Node) -> None:
        info = self._info(name, node, tarfile.SYMTYPE)
        info.linkname = _text(node.link_target or b"")
        self._tar.addfile(info)

    def special(self, name: bytes, node: Node) -> bool:
        kind = {tree.FIFO: tarfile.FIFOTYPE, tree.CHARDEV: tarfile.CHRTYPE}.get(node.type)
        kind = tarfile.BLKTYPE if node.type == tree.BLOCKDEV else kind
        if kind is None:
            return False
        info = self._info(name, node, kind)
        if node.type in (tree.CHARDEV, tree.BLOCKDEV):
            info.devmajor, info.devminor = os.major(node.rdev), os.minor(node.rdev)
        self._tar.addfile(info)
        return True

    def close(self) -> None:
        self._tar.close()


class _Zip:
    def __init__(self, out: BinaryIO, warn: Warn) -> None:
        self._zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._warn = warn

    def _info(self, name: bytes, node: Node, kind: int) -> zipfile.ZipInfo:
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            text = name.decode("utf-8", "replace")
            self._warn(name, f"name is not UTF-8: stored in the zip as {text!r}")
        seconds = node.mtime_ns // 10**9
        info = zipfile.ZipInfo(text + ("/" if kind == stat.S_IFDIR else ""), _dos_time(seconds))
        info.create_system = 3  # Unix: the high 16 bits are st_mode
        info.external_attr = (kind | stat.S_IMODE(node.mode)) << 16
        if kind == stat.S_IFDIR:
            info.external_attr |= 0x10  # MS-DOS directory flag
        # extended timestamp (0x5455): the mtime in UTC seconds, which unzip applies
        info.extra = struct.pack("<HHBi", 0x5455, 5, 1, max(-(2**31), min(seconds, 2**31 - 1)))
        return info

    def directory(self, name: bytes, node: Node) -> None:
        self._zip.writestr(self._info(name, node, stat.S_IFDIR), b"")

    def file(self, name: bytes, node: Node, content: BinaryIO, link_to: bytes | None) -> None:
        info = self._info(name, node, stat.S_IFREG)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = node.size  # zip64 when it needs it
        with self._zip.open(info, "w") as entry:
            while data := content.read(_COPY):
                entry.write(data)

    def symlink(self, name: bytes, node: Node) -> None:
        info = self._info(name, node, stat.S_IFLNK)
        info.compress_type = zipfile.ZIP_STORED
        self._zip.writestr(info, node.link_target or b"")

    def special(self, name: bytes, node: Node) -> bool:
        return False

    def close(self) -> None:
        self._zip.close()


def _dos_time(seconds: int) -> tuple[int, int, int, int, int, int]:
    low, high = _DOS_YEARS
    moment = time.localtime(max(0, seconds))
    if moment.tm_year < low:
        return (low, 1, 1, 0, 0, 0)
    if moment.tm_year > high:
        return (high, 12, 31, 23, 59, 58)
    return moment[:6]
