"""Backups and restores started from the page: one at a time, in a
process of its own (:mod:`.jobworker`), the others queued behind it.

Each job's progress is read from its process's pipe by a thread here and
kept in a :class:`Job` that the page polls. A backup's total comes from a
quick pre-count of its folders (:func:`neostore.count_paths`), run here
while the job works, so the bar and the ETA fill in as soon as it ends.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import neostore

from . import jobworker
from .session import Unlock

#: messages kept per job (the count of the rest is kept)
KEEP_MESSAGES = 200


@dataclass
class Job:
    number: int
    kind: str  # backup | restore
    title: str
    spec: dict[str, Any]
    state: str = "queued"  # queued | running | done | failed | cancelled
    files: int = 0
    bytes: int = 0
    total_files: int | None = None
    total_bytes: int | None = None
    current: str = ""
    started: float | None = None
    finished: float | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dropped: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    #: how the process said it ended; the state says so only once the
    #: process is gone and the pages' caches are dropped (a page loaded
    #: after "done" shows the new snapshot)
    outcome: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def note(self, into: list[str], text: str) -> None:
        if len(into) < KEEP_MESSAGES:
            into.append(text)
        else:
            self.dropped += 1

    def as_json(self) -> dict[str, Any]:
        elapsed = ((self.finished or time.monotonic()) - self.started) if self.started else 0.0
        speed = self.bytes / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.state == "running" and self.total_bytes and speed > 0:
            eta = max(0.0, (self.total_bytes - self.bytes) / speed)
        return {
            "number": self.number,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "files": self.files,
            "bytes": self.bytes,
            "total_files": self.total_files,
            "total_bytes": self.total_bytes,
            "current": self.current,
            "elapsed": round(elapsed, 1),
            "speed": round(speed),
            "eta": None if eta is None else round(eta, 1),
            "warnings": self.warnings[-20:],
            "errors": self.errors[-20:],
            "more_messages": self.dropped,
            "result": self.result,
            "message": self.message,
        }


class JobQueue:
    def __init__(self, unlock: Callable[[], Unlock | None], finished: Callable[[Job], None]):
        self._unlock = unlock
        self._finished = finished
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._process: Any = None
        self._cancelled: set[int] = set()
        self._stopping = False
        self.jobs: dict[int, Job] = {}

    def submit(self, kind: str, title: str, spec: dict[str, Any]) -> Job:
        with self._lock:
            job = Job(len(self.jobs) + 1, kind, title, spec)
            self.jobs[job.number] = job
            self._queue.append(job)
            if self._running is None:
                self._start_next()
        return job

    @property
    def running(self) -> Job | None:
        return self._running

    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    def cancel(self, number: int) -> bool:
        """Stop a running job (SIGINT, as Ctrl-C) or drop a queued one."""
        with self._lock:
            job = self.jobs.get(number)
            if job is None or not job.active:
                return False
            if job.state == "queued":
                self._queue.remove(job)
                job.state, job.finished = "cancelled", time.monotonic()
                return True
            self._cancelled.add(number)
            process = self._process
            # under the lock, while the process is known to be this job's
            # and not yet reaped (its pid cannot have been reused)
            if process is not None and process.is_alive():
                if sys.platform == "win32":
                    process.terminate()
                else:
                    os.kill(process.pid, signal.SIGINT)
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel everything (the UI is stopping) and wait for the running job."""
        with self._lock:
            self._stopping = True  # nothing queued starts from now on
        for number in [j.number for j in self.jobs.values() if j.active]:
            self.cancel(number)
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()

    # -- running ---------------------------------------------------------------------

    def _start_next(self) -> None:
        """With the lock held: start the first queued job, if any."""
        if not self._queue or self._stopping:
            self._running = None
            return
        job = self._queue.popleft()
        self._running = job
        unlock = self._unlock()
        if unlock is None and job.kind != "profile":  # a profile names its own repository
            job.state, job.message = "failed", "the repository is not unlocked"
            self._start_next()
            return
        context = multiprocessing.get_context("spawn")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=jobworker.main, args=(writer, unlock, job.kind, job.spec))
        job.state, job.started = "running", time.monotonic()
        done = threading.Event()  # set when it ends: its pre-count stops walking
        process.start()
        writer.close()
        self._process = process
        threading.Thread(
            target=self._follow,
            args=(job, reader, process, done),
            name=f"job-{job.number}",
            daemon=True,
        ).start()
        if job.kind == "backup":
            threading.Thread(target=self._precount, args=(job, done), daemon=True).start()

    def _follow(self, job: Job, reader: Any, process: Any, done: threading.Event) -> None:
        try:
            while True:
                try:
                    event = reader.recv()
                except (EOFError, OSError):
                    break
                self._apply(job, event)
        finally:
            reader.close()
            process.join()
            done.set()
            self._finished(job)  # before the state says so: see Job.outcome
            with self._lock:
                if job.outcome is None:  # the process died without a word
                    cancelled = job.number in self._cancelled
                    job.outcome = "cancelled" if cancelled else "failed"
                    job.message = job.message or f"the job process ended ({process.exitcode})"
                job.state, job.finished = job.outcome, time.monotonic()
                self._process = None
                self._start_next()

    def _apply(self, job: Job, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "advance":
            job.bytes += event[1]
            job.files += event[2]
            job.current = event[3] or job.current
        elif kind == "warning":
            job.note(job.warnings, event[1])
        elif kind == "error":
            job.note(job.errors, event[1])
        elif kind == "done":
            job.result = event[1]
            job.outcome = "failed" if event[1].get("errors") else "done"
            if job.outcome == "failed":
                job.message = f"{event[1]['errors']} item(s) could not be processed"
        elif kind == "cancelled":
            job.outcome = "cancelled"
        elif kind == "failed":
            job.outcome, job.message = "failed", event[1]

    def _precount(self, job: Job, stop: threading.Event) -> None:
        try:
            count = neostore.count_paths(job.spec["paths"], job.spec.get("excludes", ()), stop=stop)
        except neostore.NeostoreError:
            return
        job.total_files, job.total_bytes = count.files, count.bytes
