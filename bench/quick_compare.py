"""Side-by-side benchmark of ``neostore snapshot`` and ``restic backup`` on one corpus.

Run from the repository root::

    python -m bench.quick_compare [--size-mb 1000] [--reps 3] [--workdir DIR]

What it does:

* builds a deterministic, seeded corpus under ``WORKDIR/corpus`` (never inside the
  repository): ~40 % small text-like files (1-20 KB), ~30 % mid-size semi-compressible
  files (0.5-6 MiB, word text interleaved with random blocks) and ~30 % incompressible
  random files (20-50 MiB). An existing corpus with the same parameters is reused;
* reads the whole corpus once, untimed, so both tools start from a warm page cache;
* for each repetition, alternating which tool goes first, and with fresh repositories,
  caches and state directories: ``init``, first snapshot, unchanged re-snapshot and full
  restore into an empty directory. Each command is one child process; its wall time
  and its user/sys CPU and peak RSS (from GNU ``/usr/bin/time``, else ``os.wait4``) are
  recorded, as is the repository's size after the first snapshot. Restores are checked
  against the corpus (file count, bytes and a SHA-256 of names, sizes and contents),
  outside the timings;
* ``sync`` runs (untimed) after every command so that one step's dirty pages are not
  written back during the next one. Page caches are never dropped;
* the machine is shared, so before each tool run it waits (untimed) for the machine to
  be idle, records for every step the CPU time that the rest of the machine used
  (``other_cpu``, from /proc/stat; it includes kernel writeback of the step's own
  writes), and re-runs a tool run in which some step ran beside more than
  ``--max-other`` cores of other work. Only the last attempt counts; all are saved;
* neostore's code is exported from a commit (``--ref``, default HEAD) and run through
  the installed command with PYTHONPATH, so concurrent edits of the work tree cannot
  change it mid-run (``--live`` runs the work tree instead);
* prints medians per step with the neostore/restic ratio and saves every raw
  measurement as JSON under ``bench/results/quick-<date>.json``.

neostore runs with its production Argon2id parameters (``NEOSTORE_TEST_KDF`` is removed
from the environment); restic runs with its defaults (repository v2, compression auto).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
MB = 1_000_000
SEED = 20240601
CORPUS_FORMAT = 1
SMALL_SHARE, MID_SHARE = 0.40, 0.30  # the rest is random
SMALL_FILES_PER_DIR = 500
STEPS = ("init", "snapshot", "resnapshot", "restore")
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


# -- corpus ----------------------------------------------------------------------------


class TextSource:
    """Seeded word text with a Zipf-like vocabulary: compresses roughly 3x with zstd."""

    def __init__(self, rng: random.Random, vocab_size: int = 8000) -> None:
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(vocab_size)]
        words.append("\n")
        weights = [1.0 / (i + 1) for i in range(vocab_size)] + [0.6]
        self._rng = rng
        self._vocab = words
        self._cum = list(itertools.accumulate(weights))

    def text(self, nbytes: int) -> bytes:
        """About ``nbytes`` of text, cut to exactly ``nbytes``."""
        count = nbytes // 6 + 16
        out = " ".join(self._rng.choices(self._vocab, cum_weights=self._cum, k=count)).encode()
        while len(out) < nbytes:
            out += b" " + self.text(nbytes - len(out))
        return out[:nbytes]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _gen_small(root: Path, budget: int, rng: random.Random, text: TextSource) -> dict[str, int]:
    files = total = 0
    while total < budget:
        size = min(rng.randint(1000, 20000), budget - total)
        path = root / "small" / f"d{files // SMALL_FILES_PER_DIR:04d}" / f"f{files:06d}.txt"
        _write(path, text.text(size))
        files += 1
        total += size
    return {"files": files, "bytes": total}


def _mixed_content(size: int, rng: random.Random, text: TextSource) -> bytes:
    """Word text with 64 KiB random blocks mixed in (about one block in four)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        n = min(64 * 1024, left)
        parts.append(rng.randbytes(n) if rng.random() < 0.25 else text.text(n))
        left -= n
    return b"".join(parts)


