"""What a new manifest names in ``after``: the target's snapshots its
writer saw in the store when it saved it (see :mod:`.order`).

A key that reads the target names each writer's newest snapshot (and its
newest that is not a rewrite): chains link the rest. A put-only writer
cannot read manifests, only object names; it names the snapshots new since
its previous snapshot, remembering what it listed in the cache
(``observed-<target id>-<key id>``; lost, it names everything it lists
once, at most :data:`~neostore.format.manifest.AFTER_LIMIT`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..backend.names import ObjectType
from ..core.localstate import cache_dir
from ..core.repository import Repository
from ..errors import NeostoreError
from ..format.manifest import AFTER_LIMIT
from ..format.shares import is_hex64
from ..format.targets import TargetRecord
from .info import SnapshotInfo


def newest_per_writer(readable: list[SnapshotInfo]) -> list[bytes]:
    """The ``after`` list of a key that reads the target."""
    newest: dict[tuple[bytes, str], SnapshotInfo] = {}
    for info in readable:
        m = info.manifest
        kinds = ["any", "fresh"] if m.rewritten_ns is None else ["any"]
        for key in [(m.writer_id, kind) for kind in kinds]:
            best = newest.get(key)
            if best is None or best.manifest.seq < m.seq:
                newest[key] = info
    return sorted({info.snapshot_id for info in newest.values()})


class Observer:
    """The ``after`` list of a put-only writer's next manifest, and what to
    remember once that manifest is saved."""

    def __init__(self, repo: Repository, record: TargetRecord) -> None:
        key_id = repo.material.key_id.hex()
        self._path = (
            cache_dir() / repo.repo_id.hex() / f"observed-{record.target_id.hex()}-{key_id}.json"
        )
        try:
            leaves = repo.objects.list_group(ObjectType.SNAPSHOTS, record.name)
        except NeostoreError:
            leaves = {}  # not allowed to list: the manifest names none
        self.present = {bytes.fromhex(leaf) for leaf in leaves if is_hex64(leaf)}

    def after(self) -> list[bytes]:
        return sorted(self.present - self._previous())[:AFTER_LIMIT]

    def saved(self, snapshot_id: bytes) -> None:
        """Remember what was listed, and the snapshot just saved (if the
        cache cannot be written, the next manifest names more)."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(sorted(s.hex() for s in self.present | {snapshot_id})))
            os.replace(tmp, self._path)
        except OSError:
            pass

    def _previous(self) -> set[bytes]:
        try:
            return {bytes.fromhex(s) for s in json.loads(Path(self._path).read_text())}
        except (OSError, ValueError, TypeError):
            return set()
