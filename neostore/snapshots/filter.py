"""Choosing snapshots by host, tags and paths, and the newest per group
(``snapshots --host/--tag/--path/--latest``), with restic's meanings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from .info import SnapshotInfo


@dataclass(frozen=True)
class SnapshotFilter:
    #: any of these hosts (none given: any host)
    hosts: Sequence[str] = ()
    #: "a,b" wants both a and b; several entries: any one of them
    tags: Sequence[str] = ()
    #: every one of these paths among the snapshot's (as recorded)
    paths: Sequence[str] = ()

    def __bool__(self) -> bool:
        return bool(self.hosts or self.tags or self.paths)

    def matches(self, info: SnapshotInfo) -> bool:
        m = info.manifest
        if self.hosts and m.host not in self.hosts:
            return False
        if self.tags:
            have = set(m.tags)
            wanted = [{t for t in entry.split(",") if t} for entry in self.tags]
            if not any(group <= have for group in wanted):
                return False
        if self.paths:
            recorded = set(m.paths)
            if not all(_recorded(p) in recorded for p in self.paths):
                return False
        return True

    def apply(self, infos: Sequence[SnapshotInfo]) -> list[SnapshotInfo]:
        return [i for i in infos if self.matches(i)]


def _recorded(path: str) -> bytes:
    return os.fsencode(os.path.normpath(os.path.abspath(path)))


def latest(infos: Sequence[SnapshotInfo], count: int) -> list[SnapshotInfo]:
    """The ``count`` newest of each group of the same target, host and
    paths, in the order given (oldest first)."""
    groups: dict[tuple[str, str, tuple[bytes, ...]], list[SnapshotInfo]] = {}
    for info in infos:
        key = (info.target, info.manifest.host, tuple(sorted(info.manifest.paths)))
        groups.setdefault(key, []).append(info)
    kept = {id(i) for group in groups.values() for i in group[-count:]} if count > 0 else set()
    return [i for i in infos if id(i) in kept]
