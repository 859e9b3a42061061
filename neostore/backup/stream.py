"""Backing up a stream (``snapshot --stdin``, ``--stdin-from-command``):
a database dump or any program's output, stored as one file.

The stream reaches a content worker through a FIFO in a private folder,
so that it is chunked, deduplicated and encrypted exactly as a file is,
in any worker start method, without a copy on disk. A feeder thread
writes into the FIFO: the data of a reader it was given, or the command
itself, whose standard output is the FIFO. A command that fails (or is
killed) fails the snapshot: nothing is recorded.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import NeostoreError, UsageError
from ..format import tree
from ..format.tree import Node

#: the worker's sign for "a stream, not a regular file seen by the walk"
STREAM_INODE = -1


@dataclass(frozen=True)
class StreamSource:
    #: the file's name in the snapshot, at its root (restic's --stdin-filename)
    name: str = "stdin"
    #: read to its end; or
    reader: BinaryIO | None = None
    #: run, and store its standard output (its stderr stays ours)
    command: Sequence[str] = ()

    def check(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise UsageError(f"{self.name!r}: the stream's file name must be one plain name")
        if (self.reader is None) == (not self.command):
            raise UsageError("a stream needs a reader or a command, and only one")


def stream_node(name: str) -> Node:
    """The file a stream becomes: the caller's, readable by its owner's
    group and others as a new file usually is, made now."""
    now = time.time_ns()
    return Node(
        name=os.fsencode(name),
        type=tree.FILE,
        mode=0o644,
        uid=os.geteuid() if hasattr(os, "geteuid") else 0,
        gid=os.getegid() if hasattr(os, "getegid") else 0,
        mtime_ns=now,
        atime_ns=now,
        ctime_ns=now,
    )


class Feeder:
    """Writes the stream into a FIFO for a worker to read."""

    def __init__(self, source: StreamSource) -> None:
        self._source = source
        self._folder = tempfile.mkdtemp(prefix="neostore-stream-")  # mode 0700
        self.fifo = os.path.join(self._folder, "stream")
        os.mkfifo(self.fifo, 0o600)
        self._error: BaseException | None = None
        self._exit: int | None = None
        self._thread = threading.Thread(target=self._run, name="neostore-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.fifo, "wb") as out:  # until a worker opens it
                if self._source.command:
                    done = subprocess.run(list(self._source.command), stdout=out, check=False)
                    self._exit = done.returncode
                else:
                    assert self._source.reader is not None
                    shutil.copyfileobj(self._source.reader, out, 1 << 20)
        except BaseException as e:  # reported by result()
            self._error = e

    def result(self) -> None:
        """After the worker read it all: fail when the stream did."""
        self._thread.join()
        command = shlex.join(self._source.command)
        if isinstance(self._error, FileNotFoundError) and self._source.command:
            raise NeostoreError(f"{command}: command not found; no snapshot saved")
        if self._error is not None:
            raise NeostoreError(f"reading the stream failed: {self._error}; no snapshot saved")
        if self._exit:
            how = (
                f"was killed by signal {-self._exit}" if self._exit < 0 else f"exited {self._exit}"
            )
            raise NeostoreError(f"{command} {how}; no snapshot saved")

    def close(self) -> None:
        """Unblock a feeder still waiting for a reader (the run failed
        before a worker opened the FIFO), then remove the FIFO."""
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                os.close(os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK))
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.fifo)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self._folder)
