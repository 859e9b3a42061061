"""Run the ``neostore`` command line with its data segment allowed to grow
by at most N MiB from where it is at start (RLIMIT_DATA: heap and private
mappings), so a test can show a command stays within a memory bound::

    python tests/memlimit.py N ARGS...
"""

from __future__ import annotations

import resource
import sys


def data_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status")


def main(argv: list[str]) -> None:
    growth = int(argv[0]) << 20
    from neostore_cli.main import run  # the command's own modules are part of the base

    limit = data_size() + growth
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    sys.argv = ["neostore", *argv[1:]]
    run()


if __name__ == "__main__":
    main(sys.argv[1:])
