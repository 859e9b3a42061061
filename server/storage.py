"""Repositories on disk: ``DATA/repos/<repo>/`` in the layout of neostore's
local backend (and of restic's rest-server), so a repository directory can
also be opened directly as a local repository.

Uploads go to a temporary file next to their destination, are hashed as they
arrive, fsynced, and only then linked (create-only) or renamed (replace) into
place, followed by an fsync of the directory: a dropped connection or a
killed server stores nothing under the object's name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import blake3

from neostore.backend import names
from neostore.errors import UsageError
from neostore.fsutil import TEMP_MARK, DurableFile, atomic_write, fsync_dir, temp_name

FORMATS = ("neostore", "restic")
META = ".neostore-server.json"
#: how long a process trusts its count of a repository's size before walking it again
USAGE_TTL = 30.0
#: an upload temporary untouched for this long is a leftover (seconds)
STALE_TEMPORARY = 3600.0


class StorageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ObjectRef:
    repo: str
    fmt: str
    otype: str
    name: str
    path: str
    hash_alg: str | None  # "blake3", "sha256" or None
    digest: str | None


class Upload:
    """One object being received: hashed as it arrives, published only once
    complete and verified."""

    def __init__(self, ref: ObjectRef) -> None:
        self.ref = ref
        self.size = 0
        self._file = DurableFile(temp_name(ref.path))
        self._hash: Any = (
            blake3.blake3()
            if ref.hash_alg == "blake3"
            else hashlib.sha256()
            if ref.hash_alg
            else None
        )

    def write(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def finish(self, replace: bool) -> bool:
        """Verify, make durable, publish. Returns False when ``replace`` is
        false and the name already exists (nothing is changed then)."""
        if self._hash is not None and self._hash.hexdigest() != self.ref.digest:
            self._file.abort()
            raise StorageError(400, f"content does not match its name ({self.ref.hash_alg})")
        return self._file.publish(self.ref.path, replace)

    def abort(self) -> None:
        self._file.abort()


class Storage:
    def __init__(self, data_dir: str) -> None:
        self.root = os.path.join(os.path.abspath(data_dir), "repos")
        self._usage: dict[str, tuple[float, int]] = {}
        self._meta: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._usage_lock = threading.Lock()

    def repo_dir(self, repo: str) -> str:
        if not names.is_valid_segment(repo) or repo.startswith("."):
            raise StorageError(400, f"invalid repository name {repo!r}")
        return os.path.join(self.root, repo)

    def meta(self, repo: str) -> dict[str, Any] | None:
        """A repository's format and quota (a copy), or None when there is
        none. Read again only when the file changed (it is replaced, never
        edited in place): one ``stat`` per request, not a read and a parse."""
        path = os.path.join(self.repo_dir(repo), META)
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._meta.get(repo)
            if cached is None or cached[0] != key:
                with open(path, "rb") as f:
                    cached = (key, json.load(f))
                self._meta[repo] = cached
        except FileNotFoundError:
            return None
        return dict(cached[1])

    def create(self, repo: str, fmt: str) -> None:
        """Create an empty repository (idempotent while it has no config)."""
        if fmt not in FORMATS:
            raise StorageError(400, f"unknown repository format {fmt!r}")
        root = self.repo_dir(repo)
        meta = self.meta(repo)
        if meta is not None:
            if meta.get("format") != fmt:
                raise StorageError(
                    409, f"repository {repo} exists with format {meta.get('format')}"
                )
            if os.path.exists(os.path.join(root, "config")):
                raise StorageError(409, f"repository {repo} already exists")
        types = names.RESTIC_TYPES if fmt == "restic" else names.OBJECT_TYPES.keys()
        for otype in types:
            if otype != "config":
                os.makedirs(os.path.join(root, otype), exist_ok=True)
        for i in range(256):
            os.makedirs(os.path.join(root, "data", f"{i:02x}"), exist_ok=True)
        if meta is None:  # create-only: a concurrent create wins harmlessly
            document = json.dumps({"format": fmt, "created": int(time.time())}).encode()
            atomic_write(os.path.join(root, META), document, replace=False)
        fsync_dir(root)
        fsync_dir(self.root)

    def set_quota(self, repo: str, max_bytes: int | None) -> None:
        meta = self.meta(repo)
        if meta is None:
            raise StorageError(404, f"no repository {repo}")
        meta["quota"] = max_bytes
        atomic_write(os.path.join(self.repo_dir(repo), META), json.dumps(meta).encode())

    def repos(self) -> list[str]:
        try:
            return sorted(
                n for n in os.listdir(self.root) if os.path.isfile(os.path.join(self.root, n, META))
            )
        except FileNotFoundError:
            return []

    def ref(self, repo: str, fmt: str, otype: str, name: str) -> ObjectRef:
        root = self.repo_dir(repo)
        try:
            if fmt == "restic":
                names.validate_restic(otype, name)
                rel = (
                    "config"
                    if otype == "config"
                    else (f"data/{name[:2]}/{name}" if otype == "data" else f"{otype}/{name}")
                )
                alg, digest = (None, None) if otype == "config" else ("sha256", name)
            else:
                rel = names.relative_path(otype, name)
                digest = names.content_hash(otype, name)
                alg = "blake3" if digest else None
        except UsageError as e:
            raise StorageError(400, str(e)) from e
        return ObjectRef(repo, fmt, otype, name, os.path.join(root, *rel.split("/")), alg, digest)

    def list_objects(self, repo: str, fmt: str, otype: str) -> list[tuple[str, int]]:
        if otype not in (names.RESTIC_TYPES if fmt == "restic" else names.OBJECT_TYPES):
            raise StorageError(400, f"unknown object type {otype!r}")
        root = self.repo_dir(repo)
        if otype == "config":
            path = os.path.join(root, "config")
            return [("config", os.stat(path).st_size)] if os.path.isfile(path) else []
        # data/<2 hex>/<id> is listed as <id>; neostore's snapshots are <target>/<id>
        depth = 2 if otype == "data" else 1 if fmt == "restic" else names.OBJECT_TYPES[otype]
        out: list[tuple[str, int]] = []
        self._walk(os.path.join(root, otype), "", depth, otype == "data", out)
        return out

    def _walk(
        self, base: str, prefix: str, depth: int, flat: bool, out: list[tuple[str, int]]
    ) -> None:
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return
        for entry in entries:
            if TEMP_MARK in entry.name or entry.name.startswith("."):
                continue
            if depth > 1:
                if entry.is_dir(follow_symlinks=False):
                    sub = "" if flat else f"{prefix}{entry.name}/"
                    self._walk(entry.path, sub, depth - 1, False, out)
            elif entry.is_file(follow_symlinks=False):
                out.append((f"{prefix}{entry.name}", entry.stat(follow_symlinks=False).st_size))

    def sweep_temporaries(self, max_age: float = STALE_TEMPORARY) -> tuple[int, int]:
        """Remove upload temporaries (``*.tmp-*``) no byte was written to for
        ``max_age`` seconds: left by a server that was killed mid-upload. A
        younger one may belong to another server process's upload in flight.
        Returns (files, bytes) removed."""
        now = time.time()
        files = size = 0
        for dirpath, _dirs, names_ in os.walk(self.root):
            for name in names_:
                if TEMP_MARK not in name:
                    continue
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                    if now - st.st_mtime >= max_age:
                        os.unlink(path)
                        files, size = files + 1, size + st.st_size
                except OSError:
                    continue  # gone already, or not ours to remove
        return files, size

    # -- quota ---------------------------------------------------------------

    def usage(self, repo: str) -> int:
        """Bytes stored in a repository: walked at most every USAGE_TTL
        seconds per process, counted up by this process's uploads in between
        (several processes may each overshoot a quota by what the others wrote
        since their last walk)."""
        now = time.monotonic()
        with self._usage_lock:
            cached = self._usage.get(repo)
            if cached is not None and now - cached[0] < USAGE_TTL:
                return cached[1]
        total = 0
        for dirpath, _dirs, files in os.walk(self.repo_dir(repo)):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        with self._usage_lock:
            self._usage[repo] = (now, total)
        return total

    def note_stored(self, repo: str, size: int) -> None:
        with self._usage_lock:
            cached = self._usage.get(repo)
            if cached is not None:
                self._usage[repo] = (cached[0], cached[1] + size)


def is_disk_full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)
