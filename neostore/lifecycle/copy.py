"""``copy``: snapshots from another repository, with other keys.

Blob ids, blob keys and chunk boundaries are all keyed per dedup domain, so
nothing can be copied as stored bytes: a source file's plaintext is read,
cut again with the destination's keyed chunker and stored like a backup
would store it. Chunks the destination already has (from an earlier copy
or from its own backups of the same files) are not uploaded. Trees are
rebuilt with the new refs; every other node field is kept.

The copy map (local cache, like the files cache) remembers, per source
file content (the hash of its chunks' content digests and lengths, which
reading verifies; never blob ids alone, which a leaked source writer key
can reuse for other content), the destination refs it became, so a later
copy of a newer snapshot reads only files whose content changed. An entry
is used only while every blob it names is in the destination's index.
Within one run, a source listing seen before is not read again.

Each copied snapshot is saved as it is finished (packs → index →
manifest), with ``original`` = its source id and ``original_repo`` = the
source repository. A snapshot is skipped when the destination target
holds a copy signed by this key or an owner key (docs/design.md, "Copy").
"""

from __future__ import annotations

import dataclasses
import io
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.condemned import keep_condemned
from ..core.localstate import cache_dir
from ..core.packer import Packer
from ..core.repository import Repository
from ..errors import UsageError
from ..format import crypto
from ..format.blob import Ref, refs_from_records, refs_to_records
from ..format.manifest import Manifest
from ..format.targets import DATA, TREE
from ..format.tree import DIR, FILE, ListingBuilder
from ..progress import Reporter
from ..shares.publish import publish_or_warn
from ..snapshots.catalog import chain_head, list_snapshots, save_snapshot
from ..snapshots.chains import list_verified
from ..snapshots.info import SnapshotInfo
from ..snapshots.lookup import find_snapshot
from ..snapshots.order import chain_order

#: files up to this size are cut in memory (pyfastcdc's stream cutter costs
#: several maximum-size buffers per call)
IN_MEMORY = 64 * 1024 * 1024


@dataclass
class CopyStats:
    snapshots_copied: int = 0
    snapshots_skipped: int = 0
    files: int = 0
    files_known: int = 0  # content found in the copy map: not read again
    bytes_read: int = 0  # plaintext read from the source
    blobs_new: int = 0
    bytes_added: int = 0  # stored bytes uploaded to the destination
    blobs_copied: int = 0  # out of packs a concurrent prune condemned


@dataclass
class Copied:
    source: SnapshotInfo
    target: str
    snapshot_id: bytes | None  # None: skipped, the destination has it


@dataclass
class _Memo:
    trees: dict[tuple[bytes, ...], list[Ref]] = field(default_factory=dict)
    files: dict[bytes, list[Ref]] = field(default_factory=dict)


class CopyMap:
    """Local cache: source content → destination refs, and which source
    snapshots were copied (for destination keys that cannot list them)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS content (src BLOB PRIMARY KEY, refs BLOB) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS copied (target BLOB, src BLOB, dst BLOB,"
            " PRIMARY KEY (target, src)) WITHOUT ROWID"
        )
        self._pending: list[tuple[bytes, bytes]] = []

    def lookup(self, key: bytes) -> list[Ref] | None:
        row = self._db.execute("SELECT refs FROM content WHERE src = ?", (key,)).fetchone()
        return None if row is None else refs_from_records(row[0])

    def store(self, key: bytes, refs: list[Ref]) -> None:
        self._pending.append((key, refs_to_records(refs)))
        if len(self._pending) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO content VALUES (?, ?)", self._pending)
            self._db.execute("COMMIT")
            self._pending = []

    def copied(self, target_id: bytes) -> set[bytes]:
        rows = self._db.execute("SELECT src FROM copied WHERE target = ?", (target_id,))
        return {r[0] for r in rows}

    def record_copy(self, target_id: bytes, src: bytes, dst: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO copied VALUES (?, ?, ?)", (target_id, src, dst))

    def close(self) -> None:
        self.flush()
        self._db.close()


class _Plaintext(io.RawIOBase):
    """A file's plaintext as a stream, pulled from an iterator of pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            try:
                self._left = next(self._pieces)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


