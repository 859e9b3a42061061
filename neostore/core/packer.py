"""Turns blobs into packs and packs into uploads and index files.

Owns the write side's concurrency: deduplication against the index plus an
in-flight set, one pack builder per blob type (data and trees never share a
pack), and a bounded pool of uploaders. Write order per pack: the pack is
durable before any index file names it; index files are written every
``INDEX_EVERY`` packs, when a pack arrives and the oldest unindexed one is
``INDEX_INTERVAL`` seconds old, and at :meth:`flush`, so an interrupted
snapshot's uploads are reused by the next one (a run cut off by a dead
server or a crash loses at most 64 packs or about a minute of uploads).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import NeostoreError
from ..format.blob import Ref, encrypt_blob
from ..format.pack import PackBuilder
from ..format.targets import BLOB_TYPES, Domain, TargetRecord
from ..format.writer import WriterIdentity
from .index import PackRecord, encode_index
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
        self._lock = threading.Lock()
        self._inflight: set[bytes] = set()
        self._builders = {t: PackBuilder() for t in BLOB_TYPES}
        self._pool = ThreadPoolExecutor(max_workers=uploaders, thread_name_prefix="upload")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._uploads: list[Future[None]] = []
        self._unindexed: list[PackRecord] = []
        self._unindexed_since = 0.0  # monotonic time of the oldest unindexed pack
        self._error: BaseException | None = None

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
        full: PackBuilder | None = None
        with self._lock:
            builder = self._builders[btype]
            builder.add(btype, ref.blob_id, stored)
            self.stats.blobs_new += 1
            self.stats.bytes_new_plain += ref.length
            if builder.size >= self.repo.config.pack_size:
                full = builder
                self._builders[btype] = PackBuilder()
        if full is not None:
            self._submit(full)
        return True

    def add_stored(self, btype: int, blob_id: bytes, stored: bytes) -> None:
        """Store an already encrypted (and verified) copy of a blob, even
        though the index knows it: for a blob whose copies a prune
        condemned while this snapshot reused them."""
        self._raise_pending()
        full: PackBuilder | None = None
        with self._lock:
            builder = self._builders[btype]
            builder.add(btype, blob_id, stored)
            self.stats.blobs_new += 1
            if builder.size >= self.repo.config.pack_size:
                full = builder
                self._builders[btype] = PackBuilder()
        if full is not None:
            self._submit(full)

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
            batch = None
            if len(self._unindexed) >= INDEX_EVERY or now - self._unindexed_since >= INDEX_INTERVAL:
                batch, self._unindexed = self._unindexed, []
        if batch:
            self._write_index(batch)

    def _submit(self, builder: PackBuilder) -> None:
        self._slots.acquire()
        try:
            future = self._pool.submit(self._upload, builder)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            # keep only pending futures: memory must not grow with the run
            self._uploads = [f for f in self._uploads if not f.done()]
            self._uploads.append(future)

    def _upload(self, builder: PackBuilder) -> None:
        try:
            entries = list(builder.entries)
            pack_id, data = builder.finish(
                repo_id=self.repo.repo_id,
                domain=self.domain,
                target_id=self.record.target_id,
                writer=self.writer,
            )
            size = sum(len(part) for part in data)
            self.repo.backend.save("data", pack_id.hex(), data)
            del data
            self._uploaded(PackRecord(pack_id, size, entries))  # blobs counted in add()
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
        self.repo.backend.save("index", name.hex(), data)
        self.repo.note_index_written(name.hex())
        for record in records:
            self.repo.index.add_pack(record)
        with self._lock:
            for record in records:
                for entry in record.entries:
                    self._inflight.discard(entry.blob_id)

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
            partial = [b for b in self._builders.values() if b.entries]
            self._builders = {t: PackBuilder() for t in BLOB_TYPES}
        for builder in partial:
            self._submit(builder)
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
            batch, self._unindexed = self._unindexed, []
        if batch:
            try:
                self._write_index(batch)
            except NeostoreError:
                pass

    def close(self) -> None:
        self._pool.shutdown(wait=True)
