"""Renders library progress events as a bar on stderr (terminals only)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from neostore.progress import Collecting


class BarReporter(Collecting):
    """Collects problems; draws a tqdm bar when ``show`` is true."""

    def __init__(self, show: bool, verbose: int = 0, echo: bool = True) -> None:
        super().__init__()
        self._show = show
        self._verbose = verbose
        self._echo = echo
        self._bar: Any = None
        self._lock = threading.Lock()

    def start(self, phase: str, total_bytes: int | None = None) -> None:
        if not self._show:
            return
        from tqdm import tqdm

        with self._lock:
            if self._bar is not None:
                self._bar.close()
            self._bar = tqdm(
                total=total_bytes,
                desc=phase,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )

    def advance(self, nbytes: int = 0, items: int = 0) -> None:
        bar = self._bar
        if bar is not None and nbytes:
            with self._lock:
                bar.update(nbytes)

    def item(self, path: bytes) -> None:
        bar = self._bar
        if bar is not None:
            bar.set_postfix_str(os.fsdecode(path)[-40:], refresh=False)

    def file(self, path: bytes, status: str) -> None:
        if self._verbose > 1 or (self._verbose and status != "unchanged"):
            self._line(f"{status:<9} {os.fsdecode(path)}")

    def _say(self, kind: str, path: bytes | None, message: str) -> None:
        where = f"{os.fsdecode(path)}: " if path else ""
        self._line(f"{kind}: {where}{message}")

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
            if self._bar is not None:
                self._bar.close()
                self._bar = None
