"""Index files (which blob lives where) and the in-memory master index.

An index file is a signed envelope (:mod:`.signed`) whose body lists
``[pack_id, pack_size, [entries]]``; its name is the BLAKE3 of its bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import IntegrityError
from ..format import crypto
from ..format.codec import field
from ..format.pack import PackEntry, decode_entries
from ..format.signed import Envelope, open_envelope, seal_envelope
from ..format.targets import Domain
from ..format.writer import WriterIdentity
from .blobtable import BlobTable


@dataclass(frozen=True)
class PackRecord:
    pack_id: bytes
    size: int
    entries: list[PackEntry]


def encode_index(
    packs: Iterable[PackRecord],
    *,
    repo_id: bytes,
    domain: Domain,
    target_id: bytes,
    writer: WriterIdentity,
    condemn: Iterable[bytes] = (),
    untrusted: bool = False,
) -> tuple[bytes, bytes]:
    """``condemn``: packs an owner's prune marks for deletion (a *mark*,
    docs/format.md); ``untrusted``: entries copied by an owner from another
    writer's index file, not verified, so nobody dedups against them."""
    body: dict[str, object] = {
        "v": 1,
        "packs": [[p.pack_id, p.size, [e.encode() for e in p.entries]] for p in packs],
        "time": time.time_ns(),
    }
    condemned = list(condemn)
    if condemned:
        body["condemn"] = condemned
    if untrusted:
        body["untrusted"] = True
    data = seal_envelope(
        body,
        repo_id=repo_id,
        domain=domain,
        target_id=target_id,
        writer=writer,
        ad_prefix=crypto.AD_INDEX,
        sig_prefix=crypto.SIG_INDEX,
    )
    return crypto.object_hash(data), data


def decode_index(
    data: bytes, *, what: str, repo_id: bytes, owner_vk: bytes, domain_for: object
) -> tuple[Envelope, list[PackRecord]] | None:
    envelope = open_envelope(
        data,
        what=what,
        repo_id=repo_id,
        owner_vk=owner_vk,
        domain_for=domain_for,  # type: ignore[arg-type]
        ad_prefix=crypto.AD_INDEX,
        sig_prefix=crypto.SIG_INDEX,
    )
    if envelope is None:
        return None
    records = []
    for item in field(envelope.body, "packs", list, what):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], bytes)):
            raise IntegrityError(f"{what}: malformed pack record")
        if not isinstance(item[1], int):
            raise IntegrityError(f"{what}: malformed pack size")
        records.append(PackRecord(item[0], item[1], decode_entries(item[2], what)))
    condemn = envelope.body.get("condemn", [])
    if not (isinstance(condemn, list) and all(isinstance(p, bytes) for p in condemn)):
        raise IntegrityError(f"{what}: malformed condemn list")
    if not isinstance(envelope.body.get("untrusted", False), bool):
        raise IntegrityError(f"{what}: malformed untrusted flag")
    return envelope, records


def index_time(envelope: Envelope) -> int:
    value = envelope.body.get("time", 0)
    return value if isinstance(value, int) else 0


def condemned_by(envelope: Envelope) -> list[bytes]:
    """The packs a mark condemns; only an owner's marks count."""
    return list(envelope.body.get("condemn", [])) if envelope.by_owner else []


def entries_trusted(envelope: Envelope, own_writer_id: bytes) -> bool:
    """Whether this key may dedup against the file's entries: written by an
    owner key or by this key itself, and not an owner's unverified copy."""
    if envelope.body.get("untrusted", False):
        return False
    return envelope.by_owner or envelope.writer_id == own_writer_id


@dataclass(frozen=True)
class Location:
    pack_id: bytes
    offset: int
    length: int
    btype: int


