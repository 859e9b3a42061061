"""SFTP backend: a repository in a directory of any SSH server, through
asyncssh.

Why asyncssh (docs/design.md, "Storage backends: SFTP"): it keeps many
SFTP requests in flight on one channel (a large read or write is split and
pipelined; paramiko waits for each answer), reads the user's SSH
configuration, agent and ``known_hosts`` as OpenSSH does, and is
maintained. OpenDAL's Python wheel has no SFTP service. The backend runs
asyncssh on an event-loop thread of its own; every method is a blocking
call into it, safe from any thread. A forked child (snapshot and restore
workers) drops the inherited connection and opens its own.

* Layout: the same paths as a local repository below the location's path.
* ``save`` writes a temporary name in the destination directory, asks the
  server to flush it (``fsync@openssh.com`` where offered), then renames
  it over the final name (``posix-rename@openssh.com``: atomic replace).
* ``save_new`` renames with the protocol's plain ``rename``, which OpenSSH
  refuses when the target exists (it links, then unlinks the temporary):
  create-only, atomic against other writers on file systems with hard
  links (docs/design.md says what happens without).
* Host keys are checked against ``known_hosts``: an unknown or changed key
  is refused with the fingerprint the server showed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from ..errors import NotFound, PermanentBackendError, TransientBackendError, UsageError
from ..fsutil import TEMP_MARK
from .base import BufferedStream, ObjectStream, Payload, exists_by_size, joined
from .names import OBJECT_TYPES, relative_path, validate
from .options import BackendOptions
from .sftpsettings import SftpLocation, parse

T = TypeVar("T")
_live: weakref.WeakSet[SftpBackend] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for backend in list(_live):
        backend._reset()  # the parent's connection and loop stay the parent's


os.register_at_fork(after_in_child=_after_fork_in_child)


def _asyncssh() -> Any:
    with warnings.catch_warnings():  # its DSA support warns on import
        warnings.simplefilter("ignore")
        import asyncssh
    return asyncssh


class SftpBackend:
    batch_reads = True  # a request is a round trip to another machine

    def __init__(self, location: str, options: BackendOptions | None = None) -> None:
        self.where: SftpLocation = parse(location)
        self.location = location.rstrip("/")
        self._options = options or BackendOptions()
        self._reset()
        _live.add(self)

    def __reduce__(self) -> tuple[Any, tuple[str, BackendOptions]]:
        # to a spawned worker: opened again there, with its own connection
        return (type(self), (self.location, self._options))

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None
        self._conn: Any = None
        self._sftp: Any = None
        self._packs = _PackHandles()

    # -- the event-loop thread ------------------------------------------------

    def _run(self, what: str, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(sftp client)`` on the loop; errors mapped."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=_serve, args=(loop,), name="sftp", daemon=True).start()
                self._loop = loop
                self._connecting = None
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(self._call(what, work), loop).result()

    async def _call(self, what: str, work: Callable[[Any], Awaitable[T]]) -> T:
        ssh = _asyncssh()
        try:
            return await work(await self._client())
        except ssh.SFTPNoSuchFile:
            raise NotFound(f"{what} does not exist") from None
        except ssh.SFTPPermissionDenied as e:
            raise PermanentBackendError(f"{self.location}: {what}: access denied ({e})") from e
        except ssh.SFTPNoSpaceOnFilesystem as e:
            raise PermanentBackendError(f"{self.location}: {what}: no space left ({e})") from e
        except ssh.SFTPConnectionLost as e:
            self._lost()
            raise TransientBackendError(f"{self.location}: {what}: connection lost") from e
        except ssh.SFTPError as e:
            raise PermanentBackendError(f"{self.location}: {what}: {e.reason}") from e
        except (TimeoutError, ssh.ConnectionLost, ssh.DisconnectError, OSError) as e:
            self._lost()
            raise TransientBackendError(f"{self.location}: {what}: unreachable ({e})") from e

    def _lost(self) -> None:
        """The connection broke: the next call opens another."""
        self._sftp = None
        self._packs = _PackHandles()  # handles of the old connection

    async def _client(self) -> Any:
        if self._sftp is not None:
            return self._sftp
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._sftp is None:
                self._sftp = await self._connect()
        return self._sftp

    async def _connect(self) -> Any:
        ssh = _asyncssh()
        where = self.where
        settings: dict[str, Any] = {
            "connect_timeout": min(self._options.timeout, 30),
            "keepalive_interval": 15,
            "keepalive_count_max": 4,
            "password": None,
            "kbdint_auth": False,  # never a prompt: keys and the agent only
        }
        if _has_aes_instructions():
            # AES-GCM in hardware took 40 % less client CPU than asyncssh's
            # first choice, ChaCha20-Poly1305, for a pack upload (design.md)
            first = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
            rest = [a.decode() for a in ssh.encryption.get_default_encryption_algs()]
            settings["encryption_algs"] = first + [a for a in rest if a not in first]
        if where.port is not None:
            settings["port"] = where.port
        if where.user is not None:
            settings["username"] = where.user
        try:
            conn = await ssh.connect(where.host, **settings)
        except ssh.HostKeyNotVerifiable as e:
            raise PermanentBackendError(await self._host_key_refused(e)) from None
        except ssh.PermissionDenied as e:
            raise PermanentBackendError(
                f"{self.location}: access denied: the server took none of our SSH keys "
                f"({e.reason}); load a key into ssh-agent or name one with IdentityFile "
                "in ~/.ssh/config"
            ) from None
        except (TimeoutError, OSError) as e:
            raise TransientBackendError(f"{self.location}: unreachable ({e})") from e
        except ssh.Error as e:
            raise PermanentBackendError(f"{self.location}: SSH: {e.reason}") from None
        self._conn = conn
        return await conn.start_sftp_client()

    async def _host_key_refused(self, error: Any) -> str:
        ssh = _asyncssh()
        shown = ""
        with contextlib.suppress(Exception):
            key = await ssh.get_server_host_key(self.where.host, self.where.port or ())
            if key is not None:
                shown = f" The server's key: {key.get_algorithm()} {key.get_fingerprint()}."
        return (
            f"{self.location}: host key refused: it is not in known_hosts, or does not match "
            f"the one there ({error.reason}).{shown} If that is the server's key, add it "
            "(ssh-keyscan, or connect once with ssh)."
        )

    # -- paths ----------------------------------------------------------------

    def _path(self, otype: str, name: str) -> str:
        return self._join(relative_path(otype, name))

    def _join(self, relative: str) -> str:
        base = self.where.path
        return relative if base in ("", ".") else f"{base.rstrip('/')}/{relative}"

    # -- Backend --------------------------------------------------------------

    def exists_repository(self) -> bool:
        return self.exists("config", "config")

    def create_repository(self) -> None:
        if self.exists_repository():
            raise PermanentBackendError(f"{self.location}: a repository already exists here")
        root = self.where.path

        async def create(sftp: Any) -> None:
            await sftp.makedirs(root, exist_ok=True)
            if any(not n.startswith(".") for n in await sftp.listdir(root)):
                raise PermanentBackendError(f"{self.location}: directory is not empty")
            await asyncio.gather(
                *(sftp.mkdir(self._join(t)) for t in OBJECT_TYPES if t != "config")
            )
            await asyncio.gather(*(sftp.mkdir(self._join(f"data/{i:02x}")) for i in range(256)))

        self._run(root, create)

    def save(self, otype: str, name: str, data: Payload) -> None:
        self._store(otype, name, joined(data), replace=True)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        return self._store(otype, name, joined(data), replace=False)

    def _store(self, otype: str, name: str, data: bytes, replace: bool) -> bool:
        validate(otype, name)
        path = self._path(otype, name)
        directory = path.rsplit("/", 1)[0] if "/" in path else "."
        temp = f"{directory}/{TEMP_MARK}{os.getpid()}-{os.urandom(6).hex()}"
        ssh = _asyncssh()

        async def store(sftp: Any) -> bool:
            try:
                await _write(sftp, temp, data)
            except ssh.SFTPNoSuchFile:  # a two-part name's first directory
                await sftp.makedirs(directory, exist_ok=True)
                await _write(sftp, temp, data)
            renamed = False
            try:
                if replace:
                    await sftp.posix_rename(temp, path)
                else:
                    await sftp.rename(temp, path)  # OpenSSH: refused when it exists
                renamed = True
            except ssh.SFTPFailure:
                if replace or not await _exists(sftp, path):
                    raise
            finally:
                if not renamed:  # (an error raised here would keep data alive in a cycle)
                    with contextlib.suppress(ssh.SFTPError):
                        await sftp.remove(temp)
            return renamed

        return self._run(f"{otype}/{name}", store)

    def create_stream(self, otype: str) -> ObjectStream:
        # a pack is named by the hash of its bytes: parts kept in memory,
        # one upload on commit (as for S3 and neostore-server)
        return BufferedStream(self, otype)

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if length is not None and length <= 0:
            return b""
        path = self._path(otype, name)

        async def read(sftp: Any) -> bytes:
            if otype == "data":  # packs never change: a kept handle, one round trip
                return await self._packs.read(sftp, path, offset, length)
            async with sftp.open(path, "rb") as f:
                return bytes(await f.read(-1 if length is None else length, offset))

        return self._run(f"{otype}/{name}", read)

    def size(self, otype: str, name: str) -> int:
        path = self._path(otype, name)

        async def stat(sftp: Any) -> int:
            return int((await sftp.stat(path)).size)

        return self._run(f"{otype}/{name}", stat)

    def exists(self, otype: str, name: str) -> bool:
        return exists_by_size(self.size, otype, name)

    def remove(self, otype: str, name: str) -> None:
        path = self._path(otype, name)

        async def remove(sftp: Any) -> None:
            await self._packs.forget(path)
            await sftp.remove(path)

        self._run(f"{otype}/{name}", remove)

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        if otype not in OBJECT_TYPES:
            raise UsageError(f"unknown object type {otype!r}")
        if otype == "config":
            if self.exists_repository():
                yield "config", self.size("config", "config")
            return
        base = self._join(otype)
        nested = otype == "data" or OBJECT_TYPES[otype] == 2
        found = self._run(f"list of {otype}", lambda sftp: _files(sftp, base, nested))
        for parent, entry, size, _ in found:
            name = entry if otype == "data" or not parent else f"{parent}/{entry}"
            try:
                validate(otype, name)
            except UsageError:
                continue  # not ours
            yield name, size

    def temporaries(self) -> Iterator[tuple[str, int]]:
        async def walk(sftp: Any) -> list[tuple[str, int]]:
            found = []
            for otype in OBJECT_TYPES:
                if otype == "config":
                    continue
                nested = otype == "data" or OBJECT_TYPES[otype] == 2
                for parent, entry, _, mtime in await _files(sftp, self._join(otype), nested, True):
                    inside = f"{otype}/{parent}/{entry}" if parent else f"{otype}/{entry}"
                    found.append((inside, mtime))
            return found

        yield from self._run("temporary files", walk)

    def remove_temporary(self, path: str) -> None:
        if TEMP_MARK not in path.rsplit("/", 1)[-1] or path.startswith("/") or ".." in path:
            raise PermanentBackendError(f"{path}: not a temporary file of this repository")
        with contextlib.suppress(NotFound):
            self._run(path, lambda sftp: sftp.remove(self._join(path)))


@functools.cache
def _has_aes_instructions() -> bool:
    """Whether the CPU says it has AES instructions (x86 ``aes``, ARM ``aes``)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(
                line.startswith(("flags", "Features")) and "aes" in line.split(":", 1)[1].split()
                for line in f
            )
    except OSError:
        return False


