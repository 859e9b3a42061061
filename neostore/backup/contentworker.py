"""Worker processes that turn file content into uploaded packs.

Why processes: per small file the content path makes a dozen calls that
release the GIL (open, fstat, read, chunk, hash, compress, encrypt, close).
With several threads in one interpreter every one of them became a GIL
hand-off (measured: ~50 futex calls and ~300 µs of CPU per file). A worker
process is single-threaded on that path, so its GIL is never contended.

Each worker is started by :func:`start_workers` before the parent starts
any thread, and gets the open repository: keys, writer identity, backend and
the index as loaded (a snapshot it only reads): inherited when forked (pages
shared copy-on-write), pickled to it when spawned
(:mod:`~neostore.core.workerstart`). It receives
batches of files, reads, chunks and hashes them, asks the parent to *claim*
the blobs that are new (the parent owns the one in-flight set, so a blob met
by two workers at once is stored once), then compresses, encrypts and packs
the claimed blobs into a pack that is written to a backend stream as it
grows (no pack is held in memory); a full pack is sealed (header, fsync,
atomic rename to its hash) by one background thread while the next one
fills. A pack is reported to the parent only once it is durable; the parent
writes index files. Messages are msgpack over three one-way pipes per worker, so that a
walker blocked on a full work pipe can never hold up a claim's answer:

work, parent → worker: ``["batch", n, [[path, inode], ...]]`` and ``["finish"]``
(seal the partial pack, report it, exit);

answers, parent → worker: ``["claimed", [bool]]``;

results, worker → parent: ``["claim", [blob_id]]``, ``["pack", pack_id, size,
[entry]]`` (once durable), ``["done", n, [[refs, size, mtime_ns, ctime_ns,
error], ...]]``, ``["finished"]`` or ``["failed", message]``.

To abort, the parent closes its ends of work and answers: the worker sees
EOF, lets the upload in progress finish and report, and exits.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import Any

import msgpack

from ..core import workerstart
from ..core.packwriter import PackWriter
from ..core.repository import Repository
from ..errors import NeostoreError
from ..format.blob import Ref, encrypt_blob, make_ref
from ..format.chunker import Chunker
from ..format.indexfile import PackRecord
from ..format.targets import DATA, Domain, TargetRecord
from ..format.writer import WriterIdentity
from ..runtime import settle_threads, tune_malloc
from .stream import STREAM_INODE

_O_NOATIME = getattr(os, "O_NOATIME", 0)
#: files up to this size are read in one call rather than streamed
SMALL_FILE = 4 * 1024 * 1024
#: new blobs are claimed in groups of about this many bytes
CLAIM_BYTES = 4 * 1024 * 1024


def encode(message: list[Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes) -> list[Any]:
    message = msgpack.unpackb(data, raw=False)
    assert isinstance(message, list)
    return message


class _Stop(Exception):
    """The parent asked this worker to stop, or went away."""


def read_small(fd: int, expected: int) -> bytes:
    """Read a file of ``expected`` bytes, usually in one call sized to it. A
    file that grew is read on, up to just past SMALL_FILE; the caller's fstat
    after reading reports the change."""
    block = os.read(fd, expected + 1)
    if len(block) == expected:
        return block
    parts, total = [block], len(block)
    while block and total <= SMALL_FILE:
        block = os.read(fd, min(1 << 20, SMALL_FILE + 1 - total))
        parts.append(block)
        total += len(block)
    return b"".join(parts)


def open_for_backup(path: bytes, inode: int) -> tuple[int, os.stat_result]:
    """Open the regular file the walk saw (same inode) for reading; never blocks
    (a file swapped for a FIFO must not hang the open), never follows a symlink."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | _O_NOATIME)
    except PermissionError:
        fd = os.open(path, flags)  # O_NOATIME needs ownership
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or opened.st_ino != inode:
            raise OSError(0, "file was replaced while being backed up")
    except BaseException:
        os.close(fd)
        raise
    # O_NONBLOCK stays set: it has no effect on regular files
    return fd, opened