class MasterIndex:
    """blob_id → location, for the domains this key can read. Thread-safe;
    compact (see :mod:`.blobtable`): about 60 bytes per blob.

    Packs are *trusted* (written by this key or an owner key's writer) or
    not (another delegated writer's). Dedup (``in``, :meth:`has_all`)
    considers trusted copies only, so a leaked writer key that plants
    garbage under a real blob id cannot make honest writers skip the upload
    (docs/design.md, "Dedup trust"). Reads (:meth:`lookup`,
    :meth:`locations`) use every copy, trusted ones first."""

    def __init__(self) -> None:
        self._packs: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._pack_size: dict[bytes, int] = {}
        #: for packs no trusted listing names: every size an untrusted one claims
        self._claimed_sizes: dict[bytes, set[int]] = {}
        self._trusted_size: set[bytes] = set()
        self._blobs = BlobTable()
        self._other = BlobTable(16)
        #: further copies of a blob (first copy wins in the tables)
        self._extra: dict[bytes, list[tuple[int, int, int, int]]] = {}
        #: those of the further copies a trusted listing names, as (blob id,
        #: pack number, offset): trust is per listing, not per pack (an
        #: untrusted file may claim anything is in a trusted pack)
        self._trusted_extra: set[tuple[bytes, int, int]] = set()
        #: numbers of condemned packs
        self._condemned: set[int] = set()
        self._lock = threading.Lock()

    def add_pack(self, record: PackRecord, trusted: bool = True) -> None:
        with self._lock:
            number = self._pack_no.get(record.pack_id)
            if number is None:
                number = len(self._packs)
                self._packs.append(record.pack_id)
                self._pack_no[record.pack_id] = number
            if trusted or record.pack_id not in self._pack_size:
                # a pack's size as its own writer or an owner recorded it
                self._pack_size[record.pack_id] = record.size
            if trusted:
                self._trusted_size.add(record.pack_id)
                self._claimed_sizes.pop(record.pack_id, None)
            elif record.pack_id not in self._trusted_size:
                self._claimed_sizes.setdefault(record.pack_id, set()).add(record.size)
            items = [(e.blob_id, e.offset, e.length, e.btype) for e in record.entries]
            table = self._blobs if trusted else self._other
            skipped: list[tuple[bytes, int, int, int]] = []
            table.add_many(number, items, skipped)
            for blob_id, offset, length, btype in skipped:
                here = (number, offset, length, btype)
                if table.get(blob_id) != here and here not in self._extra.get(blob_id, ()):
                    self._extra.setdefault(blob_id, []).append(here)
                if trusted and table.get(blob_id) != here:
                    self._trusted_extra.add((blob_id, number, offset))

    def _location(self, found: tuple[int, int, int, int]) -> Location:
        number, offset, length, btype = found
        return Location(self._packs[number], offset, length, btype)

    def lookup(self, blob_id: bytes) -> Location | None:
        found = self._blobs.get(blob_id) or self._other.get(blob_id)
        if found is not None and found[0] in self._condemned:
            return self.locations(blob_id)[0]
        return None if found is None else self._location(found)

    def locations(self, blob_id: bytes) -> list[Location]:
        """Every known copy of a blob: uncondemned before condemned, and
        within each, copies a trusted listing names first (a reader falls
        back to the next when one fails to verify)."""
        main = self._blobs.get(blob_id)
        found = [main, self._other.get(blob_id)]
        found.extend(self._extra.get(blob_id, ()))
        copies = [f for f in found if f is not None]
        if self._condemned or len(copies) > 2:

            def rank(f: tuple[int, int, int, int]) -> tuple[bool, bool]:
                trusted = f == main or (blob_id, f[0], f[1]) in self._trusted_extra
                return (f[0] in self._condemned, not trusted)

            copies.sort(key=rank)
        return [self._location(f) for f in copies]

    def condemn(self, pack_ids: Iterable[bytes]) -> None:
        """Packs a prune has marked for deletion: still read, never deduped
        against (a writer that reused them would lose its data)."""
        with self._lock:
            for pack_id in pack_ids:
                number = self._pack_no.get(pack_id)
                if number is None:
                    number = len(self._packs)
                    self._packs.append(pack_id)
                    self._pack_no[pack_id] = number
                self._condemned.add(number)

    def is_condemned(self, pack_id: bytes) -> bool:
        number = self._pack_no.get(pack_id)
        return number is not None and number in self._condemned

    def __contains__(self, blob_id: bytes) -> bool:
        """Whether a trusted copy in a pack no prune condemned exists (the
        dedup question)."""
        found = self._blobs.get(blob_id)
        if found is None:
            return False
        if not self._condemned or found[0] not in self._condemned:
            return True
        return any(
            (blob_id, number, offset) in self._trusted_extra and number not in self._condemned
            for number, offset, _, _ in self._extra.get(blob_id, ())
        )

    def has_all(self, blob_ids: list[bytes]) -> bool:
        if not self._condemned:
            return self._blobs.has_all(blob_ids)
        return all(blob_id in self for blob_id in blob_ids)

    def knows(self, blob_id: bytes) -> bool:
        """Whether any copy, trusted or not, is indexed."""
        return blob_id in self._blobs or blob_id in self._other

    def __len__(self) -> int:
        return len(self._blobs) + len(self._other)

    def blob_ids(self) -> Iterator[bytes]:
        yield from self._blobs.ids()
        for blob_id in self._other.ids():
            if blob_id not in self._blobs:
                yield blob_id

    def size_fits(self, pack_id: bytes, size: int) -> bool:
        """Whether a stored size agrees with the index: with the trusted
        listing's size, or, for a pack only untrusted files list, with any
        of theirs (one leaked writer key's wrong size must not make the
        honest writer's pack look damaged)."""
        claims = self._claimed_sizes.get(pack_id)
        if claims is not None:
            return size in claims
        return self._pack_size.get(pack_id) == size

    def packs(self) -> Iterator[tuple[bytes, int]]:
        with self._lock:
            items = list(self._pack_size.items())
        yield from items
