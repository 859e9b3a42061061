"""The order of snapshots (neostore.snapshots.order) on made-up histories:
what claimed times, chains and ``after`` links decide."""

from __future__ import annotations

from neostore.format.manifest import Manifest
from neostore.snapshots.info import SnapshotInfo
from neostore.snapshots.order import chain_order

NOW = 2_000_000_000 * 10**9
HOUR = 3600 * 10**9


def _snap(
    name: str, writer: str, seq: int, time_ns: int, after: tuple[str, ...] = (), **extra: object
) -> SnapshotInfo:
    manifest = Manifest(
        repo_id=b"r" * 16,
        target_id=b"t" * 16,
        writer_id=writer.encode().ljust(16, b"."),
        epoch=0,
        seq=seq,
        prev=None,
        time_ns=time_ns,
        host="h",
        user="u",
        paths=[b"/"],
        tags=[],
        parent=None,
        root=[],
        after=[_id(a) for a in after],
        **extra,  # type: ignore[arg-type]
    )
    return SnapshotInfo(_id(name), "t", manifest)


def _id(name: str) -> bytes:
    return name.encode().ljust(32, b".")


def _names(snapshots: list[SnapshotInfo]) -> list[str]:
    return [s.snapshot_id.rstrip(b".").decode() for s in snapshots]


def test_claimed_times_order_unlinked_snapshots() -> None:
    history = [_snap("b", "w2", 1, NOW - HOUR), _snap("a", "w1", 1, NOW - 2 * HOUR)]
    assert _names(chain_order(history, NOW)) == ["a", "b"]


def test_a_future_claim_stays_before_what_follows_it_whatever_the_clock() -> None:
    history = [
        _snap("old", "w1", 1, NOW - 3 * HOUR),
        _snap("future", "skewed", 1, NOW + 10 * 8760 * HOUR),
        _snap("seen-it", "w1", 2, NOW - HOUR, after=("future",)),
        _snap("unlinked", "w3", 1, NOW - 2 * HOUR),
    ]
    for now in (NOW, NOW + 11 * 8760 * HOUR):
        ordered = chain_order(history, now)
        assert _names(ordered) == ["old", "unlinked", "future", "seen-it"]
        placed = {s.snapshot_id: s.effective_ns for s in ordered}
        assert placed[_id("future")] == NOW - HOUR  # capped by the snapshot after it


def test_a_pin_at_first_sight_bounds_a_snapshot_nothing_follows_yet() -> None:
    future = _snap("future", "skewed", 1, NOW + 8760 * HOUR)
    later = _snap("later", "w1", 1, NOW + HOUR)  # made an hour after it was first seen
    pinned = SnapshotInfo(future.snapshot_id, "t", future.manifest, pinned_ns=NOW)
    assert _names(chain_order([pinned, later], NOW + 2 * HOUR)) == ["future", "later"]
    assert _names(chain_order([future, later], NOW + 2 * HOUR)) == ["later", "future"]


def test_a_writer_claiming_an_old_time_but_naming_everything_is_newest_not_oldest() -> None:
    """Naming a snapshot proves having seen it: the liar is the newest
    snapshot (true), and anything made after it that names it follows."""
    history = [
        _snap("a", "w1", 1, NOW - 3 * HOUR),
        _snap("b", "w2", 1, NOW - 2 * HOUR),
        _snap("liar", "evil", 1, NOW - 30 * 8760 * HOUR, after=("a", "b")),
    ]
    assert _names(chain_order(history, NOW))[-1] == "liar"
    history.append(_snap("next", "w1", 2, NOW - HOUR, after=("liar",)))
    assert _names(chain_order(history, NOW))[-1] == "next"


def test_cycles_a_lying_writer_builds_are_broken_deterministically() -> None:
    # seq 2 was saved first and seq 1 names it: chain and after disagree
    history = [
        _snap("two", "evil", 2, NOW - HOUR),
        _snap("one", "evil", 1, NOW - 2 * HOUR, after=("two",)),
        _snap("honest", "w1", 1, NOW - 3 * HOUR),
    ]
    first = _names(chain_order(history, NOW))
    assert sorted(first) == ["honest", "one", "two"]
    assert _names(chain_order(list(reversed(history)), NOW)) == first


def test_a_replacement_keeps_its_original_place() -> None:
    history = [
        _snap("orig", "w1", 1, NOW - 3 * HOUR),
        _snap("newer", "w1", 2, NOW - 2 * HOUR),
        _snap("tagged", "owner", 1, NOW - 3 * HOUR, original=_id("orig"), rewritten_ns=NOW),
    ]
    assert _names(chain_order(history, NOW)) == ["orig", "tagged", "newer"]
