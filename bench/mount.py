"""Browsing through a mount: ``python -m bench mount [--size small] [--reps 3]``.

Per repetition, for neostore and ``restic mount`` side by side (who goes
first alternates), each with a fresh repository (production KDF) holding
one snapshot of the bench corpus plus a folder of 100 000 small files and
a 1 GiB file of random bytes (made once, seeded):

* **ls -l**: ``ls -l`` of the 100 000-entry folder through the mount,
  the first time (nothing cached);
* **middle read**: the first 1 MiB read from the middle of the 1 GiB file;
* **cp -a**: the whole corpus copied out of the mount, checked against the
  corpus, and, for the ratio the issue asks for, the same tool's
  ``restore`` of the corpus from the same snapshot; as the floor, the
  same ``cp -a`` from the corpus on local disk (no mount at all; and the
  same ``ls -l`` of the folder on local disk, for the first); copies
  and restores are written to tmpfs (``/dev/shm``) where there is one;
* **mount memory**: the mount process's peak RSS (VmHWM) after all that.

Prints medians and neostore/restic ratios; saves raw numbers under
``bench/results/mount-<size>-<date>.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import sidebyside
from bench.compare import MIB, timed_run, tree_digest

WIDE = 100_000
BIG = 1 << 30


def _extra(work: Path) -> Path:
    """The 100 000-entry folder and the 1 GiB file, made once."""
    extra = work / "mount-extra"
    done = extra / ".complete"
    if done.exists():
        return extra
    shutil.rmtree(extra, ignore_errors=True)
    (extra / "wide").mkdir(parents=True)
    for i in range(WIDE):
        (extra / "wide" / f"entry-{i:06d}.txt").write_text(f"{i}\n")
    rng = random.Random(16)
    with open(extra / "big.bin", "wb") as f:
        for _ in range(BIG // (64 * MIB)):
            f.write(rng.randbytes(64 * MIB))
    done.write_text("")
    return extra


def _scratch() -> Path:
    """Where copies and restores are written: tmpfs when there is one. On
    this VM the disk's writeback made the same restore take 3 s or 14 s
    depending on what was written before; in memory they take the same."""
    shm = Path("/dev/shm")
    base = shm / "neostore-bench-mount" if shm.is_dir() and os.access(shm, os.W_OK) else None
    if base is None:
        base = Path("/tmp/neostore-bench-mount")
    base.mkdir(exist_ok=True)
    return base


def _mounted(
    cmd: list[str], env: dict[str, str], mnt: Path, ready: Path
) -> subprocess.Popen[bytes]:
    mnt.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{' '.join(cmd)}: the mount did not come up")
        time.sleep(0.05)
    return proc


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _measure(
    proc: subprocess.Popen[bytes], inside: Callable[[Path], Path], corpus: Path, run: Path
) -> dict[str, Any]:
    extra = run.parent / "mount-extra"
    # through `latest` every path would resolve the symlink again (one more
    # request per entry, for both tools): as a user who went into the folder
    wide = os.path.realpath(inside(extra / "wide"))
    started = time.monotonic()
    subprocess.run(["ls", "-l", wide], check=True, stdout=subprocess.DEVNULL)
    ls_wall = time.monotonic() - started
    started = time.monotonic()
    with open(inside(extra / "big.bin"), "rb") as f:
        f.seek(BIG // 2)
        if len(f.read(MIB)) != MIB:
            raise SystemExit("short read through the mount")
    middle = time.monotonic() - started
    out = _scratch() / "copied"
    started = time.monotonic()
    subprocess.run(["cp", "-a", str(inside(corpus)), str(out)], check=True)
    cp_wall = time.monotonic() - started
    if tree_digest(out) != tree_digest(corpus):
        raise SystemExit("the corpus copied out of the mount differs from the corpus")
    rss = _peak_rss(proc.pid)
    shutil.rmtree(out)
    # the floors: the same ls -l and cp -a on local disk, no mount
    started = time.monotonic()
    subprocess.run(["ls", "-l", extra / "wide"], check=True, stdout=subprocess.DEVNULL)
    ls_local = time.monotonic() - started
    started = time.monotonic()
    subprocess.run(["cp", "-a", str(corpus), str(out)], check=True)
    cp_local = time.monotonic() - started
    shutil.rmtree(out)
    return {
        "ls_wall": ls_wall,
        "ls_local_wall": ls_local,
        "middle_read": middle,
        "cp_wall": cp_wall,
        "cp_local_wall": cp_local,
        "mount_rss": rss,
    }


def _stop(proc: subprocess.Popen[bytes], mnt: Path) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        subprocess.run(["fusermount", "-u", "-z", str(mnt)], check=False)
        proc.kill()


def _neostore(run: Path, corpus: Path, neostore: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    (run / "pw").write_text("bench password\n")
    env.update(
        NEOSTORE_CACHE_DIR=str(run / "cache"),
        NEOSTORE_STATE_DIR=str(run / "state"),
        NEOSTORE_PASSWORD_FILE=str(run / "pw"),
        NEOSTORE_REPO=str(run / "repo"),
    )
    extra = run.parent / "mount-extra"
    timed_run([neostore, "init"], env)
    timed_run([neostore, "snapshot", str(corpus), str(extra)], env)
    restored = _scratch() / "r"
    restore = [neostore, "restore", f"latest:{corpus}", "--to", str(restored)]
    restore_wall, _ = timed_run(restore, env)  # the corpus alone, as cp -a copies
    shutil.rmtree(restored)
    mnt = run / "mnt"
    latest = mnt / "default" / "latest"
    proc = _mounted([neostore, "mount", str(mnt)], env, mnt, mnt / "default")
    try:
        found = _measure(proc, lambda p: latest / str(p).lstrip("/"), corpus, run)
    finally:
        _stop(proc, mnt)
    return {**found, "restore_wall": restore_wall}


def _restic(run: Path, corpus: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    (run / "pw").write_text("bench password\n")
    env.update(
        RESTIC_CACHE_DIR=str(run / "cache"),
        RESTIC_PASSWORD_FILE=str(run / "pw"),
        RESTIC_REPOSITORY=str(run / "repo"),
    )
    extra = run.parent / "mount-extra"
    timed_run(["restic", "init"], env)
    timed_run(["restic", "backup", "-q", str(corpus), str(extra)], env)
    restored = _scratch() / "r"
    restore = ["restic", "restore", "latest", "--target", str(restored), "--include", str(corpus)]
    restore_wall, _ = timed_run(restore, env)
    shutil.rmtree(restored)
    mnt = run / "mnt"
    latest = mnt / "snapshots" / "latest"
    proc = _mounted(["restic", "mount", str(mnt)], env, mnt, mnt / "snapshots")
    try:
        found = _measure(proc, lambda p: latest / str(p).lstrip("/"), corpus, run)
    finally:
        _stop(proc, mnt)
    return {**found, "restore_wall": restore_wall}


def _cp_over_restore(records: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    lines = []
    for tool in ("neostore", "restic"):
        for key, what in (("cp_wall", "out of the mount"), ("cp_local_wall", "from local disk")):
            ratios = sorted(r[tool][key] / r[tool]["restore_wall"] for r in records if tool in r)
            if ratios:
                median = ratios[len(ratios) // 2]
                lines.append(f"{tool}: cp -a {what} / {tool} restore: {median:.2f}x")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    work = parser.parse_known_args(argv)[0].workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    _extra(work)
    steps: dict[str, sidebyside.Step] = {
        "neostore": _neostore,
        "restic": lambda run, corpus, _: _restic(run, corpus),
    }
    rows = [
        ("ls_wall", "ls -l 100k entries (s)", 1),
        ("ls_local_wall", "ls -l, no mount (s)", 1),
        ("middle_read", "1 MiB mid-file read (s)", 1),
        ("cp_wall", "cp -a corpus (s)", 1),
        ("cp_local_wall", "cp -a, no mount (s)", 1),
        ("restore_wall", "restore (s)", 1),
        ("mount_rss", "mount peak RSS (MiB)", MIB),
    ]
    return sidebyside.run("mount", __doc__, argv, steps, rows, _cp_over_restore)
