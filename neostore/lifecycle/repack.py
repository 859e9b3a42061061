"""Repacking: copy the blobs snapshots still need out of partly used packs
into new ones, so prune can condemn the old packs.

Every blob is decrypted and checked against its content hash before it is
copied (a copy that fails is skipped when another good copy exists, else
the pack is kept). New packs are written by the same
:class:`~neostore.core.packwriter.PackWriter` as a snapshot's, then indexed
by the owner: new packs → their index → (later, by prune) the marks that
condemn the old ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..core import objects
from ..core.packwriter import PackWriter
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError
from ..format.blob import Ref, decrypt_blob
from ..format.indexfile import PackRecord, encode_index
from ..format.pack import PackEntry
from ..format.targets import Domain
from .packview import PackView, PruneRefused

#: (domain id, epoch, target id): where a pack belongs
Where = tuple[bytes, int, bytes]


@dataclass
class RepackStats:
    packs_written: int = 0
    blobs_repacked: int = 0
    bytes_repacked: int = 0
    problems: list[str] = field(default_factory=list)


def domain_of(repo: Repository, domain_id: bytes, epoch: int) -> Domain:
    domain = repo.domain_for(domain_id, epoch)
    if domain is None:
        raise PruneRefused(f"domain {domain_id.hex()[:8]}: no key for it")
    return domain


def write_index(
    repo: Repository,
    where: Where,
    records: list[PackRecord],
    *,
    condemn: Iterable[bytes] = (),
    untrusted: bool = False,
) -> None:
    """An owner-signed index file of ``where`` (with prune's ``condemn``
    marks, or copied from a writer's listing as ``untrusted``)."""
    domain_id, epoch, target_id = where
    name, data = encode_index(
        records,
        repo_id=repo.repo_id,
        domain=domain_of(repo, domain_id, epoch),
        target_id=target_id,
        writer=repo.writer,
        condemn=condemn,
        untrusted=untrusted,
    )
    repo.objects.save(objects.index_file(name), data)


class Repacker:
    def __init__(
        self,
        repo: Repository,
        view: PackView,
        used: dict[bytes, tuple[int, Ref]],
        keeper: dict[bytes, bytes],
    ) -> None:
        self.repo = repo
        self.view = view
        #: blob -> (type, ref) of every blob a snapshot references
        self.used = used
        #: blob -> the pack whose copy of it stays
        self.keeper = keeper
        self.stats = RepackStats()
        self._writers: dict[tuple[Where, int], PackWriter] = {}
        self._written: dict[Where, list[PackRecord]] = defaultdict(list)

    def run(self, packs: list[bytes], copied: Callable[[bytes], None] | None = None) -> set[bytes]:
        """Copy the live blobs of ``packs``; returns the packs fully copied
        (only those may be condemned)."""
        done = set()
        for pack_id in packs:
            if self._copy_pack(pack_id):
                done.add(pack_id)
            if copied is not None:
                copied(pack_id)
        for writer in self._writers.values():
            writer.seal()
        for where, records in self._written.items():
            write_index(self.repo, where, records)
        return done

    def _copy_pack(self, pack_id: bytes) -> bool:
        where = self.view.where(pack_id)
        try:
            data = self.repo.objects.load(objects.pack(pack_id))
        except NeostoreError as e:
            self.stats.problems.append(f"pack {pack_id.hex()}: not repacked: {e}")
            return False
        entries = self.view.contents(pack_id)
        if entries is None:
            return False  # its header went unreadable: not repacked, kept
        copied: set[bytes] = set()
        for entry in entries:
            found = self.used.get(entry.blob_id)
            if (
                found is None
                or self.keeper.get(entry.blob_id) != pack_id
                or entry.blob_id in copied
            ):
                continue
            outcome = self._copy_blob(pack_id, where, entry, found, data)
            if outcome is None:
                return False
            if outcome:
                copied.add(entry.blob_id)
        return True

    def _copy_blob(
        self,
        pack_id: bytes,
        where: Where,
        entry: PackEntry,
        found: tuple[int, Ref],
        data: bytes,
    ) -> bool | None:
        """Copy one blob after verifying it (True). False: this copy fails
        but a good one exists elsewhere. None: it fails and has no good copy
        elsewhere, so its pack must stay."""
        btype, ref = found
        stored = data[entry.offset : entry.offset + entry.length]
        try:
            if entry.btype != btype:
                raise IntegrityError("type differs from its reference")
            decrypt_blob(self.repo.repo_id, btype, ref, stored)
        except IntegrityError as e:
            if self.view.other_copy_ok(btype, ref, pack_id):
                return False  # this copy is bad, another is fine
            self.stats.problems.append(
                f"pack {pack_id.hex()}: blob {entry.blob_id.hex()} fails to verify "
                f"and has no good copy elsewhere; pack kept: {e}"
            )
            return None
        self._writer(where, btype).add(btype, entry.blob_id, stored)
        self.stats.blobs_repacked += 1
        return True

    def _writer(self, where: Where, btype: int) -> PackWriter:
        writer = self._writers.get((where, btype))
        if writer is None:
            domain_id, epoch, target_id = where

            def sealed(record: PackRecord) -> None:
                self._written[where].append(record)
                self.stats.packs_written += 1
                self.stats.bytes_repacked += record.size

            writer = self._writers[(where, btype)] = PackWriter(
                self.repo,
                domain=domain_of(self.repo, domain_id, epoch),
                target_id=target_id,
                writer=self.repo.writer,
                on_sealed=sealed,
            )
        return writer
