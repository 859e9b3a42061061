"""The order of a target's snapshots: oldest first, ``latest`` last.

Claimed times are the writer's word, and a writer's clock can be wrong (or
a leaked key can lie on purpose): a snapshot dated 2036 must not stay
``latest`` for ever. What a claim cannot fake is what existed before it:

* **chains**: a writer numbers its snapshots (``seq``), so each of its
  snapshots follows its earlier ones (a manifest that rewrote an older
  snapshot — tag, repair, copy — keeps that snapshot's place instead, and
  only says when it was written: ``made_ns``);
* **``after``**: a new manifest names the snapshots of the target it saw
  in the store when it was saved (the ones new since its writer's previous
  snapshot, or for a key that reads them, each writer's newest); ids are
  hashes of sealed objects, so nobody can name a snapshot made later;
* **first sight**: a snapshot whose claimed time was more than
  :data:`FUTURE_SLACK_NS` ahead of this machine's clock when it first
  listed it counts as made when first seen (remembered in local state).

Each snapshot's *effective time* is its claimed time, capped by now, by
its first sight, and by the effective time of every snapshot known to
follow it. Snapshots are then ordered by effective time without ever
putting one before a snapshot it follows. A machine that first sees a
future-dated snapshot later reaches the same order through the ``after``
and chain links, which every machine reads alike.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections import defaultdict
from collections.abc import Callable

from .info import SnapshotInfo

#: how far ahead of this machine's clock a claimed time may be
FUTURE_SLACK_NS = 10 * 60 * 1_000_000_000


def chain_order(
    snapshots: list[SnapshotInfo], now: int | None = None, *, chains: bool = True
) -> list[SnapshotInfo]:
    """Oldest first, each with its ``effective_ns`` set. ``chains=False``
    for a share key, which cannot check the writer and seq it is told."""
    now = time.time_ns() if now is None else now
    by_id = {info.snapshot_id: info for info in snapshots}
    follows = _links(snapshots, by_id, chains)
    effective = _effective(_own_bounds(snapshots, now, chains), follows)

    def key(info: SnapshotInfo) -> Key:
        # on a tie a replacement follows what it replaced (and a later
        # replacement an earlier one); then the writer's seq decides
        m = info.manifest
        return (effective[info.snapshot_id], min(m.rewritten_ns or 0, now), m.seq, info.snapshot_id)

    ordered = _topological(snapshots, follows, key)
    return [dataclasses.replace(i, effective_ns=effective[i.snapshot_id]) for i in ordered]


def _own_bounds(snapshots: list[SnapshotInfo], now: int, chains: bool) -> dict[bytes, int]:
    """Each snapshot's claimed time, capped by now, its first sight, and
    when each later manifest of its writer was made."""
    out: dict[bytes, int] = {}
    for chain in _chains(snapshots).values() if chains else [[i] for i in snapshots]:
        bound = now
        for info in reversed(chain):
            pinned = info.pinned_ns if info.pinned_ns is not None else now
            out[info.snapshot_id] = min(bound, pinned, info.manifest.time_ns)
            bound = min(bound, info.manifest.made_ns)
    return out


def _chains(snapshots: list[SnapshotInfo]) -> dict[bytes, list[SnapshotInfo]]:
    chains: dict[bytes, list[SnapshotInfo]] = defaultdict(list)
    for info in snapshots:
        chains[info.manifest.writer_id].append(info)
    for chain in chains.values():
        chain.sort(key=lambda i: i.manifest.seq)
    return chains


def _links(
    snapshots: list[SnapshotInfo], by_id: dict[bytes, SnapshotInfo], chains: bool
) -> dict[bytes, set[bytes]]:
    """snapshot id -> ids of the snapshots it is known to follow."""
    follows: dict[bytes, set[bytes]] = defaultdict(set)
    for chain in _chains(snapshots).values() if chains else []:
        last: SnapshotInfo | None = None
        last_fresh: SnapshotInfo | None = None
        for info in chain:
            if info.manifest.rewritten_ns is None:  # a rewrite keeps its original's place
                for earlier in (last, last_fresh):
                    if earlier is not None and earlier.manifest.seq < info.manifest.seq:
                        follows[info.snapshot_id].add(earlier.snapshot_id)
                last_fresh = info
            last = info
    for info in snapshots:
        for seen in info.manifest.after:
            if seen in by_id and seen != info.snapshot_id:
                follows[info.snapshot_id].add(seen)
    return follows


def _effective(own: dict[bytes, int], follows: dict[bytes, set[bytes]]) -> dict[bytes, int]:
    """min(own bound, effective time of every snapshot that follows it):
    taking snapshots by rising bound, each one not yet reached passes its
    bound back to everything it follows, transitively (cycles, which only
    a lying writer can make, are harmless)."""
    effective: dict[bytes, int] = {}
    for start in sorted(own, key=lambda s: own[s]):
        if start in effective:
            continue
        effective[start] = own[start]
        stack = [start]
        while stack:
            for earlier in follows.get(stack.pop(), ()):
                if earlier not in effective:
                    effective[earlier] = own[start]
                    stack.append(earlier)
    return effective


Key = tuple[int, int, int, bytes]


def _topological(
    snapshots: list[SnapshotInfo],
    follows: dict[bytes, set[bytes]],
    key: Callable[[SnapshotInfo], Key],
) -> list[SnapshotInfo]:
    """By ``key``, but never one before a snapshot it follows (a cycle is
    broken at its smallest key)."""
    by_id = {info.snapshot_id: info for info in snapshots}
    waiting = {sid: len(follows.get(sid, ())) for sid in by_id}
    followers: dict[bytes, list[bytes]] = defaultdict(list)
    for later, earlier_ids in follows.items():
        for earlier in earlier_ids:
            followers[earlier].append(later)
    ready = [(key(by_id[s]), s) for s, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[SnapshotInfo] = []
    done: set[bytes] = set()
    while len(out) < len(by_id):
        if not ready:
            stuck = min((s for s in by_id if s not in done), key=lambda s: key(by_id[s]))
            ready.append((key(by_id[stuck]), stuck))
        _, sid = heapq.heappop(ready)
        if sid in done:
            continue
        done.add(sid)
        out.append(by_id[sid])
        for later in followers[sid]:
            waiting[later] -= 1
            if waiting[later] == 0 and later not in done:
                heapq.heappush(ready, (key(by_id[later]), later))
    return out
