"""Keyed content-defined chunking (FastCDC with a secret gear-table seed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pyfastcdc import FastCDC

from .config import Config


class Chunker:
    """Cuts streams into chunks; one instance per thread (pyfastcdc's isn't shareable)."""

    def __init__(self, config: Config, seed: int) -> None:
        # pyfastcdc's average is avg_size + min_size (cut-point skipping); ask
        # for the difference so the configured average is what we get.
        avg = max(config.chunk_avg - config.chunk_min, 256)
        self._cdc = FastCDC(avg, min_size=config.chunk_min, max_size=config.chunk_max, seed=seed)

    def cut_stream(self, stream: BinaryIO) -> Iterator[memoryview]:
        """Yield chunks; each view is valid only until the next one is taken."""
        for chunk in self._cdc.cut_stream(stream):
            yield chunk.data

    def cut_buffer(self, data: bytes) -> Iterator[memoryview]:
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data
