"""A snapshot as listed: its id, target and verified manifest."""

from __future__ import annotations

from dataclasses import dataclass

from ..format.manifest import Manifest
from ..format.tree import Node


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: bytes
    target: str
    manifest: Manifest
    #: for a share key: the root listing is the shared folder alone
    shared_root: tuple[Node, ...] | None = None
    #: signed by an owner key's own writer (not a delegated key)
    by_owner: bool = False
    #: when this machine first listed it, if its claimed time was then
    #: in the future (:mod:`.order`)
    pinned_ns: int | None = None
    #: its place in time as :func:`.order.chain_order` worked it out
    effective_ns: int | None = None

    @property
    def owner_tree(self) -> bool:
        """Whether an owner key made its tree: signed by one, and not a
        replacement or copy of a snapshot some other key made."""
        m = self.manifest
        return self.by_owner and (m.rewritten_ns is None or m.privileged)

    @property
    def hex_id(self) -> str:
        return self.snapshot_id.hex()