def _gen_sized(
    root: Path, sub: str, budget: int, lo: int, hi: int, make: Any, rng: random.Random
) -> dict[str, int]:
    files = total = 0
    while total < budget:
        size = min(rng.randint(lo, hi), budget - total)
        _write(root / sub / f"f{files:04d}.bin", make(size))
        files += 1
        total += size
    return {"files": files, "bytes": total}


def generate_corpus(root: Path, size_mb: int, seed: int = SEED) -> dict[str, Any]:
    """Build the corpus (or reuse a matching one); returns its composition."""
    marker = root.parent / f"{root.name}.json"
    wanted = {"format": CORPUS_FORMAT, "size_mb": size_mb, "seed": seed}
    if marker.exists() and root.is_dir():
        meta: dict[str, Any] = json.loads(marker.read_text())
        if meta.get("params") == wanted:
            return meta
    shutil.rmtree(root, ignore_errors=True)
    marker.unlink(missing_ok=True)
    total = size_mb * MB
    rng = random.Random(seed)
    text = TextSource(rng)
    small_budget, mid_budget = int(total * SMALL_SHARE), int(total * MID_SHARE)
    t0 = time.perf_counter()
    composition = {
        "small_text": _gen_small(root, small_budget, rng, text),
        "mid_semi": _gen_sized(
            root,
            "mid",
            mid_budget,
            MIB // 2,
            6 * MIB,
            lambda n: _mixed_content(n, rng, text),
            rng,
        ),
        "random": _gen_sized(
            root,
            "random",
            total - small_budget - mid_budget,
            20 * MIB,
            50 * MIB,
            rng.randbytes,
            rng,
        ),
    }
    meta = {
        "params": wanted,
        "composition": composition,
        "files": sum(c["files"] for c in composition.values()),
        "bytes": sum(c["bytes"] for c in composition.values()),
        "generate_seconds": round(time.perf_counter() - t0, 2),
    }
    meta["digest"] = tree_digest(root)
    marker.write_text(json.dumps(meta, indent=2))
    return meta


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def tree_digest(root: Path) -> dict[str, Any]:
    """Count, bytes and SHA-256 over relative names, sizes and contents (streamed)."""
    h = hashlib.sha256()
    files = total = 0
    for path in iter_files(root):
        size = path.stat().st_size
        h.update(os.fsencode(path.relative_to(root)) + b"\0" + size.to_bytes(8, "little"))
        with path.open("rb") as f:
            while block := f.read(MIB):
                h.update(block)
        files += 1
        total += size
    return {"files": files, "bytes": total, "sha256": h.hexdigest()}


def warm_cache(root: Path) -> float:
    """Read every corpus file once (untimed for the tools); returns seconds taken."""
    t0 = time.perf_counter()
    for path in iter_files(root):
        with path.open("rb") as f:
            while f.read(4 * MIB):
                pass
    return time.perf_counter() - t0


def dir_size(root: Path) -> dict[str, int]:
    """Apparent bytes, allocated bytes and file count under ``root``."""
    apparent = allocated = files = 0
    for path in iter_files(root):
        st = path.lstat()
        apparent += st.st_size
        allocated += st.st_blocks * 512
        files += 1
    return {"apparent": apparent, "allocated": allocated, "files": files}


# -- measuring -------------------------------------------------------------------------


