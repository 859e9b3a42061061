"""Process-wide settings for entry points (the CLI, benchmarks). The library
itself never calls this: it is the program's choice, not a module's."""

from __future__ import annotations


def tune_malloc() -> bool:
    """Serve large buffers (chunks, packs) from the heap instead of a fresh
    mmap each: every new mapping costs page faults, which on the project's
    VMs made encrypting a 1 MiB blob ~3.5x slower (bench/stages.py).
    glibc only; returns whether it applied."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 64 * 1024 * 1024) == 1
        return bool(ok and libc.mallopt(m_trim_threshold, 128 * 1024 * 1024) == 1)
    except (OSError, AttributeError):
        return False


def tune_gc() -> None:
    """Collect cyclic garbage less often. A backup allocates millions of
    short-lived containers (chunk references, tree nodes) and almost no
    cycles; at the default threshold the collector took ~8 % of a snapshot's
    CPU (py-spy, bench corpus)."""
    import gc

    gc.set_threshold(50_000, 20, 20)
