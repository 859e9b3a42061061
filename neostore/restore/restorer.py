"""Restore: recreate a snapshot's files under a destination directory.

Restore is hostile-input handling: names were validated when the tree was
decoded (no "/", NUL, "." or ".."), every file-system call is relative to
an open directory fd with O_NOFOLLOW, so a malicious tree cannot make us
write outside the destination. File content is fetched and written by a
pool of worker processes (forked, so each is single-threaded: with threads,
every system call of a small file's restore was a contended GIL hand-off,
~50 futex calls per file); all-zero chunks become holes; metadata is applied
after content, directories after everything inside them. This process walks
the trees, creates directories and special files and applies directory
metadata; a worker opens the directory again below the root fd (never
following a symlink) and restores a batch of files in it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import grp
import multiprocessing
import os
import pwd
import signal
import stat
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from ..browse.navigate import root_listing
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound, UsageError
from ..format import crypto, tree
from ..format.blob import Ref
from ..format.chunker import Chunker
from ..format.targets import DATA
from ..format.tree import Node
from ..matcher import PathMatcher
from ..progress import Collecting, Reporter
from ..runtime import MIB, settle_threads, tune_malloc
from ..snapshots.info import SnapshotInfo

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
#: a worker task restores up to this many files or bytes
#: (large enough that workers tend to fill different directories: creating
#: files in one directory from three processes at once doubled the kernel
#: time per file here, on the directory's lock)
BATCH_FILES = 256
BATCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class RestoreOptions:
    destination: str
    subpath: bytes = b"/"
    includes: Sequence[str] = ()
    excludes: Sequence[str] = ()
    workers: int = 3
    #: what to do with a file that exists at the destination
    overwrite: str = "always"
    #: remove what the destination holds and the snapshot does not
    delete: bool = False


OVERWRITE = ("always", "if-changed", "if-newer", "never")


@dataclass
class RestoreStats:
    files: int = 0
    dirs: int = 0
    others: int = 0
    bytes_written: int = 0
    #: existing files left alone (--overwrite never/if-newer/if-changed)
    files_skipped: int = 0
    #: existing files whose content was already right (only metadata set)
    files_unchanged: int = 0
    #: encrypted bytes fetched from the repository, and plaintext bytes
    #: taken from the files already at the destination instead
    bytes_downloaded: int = 0
    bytes_reused: int = 0
    #: entries --delete removed
    removed: int = 0
    errors: list[tuple[bytes, str]] = field(default_factory=list)


#: counters a worker sends back with its batch
_COUNTERS = (
    "files",
    "bytes_written",
    "files_skipped",
    "files_unchanged",
    "bytes_downloaded",
    "bytes_reused",
)


@functools.lru_cache(maxsize=4096)
def _zero_digest(length: int) -> bytes:
    return crypto.content_hash(bytes(length))


@functools.lru_cache(maxsize=4096)
def _local_uid(name: str | None, fallback: int) -> int:
    if name:
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            pass
    return fallback


@functools.lru_cache(maxsize=4096)
def _local_gid(name: str | None, fallback: int) -> int:
    if name:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            pass
    return fallback


def resolve(
    repo: Repository, snapshot: SnapshotInfo, path: bytes
) -> tuple[Node | None, list[Node]]:
    """Find ``path`` in a snapshot: (its node or None for "/", its listing)."""
    nodes = root_listing(repo, snapshot)
    node: Node | None = None
    for part in (p for p in path.split(b"/") if p):
        found = next((n for n in nodes if n.name == part), None)
        if found is None:
            raise NotFound(f"{os.fsdecode(path)}: not in snapshot {snapshot.hex_id[:12]}")
        node = found
        nodes = repo.blobs.load_tree(found.subtree) if found.type == tree.DIR else []
    return node, nodes


class _Written:
    """Whether a file's restore finished, and succeeded (for hard links)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class _Dest:
    """A destination directory, created on first use (so --include does not
    leave empty directories behind)."""

    def __init__(
        self, parent: _Dest | None, name: bytes, node: Node | None, fd: int | None = None
    ) -> None:
        self.parent = parent
        self.name = name
        self.node = node
        self._fd = fd
        self.lock = threading.Lock()

    def fd(self) -> int:
        with self.lock:
            if self._fd is None:
                assert self.parent is not None
                parent_fd = self.parent.fd()
                try:
                    os.mkdir(self.name, 0o700, dir_fd=parent_fd)
                except FileExistsError:
                    st = os.stat(self.name, dir_fd=parent_fd, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        os.unlink(self.name, dir_fd=parent_fd)
                        os.mkdir(self.name, 0o700, dir_fd=parent_fd)
                self._fd = os.open(self.name, _DIR_FLAGS, dir_fd=parent_fd)
            return self._fd

    def components(self) -> list[bytes]:
        """Names from the restore root down to this directory."""
        names: list[bytes] = []
        node: _Dest | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        return names[::-1]

    @property
    def created(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Restorer:
    def __init__(
        self, repo: Repository, options: RestoreOptions, reporter: Reporter | None = None
    ) -> None:
        self.repo = repo
        self.options = options
        self.reporter = reporter or Reporter()
        self.stats = RestoreStats()
        self._lock = threading.Lock()
        self._include = PathMatcher(options.includes)
        self._exclude = PathMatcher(options.excludes)
        self._is_root = os.geteuid() == 0
        self._hole_min = repo.config.chunk_min
        #: encrypted blobs of the current batch fetched together (remote stores)
        self._stored: dict[bytes, bytes] = {}
        # (device, inode) of a hard-linked file -> (its dest dir, name, future)
        self._links: dict[tuple[int, int], tuple[list[bytes], bytes, _Written]] = {}
        self._root_fd = -1
        #: the chunker of the snapshot's domain, when this key holds its
        #: seed (owner, read-write): local files are then cut as a snapshot
        #: would cut them, so shifted content is found too
        self._seed: int | None = None
        self._chunker: Chunker | None = None

    def _fail(self, path: bytes, message: str) -> None:
        with self._lock:
            self.stats.errors.append((path, message))
        self.reporter.error(path, message)

    def run(self, snapshot: SnapshotInfo) -> RestoreStats:
        if self.options.overwrite not in OVERWRITE:
            raise UsageError(f"--overwrite {self.options.overwrite}: use one of {OVERWRITE}")
        self.repo.load_index()
        self._seed = self._chunker_seed(snapshot)
        subpath = b"/" + b"/".join(p for p in self.options.subpath.split(b"/") if p)
        node, listing = resolve(self.repo, snapshot, subpath)
        os.makedirs(self.options.destination, exist_ok=True)
        root_fd = os.open(self.options.destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        root = _Dest(None, b"", None, root_fd)
        self._root_fd = root_fd
        pool = self._start_pool()
        self.pool = pool
        self.reporter.start("restore")
        try:
            base = subpath.rstrip(b"/")
            if node is not None and node.type != tree.DIR:
                self._restore_nodes(root, [node], base.rsplit(b"/", 1)[0])
            else:
                self._restore_nodes(root, listing, base)
                if self.options.delete:
                    self._delete_extra(root_fd, listing, base)
        except BrokenProcessPool as e:
            raise NeostoreError("a restore worker process died") from e
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            root.close()
        self.reporter.finish()
        return self.stats

    def _chunker_seed(self, snapshot: SnapshotInfo) -> int | None:
        try:
            record = self.repo.target(snapshot.target)
        except NeostoreError:
            return None
        domain = self.repo.domain_for(record.domain_id, snapshot.manifest.epoch)
        return domain.chunker_seed if domain is not None and domain.writable else None

    def _start_pool(self) -> ProcessPoolExecutor:
        """Fork the workers now, before this process has other threads (a
        fork copies locks another thread may hold); they inherit this
        restorer (keys, index, open packs, the root fd)."""
        global _ACTIVE
        _ACTIVE = self
        settle_threads()
        pool = ProcessPoolExecutor(
            max_workers=max(1, self.options.workers),
            mp_context=multiprocessing.get_context("fork"),
            initializer=_child_init,
        )
        pool.submit(int).result()  # forks every worker (the fork start method does)
        return pool

    def _submit(self, dest: _Dest, batch: list[tuple[Node, bytes, _Written]]) -> Future[_Batch]:
        dest.fd()  # the directory exists before a worker looks for it
        future = self.pool.submit(
            _child_batch, dest.components(), [(node, path) for node, path, _ in batch]
        )
        future.add_done_callback(functools.partial(self._batch_done, batch))
        return future

    def _batch_done(
        self, batch: list[tuple[Node, bytes, _Written]], future: Future[_Batch]
    ) -> None:
        """Runs in the pool's thread: merge a worker's outcome."""
        try:
            result = None if future.cancelled() or future.exception() else future.result()
            if result is not None:
                oks, counters, errors, warnings = result
                with self._lock:
                    for name, value in zip(_COUNTERS, counters, strict=True):
                        setattr(self.stats, name, getattr(self.stats, name) + value)
                for path, message in errors:
                    self._fail(path, message)
                for wpath, message in warnings:
                    self.reporter.warning(wpath, message)
                self.reporter.advance(counters[1], counters[0])
                for (_, _, written), ok in zip(batch, oks, strict=True):
                    written.ok = ok
        finally:
            for _, _, written in batch:
                written.done.set()

    def run_batch(self, components: list[bytes], batch: list[tuple[Node, bytes]]) -> _Batch:
        """In a worker: restore files into one directory; returns the outcome."""
        self.reporter = collecting = Collecting()
        self.stats = RestoreStats()
        try:
            dir_fd = self._open_below_root(components)
        except OSError as e:
            for _, path in batch:
                self._fail(path, f"cannot open its directory: {e.strerror or e}")
            return (
                [False] * len(batch),
                [0] * len(_COUNTERS),
                self.stats.errors,
                collecting.warnings,
            )
        try:
            if self.repo.blobs.batch_reads:
                self._stored = self.repo.blobs.prefetch(DATA, self._small_refs(dir_fd, batch))
                self.stats.bytes_downloaded += sum(len(v) for v in self._stored.values())
            oks = [self._restore_file(dir_fd, node, path) for node, path in batch]
        finally:
            self._stored = {}
            os.close(dir_fd)
        stats = self.stats
        counters = [getattr(stats, name) for name in _COUNTERS]
        return oks, counters, stats.errors, collecting.warnings

    def _wanted(self, path: bytes, node: Node) -> bool:
        if self._exclude and self._exclude.matches_or_below(path):
            return False
        if not self._include:
            return True
        return node.type == tree.DIR or self._include.matches_or_below(path)

    def _restore_nodes(self, dest: _Dest, nodes: list[Node], prefix: bytes) -> None:
        futures: list[Future[_Batch]] = []
        batch: list[tuple[Node, bytes, _Written]] = []
        batch_bytes = 0
        deferred_links: list[tuple[Node, bytes]] = []
        for node in nodes:
            path = prefix + b"/" + node.name
            if not self._wanted(path, node):
                continue
            self.reporter.item(path)
            try:
                if node.type == tree.DIR:
                    # hand over the files so far first: a hard link below may
                    # wait for one of them
                    if batch:
                        futures.append(self._submit(dest, batch))
                        batch, batch_bytes = [], 0
                    self._restore_dir(dest, node, path)
                elif node.type == tree.FILE:
                    key = (node.device, node.inode)
                    if node.links > 1 and key in self._links:
                        deferred_links.append((node, path))
                        continue
                    written = _Written()
                    if node.links > 1:
                        self._links[key] = (dest.components(), node.name, written)
                    batch.append((node, path, written))
                    batch_bytes += node.size
                    if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                        futures.append(self._submit(dest, batch))
                        batch, batch_bytes = [], 0
                else:
                    self._restore_special(dest, node, path)
            except OSError as e:
                self._fail(path, e.strerror or str(e))
        if batch:
            futures.append(self._submit(dest, batch))
        for future in futures:
            future.result()
        for node, path in deferred_links:
            self._restore_link(dest, node, path)

    def _delete_extra(self, dir_fd: int, nodes: list[Node], prefix: bytes) -> None:
        """--delete: remove what this destination directory holds that the
        snapshot's directory does not (nothing excluded, or not included)."""
        keep = {n.name for n in nodes}
        for entry in os.listdir(dir_fd):
            name = os.fsencode(entry)
            path = prefix + b"/" + name
            if name in keep or (self._exclude and self._exclude.matches_or_below(path)):
                continue
            if self._include and not self._include.matches_or_below(path):
                continue
            try:
                _remove_tree(dir_fd, name)
                with self._lock:
                    self.stats.removed += 1
            except OSError as e:
                self._fail(path, f"cannot delete: {e.strerror or e}")

    def _restore_dir(self, parent: _Dest, node: Node, path: bytes) -> None:
        try:
            children = self.repo.blobs.load_tree(node.subtree)
        except NeostoreError as e:
            self._fail(path, f"cannot read directory listing: {e}")
            return
        child = _Dest(parent, node.name, node)
        wanted = not self._include or self._include.matches_or_below(path)
        if wanted and self._in_the_way(parent, node, path):
            return
        if wanted:
            child.fd()
        try:
            self._restore_nodes(child, children, path)
            if self.options.delete and child.created:
                self._delete_extra(child.fd(), children, path)
            if child.created:
                self._apply_metadata_fd(child.fd(), node, path)
                with self._lock:
                    self.stats.dirs += 1
        finally:
            child.close()

    def _open_file(self, dir_fd: int, name: bytes) -> int:
        # create exclusively, as tar does: whatever is there (a FIFO would
        # block the open, a hard link would carry our writes outside the
        # destination, a symlink would redirect them) is removed first
        try:
            return os.open(name, _FILE_FLAGS | os.O_EXCL, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            _remove(dir_fd, name)
        return os.open(name, _FILE_FLAGS | os.O_EXCL, 0o600, dir_fd=dir_fd)

    def _is_hole(self, ref: Ref) -> bool:
        return ref.length >= self._hole_min and ref.digest == _zero_digest(ref.length)

    def _window(
        self, refs: list[Ref], start: int, local: dict[bytes, tuple[int, int]]
    ) -> list[Ref]:
        """The blobs of a file from ``start`` on, up to READ_WINDOW bytes
        (holes and chunks found locally skipped): fetched in a few range
        reads where their packs hold them side by side, as a snapshot
        writes them."""
        window: list[Ref] = []
        total = 0
        for ref in refs[start:]:
            if self._is_hole(ref) or ref.digest in local:
                continue
            if window and total + ref.length > _READ_WINDOW:
                break
            window.append(ref)
            total += ref.length
        return window

    def _small_refs(self, dir_fd: int, batch: list[tuple[Node, bytes]]) -> list[Ref]:
        """Blobs of the batch's small files, where a request per blob would
        cost more than the blob (holes are never fetched; files already at
        the destination may not need fetching at all)."""
        return [
            ref
            for node, _ in batch
            if node.size <= _BATCH_READ_FILE_MAX and not _lexists(dir_fd, node.name)
            for ref in node.content
            if not self._is_hole(ref)
        ]

    def _restore_file(self, dir_fd: int, node: Node, path: bytes) -> bool:
        try:
            existing = os.stat(node.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        except OSError as e:
            self._fail(path, f"cannot look at the existing file: {e.strerror or e}")
            return False
        if existing is not None and self._keep_existing(existing, node):
            with self._lock:
                self.stats.files_skipped += 1
            return True
        if existing is not None and stat.S_ISREG(existing.st_mode):
            try:
                return self._update_file(dir_fd, node, path)
            except OSError as e:
                self._fail(path, f"cannot update: {e.strerror or e}")
                return False
        try:
            fd = self._open_file(dir_fd, node.name)
        except OSError as e:
            self._fail(path, f"cannot create: {e.strerror or e}")
            return False
        return self._write_content(fd, dir_fd, node, path, node.name)

    def _keep_existing(self, existing: os.stat_result, node: Node) -> bool:
        mode = self.options.overwrite
        if mode == "never":
            return True
        if mode == "if-newer":
            return existing.st_mtime_ns >= node.mtime_ns
        if mode == "if-changed":
            return (
                stat.S_ISREG(existing.st_mode)
                and existing.st_size == node.size
                and existing.st_mtime_ns == node.mtime_ns
            )
        return False

    def _update_file(self, dir_fd: int, node: Node, path: bytes) -> bool:
        """Delta restore of a file that exists: cut it as the repository
        would, reuse every chunk whose content hash the snapshot names, fetch
        only the others; write a new file beside it and rename it over the
        old one (the old one stays whole until then)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # never wait on a FIFO
        old = os.open(node.name, flags, dir_fd=dir_fd)
        try:
            st = os.fstat(old)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.ELOOP, "replaced during restore")
            local, positions = self._local_chunks(old, node)
            wanted = [r for r in node.content if not self._is_hole(r)]
            # a file with other links is never changed in place: one of its
            # names may lie outside the destination
            if (
                st.st_nlink == 1
                and st.st_size == node.size
                and self._same_content(old, node, positions)
            ):
                # the content is right already: only the metadata may differ
                self._apply_metadata_fd(old, node, path)
                with self._lock:
                    self.stats.files_unchanged += 1
                    self.stats.bytes_reused += sum(r.length for r in wanted)
                return True
            temp = b".neostore-restore-" + os.urandom(6).hex().encode()
            fd = os.open(temp, _FILE_FLAGS | os.O_EXCL, 0o600, dir_fd=dir_fd)
            try:
                ok = self._write_content(fd, dir_fd, node, path, temp, old, local)
            except BaseException:
                _remove(dir_fd, temp)
                raise
            if ok:
                try:
                    os.rename(temp, node.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except OSError:
                    _remove(dir_fd, temp)
                    raise
            return ok
        finally:
            os.close(old)

    def _same_content(self, fd: int, node: Node, positions: set[tuple[int, bytes]]) -> bool:
        offset = 0
        for ref in node.content:
            if self._is_hole(ref):
                if not _is_zero_at(fd, offset, ref.length):
                    return False
            elif (offset, ref.digest) not in positions:
                return False
            offset += ref.length
        return True

    def _local_chunks(
        self, fd: int, node: Node
    ) -> tuple[dict[bytes, tuple[int, int]], set[tuple[int, bytes]]]:
        """content hash → (offset, length) of the chunks of an existing file:
        cut with the domain's chunker when this key holds its seed, else at
        the snapshot's own chunk boundaries (finds changes in place, not
        shifted content)."""
        found: dict[bytes, tuple[int, int]] = {}
        positions: set[tuple[int, bytes]] = set()
        if self._seed is not None:
            if self._chunker is None:
                self._chunker = Chunker(self.repo.config, self._seed)
            offset = 0
            size = os.fstat(fd).st_size
            with contextlib.ExitStack() as stack:
                if size <= _CUT_IN_MEMORY:
                    # pyfastcdc's stream reader allocates a buffer of several
                    # maximum chunks per call: for a small file that cost ten
                    # times the file (system time in page faults)
                    pieces = self._chunker.cut_buffer(_pread_whole(fd, size))
                else:
                    stream = stack.enter_context(open(os.dup(fd), "rb", closefd=True))
                    pieces = self._chunker.cut_stream(stream)
                for piece in pieces:
                    digest = crypto.content_hash(piece)
                    found.setdefault(digest, (offset, len(piece)))
                    positions.add((offset, digest))
                    offset += len(piece)
            return found, positions
        offset = 0
        for ref in node.content:
            if not self._is_hole(ref):
                data = os.pread(fd, ref.length, offset)
                if len(data) == ref.length:
                    digest = crypto.content_hash(data)
                    found.setdefault(digest, (offset, ref.length))
                    positions.add((offset, digest))
            offset += ref.length
        return found, positions

    def _write_content(
        self,
        fd: int,
        dir_fd: int,
        node: Node,
        path: bytes,
        name: bytes,
        old_fd: int | None = None,
        chunks: dict[bytes, tuple[int, int]] | None = None,
    ) -> bool:
        """Write a file's content into ``fd`` (a new, empty file called
        ``name``), taking from ``old_fd`` the ``chunks`` (content hash →
        offset, length) that match, fetching the others."""
        chunks = chunks or {}
        try:
            offset = written = 0
            ahead: dict[bytes, bytes] = {}  # a window of this file's blobs (remote stores)
            for index, ref in enumerate(node.content):
                self.repo.blobs.check_ref(ref)
                # all-zero chunks (holes, mostly max-size) are recognised by
                # their digest without being fetched
                if self._is_hole(ref):
                    offset += ref.length  # a hole
                    continue
                data = None
                if old_fd is not None and ref.digest in chunks:
                    at, length = chunks[ref.digest]
                    data = os.pread(old_fd, length, at)
                    if length != ref.length or crypto.content_hash(data) != ref.digest:
                        data = None  # changed since it was cut: fetch it
                    else:
                        self.stats.bytes_reused += length
                if data is None:
                    stored = self._stored.get(ref.blob_id) or ahead.pop(ref.blob_id, None)
                    if stored is None and self.repo.blobs.batch_reads:
                        window = self._window(node.content, index, chunks)
                        ahead = self.repo.blobs.prefetch(DATA, window)
                        self.stats.bytes_downloaded += sum(len(v) for v in ahead.values())
                        stored = ahead.pop(ref.blob_id, None)
                    if stored is None:
                        self.stats.bytes_downloaded += self.repo.blobs.stored_size(ref)
                    data = self.repo.blobs.read(DATA, ref, stored)
                    del stored
                written = write_sparse(fd, data, offset)
                offset += len(data)
                del data  # not alive while the next blob is read
            if written != offset:  # a hole at the end (the file was created empty)
                os.ftruncate(fd, offset)
            self._apply_metadata_fd(fd, node, path)
        except IntegrityError as e:
            self._fail(path, f"not restored: {e}")
            os.close(fd)
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError:
                pass
            return False
        except OSError as e:
            self._fail(path, f"cannot write: {e.strerror or e}")
            os.close(fd)
            if name != node.name:
                _remove(dir_fd, name)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        with self._lock:
            self.stats.files += 1
            self.stats.bytes_written += node.size
        return True

    def _restore_link(self, dest: _Dest, node: Node, path: bytes) -> None:
        components, first_name, written = self._links[(node.device, node.inode)]
        written.done.wait()
        if written.ok:
            try:
                src_fd = self._open_below_root(components)
                try:
                    dir_fd = dest.fd()
                    if self._kept(dir_fd, node):
                        return
                    _remove(dir_fd, node.name)
                    os.link(
                        first_name,
                        node.name,
                        src_dir_fd=src_fd,
                        dst_dir_fd=dir_fd,
                        follow_symlinks=False,
                    )
                finally:
                    os.close(src_fd)
                with self._lock:
                    self.stats.files += 1
                return
            except OSError:
                pass  # e.g. across file systems: fall back to a copy
        if self._restore_file(dest.fd(), node, path):
            self.reporter.advance(node.size, 1)

    def _open_below_root(self, components: list[bytes]) -> int:
        """Open a restored directory again, never following a symlink."""
        fd = os.dup(self._root_fd)
        try:
            for name in components:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _in_the_way(self, parent: _Dest, node: Node, path: bytes) -> bool:
        """--overwrite never/if-newer/if-changed: a file (or link, …) kept
        where the snapshot has a directory; its subtree is not restored."""
        if self.options.overwrite == "always":
            return False
        try:
            existing = os.stat(node.name, dir_fd=parent.fd(), follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(existing.st_mode) or not self._keep_existing(existing, node):
            return False
        with self._lock:
            self.stats.files_skipped += 1
        self.reporter.warning(
            path,
            f"kept what is there; the snapshot's directory is not restored "
            f"(--overwrite {self.options.overwrite})",
        )
        return True

    def _kept(self, dir_fd: int, node: Node) -> bool:
        """--overwrite never/if-newer/if-changed: leave what exists alone."""
        if self.options.overwrite == "always":
            return False
        try:
            existing = os.stat(node.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if self._keep_existing(existing, node):
            with self._lock:
                self.stats.files_skipped += 1
            return True
        return False

    def _restore_special(self, dest: _Dest, node: Node, path: bytes) -> None:
        dir_fd = dest.fd()
        name = node.name
        if self._kept(dir_fd, node):
            return
        _remove(dir_fd, name)
        if node.type == tree.SYMLINK:
            os.symlink(node.link_target or b"", name, dir_fd=dir_fd)
            if self._is_root:
                os.chown(
                    name,
                    _local_uid(node.user, node.uid),
                    _local_gid(node.group, node.gid),
                    dir_fd=dir_fd,
                    follow_symlinks=False,
                )
            os.utime(name, ns=(node.atime_ns, node.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
        elif node.type == tree.FIFO:
            os.mkfifo(name, 0o600, dir_fd=dir_fd)
            self._apply_metadata_path(dir_fd, node, path)
        elif node.type in (tree.CHARDEV, tree.BLOCKDEV):
            kind = stat.S_IFCHR if node.type == tree.CHARDEV else stat.S_IFBLK
            try:
                os.mknod(name, kind | 0o600, node.rdev, dir_fd=dir_fd)
            except PermissionError:
                self.reporter.warning(path, "device node not restored (needs root)")
                return
            self._apply_metadata_path(dir_fd, node, path)
        else:
            self.reporter.warning(path, "socket not restored")
            return
        with self._lock:
            self.stats.others += 1

    def _apply_metadata_path(self, dir_fd: int, node: Node, path: bytes) -> None:
        # FIFOs and devices must not be opened for I/O: an O_PATH handle pins
        # the very inode we created (never a symlink swapped in meanwhile),
        # and /proc/self/fd lets chmod, chown and utime act on it.
        fd = os.open(node.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, "replaced by a symlink during restore")
            handle = f"/proc/self/fd/{fd}"
            if self._is_root:
                os.chown(handle, _local_uid(node.user, node.uid), _local_gid(node.group, node.gid))
            os.chmod(handle, node.mode)
            os.utime(handle, ns=(node.atime_ns, node.mtime_ns))
        finally:
            os.close(fd)

    def _apply_metadata_fd(self, fd: int, node: Node, path: bytes) -> None:
        if self._is_root:
            os.fchown(fd, _local_uid(node.user, node.uid), _local_gid(node.group, node.gid))
        for key, value in node.xattrs.items():
            try:
                os.setxattr(fd, key, value)
            except OSError as e:
                self.reporter.warning(
                    path, f"extended attribute {os.fsdecode(key)} not restored: {e.strerror}"
                )
        os.fchmod(fd, node.mode)  # after chown, which clears setuid/setgid
        os.utime(fd, ns=(node.atime_ns, node.mtime_ns))


#: a worker's outcome: per-file success, files, bytes, errors, warnings
_Batch = tuple[list[bool], list[int], list[tuple[bytes, str]], list[tuple[bytes | None, str]]]
#: the restorer whose workers are being forked (they find it here)
_ACTIVE: Restorer | None = None


def _child_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    gc.freeze()
    # little retained free heap (every worker's memory counts); buffers of
    # 4 MiB and more (max-size chunks: 8 MiB of mostly zeros in sparse
    # files) mapped and returned at once: the heap kept them and a worker's
    # peak grew with the input (1.26x on 10 GB, bench flat-memory)
    tune_malloc(mmap_threshold=4 * MIB)


def _child_batch(components: list[bytes], batch: list[tuple[Node, bytes]]) -> _Batch:
    assert _ACTIVE is not None
    return _ACTIVE.run_batch(components, batch)


#: files up to this size have their blobs fetched together per batch (remote stores)
_BATCH_READ_FILE_MAX = 1 << 20
#: larger files on remote stores are fetched in windows of this many bytes
_READ_WINDOW = 8 << 20
_HOLE_BLOCK = 4096
_ZEROS = bytes(_HOLE_BLOCK)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


def write_sparse(fd: int, data: bytes, offset: int) -> int:
    """Write ``data`` at ``offset``, leaving whole zero blocks as holes;
    returns where the last byte written ends (``offset`` if none was)."""
    view = memoryview(data)
    if data.find(_ZEROS) < 0:
        _pwrite_all(fd, view, offset)
        return offset + len(data)
    start = None  # start of the pending run of non-zero blocks
    end = offset
    for pos in range(0, len(data), _HOLE_BLOCK):
        if view[pos : pos + _HOLE_BLOCK] == _ZEROS:
            if start is not None:
                _pwrite_all(fd, view[start:pos], offset + start)
                end = offset + pos
                start = None
        elif start is None:
            start = pos
    if start is not None:
        _pwrite_all(fd, view[start:], offset + start)
        end = offset + len(data)
    return end


#: existing files up to this size are read whole to be cut (delta restore)
_CUT_IN_MEMORY = 64 << 20


def _pread_whole(fd: int, size: int) -> bytes:
    parts, at = [], 0
    while at < size:
        part = os.pread(fd, size - at, at)
        if not part:
            break
        parts.append(part)
        at += len(part)
    return b"".join(parts)


def _lexists(dir_fd: int, name: bytes) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except OSError:
        return False


def _is_zero_at(fd: int, offset: int, length: int) -> bool:
    data = os.pread(fd, length, offset)
    return len(data) == length and not any(data)


def _remove_tree(dir_fd: int, name: bytes) -> None:
    """Remove ``name`` and everything below it, never following a symlink."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            _remove_tree(fd, os.fsencode(child))
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _remove(dir_fd: int, name: bytes) -> None:
    """Remove whatever is at ``name`` (not a directory with content)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
