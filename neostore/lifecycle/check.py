"""``check``: verify the repository's structure and, optionally, its data.

Reports every problem found rather than stopping at the first. Tampering
(snapshots hidden, rolled back or put back after being forgotten, a
replaced record) is kept apart from damage in :attr:`CheckResult.tampering`.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..backend.names import ObjectType
from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound, TamperingDetected, UsageError
from ..format import crypto, pack
from ..format.blob import Ref, decrypt_blob
from ..format.targets import DATA, TREE
from ..format.tree import DIR, FILE
from ..progress import Reporter
from ..snapshots.catalog import list_snapshots
from ..snapshots.chains import verify_chains


@dataclass
class CheckResult:
    #: damaged or missing objects and anything else that makes a snapshot unsafe to trust
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: evidence of tampering (some also in ``errors`` when a snapshot is affected)
    tampering: list[str] = field(default_factory=list)
    snapshots: int = 0
    trees: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.tampering


@dataclass(frozen=True)
class LastCheck:
    """What the last check of a repository on this machine found."""

    time_ns: int
    ok: bool
    errors: int
    warnings: int
    tampering: int
    snapshots: int
    #: blobs read and verified too (``--read-data`` or a subset of packs)
    read_data: bool


def last_check(repo: Repository) -> LastCheck | None:
    """None when this machine never checked the repository."""
    found = localstate.last_check(repo.config.repo_id)
    try:
        return None if found is None else LastCheck(**found)
    except TypeError:  # written by another version: as if never checked
        return None


_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Subset:
    """Which packs ``--read-data`` reads: all, part N of M (by pack id, so
    that M runs with N = 1…M read every pack once), or a random X %."""

    part: int = 1
    parts: int = 1
    percent: float | None = None

    @classmethod
    def parse(cls, spec: str) -> Subset:
        text = spec.strip()
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if 0 < percent <= 100:
                    return cls(percent=percent)
            else:
                part, _, parts = text.partition("/")
                if 1 <= int(part) <= int(parts):
                    return cls(int(part), int(parts))
        except ValueError:
            pass
        raise UsageError(
            f"{spec!r}: give N/M (1 ≤ N ≤ M) or X% (0 < X ≤ 100)", option="read_data_subset"
        )

    def select(self, names: list[str]) -> list[str]:
        if self.percent is not None:
            count = max(1, math.ceil(len(names) * self.percent / 100)) if names else 0
            return sorted(random.sample(names, count))
        # a stray name that is no pack id is read (and reported) with part 1
        return [
            n
            for n in names
            if (int(n[:16], 16) % self.parts if _HEX64.fullmatch(n) else 0) == self.part - 1
        ]


class Checker:
    def __init__(self, repo: Repository, reporter: Reporter | None = None) -> None:
        self.repo = repo
        self.reporter = reporter or Reporter()
        self.result = CheckResult()
        # blob_id -> (type, ref): what the snapshots reference
        self.referenced: dict[bytes, tuple[int, Ref]] = {}
        self._reloaded: set[str] = set()

    def _error(self, message: str) -> None:
        self.result.errors.append(message)
        self.reporter.error(None, message)

    def _problem(self, error: NeostoreError) -> None:
        """A problem met while listing: tampering, damage, or (neither,
        e.g. a leftover of an interrupted forget) a warning."""
        if isinstance(error, TamperingDetected):
            self.result.tampering.append(str(error))
            self.reporter.error(None, str(error))
        elif isinstance(error, IntegrityError | NotFound):
            self._error(str(error))
        else:
            self.result.warnings.append(str(error))

    def run(self, read_data: bool = False, subset: Subset | None = None) -> CheckResult:
        """``subset``: read only those packs (implies reading data)."""
        self.reporter.start("check")
        on_problem, self.repo.on_problem = self.repo.on_problem, self._problem
        try:
            self.repo.load_index(on_error=lambda e: self._error(str(e)))
            self._check_packs_present()
            self._check_temporaries()
            self._check_snapshots()
            if read_data or subset is not None:
                self._read_data(subset or Subset())
        finally:
            self.repo.on_problem = on_problem
        self.reporter.finish()
        self._record(read_data or subset is not None)
        return self.result

    def _record(self, read_data: bool) -> None:
        """Kept on this machine for status displays (:func:`last_check`)."""
        result = self.result
        localstate.record_check(
            self.repo.config.repo_id,
            {
                "time_ns": time.time_ns(),
                "ok": result.ok,
                "errors": len(result.errors),
                "warnings": len(result.warnings),
                "tampering": len(result.tampering),
                "snapshots": result.snapshots,
                "read_data": read_data,
            },
        )

    def _check_packs_present(self) -> None:
        stored = self.repo.objects.list(ObjectType.DATA)
        indexed = dict(self.repo.index.packs())
        self.result.packs = len(stored)
        for pack_id, size in indexed.items():
            name = pack_id.hex()
            if name not in stored:
                self._error(f"pack {name}: listed in the index but missing from the repository")
            elif not self.repo.index.size_fits(pack_id, stored[name]):
                self._error(f"pack {name}: size {stored[name]} differs from the index ({size})")
        known = {p.hex() for p in indexed}
        for name in stored:
            if name not in known:
                self.result.warnings.append(
                    f"pack {name}: not in any index "
                    "(left by an interrupted snapshot; prune removes it)"
                )

    def _check_temporaries(self) -> None:
        found = self.repo.objects.temporaries()
        if found:
            oldest = min(found.values())
            self.result.warnings.append(
                f"{len(found)} temporary file(s) left by interrupted writes (e.g. "
                f"{min(found)}; the oldest last written {_ago(oldest)}); prune removes "
                "them once older than its grace period"
            )

    def _check_snapshots(self) -> None:
        for target in self.repo.target_names():
            try:
                record = self.repo.target(target)
                snapshots = list_snapshots(self.repo, target, on_error=self._problem)
            except NeostoreError as e:
                self._problem(e)
                continue
            for problem in verify_chains(self.repo, record, snapshots):
                self._problem(problem)
            for info in snapshots:
                self.result.snapshots += 1
                where = f"snapshot {info.hex_id[:12]} ({target})"
                self._walk(info.manifest.root, where, b"")

    def _note(self, btype: int, refs: Sequence[Ref], where: str, path: bytes) -> bool:
        ok = True
        for ref in refs:
            if ref.blob_id in self.referenced:
                continue
            self.referenced[ref.blob_id] = (btype, ref)
            if not self.repo.index.knows(ref.blob_id) and where not in self._reloaded:
                # a snapshot saved since the index was loaded names packs
                # indexed since: look again, once per snapshot
                self._reloaded.add(where)
                self.repo.load_index(on_error=lambda e: self._error(str(e)))
            if not self.repo.index.knows(ref.blob_id):
                shown = path.decode("utf-8", "backslashreplace") or "/"
                self._error(f"{where}: {shown}: blob {ref.blob_id.hex()} is missing")
                ok = False
        return ok

    def _walk(self, refs: Sequence[Ref], where: str, path: bytes) -> None:
        stack: list[tuple[Sequence[Ref], bytes]] = [(refs, path)]
        seen_trees: set[tuple[bytes, ...]] = set()
        while stack:
            tree_refs, tree_path = stack.pop()
            key = tuple(r.blob_id for r in tree_refs)
            if key in seen_trees or not self._note(TREE, tree_refs, where, tree_path):
                continue
            seen_trees.add(key)
            try:
                nodes = self.repo.blobs.load_tree(tree_refs)
            except NeostoreError as e:
                self._error(f"{where}: {tree_path.decode('utf-8', 'backslashreplace') or '/'}: {e}")
                continue
            self.result.trees += 1
            for node in nodes:
                child = tree_path + b"/" + node.name
                if node.type == FILE:
                    self._note(DATA, node.content, where, child)
                elif node.type == DIR:
                    stack.append((node.subtree, child))

    def _iter_packs(self, names: list[str]) -> Iterator[tuple[str, bytes]]:
        for name in names:
            try:
                yield name, self.repo.objects.load(objects.pack(name))
            except NeostoreError as e:
                self._error(f"pack {name}: cannot be read: {e}")

    def _read_data(self, subset: Subset) -> None:
        repo = self.repo
        sizes = repo.objects.list(ObjectType.DATA)
        chosen = subset.select(sorted(sizes))
        self.result.packs_read = len(chosen)
        self.reporter.start("read-data", sum(sizes[n] for n in chosen))
        for name, data in self._iter_packs(chosen):
            self.reporter.advance(len(data))
            if crypto.object_hash(data).hex() != name:
                self._error(f"pack {name}: content does not match its name (corrupt or tampered)")
            try:
                length = pack.header_length(data[-4:], len(data), f"pack {name}")
                opened = pack.open_header(
                    data[-4 - length : -4],
                    what=f"pack {name}",
                    repo_id=repo.repo_id,
                    owner_vk=repo.material.owner_vk,
                    domain_for=repo.domain_for,
                )
            except IntegrityError as e:
                self._error(str(e))
                opened = None
            if opened is not None:
                _envelope, entries, blobs_hash = opened
                region_end = len(data) - 4 - length
                if crypto.object_hash(data[:region_end]) != blobs_hash:
                    self._error(f"pack {name}: blob region does not match the signed header")
                for entry in entries:
                    self._check_entry(name, data, entry)
            else:
                self._check_by_index(name, data)

    def _check_by_index(self, name: str, data: bytes) -> None:
        """When the header is unusable, still test every blob the index places here."""
        for blob_id, (btype, _ref) in self.referenced.items():
            for location in self.repo.index.locations(blob_id):
                if location.pack_id.hex() == name:
                    entry = pack.PackEntry(btype, blob_id, location.offset, location.length)
                    self._check_entry(name, data, entry)

    def _check_entry(self, name: str, data: bytes, entry: pack.PackEntry) -> None:
        found = self.referenced.get(entry.blob_id)
        if found is None:
            return  # unreferenced: nothing to decrypt it with; prune's business
        btype, ref = found
        stored = data[entry.offset : entry.offset + entry.length]
        try:
            if btype != entry.btype:
                raise IntegrityError(f"blob {entry.blob_id.hex()}: type differs from its reference")
            decrypt_blob(self.repo.repo_id, btype, ref, stored)
            self.result.blobs_checked += 1
        except IntegrityError as e:
            self._error(f"pack {name}: {e}")


def _ago(ns: int) -> str:
    hours = max(0, time.time_ns() - ns) / 3.6e12
    return f"{hours:.1f} hours ago" if hours < 48 else f"{hours / 24:.0f} days ago"
