"""The index handed to spawned workers through shared memory.

A spawned worker receives its arguments through a pipe that the parent
writes while starting it, and the write blocks until the new interpreter
has started, imported neostore and read it all (~0.15 s a worker). With
the index in the arguments (~55 bytes a blob: far over the pipe's 64 KiB
for any real repository), workers were started one after the other on
the caller's thread. :class:`SharedIndex` pickles the index once into a
shared-memory block; what crosses the pipe is its name, so every worker
starts at once and copies the index out of the block itself. The block
holds blob ids and pack locations (no keys, no content) and lives until
the run that made it ends (:meth:`SharedIndex.close`).
"""

from __future__ import annotations

import pickle
from multiprocessing import shared_memory
from typing import Any


class SharedIndex:
    def __init__(self, index: Any) -> None:
        payload = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
        self.size = len(payload)
        self._block: shared_memory.SharedMemory | None = shared_memory.SharedMemory(
            create=True, size=max(1, self.size)
        )
        assert self._block.buf is not None
        self._block.buf[: self.size] = payload
        self.name = self._block.name

    def close(self) -> None:
        """Free the block (every worker has copied the index by then)."""
        if self._block is not None:
            self._block.close()
            self._block.unlink()
            self._block = None


def load(name: str, size: int) -> Any:
    """In a worker: the index out of the block ``name``."""
    block = shared_memory.SharedMemory(name=name)
    assert block.buf is not None
    view = block.buf[:size]
    try:
        # written by our parent into a block only our user may open (0600),
        # as trusted as the pickled start-up data multiprocessing sends
        return pickle.loads(view)  # noqa: S301
    finally:
        view.release()
        block.close()
