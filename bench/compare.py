"""Side-by-side benchmark of ``neostore snapshot`` against restic and borg on one corpus.

Run from the repository root::

    python -m bench compare [--size small|full] [--reps 3] [--workdir DIR]
                            [--peers restic,borg-lz4,borg-zstd3] [--no-install]

What it does:

* makes sure the peers are there: when ``restic``, ``borg`` or GNU ``/usr/bin/time`` is
  missing and the benchmark runs as root, it runs ``apt-get update`` once and
  ``apt-get install -y`` the missing Debian packages (``restic``, ``borgbackup``,
  ``time``). Without root (or with ``--no-install``) it says so and skips a missing
  peer (a missing GNU time falls back to ``os.wait4``);
* builds a deterministic, seeded corpus under ``WORKDIR/corpus-<size>`` (never inside
  the repository). ``full`` (1.4 GB): 300 MB of small source-like text files
  (1-39 KB, about 15 400 files, 500 to a directory), 600 MB of mid-size
  semi-compressible files (0.5-6 MiB, word text interleaved with random blocks) and
  500 MB of large incompressible random files (20-50 MiB). ``small`` is the same mix
  scaled to 100 MB. An existing corpus with the same parameters is reused;
* reads the whole corpus once, untimed, so all tools start from a warm page cache;
* for each repetition, alternating the tool order (reversed on odd repetitions), and
  with fresh repositories, caches and state directories, runs for every tool:
  ``init``, ``unlock`` (a listing of the empty repository: start-up plus key
  derivation, i.e. the cost of each tool's password KDF, reported on its own),
  first snapshot, unchanged re-snapshot, a "1 % change" snapshot and a full
  restore into an empty directory. The tools are neostore, ``restic`` (defaults:
  repository v2, compression auto), ``borg-lz4`` (``borg create -C lz4``) and
  ``borg-zstd3`` (``-C zstd,3``), both borg 1.2 with ``repokey-blake2`` and all of
  borg's state under the run directory (``BORG_BASE_DIR``); borg restores with
  ``borg extract`` run inside the empty restore directory;
* the change step: a seeded, deterministic edit of the shared corpus (a few bytes
  appended to 100 small files, 1 MiB overwritten inside each of the 2 largest files)
  is applied, untimed, right before each tool's change snapshot and reverted right
  after it (contents and mtimes restored, reverted files re-hashed), so every tool
  sees identical input. A marker file guards the corpus: if a run dies while the edit
  is applied, the next run regenerates the corpus;
* each command is one child process; its wall time, the user/sys CPU of it and its
  descendants and the peak RSS of its largest process (from GNU ``/usr/bin/time``,
  else ``os.wait4``) are recorded, and so is ``tree_pss``: the peak, sampled every
  20 ms, of the proportional set size summed over the command's whole process tree
  (neostore forks worker processes, so one process's RSS would understate it), and
  ``pss_after_kdf``, that peak after a password KDF's buffer was freed (neostore's
  256 MiB Argon2id, a security choice, apart from the pipeline's own memory); also
  the repository's size after the first snapshot, the re-snapshot and the change
  snapshot;
* restores restore the latest snapshot, i.e. the one taken of the CHANGED corpus, and
  are checked (file count, bytes and a SHA-256 of names, sizes and contents) against
  the changed corpus's digest, which is computed once up front by applying the edit,
  hashing and reverting. All checks are outside the timings;
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
* prints medians per step with one neostore/peer ratio column per peer and saves every
  raw measurement as JSON under ``bench/results/quick-<date>.json``.

neostore runs with its production Argon2id parameters (``NEOSTORE_TEST_KDF``, a test
knob of commits before issue 15, is removed from the environment).
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
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
MB = 1_000_000
SEED = 20240601
CORPUS_FORMAT = 2
#: corpus sizes (MB): small text, mid-size semi-compressible, large random
SIZES = {"full": (300, 600, 500), "small": (22, 42, 36)}
SMALL_FILE_BYTES = (1000, 39000)
SMALL_FILES_PER_DIR = 500
STEPS = ("init", "unlock", "snapshot", "resnapshot", "change", "restore")
PEERS = ("restic", "borg-lz4", "borg-zstd3")
CHANGE_SEED = SEED + 1
CHANGE_SMALL_FILES, CHANGE_LARGE_FILES = 100, 2
#: medians at or below this are treated as zero: no ratio (float noise in ``other_cpu``)
RATIO_FLOOR = 1e-6
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GNU_TIME_PATH = "/usr/bin/time"
#: Debian package that provides each external program
PACKAGES = {"restic": "restic", "borg": "borgbackup", "time": "time"}


def gnu_time() -> str | None:
    """GNU time's path if installed (checked at each call: it may be installed mid-run)."""
    return GNU_TIME_PATH if os.access(GNU_TIME_PATH, os.X_OK) else None


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
        size = min(rng.randint(*SMALL_FILE_BYTES), budget - total)
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


