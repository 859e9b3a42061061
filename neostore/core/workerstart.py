"""How worker processes are started: ``fork``, ``spawn`` or ``forkserver``.

A forked worker inherits the open repository as it is in memory. A spawned
one (``spawn``: the only method on Windows, the default on macOS, where
forking a process that has used system frameworks is unsafe) or one made
by a fork server starts from an empty interpreter: what it needs is
pickled and sent down the pipe ``multiprocessing`` opens to it, never put
in argv or the environment. Objects that cross define how
(:meth:`Repository.__reduce__`: keys, config and index; a backend: the
location and options that opened it, reopened in the worker; the restore
root: its path and identity, reopened and checked).

``NEOSTORE_START_METHOD=fork|spawn|forkserver`` forces a method. Without
it, Linux forks (measured faster: docs/performance.md "Worker start
methods") and every other platform spawns.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.context import BaseContext
from typing import Any

from ..errors import UsageError

VARIABLE = "NEOSTORE_START_METHOD"
#: modules a fork server imports once, before it forks each worker
_PRELOAD = ["neostore.backup.contentworker", "neostore.restorer.walk"]


def start_method() -> str:
    """The method workers start with here (see the module's text)."""
    wanted = os.environ.get(VARIABLE, "").strip().lower()
    available = multiprocessing.get_all_start_methods()
    if not wanted:
        return "fork" if sys.platform.startswith("linux") and "fork" in available else "spawn"
    if wanted not in available:
        raise UsageError(
            f"{VARIABLE}={wanted}: this platform starts worker processes with "
            f"{', '.join(available)}"
        )
    return wanted


def context() -> Any:
    """A ``multiprocessing`` context for the start method in force (typed
    ``Any``: each start method has its own context class)."""
    method = start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def crosses_by_pickle(ctx: BaseContext) -> bool:
    """Whether a worker of ``ctx`` gets its arguments pickled rather than
    inherited (spawn, forkserver)."""
    return ctx.get_start_method() != "fork"