class Copier:
    """Copies snapshots of one source target into one destination target."""

    def __init__(
        self, source: Repository, dest: Repository, target: str, reporter: Reporter | None = None
    ) -> None:
        if source.repo_id == dest.repo_id:
            raise UsageError("source and destination are the same repository")
        if source.role == "share":
            raise source.deny("copying snapshots", "a reader, read-write or owner key")
        self.source = source
        self.dest = dest
        self.record = dest.ensure_target(target)
        self.domain = dest.domain(self.record)
        self.writer = dest.writer
        self.stats = CopyStats()
        self.reporter = reporter or Reporter()
        self._memo = _Memo()
        dest.load_index()
        source.load_index()
        name = f"copy-{source.repo_id.hex()}-{self.domain.domain_id.hex()}.sqlite"
        self._map = CopyMap(cache_dir() / dest.repo_id.hex() / name)
        self._packer: Packer | None = None
        #: the destination target's snapshots, listed once (when readable)
        self._existing: list[SnapshotInfo] = []
        self._last: bytes | None = None

    def copied_before(self) -> set[bytes]:
        """Source snapshot ids the destination target holds copies of. Only
        copies this key or an owner key signed count: a leaked writer key
        must not make copy skip a snapshot by claiming to be its copy."""
        if not self.dest.can_read(self.record):
            return self._map.copied(self.record.target_id)
        self._existing = list_snapshots(self.dest, self.record.name, on_error=self.dest.on_problem)
        if self._existing:
            self._last = self._existing[-1].snapshot_id
        return {
            info.manifest.original
            for info in self._existing
            if info.manifest.original_repo == self.source.repo_id
            and info.manifest.original is not None
            and (info.by_owner or info.manifest.writer_id == self.writer.writer_id)
        }

    def run(self, snapshots: list[SnapshotInfo]) -> list[Copied]:
        done: list[Copied] = []
        seen = self.copied_before()
        try:
            for info in snapshots:
                if info.snapshot_id in seen:
                    self.reporter.advance(_size(info), 0)  # counted in the total
                    self.stats.snapshots_skipped += 1
                    done.append(Copied(info, self.record.name, None))
                    continue
                done.append(Copied(info, self.record.name, self._copy(info)))
                seen.add(info.snapshot_id)
        except BaseException:
            if self._packer is not None:
                self._packer.abort()
            raise
        finally:
            self._map.close()
        if self._packer is not None:
            self._packer.close()
            self.stats.blobs_new = self._packer.stats.blobs_new
            self.stats.bytes_added = self._packer.stats.bytes_stored
        return done

    def _copy(self, info: SnapshotInfo) -> bytes:
        if self._packer is None:
            self._packer = Packer(self.dest, self.record, self.domain, self.writer)
        root = self._tree(info.manifest.root)
        self._packer.flush()
        self._map.flush()
        self.stats.blobs_copied += keep_condemned(self.dest, root, self._packer, "copy")
        # this key's chain head: local state follows each save
        seq, prev = chain_head(self.dest, self.record, self._existing)
        m = info.manifest
        manifest = Manifest(
            repo_id=self.dest.repo_id,
            target_id=self.record.target_id,
            writer_id=self.writer.writer_id,
            epoch=self.domain.epoch,
            seq=seq + 1,
            prev=prev,
            time_ns=m.time_ns,
            host=m.host,
            user=m.user,
            paths=list(m.paths),
            tags=list(m.tags),
            parent=self._last,
            root=root,
            stats=dict(m.stats),
            original=info.snapshot_id,
            original_repo=self.source.repo_id,
            rewritten_ns=time.time_ns(),
            lost=list(m.lost),
            privileged=info.owner_tree,
        )
        snapshot_id = save_snapshot(self.dest, self.record, manifest)
        self._map.record_copy(self.record.target_id, info.snapshot_id, snapshot_id)
        self._last = snapshot_id
        saved = SnapshotInfo(snapshot_id, self.record.name, manifest)
        publish_or_warn(self.dest, self.record, self.writer, [saved])
        self.stats.snapshots_copied += 1
        return snapshot_id

    # -- trees and content ----------------------------------------------------------

    def _tree(self, refs: Sequence[Ref]) -> list[Ref]:
        key = tuple(r.digest for r in refs)  # verified when read, unlike ids
        done = self._memo.trees.get(key)
        if done is not None:
            return done
        nodes = self.source.blobs.load_tree(refs)
        listing = ListingBuilder(len(nodes), "copied directory")  # encoded node by node
        for node in nodes:
            if node.type == FILE:
                node.content = self._content(node.content)
            elif node.type == DIR:
                node.subtree = self._tree(node.subtree)
            listing.add(node)
        del nodes
        assert self._packer is not None
        out = self._packer.store_buffer(TREE, listing.finish())
        self._memo.trees[key] = out
        return out

    def _content(self, refs: Sequence[Ref]) -> list[Ref]:
        if not refs:
            return []
        self.stats.files += 1
        self.reporter.advance(sum(r.length for r in refs), 1)
        # content digests and lengths (reading verifies both) and the epoch
        # the refs it maps to belong to
        key = crypto.object_hash(
            self.domain.epoch.to_bytes(8, "little")
            + b"".join(r.digest + r.length.to_bytes(8, "little") for r in refs)
        )
        fresh = self._memo.files.get(key)
        if fresh is not None:  # stored by this run
            self.stats.files_known += 1
            return fresh
        known = self._map.lookup(key)
        if known is not None and self.dest.index.has_all([r.blob_id for r in known]):
            self.stats.files_known += 1
            return known
        assert self._packer is not None
        pieces = self._plaintext(refs)
        if sum(r.length for r in refs) <= IN_MEMORY:  # not the node's claimed size
            out = self._packer.store_buffer(DATA, b"".join(pieces))
        else:
            stream = io.BufferedReader(_Plaintext(pieces), 1 << 20)
            out = self._packer.store_pieces(DATA, self._packer.chunker.cut_stream(stream))
        self._memo.files[key] = out
        self._map.store(key, out)
        return out

    def _plaintext(self, refs: Sequence[Ref]) -> Iterator[bytes]:
        """The source blobs' plaintext, verified, fetched a window at a time."""
        for data in self.source.blobs.stream(DATA, refs):
            self.stats.bytes_read += len(data)
            yield data