@dataclass
class Measurement:
    """One child process: wall seconds, CPU seconds and peak RSS (KiB)."""

    cmd: list[str]
    wall: float
    user: float
    sys: float
    maxrss_kib: int
    returncode: int
    #: CPU seconds the rest of the machine used meanwhile: other processes and kernel
    #: threads, including writeback of the command's own writes
    other_cpu: float

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def busy_cpu_seconds() -> float:
    """Machine-wide non-idle CPU seconds so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_measured(cmd: list[str], env: dict[str, str], log: Path) -> Measurement:
    """Run ``cmd`` to completion; stdout/stderr go to ``log``. Fails loudly on error.

    With GNU time, CPU and peak RSS are those of the command alone. Without it they come
    from ``os.wait4``, whose peak RSS is never below this (Python) process's own: the
    kernel carries the spawning process's high-water mark across ``exec``.
    """
    stats = log.with_suffix(".time")
    full = [GNU_TIME, "-f", "%U %S %M", "-o", str(stats), *cmd] if GNU_TIME else cmd
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        busy0, t0 = busy_cpu_seconds(), time.perf_counter()
        proc = subprocess.Popen(full, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall, busy = time.perf_counter() - t0, busy_cpu_seconds() - busy0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    subprocess.run(["sync"], check=True)
    if GNU_TIME:
        fields = stats.read_text().split()[-3:]
        user, sys_, rss = float(fields[0]), float(fields[1]), int(fields[2])
    else:
        user, sys_, rss = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
    return Measurement(cmd, wall, user, sys_, rss, 0, max(0.0, busy - user - sys_))


# -- tools -----------------------------------------------------------------------------


@dataclass
class Tool:
    """How to drive one backup program in a fresh directory ``base``."""

    name: str
    exe: str
    base: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.base / "repo"

    @property
    def restore_dir(self) -> Path:
        return self.base / "restore"

    def commands(self, corpus: Path) -> dict[str, list[str]]:
        raise NotImplementedError


class Neostore(Tool):
    def __init__(self, exe: str, base: Path, pythonpath: str | None = None) -> None:
        env = _clean_env()
        env.pop("NEOSTORE_TEST_KDF", None)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        env.update(
            NEOSTORE_PASSWORD="bench",
            NEOSTORE_REPO=str(base / "repo"),
            NEOSTORE_CACHE_DIR=str(base / "cache"),
            NEOSTORE_STATE_DIR=str(base / "state"),
        )
        super().__init__("neostore", exe, base, env)

    def commands(self, corpus: Path) -> dict[str, list[str]]:
        return {
            "init": [self.exe, "init"],
            "snapshot": [self.exe, "snapshot", str(corpus)],
            "resnapshot": [self.exe, "snapshot", str(corpus)],
            "restore": [self.exe, "restore", "latest", "--to", str(self.restore_dir)],
        }


class Restic(Tool):
    def __init__(self, exe: str, base: Path) -> None:
        env = _clean_env()
        env.update(
            RESTIC_PASSWORD="bench",
            RESTIC_REPOSITORY=str(base / "repo"),
            RESTIC_CACHE_DIR=str(base / "cache"),
        )
        super().__init__("restic", exe, base, env)

    def commands(self, corpus: Path) -> dict[str, list[str]]:
        return {
            "init": [self.exe, "init"],
            "snapshot": [self.exe, "backup", str(corpus)],
            "resnapshot": [self.exe, "backup", str(corpus)],
            "restore": [self.exe, "restore", "latest", "--target", str(self.restore_dir)],
        }


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NEOSTORE_", "RESTIC_"))}


def settle(seconds: float = 3.0, quiet_cores: float = 0.1, timeout: float = 300.0) -> None:
    """Flush dirty data, let deferred kernel work finish and wait for an idle machine.

    Idle means the machine used under ``quiet_cores`` cores over two seconds; after
    ``timeout`` seconds it goes on regardless (the step's ``other_cpu`` will show it).
    """
    subprocess.run(["sync"], check=True)
    time.sleep(seconds)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy0 = busy_cpu_seconds()
        time.sleep(2.0)
        load = (busy_cpu_seconds() - busy0) / 2.0
        if load < quiet_cores:
            return
        print(f"  waiting for an idle machine ({load:.2f} cores busy)", flush=True)


def run_tool(tool: Tool, corpus: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """init, snapshot, resnapshot, restore in a fresh ``tool.base``; returns the record."""
    shutil.rmtree(tool.base, ignore_errors=True)
    tool.base.mkdir(parents=True)
    tool.restore_dir.mkdir()
    settle()
    log = tool.base / "log.txt"
    record: dict[str, Any] = {"tool": tool.name, "steps": {}}
    for step, cmd in tool.commands(corpus).items():
        m = run_measured(cmd, tool.env, log)
        record["steps"][step] = asdict(m) | {"cpu": m.cpu}
        if step == "snapshot":
            record["repo_after_snapshot"] = dir_size(tool.repo)
        elif step == "resnapshot":
            record["repo_after_resnapshot"] = dir_size(tool.repo)
    restored = tool.restore_dir / corpus.relative_to(corpus.anchor)
    got = tree_digest(restored)
    record["restore_verified"] = got == expected
    if not record["restore_verified"]:
        raise SystemExit(f"{tool.name}: restored tree differs: {got} != {expected}")
    shutil.rmtree(tool.base)
    return record


# -- reporting -------------------------------------------------------------------------


def _median(records: list[dict[str, Any]], tool: str, getter: Any) -> float:
    return statistics.median(getter(r) for r in records if r["tool"] == tool and r["counted"])


def disturbed_steps(record: dict[str, Any], max_other: float) -> list[str]:
    """Steps during which the rest of the machine averaged over ``max_other`` cores."""
    return [s for s, m in record["steps"].items() if m["other_cpu"] > max_other * m["wall"]]


def run_counted(
    tool: Tool, corpus: Path, expected: dict[str, Any], max_other: float, retries: int
) -> list[dict[str, Any]]:
    """Run ``tool`` until no step was disturbed (at most ``1 + retries`` times).

    Every attempt is returned; exactly one (the last) has ``counted`` set.
    """
    attempts: list[dict[str, Any]] = []
    for attempt in range(retries + 1):
        rec = run_tool(tool, corpus, expected) | {"attempt": attempt, "counted": False}
        rec["disturbed"] = disturbed_steps(rec, max_other)
        attempts.append(rec)
        steps = rec["steps"]
        print(
            f"  {tool.name:8} "
            + " ".join(f"{s}={steps[s]['wall']:.1f}s/{steps[s]['cpu']:.1f}cpu" for s in STEPS)
            + f" other={sum(v['other_cpu'] for v in steps.values()):.1f}cpu-s"
            + (f" DISTURBED: {','.join(rec['disturbed'])}" if rec["disturbed"] else ""),
            flush=True,
        )
        if not rec["disturbed"]:
            break
    attempts[-1]["counted"] = True
    return attempts


def summarise(records: list[dict[str, Any]], corpus_bytes: int) -> list[dict[str, Any]]:
    """Median rows: one per (step, metric), with both tools and their ratio."""
    rows: list[dict[str, Any]] = []
    for step in STEPS:
        for metric, unit, scale in (
            ("wall", "s", 1.0),
            ("cpu", "s", 1.0),
            ("user", "s", 1.0),
            ("sys", "s", 1.0),
            ("other_cpu", "s", 1.0),
            ("maxrss_kib", "MiB", 1 / 1024),
        ):
            rows.append(
                _row(
                    records,
                    f"{step} {metric.replace('_kib', '')}",
                    unit,
                    lambda r, s=step, m=metric, k=scale: r["steps"][s][m] * k,
                )
            )
        if step in ("snapshot", "restore"):
            rows.append(
                _row(
                    records,
                    f"{step} throughput",
                    "MB/s",
                    lambda r, s=step: corpus_bytes / MB / r["steps"][s]["wall"],
                )
            )
    rows.append(
        _row(
            records,
            "repo size after snapshot",
            "MB",
            lambda r: r["repo_after_snapshot"]["apparent"] / MB,
        )
    )
    rows.append(
        _row(records, "repo files after snapshot", "", lambda r: r["repo_after_snapshot"]["files"])
    )
    rows.append(
        _row(
            records,
            "repo growth on resnapshot",
            "KB",
            lambda r: (
                (r["repo_after_resnapshot"]["apparent"] - r["repo_after_snapshot"]["apparent"])
                / 1000
            ),
        )
    )
    return rows


def _row(records: list[dict[str, Any]], label: str, unit: str, getter: Any) -> dict[str, Any]:
    ns, rs = _median(records, "neostore", getter), _median(records, "restic", getter)
    return {
        "what": label,
        "unit": unit,
        "neostore": ns,
        "restic": rs,
        "ratio": ns / rs if rs else None,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'median':32} {'unit':>5} {'neostore':>11} {'restic':>11} {'ns/restic':>10}"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        lines.append(
            f"{r['what']:32} {r['unit']:>5} {r['neostore']:11.2f} {r['restic']:11.2f} {ratio:>10}"
        )
    return "\n".join(lines)


def environment(neostore: str, restic: str) -> dict[str, Any]:
    """Versions and machine facts for the JSON record."""

    def out(cmd: list[str]) -> str:
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
        return res.stdout.strip()

    return {
        "restic_version": out([restic, "version"]),
        "neostore_git_head": out(["git", "rev-parse", "HEAD"]),
        "neostore_git_dirty_files": len(out(["git", "status", "--porcelain"]).splitlines()),
        "neostore_exe": neostore,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "measured_with": GNU_TIME or "os.wait4 (peak RSS floored at the parent's)",
    }


def pin_source(ref: str, into: Path) -> tuple[str, str]:
    """Export neostore's code at ``ref`` (``neostore/`` and ``cli/`` as ``neostore_cli/``).

    Returns the commit and a PYTHONPATH under which the installed ``neostore`` command
    runs that code rather than the live (editable, possibly changing) work tree.
    """
    sha = subprocess.run(
        ["git", "rev-parse", ref], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = into / f"src-{sha[:12]}"
    if not (dest / "neostore_cli").is_dir():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "neostore", "cli"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        (dest / "cli").rename(dest / "neostore_cli")
    probe = subprocess.run(
        [sys.executable, "-c", "import neostore, neostore_cli.main as m; print(m.__file__)"],
        env=_clean_env() | {"PYTHONPATH": str(dest)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(probe).is_relative_to(dest):
        raise SystemExit(f"pinned code not picked up: {probe}")
    return sha, str(dest)


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=1000, help="corpus size in MB (10^6 bytes)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per tool")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    p.add_argument("--restic", default=shutil.which("restic") or "restic")
    p.add_argument("--neostore", default=str(Path(sys.executable).parent / "neostore"))
    p.add_argument(
        "--max-other",
        type=float,
        default=0.3,
        help="a step is disturbed when other work averaged more than this many cores",
    )
    p.add_argument("--retries", type=int, default=2, help="re-runs of a disturbed tool run")
    p.add_argument("--ref", default="HEAD", help="run neostore's code as of this commit")
    p.add_argument(
        "--live", action="store_true", help="run the editable work tree as is instead of --ref"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir: Path = args.workdir.resolve()
    if workdir.is_relative_to(REPO_ROOT):
        raise SystemExit("the work dir must be outside the repository")
    corpus = workdir / "corpus"
    started = datetime.now(UTC)
    env = environment(args.neostore, args.restic)
    pythonpath = None
    if args.live:
        env["neostore_code"] = f"live work tree at {env['neostore_git_head']}"
    else:
        sha, pythonpath = pin_source(args.ref, workdir)
        env["neostore_code"] = f"commit {sha} (exported to {pythonpath})"
    print(f"restic: {env['restic_version']}\nneostore: {env['neostore_code']}", flush=True)

    meta = generate_corpus(corpus, args.size_mb)
    print(
        f"corpus: {meta['files']} files, {meta['bytes'] / MB:.1f} MB "
        f"{json.dumps(meta['composition'])}",
        flush=True,
    )
    print(f"warm-up read: {warm_cache(corpus):.1f} s", flush=True)

    records: list[dict[str, Any]] = []
    for rep in range(args.reps):
        tools: list[Tool] = [
            Neostore(args.neostore, workdir / "runs" / "neostore", pythonpath),
            Restic(args.restic, workdir / "runs" / "restic"),
        ]
        print(f"rep {rep}", flush=True)
        for tool in tools if rep % 2 == 0 else tools[::-1]:
            for rec in run_counted(tool, corpus, meta["digest"], args.max_other, args.retries):
                records.append(rec | {"rep": rep})

    rows = summarise(records, meta["bytes"])
    print()
    print(format_table(rows))
    still = [f"rep {r['rep']} {r['tool']}" for r in records if r["counted"] and r["disturbed"]]
    print(
        f"attempts: {len(records)}, counted: {sum(r['counted'] for r in records)}, "
        f"counted but disturbed: {', '.join(still) or 'none'}"
    )
    env["bench_process_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    env["neostore_git_dirty_files_at_end"] = environment(args.neostore, args.restic)[
        "neostore_git_dirty_files"
    ]
    result = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": env,
        "corpus": meta,
        "records": records,
        "medians": rows,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"quick-{started:%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nsaved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
