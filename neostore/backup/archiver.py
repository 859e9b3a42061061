"""The snapshot pipeline.

The calling thread walks the file system (scandir, excludes,
one-file-system), consults the files cache and finalises directories. Files
to read travel in batches to worker processes (:mod:`.contentworker`) that
read, chunk, hash, compress, encrypt, pack and upload content; one thread
per worker serves its messages here: blob claims (the one in-flight set,
in the :class:`~neostore.packer.Packer`), uploaded packs (indexed here) and
finished batches. Directory listings (trees) are stored by this process's
Packer.
A directory is finalised (its listing chunked and stored) as soon as all its
children are done, so memory holds only directories still in progress.
Write order: packs → index → snapshot manifest; an interrupted run writes
no manifest.
"""

from __future__ import annotations

import gc
import os
import queue
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..core.condemned import keep_condemned
from ..core.localstate import cache_dir
from ..core.packer import Packer
from ..core.repository import Repository
from ..errors import NeostoreError, UsageError
from ..format import tree
from ..format.blob import Ref
from ..format.manifest import Manifest
from ..format.targets import TREE, Domain
from ..format.tree import Node
from ..hostfs import paths as hostpaths
from ..progress import Reporter
from ..shares.publish import publish_or_warn
from ..snapshots.catalog import chain_head, default_host_user, list_snapshots, save_snapshot
from ..snapshots.info import SnapshotInfo
from ..snapshots.observed import Observer, newest_per_writer
from .exclude import Excluder
from .filescache import FilesCache
from .fsmeta import node_from_stat
from .options import SnapshotOptions, SnapshotResult, SnapshotStats
from .prewalk import Prewalk, list_dir, normalise_paths
from .stream import STREAM_INODE, Feeder, stream_node
from .workers import ContentWorkers

#: a worker task carries up to this many files or bytes
BATCH_FILES = 64
BATCH_BYTES = 4 * 1024 * 1024


@dataclass
class _FileJob:
    parent: _Dir
    slot: int
    path: bytes
    st: os.stat_result
    node: Node
    status: str
    #: a stream's FIFO, read instead of ``path`` (which is how it is shown)
    fifo: bytes | None = None


class _Dir:
    """A directory whose children are still being processed."""

    def __init__(self, node: Node | None, parent: _Dir | None, slot: int) -> None:
        self.node = node
        self.parent = parent
        self.slot = slot
        self.children: list[Node | None] = []
        self.pending = 1  # the walk of this directory itself
        self.lock = threading.Lock()
        self.error: BaseException | None = None


