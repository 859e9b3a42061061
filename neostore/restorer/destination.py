"""The destination directory of a restore: creating directories and files,
writing content with holes, removing what is in the way, and applying
metadata, every call relative to an open directory fd with O_NOFOLLOW so
a hostile tree (or a symlink swapped in meanwhile) cannot send a write
outside the destination.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable

from .. import owners
from ..format.tree import Node
from ..fsutil import pwrite_all
from ..hostfs import fileattrs, xattrs

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC

_HOLE_BLOCK = 4096
_ZEROS = bytes(_HOLE_BLOCK)


class Dest:
    """A destination directory, created on first use (so an include
    pattern does not leave empty directories behind). Its fd may be
    closed while its metadata waits for workers (:mod:`.pending`) and is
    opened again when needed."""

    def __init__(
        self,
        parent: Dest | None,
        name: bytes,
        node: Node | None,
        fd: int | None = None,
        path: bytes = b"",
    ) -> None:
        self.parent = parent
        self.name = name
        self.node = node
        self.path = path
        self._fd = fd
        self._made = fd is not None
        self.lock = threading.Lock()
        #: what it still waits for before its metadata is applied (:mod:`.pending`)
        self.pending = 0

    def fd(self) -> int:
        with self.lock:
            if self._fd is None:
                assert self.parent is not None
                parent_fd = self.parent.fd()
                if not self._made:
                    _make_dir(parent_fd, self.name)
                    self._made = True
                self._fd = os.open(self.name, DIR_FLAGS, dir_fd=parent_fd)
            return self._fd

    def components(self) -> list[bytes]:
        """Names from the restore root down to this directory."""
        names: list[bytes] = []
        node: Dest | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        return names[::-1]

    @property
    def created(self) -> bool:
        """Whether this restore made (or took over) the directory."""
        return self._made

    @property
    def open(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        with self.lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _make_dir(parent_fd: int, name: bytes) -> None:
    """A directory ``name`` in ``parent_fd``, replacing a non-directory."""
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent_fd)
            os.mkdir(name, 0o700, dir_fd=parent_fd)


def open_below(root_fd: int, components: list[bytes]) -> int:
    """Open a restored directory again, never following a symlink."""
    fd = os.dup(root_fd)
    try:
        for name in components:
            nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def reopen_root(path: str, identity: tuple[int, int]) -> int:
    """The restore's root directory opened again by ``path`` (in a spawned
    worker, which inherits no fd), refused unless it is the directory the
    restore opened first (``identity``: device and inode): one swapped in
    meanwhile, by a rename or a symlink, is not written into."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != identity:
        os.close(fd)
        raise OSError(errno.EXDEV, "not the directory the restore opened (replaced meanwhile?)")
    return fd


