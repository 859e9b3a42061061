"""Prune: delete the data no snapshot references, safely beside writers that
run at the same time, on this machine or another.

Two phases (docs/design.md, "Prune"), each run doing both:

* **mark**: packs no snapshot needs (and packs worth repacking, once their
  live blobs were verified and copied into new packs) are *condemned* by an
  owner-signed mark (an index file with a ``condemn`` list). From then on
  every writer reads them but never dedups against them, and a snapshot
  that reused one before the mark appeared copies what it needs out of it
  before it saves its manifest (:mod:`neostore.core.condemned`).
* **sweep**: packs condemned at least a grace period ago are deleted, after
  a fresh look at every snapshot: a pack holding a blob some snapshot still
  needs, with no other copy that is owner-written or verified here, is
  rescued instead.

Write order is the durability rule again: new packs → their index → marks;
and to delete: replacement index files → old index files → packs → marks.
A run killed between any two steps leaves every snapshot restorable.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ..backend.names import ObjectType
from ..core import objects
from ..core.repository import Repository
from ..errors import NeostoreError, TamperingDetected, UsageError
from ..format.indexfile import entries_trusted
from ..progress import Reporter
from .check import Checker
from .leftovers import (
    forgotten_leftovers,
    old_temporaries,
    remove_forgotten_leftovers,
    remove_temporaries,
)
from .packview import PackView, PruneRefused
from .repack import Repacker, write_index

DEFAULT_GRACE_NS = 3600 * 1_000_000_000
DEFAULT_MAX_UNUSED = 5.0


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
    #: snapshot objects an owner's forget record names, still in the store
    forgotten_removed: int = 0
    #: temporary files of interrupted writes older than the grace period
    temporaries_removed: int = 0
    problems: list[str] = field(default_factory=list)


class Pruner:
    def __init__(
        self, repo: Repository, options: PruneOptions, reporter: Reporter | None = None
    ) -> None:
        repo.require_owner("pruning unused data")
        self.repo = repo
        self.options = options
        self.stats = PruneStats()
        #: progress of its phases: the check that finds what is used, the repack
        self.reporter = reporter or Reporter()

    def run(self) -> PruneStats:
        leftovers = forgotten_leftovers(self.repo)
        self.stats.forgotten_removed = sum(len(ids) for ids in leftovers.values())
        stale = old_temporaries(self.repo, self.options.grace_ns, time.time_ns())
        self.stats.temporaries_removed = len(stale)
        if not self.options.dry_run:
            remove_forgotten_leftovers(self.repo, leftovers)
            remove_temporaries(self.repo, stale)
        checker = Checker(self.repo, self.reporter)
        result = checker.run()
        if not result.ok:
            found = result.tampering + result.errors
            refused = TamperingDetected if result.tampering else PruneRefused
            raise refused(
                f"check finds {len(found)} problem(s), so prune changes nothing "
                f"(first: {found[0]}); run 'neostore check' and repair first"
            )
        self.used = checker.referenced
        now = time.time_ns()
        self.view = view = PackView(self.repo)
        stored = self.repo.objects.list(ObjectType.DATA)
        self.stats.packs = len(stored)
        self.stats.bytes = sum(stored.values())
        delete, rescued, done_marks = self._plan_sweep(stored, now)
        # mark decisions, over every pack not condemned (rescued ones are live again)
        live = {
            bytes.fromhex(n)
            for n in stored
            if _is_pack_name(n) and bytes.fromhex(n) not in view.marks
        } | rescued
        condemn, repack = self._plan_marks(live, stored, now)
        if not self.options.dry_run:
            self._sweep(delete, done_marks)
            written = self._repack(repack)
            self._write_marks(condemn + [p for p in repack if p in written])
        self.stats.problems.extend(view.problems)
        return self.stats

    # -- phase 2 decisions: what the sweep deletes -------------------------------

    def _plan_sweep(
        self, stored: dict[str, int], now: int
    ) -> tuple[set[bytes], set[bytes], list[str]]:
        """Packs condemned long enough to delete, those among them a
        snapshot needs again (rescued), and the marks that are then done."""
        marks = self.view.marks
        due = {p for p, t in marks.items() if now - t >= self.options.grace_ns}
        rescued = {p for p in due if p.hex() in stored and self._still_needed(p)}
        delete = {p for p in due - rescued if p.hex() in stored}
        for pack_id in marks:
            if pack_id not in due and pack_id.hex() in stored:
                self.stats.packs_pending += 1
                self.stats.bytes_pending += stored[pack_id.hex()]
        self.stats.packs_rescued = len(rescued)
        self.stats.packs_deleted = len(delete)
        self.stats.bytes_deleted = sum(stored[p.hex()] for p in delete)
        done = [name for name, packs in self.view.mark_files.items() if set(packs) <= due]
        return delete, rescued, done

    def _still_needed(self, pack_id: bytes) -> bool:
        """Whether deleting this condemned pack could lose a blob a snapshot
        needs: some needed blob in it (or claimed to be) has no other copy
        outside condemned packs that is owner-written or that verifies now."""
        entries = self.view.contents(pack_id)
        if entries is None:
            return True  # cannot tell what is in it: keep it
        for entry in entries:
            found = self.used.get(entry.blob_id)
            if found is None:
                continue
            btype, ref = found
            if not self.view.other_copy_ok(btype, ref, pack_id):
                return True
        return False

    # -- phase 1 decisions: what to condemn and what to repack ------------------------

    def _plan_marks(
        self, live: set[bytes], stored: dict[str, int], now: int
    ) -> tuple[list[bytes], list[bytes]]:
        used_bytes = self._choose_keepers(live)
        condemn: list[bytes] = []
        partial: list[tuple[int, bytes]] = []
        for pack_id in live:
            used = used_bytes.get(pack_id, 0)
            if used:
                self.stats.bytes_used += used
                # what repacking would save: the blobs nobody needs (or
                # needs in this copy); headers are the cost of any pack
                listed = self.view.entries(pack_id, listed=True) or []
                estimate = sum(e.length for e in listed) - used
                if estimate > 0:
                    partial.append((estimate, pack_id))
                continue
            born = self.view.pack_time(pack_id)
            if born is None:
                continue
            if now - born < self.options.grace_ns:
                self.stats.packs_young += 1
                continue
            condemn.append(pack_id)
        repack = self._worth_repacking(partial, used_bytes)
        self.stats.packs_condemned = len(condemn) + len(repack)
        self.stats.bytes_condemned = sum(stored[p.hex()] for p in condemn + repack)
        self.stats.packs_repacked = len(repack)
        return condemn, repack

    def _choose_keepers(self, live: set[bytes]) -> dict[bytes, int]:
        """Pick the copy of each needed blob that stays (trusted copies
        first); returns the bytes each live pack holds that are kept."""
        used_bytes: dict[bytes, int] = defaultdict(int)
        self._keeper: dict[bytes, bytes] = {}
        for blob_id in self.used:
            for loc in self.repo.index.locations(blob_id):
                if loc.pack_id in live:
                    used_bytes[loc.pack_id] += loc.length
                    self._keeper[blob_id] = loc.pack_id
                    break  # one copy is enough: the others are unused
        return used_bytes

    def _worth_repacking(
        self, partial: list[tuple[int, bytes]], used_bytes: dict[bytes, int]
    ) -> list[bytes]:
        """The partly used packs to repack, most waste first, until the
        unused space left is within ``max_unused``."""
        unused = sum(u for u, _ in partial)
        limit = self._unused_limit(self.stats.bytes_used)
        repack: list[bytes] = []
        for estimate, pack_id in sorted(partial, reverse=True):
            if unused <= limit:
                break
            unused -= estimate
            # a listing is only an estimate for packs no owner file lists:
            # their signed header confirms the waste (header reads only here)
            signed = self.view.entries(pack_id)
            waste = sum(e.length for e in signed or []) - used_bytes.get(pack_id, 0)
            if signed is None or waste <= 0:
                continue
            repack.append(pack_id)
        self.stats.bytes_unused_left = unused
        return repack

    def _unused_limit(self, used: int) -> float:
        share = self.options.max_unused
        if share is None or share >= 100:
            return float("inf")
        return share / (100 - share) * used

    # -- writing ---------------------------------------------------------------------

    def _sweep(self, delete: set[bytes], done_marks: list[str]) -> None:
        """Replacement index files → old index files → packs → marks."""
        if delete:
            for f in self.view.files:
                if not any(r.pack_id in delete for r in f.records):
                    continue
                keep = [r for r in f.records if r.pack_id not in delete]
                if keep:
                    where = (f.envelope.domain_id, f.envelope.epoch, f.target_id)
                    untrusted = not entries_trusted(f.envelope, b"")
                    write_index(self.repo, where, keep, untrusted=untrusted)
                self.repo.objects.remove(objects.index_file(f.name), missing_ok=True)
                self.stats.index_files_rewritten += 1
            for pack_id in delete:
                self.repo.objects.remove(objects.pack(pack_id), missing_ok=True)
        for name in done_marks:
            self.repo.objects.remove(objects.index_file(name), missing_ok=True)

    def _repack(self, repack: list[bytes]) -> set[bytes]:
        repacker = Repacker(self.repo, self.view, self.used, self._keeper)
        sizes = self.repo.objects.list(ObjectType.DATA)
        self.reporter.start("repack", sum(sizes.get(p.hex(), 0) for p in repack))
        done = repacker.run(repack, lambda p: self.reporter.advance(sizes.get(p.hex(), 0), 1))
        self.reporter.finish()
        counts = repacker.stats
        self.stats.packs_written += counts.packs_written
        self.stats.blobs_repacked += counts.blobs_repacked
        self.stats.bytes_repacked += counts.bytes_repacked
        self.stats.problems.extend(counts.problems)
        return done

    def _write_marks(self, condemn: list[bytes]) -> None:
        by_domain: dict[tuple[bytes, int, bytes], list[bytes]] = defaultdict(list)
        for pack_id in condemn:
            try:
                by_domain[self.view.where(pack_id)].append(pack_id)
            except NeostoreError as e:
                self.stats.problems.append(f"pack {pack_id.hex()}: not condemned: {e}")
        for where, packs in by_domain.items():
            write_index(self.repo, where, [], condemn=packs)


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
        raise UsageError(
            f"{text!r} is not a percentage or 'unlimited'", option="max_unused"
        ) from None
    if not 0 <= share <= 100:
        raise UsageError(f"{text!r} is not between 0% and 100%", option="max_unused")
    return share


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_grace(text: str) -> int:
    """``90s``, ``15m``, ``1h``, ``2d`` or a combination (``1h30m``), in ns."""
    parts = re.findall(r"(\d+)([smhd])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise UsageError(f"{text!r}: use a duration such as 30s, 15m, 1h or 2d", option="grace")
    return sum(int(n) * _SECONDS[u] for n, u in parts) * 1_000_000_000


__all__ = [
    "PruneOptions",
    "PruneRefused",
    "PruneStats",
    "Pruner",
    "parse_grace",
    "parse_max_unused",
]