class Archiver:
    def __init__(
        self,
        repo: Repository,
        options: SnapshotOptions,
        reporter: Reporter | None = None,
        prewalk: Prewalk | None = None,
    ) -> None:
        self.repo = repo
        self._prewalk = prewalk
        self.options = options
        self.reporter = reporter or Reporter()
        self.record = repo.ensure_target(options.target)
        self.domain: Domain = repo.domain(self.record)
        self.writer = repo.writer
        self.stats = SnapshotStats()
        self.shares_published = 0
        self.errors: list[tuple[bytes, str]] = []
        self._stats_lock = threading.Lock()
        self._exclude = Excluder(options.exclusions)
        self._ready: queue.SimpleQueue[_Dir] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self.cache: FilesCache | None = None
        self._feeder: Feeder | None = None
        self._batch: list[_FileJob] = []
        self._batch_bytes = 0
        self._workers: ContentWorkers[_FileJob] = ContentWorkers(
            options.workers, self._batch_done, self._worker_failed
        )

    # -- helpers -------------------------------------------------------------

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _count_file(self, status: str, total: int, read: int = 0) -> None:
        """Once per file: spelled out, it is a tenth of :meth:`_count`'s cost."""
        with self._stats_lock:
            stats = self.stats
            stats.bytes_total += total
            stats.bytes_read += read
            if status == "unchanged":
                stats.files_unchanged += 1
            elif status == "changed":
                stats.files_changed += 1
            else:
                stats.files_new += 1

    def _fail(self, path: bytes, message: str) -> None:
        with self._stats_lock:
            self.errors.append((path, message))
        self.reporter.error(path, message)

    # -- the run -------------------------------------------------------------

    def run(self) -> SnapshotResult:
        started = time.monotonic()
        stream = self.options.stream
        if stream is not None:
            stream.check()
        paths = [b"/" + os.fsencode(stream.name)] if stream else normalise_paths(self.options.paths)
        self.repo.load_index()
        # what exists now (modules, index, keys) outlives the run: keep the
        # cyclic collector from re-scanning it (py-spy found ~4 % of a bench
        # snapshot's samples in this process's collector) and its pages
        # shared with the workers; unfrozen when the run ends
        gc.freeze()
        try:
            return self._run(started, paths)
        finally:
            gc.unfreeze()

    def _run(self, started: float, paths: list[bytes]) -> SnapshotResult:
        self._workers.start(self.repo, self.record, self.domain, self.writer)  # fork first
        packer = Packer(self.repo, self.record, self.domain, self.writer)
        self.packer = packer
        dry = packer.dry_run = self.options.dry_run
        try:
            self.stats.packs_recovered = 0 if dry else packer.recover()
            if self.options.use_files_cache:
                name = f"files-{self.domain.domain_id.hex()}-{self.domain.epoch}.sqlite"
                self.cache = FilesCache(cache_dir() / self.repo.repo_id.hex() / name)
            self._workers.serve(packer)
            self.reporter.start("snapshot")
            root = self._walk_stream() if self.options.stream else self._walk_roots(paths)
            self._drain_until(root)
            if self._feeder is not None:
                self._feeder.result()  # a failed command leaves no snapshot
            self._workers.finish()
            packer.flush()
            assert root.node is not None
            if not dry:
                self.stats.blobs_copied = keep_condemned(self.repo, root.node.subtree, packer)
        except BaseException:
            self._cancel.set()
            self._workers.stop()
            packer.abort()
            raise
        finally:
            if self.cache is not None:
                self.cache.close()
            if self._feeder is not None:
                self._feeder.close()
        packer.close()
        self.stats.bytes_added = packer.stats.bytes_stored
        self.stats.blobs_new = packer.stats.blobs_new
        snapshot_id = b"" if dry else self._save(paths, root.node.subtree, started)
        self.stats.duration = time.monotonic() - started
        self.reporter.finish()
        return SnapshotResult(
            snapshot_id, self.record.name, self.stats, self.errors, self.shares_published
        )

    def _save(self, paths: list[bytes], root: Sequence[Ref], started: float) -> bytes:
        """The manifest (after packs and index), then its share capabilities."""
        self.stats.duration = time.monotonic() - started
        host, user = default_host_user()
        host = self.options.host or host
        # the target's snapshots are read once, as late as possible, so that
        # two runs of the same key rarely fork the chain (a fork is legal,
        # only untidy)
        existing = self._readable_snapshots()
        observer = None if self.repo.can_read(self.record) else Observer(self.repo, self.record)
        prev_seq, prev_id = chain_head(self.repo, self.record, existing)
        manifest = Manifest(
            repo_id=self.repo.repo_id,
            target_id=self.record.target_id,
            writer_id=self.writer.writer_id,
            epoch=self.domain.epoch,
            seq=prev_seq + 1,
            prev=prev_id,
            time_ns=time.time_ns(),
            host=host,
            user=user,
            paths=sorted(hostpaths.recorded(p) for p in paths),
            tags=list(self.options.tags),
            parent=existing[-1].snapshot_id if existing else None,
            root=list(root),
            stats=asdict(self.stats),
            after=newest_per_writer(existing) if observer is None else observer.after(),
        )
        snapshot_id = save_snapshot(self.repo, self.record, manifest)
        if observer is not None:
            observer.saved(snapshot_id)
        info = SnapshotInfo(snapshot_id, self.record.name, manifest)
        self.shares_published = publish_or_warn(self.repo, self.record, self.writer, [info])
        return snapshot_id

    def _readable_snapshots(self) -> list[SnapshotInfo]:
        if not self.repo.can_read(self.record):
            return []  # a put-only writer cannot read them
        return list_snapshots(self.repo, self.record.name, on_error=lambda e: None)

    def _walk_stream(self) -> _Dir:
        """The root and the one file a stream becomes."""
        assert self.options.stream is not None
        self._feeder = Feeder(self.options.stream)
        root = _Dir(node_from_stat(b"root", b"/", os.lstat(b"/")), None, 0)
        node = stream_node(self.options.stream.name)
        fifo = os.fsencode(self._feeder.fifo)
        root.children.append(None)
        root.pending += 1
        self._feeder.start()
        self._batch.append(_FileJob(root, 0, b"/" + node.name, os.stat(fifo), node, "new", fifo))
        self._walked(root)
        return root

    def _walk_roots(self, paths: list[bytes]) -> _Dir:
        """Build the virtual directories leading to each path, then walk."""
        root_st = os.lstat(b"/")
        root = _Dir(node_from_stat(b"root", b"/", root_st), None, 0)
        if paths == [b"/"]:
            self._scan_dir(root, b"/", root_st.st_dev)
            return root
        layout: dict[bytes, object] = {}
        for path in paths:
            parts = hostpaths.components(path)
            level = layout
            for part in parts[:-1]:
                nxt = level.setdefault(part, {})
                assert isinstance(nxt, dict)
                level = nxt
            level[parts[-1]] = path  # a real path: walked whole
        self._walk_layout(root, [], layout)
        self._walked(root)
        return root

    def _walk_layout(self, parent: _Dir, above: list[bytes], layout: dict[bytes, object]) -> None:
        for name in sorted(layout):
            sub = layout[name]
            if isinstance(sub, bytes):
                try:
                    st = os.lstat(sub)
                except OSError as e:
                    self._fail(sub, e.strerror or str(e))
                    continue
                self._add_entry(parent, name, sub, st, st.st_dev)
                continue
            assert isinstance(sub, dict)
            parts = [*above, name]
            child = self._new_child_dir(parent, _on_the_way(name, hostpaths.native(parts)))
            self._walk_layout(child, parts, sub)
            self._walked(child)

    def _new_child_dir(self, parent: _Dir, node: Node) -> _Dir:
        with parent.lock:
            slot = len(parent.children)
            parent.children.append(None)
            parent.pending += 1
        return _Dir(node, parent, slot)

    def _add_entry(
        self,
        parent: _Dir,
        name: bytes,
        path: bytes,
        st: os.stat_result,
        root_dev: int,
        read: Node | OSError | None = None,
    ) -> None:
        if self._exclude and self._exclude.excludes(path, st):
            return
        try:
            if isinstance(read, OSError):
                raise read
            node = read if read is not None else node_from_stat(name, path, st)
        except OSError as e:
            self._fail(path, e.strerror or str(e))
            return
        self.reporter.item(path)
        if node.type == tree.DIR:
            if self.options.one_file_system and st.st_dev != root_dev:
                return
            self._count(dirs=1)
            child = self._new_child_dir(parent, node)
            self._scan_dir(child, path, root_dev)
        elif node.type == tree.FILE:
            status, refs = self._cached(path, st)
            if refs is not None:
                node.content = refs
                self._count_file(status, st.st_size)
                self.reporter.advance(st.st_size, 1)
                self.reporter.file(path, status)
                with parent.lock:
                    parent.children.append(node)
            else:
                self._count(bytes_total=st.st_size)
                with parent.lock:
                    slot = len(parent.children)
                    parent.children.append(None)
                    parent.pending += 1
                self._batch.append(_FileJob(parent, slot, path, st, node, status))
                self._batch_bytes += st.st_size
                if len(self._batch) >= BATCH_FILES or self._batch_bytes >= BATCH_BYTES:
                    self._flush_batch()
        else:
            self._count(others=1)
            with parent.lock:
                parent.children.append(node)
        self._drain_ready()

    def _scan_dir(self, directory: _Dir, path: bytes, root_dev: int) -> None:
        listing = self._prewalk.take(path) if self._prewalk is not None else None
        if listing is None:
            try:
                listing = [(n, p, st, None) for n, p, st in list_dir(path)]
            except OSError as e:
                listing = e
        if isinstance(listing, OSError):
            self._fail(path, f"cannot list directory: {listing.strerror or listing}")
            listing = []
        if self._exclude.marks:
            marker = self._exclude.marker_in(path, (entry[0] for entry in listing))
            if marker is not None:
                listing = [entry for entry in listing if entry[0] == marker]
        for name, child_path, st, read in listing:
            if self._cancel.is_set():
                raise KeyboardInterrupt
            if isinstance(st, OSError):
                self._fail(child_path, st.strerror or str(st))
                continue
            self._add_entry(directory, name, child_path, st, root_dev, read)
        self._walked(directory)

    # -- completion bookkeeping ---------------------------------------------

    def _walked(self, directory: _Dir) -> None:
        self._flush_batch()
        self._release(directory)

    def _release(self, directory: _Dir) -> None:
        with directory.lock:
            directory.pending -= 1
            done = directory.pending == 0
        if done:
            self._ready.put(directory)

    def _flush_batch(self) -> None:
        """Hand the pending files to a worker: small files travel in batches
        so that per-file overhead (a task, a wake-up) is paid per batch."""
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._workers.submit(
            batch,
            [[job.fifo, STREAM_INODE] if job.fifo else [job.path, job.st.st_ino] for job in batch],
        )

    # -- what the workers report (serving threads) -------------------------------

    def _worker_failed(self, error: NeostoreError) -> None:
        """Wake a walker waiting for directories: :meth:`_finalise` raises."""
        failed = _Dir(None, None, 0)
        failed.error = error
        self._ready.put(failed)

    def _batch_done(self, batch: list[_FileJob], results: list[list[object]]) -> None:
        for job, result in zip(batch, results, strict=True):
            job.parent.children[job.slot] = self._file_result(job, result)
            self._release(job.parent)

    def _file_result(self, job: _FileJob, result: list[object]) -> Node | None:
        encoded, size, mtime_ns, ctime_ns, error = result
        path, st, node = job.path, job.st, job.node
        if error is not None:
            self._fail(path, str(error))
            return None
        assert isinstance(encoded, list)
        refs = [Ref(*r) for r in encoded]
        node.content = refs
        node.size = sum(r.length for r in refs)
        if job.fifo is not None:
            pass  # a stream: read once, never cached
        elif (size, mtime_ns, ctime_ns) != (st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            self.reporter.warning(path, "file changed while it was read; stored as read")
        elif self.cache is not None and not self.options.dry_run:
            self.cache.store(path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, refs)
        self._count_file(job.status, node.size if job.fifo else 0, node.size)
        self.reporter.advance(node.size, 1)
        self.reporter.file(job.path, job.status)
        return node

    def _drain_ready(self) -> None:
        while not self._ready.empty():
            self._finalise(self._ready.get_nowait())

    def _drain_until(self, root: _Dir) -> None:
        while True:
            directory = self._ready.get()
            self._finalise(directory)
            if directory is root:
                return

    def _finalise(self, directory: _Dir) -> None:
        if directory.error is not None:
            raise directory.error
        nodes = [n for n in directory.children if n is not None]
        assert directory.node is not None
        # trees are stored on the walking thread only (file content is
        # chunked in the workers)
        # a listing readers would refuse (too many entries or bytes) fails
        # the snapshot here rather than leaving one nobody can restore
        encoded = tree.encode_tree(nodes, f"directory {_path_of(directory)}")
        directory.node.subtree = self.packer.store_buffer(TREE, encoded)
        parent = directory.parent
        if parent is not None:
            with parent.lock:
                parent.children[directory.slot] = directory.node
            self._release(parent)
        directory.children = []

    # -- files cache ----------------------------------------------------------

    def _cached(self, path: bytes, st: os.stat_result) -> tuple[str, list[Ref] | None]:
        """Files-cache verdict; refs only when every blob is still indexed."""
        if self.cache is None:
            return "new", [] if st.st_size == 0 else None
        status, refs = self.cache.lookup(
            path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
        )
        if st.st_size == 0:  # nothing to read; the cache only tells new from changed
            if status != "unchanged":
                self.cache.store(path, st.st_ino, 0, st.st_mtime_ns, st.st_ctime_ns, [])
            return status, []
        if refs is not None and self.repo.index.has_all([r.blob_id for r in refs]):
            return status, refs
        return ("changed" if status == "unchanged" else status), None


def _on_the_way(name: bytes, path: bytes | None) -> Node:
    """A directory on the way to a backed-up path. Symlinks are followed
    here (/home -> /data/home): what is recorded is what they lead to, a
    directory. The levels of a Windows network path above its share have
    nothing to look at and are recorded as plain directories."""
    if path is None:
        return Node(name=name, type=tree.DIR, mode=0o755)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{os.fsdecode(path)}: not a directory")
    return node_from_stat(name, path, st)


def _path_of(directory: _Dir) -> str:
    names: list[bytes] = []
    at: _Dir | None = directory
    while at is not None and at.parent is not None and at.node is not None:
        names.append(at.node.name)
        at = at.parent
    return "/" + os.fsdecode(b"/".join(reversed(names)))