def create_file(dir_fd: int, name: bytes) -> int:
    """A new, empty file, created exclusively as tar does: whatever is there
    (a FIFO would block the open, a hard link would carry our writes
    outside the destination, a symlink would redirect them) is removed
    first."""
    try:
        return os.open(name, FILE_FLAGS | os.O_EXCL, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        remove(dir_fd, name)
    return os.open(name, FILE_FLAGS | os.O_EXCL, 0o600, dir_fd=dir_fd)


def write_sparse(fd: int, data: bytes, offset: int) -> int:
    """Write ``data`` at ``offset``, leaving whole zero blocks as holes;
    returns where the last byte written ends (``offset`` if none was)."""
    view = memoryview(data)
    if data.find(_ZEROS) < 0:
        pwrite_all(fd, view, offset)
        return offset + len(data)
    start = None  # start of the pending run of non-zero blocks
    end = offset
    for pos in range(0, len(data), _HOLE_BLOCK):
        if view[pos : pos + _HOLE_BLOCK] == _ZEROS:
            if start is not None:
                pwrite_all(fd, view[start:pos], offset + start)
                end = offset + pos
                start = None
        elif start is None:
            start = pos
    if start is not None:
        pwrite_all(fd, view[start:], offset + start)
        end = offset + len(data)
    return end


def lexists(dir_fd: int, name: bytes) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except OSError:
        return False


def is_zero_at(fd: int, offset: int, length: int) -> bool:
    data = os.pread(fd, length, offset)
    return len(data) == length and not any(data)


def remove_tree(dir_fd: int, name: bytes) -> None:
    """Remove ``name`` and everything below it, never following a symlink."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            remove_tree(fd, os.fsencode(child))
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def remove(dir_fd: int, name: bytes) -> None:
    """Remove whatever is at ``name`` (not a directory with content)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _local_uid(name: str | None, fallback: int) -> int:
    found = owners.uid_of(name) if name else None
    return fallback if found is None else found


def _local_gid(name: str | None, fallback: int) -> int:
    found = owners.gid_of(name) if name else None
    return fallback if found is None else found


#: errors that mean "this file system does not keep that" (FAT and exFAT:
#: owners, modes, extended attributes), not "something went wrong"
_NOT_KEPT = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
#: what a restore may fail to apply, as counted (``<kind>_not_applied``):
#: the last three are recorded where a platform has them (macOS and BSD
#: file flags, Windows file attributes, creation time) and set only where
#: one can (hostfs.fileattrs)
KINDS = ("owner", "mode", "times", "xattrs", "flags", "attributes", "created")


class Metadata:
    """Applies a node's owner (as root: by user and group name when this
    machine knows them), extended attributes, mode and times. What the
    destination does not keep is counted per kind through ``count``
    (``owner_not_applied=1``), never an error: a FAT stick takes the
    files, not their owners."""

    def __init__(self, count: Callable[..., None]) -> None:
        self._count = count
        self._is_root = os.geteuid() == 0

    def _owner(self, node: Node) -> tuple[int, int]:
        return _local_uid(node.user, node.uid), _local_gid(node.group, node.gid)

    def _try(self, kind: str, call: Callable[..., object], *args: object, **kw: object) -> None:
        try:
            call(*args, **kw)
        except OSError as e:
            if e.errno not in _NOT_KEPT:
                raise
            self._count(**{f"{kind}_not_applied": 1})

    def apply_fd(self, fd: int, node: Node) -> None:
        """On an open file or directory."""
        if self._is_root:
            self._try("owner", os.fchown, fd, *self._owner(node))
        if node.xattrs and not xattrs.write_fd(fd, node.xattrs):
            self._count(xattrs_not_applied=1)
        self._try("mode", os.fchmod, fd, node.mode)  # after chown, which clears setuid/setgid
        self._try("times", os.utime, fd, ns=(node.atime_ns, node.mtime_ns))
        self._foreign(fd, node)

    def _foreign(self, fd: int, node: Node) -> None:
        """What another platform, or this one, recorded beyond POSIX (file
        flags, Windows attributes, creation time): set where this platform
        can, counted where it cannot."""
        if node.flags is None and node.attributes is None and node.birth_ns is None:
            return
        for kind in fileattrs.apply(fd, node.flags, node.attributes, node.birth_ns):
            self._count(**{f"{kind}_not_applied": 1})

    def _not_set(self, node: Node) -> None:
        """Flags, attributes and creation times of symlinks and special
        files are not set (no platform lets one open them for it)."""
        for kind, value in (
            ("flags", node.flags),
            ("attributes", node.attributes),
            ("created", node.birth_ns),
        ):
            if value is not None:
                self._count(**{f"{kind}_not_applied": 1})

    def apply_special(self, dir_fd: int, node: Node) -> None:
        """On a FIFO or device node, which must not be opened for I/O: an
        O_PATH handle pins the very inode we created (never a symlink
        swapped in meanwhile), and /proc/self/fd lets chmod, chown and
        utime act on it."""
        fd = os.open(node.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, "replaced by a symlink during restore")
            handle = f"/proc/self/fd/{fd}"
            if self._is_root:
                self._try("owner", os.chown, handle, *self._owner(node))
            self._try("mode", os.chmod, handle, node.mode)
            self._try("times", os.utime, handle, ns=(node.atime_ns, node.mtime_ns))
            self._not_set(node)
        finally:
            os.close(fd)

    def apply_symlink(self, dir_fd: int, node: Node) -> None:
        link = {"dir_fd": dir_fd, "follow_symlinks": False}
        if self._is_root:
            self._try("owner", os.chown, node.name, *self._owner(node), **link)
        self._try("times", os.utime, node.name, ns=(node.atime_ns, node.mtime_ns), **link)
        self._not_set(node)