def generate_corpus(root: Path, size: str, seed: int = SEED) -> dict[str, Any]:
    """Build the corpus (or reuse a matching one); returns its composition."""
    marker = root.parent / f"{root.name}.json"
    small_mb, mid_mb, large_mb = SIZES[size]
    wanted = {"format": CORPUS_FORMAT, "size": size, "mb": list(SIZES[size]), "seed": seed}
    if marker.exists() and root.is_dir():
        meta: dict[str, Any] = json.loads(marker.read_text())
        if meta.get("params") == wanted:
            return meta
    shutil.rmtree(root, ignore_errors=True)
    marker.unlink(missing_ok=True)
    rng = random.Random(seed)
    text = TextSource(rng)
    t0 = time.perf_counter()
    composition = {
        "small_text": _gen_small(root, small_mb * MB, rng, text),
        "mid_semi": _gen_sized(
            root,
            "mid",
            mid_mb * MB,
            MIB // 2,
            6 * MIB,
            lambda n: _mixed_content(n, rng, text),
            rng,
        ),
        "random": _gen_sized(
            root,
            "random",
            large_mb * MB,
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


def chosen_corpus(real: Path | None, work: Path, size: str) -> tuple[Path, dict[str, Any]]:
    """A directory of real files (``--corpus``) or the generated corpus of
    ``size`` under ``work``, with its description; its page cache warmed."""
    if real is not None:
        corpus = real.resolve()
        files = list(iter_files(corpus))
        meta = {"files": len(files), "bytes": sum(p.stat().st_size for p in files),
                "path": str(corpus)}  # fmt: skip
    else:
        corpus = work / f"corpus-{size}"
        meta = generate_corpus(corpus, size)
    warm_cache(corpus)
    print(f"corpus: {meta['files']} files, {meta['bytes'] / MB:.1f} MB", flush=True)
    return corpus, meta


def save_results(kind: str, name: str, payload: dict[str, Any]) -> Path:
    """``bench/results/<kind>-<name>-<time>.json``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(__file__).parent / "results" / f"{kind}-{name}-{stamp}.json"
    out.write_text(json.dumps(payload, indent=1))
    print(f"results: {out}")
    return out


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` in a stable order (a real corpus also
    holds symlinks, some dangling: :func:`tree_digest` hashes those)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if stat.S_ISREG(path.lstat().st_mode):
                yield path


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
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        # a symlink to a directory is among dirnames, where its target
        # exists: one leaving the tree may resolve at the source only
        for name in sorted(filenames + dirnames):
            path = Path(dirpath) / name
            if path.is_symlink():
                h.update(
                    os.fsencode(path.relative_to(root)) + b"\0->" + os.fsencode(os.readlink(path))
                )
    return {"files": files, "bytes": total, "sha256": h.hexdigest()}


def warm_cache(root: Path) -> float:
    """Read every corpus file once (untimed for the tools); returns seconds taken."""
    t0 = time.perf_counter()
    for path in iter_files(root):
        with path.open("rb") as f:
            while f.read(4 * MIB):
                pass
    return time.perf_counter() - t0


def drop_caches(corpus: Path) -> bool:
    """Start a tool's run from the same page-cache state, then read the
    corpus once (snapshots are measured warm). Without this, ext4's check
    for recently deleted inodes (inode tables of the previous run's deleted
    restore, still cached) made later restores 2-3x slower in system time
    (docs/performance.md). Root only; returns whether it applied."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    warm_cache(corpus)
    return True


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run a command after a sync; its wall time and stdout (exit on failure)."""
    subprocess.run(["sync"], check=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.stdout


def dir_size(root: Path) -> dict[str, int]:
    """Apparent bytes, allocated bytes and file count under ``root``."""
    apparent = allocated = files = 0
    for path in iter_files(root):
        st = path.lstat()
        apparent += st.st_size
        allocated += st.st_blocks * 512
        files += 1
    return {"apparent": apparent, "allocated": allocated, "files": files}


# -- the 1 % change ----------------------------------------------------------------------


@dataclass
class Edit:
    """One seeded edit of one corpus file, with what is needed to undo it."""

    path: Path
    offset: int  # where ``data`` goes; the original size for an append
    data: bytes
    original: bytes  # overwritten bytes (empty for an append)
    size: int
    atime_ns: int
    mtime_ns: int
    sha256: str  # of the original file


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MIB):
            h.update(block)
    return h.hexdigest()


def _edit(path: Path, offset: int, data: bytes) -> Edit:
    st = path.stat()
    with path.open("rb") as f:
        f.seek(offset)
        original = f.read(len(data)) if offset < st.st_size else b""
    return Edit(
        path, offset, data, original, st.st_size, st.st_atime_ns, st.st_mtime_ns, _file_sha256(path)
    )


class CorpusChange:
    """The deterministic "1 % change": applied and reverted in place, around one step.

    Appends 8-64 bytes to ``CHANGE_SMALL_FILES`` seeded small files and overwrites
    1 MiB (seeded offset and content) inside each of the ``CHANGE_LARGE_FILES`` largest
    files. A marker file exists while the change is applied.
    """

    def __init__(self, corpus: Path, seed: int = CHANGE_SEED) -> None:
        self.marker = dirty_marker(corpus)
        rng = random.Random(seed)
        files = list(iter_files(corpus))
        small = [f for f in files if f.is_relative_to(corpus / "small")]
        picked = rng.sample(small, min(CHANGE_SMALL_FILES, len(small)))
        letters = b"abcdefghijklmnopqrstuvwxyz \n"
        self.edits = [
            _edit(f, f.stat().st_size, bytes(rng.choices(letters, k=rng.randint(8, 64))))
            for f in picked
        ]
        sizes = {f: f.stat().st_size for f in files}
        largest = sorted(files, key=lambda f: (-sizes[f], str(f)))[:CHANGE_LARGE_FILES]
        for f in largest:
            n = min(MIB, sizes[f])
            self.edits.append(_edit(f, rng.randrange(sizes[f] - n + 1), rng.randbytes(n)))

    @property
    def bytes_written(self) -> int:
        return sum(len(e.data) for e in self.edits)

    def apply(self) -> None:
        self.marker.touch()
        for e in self.edits:
            with e.path.open("r+b") as f:
                f.seek(e.offset)
                f.write(e.data)
        subprocess.run(["sync"], check=True)

    def revert(self) -> None:
        for e in self.edits:
            if e.original:
                with e.path.open("r+b") as f:
                    f.seek(e.offset)
                    f.write(e.original)
            os.truncate(e.path, e.size)
            os.utime(e.path, ns=(e.atime_ns, e.mtime_ns))
        bad = [str(e.path) for e in self.edits if _file_sha256(e.path) != e.sha256]
        if bad:
            raise SystemExit(f"corpus change not reverted cleanly: {bad[:3]}")
        subprocess.run(["sync"], check=True)
        self.marker.unlink(missing_ok=True)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The change is in place inside the ``with`` block, reverted on leaving it."""
        self.apply()
        try:
            yield
        finally:
            self.revert()


def dirty_marker(corpus: Path) -> Path:
    """Exists while a change is applied to ``corpus``; a leftover one means "regenerate"."""
    return corpus.parent / f"{corpus.name}.changed"


def discard_if_dirty(corpus: Path) -> None:
    """Force regeneration of a corpus that a crashed run left changed."""
    marker = dirty_marker(corpus)
    if marker.exists():
        print(f"{corpus} was left changed by an interrupted run: regenerating", flush=True)
        (corpus.parent / f"{corpus.name}.json").unlink(missing_ok=True)
        marker.unlink()


# -- measuring -------------------------------------------------------------------------


@dataclass
class Measurement:
    """One command: wall seconds, CPU seconds (its whole process tree), peak RSS of its
    largest process (KiB) and peak PSS summed over its process tree (KiB, sampled)."""

    cmd: list[str]
    wall: float
    user: float
    sys: float
    maxrss_kib: int
    returncode: int
    #: CPU seconds the rest of the machine used meanwhile: other processes and kernel
    #: threads, including writeback of the command's own writes
    other_cpu: float
    #: peak of the summed proportional set size of the command and all its descendants
    #: (a page shared by n processes counts 1/n in each), sampled every 20 ms: the
    #: memory the command really occupies, also when it forks workers
    tree_pss_kib: int = 0
    #: the same peak, but only over the samples after a password KDF's buffer was
    #: freed (PSS fell below half its running peak of at least 192 MiB); the whole
    #: peak when there is no such drop. Separates neostore's Argon2id (256 MiB, a
    #: security choice) from the memory of the backup pipeline itself
    pss_after_kdf_kib: int = 0

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_pss_kib(root: int) -> int:
    """Summed Pss (KiB) of ``root`` and its descendants right now (0 if gone)."""
    children = _children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


#: a drop of the tree's PSS below half of a running peak at least this high marks the
#: end of a memory-hard key derivation
KDF_PEAK_KIB = 192 * 1024


def peak_after_kdf(samples: list[int]) -> int:
    """Peak of ``samples`` after the first KDF-sized drop (see ``pss_after_kdf_kib``)."""
    running = 0
    for i, value in enumerate(samples):
        running = max(running, value)
        if running >= KDF_PEAK_KIB and value < running / 2:
            return max(samples[i:])
    return max(samples, default=0)


class PssSampler:
    """Samples :func:`tree_pss_kib` of a process tree in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import threading

        self.samples: list[int] = []
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_pss_kib(self._pid))
            self._stop.wait(self._interval)

    def stop(self) -> tuple[int, int]:
        """``(peak, peak after the KDF)``."""
        self._stop.set()
        self._thread.join()
        return max(self.samples, default=0), peak_after_kdf(self.samples)


def busy_cpu_seconds() -> float:
    """Machine-wide non-idle CPU seconds so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_measured(
    cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> Measurement:
    """Run ``cmd`` (in ``cwd``) to completion; output goes to ``log``. Fails loudly on error.

    With GNU time, CPU and peak RSS are those of the command alone. Without it they come
    from ``os.wait4``, whose peak RSS is never below this (Python) process's own: the
    kernel carries the spawning process's high-water mark across ``exec``.
    """
    stats = log.with_suffix(".time")
    timer = gnu_time()
    full = [timer, "-f", "%U %S %M", "-o", str(stats), *cmd] if timer else cmd
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        busy0, t0 = busy_cpu_seconds(), time.perf_counter()
        proc = subprocess.Popen(
            full, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        sampler = PssSampler(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        wall, busy = time.perf_counter() - t0, busy_cpu_seconds() - busy0
        pss, pss_after_kdf = sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    subprocess.run(["sync"], check=True)
    if timer:
        fields = stats.read_text().split()[-3:]
        user, sys_, rss = float(fields[0]), float(fields[1]), int(fields[2])
    else:
        user, sys_, rss = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
    return Measurement(
        cmd, wall, user, sys_, rss, 0, max(0.0, busy - user - sys_), pss, pss_after_kdf
    )


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
        """The command line of every step in ``STEPS``."""
        raise NotImplementedError

    def cwd(self, step: str) -> Path | None:
        """Working directory of ``step`` (None: inherit)."""
        return None


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
            "unlock": [self.exe, "snapshots"],
            "snapshot": [self.exe, "snapshot", str(corpus)],
            "resnapshot": [self.exe, "snapshot", str(corpus)],
            "change": [self.exe, "snapshot", str(corpus)],
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
            "unlock": [self.exe, "snapshots"],
            "snapshot": [self.exe, "backup", str(corpus)],
            "resnapshot": [self.exe, "backup", str(corpus)],
            "change": [self.exe, "backup", str(corpus)],
            "restore": [self.exe, "restore", "latest", "--target", str(self.restore_dir)],
        }


class Borg(Tool):
    """borg 1.2 with ``repokey-blake2`` and one compression setting (``-C``)."""

    def __init__(self, name: str, exe: str, base: Path, compression: str) -> None:
        env = _clean_env()
        env.update(
            BORG_PASSPHRASE="bench",
            BORG_REPO=str(base / "repo"),
            BORG_BASE_DIR=str(base / "borg-base"),
        )
        super().__init__(name, exe, base, env)
        self.compression = compression

    def commands(self, corpus: Path) -> dict[str, list[str]]:
        def create(archive: str) -> list[str]:
            return [self.exe, "create", "-C", self.compression, f"::{archive}", str(corpus)]

        return {
            "init": [self.exe, "init", "--encryption=repokey-blake2"],
            "unlock": [self.exe, "list"],
            "snapshot": create("snapshot"),
            "resnapshot": create("resnapshot"),
            "change": create("change"),
            # the latest archive, as for the other tools; borg extracts into the cwd
            "restore": [self.exe, "extract", "::change"],
        }

    def cwd(self, step: str) -> Path | None:
        return self.restore_dir if step == "restore" else None


BORG_COMPRESSION = {"borg-lz4": "lz4", "borg-zstd3": "zstd,3"}


def make_peer(name: str, exes: dict[str, str], base: Path) -> Tool:
    """The peer ``name`` (one of ``PEERS``) running in ``base``."""
    if name == "restic":
        return Restic(exes["restic"], base)
    return Borg(name, exes["borg"], base, BORG_COMPRESSION[name])


def peer_program(name: str) -> str:
    """The external program a peer needs (``restic`` or ``borg``)."""
    return "restic" if name == "restic" else "borg"


def _clean_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("NEOSTORE_", "RESTIC_", "BORG_"))
    }


def missing_programs(programs: list[str]) -> list[str]:
    """Those of ``programs`` (names on PATH, or absolute paths) that cannot be run."""
    return [
        p for p in programs if not (os.access(p, os.X_OK) if os.path.isabs(p) else shutil.which(p))
    ]


def ensure_programs(programs: list[str], install: bool) -> list[str]:
    """Install missing ``programs`` with apt-get when root (and ``install``).

    Runs ``apt-get update`` once, then ``apt-get install -y`` of the missing packages
    only (installed ones are never upgraded). Returns what is still missing.
    """
    missing = missing_programs(programs)
    if not missing:
        return []
    packages = sorted({PACKAGES[Path(p).name] for p in missing if Path(p).name in PACKAGES})
    if not install or os.geteuid() != 0:
        why = "--no-install given" if not install else "not running as root"
        print(f"missing {', '.join(missing)}; {why}, so not installing {' '.join(packages)}")
        return missing
    print(f"installing {' '.join(packages)} with apt-get", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], env=env, check=False, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", *packages], env=env, check=False)
    still = missing_programs(programs)
    if still:
        print(f"still missing after apt-get: {', '.join(still)}")
    return still


def available_peers(wanted: list[str], exes: dict[str, str], install: bool) -> list[str]:
    """The peers of ``wanted`` whose program exists (installing it if possible)."""
    programs = [*sorted({exes[peer_program(p)] for p in wanted}), GNU_TIME_PATH]
    missing = ensure_programs(programs, install)
    if GNU_TIME_PATH in missing:
        print("GNU time missing: CPU and peak RSS come from os.wait4")
    skipped = [p for p in wanted if exes[peer_program(p)] in missing]
    for peer in skipped:
        print(f"skipping {peer}: {exes[peer_program(peer)]} not found")
    return [p for p in wanted if p not in skipped]


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


def run_step(tool: Tool, step: str, cmd: list[str], change: CorpusChange) -> Measurement:
    """One measured step; the change step runs with ``change`` applied to the corpus."""
    log = tool.base / "log.txt"
    if step != "change":
        return run_measured(cmd, tool.env, log, tool.cwd(step))
    with change.applied():
        return run_measured(cmd, tool.env, log, tool.cwd(step))


def run_tool(
    tool: Tool, corpus: Path, expected: dict[str, Any], change: CorpusChange
) -> dict[str, Any]:
    """All ``STEPS`` in a fresh ``tool.base``; returns the record.

    The restore (of the latest snapshot, the changed one) is checked against
    ``expected``, the digest of the changed corpus.
    """
    shutil.rmtree(tool.base, ignore_errors=True)
    tool.base.mkdir(parents=True)
    tool.restore_dir.mkdir()
    caches_dropped = drop_caches(corpus)
    settle()
    record: dict[str, Any] = {"tool": tool.name, "steps": {}, "caches_dropped": caches_dropped}
    for step, cmd in tool.commands(corpus).items():
        m = run_step(tool, step, cmd, change)
        record["steps"][step] = asdict(m) | {"cpu": m.cpu}
        if step in ("snapshot", "resnapshot", "change"):
            record[f"repo_after_{step}"] = dir_size(tool.repo)
    restored = tool.restore_dir / corpus.relative_to(corpus.anchor)
    got = tree_digest(restored)
    record["restore_verified"] = got == expected
    if not record["restore_verified"]:
        raise SystemExit(f"{tool.name}: restored tree differs: {got} != {expected}")
    shutil.rmtree(tool.base)
    return record


# -- reporting -------------------------------------------------------------------------


def _median(records: list[dict[str, Any]], tool: str, getter: Any) -> float | None:
    values = [getter(r) for r in records if r["tool"] == tool and r["counted"]]
    return statistics.median(values) if values else None


def disturbed_steps(record: dict[str, Any], max_other: float) -> list[str]:
    """Steps during which the rest of the machine averaged over ``max_other`` cores."""
    return [s for s, m in record["steps"].items() if m["other_cpu"] > max_other * m["wall"]]


def run_counted(
    tool: Tool,
    corpus: Path,
    expected: dict[str, Any],
    change: CorpusChange,
    max_other: float,
    retries: int,
) -> list[dict[str, Any]]:
    """Run ``tool`` until no step was disturbed (at most ``1 + retries`` times).

    Every attempt is returned; exactly one (the last) has ``counted`` set.
    """
    attempts: list[dict[str, Any]] = []
    for attempt in range(retries + 1):
        rec = run_tool(tool, corpus, expected, change) | {"attempt": attempt, "counted": False}
        rec["disturbed"] = disturbed_steps(rec, max_other)
        attempts.append(rec)
        steps = rec["steps"]
        print(
            f"  {tool.name:10} "
            + " ".join(f"{s}={steps[s]['wall']:.1f}s/{steps[s]['cpu']:.1f}cpu" for s in STEPS)
            + f" other={sum(v['other_cpu'] for v in steps.values()):.1f}cpu-s"
            + (f" DISTURBED: {','.join(rec['disturbed'])}" if rec["disturbed"] else ""),
            flush=True,
        )
        if not rec["disturbed"]:
            break
    attempts[-1]["counted"] = True
    return attempts


def summarise(
    records: list[dict[str, Any]], corpus_bytes: int, tools: list[str]
) -> list[dict[str, Any]]:
    """Median rows: one per (step, metric), with every tool and neostore/peer ratios."""
    rows: list[dict[str, Any]] = []
    for step in STEPS:
        for metric, unit, scale in (
            ("wall", "s", 1.0),
            ("cpu", "s", 1.0),
            ("user", "s", 1.0),
            ("sys", "s", 1.0),
            ("other_cpu", "s", 1.0),
            ("maxrss_kib", "MiB", 1 / 1024),
            ("tree_pss_kib", "MiB", 1 / 1024),
            ("pss_after_kdf_kib", "MiB", 1 / 1024),
        ):
            rows.append(
                _row(
                    records,
                    tools,
                    f"{step} {metric.replace('_kib', '')}",
                    unit,
                    lambda r, s=step, m=metric, k=scale: r["steps"][s][m] * k,
                )
            )
        if step in ("snapshot", "restore"):
            rows.append(
                _row(
                    records,
                    tools,
                    f"{step} throughput",
                    "MB/s",
                    lambda r, s=step: corpus_bytes / MB / r["steps"][s]["wall"],
                )
            )
    rows.append(
        _row(
            records,
            tools,
            "repo size after snapshot",
            "MB",
            lambda r: r["repo_after_snapshot"]["apparent"] / MB,
        )
    )
    rows.append(
        _row(
            records,
            tools,
            "repo files after snapshot",
            "",
            lambda r: r["repo_after_snapshot"]["files"],
        )
    )
    for step, before in (("resnapshot", "snapshot"), ("change", "resnapshot")):
        rows.append(_growth_row(records, tools, step, before))
    return rows


def _growth_row(
    records: list[dict[str, Any]], tools: list[str], step: str, before: str
) -> dict[str, Any]:
    def growth(r: dict[str, Any]) -> float:
        after = r[f"repo_after_{step}"]["apparent"]
        return float(after - r[f"repo_after_{before}"]["apparent"]) / 1000

    return _row(records, tools, f"repo growth on {step}", "KB", growth)


def _row(
    records: list[dict[str, Any]], tools: list[str], label: str, unit: str, getter: Any
) -> dict[str, Any]:
    values = {t: _median(records, t, getter) for t in tools}
    ns = values["neostore"]
    ratios = {
        t: ns / v if ns is not None and v is not None and abs(v) > RATIO_FLOOR else None
        for t, v in values.items()
        if t != "neostore"
    }
    return {"what": label, "unit": unit, "values": values, "ratios": ratios}


def _cell(value: float | None, width: int) -> str:
    return f"{value:{width}.2f}" if value is not None else f"{'-':>{width}}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Medians of every tool, then one ``ns/<peer>`` ratio column per peer."""
    tools, peers = list(rows[0]["values"]), list(rows[0]["ratios"])
    head = f"{'median':30} {'unit':>5}" + "".join(f" {t:>10}" for t in tools)
    lines = [head + "".join(f" {'ns/' + p:>13}" for p in peers)]
    for r in rows:
        line = f"{r['what']:30} {r['unit']:>5}"
        line += "".join(" " + _cell(r["values"][t], 10) for t in tools)
        line += "".join(" " + _cell(r["ratios"][p], 13) for p in peers)
        lines.append(line)
    return "\n".join(lines)


def environment(neostore: str, exes: dict[str, str]) -> dict[str, Any]:
    """Versions and machine facts for the JSON record."""

    def out(cmd: list[str]) -> str:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
        except OSError as exc:
            return f"unavailable: {exc}"
        return res.stdout.strip()

    timer = gnu_time()
    return {
        "restic_version": out([exes["restic"], "version"]),
        "borg_version": out([exes["borg"], "--version"]),
        "neostore_git_head": out(["git", "rev-parse", "HEAD"]),
        "neostore_git_dirty_files": len(out(["git", "status", "--porcelain"]).splitlines()),
        "neostore_exe": neostore,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "measured_with": timer or "os.wait4 (peak RSS floored at the parent's)",
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
    p = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__.splitlines()[0])
    p.add_argument(
        "--size", choices=sorted(SIZES), default="full", help="corpus: full (1.4 GB) or small"
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions per tool")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    p.add_argument("--restic", default="restic", help="restic command (name or path)")
    p.add_argument("--borg", default="borg", help="borg command (name or path)")
    p.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated peers to compare with, of {', '.join(PEERS)}",
    )
    p.add_argument("--no-install", action="store_true", help="never apt-get install missing peers")
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
    args = p.parse_args(argv)
    args.peers = [x for x in args.peers.split(",") if x]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        p.error(f"unknown peers: {', '.join(sorted(unknown))}")
    return args


def prepare_corpus(corpus: Path, size: str) -> tuple[dict[str, Any], CorpusChange]:
    """Generate (or reuse) the corpus, plan the change and hash the changed corpus.

    ``meta["changed_digest"]`` is the digest that restores are checked against.
    """
    discard_if_dirty(corpus)
    meta = generate_corpus(corpus, size)
    print(
        f"corpus: {meta['files']} files, {meta['bytes'] / MB:.1f} MB "
        f"{json.dumps(meta['composition'])}",
        flush=True,
    )
    change = CorpusChange(corpus)
    with change.applied():
        meta["changed_digest"] = tree_digest(corpus)
    meta["change"] = {
        "files": len(change.edits),
        "bytes_written": change.bytes_written,
        "seed": CHANGE_SEED,
    }
    print(f"change step: {json.dumps(meta['change'])}", flush=True)
    return meta, change


def run_reps(
    args: argparse.Namespace,
    peers: list[str],
    exes: dict[str, str],
    pythonpath: str | None,
    corpus: Path,
    meta: dict[str, Any],
    change: CorpusChange,
) -> list[dict[str, Any]]:
    """Every repetition of every tool, the order reversed on odd repetitions."""
    runs = args.workdir.resolve() / "runs"
    records: list[dict[str, Any]] = []
    for rep in range(args.reps):
        tools: list[Tool] = [Neostore(args.neostore, runs / "neostore", pythonpath)]
        tools += [make_peer(p, exes, runs / p) for p in peers]
        print(f"rep {rep}", flush=True)
        for tool in tools if rep % 2 == 0 else tools[::-1]:
            for rec in run_counted(
                tool, corpus, meta["changed_digest"], change, args.max_other, args.retries
            ):
                records.append(rec | {"rep": rep})
    return records


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir: Path = args.workdir.resolve()
    if workdir.is_relative_to(REPO_ROOT):
        raise SystemExit("the work dir must be outside the repository")
    corpus = workdir / f"corpus-{args.size}"
    started = datetime.now(UTC)
    exes = {"restic": args.restic, "borg": args.borg}
    peers = available_peers(args.peers, exes, not args.no_install)
    exes = {k: shutil.which(v) or v for k, v in exes.items()}
    env = environment(args.neostore, exes)
    pythonpath = None
    if args.live:
        env["neostore_code"] = f"live work tree at {env['neostore_git_head']}"
    else:
        sha, pythonpath = pin_source(args.ref, workdir)
        env["neostore_code"] = f"commit {sha} (exported to {pythonpath})"
    env["peers"] = peers
    print(
        f"restic: {env['restic_version']}\nborg: {env['borg_version']}\n"
        f"neostore: {env['neostore_code']}\npeers: {', '.join(peers) or 'none'}",
        flush=True,
    )

    meta, change = prepare_corpus(corpus, args.size)
    print(f"warm-up read: {warm_cache(corpus):.1f} s", flush=True)
    records = run_reps(args, peers, exes, pythonpath, corpus, meta, change)

    rows = summarise(records, meta["bytes"], ["neostore", *peers])
    print()
    print(format_table(rows))
    still = [f"rep {r['rep']} {r['tool']}" for r in records if r["counted"] and r["disturbed"]]
    print(
        f"attempts: {len(records)}, counted: {sum(r['counted'] for r in records)}, "
        f"counted but disturbed: {', '.join(still) or 'none'}"
    )
    env["bench_process_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    env["neostore_git_dirty_files_at_end"] = environment(args.neostore, exes)[
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
    out = RESULTS_DIR / f"compare-{args.size}-{started:%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nsaved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
