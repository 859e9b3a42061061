"""Delta restore on the bench corpus: ``python -m bench delta-restore [--size full]``.

Issue 6's target: restoring the 1 %-changed corpus over its previous version
downloads at most 2 % of the corpus bytes and takes at most half the time of a
full restore.

Per repetition, with a fresh repository (production Argon2id):

* snapshot the corpus (A); apply the deterministic "1 % change" of
  :class:`bench.compare.CorpusChange`; snapshot it (B); revert the change;
* **full**: restore B into an empty directory (timed);
* restore A into another directory (untimed), then **delta**: restore B over
  it (timed), and check the result against B's digest.

Prints medians of both times, their ratio, and the bytes the delta restore
downloaded (from its ``--json`` summary) against the corpus size; saves the
raw numbers under ``bench/results/delta-restore-<size>-<date>.json``.
Restic is not run beside it: the restic that Debian ships (0.14) has no delta
restore to compare with.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

from bench import sidebyside
from bench.compare import MB, CorpusChange, tree_digest
from bench.compare import timed_run as _run


def before_and_after(
    neostore: str, corpus: Path, env: dict[str, str]
) -> tuple[str, str, dict[str, Any], CorpusChange]:
    """In a new repository: snapshot the corpus (A), then with the 1 %
    change applied (B); returns both ids, B's digest and the change
    (reverted again)."""
    _run([neostore, "init"], env)
    first = json.loads(_run([neostore, "snapshot", str(corpus), "--json"], env)[1])["id"]
    change = CorpusChange(corpus)
    with change.applied():
        second = json.loads(_run([neostore, "snapshot", str(corpus), "--json"], env)[1])["id"]
        changed = tree_digest(corpus)
    return first, second, changed, change


def one_rep(
    rep: int, corpus: Path, work: Path, neostore: str, digest: dict[str, Any]
) -> dict[str, Any]:
    run = work / f"delta-{rep}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    (run / "pw").write_text("bench password\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    env.update(
        NEOSTORE_REPO=str(run / "repo"),
        NEOSTORE_PASSWORD_FILE=str(run / "pw"),
        NEOSTORE_CACHE_DIR=str(run / "cache"),
        NEOSTORE_STATE_DIR=str(run / "state"),
    )
    first, second, changed_digest, change = before_and_after(neostore, corpus, env)
    inside = str(corpus).lstrip("/")
    full_wall, out = _run([neostore, "restore", second, "--to", str(run / "full"), "--json"], env)
    full = json.loads(out)
    _run([neostore, "restore", first, "--to", str(run / "delta")], env)
    delta_wall, out = _run(
        [neostore, "restore", second, "--to", str(run / "delta"), "--json", "--delete"], env
    )
    delta = json.loads(out)
    for where in ("full", "delta"):
        got = tree_digest(run / where / inside)
        if got != changed_digest:
            raise SystemExit(f"{where} restore differs from the changed corpus")
    record = {
        "rep": rep,
        "full_wall": full_wall,
        "delta_wall": delta_wall,
        "full_downloaded": full["bytes_downloaded"],
        "delta_downloaded": delta["bytes_downloaded"],
        "delta_reused": delta["bytes_reused"],
        "delta_files_unchanged": delta["files_unchanged"],
        "delta_files_written": delta["files"],
        "change_bytes": change.bytes_written,
        "corpus_digest_before": digest["sha256"],
    }
    shutil.rmtree(run)
    return record


def main(argv: list[str]) -> int:
    args, work, neostore, corpus, meta = sidebyside.setup("delta-restore", __doc__, argv, "full")
    digest = tree_digest(corpus)
    size = meta["bytes"]
    records = []
    for rep in range(args.reps):
        record = one_rep(rep, corpus, work, neostore, digest)
        records.append(record)
        print(
            f"rep {rep}: full {record['full_wall']:.2f} s, delta {record['delta_wall']:.2f} s, "
            f"downloaded {record['delta_downloaded'] / size:.2%} of the corpus",
            flush=True,
        )
    full = statistics.median(r["full_wall"] for r in records)
    delta = statistics.median(r["delta_wall"] for r in records)
    share = statistics.median(r["delta_downloaded"] for r in records) / size
    table = (
        f"full restore   median {full:.2f} s\n"
        f"delta restore  median {delta:.2f} s  ({delta / full:.2f}x of full; target <= 0.5x)\n"
        f"downloaded     median {share:.2%} of {size / MB:.0f} MB (target <= 2 %); "
        f"the change wrote {records[0]['change_bytes'] / size:.2%}"
    )
    print(table)
    sidebyside.save("delta-restore", args.size, meta, records, table)
    return 0
