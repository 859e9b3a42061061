"""What interrupted work leaves in the store, for prune to remove:

* snapshot objects an owner's forget record names (a ``forget`` killed
  between its record and its deletes, or an object put back since): never
  listed; removing them completes the forget;
* temporary files of writes that never finished (a process killed while
  writing to a local or mounted store): invisible to listings; removed
  once older than prune's grace period (a younger one may be a write in
  progress).
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


def old_temporaries(repo: Repository, grace_ns: int, now: int) -> list[str]:
    """Temporary files not written to for ``grace_ns``."""
    return sorted(p for p, mtime in repo.objects.temporaries().items() if now - mtime >= grace_ns)


def remove_temporaries(repo: Repository, paths: list[str]) -> int:
    repo.require_owner("removing temporary files")
    for path in paths:
        repo.objects.remove_temporary(path)
    return len(paths)
