"""Serving :class:`.fs.SnapshotFs` through FUSE, with mfusepy.

Why mfusepy: it is maintained, synchronous (our reads are blocking calls
into the blob reader, which is thread-safe), binds libfuse 3 and 2 through
ctypes (no compiler, nothing to build on the user's machine), and is what
borg 2 uses. pyfuse3 needs trio and is no longer developed; fusepy is
unmaintained. Nothing here is imported until a mount starts, so the rest
of neostore runs where no FUSE library is installed.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from ..core.repository import Repository
from ..errors import NeostoreError, UsageError
from .chunks import DEFAULT_CACHE, ChunkCache
from .fs import FsError, SnapshotFs, Warn
from .layout import Layout

INSTALL_HINT = (
    "install FUSE 3 (Debian/Ubuntu: apt install fuse3 libfuse3-3; Fedora: dnf install fuse3; "
    "macOS: macFUSE)"
)


def check_mountpoint(mountpoint: str) -> None:
    if not os.path.isdir(mountpoint):
        raise UsageError(f"{mountpoint}: not a directory (create an empty one to mount on)")
    if os.listdir(mountpoint):
        raise UsageError(f"{mountpoint}: not empty (mount on an empty directory)")
    if os.path.ismount(mountpoint):
        raise UsageError(f"{mountpoint}: something is already mounted there")


def _binding() -> Any:
    if not os.path.exists("/dev/fuse") and os.uname().sysname == "Linux":
        raise NeostoreError(f"/dev/fuse is missing: load the fuse module or {INSTALL_HINT}")
    try:
        import mfusepy
    except (OSError, ImportError) as e:  # mfusepy finds libfuse when imported
        raise NeostoreError(f"no FUSE library found ({e}): {INSTALL_HINT}") from None
    return mfusepy


def serve(
    repo: Repository,
    layout: Layout,
    mountpoint: str,
    warn: Warn,
    cache_size: int = DEFAULT_CACHE,
    allow_other: bool = False,
) -> None:
    """Mount, serve in the foreground until unmounted (``fusermount -u``,
    Ctrl-C, SIGTERM), and return."""
    check_mountpoint(mountpoint)
    mfusepy = _binding()
    fs = SnapshotFs(repo, layout, ChunkCache(repo, cache_size), warn)
    # nosuid, nodev: a setuid file or device node in a snapshot (a leaked
    # writer key can sign one) grants nothing through the mount
    options: dict[str, Any] = {
        "ro": True,
        "nosuid": True,
        "nodev": True,
        "fsname": "neostore",
        "subtype": "neostore",
        # a snapshot never changes: the kernel may keep what it was told
        "attr_timeout": 60,
        "entry_timeout": 60,
        "kernel_cache": True,
    }
    if allow_other:
        options.update(allow_other=True, default_permissions=True)
    mfusepy.FUSE(_operations(mfusepy, fs), mountpoint, foreground=True, **options)


def _operations(mfusepy: Any, fs: SnapshotFs) -> Any:
    """fs behind mfusepy's Operations interface."""

    def errors(func: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return func(*args)
            except FsError as e:
                raise mfusepy.FuseOSError(e.errno) from None

        return call

    class Operations(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        @errors
        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            return fs.getattr(path)

        @errors
        def readdir(self, path: str, fh: int) -> list[str]:
            return fs.readdir(path)

        @errors
        def readlink(self, path: str) -> str:
            return fs.readlink(path)

        @errors
        def open(self, path: str, flags: int) -> int:
            return fs.open(path, flags)

        @errors
        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return fs.read(path, size, offset, fh)

        def release(self, path: str, fh: int) -> int:
            fs.release(fh)
            return 0

        @errors
        def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
            value = fs.xattrs(path).get(os.fsencode(name))
            if value is None:
                raise FsError(mfusepy.ENOATTR)
            return value

        @errors
        def listxattr(self, path: str) -> list[str]:
            return [os.fsdecode(name) for name in fs.xattrs(path)]

        def statfs(self, path: str) -> dict[str, int]:
            return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}

        def access(self, path: str, amode: int) -> int:
            if amode & os.W_OK:
                raise mfusepy.FuseOSError(errno.EROFS)
            return 0

    return Operations()