class _PackHandles:
    """Read handles of recently read packs, kept open (a range read is then
    one round trip instead of open, read, close). Used from the event-loop
    thread only; a handle in use is never closed."""

    MAX_OPEN = 32

    def __init__(self) -> None:
        #: path -> [handle, readers now, forgotten (close when unused)]
        self._open: OrderedDict[str, list[Any]] = OrderedDict()

    async def read(self, sftp: Any, path: str, offset: int, length: int | None) -> bytes:
        entry = self._open.get(path)
        if entry is None:
            handle = await sftp.open(path, "rb")
            entry = self._open.get(path)
            if entry is None:
                entry = self._open[path] = [handle, 0, False]
            else:  # opened by another read meanwhile
                await _close(handle)
        self._open.move_to_end(path)
        entry[1] += 1
        try:
            return bytes(await entry[0].read(-1 if length is None else length, offset))
        finally:
            entry[1] -= 1
            if entry[2] and not entry[1]:
                await _close(entry[0])
            await self._evict()

    async def forget(self, path: str) -> None:
        """Before the pack is removed: close its handle (once unused)."""
        entry = self._open.pop(path, None)
        if entry is not None:
            entry[2] = True
            if not entry[1]:
                await _close(entry[0])

    async def _evict(self) -> None:
        for path in list(self._open):
            if len(self._open) <= self.MAX_OPEN:
                return
            entry = self._open.get(path)
            if entry is None:
                continue  # let go meanwhile
            handle, readers, _ = entry
            if not readers:
                del self._open[path]
                await _close(handle)


