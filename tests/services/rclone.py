"""A restic REST server over a local directory, for tests of the REST backend.

``rclone serve restic`` serves ``DIR/data`` on a free 127.0.0.1 port with
HTTP basic authentication for a single user; every repository is a path
under the URL (``http://127.0.0.1:PORT/repo/``), created with
``POST /repo/?create=true``. rclone reads no user config (an empty one is
kept in the work directory).
Everything lives under one work directory and is stopped by PID.

    python tests/services/rclone.py start DIR [--user U] [--password P]   # prints JSON
    python tests/services/rclone.py stop DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

try:
    from . import processes
except ImportError:  # run as a script: python tests/services/NAME.py
    import processes  # type: ignore[no-redef]

PACKAGES = ("rclone",)
USER = "neostore"
PASSWORD = "neostore-test-password"


@dataclass
class RestService:
    url: str  # "http://127.0.0.1:PORT/", ending with "/"
    user: str
    password: str
    workdir: str
    pids: list[int]


def installed() -> bool:
    return shutil.which("rclone") is not None


def start(
    workdir: str | os.PathLike[str],
    user: str = USER,
    password: str = PASSWORD,
    *,
    append_only: bool = False,
    private_repos: bool = False,
    cache_objects: bool = True,
) -> RestService:
    """``append_only`` refuses overwrites and deletions, except deletions of
    locks; ``private_repos`` limits the user to repositories under
    ``/<user>/``. With ``cache_objects`` (rclone's default) a listing caches
    what it saw, and a later GET trusts that: a file changed or removed in
    DIR/data behind rclone's back is then served with the stale size and an
    empty body; turn it off for tests that tamper with the stored files."""
    if not installed():
        raise RuntimeError(f"rclone not found: apt-get install {' '.join(PACKAGES)}")
    work = Path(workdir).resolve()
    if work.exists():
        stop(work)
        shutil.rmtree(work)
    (work / "data").mkdir(parents=True)
    (work / "rclone.conf").touch()
    port = processes.free_port()
    argv = [
        "rclone",
        "serve",
        "restic",
        str(work / "data"),
        "--addr",
        f"127.0.0.1:{port}",
        "--user",
        user,
        "--pass",
        password,
        "--config",
        str(work / "rclone.conf"),
        "--log-file",
        str(work / "rclone.log"),
    ]
    if append_only:
        argv.append("--append-only")
    if private_repos:
        argv.append("--private-repos")
    if not cache_objects:
        argv.append("--cache-objects=false")
    proc = processes.daemon(work / "rclone.out", argv)
    (work / "pids").write_text(str(proc.pid))
    processes.wait_port(
        proc, "rclone", port, time.monotonic() + 15, work / "rclone.log", work / "rclone.out"
    )
    service = RestService(f"http://127.0.0.1:{port}/", user, password, str(work), [proc.pid])
    (work / "service.json").write_text(json.dumps(asdict(service)))
    return service


def stop(workdir: str | os.PathLike[str]) -> None:
    processes.stop(workdir, grace=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("workdir")
    parser.add_argument("--user", default=USER)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--append-only", action="store_true")
    parser.add_argument("--private-repos", action="store_true")
    parser.add_argument("--no-cache-objects", action="store_true")
    args = parser.parse_args()
    if args.action == "start":
        service = start(
            args.workdir,
            args.user,
            args.password,
            append_only=args.append_only,
            private_repos=args.private_repos,
            cache_objects=not args.no_cache_objects,
        )
        print(json.dumps(asdict(service)))
    else:
        stop(args.workdir)


if __name__ == "__main__":
    main()
