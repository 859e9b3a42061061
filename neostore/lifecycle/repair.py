"""``repair index``: rebuild the index from the packs' own signed headers.

For a repository whose index files are lost, corrupt, or name packs that are
gone. Every pack header is read and verified; the owner writes new index
files for the packs whose header verifies (a delegated writer's packs in
files marked ``untrusted``, so the rebuild promotes nobody's blobs to owner
trust), and only then deletes the old index files. Prune's marks (index
files that condemn packs) are kept. Interrupted at any point, the
repository has the old index, the new one, or both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..backend.names import ObjectType
from ..core import objects
from ..core.repository import Repository
from ..errors import NeostoreError
from ..format.indexfile import PackRecord, condemned_by, encode_index

PACKS_PER_FILE = 2000


@dataclass
class RepairStats:
    packs: int = 0
    packs_indexed: int = 0
    index_files_written: int = 0
    index_files_removed: int = 0
    marks_kept: int = 0
    problems: list[str] = field(default_factory=list)


#: (domain id, epoch, target id, written by an owner key) of a pack
_Group = tuple[bytes, int, bytes, bool]


def repair_index(repo: Repository, dry_run: bool = False) -> RepairStats:
    repo.require_owner("repairing the index")
    stats = RepairStats()
    old = list(repo.objects.list(ObjectType.INDEX))
    marks = _marks(repo, old)
    stats.marks_kept = len(marks)
    groups = _read_headers(repo, stats)
    if dry_run:  # what a real run would write and remove
        stats.index_files_written = sum(
            -(-len(records) // PACKS_PER_FILE) for records in groups.values()
        )
        stats.index_files_removed = len(set(old) - marks)
        return stats
    written = _write(repo, groups, stats)
    for name in old:
        if name in marks or name in written:
            continue
        try:
            repo.objects.remove(objects.index_file(name))
            stats.index_files_removed += 1
        except NeostoreError as e:
            stats.problems.append(f"index file {name}: not removed: {e}")
    return stats


def _marks(repo: Repository, names: list[str]) -> set[str]:
    """The index files that hold prune's marks (kept as they are)."""
    marks: set[str] = set()
    for name in names:
        try:
            decoded = repo.read_index_file(name)
        except NeostoreError:
            continue  # unreadable: replaced by the rebuild
        if decoded is not None and condemned_by(decoded[0]):
            marks.add(name)
    return marks


def _read_headers(repo: Repository, stats: RepairStats) -> dict[_Group, list[PackRecord]]:
    """Every pack whose signed header verifies, grouped by where it belongs."""
    groups: dict[_Group, list[PackRecord]] = defaultdict(list)
    for name, size in repo.objects.list(ObjectType.DATA).items():
        stats.packs += 1
        if len(name) != 64 or name.strip("0123456789abcdef"):
            stats.problems.append(f"data/{name}: not a pack name, ignored")
            continue
        try:
            envelope, entries, _ = repo.pack_header(name, size)
        except (NeostoreError, ValueError) as e:
            stats.problems.append(f"pack {name}: header unreadable, left out of the index: {e}")
            continue
        target_id = envelope.body["target_id"]
        assert isinstance(target_id, bytes)
        key = (envelope.domain_id, envelope.epoch, target_id, envelope.by_owner)
        groups[key].append(PackRecord(bytes.fromhex(name), size, entries))
        stats.packs_indexed += 1
    return groups


def _write(
    repo: Repository, groups: dict[_Group, list[PackRecord]], stats: RepairStats
) -> set[str]:
    """New index files for the groups (a delegated writer's packs as
    untrusted); returns their names."""
    written: set[str] = set()
    for (domain_id, epoch, target_id, by_owner), records in groups.items():
        domain = repo.domain_for(domain_id, epoch)
        assert domain is not None  # its header opened
        for start in range(0, len(records), PACKS_PER_FILE):
            index_id, data = encode_index(
                records[start : start + PACKS_PER_FILE],
                repo_id=repo.repo_id,
                domain=domain,
                target_id=target_id,
                writer=repo.writer,
                untrusted=not by_owner,
            )
            repo.objects.save(objects.index_file(index_id), data)
            written.add(index_id.hex())
            stats.index_files_written += 1
    return written
