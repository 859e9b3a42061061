"""Does neostore's memory stay flat as the input grows? Snapshot and restore of a
large input next to the same of the bench corpus.

    python -m bench flat-memory [--gb 10] [--workdir /tmp/neostore-bench]

The large input is seeded and mostly cheap to make: ``--gb`` GB in total, half in
incompressible random files of 256 MiB, half in sparse files of 1 GiB holding a
random 1 MiB block every 64 MiB. Each command runs with the production key
derivation; peak memory is the summed PSS of the whole process tree (workers
included), sampled every 20 ms, reported in total and after the key derivation
(see :mod:`bench.compare`). The ratio large/corpus of the after-KDF peaks is
what issue 3 bounds (at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.compare import MB, MIB, RESULTS_DIR, SIZES, PssSampler, generate_corpus

RANDOM_FILE = 256 * MIB
SPARSE_FILE = 1024 * MIB
SPARSE_STRIDE = 64 * MIB


def generate_large(root: Path, gb: int, seed: int = 7) -> dict[str, int]:
    """``gb`` GB of random and sparse files under ``root`` (reused if complete)."""
    marker = root.parent / f"{root.name}.json"
    wanted = {"gb": gb, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()).get("params") == wanted:
        return dict(json.loads(marker.read_text())["files"])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(seed)
    half = gb * 1000 * MB // 2
    count = {"random": 0, "sparse": 0}
    written = 0
    while written < half:
        with open(root / f"random-{count['random']:03d}.bin", "wb") as f:
            for _ in range(RANDOM_FILE // MIB):
                f.write(rng.randbytes(MIB))
        written += RANDOM_FILE
        count["random"] += 1
    written = 0
    while written < half:
        with open(root / f"sparse-{count['sparse']:03d}.img", "wb") as f:
            f.truncate(SPARSE_FILE)
            for offset in range(0, SPARSE_FILE, SPARSE_STRIDE):
                f.seek(offset)
                f.write(rng.randbytes(MIB))
        written += SPARSE_FILE
        count["sparse"] += 1
    marker.write_text(json.dumps({"params": wanted, "files": count}))
    return count


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = PssSampler(proc.pid)
    _, err = proc.communicate()
    peak, after = sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')}")
    return {
        "wall": round(time.perf_counter() - t0, 2),
        "peak_pss_mib": round(peak / 1024, 1),
        "peak_pss_after_kdf_mib": round(after / 1024, 1),
    }


def run_input(name: str, source: Path, work: Path, neostore: str) -> dict[str, Any]:
    base = work / f"flat-{name}"
    shutil.rmtree(base, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    env.update(
        NEOSTORE_PASSWORD="bench",
        NEOSTORE_REPO=str(base / "repo"),
        NEOSTORE_CACHE_DIR=str(base / "cache"),
        NEOSTORE_STATE_DIR=str(base / "state"),
    )
    subprocess.run([neostore, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    result = {"snapshot": measure([neostore, "snapshot", str(source)], env)}
    subprocess.run(["sync"], check=True)
    restore_to = base / "restore"
    result["restore"] = measure([neostore, "restore", "latest", "--to", str(restore_to)], env)
    shutil.rmtree(base)
    print(f"{name}: {json.dumps(result)}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench flat-memory", description=__doc__)
    parser.add_argument("--gb", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    parser.add_argument("--neostore", default=str(Path(sys.executable).parent / "neostore"))
    args = parser.parse_args()
    work = args.workdir.resolve()
    corpus = work / "corpus-full"
    generate_corpus(corpus, "full")
    large = work / f"large-{args.gb}gb"
    t0 = time.perf_counter()
    files = generate_large(large, args.gb)
    print(f"large input: {files} in {time.perf_counter() - t0:.0f} s", flush=True)
    results = {
        "corpus": run_input("corpus", corpus, work, args.neostore),
        "large": run_input("large", large, work, args.neostore),
    }
    ratios = {
        step: round(
            results["large"][step]["peak_pss_after_kdf_mib"]
            / results["corpus"][step]["peak_pss_after_kdf_mib"],
            3,
        )
        for step in ("snapshot", "restore")
    }
    print(f"peak after KDF, large/corpus: {json.dumps(ratios)}")
    out = RESULTS_DIR / f"flat-memory-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(
        json.dumps(
            {
                "gb": args.gb,
                "corpus_mb": sum(SIZES["full"]),
                "files": files,
                "results": results,
                "ratios": ratios,
            },
            indent=2,
        )
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
