"""Serving :class:`.fs.SnapshotFs` through FUSE, with mfusepy.

Why mfusepy: it is maintained, synchronous (our reads are blocking calls
into the blob reader, which is thread-safe), binds libfuse 3 and 2 through
ctypes (no compiler, nothing to build on the user's machine), and is what
borg 2 uses. pyfuse3 needs trio and is no longer developed; fusepy is
unmaintained. Nothing here is imported until a mount starts, so the rest
of neostore runs where no FUSE library is installed.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from ..core.repository import Repository
from ..errors import NeostoreError, UsageError
from .chunks import DEFAULT_CACHE, ChunkCache
from .fs import SnapshotFs, Warn
from .layout import Layout
from .ops import fuse_class, operations

INSTALL_HINT = (
    "install FUSE 3 (Debian/Ubuntu: apt install fuse3 libfuse3-3; Fedora: dnf install fuse3; "
    "macOS: macFUSE)"
)


def check_mountpoint(mountpoint: str) -> None:
    if not os.path.isdir(mountpoint):
        raise UsageError(f"{mountpoint}: not a directory (create an empty one to mount on)")
    if os.listdir(mountpoint):
        raise UsageError(f"{mountpoint}: not empty (mount on an empty directory)")
    if os.path.ismount(mountpoint):
        raise UsageError(f"{mountpoint}: something is already mounted there")


def _binding() -> Any:
    if not os.path.exists("/dev/fuse") and os.uname().sysname == "Linux":
        raise NeostoreError(f"/dev/fuse is missing: load the fuse module or {INSTALL_HINT}")
    if "FUSE_LIBRARY_PATH" not in os.environ:
        # mfusepy takes libfuse 2 where both are installed; 3 has readdirplus
        found = ctypes.util.find_library("fuse3")
        if found:
            os.environ["FUSE_LIBRARY_PATH"] = found
    try:
        import mfusepy
    except (OSError, ImportError) as e:  # mfusepy finds libfuse when imported
        raise NeostoreError(f"no FUSE library found ({e}): {INSTALL_HINT}") from None
    return mfusepy


def serve(
    repo: Repository,
    layout: Layout,
    mountpoint: str,
    warn: Warn,
    cache_size: int = DEFAULT_CACHE,
    allow_other: bool = False,
) -> None:
    """Mount, serve in the foreground until unmounted (``fusermount -u``,
    Ctrl-C, SIGTERM, SIGHUP), and return."""
    check_mountpoint(mountpoint)
    mfusepy = _binding()
    fs = SnapshotFs(repo, layout, ChunkCache(repo, cache_size), warn)
    # nosuid, nodev: a setuid file or device node in a snapshot (a leaked
    # writer key can sign one) grants nothing through the mount
    options: dict[str, Any] = {
        "ro": True,
        "nosuid": True,
        "nodev": True,
        "fsname": "neostore",
        "subtype": "neostore",
        # a snapshot never changes: the kernel may keep what it was told
        "attr_timeout": 60,
        "entry_timeout": 60,
        "kernel_cache": True,
    }
    if allow_other:
        options.update(allow_other=True, default_permissions=True)
    stopping = threading.Event()
    fuse = fuse_class(mfusepy, fs)
    _until_stopped(
        lambda: fuse(operations(mfusepy, fs, stopping), mountpoint, foreground=True, **options),
        mountpoint,
        stopping,
    )


def _until_stopped(run: Callable[[], None], mountpoint: str, stopping: threading.Event) -> None:
    """Run the FUSE session; SIGINT, SIGTERM and SIGHUP end it cleanly.

    libfuse's own handlers would do, but libfuse 3 then reports the session
    as failed (fuse_main returns 8 for a loop ended by a signal). So the
    signals are blocked in every thread (libfuse's inherit the mask) and
    one thread waits for them, then asks the session to end from inside:
    a ``statfs`` of the mount point reaches :func:`.ops.operations`, which
    calls ``fuse_exit`` there. libfuse then unmounts as usual."""
    signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    ended = threading.Event()
    watcher = threading.Thread(
        target=_stop_on_signal, args=(signals, mountpoint, stopping, ended), daemon=True
    )
    watcher.start()
    try:
        run()
    except RuntimeError as e:  # mfusepy: fuse_main failed
        if not stopping.is_set():
            raise NeostoreError(f"the FUSE session failed (libfuse returned {e})") from None
    finally:
        ended.set()
        if watcher.ident is not None and watcher.is_alive():
            # wakes its sigwait, so that it takes no signal meant for later
            signal.pthread_kill(watcher.ident, signal.SIGHUP)
        watcher.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _stop_on_signal(
    signals: set[signal.Signals],
    mountpoint: str,
    stopping: threading.Event,
    ended: threading.Event,
) -> None:
    signal.sigwait(signals)
    if ended.is_set():  # the session ended without a signal
        return
    stopping.set()
    while True:  # again if the session was not serving yet
        with contextlib.suppress(OSError):
            os.statvfs(mountpoint)
        if ended.wait(0.5):
            return
