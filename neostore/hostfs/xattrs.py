"""Extended attributes on every platform that has them.

Linux's Python has ``os.listxattr`` and friends; macOS's (and FreeBSD's)
does not, so there the maintained ``xattr`` package (a dependency on
macOS) does the work. The package also runs on Linux, which is how the
tests check that code path here. Where neither exists (Windows), a file
has no extended attributes to read, and any to restore are counted as
not applied.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Protocol

#: errors of listing or reading that mean "none here" (a file system
#: without them, a file we may not look into, one gone meanwhile)
_NONE_HERE = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENOENT, errno.EACCES})
#: errors reading one attribute that mean "skip this one" (ENOATTR is
#: ENODATA on Linux; macOS has its own number)
_SKIP_ONE = frozenset(
    {errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA)}
    | {errno.ENOTSUP, errno.EPERM, errno.EACCES}
)


class Access(Protocol):
    name: str

    def names(self, path: bytes) -> list[bytes]: ...
    def get(self, path: bytes, name: bytes) -> bytes: ...
    def set_fd(self, fd: int, name: bytes, value: bytes) -> None: ...


class _Standard:
    """The standard library's calls (Linux)."""

    name = "os"

    def names(self, path: bytes) -> list[bytes]:
        return [os.fsencode(n) for n in os.listxattr(path, follow_symlinks=False)]

    def get(self, path: bytes, name: bytes) -> bytes:
        return os.getxattr(path, name, follow_symlinks=False)

    def set_fd(self, fd: int, name: bytes, value: bytes) -> None:
        os.setxattr(fd, name, value)


class _Package:
    """The ``xattr`` package (macOS, BSD; also works on Linux). It takes
    and gives names as text, UTF-8 when listing."""

    name = "xattr"

    def __init__(self, module: Any) -> None:
        self._m = module

    def names(self, path: bytes) -> list[bytes]:
        try:
            names = self._m.listxattr(path, symlink=True)
        except UnicodeDecodeError:  # macOS keeps names in UTF-8; Linux need not
            raise OSError(errno.EILSEQ, "an extended attribute's name is not UTF-8") from None
        return [os.fsencode(n) for n in names]

    def get(self, path: bytes, name: bytes) -> bytes:
        value: bytes = self._m.getxattr(path, os.fsdecode(name), symlink=True)
        return value

    def set_fd(self, fd: int, name: bytes, value: bytes) -> None:
        self._m.setxattr(fd, os.fsdecode(name), value)


def _choose() -> Access | None:
    if hasattr(os, "listxattr"):
        return _Standard()
    return package_access()


def package_access() -> Access | None:
    """The ``xattr`` package's access, when it is installed."""
    try:
        import xattr
    except ImportError:
        return None
    return _Package(xattr)


#: what this platform offers; None where files have no extended attributes
ACCESS: Access | None = _choose()


def read(path: bytes) -> dict[bytes, bytes]:
    """A file's extended attributes by name, without following a symlink;
    empty where the file system has none or will not show them."""
    access = ACCESS
    if access is None:
        return {}
    try:
        names = access.names(path)
    except OSError as e:
        if e.errno in _NONE_HERE:
            return {}
        raise
    out: dict[bytes, bytes] = {}
    for name in names:
        try:
            out[name] = access.get(path, name)
        except OSError as e:
            if e.errno not in _SKIP_ONE:
                raise
    return out


def write_fd(fd: int, xattrs: dict[bytes, bytes]) -> bool:
    """Every attribute the open file's file system takes; whether it took
    them all (a refused one is counted by the caller, never an error)."""
    access = ACCESS
    if access is None:
        return not xattrs
    took_all = True
    for name, value in xattrs.items():
        try:
            access.set_fd(fd, name, value)
        except OSError:
            took_all = False
    return took_all
