"""The parent's side of a snapshot's content workers.

One thread per worker process serves its messages (:mod:`.contentworker`):
blob claims go to the :class:`~neostore.core.packer.Packer` (the one
in-flight set), durable packs are indexed there, finished batches go back
to the caller. Batches in flight are bounded (three per worker), so the
walk cannot run ahead of the workers by more than that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..core.packer import Packer
from ..core.repository import Repository
from ..errors import NeostoreError
from ..format.indexfile import PackRecord
from ..format.pack import decode_entries
from ..format.targets import Domain, TargetRecord
from ..format.writer import WriterIdentity
from .contentworker import WorkerHandle, start_workers

Job = TypeVar("Job")
#: what a worker reports per file: refs, size, mtime_ns, ctime_ns, error
FileResult = list[object]


class ContentWorkers(Generic[Job]):
    """Fork with :meth:`start` before this process starts any thread."""

    def __init__(
        self,
        count: int,
        on_batch: Callable[[list[Job], list[FileResult]], None],
        on_failure: Callable[[NeostoreError], None],
    ) -> None:
        self._count = max(1, count)
        self._on_batch = on_batch
        self._on_failure = on_failure
        self._slots = threading.BoundedSemaphore(self._count * 3)
        self._lock = threading.Lock()
        self._number = 0
        self._batches: dict[int, tuple[WorkerHandle, list[Job]]] = {}
        self._handles: list[WorkerHandle] = []
        self._servers: list[threading.Thread] = []
        self._error: NeostoreError | None = None
        self._cancel = threading.Event()
        self._packer: Packer | None = None

    def start(
        self, repo: Repository, record: TargetRecord, domain: Domain, writer: WriterIdentity
    ) -> None:
        self._repo = repo
        self._handles = start_workers(self._count, repo, record, domain, writer)

    def serve(self, packer: Packer) -> None:
        """Start one serving thread per worker."""
        self._packer = packer
        for handle in self._handles:
            server = threading.Thread(
                target=self._serve, args=(handle,), name="serve-worker", daemon=True
            )
            server.start()
            self._servers.append(server)

    def submit(self, jobs: list[Job], files: list[list[object]]) -> None:
        """Hand ``files`` ([path, inode] each) to the least busy worker;
        waits for a free slot. Raises the first worker failure."""
        self._slots.acquire()
        with self._lock:
            if self._error is not None:
                self._slots.release()
                raise self._error
            handle = min(self._handles, key=lambda h: h.outstanding)
            handle.outstanding += 1
            number = self._number = self._number + 1
            self._batches[number] = (handle, jobs)
        handle.send_work(["batch", number, files])

    def finish(self) -> None:
        """Every worker seals its last pack and exits; raises a failure."""
        for handle in self._handles:
            handle.send_work(["finish"])
        self._join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Abort: each worker finishes (and reports) an upload in progress."""
        self._cancel.set()
        for handle in self._handles:
            handle.abort()
        self._join()

    def _join(self) -> None:
        for server in self._servers:
            server.join()
        for handle in self._handles:
            handle.reap()
        if self._handles:
            self._repo.index.unshare()  # if spawned workers got it shared

    def _serve(self, handle: WorkerHandle) -> None:
        try:
            while self._handle(handle, handle.recv()):
                pass
        except (EOFError, OSError):
            if not self._cancel.is_set():
                self._failed(handle, NeostoreError("a content worker process died"))
        except NeostoreError as e:
            self._failed(handle, e)
        except Exception as e:  # a bug here must fail the run, not hang it
            self._failed(handle, NeostoreError(f"serving a worker: {e!r}"))

    def _handle(self, handle: WorkerHandle, message: list[Any]) -> bool:
        """Act on one message; False once the worker has finished."""
        assert self._packer is not None
        kind = message[0]
        if kind == "claim":
            granted = self._packer.claim(message[1])
            try:
                handle.answer(["claimed", granted, self._packer.dry_run])
            except OSError:
                # aborting: the worker sees EOF and reports its last
                # upload, which must still be read and indexed
                if not self._cancel.is_set():
                    raise
        elif kind == "pack":
            pack_id, size, raw = message[1:4]
            entries = decode_entries(raw, "pack from a worker")
            self._packer.record_uploaded(PackRecord(pack_id, size, entries))
        elif kind == "dry":
            self._packer.record_dry(message[1], message[2])
        elif kind == "done":
            self._done(message[1], message[2])
        elif kind == "failed":
            raise NeostoreError(str(message[1]))
        return bool(kind != "finished")

    def _done(self, number: int, results: list[FileResult]) -> None:
        with self._lock:
            handle, jobs = self._batches.pop(number)
            handle.outstanding -= 1
        self._slots.release()
        self._on_batch(jobs, results)

    def _failed(self, handle: WorkerHandle, error: NeostoreError) -> None:
        """Fail the run: release the worker's batches (a walker waiting for a
        batch slot goes on and raises at its next batch) and tell the caller,
        also when this worker held no batch."""
        with self._lock:
            if self._error is None:
                self._error = error
            lost = [n for n, (h, _) in self._batches.items() if h is handle]
            for number in lost:
                del self._batches[number]
        for _ in lost:
            self._slots.release()
        self._on_failure(error)
