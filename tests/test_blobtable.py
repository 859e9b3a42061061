"""The compact index table behaves like a dict, under growth and threads."""

from __future__ import annotations

import os
import random
import threading

import pytest

from neostore.core.blobtable import BlobTable


def test_matches_a_dict_through_many_resizes() -> None:
    table = BlobTable(capacity=4)
    reference: dict[bytes, tuple[int, int, int, int]] = {}
    rng = random.Random(3)
    for n in range(20_000):
        blob_id = rng.randbytes(32)
        loc = (rng.randrange(2**31), rng.randrange(2**32), rng.randrange(1, 2**32), n % 2)
        assert table.add(blob_id, *loc)
        reference[blob_id] = loc
    assert len(table) == len(reference)
    for blob_id, loc in reference.items():
        assert table.get(blob_id) == loc
        assert blob_id in table
    for _ in range(1000):
        assert rng.randbytes(32) not in table
    assert set(table.ids()) == set(reference)


def test_first_location_wins_and_same_prefix_ids_differ() -> None:
    table = BlobTable()
    a = b"\x01" * 8 + os.urandom(24)
    b = b"\x01" * 8 + os.urandom(24)  # same hash slot, different id
    assert table.add(a, 1, 10, 100, 0)
    assert not table.add(a, 2, 20, 200, 1)
    assert table.add(b, 3, 30, 300, 1)
    assert table.get(a) == (1, 10, 100, 0)
    assert table.get(b) == (3, 30, 300, 1)


@pytest.mark.parametrize(
    "bad", [(b"short", 0, 0, 1, 0), (b"x" * 32, 2**31, 0, 1, 0), (b"x" * 32, 0, 0, 1, 2)]
)
def test_rejects_malformed_entries(bad: tuple[bytes, int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        BlobTable().add(*bad)


def test_concurrent_adds_and_reads() -> None:
    table = BlobTable(capacity=2)
    per_thread = 3000
    ids = [[os.urandom(32) for _ in range(per_thread)] for _ in range(4)]
    misses: list[bytes] = []

    def writer(n: int) -> None:
        for i, blob_id in enumerate(ids[n]):
            table.add(blob_id, n, i, 1, 0)
            if table.get(blob_id) is None:  # its own write must be visible
                misses.append(blob_id)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert misses == []
    assert len(table) == 4 * per_thread
    assert all(
        table.get(blob_id) == (n, i, 1, 0) for n in range(4) for i, blob_id in enumerate(ids[n])
    )


def test_bulk_add_matches_single_adds() -> None:
    rng = random.Random(5)
    items = [
        (rng.randbytes(32), rng.randrange(2**32), rng.randrange(1, 2**32), n % 2)
        for n in range(5000)
    ]
    single, bulk = BlobTable(capacity=2), BlobTable(capacity=2)
    for blob_id, offset, length, btype in items:
        single.add(blob_id, 7, offset, length, btype)
    assert bulk.add_many(7, items[:2500]) == 2500
    assert bulk.add_many(8, items[2000:]) == 2500  # the overlap keeps its first location
    for blob_id, *_ in items:
        assert bulk.get(blob_id) is not None
    assert [bulk.get(b) for b, *_ in items[:2500]] == [single.get(b) for b, *_ in items[:2500]]
    assert all(bulk.get(b)[0] == 8 for b, *_ in items[2500:])  # type: ignore[index]
    assert len(bulk) == 5000


def test_master_index_trust_is_per_listing_not_per_pack() -> None:
    """An untrusted index file (a leaked writer key) claims a blob lives in
    a pack an owner listed. When the blob's trusted copy is condemned, the
    claim must not count as a live trusted copy (found by review: trust was
    kept per pack)."""
    from neostore.core.index import MasterIndex
    from neostore.format.indexfile import PackRecord
    from neostore.format.pack import PackEntry

    owner_pack, other_pack = b"P" * 32, b"Q" * 32
    blob, filler = b"b" * 32, b"f" * 32
    index = MasterIndex()
    index.add_pack(PackRecord(owner_pack, 4096, [PackEntry(0, filler, 0, 100)]), trusted=True)
    index.add_pack(PackRecord(other_pack, 4096, [PackEntry(0, blob, 0, 100)]), trusted=True)
    for offset in (200, 300):  # the second claim lands among the further copies
        claim = PackRecord(owner_pack, 4096, [PackEntry(0, blob, offset, 100)])
        index.add_pack(claim, trusted=False)
    assert blob in index
    index.condemn([other_pack])
    assert blob not in index and not index.has_all([blob])
    assert index.knows(blob)  # still readable, trusted copy last
    # a trusted listing of a second copy does count
    index.add_pack(PackRecord(owner_pack, 4096, [PackEntry(0, blob, 400, 100)]), trusted=True)
    assert blob in index
