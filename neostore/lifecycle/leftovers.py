"""What interrupted work leaves in the store, for prune to remove: snapshot
objects an owner's forget record names (a ``forget`` killed between its
record and its deletes, or an object put back since). They are never
listed; removing them completes the forget.
"""

from __future__ import annotations

from ..backend.names import ObjectType
from ..core import objects
from ..core.repository import Repository
from ..errors import NotFound
from ..format.shares import is_hex64
from ..snapshots.forgotten import forgotten, seen_gone


def forgotten_leftovers(repo: Repository) -> dict[str, list[bytes]]:
    """Forgotten snapshots still in the store, by target."""
    out: dict[str, list[bytes]] = {}
    for name in repo.target_names():
        record = repo.target(name)
        gone = forgotten(repo, record)
        present = [
            bytes.fromhex(leaf)
            for leaf in repo.objects.list_group(ObjectType.SNAPSHOTS, name)
            if is_hex64(leaf)
        ]
        found = [sid for sid in present if sid in gone]
        if found:
            out[name] = found
    return out


def remove_forgotten_leftovers(repo: Repository, leftovers: dict[str, list[bytes]]) -> int:
    """Delete them (owner keys); returns how many went."""
    repo.require_owner("removing forgotten snapshots")
    removed = 0
    for name, snapshot_ids in leftovers.items():
        for snapshot_id in snapshot_ids:
            try:
                repo.objects.remove(objects.snapshot(name, snapshot_id))
                removed += 1
            except NotFound:
                pass
        seen_gone(repo, repo.target(name), snapshot_ids)
    return removed
