"""What a mount shows above the snapshots' own trees.

::

    /<target>/ids/<8-hex id>/…                  the snapshot's root
    /<target>/snapshots/<YYYY-MM-DDTHH:MM:SS>/…  the same, by time (local);
                                                 "-2", "-3" … when a second is shared
    /<target>/tags/<tag>/<YYYY-MM-DDTHH:MM:SS>/…
    /<target>/latest -> snapshots/<newest>

A target's snapshots are listed again (chains verified, as ``snapshots``
does) when one of its folders is read and the last listing is older than
``refresh`` seconds; a snapshot forgotten meanwhile is gone from that
moment.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from ..core.repository import Repository
from ..errors import NeostoreError
from ..snapshots.chains import list_verified
from ..snapshots.info import SnapshotInfo


def stamp(info: SnapshotInfo) -> str:
    ns = info.effective_ns if info.effective_ns is not None else info.manifest.time_ns
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ns / 1e9))


@dataclass
class TargetView:
    """The snapshots of one target, by the names the mount shows."""

    by_id: dict[str, SnapshotInfo] = field(default_factory=dict)
    by_time: dict[str, SnapshotInfo] = field(default_factory=dict)
    by_tag: dict[str, dict[str, SnapshotInfo]] = field(default_factory=dict)
    latest: str | None = None
    listed: float = 0.0

    @classmethod
    def of(cls, infos: list[SnapshotInfo]) -> TargetView:
        view = cls(listed=time.monotonic())
        seen: Counter[str] = Counter()
        for info in infos:  # oldest first
            short = info.hex_id[:8]
            view.by_id[short if short not in view.by_id else info.hex_id] = info
            name = stamp(info)
            seen[name] += 1
            name = name if seen[name] == 1 else f"{name}-{seen[name]}"
            view.by_time[name] = info
            for tag in info.manifest.tags:
                view.by_tag.setdefault(tag, {})[name] = info
            view.latest = name
        return view


class Layout:
    """The targets a key can read and their snapshots, listed lazily."""

    def __init__(self, repo: Repository, target: str | None, refresh: float = 5.0) -> None:
        self._repo = repo
        self._only = target
        self._refresh = refresh
        self._lock = threading.Lock()
        self._views: dict[str, TargetView] = {}
        self._names: list[str] | None = None

    def targets(self) -> list[str]:
        with self._lock:
            return list(self._shown())

    def _shown(self) -> list[str]:
        """(Under the lock.)"""
        if self._names is None:
            self._names = [self._only] if self._only else self._repo.target_names()
        return self._names

    def view(self, target: str) -> TargetView | None:
        """The target's snapshots, listed again when the last listing is
        older than the refresh interval; None for a target not shown."""
        with self._lock:
            if target not in self._shown():
                return None
            view = self._views.get(target)
            if view is None or time.monotonic() - view.listed > self._refresh:
                try:
                    fresh = TargetView.of(list_verified(self._repo, target).snapshots)
                    known = {i.snapshot_id for i in view.by_id.values()} if view else set()
                    if any(i.snapshot_id not in known for i in fresh.by_id.values()):
                        self._repo.load_index()  # the new snapshots' packs
                    view = fresh
                except NeostoreError:
                    if view is None:
                        raise
                    view.listed = time.monotonic()  # keep what was shown; try later
                self._views[target] = view
            return view
