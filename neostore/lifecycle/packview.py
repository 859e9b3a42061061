"""What prune knows about each pack: who lists it, what it holds, when it
was written, and which copies of a blob can be trusted.

Built from every index file, read once. A pack's entries are taken from an
owner-trusted listing, else from the pack's own signed header (an index
file by a leaked writer key may list anything); what *any* listing claims
is in a pack counts too, so that a real copy hidden behind a lying header
is never deleted (docs/design.md, "Prune").
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..backend.names import ObjectType
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError
from ..format.blob import Ref
from ..format.indexfile import PackRecord, condemned_by, entries_trusted, index_time
from ..format.pack import PackEntry
from ..format.signed import Envelope


class PruneRefused(NeostoreError):
    """The repository has problems ``check`` reports: nothing was changed."""


@dataclass
class IndexFile:
    name: str
    envelope: Envelope
    records: list[PackRecord]

    @property
    def target_id(self) -> bytes:
        value = self.envelope.body["target_id"]
        assert isinstance(value, bytes)
        return value


class PackView:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        #: what could not be read and was therefore kept (reported by prune)
        self.problems: list[str] = []
        self.files = self._index_files()
        #: pack -> when an owner's mark condemned it (the newest mark)
        self.marks: dict[bytes, int] = {}
        #: mark files -> the packs they condemn
        self.mark_files: dict[str, list[bytes]] = {}
        self._naming: dict[bytes, list[IndexFile]] = defaultdict(list)
        #: (pack, blob, offset) as an owner-trusted index file lists them: a
        #: trusted listing of a pack says nothing about what another file
        #: claims is in it
        self._owner_listed: set[tuple[bytes, bytes, int]] = set()
        #: each pack's entries, as its most trusted index file lists them;
        #: packs no owner-trusted file lists are judged by their signed
        #: header instead (:meth:`entries`)
        self._pack_entries: dict[bytes, list[PackEntry]] = {}
        self._owner_packs: set[bytes] = set()
        self._header_entries: dict[bytes, list[PackEntry] | None] = {}
        #: every listing of each pack, trusted or not (what anyone claims is in it)
        self._listings: dict[bytes, list[list[PackEntry]]] = defaultdict(list)
        for f in self.files:
            self._note(f)

    def _note(self, f: IndexFile) -> None:
        condemned = condemned_by(f.envelope)
        if condemned:
            self.mark_files[f.name] = condemned
            for pack_id in condemned:
                self.marks[pack_id] = max(self.marks.get(pack_id, 0), index_time(f.envelope))
        trusted = entries_trusted(f.envelope, self.repo.material.key_id)
        for record in f.records:
            self._naming[record.pack_id].append(f)
            self._listings[record.pack_id].append(record.entries)
            if trusted:
                self._owner_packs.add(record.pack_id)
                self._owner_listed.update(
                    (record.pack_id, e.blob_id, e.offset) for e in record.entries
                )
            if trusted or record.pack_id not in self._pack_entries:
                self._pack_entries[record.pack_id] = record.entries

    def _index_files(self) -> list[IndexFile]:
        names = sorted(self.repo.objects.list(ObjectType.INDEX))
        out: list[IndexFile] = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, decoded in zip(names, pool.map(self._read_index, names), strict=True):
                if decoded is None:
                    raise PruneRefused(f"index file {name}: of a domain this key cannot read")
                out.append(IndexFile(name, *decoded))
        return out

    def _read_index(self, name: str) -> tuple[Envelope, list[PackRecord]] | None:
        try:
            return self.repo.read_index_file(name)
        except NeostoreError as e:
            raise PruneRefused(f"{e}; run 'neostore repair index' first") from None

    def naming(self, pack_id: bytes) -> list[IndexFile]:
        """The index files that list a pack."""
        return self._naming.get(pack_id, [])

    def entries(self, pack_id: bytes, listed: bool = False) -> list[PackEntry] | None:
        """A pack's entries: as an owner-trusted index file lists them, else
        as the pack's own signed header says (an untrusted index file may
        list anything, e.g. fake entries that make live blobs look like
        waste). ``listed``: any index file's listing will do (a first,
        cheap estimate). None: the header cannot be read."""
        if listed or pack_id in self._owner_packs:
            return self._pack_entries.get(pack_id, [])
        if pack_id not in self._header_entries:
            try:
                self._header_entries[pack_id] = list(self.repo.pack_header(pack_id.hex())[1])
            except NeostoreError as e:
                self.problems.append(f"pack {pack_id.hex()}: header unreadable, kept: {e}")
                self._header_entries[pack_id] = None
        return self._header_entries[pack_id]

    def contents(self, pack_id: bytes) -> list[PackEntry] | None:
        """Everything that may be in a pack: its entries (:meth:`entries`)
        and whatever any listing claims is in it. A claim the header does
        not back can still point at a real copy (a leaked writer key may
        upload a pack whose header leaves out what it holds, and list the
        rest in its index files): deleting or repacking by the header alone
        could lose the last copy. None: the header cannot be read."""
        entries = self.entries(pack_id)
        if entries is None:
            return None
        seen = {(e.blob_id, e.offset) for e in entries}
        out = list(entries)
        for listing in self._listings.get(pack_id, ()):
            for entry in listing:
                if (entry.blob_id, entry.offset) not in seen:
                    seen.add((entry.blob_id, entry.offset))
                    out.append(entry)
        return out

    def other_copy_ok(self, btype: int, ref: Ref, pack_id: bytes) -> bool:
        """Whether a blob has a good copy outside ``pack_id`` and outside
        condemned packs: one an owner listed (written, or copied after
        verifying, by an owner key), or one that verifies now."""
        copies = [
            loc
            for loc in self.repo.index.locations(ref.blob_id)
            if loc.pack_id != pack_id and loc.pack_id not in self.marks and loc.btype == btype
        ]
        if any((loc.pack_id, ref.blob_id, loc.offset) in self._owner_listed for loc in copies):
            return True
        for loc in copies:
            try:
                self.repo.blobs.read_copy(btype, ref, loc)
                return True
            except IntegrityError:
                continue
        return False

    def pack_time(self, pack_id: bytes) -> int | None:
        """When a pack was written, as signed by its writer: the newest index
        file naming it, or, for a pack no index names (an interrupted or
        running snapshot), its header. None: unreadable, left alone."""
        naming = self._naming.get(pack_id)
        if naming:
            return max(index_time(f.envelope) for f in naming)
        try:
            opened = self.repo.pack_header(pack_id.hex())
        except NeostoreError as e:
            self.problems.append(f"pack {pack_id.hex()}: header unreadable, kept: {e}")
            return None
        value = opened[0].body.get("time", 0)
        return value if isinstance(value, int) else 0

    def where(self, pack_id: bytes) -> tuple[bytes, int, bytes]:
        """(domain_id, epoch, target_id) of a pack, from an index file naming
        it or from its header."""
        naming = self._naming.get(pack_id)
        if naming:
            f = naming[0]
            return f.envelope.domain_id, f.envelope.epoch, f.target_id
        envelope = self.repo.pack_header(pack_id.hex())[0]
        target_id = envelope.body["target_id"]
        assert isinstance(target_id, bytes)
        return envelope.domain_id, envelope.epoch, target_id
