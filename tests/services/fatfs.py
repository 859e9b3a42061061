"""FAT-family file systems for restore tests, made in an image file and
mounted through FUSE (this kernel has no vfat or exFAT driver):

* exFAT: ``mkfs.exfat IMG``, a loop device, ``mount.exfat-fuse`` (Debian's
  exfatprogs and exfat-fuse);
* FAT: ``mkfs.fat IMG``, ``fusefat -o rw+ IMG DIR`` (dosfstools, fusefat).

Both fold case (``report.txt`` after ``Report.txt`` replaces it) and refuse
``?``, ``:`` and ``<``; fusefat keeps no modes, exfat-fuse no owners, and
neither extended attributes. Needs root (loop devices, FUSE mounts).

``python tests/services/fatfs.py mount exfat|fat DIR`` / ``umount DIR``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

KINDS = ("exfat", "fat")


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def mount(kind: str, work: Path, size_mib: int = 64) -> Path:
    """A fresh, empty file system of ``kind`` mounted at ``work/mnt``."""
    work.mkdir(parents=True, exist_ok=True)
    image, point = work / f"{kind}.img", work / "mnt"
    point.mkdir(exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(size_mib << 20)
    if kind == "exfat":
        _run("mkfs.exfat", str(image))
        loop = _run("losetup", "-f", "--show", str(image))
        (work / "loop").write_text(loop)
        _run("mount.exfat-fuse", loop, str(point))
    elif kind == "fat":
        _run("mkfs.fat", str(image))
        _run("fusefat", "-o", "rw+", str(image), str(point))
    else:
        raise ValueError(kind)
    deadline = time.monotonic() + 10
    while not point.is_mount():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} at {point}: not mounted")
        time.sleep(0.05)
    return point


def umount(work: Path) -> None:
    point = work / "mnt"
    deadline = time.monotonic() + 10
    while point.is_mount():
        done = subprocess.run(["umount", str(point)], capture_output=True, text=True)
        if done.returncode == 0:
            break
        if time.monotonic() > deadline:  # who holds it, for the error
            users = subprocess.run(["fuser", "-vm", str(point)], capture_output=True, text=True)
            raise RuntimeError(f"umount {point}: {done.stderr.strip()}; {users.stdout.strip()}")
        time.sleep(0.1)
    loop = work / "loop"
    if loop.exists():
        subprocess.run(["losetup", "-d", loop.read_text()], capture_output=True)
        loop.unlink()


if __name__ == "__main__":
    if sys.argv[1:2] == ["mount"] and len(sys.argv) == 4:
        print(mount(sys.argv[2], Path(sys.argv[3])))
    elif sys.argv[1:2] == ["umount"] and len(sys.argv) == 3:
        umount(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
