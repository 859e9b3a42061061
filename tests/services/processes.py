"""What the service scripts share: a free loopback port, a daemon started
in its own session with its output in a log, and stopping the daemons a
work directory's ``pids`` file lists (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon(log: Path, argv: list[str]) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the daemon keeps it
    return subprocess.Popen(
        argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
    )


def log_tail(*logs: Path) -> str:
    """The end of a daemon's logs, for an error message."""
    text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
    return text.strip()[-2000:]


def wait_port(
    proc: subprocess.Popen[bytes], name: str, port: int, deadline: float, *logs: Path
) -> None:
    """Until ``proc`` accepts connections on the loopback ``port``; an
    error with its logs' end when it exits or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode}: {log_tail(*logs)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port}: {log_tail(*logs)}")


def stop(workdir: str | os.PathLike[str], grace: float, descendants: bool = False) -> None:
    """Stop the daemons listed in ``workdir/pids`` (last started first),
    and with ``descendants`` the processes they forked."""
    pidfile = Path(workdir) / "pids"
    if not pidfile.exists():
        return
    daemons = [int(p) for p in pidfile.read_text().split()]
    pids = daemons[::-1] + (
        [c for pid in daemons for c in _descendants(pid)] if descendants else []
    )
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for pid in pids:
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid …": comm may hold spaces, so split after ")"
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours: reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:  # not ours: a zombie waits for its parent only
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return False
