"""File-system helpers shared by the local backend, neostore-server's storage
and restore: durable atomic writes, directory fsync, and reads that do not
stop short.

A :class:`DurableFile` is written under a temporary name next to its
destination, fsynced, and only then published under its real name (by
rename, or by link for create-only), followed by an fsync of the
directory: a crash leaves the old object, no object, or the whole new one,
never a prefix. Temporary names contain ``.tmp-``; listings skip them.
"""

from __future__ import annotations

import contextlib
import os

#: marks a file that is not published yet (listings skip such names)
TEMP_MARK = ".tmp-"


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pread_all(fd: int, offset: int = 0, length: int | None = None) -> bytes:
    """``length`` bytes at ``offset`` (to the end when None), fewer only at
    the end of the file."""
    if length is None:
        length = os.fstat(fd).st_size - offset
    parts = []
    while length > 0:
        block = os.pread(fd, length, offset)
        if not block:
            break
        parts.append(block)
        offset += len(block)
        length -= len(block)
    return b"".join(parts)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def temp_name(path: str) -> str:
    """A fresh temporary name for a file that will become ``path``."""
    return f"{path}{TEMP_MARK}{os.getpid()}-{os.urandom(6).hex()}"


class DurableFile:
    """A file written under a temporary name and published atomically."""

    def __init__(self, temp_path: str) -> None:
        self.temp_path = temp_path
        directory = os.path.dirname(temp_path)
        os.makedirs(directory, exist_ok=True)
        self._fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        write_all(self._fd, data)

    def publish(self, path: str, replace: bool = True) -> bool:
        """fsync, then make the file visible as ``path``: replacing what is
        there, or (``replace`` false) only if the name is free, atomically
        against other writers. Returns False when the name was taken
        (nothing changed). Raises OSError; the temporary file is gone
        either way."""
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            created = True
            if replace:
                os.replace(self.temp_path, path)
            else:
                try:
                    os.link(self.temp_path, path)  # fails if the name exists
                except FileExistsError:
                    created = False
                os.unlink(self.temp_path)
            fsync_dir(directory)
            return created
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard what was written."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.temp_path)


def atomic_write(
    path: str, parts: list[bytes] | bytes | bytearray | memoryview, replace: bool = True
) -> bool:
    """Write ``parts`` (buffers in order) durably as ``path``; see
    :meth:`DurableFile.publish` for ``replace`` and the result."""
    out = DurableFile(temp_name(path))
    try:
        for part in parts if isinstance(parts, list) else [parts]:
            out.write(part)
    except BaseException:
        out.abort()
        raise
    return out.publish(path, replace)
