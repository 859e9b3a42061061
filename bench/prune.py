"""Prune beside restic's: ``python -m bench prune [--size small|full] [--reps 3]``.

Per repetition and tool, in a fresh repository (production KDFs): snapshot
the corpus (A), apply the deterministic "1 % change" of
:class:`bench.compare.CorpusChange`, snapshot it (B), revert; forget A;
then prune with the default ``--max-unused 5%``:

* restic: one ``restic prune``;
* neostore: ``prune --grace 0s`` twice, since prune is two-phase (the first
  run marks, the second deletes; with the default one-hour grace the second
  would be an hour later).

Reports wall time, the peak memory of the prune process tree (summed PSS,
sampled; the same after the password KDF freed its buffer; and peak RSS)
and the bytes the repository shrank by; saves raw
numbers under ``bench/results/prune-<size>-<date>.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench import sidebyside
from bench.compare import (
    MB,
    CorpusChange,
    dir_size,
    run_measured,
)
from bench.compare import timed_run as _run
from bench.delta_restore import before_and_after


def _measure(cmds: list[list[str]], env: dict[str, str], log: Path) -> dict[str, Any]:
    runs = [run_measured(cmd, env, log) for cmd in cmds]
    return {
        "wall": sum(m.wall for m in runs),
        "peak_pss_kib": max(m.tree_pss_kib for m in runs),
        # the peak once the password KDF's buffer is freed (Argon2id's 256 MiB
        # dominates a small repository's prune otherwise)
        "pss_after_kdf_kib": max(m.pss_after_kdf_kib for m in runs),
        "peak_rss_kib": max(m.maxrss_kib for m in runs),
    }


def _neostore(run: Path, corpus: Path, neostore: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    (run / "pw").write_text("bench password\n")
    env.update(
        NEOSTORE_REPO=str(run / "repo"),
        NEOSTORE_PASSWORD_FILE=str(run / "pw"),
        NEOSTORE_CACHE_DIR=str(run / "cache"),
        NEOSTORE_STATE_DIR=str(run / "state"),
    )
    first, _, _, _ = before_and_after(neostore, corpus, env)
    _run([neostore, "forget", first], env)
    before = dir_size(run / "repo")["apparent"]
    prune = [neostore, "prune", "--grace", "0s"]
    out = _measure([prune, prune], env, run / "prune.log")
    _run([neostore, "check"], env)
    return dict(out, freed=before - dir_size(run / "repo")["apparent"], size_before=before)


def _restic(run: Path, corpus: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    (run / "pw").write_text("bench password\n")
    env.update(
        RESTIC_REPOSITORY=str(run / "repo"),
        RESTIC_PASSWORD_FILE=str(run / "pw"),
        RESTIC_CACHE_DIR=str(run / "cache"),
    )
    _run(["restic", "init"], env)
    first = json.loads(_run(["restic", "backup", str(corpus), "--json"], env)[1].splitlines()[-1])
    with CorpusChange(corpus).applied():
        _run(["restic", "backup", str(corpus)], env)
    _run(["restic", "forget", first["snapshot_id"]], env)
    before = dir_size(run / "repo")["apparent"]
    out = _measure([["restic", "prune"]], env, run / "prune.log")
    _run(["restic", "check"], env)
    return dict(out, freed=before - dir_size(run / "repo")["apparent"], size_before=before)


def main(argv: list[str]) -> int:
    return sidebyside.run(
        "prune",
        __doc__,
        argv,
        {"neostore": _neostore, "restic": lambda run, corpus, _: _restic(run, corpus)},
        [
            ("wall", "prune wall (s)", 1),
            ("peak_pss_kib", "peak PSS (MiB)", 1024),
            ("pss_after_kdf_kib", "after KDF (MiB)", 1024),
            ("peak_rss_kib", "peak RSS (MiB)", 1024),
            ("freed", "freed (MB)", MB),
        ],
        None,
    )
