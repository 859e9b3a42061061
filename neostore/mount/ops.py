"""The mount's FUSE operations: :class:`.fs.SnapshotFs` behind mfusepy's
interface, with readdirplus on libfuse 3 and the connection options the
mount asks the kernel for.

Where the kernel allows it (libfuse 3, Linux 4.20+), ``open`` answers "not
implemented" once and the kernel then opens and closes files without
asking: two round trips fewer per file, a third of what reading a small
file cost. Reads then come with handle 0 and find their file by path. The
mount is read-only, so the kernel itself refuses opens for writing."""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

from .fs import FsError, SnapshotFs

#: libfuse 3's fuse_common.h and fuse.h
_CAP_READDIRPLUS = 1 << 13
_CAP_READDIRPLUS_AUTO = 1 << 14
_CAP_NO_OPEN_SUPPORT = 1 << 17
_READDIR_PLUS = 1 << 0
_FILL_DIR_PLUS = 1 << 1


def fuse_class(mfusepy: Any, fs: SnapshotFs) -> Any:
    """mfusepy's FUSE, answering a readdirplus with every entry's attributes
    (libfuse 3): ``ls -l`` or ``cp -a`` of a folder then costs one request
    per page of entries instead of a lookup per entry."""
    if mfusepy.fuse_version_major != 3:
        return mfusepy.FUSE

    class Fuse(mfusepy.FUSE):  # type: ignore[misc]
        def readdir_fuse_3(
            self, path: bytes, buf: Any, filler: Any, offset: int, fip: Any, flags: int
        ) -> int:
            # with offsets: libfuse sends the attributes only then, and a
            # folder is served a kernel buffer at a time rather than whole
            for at, name in enumerate((b".", b".."), start=1):
                if at > offset and filler(buf, name, None, at, 0):
                    return 0
            plus = _FILL_DIR_PLUS if flags & _READDIR_PLUS else 0
            st = mfusepy.c_stat()
            start = max(offset - 2, 0)
            entries = fs.listing(os.fsdecode(path), start)
            for at, (name, attrs) in enumerate(entries, start=start + 3):
                _fill_stat(st, attrs)
                if filler(buf, name, st, at, plus):
                    break
            return 0

    return Fuse


def _fill_stat(st: Any, attrs: dict[str, Any]) -> None:
    """What mfusepy's set_st_attrs does for the fields :func:`.fs._attrs`
    gives, each set directly (a third of the time, per entry of a page)."""
    st.st_mode = attrs["st_mode"]
    st.st_nlink = attrs["st_nlink"]
    st.st_size = attrs["st_size"]
    st.st_uid = attrs["st_uid"]
    st.st_gid = attrs["st_gid"]
    st.st_rdev = attrs["st_rdev"]
    st.st_blocks = attrs["st_blocks"]
    for key in ("st_atime", "st_mtime", "st_ctime"):
        spec = getattr(st, key + "spec")
        spec.tv_sec, spec.tv_nsec = divmod(attrs[key], 1_000_000_000)


def _negotiate(conn: Any) -> bool:
    """Every readdir a readdirplus: the kernel's default ("auto") uses it
    only for the first page of a folder and then looks entries up one by
    one. (Symlink targets are not left to the kernel to keep: ``latest``
    changes.) Returns whether the kernel can open files without asking."""
    field = "want_ext" if hasattr(conn, "want_ext") else "want"  # libfuse >= 3.17
    capable = getattr(conn, "capable_ext" if field == "want_ext" else "capable")
    want = getattr(conn, field)
    if capable & _CAP_READDIRPLUS:
        want = (want | _CAP_READDIRPLUS) & ~_CAP_READDIRPLUS_AUTO
    setattr(conn, field, want)
    return bool(capable & _CAP_NO_OPEN_SUPPORT)


def operations(mfusepy: Any, fs: SnapshotFs, stopping: threading.Event) -> Any:
    """fs behind mfusepy's Operations interface. Once ``stopping`` is set,
    the next ``statfs`` ends the session (see :func:`.fuse.serve`).
    :class:`.fs.FsError` is an OSError: mfusepy answers it with its errno."""
    unasked_opens = [False]

    class Operations(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            return fs.getattr(path)

        def readdir(self, path: str, fh: int) -> list[str]:
            return fs.readdir(path)

        def readlink(self, path: str) -> str:
            return fs.readlink(path)

        def open(self, path: str, flags: int) -> int:
            if unasked_opens[0]:  # from now on the kernel opens and closes alone
                raise FsError(errno.ENOSYS)
            return fs.open(path, flags)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return fs.read(path, size, offset, fh)

        def release(self, path: str, fh: int) -> int:
            fs.release(fh)
            return 0

        def init_with_config(self, conn: Any, config: Any) -> None:
            if conn is not None and mfusepy.fuse_version_major == 3:
                unasked_opens[0] = _negotiate(conn)

        def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
            value = fs.xattrs(path).get(os.fsencode(name))
            if value is None:
                raise FsError(_missing_xattr(mfusepy, name))
            return value

        def listxattr(self, path: str) -> list[str]:
            return [os.fsdecode(name) for name in fs.xattrs(path)]

        def statfs(self, path: str) -> dict[str, int]:
            if stopping.is_set():
                mfusepy.fuse_exit()  # from a FUSE thread, as libfuse wants
            return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}

        def access(self, path: str, amode: int) -> int:
            if amode & os.W_OK:
                raise mfusepy.FuseOSError(errno.EROFS)
            return 0

    return Operations()


def _missing_xattr(mfusepy: Any, name: str) -> int:
    """The error for an extended attribute an entry does not have.
    ``security.*`` (SELinux labels, capabilities) and ``system.*`` (POSIX
    ACLs) are "not supported" rather than "no such attribute": the mount
    neither labels nor enforces ACLs, and ``ls -l`` asks for both on every
    entry unless told once that the file system does not support them (a
    round trip each: 200 000 for a 100 000-entry folder). An entry that
    recorded one still shows it."""
    if name.startswith(("security.", "system.")):
        return errno.EOPNOTSUPP
    return int(mfusepy.ENOATTR)
