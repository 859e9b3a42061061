"""Local-directory backend: the embedded default.

Writes go to a temporary file in the destination directory, are fsynced,
renamed into place, and the directory is fsynced, so a crash leaves either
no object or the whole object.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator

from ..errors import NotFound, PermanentBackendError, TransientBackendError
from ..fsutil import TEMP_MARK, DurableFile, atomic_write, fsync_dir, pread_all
from .base import ObjectStream, Payload
from .names import OBJECT_TYPES, relative_path, validate_type

_TRANSIENT = {errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT}


def _wrap(e: OSError, what: str) -> Exception:
    if isinstance(e, FileNotFoundError):
        return NotFound(f"{what} does not exist")
    if e.errno == errno.ENOSPC:
        return PermanentBackendError(f"{what}: no space left on device")
    cls = TransientBackendError if e.errno in _TRANSIENT else PermanentBackendError
    return cls(f"{what}: {e.strerror or e}")


class _FdCache:
    """A few read-only fds of recently read packs, shared by threads (pread
    needs no shared file position). An fd in use is never closed."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._users: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self, path: str) -> Iterator[int]:
        with self._lock:
            fd = self._fds.get(path)
            if fd is not None:
                self._fds.move_to_end(path)
                self._users[path] = self._users.get(path, 0) + 1
        if fd is None:
            opened = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            with self._lock:
                fd = self._fds.setdefault(path, opened)
                if fd != opened:
                    os.close(opened)
                self._users[path] = self._users.get(path, 0) + 1
        try:
            yield fd
        finally:
            with self._lock:
                self._users[path] -= 1
                if not self._users[path]:
                    del self._users[path]
                self._evict_locked()

    def _evict_locked(self) -> None:
        for path in list(self._fds):
            if len(self._fds) <= self._size:
                return
            if path not in self._users:
                os.close(self._fds.pop(path))

    def forget(self, path: str) -> None:
        with self._lock:
            if path not in self._users and path in self._fds:
                os.close(self._fds.pop(path))


class LocalBackend:
    batch_reads = False  # a pread per blob is cheap

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.location = self.root
        self._fds = _FdCache()

    def __reduce__(self) -> tuple[type[LocalBackend], tuple[str]]:
        # to a spawned worker: the same directory, its own open files
        return (type(self), (self.root,))

    def _path(self, otype: str, name: str) -> str:
        return os.path.join(self.root, *relative_path(otype, name).split("/"))

    def exists_repository(self) -> bool:
        return os.path.isfile(os.path.join(self.root, "config"))

    def create_repository(self) -> None:
        if self.exists_repository():
            raise PermanentBackendError(f"{self.root}: a repository already exists here")
        try:
            os.makedirs(self.root, exist_ok=True)
            if any(not n.startswith(".") for n in os.listdir(self.root)):
                raise PermanentBackendError(f"{self.root}: directory is not empty")
            for otype, segments in OBJECT_TYPES.items():
                if otype != "config":
                    os.makedirs(os.path.join(self.root, otype), exist_ok=True)
                del segments
            for i in range(256):
                os.makedirs(os.path.join(self.root, "data", f"{i:02x}"), exist_ok=True)
            fsync_dir(self.root)
        except OSError as e:
            raise _wrap(e, self.root) from e

    def save(self, otype: str, name: str, data: Payload) -> None:
        self._store(otype, name, data, replace=True)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        return self._store(otype, name, data, replace=False)

    def _store(self, otype: str, name: str, data: Payload, replace: bool) -> bool:
        path = self._path(otype, name)
        try:
            return atomic_write(path, data, replace)
        except OSError as e:
            raise _wrap(e, f"{otype}/{name}") from e

    def create_stream(self, otype: str) -> ObjectStream:
        return _LocalStream(self, otype)

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(otype, name)
        try:
            if otype == "data":
                # packs are immutable: keep them open for the many range reads
                # of a restore
                with self._fds.borrow(path) as fd:
                    return pread_all(fd, offset, length)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return pread_all(fd, offset, length)
            finally:
                os.close(fd)
        except OSError as e:
            raise _wrap(e, f"{otype}/{name}") from e

    def size(self, otype: str, name: str) -> int:
        try:
            return os.stat(self._path(otype, name)).st_size
        except OSError as e:
            raise _wrap(e, f"{otype}/{name}") from e

    def exists(self, otype: str, name: str) -> bool:
        return os.path.isfile(self._path(otype, name))

    def remove(self, otype: str, name: str) -> None:
        path = self._path(otype, name)
        self._fds.forget(path)
        try:
            os.unlink(path)
            fsync_dir(os.path.dirname(path))
        except OSError as e:
            raise _wrap(e, f"{otype}/{name}") from e

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        segments = validate_type(otype)
        base = os.path.join(self.root, otype)
        if otype == "config":
            if self.exists_repository():
                yield "config", self.size("config", "config")
            return
        if otype == "data":
            segments = 2  # data/<2 hex>/<id>, but the name is <id> alone
        yield from self._walk(base, "", segments, strip_first=otype == "data")

    def temporaries(self) -> Iterator[tuple[str, int]]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if TEMP_MARK in name:
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(FileNotFoundError):
                        mtime = os.lstat(path).st_mtime_ns
                        yield os.path.relpath(path, self.root), mtime

    def remove_temporary(self, path: str) -> None:
        if TEMP_MARK not in os.path.basename(path) or os.path.isabs(path) or ".." in path:
            raise PermanentBackendError(f"{path}: not a temporary file of this repository")
        try:
            os.unlink(os.path.join(self.root, path))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise _wrap(e, path) from e

    def _walk(
        self, base: str, prefix: str, depth: int, strip_first: bool
    ) -> Iterator[tuple[str, int]]:
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return
        except OSError as e:
            raise _wrap(e, base) from e
        for entry in entries:
            if TEMP_MARK in entry.name:
                continue
            if depth > 1:
                if entry.is_dir(follow_symlinks=False):
                    sub = "" if strip_first else f"{prefix}{entry.name}/"
                    yield from self._walk(entry.path, sub, depth - 1, False)
            elif entry.is_file(follow_symlinks=False):
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue  # removed since the directory was read (forget, prune)
                except OSError as e:
                    raise _wrap(e, entry.path) from e
                yield f"{prefix}{entry.name}", size


class _LocalStream:
    """A temporary file in the type's top directory, renamed into place."""

    def __init__(self, backend: LocalBackend, otype: str) -> None:
        if otype not in OBJECT_TYPES or otype == "config":
            raise PermanentBackendError(f"no streamed objects of type {otype!r}")
        self._backend = backend
        self._otype = otype
        directory = os.path.join(backend.root, otype)
        try:
            self._file = DurableFile(
                os.path.join(directory, f"{TEMP_MARK}{os.getpid()}-{os.urandom(6).hex()}")
            )
        except OSError as e:
            raise _wrap(e, f"{otype}/(new object)") from e

    def write(self, data: bytes | memoryview) -> None:
        try:
            self._file.write(data)
        except OSError as e:
            self.abort()
            raise _wrap(e, f"{self._otype}/(new object)") from e

    def commit(self, name: str) -> None:
        try:
            self._file.publish(self._backend._path(self._otype, name))
        except OSError as e:
            raise _wrap(e, f"{self._otype}/{name}") from e

    def abort(self) -> None:
        self._file.abort()
