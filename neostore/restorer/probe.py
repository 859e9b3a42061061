"""What names a restore's destination holds, found by trying.

The file system type says too little (a FUSE mount hides it; ext4 may fold
case per directory; NTFS through ntfs-3g refuses Windows' characters only
with an option), so the restore asks the destination itself, once, in a
scratch directory it removes at once: can it create ``a?b``, and does
``probe-a`` answer to ``PROBE-A``? On Windows its rules hold whatever the
volume says.
"""

from __future__ import annotations

import contextlib
import os
import sys

from .names import WINDOWS, NameRules


def destination_rules(root_fd: int) -> NameRules:
    """The :class:`NameRules` of the directory ``root_fd`` (below it, the
    same file system is assumed)."""
    if sys.platform == "win32":
        return WINDOWS
    try:
        name_max = os.fpathconf(root_fd, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    scratch = f".neostore-probe-{os.urandom(6).hex()}"
    try:
        os.mkdir(scratch, 0o700, dir_fd=root_fd)
    except OSError:
        return NameRules(name_max=name_max)  # nothing will be written here anyway
    try:
        fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
        try:
            windows = not _creates(fd, "a?b")
            folds = _creates(fd, "probe-a") and _exists(fd, "PROBE-A")
            for name in ("a?b", "probe-a"):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(scratch, dir_fd=root_fd)
    if windows:
        return NameRules(windows=True, case_insensitive=folds, name_max=min(name_max, 255))
    return NameRules(case_insensitive=folds, name_max=name_max)  # == POSIX on most


def _creates(dir_fd: int, name: str) -> bool:
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd))
    except OSError:
        return False
    return True


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True
