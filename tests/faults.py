"""Run the ``neostore`` command line with a fault injected into its store,
so a test can kill a command at an exact point instead of after a guessed
delay (tests under load then still hit the case they mean to)::

    python tests/faults.py kill-before N ARGS...   # SIGKILL just before the
        # Nth change to the store (save, create, remove, committed stream)
    python tests/faults.py count ARGS...           # run; print to stderr
        # "faults: N changes"
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from neostore import backend
from neostore.backend.base import Backend
from neostore.testing import ChangeCounter


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    limit = 0
    if mode == "kill-before":
        limit, rest = int(rest[0]), rest[1:]
    elif mode != "count":
        raise SystemExit(f"usage: faults.py kill-before N|count ARGS... (not {mode!r})")

    def before(n: int) -> None:
        if limit and n >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    counters: list[ChangeCounter] = []
    opened = backend.open_backend

    def open_counted(*args: Any, **kwargs: Any) -> Backend:
        counters.append(ChangeCounter(opened(*args, **kwargs), before))
        return counters[-1]

    backend.open_backend = open_counted  # type: ignore[assignment]
    from neostore_cli.main import run

    sys.argv = ["neostore", *rest]
    try:
        run()
    finally:
        print(f"faults: {sum(c.changes for c in counters)} changes", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
