"""Restoring files: the work a restore's worker processes do.

A :class:`FileRestorer` restores a batch of files into one directory. A
file that is not at the destination is created and written; one that is
(a delta restore) is cut into chunks as the repository would cut it, and
only the chunks it lacks are fetched, into a new file that replaces the
old one once complete. All-zero chunks become holes without being
fetched. On a remote store, the blobs of a batch's small files (of one
directory or several), and a large file's next window of blobs, are
fetched with few range requests.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Sequence

from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError
from ..format import crypto
from ..format.blob import Ref
from ..format.chunker import Chunker
from ..format.targets import DATA
from ..format.tree import Node
from ..fsutil import pread_all
from ..progress import Collecting
from . import destination
from .destination import FILE_FLAGS, Metadata, create_file, open_below, write_sparse
from .options import Overwrite, Tally, keep_existing

#: files up to this size have their blobs fetched together per batch (remote stores)
BATCH_READ_FILE_MAX = 1 << 20
#: existing files up to this size are read whole to be cut (delta restore)
CUT_IN_MEMORY = 64 << 20

#: content hash → (offset, length) of a chunk in a file at the destination
Chunks = dict[bytes, tuple[int, int]]
#: a worker's outcome: per-file success, counters, errors, warnings
BatchResult = tuple[list[bool], list[int], list[tuple[bytes, str]], list[tuple[bytes | None, str]]]


@functools.lru_cache(maxsize=4096)
def _zero_digest(length: int) -> bytes:
    return crypto.content_hash(bytes(length))


class FileRestorer:
    """Restores files below the destination's root fd. In the parent it
    writes into the restore's own :class:`Tally`; a worker process gets a
    fresh tally per batch and sends its figures back."""

    def __init__(
        self,
        repo: Repository,
        root: tuple[str, int],
        policy: Overwrite,
        tally: Tally,
        chunker_seed: int | None,
    ) -> None:
        self.repo = repo
        #: the destination's path and open fd
        self.root_path, self.root_fd = root
        self._root_error: str | None = None
        self.policy = policy
        self.tally = tally
        self.metadata = Metadata(tally.add)
        self._hole_min = repo.config.chunk_min
        #: the chunker of the snapshot's domain, when this key holds its
        #: seed (owner, read-write): local files are then cut as a snapshot
        #: would cut them, so shifted content is found too
        self._seed = chunker_seed
        self._chunker: Chunker | None = None
        #: encrypted blobs of the current batch fetched together (remote stores)
        self._stored: dict[bytes, bytes] = {}

    # to a spawned worker: the repository, and the root as a path and an
    # identity (an fd means nothing in another process); the worker opens
    # it again and refuses a different directory (destination.reopen_root)
    def __getstate__(self) -> dict[str, object]:
        st = os.fstat(self.root_fd)
        state = dict(self.__dict__, root_fd=(st.st_dev, st.st_ino), _chunker=None, _stored={})
        del state["tally"], state["metadata"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        identity = state["root_fd"]
        assert isinstance(identity, tuple)
        self.root_fd = -1
        try:
            self.root_fd = destination.reopen_root(self.root_path, identity)
        except OSError as e:
            self._root_error = f"{self.root_path}: {e.strerror or e}"
        self.tally = Tally(Collecting())
        self.metadata = Metadata(self.tally.add)

    def run_batch(self, work: list[tuple[list[bytes], list[tuple[Node, bytes]]]]) -> BatchResult:
        """In a worker: restore files into their directories (each given by
        its names from the root); returns the outcome."""
        if self._root_error is not None:
            raise NeostoreError(self._root_error)
        collecting = Collecting()
        self.tally = Tally(collecting)
        self.metadata = Metadata(self.tally.add)
        dirs: list[int | None] = []
        try:
            for components, batch in work:
                dirs.append(self._open_dir(components, batch))
            if self.repo.blobs.batch_reads:
                refs = [
                    ref
                    for dir_fd, (_, batch) in zip(dirs, work, strict=True)
                    if dir_fd is not None
                    for ref in self._small_refs(dir_fd, batch)
                ]
                self._stored = self.repo.blobs.prefetch(DATA, refs)
                self.tally.add(bytes_downloaded=sum(len(v) for v in self._stored.values()))
            oks: list[bool] = []
            for dir_fd, (_, batch) in zip(dirs, work, strict=True):
                for node, path in batch:
                    oks.append(dir_fd is not None and self.restore(dir_fd, node, path))
        finally:
            self._stored = {}
            for dir_fd in dirs:
                if dir_fd is not None:
                    os.close(dir_fd)
        return oks, self.tally.counters(), self.tally.stats.errors, collecting.warnings

    def _open_dir(self, components: list[bytes], batch: list[tuple[Node, bytes]]) -> int | None:
        try:
            return open_below(self.root_fd, components)
        except OSError as e:
            for _, path in batch:
                self.tally.fail(path, f"cannot open its directory: {e.strerror or e}")
            return None

    def is_hole(self, ref: Ref) -> bool:
        return ref.length >= self._hole_min and ref.digest == _zero_digest(ref.length)

    def _small_refs(self, dir_fd: int, batch: list[tuple[Node, bytes]]) -> list[Ref]:
        """Blobs of the batch's small files, where a request per blob would
        cost more than the blob (holes are never fetched; files already at
        the destination may not need fetching at all)."""
        return [
            ref
            for node, _ in batch
            if node.size <= BATCH_READ_FILE_MAX and not destination.lexists(dir_fd, node.name)
            for ref in node.content
            if not self.is_hole(ref)
        ]

    def restore(self, dir_fd: int, node: Node, path: bytes) -> bool:
        """Restore one file into ``dir_fd``; False when it failed (reported)."""
        try:
            existing = os.stat(node.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        except OSError as e:
            self.tally.fail(path, f"cannot look at the existing file: {e.strerror or e}")
            return False
        if existing is not None and keep_existing(self.policy, existing, node):
            self.tally.add(files_skipped=1)
            if self.policy == Overwrite.IF_CHANGED:
                return self._metadata_only(dir_fd, node, path)
            return True
        if existing is not None and stat.S_ISREG(existing.st_mode):
            try:
                return self._update(dir_fd, node, path)
            except OSError as e:
                self.tally.fail(path, f"cannot update: {e.strerror or e}")
                return False
        try:
            fd = create_file(dir_fd, node.name)
        except OSError as e:
            self.tally.fail(path, f"cannot create: {e.strerror or e}")
            return False
        return self._write(fd, dir_fd, node, path, node.name)

    def _metadata_only(self, dir_fd: int, node: Node, path: bytes) -> bool:
        """``--overwrite if-changed`` found the content unchanged (same size
        and mtime): apply the snapshot's owner, mode and xattrs all the
        same, so that a chmod since the last restore is undone. Not on a
        file with other links (one may lie outside the destination)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(node.name, flags, dir_fd=dir_fd)
        except OSError as e:
            self.tally.fail(path, f"cannot open to set its metadata: {e.strerror or e}")
            return False
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                self.metadata.apply_fd(fd, node)
        except OSError as e:
            self.tally.fail(path, f"cannot set its metadata: {e.strerror or e}")
            return False
        finally:
            os.close(fd)
        return True

    def _update(self, dir_fd: int, node: Node, path: bytes) -> bool:
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
            # a file with other links is never changed in place: one of its
            # names may lie outside the destination
            if st.st_nlink == 1 and st.st_size == node.size and self._same(old, node, positions):
                # the content is right already: only the metadata may differ
                self.metadata.apply_fd(old, node)
                reused = sum(r.length for r in node.content if not self.is_hole(r))
                self.tally.add(files_unchanged=1, bytes_reused=reused)
                return True
            temp = b".neostore-restore-" + os.urandom(6).hex().encode()
            fd = os.open(temp, FILE_FLAGS | os.O_EXCL, 0o600, dir_fd=dir_fd)
            try:
                ok = self._write(fd, dir_fd, node, path, temp, old, local)
            except BaseException:
                destination.remove(dir_fd, temp)
                raise
            if ok:
                try:
                    os.rename(temp, node.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except OSError:
                    destination.remove(dir_fd, temp)
                    raise
            return ok
        finally:
            os.close(old)

    def _same(self, fd: int, node: Node, positions: set[tuple[int, bytes]]) -> bool:
        offset = 0
        for ref in node.content:
            if self.is_hole(ref):
                if not destination.is_zero_at(fd, offset, ref.length):
                    return False
            elif (offset, ref.digest) not in positions:
                return False
            offset += ref.length
        return True

    def _local_chunks(self, fd: int, node: Node) -> tuple[Chunks, set[tuple[int, bytes]]]:
        """content hash → (offset, length) of the chunks of an existing file,
        and their (offset, hash) positions: cut with the domain's chunker
        when this key holds its seed, else at the snapshot's own chunk
        boundaries (finds changes in place, not shifted content)."""
        found: Chunks = {}
        positions: set[tuple[int, bytes]] = set()

        def note(offset: int, piece: bytes | memoryview) -> None:
            digest = crypto.content_hash(piece)
            found.setdefault(digest, (offset, len(piece)))
            positions.add((offset, digest))

        offset = 0
        if self._seed is None:
            for ref in node.content:
                if not self.is_hole(ref):
                    data = os.pread(fd, ref.length, offset)
                    if len(data) == ref.length:
                        note(offset, data)
                offset += ref.length
            return found, positions
        if self._chunker is None:
            self._chunker = Chunker(self.repo.config, self._seed)
        size = os.fstat(fd).st_size
        with contextlib.ExitStack() as stack:
            if size <= CUT_IN_MEMORY:
                # pyfastcdc's stream reader allocates a buffer of several
                # maximum chunks per call: for a small file that cost ten
                # times the file (system time in page faults)
                pieces = self._chunker.cut_buffer(pread_all(fd, 0, size))
            else:
                stream = stack.enter_context(open(os.dup(fd), "rb", closefd=True))
                pieces = self._chunker.cut_stream(stream)
            for piece in pieces:
                note(offset, piece)
                offset += len(piece)
        return found, positions

    def _write(
        self,
        fd: int,
        dir_fd: int,
        node: Node,
        path: bytes,
        name: bytes,
        old_fd: int | None = None,
        chunks: Chunks | None = None,
    ) -> bool:
        """Write a file's content into ``fd`` (a new, empty file called
        ``name``), taking from ``old_fd`` the ``chunks`` that match,
        fetching the others; then its metadata. Closes ``fd``."""
        try:
            self._write_content(fd, node, old_fd, chunks or {})
            self.metadata.apply_fd(fd, node)
        except IntegrityError as e:
            self.tally.fail(path, f"not restored: {e}")
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
            return False
        except OSError as e:
            self.tally.fail(path, f"cannot write: {e.strerror or e}")
            os.close(fd)
            if name != node.name:
                destination.remove(dir_fd, name)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        self.tally.add(files=1, bytes_written=node.size)
        return True

    def _write_content(self, fd: int, node: Node, old_fd: int | None, chunks: Chunks) -> None:
        offset = written = 0
        fetch = _Fetcher(self, node.content, chunks, self._stored)
        for index, ref in enumerate(node.content):
            self.repo.blobs.check_ref(ref)
            # all-zero chunks (holes, mostly max-size) are recognised by
            # their digest without being fetched
            if self.is_hole(ref):
                offset += ref.length
                continue
            data = self._local(old_fd, chunks, ref) if old_fd is not None else None
            if data is None:
                data = fetch(index, ref)
            written = write_sparse(fd, data, offset)
            offset += len(data)
            del data  # not alive while the next blob is read
        if written != offset:  # a hole at the end (the file was created empty)
            os.ftruncate(fd, offset)

    def _local(self, old_fd: int, chunks: Chunks, ref: Ref) -> bytes | None:
        """A chunk taken from the file already at the destination, if it
        still holds it (it may have changed since it was cut)."""
        if ref.digest not in chunks:
            return None
        at, length = chunks[ref.digest]
        data = os.pread(old_fd, length, at)
        if length != ref.length or crypto.content_hash(data) != ref.digest:
            return None
        self.tally.add(bytes_reused=length)
        return data


class _Fetcher:
    """The blobs of one file from the repository: taken from the batch's
    prefetch, else from a window of the file's next blobs fetched at once
    (remote stores), else one by one; verified."""

    def __init__(
        self, restorer: FileRestorer, refs: Sequence[Ref], local: Chunks, batch: dict[bytes, bytes]
    ) -> None:
        self._restorer = restorer
        self._blobs = restorer.repo.blobs
        self._refs = refs
        self._local = local
        self._batch = batch
        self._ahead: dict[bytes, bytes] = {}
        self._skip: set[bytes] | None = None

    def __call__(self, index: int, ref: Ref) -> bytes:
        tally = self._restorer.tally
        stored = self._batch.get(ref.blob_id) or self._ahead.pop(ref.blob_id, None)
        if stored is None and self._blobs.batch_reads:
            if self._skip is None:  # holes and chunks found locally are not fetched
                holes = {r.digest for r in self._refs if self._restorer.is_hole(r)}
                self._skip = holes | set(self._local)
            window = self._blobs.window(self._refs, index, self._skip)
            self._ahead = self._blobs.prefetch(DATA, window)
            tally.add(bytes_downloaded=sum(len(v) for v in self._ahead.values()))
            stored = self._ahead.pop(ref.blob_id, None)
        if stored is None:
            tally.add(bytes_downloaded=self._blobs.stored_size(ref))
        return self._blobs.read(DATA, ref, stored)
