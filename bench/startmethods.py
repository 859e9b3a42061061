"""Worker start methods side by side: neostore's first snapshot and full
restore with its worker processes forked (Linux's default), spawned (the
only method on Windows, macOS's default) and started by a fork server.

``python -m bench start-methods [--size full|small | --corpus DIR] [--reps 3]``

Every repetition runs the three in alternating order, each into a fresh
local repository, page cache dropped before each step; the restored tree is
checked against the corpus. A spawned worker starts an interpreter,
imports neostore and receives the open repository (keys, config, index)
by pickle; the goal (issue 19) is spawn ≤ 1.15× fork.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.compare import (
    Neostore,
    chosen_corpus,
    drop_caches,
    run_measured,
    save_results,
    settle,
    tree_digest,
)

METHODS = ("fork", "spawn", "forkserver")


def run_method(
    method: str, rep: int, corpus: Path, work: Path, exe: str, digest: Any
) -> dict[str, Any]:
    base = work / method
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    tool = Neostore(exe, base)
    env = dict(tool.env, NEOSTORE_START_METHOD=method)
    commands = tool.commands(corpus)
    log = base / "log.txt"
    run_measured(commands["init"], env, log)
    record: dict[str, Any] = {"method": method, "rep": rep}
    for step in ("snapshot", "restore"):
        record["caches_dropped"] = drop_caches(corpus)
        settle()
        m = run_measured(commands[step], env, log)
        record[step] = {"wall": m.wall, "cpu": m.cpu, "tree_pss_kib": m.tree_pss_kib}
    if tree_digest(tool.restore_dir / corpus.relative_to(corpus.anchor)) != digest:
        raise SystemExit(f"{method}: restored tree differs from the corpus")
    shutil.rmtree(base)
    print(json.dumps(record), flush=True)
    return record


def summarise(records: list[dict[str, Any]]) -> str:
    def med(method: str, step: str, key: str) -> float:
        return statistics.median(r[step][key] for r in records if r["method"] == method)

    reps = len(records) // len(METHODS)
    lines = [f"{'median of ' + str(reps):<16}" + "".join(f"{m:>12}" for m in METHODS)]
    for step in ("snapshot", "restore"):
        walls = {m: med(m, step, "wall") for m in METHODS}
        lines.append(f"{step + ' s':<16}" + "".join(f"{walls[m]:>12.2f}" for m in METHODS))
        cpus = "".join(f"{med(m, step, 'cpu'):>12.2f}" for m in METHODS)
        lines.append(f"{step + ' CPU s':<16}" + cpus)
        pss = "".join(f"{med(m, step, 'tree_pss_kib') / 1024:>12.0f}" for m in METHODS)
        lines.append(f"{step + ' PSS MiB':<16}" + pss)
        for method in METHODS[1:]:
            ratio = walls[method] / walls["fork"]
            lines.append(f"  {step}: {method} = {ratio:.2f} x fork's time")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench start-methods", description=__doc__)
    parser.add_argument("--size", choices=("small", "full"), default="full")
    parser.add_argument("--corpus", type=Path, help="a directory of real files instead")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench-start"))
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).parent / "neostore")
    corpus, meta = chosen_corpus(args.corpus, work, args.size)
    digest = tree_digest(corpus)
    records = []
    for rep in range(args.reps):
        order = METHODS if rep % 2 == 0 else tuple(reversed(METHODS))
        for method in order:
            records.append(run_method(method, rep, corpus, work, exe, digest))
    table = summarise(records)
    print(table)
    name = "real" if args.corpus else args.size
    save_results("start-methods", name, {"corpus": meta, "records": records, "table": table})
    return 0