async def _close(handle: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection closes it anyway
        await handle.close()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The event-loop thread: it takes no signal, so that a signal meant
    for the program (a mount's SIGTERM, waited for in one thread) reaches
    the thread that waits for it."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    loop.run_forever()


async def _write(sftp: Any, path: str, data: bytes) -> None:
    ssh = _asyncssh()
    async with sftp.open(path, "wb") as f:
        await f.write(data, 0)
        with contextlib.suppress(ssh.SFTPOpUnsupported):
            await f.fsync()  # fsync@openssh.com: durable before the rename


async def _exists(sftp: Any, path: str) -> bool:
    try:
        await sftp.stat(path)
    except _asyncssh().SFTPNoSuchFile:
        return False
    return True


async def _files(
    sftp: Any, base: str, nested: bool, temporaries: bool = False
) -> list[tuple[str, str, int, int]]:
    """(subdirectory or "", name, size, mtime in ns) of the files below
    ``base`` (one level of subdirectories when ``nested``): objects, or
    only the temporary files left by interrupted writes."""
    ssh = _asyncssh()
    try:
        top = await sftp.readdir(base)
    except ssh.SFTPNoSuchFile:
        return []
    found: list[tuple[str, str, int, int]] = []

    def keep(parent: str, entry: Any) -> None:
        if entry.filename in (".", "..") or entry.attrs.type != ssh.FILEXFER_TYPE_REGULAR:
            return
        if (TEMP_MARK in entry.filename) == temporaries:
            mtime = int(entry.attrs.mtime or 0) * 10**9
            found.append((parent, entry.filename, int(entry.attrs.size or 0), mtime))

    subdirs = []
    for entry in top:
        if nested and entry.attrs.type == ssh.FILEXFER_TYPE_DIRECTORY:
            if entry.filename not in (".", ".."):
                subdirs.append(entry.filename)
        else:
            keep("", entry)

    async def below(name: str) -> list[Any]:
        try:
            return list(await sftp.readdir(f"{base}/{name}"))
        except ssh.SFTPNoSuchFile:
            return []  # removed meanwhile

    for name, entries in zip(subdirs, await asyncio.gather(*map(below, subdirs)), strict=True):
        for entry in entries:
            keep(name, entry)
    return found
