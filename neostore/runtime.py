"""Process-wide settings for entry points (the CLI, benchmarks). The library
calls them only in the worker processes it forks itself."""

from __future__ import annotations

MIB = 1024 * 1024


def tune_malloc(mmap_threshold: int = 9 * MIB, trim_threshold: int = 16 * MIB) -> bool:
    """Serve buffers below ``mmap_threshold`` (chunks and blobs, at most the
    8 MiB chunk maximum plus overhead) from the heap instead of a fresh mmap
    each: every new mapping costs page faults, which on the project's VMs
    made encrypting a 1 MiB blob ~3.5x slower (bench/stages.py). Larger
    buffers (the chunker's 16 MiB stream buffer, Argon2id's memory) are
    mapped and returned when freed. Keep up to ``trim_threshold`` of freed
    heap for reuse: every process's memory counts (workers included).
    glibc only; returns whether it applied."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, mmap_threshold) == 1
        return bool(ok and libc.mallopt(m_trim_threshold, trim_threshold) == 1)
    except (OSError, AttributeError):
        return False


def tune_gc() -> None:
    """Collect cyclic garbage less often. A backup allocates millions of
    short-lived containers (chunk references, tree nodes) and almost no
    cycles; at the default threshold the collector took ~8 % of a snapshot's
    CPU (py-spy, bench corpus)."""
    import gc

    gc.set_threshold(50_000, 20, 20)


def settle_threads(timeout: float = 0.5) -> bool:
    """Wait briefly until every thread Python has already joined has also
    left the operating system. A joined thread still runs C-level exit
    handlers (OpenSSL's per-thread cleanup takes a global lock), and a fork
    at that moment gives the child a lock nobody will release. Seen once in
    CI: a content worker forked right after the index was loaded by a
    thread pool over HTTPS hung in its first ``SSLContext()``. Call before
    forking; Linux only (elsewhere, and on timeout, returns at once/False)."""
    import os
    import threading
    import time

    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):
        return True
    deadline = time.monotonic() + timeout
    while len(os.listdir(tasks)) > threading.active_count():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True
