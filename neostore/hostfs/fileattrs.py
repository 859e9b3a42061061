"""Setting what only some platforms record: file flags (macOS, BSD),
Windows file attributes and creation times.

Each setter acts on an open file. macOS and the BSDs have ``fchflags`` in
their C library (Python offers only the path-based ``os.chflags``);
Windows sets attributes and the creation time in one call,
``SetFileInformationByHandle`` with ``FILE_BASIC_INFO``, in which a zero
means "leave as is". Neither exists on Linux, where restoring such a
snapshot counts them as not applied. These setters are designed, not run:
no macOS or Windows machine checks them (docs/platforms.md).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

#: the Windows attributes a restore sets: read-only, hidden, system,
#: archive (others, such as compressed or sparse, follow from how the file
#: is written, not from a flag one may set)
READONLY, HIDDEN, SYSTEM, ARCHIVE = 0x1, 0x2, 0x4, 0x20
SETTABLE = READONLY | HIDDEN | SYSTEM | ARCHIVE
#: "none of the settable ones" (a zero would mean "leave as is")
NORMAL = 0x80
#: 100-nanosecond intervals from 1601-01-01 to 1970-01-01
_EPOCH_AS_FILETIME = 116_444_736_000_000_000
_FILE_BASIC_INFO = 0  # FILE_INFO_BY_HANDLE_CLASS.FileBasicInfo

SetFlags = Callable[[int, int], None]
#: (fd, attributes or None, creation time in ns or None)
SetBasicInfo = Callable[[int, int | None, int | None], None]


def filetime(ns: int) -> int:
    """Nanoseconds since 1970 as a Windows FILETIME (100 ns since 1601)."""
    return ns // 100 + _EPOCH_AS_FILETIME


def windows_attributes(recorded: int) -> int:
    """What a restore asks Windows to set for recorded attributes."""
    return recorded & SETTABLE or NORMAL


class _BasicInfo(ctypes.Structure):
    _fields_ = [
        ("creation", ctypes.c_int64),
        ("last_access", ctypes.c_int64),
        ("last_write", ctypes.c_int64),
        ("change", ctypes.c_int64),
        ("attributes", ctypes.c_uint32),
    ]


def basic_info(attributes: int | None, birth_ns: int | None) -> _BasicInfo:
    """The FILE_BASIC_INFO that sets these and leaves the rest alone."""
    return _BasicInfo(
        creation=0 if birth_ns is None else filetime(birth_ns),
        attributes=0 if attributes is None else windows_attributes(attributes),
    )


def _bsd_flags() -> SetFlags | None:
    if not hasattr(os, "chflags"):
        return None  # only BSD and macOS builds of Python have it
    call = getattr(ctypes.CDLL(None, use_errno=True), "fchflags", None)
    if call is None:
        return None

    def set_flags(fd: int, flags: int) -> None:
        if call(fd, ctypes.c_uint32(flags)) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return set_flags


def _windows_basic_info() -> SetBasicInfo | None:
    if sys.platform != "win32":
        return None
    import msvcrt

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)

    def set_basic_info(fd: int, attributes: int | None, birth_ns: int | None) -> None:
        info = basic_info(attributes, birth_ns)
        handle = msvcrt.get_osfhandle(fd)
        size = ctypes.sizeof(info)
        if not kernel32.SetFileInformationByHandle(
            handle, _FILE_BASIC_INFO, ctypes.byref(info), size
        ):
            raise ctypes.WinError(ctypes.get_last_error())

    return set_basic_info


#: what this platform can set; None where it cannot
SET_FLAGS: SetFlags | None = _bsd_flags()
SET_BASIC_INFO: SetBasicInfo | None = _windows_basic_info()


def apply(fd: int, flags: int | None, attributes: int | None, birth_ns: int | None) -> list[str]:
    """Set on an open file what it recorded and this platform can set
    (after its content, mode and times: an immutable flag or read-only
    attribute would refuse them); the kinds not applied ("flags",
    "attributes", "created"). A refusal is never an error: the file is
    restored, and what it lacks is counted."""
    missed: list[str] = []
    if flags is not None and not _try(SET_FLAGS, fd, flags):
        missed.append("flags")
    windows = {"attributes": attributes, "created": birth_ns}
    recorded = [kind for kind, value in windows.items() if value is not None]
    if recorded and not _try(SET_BASIC_INFO, fd, attributes, birth_ns):
        missed += recorded
    return missed


def _try(setter: Callable[..., None] | None, *args: object) -> bool:
    if setter is None:
        return False
    try:
        setter(*args)
    except OSError:
        return False
    return True
