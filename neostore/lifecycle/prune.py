"""Prune: delete the data no snapshot references, safely beside writers that
run at the same time, on this machine or another.

Two phases (docs/design.md, "Prune"), each run doing both:

* **mark**: packs no snapshot needs (and packs worth repacking, once their
  live blobs were verified and copied into new packs) are *condemned* by an
  owner-signed mark (an index file with a ``condemn`` list). From then on
  every writer reads them but never dedups against them, and a snapshot
  that reused one before the mark appeared copies what it needs out of it
  before it saves its manifest (:mod:`.archiver`).
* **sweep**: packs condemned at least a grace period ago are deleted, after
  a fresh look at every snapshot: a pack holding a blob some snapshot still
  needs, with no other copy that is owner-written or verified here, is
  rescued instead.

Write order is the durability rule again: new packs → their index → marks;
and to delete: replacement index files → old index files → packs → marks.
A run killed between any two steps leaves every snapshot restorable.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..core.index import PackRecord, condemned_by, encode_index, entries_trusted, index_time
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound
from ..format.blob import Ref, decrypt_blob
from ..format.pack import PackBuilder, PackEntry
from ..format.signed import Envelope
from ..format.targets import Domain
from .check import Checker

DEFAULT_GRACE_NS = 3600 * 1_000_000_000
DEFAULT_MAX_UNUSED = 5.0


class PruneRefused(NeostoreError):
    """The repository has problems ``check`` reports: nothing was changed."""


@dataclass
class PruneOptions:
    #: tolerated unused space, in percent of the repository; None: any
    max_unused: float | None = DEFAULT_MAX_UNUSED
    grace_ns: int = DEFAULT_GRACE_NS
    dry_run: bool = False


@dataclass
class PruneStats:
    packs: int = 0
    bytes: int = 0
    bytes_used: int = 0
    #: sweep: condemned packs past the grace period
    packs_deleted: int = 0
    bytes_deleted: int = 0
    packs_rescued: int = 0
    index_files_rewritten: int = 0
    #: mark: packs condemned by this run (unused ones and repacked ones)
    packs_condemned: int = 0
    bytes_condemned: int = 0
    packs_repacked: int = 0
    blobs_repacked: int = 0
    bytes_repacked: int = 0
    packs_written: int = 0
    #: condemned earlier, still in their grace period
    packs_pending: int = 0
    bytes_pending: int = 0
    #: unreferenced packs too young to condemn (a snapshot may be running)
    packs_young: int = 0
    bytes_unused_left: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _IndexFile:
    name: str
    envelope: Envelope
    records: list[PackRecord]

    @property
    def target_id(self) -> bytes:
        value = self.envelope.body["target_id"]
        assert isinstance(value, bytes)
        return value


class Pruner:
    def __init__(self, repo: Repository, options: PruneOptions) -> None:
        repo.require_owner("pruning unused data")
        self.repo = repo
        self.options = options
        self.stats = PruneStats()

    # -- the run -------------------------------------------------------------

    def run(self) -> PruneStats:
        repo, options = self.repo, self.options
        checker = Checker(repo)
        result = checker.run()
        if not result.ok:
            raise PruneRefused(
                f"check finds {len(result.errors)} problem(s), so prune changes nothing "
                f"(first: {result.errors[0]}); run 'neostore check' and repair first"
            )
        self.used = checker.referenced
        now = time.time_ns()
        files = self._index_files()
        stored = dict(repo.backend.list("data"))
        marks: dict[bytes, int] = {}
        mark_files: dict[str, list[bytes]] = {}
        for f in files:
            condemned = condemned_by(f.envelope)
            if condemned:
                mark_files[f.name] = condemned
                for pack_id in condemned:
                    marks[pack_id] = max(marks.get(pack_id, 0), index_time(f.envelope))
        self._files = files
        self._marks = marks
        self._naming: dict[bytes, list[_IndexFile]] = defaultdict(list)
        #: (pack, blob, offset) as an owner-trusted index file lists them: a
        #: trusted listing of a pack says nothing about what another file
        #: claims is in it
        self._owner_listed: set[tuple[bytes, bytes, int]] = set()
        #: each pack's entries, as its most trusted index file lists them;
        #: packs no owner-trusted file lists are judged by their signed
        #: header instead (:meth:`_entries`)
        self._pack_entries: dict[bytes, list[PackEntry]] = {}
        self._owner_packs: set[bytes] = set()
        self._header_entries: dict[bytes, list[PackEntry] | None] = {}
        #: every listing of each pack, trusted or not (what anyone claims is in it)
        self._listings: dict[bytes, list[list[PackEntry]]] = defaultdict(list)
        for f in files:
            trusted = entries_trusted(f.envelope, repo.material.key_id)
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
        self.stats.packs = len(stored)
        self.stats.bytes = sum(stored.values())

        # sweep decisions: condemned long enough, and still not needed
        due = {p for p, t in marks.items() if now - t >= options.grace_ns}
        rescued = {p for p in due if p.hex() in stored and self._still_needed(p, marks)}
        delete = {p for p in due - rescued if p.hex() in stored}
        for pack_id in marks:
            if pack_id not in due and pack_id.hex() in stored:
                self.stats.packs_pending += 1
                self.stats.bytes_pending += stored[pack_id.hex()]
        self.stats.packs_rescued = len(rescued)
        self.stats.packs_deleted = len(delete)
        self.stats.bytes_deleted = sum(stored[p.hex()] for p in delete)
        done_marks = [name for name, packs in mark_files.items() if set(packs) <= due]

        # mark decisions, over every pack not condemned (rescued ones are live again)
        live = {
            bytes.fromhex(n) for n in stored if _is_pack_name(n) and bytes.fromhex(n) not in marks
        } | rescued
        condemn, repack = self._plan_marks(live, stored, now)

        if options.dry_run:
            return self.stats
        self._sweep(delete, done_marks)
        written = self._repack(repack)
        self._write_marks(condemn + [p for p in repack if p in written])
        return self.stats

    # -- reading what is there ------------------------------------------------

    def _index_files(self) -> list[_IndexFile]:
        names = [n for n, _ in self.repo.backend.list("index")]
        out: list[_IndexFile] = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, decoded in zip(names, pool.map(self._read_index, names), strict=True):
                if decoded is None:
                    raise PruneRefused(f"index file {name}: of a domain this key cannot read")
                out.append(_IndexFile(name, *decoded))
        return out

    def _read_index(self, name: str) -> tuple[Envelope, list[PackRecord]] | None:
        try:
            return self.repo.read_index_file(name)
        except NeostoreError as e:
            raise PruneRefused(f"{e}; run 'neostore repair index' first") from None

    def _entries(self, pack_id: bytes, listed: bool = False) -> list[PackEntry] | None:
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
                self.stats.problems.append(f"pack {pack_id.hex()}: header unreadable, kept: {e}")
                self._header_entries[pack_id] = None
        return self._header_entries[pack_id]

    def _contents(self, pack_id: bytes) -> list[PackEntry] | None:
        """Everything that may be in a pack: its entries (:meth:`_entries`)
        and whatever any listing claims is in it. A claim the header does
        not back can still point at a real copy (a leaked writer key may
        upload a pack whose header leaves out what it holds, and list the
        rest in its index files): deleting or repacking by the header alone
        could lose the last copy. None: the header cannot be read."""
        entries = self._entries(pack_id)
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

    def _still_needed(self, pack_id: bytes, marks: dict[bytes, int]) -> bool:
        """Whether deleting this condemned pack could lose a blob a snapshot
        needs: some needed blob in it (or claimed to be) has no other copy
        outside condemned packs that is owner-written or that verifies now."""
        entries = self._contents(pack_id)
        if entries is None:
            return True  # cannot tell what is in it: keep it
        for entry in entries:
            found = self.used.get(entry.blob_id)
            if found is None:
                continue
            btype, ref = found
            if not self._other_copy_ok(btype, ref, pack_id, marks):
                return True
        return False

    def _other_copy_ok(self, btype: int, ref: Ref, pack_id: bytes, marks: dict[bytes, int]) -> bool:
        copies = [
            loc
            for loc in self.repo.index.locations(ref.blob_id)
            if loc.pack_id != pack_id and loc.pack_id not in marks and loc.btype == btype
        ]
        if any((loc.pack_id, ref.blob_id, loc.offset) in self._owner_listed for loc in copies):
            return True  # written (or copied after verifying) by an owner key
        for loc in copies:
            try:
                self.repo.read_copy(btype, ref, loc)
                return True
            except IntegrityError:
                continue
        return False

    # -- phase 1: what to condemn and what to repack ------------------------------

    def _plan_marks(
        self, live: set[bytes], stored: dict[str, int], now: int
    ) -> tuple[list[bytes], list[bytes]]:
        grace = self.options.grace_ns
        used_bytes: dict[bytes, int] = defaultdict(int)
        #: the copy of each needed blob that stays (trusted copies first)
        self._keeper: dict[bytes, bytes] = {}
        for blob_id in self.used:
            for loc in self.repo.index.locations(blob_id):
                if loc.pack_id in live:
                    used_bytes[loc.pack_id] += loc.length
                    self._keeper[blob_id] = loc.pack_id
                    break  # one copy is enough: the others are unused
        condemn: list[bytes] = []
        partial: list[tuple[int, bytes]] = []
        for pack_id in live:
            used = used_bytes.get(pack_id, 0)
            if used:
                self.stats.bytes_used += used
                # what repacking would save: the blobs nobody needs (or
                # needs in this copy); headers are the cost of any pack
                listed = self._entries(pack_id, listed=True) or []
                estimate = sum(e.length for e in listed) - used
                if estimate > 0:
                    partial.append((estimate, pack_id))
                continue
            born = self._pack_time(pack_id)
            if born is None:
                continue
            if now - born < grace:
                self.stats.packs_young += 1
                continue
            condemn.append(pack_id)
        unused = sum(u for u, _ in partial)
        limit = self._unused_limit(self.stats.bytes_used)
        repack: list[bytes] = []
        for estimate, pack_id in sorted(partial, reverse=True):
            if unused <= limit:
                break
            unused -= estimate
            # a listing is only an estimate for packs no owner file lists:
            # their signed header confirms the waste (header reads only here)
            signed = self._entries(pack_id)
            waste = sum(e.length for e in signed or []) - used_bytes.get(pack_id, 0)
            if signed is None or waste <= 0:
                continue
            repack.append(pack_id)
        self.stats.bytes_unused_left = unused
        self.stats.packs_condemned = len(condemn) + len(repack)
        self.stats.bytes_condemned = sum(stored[p.hex()] for p in condemn + repack)
        self.stats.packs_repacked = len(repack)
        return condemn, repack

    def _unused_limit(self, used: int) -> float:
        share = self.options.max_unused
        if share is None or share >= 100:
            return float("inf")
        return share / (100 - share) * used

    def _pack_time(self, pack_id: bytes) -> int | None:
        """When a pack was written, as signed by its writer: the newest index
        file naming it, or, for a pack no index names (an interrupted or
        running snapshot), its header. None: unreadable, left alone."""
        naming = self._naming.get(pack_id)
        if naming:
            return max(index_time(f.envelope) for f in naming)
        try:
            opened = self.repo.pack_header(pack_id.hex())
        except NeostoreError as e:
            self.stats.problems.append(f"pack {pack_id.hex()}: header unreadable, kept: {e}")
            return None
        value = opened[0].body.get("time", 0)
        return value if isinstance(value, int) else 0

    # -- phase 2: deleting ------------------------------------------------------

    def _sweep(self, delete: set[bytes], done_marks: list[str]) -> None:
        if delete:
            for f in self._files:
                if not any(r.pack_id in delete for r in f.records):
                    continue
                keep = [r for r in f.records if r.pack_id not in delete]
                if keep:
                    self._write_index(
                        f.envelope.domain_id,
                        f.envelope.epoch,
                        f.target_id,
                        keep,
                        untrusted=not entries_trusted(f.envelope, b""),
                    )
                self._remove("index", f.name)
                self.stats.index_files_rewritten += 1
            for pack_id in delete:
                self._remove("data", pack_id.hex())
        for name in done_marks:
            self._remove("index", name)

    def _remove(self, otype: str, name: str) -> None:
        try:
            self.repo.backend.remove(otype, name)
        except NotFound:
            pass  # gone already: an earlier, interrupted prune

    def _write_index(
        self,
        domain_id: bytes,
        epoch: int,
        target_id: bytes,
        records: list[PackRecord],
        *,
        condemn: Iterable[bytes] = (),
        untrusted: bool = False,
    ) -> None:
        domain = self._domain(domain_id, epoch)
        name, data = encode_index(
            records,
            repo_id=self.repo.repo_id,
            domain=domain,
            target_id=target_id,
            writer=self.repo.writer,
            condemn=condemn,
            untrusted=untrusted,
        )
        self.repo.backend.save("index", name.hex(), data)

    def _domain(self, domain_id: bytes, epoch: int) -> Domain:
        domain = self.repo.domain_for(domain_id, epoch)
        if domain is None:
            raise PruneRefused(f"domain {domain_id.hex()[:8]}: no key for it")
        return domain

    # -- phase 1: writing ----------------------------------------------------------

    def _where(self, pack_id: bytes) -> tuple[bytes, int, bytes]:
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

    def _repack(self, repack: list[bytes]) -> set[bytes]:
        """Copy the live blobs of ``repack`` into new packs, each one
        decrypted and checked against its content hash first. Returns the
        packs fully copied (only those may be condemned)."""
        repo = self.repo
        done: set[bytes] = set()
        builders: dict[tuple[bytes, int, bytes, int], PackBuilder] = {}
        written: dict[tuple[bytes, int, bytes], list[PackRecord]] = defaultdict(list)

        def finish(key: tuple[bytes, int, bytes, int]) -> None:
            builder = builders.pop(key)
            domain_id, epoch, target_id, _ = key
            entries = list(builder.entries)
            pack_id, parts = builder.finish(
                repo_id=repo.repo_id,
                domain=self._domain(domain_id, epoch),
                target_id=target_id,
                writer=repo.writer,
            )
            repo.backend.save("data", pack_id.hex(), parts)
            written[(domain_id, epoch, target_id)].append(
                PackRecord(pack_id, builder.size, entries)
            )
            self.stats.packs_written += 1
            self.stats.bytes_repacked += builder.size

        for pack_id in repack:
            where = self._where(pack_id)
            try:
                data = repo.backend.load("data", pack_id.hex())
            except NeostoreError as e:
                self.stats.problems.append(f"pack {pack_id.hex()}: not repacked: {e}")
                continue
            entries = self._contents(pack_id)
            if entries is None:
                continue  # its header went unreadable: not repacked, kept
            ok = True
            copied: set[bytes] = set()
            for entry in entries:
                found = self.used.get(entry.blob_id)
                if (
                    found is None
                    or self._keeper.get(entry.blob_id) != pack_id
                    or entry.blob_id in copied
                ):
                    continue
                btype, ref = found
                stored = data[entry.offset : entry.offset + entry.length]
                try:
                    if entry.btype != btype:
                        raise IntegrityError("type differs from its reference")
                    decrypt_blob(repo.repo_id, btype, ref, stored)
                except IntegrityError as e:
                    if self._other_copy_ok(btype, ref, pack_id, self._marks):
                        continue  # this copy is bad, another is fine
                    self.stats.problems.append(
                        f"pack {pack_id.hex()}: blob {entry.blob_id.hex()} fails to verify "
                        f"and has no good copy elsewhere; pack kept: {e}"
                    )
                    ok = False
                    break
                key = (*where, btype)
                builder = builders.get(key)
                if builder is None:
                    builder = builders[key] = PackBuilder()
                builder.add(btype, entry.blob_id, stored)
                copied.add(entry.blob_id)
                self.stats.blobs_repacked += 1
                if builder.size >= repo.config.pack_size:
                    finish(key)
            if ok:
                done.add(pack_id)
        for key in list(builders):
            finish(key)
        for (domain_id, epoch, target_id), records in written.items():
            self._write_index(domain_id, epoch, target_id, records)
        return done

    def _write_marks(self, condemn: list[bytes]) -> None:
        by_domain: dict[tuple[bytes, int, bytes], list[bytes]] = defaultdict(list)
        for pack_id in condemn:
            try:
                by_domain[self._where(pack_id)].append(pack_id)
            except NeostoreError as e:
                self.stats.problems.append(f"pack {pack_id.hex()}: not condemned: {e}")
        for (domain_id, epoch, target_id), packs in by_domain.items():
            self._write_index(domain_id, epoch, target_id, [], condemn=packs)


def _is_pack_name(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def parse_max_unused(text: str) -> float | None:
    """``5%``, ``5`` or ``unlimited``."""
    value = text.strip().lower()
    if value == "unlimited":
        return None
    number = value[:-1] if value.endswith("%") else value
    try:
        share = float(number)
    except ValueError:
        raise ValueError(f"--max-unused: {text!r} is not a percentage or 'unlimited'") from None
    if not 0 <= share <= 100:
        raise ValueError(f"--max-unused: {text!r} is not between 0% and 100%")
    return share


__all__ = ["PruneOptions", "PruneRefused", "PruneStats", "Pruner", "parse_max_unused"]
