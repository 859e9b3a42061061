"""Copy between repositories: ``python -m bench copy [--size small] [--reps 3]``.

Per repetition, for neostore and restic side by side, each with two fresh
repositories with different passwords (production KDFs):

* snapshot the corpus (A); apply the deterministic "1 % change" of
  :class:`bench.compare.CorpusChange`; snapshot it (B); revert the change;
* **first**: copy A into the empty destination (timed);
* **incremental**: copy everything (only B is new) (timed);
* how much each copy added to the destination directory.

neostore re-cuts every file with the destination's keyed chunker (its blob
ids and boundaries are keyed per repository); restic copies its blobs as
they are (re-encrypted, not re-chunked), so its first copy does less work
by design. The incremental copy shows the copy map: neostore reads only the
changed files. Prints medians and neostore/restic ratios; saves raw numbers
under ``bench/results/copy-<size>-<date>.json``.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from bench import sidebyside
from bench.compare import MB, CorpusChange, dir_size, tree_digest
from bench.compare import timed_run as _run
from bench.delta_restore import before_and_after


def _size(path: Path) -> int:
    return dir_size(path)["apparent"]


def _neostore(run: Path, corpus: Path, neostore: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    (run / "pw1").write_text("first password\n")
    (run / "pw2").write_text("second password\n")
    env.update(
        NEOSTORE_CACHE_DIR=str(run / "cache"),
        NEOSTORE_STATE_DIR=str(run / "state"),
        NEOSTORE_PASSWORD_FILE=str(run / "pw1"),
        NEOSTORE_REPO=str(run / "one"),
    )
    first, _, changed, change = before_and_after(neostore, corpus, env)
    dest = dict(env, NEOSTORE_REPO=str(run / "two"), NEOSTORE_PASSWORD_FILE=str(run / "pw2"))
    _run([neostore, "init"], dest)
    copy = [neostore, "copy", "--from-repo", str(run / "one"), "--from-password-file"]
    copy += [str(run / "pw1"), "--json"]
    before = _size(run / "two")
    first_wall, out = _run([*copy, first], dest)
    first_stats = json.loads(out)["stats"]
    middle = _size(run / "two")
    inc_wall, out = _run(copy, dest)
    inc_stats = json.loads(out)["stats"]
    after = _size(run / "two")
    _run([neostore, "restore", "latest", "--to", str(run / "out")], dest)
    if tree_digest(run / "out" / str(corpus).lstrip("/")) != changed:
        raise SystemExit("neostore: the copied snapshot does not restore the changed corpus")
    return {
        "first_wall": first_wall,
        "first_added": middle - before,
        "inc_wall": inc_wall,
        "inc_added": after - middle,
        "first_read": first_stats["bytes_read"],
        "inc_read": inc_stats["bytes_read"],
        "change_bytes": change.bytes_written,
    }


def _restic(run: Path, corpus: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    (run / "pw1").write_text("first password\n")
    (run / "pw2").write_text("second password\n")
    env.update(
        RESTIC_CACHE_DIR=str(run / "cache"),
        RESTIC_PASSWORD_FILE=str(run / "pw1"),
        RESTIC_REPOSITORY=str(run / "one"),
    )
    _run(["restic", "init"], env)
    first = json.loads(_run(["restic", "backup", str(corpus), "--json"], env)[1].splitlines()[-1])
    change = CorpusChange(corpus)
    with change.applied():
        _run(["restic", "backup", str(corpus), "--json"], env)
    dest = dict(env, RESTIC_REPOSITORY=str(run / "two"), RESTIC_PASSWORD_FILE=str(run / "pw2"))
    _run(["restic", "init"], dest)
    copy = ["restic", "copy", "--from-repo", str(run / "one"), "--from-password-file"]
    copy.append(str(run / "pw1"))
    before = _size(run / "two")
    first_wall, _ = _run([*copy, first["snapshot_id"]], dest)
    middle = _size(run / "two")
    inc_wall, _ = _run(copy, dest)
    after = _size(run / "two")
    return {
        "first_wall": first_wall,
        "first_added": middle - before,
        "inc_wall": inc_wall,
        "inc_added": after - middle,
    }


def main(argv: list[str]) -> int:
    return sidebyside.run(
        "copy",
        __doc__,
        argv,
        {"neostore": _neostore, "restic": lambda run, corpus, _: _restic(run, corpus)},
        [
            ("first_wall", "first copy (s)", 1),
            ("inc_wall", "incremental copy (s)", 1),
            ("first_added", "first copy added (MB)", MB),
            ("inc_added", "incremental added (MB)", MB),
        ],
        _read_share,
    )


def _read_share(records: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    read = statistics.median(r["neostore"]["inc_read"] for r in records)
    return [f"neostore incremental read {read / meta['bytes']:.2%} of the corpus from the source"]