@dataclass
class CopyReport:
    copied: list[Copied] = field(default_factory=list)
    stats: CopyStats = field(default_factory=CopyStats)
    #: what is wrong in the source's listing (reported, not copied around)
    problems: list[str] = field(default_factory=list)
    #: tampering the source's listing shows (what verifies is copied all the same)
    tampering: list[str] = field(default_factory=list)


def copy_snapshots(
    source: Repository,
    dest: Repository,
    specs: list[str] | None = None,
    *,
    from_target: str | None = None,
    target: str | None = None,
    on_copied: Callable[[Copied], None] | None = None,
    reporter: Reporter | None = None,
) -> CopyReport:
    """Copy the snapshots named by ``specs`` (default: every readable one,
    of ``from_target``) into ``target`` (default: the source's target of
    each), oldest first. A source listing whose chains do not verify is
    reported in ``tampering``, snapshots that do not verify in ``problems``;
    what does verify is copied all the same."""
    report = CopyReport()
    if specs:
        chosen = [find_snapshot(source, spec, from_target) for spec in specs]
    else:
        listing = list_verified(source, from_target)
        chosen = listing.snapshots
        report.problems = listing.failures
        report.tampering = listing.tampering
    by_dest: dict[str, list[SnapshotInfo]] = {}
    for info in chain_order(chosen):
        by_dest.setdefault(target or info.target, []).append(info)
    progress = reporter or Reporter()
    progress.start("copy", sum(_size(info) for info in chosen))
    for name, infos in by_dest.items():
        copier = Copier(source, dest, name, progress)
        for done in copier.run(infos):
            report.copied.append(done)
            if on_copied is not None:
                on_copied(done)
        for key, value in dataclasses.asdict(copier.stats).items():
            setattr(report.stats, key, getattr(report.stats, key) + value)
    progress.finish()
    return report


def _size(info: SnapshotInfo) -> int:
    """What a snapshot's files hold (its manifest's count; for progress only)."""
    total = info.manifest.stats.get("bytes_total", 0)
    return total if isinstance(total, int) else 0
