"""Progress and problem reporting from the library to whoever renders it.

The library never prints: long operations call a :class:`Reporter`. The
default does nothing; the CLI renders bars on a terminal and collects
problems for stderr and ``--json``. Methods may be called from any thread.
"""

from __future__ import annotations


class Reporter:
    def start(self, phase: str, total_bytes: int | None = None) -> None:
        """A phase begins (``"snapshot"``, ``"restore"``, ``"check"``)."""

    def advance(self, nbytes: int = 0, items: int = 0) -> None:
        """Work done since the last call."""

    def item(self, path: bytes) -> None:
        """The item currently being processed (for display only)."""

    def file(self, path: bytes, status: str) -> None:
        """A file is done: "new", "changed" or "unchanged" (snapshot),
        "restored" (restore). For per-file listings (``-v``)."""

    def warning(self, path: bytes | None, message: str) -> None:
        """Something worth saying that did not fail the operation."""

    def error(self, path: bytes | None, message: str) -> None:
        """An item failed; the operation goes on and ends with an error status."""

    def finish(self) -> None:
        """The phase is over."""


class Collecting(Reporter):
    """Keeps warnings and errors; what tests and the CLI read afterwards."""

    def __init__(self) -> None:
        self.warnings: list[tuple[bytes | None, str]] = []
        self.errors: list[tuple[bytes | None, str]] = []

    def warning(self, path: bytes | None, message: str) -> None:
        self.warnings.append((path, message))

    def error(self, path: bytes | None, message: str) -> None:
        self.errors.append((path, message))
