"""Writing packs: the one pack writer of the snapshot workers, the tree
packer and prune's repack.

A :class:`PackWriter` fills one pack at a time with encrypted blobs of one
dedup domain and target, writing each blob to a store stream as it comes
(a local store holds no pack in memory; a server's stream keeps it until
the upload), and seals the pack once it reaches the repository's pack
size: signed header, trailer, then durable under the hash of its bytes.
Only then is the pack reported (``on_sealed``), so nothing names a pack
that is not durable (packs → index → snapshot).
"""

from __future__ import annotations

from collections.abc import Callable

from ..backend.base import ObjectStream
from ..backend.names import ObjectType
from ..format.indexfile import PackRecord
from ..format.pack import PackBuilder
from ..format.targets import Domain
from ..format.writer import WriterIdentity
from .repository import Repository

#: runs a pack's sealing: at once, or handed to a thread (the caller's choice)
Sealer = Callable[[Callable[[], None]], None]


def _at_once(job: Callable[[], None]) -> None:
    job()


class PackWriter:
    """Not thread-safe: one caller adds at a time. Sealing runs through
    ``seal_with`` (at once by default), which may run it in another thread;
    each seal works on its own pack."""

    def __init__(
        self,
        repo: Repository,
        *,
        domain: Domain,
        target_id: bytes,
        writer: WriterIdentity,
        on_sealed: Callable[[PackRecord], None],
        seal_with: Sealer = _at_once,
    ) -> None:
        self._store = repo.objects
        self._repo_id = repo.repo_id
        self._domain = domain
        self._target_id = target_id
        self._writer = writer
        self._pack_size = repo.config.pack_size
        self._on_sealed = on_sealed
        self._seal_with = seal_with
        self._builder: PackBuilder | None = None
        self._stream: ObjectStream | None = None

    @property
    def pending(self) -> bool:
        """A pack is being filled."""
        return self._builder is not None

    def add(self, btype: int, blob_id: bytes, stored: bytes) -> None:
        """Append an encrypted blob; seal the pack when it is full."""
        if self._builder is None:
            self._stream = self._store.create_stream(ObjectType.DATA)
            self._builder = PackBuilder(sink=self._stream.write)
        self._builder.add(btype, blob_id, stored)
        if self._builder.size >= self._pack_size:
            self.seal()

    def seal(self) -> None:
        """Seal the pack being filled (if any); the next blob starts a new one."""
        builder, stream = self._builder, self._stream
        if builder is None or stream is None:
            return
        self._builder = self._stream = None
        self._seal_with(lambda: self._finish(builder, stream))

    def abort(self) -> None:
        """Drop the pack being filled (nothing of it becomes visible)."""
        if self._stream is not None:
            self._stream.abort()
        self._builder = self._stream = None

    def _finish(self, builder: PackBuilder, stream: ObjectStream) -> None:
        try:
            entries = list(builder.entries)
            pack_id, _ = builder.finish(
                repo_id=self._repo_id,
                domain=self._domain,
                target_id=self._target_id,
                writer=self._writer,
            )
            stream.commit(pack_id.hex())
        except BaseException:
            stream.abort()
            raise
        self._on_sealed(PackRecord(pack_id, builder.size, entries))
