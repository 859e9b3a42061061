"""Run ``neostore`` or ``neostore-server`` as on a platform without the
POSIX-only modules (Windows): ``fcntl``, ``pwd``, ``grp``, ``termios`` and
``resource`` cannot be imported::

    python tests/blocked_imports.py neostore|neostore-server ARGS...
    python tests/blocked_imports.py probe   # import everything; print what
        # of the blocked modules is still unavailable (JSON)
"""

from __future__ import annotations

import sys

BLOCKED = ("fcntl", "pwd", "grp", "termios", "resource")


def main(argv: list[str]) -> None:
    for name in BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    which, rest = argv[0], argv[1:]
    if which == "probe":
        import json

        import neostore.api
        import neostore_cli.main
        import neostore_server.main

        del neostore.api, neostore_cli.main, neostore_server.main
        print(json.dumps({name: sys.modules[name] is None for name in BLOCKED}))
        return
    if which == "neostore":
        from neostore_cli.main import run
    else:
        from neostore_server.main import run
    sys.argv = [which, *rest]
    run()


if __name__ == "__main__":
    main(sys.argv[1:])
