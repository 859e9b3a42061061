"""Turns blobs into packs and packs into index files, for one target.

Owns the write side's concurrency: deduplication against the index plus an
in-flight set, one :class:`~.packwriter.PackWriter` per blob type (data and
trees never share a pack), and a bounded pool that seals and uploads full
packs. Write order per pack: the pack is durable before any index file
names it; index files are written every ``INDEX_EVERY`` packs, when a pack
arrives and the oldest unindexed one is ``INDEX_INTERVAL`` seconds old, and
at :meth:`flush`, so an interrupted snapshot's uploads are reused by the
next one. In between, each durable pack is recorded in a local
:mod:`.journal`, which the next run of this key on the machine indexes
(:meth:`recover`): a killed run loses only the packs still uploading.

Packs made by other processes (the snapshot's content workers) are indexed
here too (:meth:`record_uploaded`), as is the one in-flight set they claim
blobs from (:meth:`claim`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..backend.names import ObjectType
from ..errors import NeostoreError
from ..format.blob import Ref, encrypt_blob, make_ref
from ..format.chunker import Chunker
from ..format.indexfile import PackRecord, encode_index
from ..format.targets import BLOB_TYPES, Domain, TargetRecord
from ..format.writer import WriterIdentity
from . import objects
from .journal import Journal
from .localstate import cache_dir
from .packwriter import PackWriter
from .repository import Repository

INDEX_EVERY = 64
INDEX_INTERVAL = 60.0  # seconds


@dataclass
class PackerStats:
    blobs_new: int = 0
    blobs_reused: int = 0
    bytes_new_plain: int = 0
    bytes_stored: int = 0
    packs: int = 0


class Packer:
    def __init__(
        self,
        repo: Repository,
        record: TargetRecord,
        domain: Domain,
        writer: WriterIdentity,
        uploaders: int = 2,
        max_pending: int = 4,
    ) -> None:
        self.repo = repo
        self.record = record
        self.domain = domain
        self.writer = writer
        self.stats = PackerStats()
        #: count what would be stored, store nothing (snapshot --dry-run)
        self.dry_run = False
        self._lock = threading.Lock()
        self._inflight: set[bytes] = set()
        self._pool = ThreadPoolExecutor(max_workers=uploaders, thread_name_prefix="upload")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._uploads: list[Future[None]] = []
        self._unindexed: list[PackRecord] = []
        self._unindexed_since = 0.0  # monotonic time of the oldest unindexed pack
        self._error: BaseException | None = None
        self._chunker: Chunker | None = None
        self._journal = _journal(repo, domain, writer)
        #: full packs to seal, queued under the lock and submitted outside it
        #: (a seal takes the lock when it reports its pack)
        self._to_seal: list[Callable[[], None]] = []
        self._packs = {
            btype: PackWriter(
                repo,
                domain=domain,
                target_id=record.target_id,
                writer=writer,
                on_sealed=self._uploaded,
                seal_with=self._to_seal.append,
            )
            for btype in BLOB_TYPES
        }

    # -- storing blobs ---------------------------------------------------------

    def add(self, btype: int, ref: Ref, plaintext: bytes | memoryview) -> bool:
        """Store a blob unless the repository has it; True when it was new.

        ``plaintext`` is fully consumed before returning, so a caller may
        reuse its buffer.
        """
        self._raise_pending()
        with self._lock:
            if ref.blob_id in self.repo.index or ref.blob_id in self._inflight:
                self.stats.blobs_reused += 1
                return False
            self._inflight.add(ref.blob_id)
        stored = encrypt_blob(self.repo.repo_id, btype, ref, plaintext)
        with self._lock:
            self.stats.blobs_new += 1
            self.stats.bytes_new_plain += ref.length
            if self.dry_run:
                self.stats.bytes_stored += len(stored)
                return True
            self._packs[btype].add(btype, ref.blob_id, stored)
        self._submit_full()
        return True

    def add_stored(self, btype: int, blob_id: bytes, stored: bytes) -> None:
        """Store an already encrypted (and verified) copy of a blob, even
        though the index knows it: for a blob whose copies a prune
        condemned while this snapshot reused them."""
        self._raise_pending()
        with self._lock:
            self.stats.blobs_new += 1
            self._packs[btype].add(btype, blob_id, stored)
        self._submit_full()

    def store_pieces(self, btype: int, pieces: Iterable[bytes | memoryview]) -> list[Ref]:
        """Store content already cut into chunks; returns its refs in order."""
        refs = []
        for piece in pieces:
            ref = make_ref(self.domain, btype, piece)
            self.add(btype, ref, piece)
            refs.append(ref)
        return refs

    def store_buffer(self, btype: int, data: bytes) -> list[Ref]:
        """Cut ``data`` with the domain's keyed chunker and store it (a
        directory listing, a copied file): the one way a stream becomes
        blobs outside the content workers."""
        if self._chunker is None:
            self._chunker = Chunker(self.repo.config, self.domain.chunker_seed)
        return self.store_pieces(btype, self._chunker.cut_buffer(data))

    @property
    def chunker(self) -> Chunker:
        """The domain's keyed chunker (for streams too large for memory)."""
        if self._chunker is None:
            self._chunker = Chunker(self.repo.config, self.domain.chunker_seed)
        return self._chunker

    def claim(self, blob_ids: list[bytes]) -> list[bool]:
        """For blobs stored elsewhere (a worker process): True for each id that
        nobody has or is storing, which the caller must then store."""
        granted = []
        with self._lock:
            for blob_id in blob_ids:
                new = blob_id not in self.repo.index and blob_id not in self._inflight
                if new:
                    self._inflight.add(blob_id)
                else:
                    self.stats.blobs_reused += 1
                granted.append(new)
        return granted

    def record_dry(self, blobs: int, stored_bytes: int) -> None:
        """What a worker would have stored in a dry run."""
        with self._lock:
            self.stats.blobs_new += blobs
            self.stats.bytes_stored += stored_bytes

    # -- packs and index files -----------------------------------------------------

    def record_uploaded(self, record: PackRecord) -> None:
        """A pack that another process made durable: index it with ours."""
        self._uploaded(record, new_blobs=len(record.entries))

    def _uploaded(self, record: PackRecord, new_blobs: int = 0) -> None:
        """Count a durable pack; every ``INDEX_EVERY`` packs, write an index."""
        with self._lock:
            self.stats.packs += 1
            self.stats.bytes_stored += record.size
            self.stats.blobs_new += new_blobs
            now = time.monotonic()
            if not self._unindexed:
                self._unindexed_since = now
            self._unindexed.append(record)
            if self._journal is not None:
                self._journal.add(record)
            batch = None
            if len(self._unindexed) >= INDEX_EVERY or now - self._unindexed_since >= INDEX_INTERVAL:
                batch, self._unindexed = self._unindexed, []
        if batch:
            self._write_index(batch)

    def _submit_full(self) -> None:
        """Seal and upload the queued packs in the pool (at most
        ``max_pending`` at once: memory must not grow with the run)."""
        while True:
            with self._lock:
                if not self._to_seal:
                    return
                seal = self._to_seal.pop(0)
            self._slots.acquire()
            try:
                future = self._pool.submit(self._sealing, seal)
            except BaseException:
                self._slots.release()
                raise
            with self._lock:
                # keep only pending futures
                self._uploads = [f for f in self._uploads if not f.done()]
                self._uploads.append(future)

    def _sealing(self, seal: Callable[[], None]) -> None:
        try:
            seal()
        except BaseException as e:
            with self._lock:
                if self._error is None:
                    self._error = e
            raise
        finally:
            self._slots.release()

    def _write_index(self, records: list[PackRecord]) -> None:
        name, data = encode_index(
            records,
            repo_id=self.repo.repo_id,
            domain=self.domain,
            target_id=self.record.target_id,
            writer=self.writer,
        )
        self.repo.objects.save(objects.index_file(name), data)
        self.repo.note_index_written(name.hex())
        for record in records:
            self.repo.index.add_pack(record)
        with self._lock:
            for record in records:
                for entry in record.entries:
                    self._inflight.discard(entry.blob_id)
            if not self._unindexed and self._journal is not None:
                self._journal.clear()

    def recover(self) -> int:
        """Index the packs that runs of this key killed on this machine
        uploaded and did not index (after the index is loaded); returns
        how many."""
        if self._journal is None:
            return 0
        indexed = {pack_id for pack_id, _ in self.repo.index.packs()}
        stored: dict[str, int] | None = None
        recovered = 0
        for path, records in self._journal.orphans():
            pending = [r for r in records if r.pack_id not in indexed]
            if pending and stored is None:
                stored = self.repo.objects.list(ObjectType.DATA)
            found = [
                r for r in pending if stored is not None and stored.get(r.pack_id.hex()) == r.size
            ]
            if found:
                self._write_index(found)
                indexed.update(r.pack_id for r in found)
                recovered += len(found)
            path.unlink(missing_ok=True)
        return recovered

    def _raise_pending(self) -> None:
        if self._error is not None:
            error = self._error
            if isinstance(error, NeostoreError):
                raise error
            raise NeostoreError(f"upload failed: {error}") from error

    def _wait_uploads(self) -> None:
        with self._lock:
            uploads, self._uploads = self._uploads, []
        for future in uploads:
            future.exception()

    def flush(self) -> None:
        """Upload partial packs, wait for every upload, write the index."""
        self._raise_pending()
        with self._lock:
            for pack in self._packs.values():
                pack.seal()
        self._submit_full()
        self._wait_uploads()
        self._raise_pending()
        with self._lock:
            batch, self._unindexed = self._unindexed, []
        if batch:
            self._write_index(batch)

    def abort(self) -> None:
        """After a failure or interrupt: index what did reach the store, then stop."""
        # shutdown waits for every submitted upload, also one whose future an
        # interrupt kept from being recorded
        self._pool.shutdown(wait=True)
        with self._lock:
            for pack in self._packs.values():
                pack.abort()
            queued, self._to_seal = self._to_seal, []
        for seal in queued:  # full packs not handed to the pool yet
            try:
                seal()  # commits, or aborts its stream and raises
            except BaseException:  # noqa: S112 -- aborting anyway; its stream is gone
                continue
        with self._lock:
            batch, self._unindexed = self._unindexed, []
        if batch:
            try:
                self._write_index(batch)
            except NeostoreError:
                return  # the journal stays: the next run indexes them
        if self._journal is not None:
            self._journal.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            indexed = not self._unindexed
        if self._journal is not None and indexed:
            self._journal.close()


def _journal(repo: Repository, domain: Domain, writer: WriterIdentity) -> Journal | None:
    prefix = f"unindexed-{domain.domain_id.hex()}-{domain.epoch}-{writer.writer_id.hex()}-"
    try:
        return Journal(cache_dir() / repo.repo_id.hex(), prefix)
    except OSError:
        return None  # no cache: a killed run's packs are uploaded again
