"""Memory per indexed blob, measured with synthetic entries.

    python -m bench index-memory [--blobs 5000000] [--dict-blobs 1000000]

Fills neostore's MasterIndex with N random blob ids spread over packs of
~1000 blobs and reports the growth of the process's resident memory per
blob, build time and lookup rate; for scale it measures a plain dict of the
same entries (smaller N) too.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time

from neostore.core.index import MasterIndex
from neostore.format.indexfile import PackRecord
from neostore.format.pack import PackEntry

BLOBS_PER_PACK = 1000


def _records(count: int, seed: int) -> list[PackRecord]:
    rng = random.Random(seed)
    records = []
    for first in range(0, count, BLOBS_PER_PACK):
        entries = [
            PackEntry(0, rng.randbytes(32), i * 20_000, 17_000)
            for i in range(min(BLOBS_PER_PACK, count - first))
        ]
        records.append(PackRecord(rng.randbytes(32), 20_000_000, entries))
    return records


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_master_index(count: int) -> dict[str, float]:
    records = _records(count, 1)
    gc.collect()
    base = _rss()
    started = time.perf_counter()
    index = MasterIndex()
    for record in records:
        index.add_pack(record)
    build = time.perf_counter() - started
    gc.collect()
    used = _rss() - base
    probes = [e.blob_id for r in records[:: max(1, len(records) // 100)] for e in r.entries[:100]]
    misses = [os.urandom(32) for _ in range(len(probes))]
    started = time.perf_counter()
    hits = sum(blob_id in index for blob_id in probes) + sum(b in index for b in misses)
    lookup = time.perf_counter() - started
    assert hits == len(probes) and len(index) == count
    return {
        "blobs": count,
        "bytes_per_blob": used / count,
        "build_s": build,
        "lookups_per_s": 2 * len(probes) / lookup,
    }


def measure_dict(count: int) -> float:
    records = _records(count, 2)
    gc.collect()
    base = _rss()
    table: dict[bytes, tuple[int, int, int, int]] = {}
    for number, record in enumerate(records):
        for e in record.entries:
            table[e.blob_id] = (number, e.offset, e.length, e.btype)
    gc.collect()
    used = _rss() - base
    # the id objects were allocated with the records: add what a dict key costs
    return used / count + sys.getsizeof(bytes(32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=5_000_000)
    parser.add_argument("--dict-blobs", type=int, default=1_000_000)
    args = parser.parse_args()
    result = measure_master_index(args.blobs)
    print(
        f"MasterIndex: {result['blobs']:,} blobs, {result['bytes_per_blob']:.1f} bytes/blob, "
        f"built in {result['build_s']:.1f} s, {result['lookups_per_s']:,.0f} lookups/s"
    )
    per_blob = measure_dict(args.dict_blobs)
    print(f"dict of tuples (reference): {per_blob:.1f} bytes/blob at {args.dict_blobs:,} blobs")


if __name__ == "__main__":
    main()
