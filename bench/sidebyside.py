"""The shared frame of the benches that run neostore and restic on one
corpus, one repetition after another (``copy``, ``prune``): arguments,
corpus, alternating order, medians and ratios, the results file."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.compare import MB, generate_corpus, warm_cache

#: one tool's repetition: (fresh work directory, corpus, neostore program) -> numbers
Step = Callable[[Path, Path, str], dict[str, Any]]


def run(
    name: str,
    doc: str | None,
    argv: list[str],
    steps: dict[str, Step],
    rows: list[tuple[str, str, float]],
    extra: Callable[[list[dict[str, Any]], dict[str, Any]], list[str]] | None = None,
) -> int:
    """Parse ``--size/--reps/--workdir``, run each tool's step per
    repetition (restic only when installed; who goes first alternates),
    print ``rows`` (record key, label, divisor) as medians and
    neostore/restic ratios, and save everything under bench/results."""
    args, work, neostore, corpus, meta = setup(name, doc, argv)
    tools = [t for t in steps if t != "restic" or shutil.which("restic")]
    records: list[dict[str, Any]] = []
    for rep in range(args.reps):
        record: dict[str, Any] = {"rep": rep}
        for tool in tools if rep % 2 == 0 else tools[::-1]:
            where = work / f"{name}-{tool}-{rep}"
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir(parents=True)
            record[tool] = steps[tool](where, corpus, neostore)
            shutil.rmtree(where)
        records.append(record)
        print(f"rep {rep}: {json.dumps(record)}", flush=True)
    lines = []
    for key, label, scale in rows:
        ours = statistics.median(r["neostore"][key] for r in records) / scale
        line = f"{label:<24} neostore {ours:9.2f}"
        if "restic" in tools:
            theirs = statistics.median(r["restic"][key] for r in records) / scale
            line += f"   restic {theirs:9.2f}   ratio {ours / theirs:5.2f}x"
        lines.append(line)
    lines += extra(records, meta) if extra else []
    table = "\n".join(lines)
    print(table)
    save(name, args.size, meta, records, table)
    return 0


def setup(
    name: str, doc: str | None, argv: list[str], size: str = "small"
) -> tuple[argparse.Namespace, Path, str, Path, dict[str, Any]]:
    """Parse ``--size/--reps/--workdir`` and make the seeded corpus (page
    cache warm). Returns the arguments, the work directory, the neostore
    program, the corpus and its description."""
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc)
    parser.add_argument("--size", choices=("small", "full"), default=size)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    parser.add_argument(
        "--corpus", type=Path, help="real files to use instead of the seeded corpus (read only)"
    )
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    neostore = str(Path(sys.executable).parent / "neostore")
    if args.corpus is not None:
        corpus = args.corpus.resolve()
        meta = _described(corpus)
        args.size = "real"
    else:
        corpus = work / f"corpus-{args.size}"
        meta = generate_corpus(corpus, args.size)
    warm_cache(corpus)
    print(f"corpus: {meta['files']} files, {meta['bytes'] / MB:.1f} MB", flush=True)
    return args, work, neostore, corpus, meta


def _described(corpus: Path) -> dict[str, Any]:
    files = size = 0
    for root, _, names in os.walk(corpus):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            files += 1
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return {"files": files, "bytes": size, "source": str(corpus), "real": True}


def save(
    name: str, size: str, meta: dict[str, Any], records: list[dict[str, Any]], table: str
) -> Path:
    """Write the raw numbers to bench/results/<name>-<size>-<date>.json."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(__file__).parent / "results" / f"{name}-{size}-{stamp}.json"
    out.write_text(json.dumps({"corpus": meta, "records": records, "table": table}, indent=1))
    print(f"results: {out}")
    return out
