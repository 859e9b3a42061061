"""Running ``neostore mount`` for a test: a real process, a real FUSE mount."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import PASSWORD, Cli


@contextlib.contextmanager
def mounted(
    repo: Cli, mnt: Path, password: str = PASSWORD, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``neostore mount`` of ``repo`` on ``mnt`` until the block ends
    (SIGTERM, then a lazy unmount if it is still there)."""
    mnt.mkdir(exist_ok=True)
    env = dict(repo.env, NEOSTORE_PASSWORD=password)
    env.setdefault("NEOSTORE_REPO", str(repo.repo))
    proc = subprocess.Popen(
        [sys.executable, "-m", "neostore_cli.main", "mount", str(mnt), "--refresh", "0", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mnt):
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the mount did not appear"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if os.path.ismount(mnt):
            subprocess.run(["fusermount", "-u", "-z", str(mnt)], check=False)