class ContentWorker:
    """The child side: serves batches until told to finish."""

    def __init__(
        self,
        pipes: tuple[Connection, Connection, Connection],
        repo: Repository,
        record: TargetRecord,
        domain: Domain,
        writer: WriterIdentity,
    ) -> None:
        self.work, self.answers, self.results = pipes
        self.repo = repo
        self.record = record
        self.domain = domain
        self.writer = writer
        self.chunker = Chunker(repo.config, domain.chunker_seed)
        # the pack being filled goes straight to a store stream, so a worker
        # holds no pack in memory; a full one is sealed in the background
        self.packs = PackWriter(
            repo,
            domain=domain,
            target_id=record.target_id,
            writer=writer,
            on_sealed=self._report_pack,
            seal_with=self._seal_in_background,
        )
        self._send_lock = threading.Lock()
        self._upload: threading.Thread | None = None
        self._upload_error: BaseException | None = None
        self._pending: list[tuple[Ref, bytes | memoryview]] = []
        self._pending_bytes = 0

    # -- messaging ------------------------------------------------------------

    def _send(self, message: list[Any]) -> None:
        with self._send_lock:
            self.results.send_bytes(encode(message))

    @staticmethod
    def _recv(conn: Connection) -> list[Any]:
        try:
            return decode(conn.recv_bytes())
        except (EOFError, OSError) as e:
            raise _Stop from e

    # -- the loop -------------------------------------------------------------

    def serve(self) -> None:
        try:
            while True:
                message = self._recv(self.work)
                if message[0] == "batch":
                    self._batch(message[1], message[2])
                elif message[0] == "finish":
                    self._flush_pending()
                    self.packs.seal()
                    self._wait_upload()
                    self._send(["finished"])
                    return
        except _Stop:
            self.packs.abort()
            # aborting anyway: an unreported pack is only unindexed garbage
            with contextlib.suppress(BaseException):
                self._wait_upload()
        except BaseException as e:
            self.packs.abort()
            text = str(e) if isinstance(e, NeostoreError) else f"{type(e).__name__}: {e}"
            try:
                self._wait_upload()
            except BaseException as upload_error:
                text = str(upload_error)
            try:
                self._send(["failed", text])
            except OSError:
                pass

    def _batch(self, number: int, files: list[list[Any]]) -> None:
        results: list[list[Any]] = []
        for path, inode in files:
            try:
                refs, after = self._file(path, inode)
            except OSError as e:
                results.append([None, 0, 0, 0, f"cannot read: {e.strerror or e}"])
                continue
            encoded = [r.encode() for r in refs]
            results.append([encoded, after.st_size, after.st_mtime_ns, after.st_ctime_ns, None])
        self._flush_pending()
        self._send(["done", number, results])

    def _file(self, path: bytes, inode: int) -> tuple[list[Ref], os.stat_result]:
        if inode == STREAM_INODE:  # a FIFO the parent feeds (snapshot --stdin)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            opened = os.fstat(fd)
        else:
            fd, opened = open_for_backup(path, inode)
        with os.fdopen(fd, "rb", buffering=0) as f:
            refs: list[Ref] = []
            streamed = inode == STREAM_INODE or opened.st_size > SMALL_FILE
            if streamed:
                pieces: Iterable[memoryview] = self.chunker.cut_stream(f)
            else:
                # one read, no stream buffer; same cut points as streaming
                data = read_small(fd, opened.st_size)
                pieces = self.chunker.cut_buffer(data) if data else ()
            for piece in pieces:
                ref = make_ref(self.domain, DATA, piece)
                refs.append(ref)
                if ref.blob_id in self.repo.index:
                    continue
                # a streamed piece is only valid until the next one is cut
                self._pending.append((ref, bytes(piece) if streamed else piece))
                self._pending_bytes += ref.length
                if self._pending_bytes >= CLAIM_BYTES:
                    self._flush_pending()
            after = os.fstat(fd)
        return refs, after

    # -- storing --------------------------------------------------------------

    def _flush_pending(self) -> None:
        """Claim the pending blobs from the parent; store the ones granted."""
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        self._send(["claim", [ref.blob_id for ref, _ in pending]])
        reply = self._recv(self.answers)
        assert reply[0] == "claimed"
        dry_run, blobs, stored_bytes = reply[2], 0, 0
        for (ref, piece), granted in zip(pending, reply[1], strict=True):
            if not granted:
                continue
            stored = encrypt_blob(self.repo.repo_id, DATA, ref, piece)
            if dry_run:  # snapshot --dry-run: what it would store, nothing stored
                blobs, stored_bytes = blobs + 1, stored_bytes + len(stored)
            else:
                self.packs.add(DATA, ref.blob_id, stored)
        if blobs:
            self._send(["dry", blobs, stored_bytes])

    def _seal_in_background(self, seal: Callable[[], None]) -> None:
        """Seal a full pack (header, fsync, rename, report) in a thread: at
        most one at a time, while the next pack fills."""
        self._wait_upload()

        def run() -> None:
            try:
                seal()
            except BaseException as e:
                self._upload_error = e

        self._upload = threading.Thread(target=run)
        self._upload.start()

    def _wait_upload(self) -> None:
        if self._upload is not None:
            self._upload.join()
            self._upload = None
        error, self._upload_error = self._upload_error, None
        if error is not None:
            raise error

    def _report_pack(self, record: PackRecord) -> None:
        """A durable pack: the parent indexes it."""
        self._send(["pack", record.pack_id, record.size, [e.encode() for e in record.entries]])


