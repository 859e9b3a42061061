"""What runs in a job's own process: a backup or a restore through the
public API, its progress sent to the UI as small tuples over a pipe.

A job runs in a process of its own, started with ``spawn``: the library
forks its worker processes, which must not happen in the UI's process
(its threads may hold locks a fork would copy). SIGINT cancels a job: the
library stops as it does on Ctrl-C, and what it already wrote is safe
(packs → index → snapshot)."""

from __future__ import annotations

import os
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import neostore

#: progress is sent at most this often
SEND_EVERY = 0.1


class PipeReporter(neostore.Reporter):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._bytes = self._items = 0
        self._item = b""
        self._sent = 0.0

    def send(self, *event: Any) -> None:
        with self._lock:
            self._conn.send(event)

    def start(self, phase: str, total_bytes: int | None = None) -> None:
        self.send("start", phase)

    def advance(self, nbytes: int = 0, items: int = 0) -> None:
        with self._lock:
            self._bytes += nbytes
            self._items += items
            if time.monotonic() - self._sent < SEND_EVERY:
                return
        self.flush()

    def item(self, path: bytes) -> None:
        self._item = path

    def flush(self) -> None:
        with self._lock:
            event = ("advance", self._bytes, self._items, os.fsdecode(self._item))
            self._bytes = self._items = 0
            self._sent = time.monotonic()
            self._conn.send(event)

    def warning(self, path: bytes | None, message: str) -> None:
        self.send("warning", _where(path, message))

    def error(self, path: bytes | None, message: str) -> None:
        self.send("error", _where(path, message))


def _where(path: bytes | None, message: str) -> str:
    return f"{os.fsdecode(path)}: {message}" if path else message


def main(conn: Connection, unlock: Any, kind: str, spec: dict[str, Any]) -> None:
    """The job process: run one job, report, exit."""
    reporter = PipeReporter(conn)
    if kind == "profile":
        _profile(spec["name"], reporter, conn)
        return
    try:
        repo = neostore.open_repository(unlock.location, unlock.password, options=unlock.options)
        repo.on_problem = lambda e: reporter.warning(None, str(e))
        result = (
            _backup(repo, spec, reporter) if kind == "backup" else _restore(repo, spec, reporter)
        )
        reporter.flush()
        reporter.send("done", result)
    except KeyboardInterrupt:
        reporter.send("cancelled")
    except neostore.NeostoreError as e:
        reporter.send("failed", str(e))
    except OSError as e:
        reporter.send("failed", f"{e.filename or ''}: {e.strerror or e}")
    except BaseException as e:
        reporter.send("failed", f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def _backup(
    repo: neostore.Repository, spec: dict[str, Any], reporter: PipeReporter
) -> dict[str, Any]:
    options = neostore.SnapshotOptions(
        paths=spec["paths"],
        target=spec["target"],
        tags=spec.get("tags", ()),
        excludes=spec.get("excludes", ()),
    )
    result = neostore.snapshot(repo, options, reporter)
    stats = result.stats
    return {
        "snapshot": result.snapshot_id.hex(),
        "target": result.target,
        "files_new": stats.files_new,
        "files_changed": stats.files_changed,
        "files_unchanged": stats.files_unchanged,
        "bytes_added": stats.bytes_added,
        "errors": len(result.errors),
    }


def _restore(
    repo: neostore.Repository, spec: dict[str, Any], reporter: PipeReporter
) -> dict[str, Any]:
    info = neostore.find_snapshot(repo, spec["snapshot"], spec["target"])
    files = written = errors = 0
    for subpath, destination in spec["items"]:
        options = neostore.RestoreOptions(
            destination=destination, subpath=os.fsencode(subpath), overwrite=spec["overwrite"]
        )
        stats = neostore.restore(repo, info, options, reporter)
        files += stats.files
        written += stats.bytes_written
        errors += len(stats.errors)  # each one already went to reporter.error
    return {"files": files, "bytes_written": written, "errors": errors}


def _profile(name: str, reporter: PipeReporter, conn: Connection) -> None:
    """``neostore run NAME`` in its own process (as a timer would run it),
    its JSON progress lines passed on; Ctrl-C (cancel) reaches it too."""
    import json
    import signal
    import subprocess
    import sys
    import tempfile

    command = [sys.executable, "-m", "neostore_cli.main", "--progress", "run", name, "--json"]
    # its result to a file: read after the end, it must not fill a pipe meanwhile
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
        try:
            assert process.stderr is not None
            phase, done = "", 0  # each step's progress counts from 0
            for raw in process.stderr:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if event.get("type") == "progress":
                    if event["phase"] != phase:
                        phase, done = event["phase"], 0
                    reporter.advance(event["bytes_done"] - done, 0)
                    done = event["bytes_done"]
            process.wait()
            out.seek(0)
            outcome = json.loads(out.read() or b"null")
            if isinstance(outcome, dict) and outcome.get("ok"):
                reporter.flush()
                reporter.send("done", {"profile": name, "exit_code": 0, "errors": 0})
            else:
                error = outcome.get("error") if isinstance(outcome, dict) else None
                reporter.send("failed", error or f"neostore run {name} exited {process.returncode}")
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            process.wait()
            reporter.send("cancelled")
        finally:
            conn.close()
