"""Renders library progress events: a bar on stderr (terminals only), or
with ``--json --progress`` JSON lines for other programs (the UI, scripts):
``{"type": "progress", "phase", "bytes_done", "bytes_total", "items_done",
"seconds", "eta_seconds"}`` at most twice a second and when a phase ends."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from neostore.progress import Collecting

from .say import line


class BarReporter(Collecting):
    """Collects problems; draws a tqdm bar when ``show`` is true."""

    def __init__(
        self,
        show: bool,
        verbose: int = 0,
        echo: bool = True,
        json_progress: bool = False,
        as_json: bool = False,
    ) -> None:
        super().__init__()
        #: problems and file lines as JSON (--json); told, since Click's
        #: context is not seen from the threads that report
        self._as_json = as_json
        self._show = show
        self._verbose = verbose
        self._echo = echo
        self._json = json_progress
        self._bar: Any = None
        self._lock = threading.Lock()
        self._phase = ""
        self._total: int | None = None
        self._done = self._items = 0
        self._started = self._last = 0.0

    @property
    def shows_progress(self) -> bool:
        return self._show or self._json

    def set_total(self, total_bytes: int) -> None:
        """The phase's total, learnt while it runs (the pre-count)."""
        with self._lock:
            self._total = total_bytes
            if self._bar is not None:
                self._bar.total = total_bytes
                self._bar.refresh()

    def start(self, phase: str, total_bytes: int | None = None) -> None:
        with self._lock:
            self._phase, self._done, self._items = phase, 0, 0
            self._started = self._last = time.monotonic()
            if total_bytes is not None:
                self._total = total_bytes
        if not self._show:
            return
        from tqdm import tqdm

        with self._lock:
            if self._bar is not None:
                self._bar.close()
            self._bar = tqdm(
                total=self._total,
                desc=phase,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )

    def advance(self, nbytes: int = 0, items: int = 0) -> None:
        if not (self._show or self._json):
            return  # called per file: nothing to draw, nothing to count
        with self._lock:
            self._done += nbytes
            self._items += items
            if self._bar is not None and nbytes:
                self._bar.update(nbytes)
            if self._json and time.monotonic() - self._last >= 0.5:
                self._emit()

    def _emit(self) -> None:
        """One progress line (the lock held)."""
        now = time.monotonic()
        self._last = now
        seconds = now - self._started
        eta = None
        if self._total and self._done and seconds > 0:
            eta = round(max(0, self._total - self._done) / (self._done / seconds), 1)
        event = {
            "type": "progress",
            "phase": self._phase,
            "bytes_done": self._done,
            "bytes_total": self._total,
            "items_done": self._items,
            "seconds": round(seconds, 3),
            "eta_seconds": eta,
        }
        print(json.dumps(event), file=sys.stderr, flush=True)

    def item(self, path: bytes) -> None:
        bar = self._bar
        if bar is not None:
            bar.set_postfix_str(os.fsdecode(path)[-40:], refresh=False)

    def file(self, path: bytes, status: str) -> None:
        if self._verbose > 1 or (self._verbose and status != "unchanged"):
            if self._json or self._as_json:
                event = {"type": "file", "status": status, "path": os.fsdecode(path)}
                self._line(json.dumps(event, ensure_ascii=False))
            else:
                self._line(f"{status:<9} {os.fsdecode(path)}")

    def _say(self, kind: str, path: bytes | None, message: str) -> None:
        self._line(line(kind, message, path, self._as_json))

    def _line(self, line: str) -> None:
        with self._lock:
            bar = self._bar
            if bar is not None:
                bar.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr)

    def warning(self, path: bytes | None, message: str) -> None:
        super().warning(path, message)
        if self._echo:
            self._say("warning", path, message)

    def error(self, path: bytes | None, message: str) -> None:
        super().error(path, message)
        if self._echo:
            self._say("error", path, message)

    def finish(self) -> None:
        with self._lock:
            if self._json and self._phase:
                self._emit()
            if self._bar is not None:
                self._bar.close()
                self._bar = None