class WorkerHandle:
    """The parent side of one worker process."""

    def __init__(
        self,
        work: Connection,
        answers: Connection,
        results: Connection,
        process: multiprocessing.process.BaseProcess,
    ) -> None:
        self.work = work
        self.answers = answers
        self.results = results
        self.process = process
        self.outstanding = 0  # batches sent and not yet done (parent bookkeeping)

    def send_work(self, message: list[Any]) -> None:
        """From the walking thread only."""
        self.work.send_bytes(encode(message))

    def answer(self, message: list[Any]) -> None:
        """From the serving thread only."""
        self.answers.send_bytes(encode(message))

    def recv(self) -> list[Any]:
        """From the serving thread only."""
        return decode(self.results.recv_bytes())

    def abort(self) -> None:
        """EOF on both inbound pipes: the worker finishes its upload and exits."""
        self.work.close()
        self.answers.close()

    def reap(self, timeout: float = 60.0) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.results.close()


def start_workers(
    count: int, repo: Repository, record: TargetRecord, domain: Domain, writer: WriterIdentity
) -> list[WorkerHandle]:
    """Start ``count`` workers (:mod:`~neostore.core.workerstart`). Call
    before this process starts any thread: a fork copies locks that another
    thread may hold."""
    ctx = workerstart.context()
    forked = not workerstart.crosses_by_pickle(ctx)
    if forked:
        settle_threads()
    else:
        repo.index.share()  # unshared by the caller when the workers are done
    # per worker: (work reader, work writer), (answers r, w), (results r, w)
    pipes = [[ctx.Pipe(duplex=False) for _ in range(3)] for _ in range(count)]
    handles = []
    for i, mine in enumerate(pipes):
        child_ends = (mine[0][0], mine[1][0], mine[2][1])
        # a forked child closes every other end, so that it sees EOF when the
        # parent's go (a spawned one only has the ends it is given)
        others = [c for trio in pipes for pair in trio for c in pair if c not in child_ends]
        process = ctx.Process(
            target=_child_main,
            args=(child_ends, others if forked else [], repo, record, domain, writer),
            name=f"neostore-content-{i}",
            daemon=True,
        )
        process.start()
        handles.append(WorkerHandle(mine[0][1], mine[1][1], mine[2][0], process))
    for mine in pipes:
        for end in (mine[0][0], mine[1][0], mine[2][1]):
            end.close()
    return handles


def _child_main(
    pipes: tuple[Connection, Connection, Connection],
    others: list[Connection],
    repo: Repository,
    record: TargetRecord,
    domain: Domain,
    writer: WriterIdentity,
) -> None:
    # the parent handles Ctrl-C and tells us what to do
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # what we inherited lives until we exit: keep the collector off it (and
    # off its pages, which then stay shared with the parent)
    gc.freeze()
    tune_malloc()  # little retained free heap: every worker's memory counts
    for other in others:
        other.close()
    ContentWorker(pipes, repo, record, domain, writer).serve()
    for conn in pipes:
        conn.close()
