"""The paths a snapshot records, the same on every platform.

A snapshot records its sources as absolute, slash-separated paths so that
snapshots from every platform browse the same way. POSIX paths are kept
as they are. A Windows path is recorded as restic records it: the drive
letter becomes the first component (``C:\\Users\\me`` is ``/C/Users/me``;
the letter upper-cased, since Windows does not tell ``c:`` from ``C:``).
A network path ``\\\\server\\share\\dir`` becomes ``/UNC/server/share/dir``,
and the ``\\\\?\\`` prefix of long paths is dropped.

``flavour`` is the path module of the platform (``os.path``); the tests
pass ``ntpath`` to check the Windows rules on Linux.
"""

from __future__ import annotations

import os
from types import ModuleType

#: the first recorded component of a network path
UNC = "UNC"
#: how many components a network path's root takes (UNC, server, share)
_UNC_ROOT = 3


def _is_windows(flavour: ModuleType) -> bool:
    return bool(flavour.sep == "\\")


def components(native: bytes, flavour: ModuleType = os.path) -> list[bytes]:
    """The recorded components of an absolute native path, root first."""
    text = os.fsdecode(native)
    if not _is_windows(flavour):
        return [os.fsencode(p) for p in text.split("/") if p]
    if text.startswith("\\\\?\\UNC\\"):
        text = "\\\\" + text[len("\\\\?\\UNC\\") :]
    elif text.startswith("\\\\?\\"):
        text = text[len("\\\\?\\") :]
    drive, rest = flavour.splitdrive(text)
    if drive.startswith(("\\\\", "//")):
        head = [UNC, *(p for p in drive.replace("\\", "/").split("/") if p)]
    elif drive:
        head = [drive.rstrip(":").upper()]
    else:
        raise ValueError(f"{text}: not an absolute Windows path")
    tail = [p for p in rest.replace("\\", "/").split("/") if p]
    return [os.fsencode(p) for p in head + tail]


def recorded(native: bytes, flavour: ModuleType = os.path) -> bytes:
    """The path a snapshot records for an absolute native path."""
    return b"/" + b"/".join(components(native, flavour))


def native(parts: list[bytes], flavour: ModuleType = os.path) -> bytes | None:
    """The native path of recorded components (the inverse of
    :func:`components`); None for the levels of a network path above its
    share (``/UNC``, ``/UNC/server``), which no call can look at."""
    names = [os.fsdecode(p) for p in parts]
    if not _is_windows(flavour):
        return os.fsencode("/" + "/".join(names))
    if names and names[0] == UNC:
        if len(names) < _UNC_ROOT:
            return None
        root = "\\\\" + names[1] + "\\" + names[2] + "\\"
        return os.fsencode(root + "\\".join(names[_UNC_ROOT:]))
    if not names:
        return None
    return os.fsencode(names[0] + ":\\" + "\\".join(names[1:]))
