"""Restore: recreate a snapshot's files under a destination directory.

Restore is hostile-input handling: names were validated when the tree was
decoded (no "/", NUL, "." or ".."), every file-system call is relative to
an open directory fd with O_NOFOLLOW (:mod:`.destination`), so a malicious
tree cannot make us write outside the destination.

This process walks the trees, creates directories and special files, links
hard links and applies directory metadata after their content. File content
is fetched and written by a pool of worker processes (each
single-threaded: with threads, every system call of a small file's restore
was a contended GIL hand-off, ~50 futex calls per file), each running a
:class:`~.files.FileRestorer` on batches of files of one directory.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import signal
import stat
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..browse.navigate import normalise, resolve
from ..core import workerstart
from ..core.repository import Repository
from ..errors import NeostoreError
from ..format import tree
from ..format.listing import EncodedRefs
from ..format.tree import Node
from ..matcher import PathMatcher
from ..progress import Reporter
from ..runtime import MIB, settle_threads, tune_malloc
from ..snapshots.info import SnapshotInfo
from . import destination
from .conflicts import Conflicts
from .destination import Dest, Metadata, open_below
from .files import BatchResult, FileRestorer
from .names import Rename
from .options import OnConflict, Overwrite, RestoreOptions, RestoreStats, Tally, keep_existing
from .pending import PendingDirs
from .privileged import unprivileged
from .probe import destination_rules

#: a worker task restores up to this many files or bytes, of one directory
#: or of several in walk order (large enough that workers tend to fill
#: different directories: creating files in one directory from three
#: processes at once doubled the kernel time per file here, on the
#: directory's lock; and on a remote store the small files of many small
#: directories come in one range request)
BATCH_FILES = 256
BATCH_BYTES = 16 * 1024 * 1024
#: batches handed to workers and not yet done, per worker (the walk waits
#: beyond: the files it has listed are held in memory until written)
IN_FLIGHT_PER_WORKER = 3


class _Written:
    """Whether a file's restore finished, and succeeded (for hard links)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


#: a file handed to a worker: its directory, node, path, and when it is written
_Job = tuple[Dest, Node, bytes, _Written]


class Restorer:
    def __init__(
        self, repo: Repository, options: RestoreOptions, reporter: Reporter | None = None
    ) -> None:
        self.repo = repo
        self.options = options
        self.policy = options.policy()
        self.tally = Tally(reporter or Reporter())
        self.reporter = self.tally.reporter
        self.metadata = Metadata(self.tally.add)
        #: drop privileged metadata (:mod:`.privileged`)
        self._vet = True
        self._include = PathMatcher(options.includes, options.iincludes)
        self._exclude = PathMatcher(options.excludes, options.iexcludes)
        # (device, inode) of a hard-linked file -> (its dest dir, name, when written)
        self._links: dict[tuple[int, int], tuple[list[bytes], bytes, _Written]] = {}
        #: files listed and not yet handed to a worker, and their bytes
        self._batch: list[_Job] = []
        self._batch_bytes = 0
        #: directories the batch writes into: each waits for it from the
        #: moment its first file is queued, so it is never finished (mode,
        #: times applied, fd let go) before the batch is even handed over
        self._batch_dests: set[Dest] = set()
        self._in_flight: deque[Future[BatchResult]] = deque()
        self._dirs = PendingDirs(self._finish_dir)

    @property
    def stats(self) -> RestoreStats:
        return self.tally.stats

    def run(self, snapshot: SnapshotInfo) -> RestoreStats:
        self.repo.load_index()
        subpath = normalise(self.options.subpath)
        node, listing = resolve(self.repo, snapshot, subpath)
        self._vet = not (snapshot.owner_tree or self.options.preserve_privileged)
        base = subpath.rstrip(b"/")
        if node is not None and node.type != tree.DIR:
            listing, base = [node], base.rsplit(b"/", 1)[0]
        root = self._open_root(listing, base)
        root_fd = root.fd()
        self.files = FileRestorer(
            self.repo,
            (self.options.destination, root_fd),
            self.policy,
            self.tally,
            self._chunker_seed(snapshot),
        )
        self.pool = self._start_pool()
        self.reporter.start("restore")
        try:
            renames = self._restore_nodes(root, listing, base)
            if self.options.delete and (node is None or node.type == tree.DIR):
                self._delete_extra(root_fd, listing, base, renames)
            self._hand_over()
            while self._in_flight:
                self._in_flight.popleft().result()
            self._dirs.drain()
        except BrokenProcessPool as e:
            raise NeostoreError("a restore worker process died") from e
        except BaseException:
            self.pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            self.pool.shutdown(wait=True)
            self.repo.index.unshare()
            self._dirs.close_all()
            root.close()
        self.reporter.finish()
        return self.stats

    def _open_root(self, listing: Sequence[Node], base: bytes) -> Dest:
        """The destination, made if missing, and what names it holds; with
        ``--on-conflict fail``, every name checked before anything is
        written (the folder too is removed again if this made it)."""
        where = self.options.destination
        existed = os.path.isdir(where)
        os.makedirs(where, exist_ok=True)
        root = Dest(None, b"", None, os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        policy = OnConflict(self.options.on_conflict)
        self.names = Conflicts(destination_rules(root.fd()), policy, self.tally, where)
        if policy == OnConflict.FAIL:
            try:
                self.names.check_all(self.repo, listing, base, self._wanted)
            except BaseException:
                root.close()
                if not existed:
                    with contextlib.suppress(OSError):
                        os.rmdir(where)
                raise
        return root

    def _chunker_seed(self, snapshot: SnapshotInfo) -> int | None:
        """The snapshot's chunker seed when this key holds it (owner,
        read-write): files at the destination are then cut as a snapshot
        would cut them, so shifted content is reused too."""
        try:
            record = self.repo.target(snapshot.target)
        except NeostoreError:
            return None
        domain = self.repo.domain_for(record.domain_id, snapshot.manifest.epoch)
        return domain.chunker_seed if domain is not None and domain.writable else None

    # -- worker processes ------------------------------------------------------

    def _start_pool(self) -> ProcessPoolExecutor:
        """Start the workers (:mod:`~neostore.core.workerstart`) now, before
        this process has other threads (a fork copies locks another thread
        may hold). Each gets the file restorer (keys, index, the root):
        inherited when forked, pickled when spawned."""
        ctx = workerstart.context()
        forked = not workerstart.crosses_by_pickle(ctx)
        if forked:
            settle_threads()
        else:
            self.repo.index.share()  # unshared when the pool is shut down
        pool = ProcessPoolExecutor(
            max_workers=max(1, self.options.workers),
            mp_context=ctx,
            initializer=_child_init,
            initargs=(self.files,),
        )
        if forked:
            # forks every worker now, while this is the only thread
            pool.submit(int).result()
        # (a spawning pool starts a worker per batch until it has them all,
        # each without waiting for the one before: :mod:`..core.sharedindex`)
        return pool

    def _hand_over(self) -> None:
        """Give the files listed so far to a worker; wait for the oldest
        batch when enough are in flight."""
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._batch_dests = set()
        if not batch:
            return
        groups: dict[Dest, list[_Job]] = {}
        for job in batch:
            groups.setdefault(job[0], []).append(job)
        # the worker answers per file in this order, directory by directory
        # (a directory's files may be queued before and after a sub-folder's)
        batch = [job for jobs in groups.values() for job in jobs]
        work = [
            (dest.components(), [(n, p) for _, n, p, _ in jobs]) for dest, jobs in groups.items()
        ]
        if any(isinstance(node.content, EncodedRefs) for _, node, _, _ in batch):
            # a file of thousands of chunks: its references, kept encoded
            # in the listing, are not copied to a worker but read here
            future: Future[BatchResult] = Future()
            try:
                future.set_result(self.files.run_batch(work))
            except BaseException as e:
                future.set_exception(e)
        else:
            future = self.pool.submit(_child_batch, work)
        future.add_done_callback(functools.partial(self._batch_done, batch, list(groups)))
        self._in_flight.append(future)
        while len(self._in_flight) > IN_FLIGHT_PER_WORKER * max(1, self.options.workers):
            self._in_flight.popleft().result()
            self._dirs.drain()

    def _batch_done(
        self, batch: list[_Job], dests: list[Dest], future: Future[BatchResult]
    ) -> None:
        """Runs in the pool's thread: merge a worker's outcome."""
        try:
            result = None if future.cancelled() or future.exception() else future.result()
            if result is not None:
                oks, counters, errors, warnings = result
                self.tally.merge(counters)
                for path, message in errors:
                    self.tally.fail(path, message)
                for wpath, message in warnings:
                    self.reporter.warning(wpath, message)
                self.reporter.advance(counters[1], counters[0])
                for (_, _, path, written), ok in zip(batch, oks, strict=True):
                    written.ok = ok
                    if ok:
                        self.reporter.file(path, "restored")
        finally:
            for _, _, _, written in batch:
                written.done.set()
            self._dirs.written(dests)

    # -- the walk ------------------------------------------------------------------

    def _wanted(self, path: bytes, node: Node) -> bool:
        if self._exclude and self._exclude.matches(path):
            return False
        if not self._include:
            return True
        return node.type == tree.DIR or self._include.matches(path)

    def _restore_nodes(
        self, dest: Dest, nodes: Sequence[Node], prefix: bytes
    ) -> dict[bytes, Rename]:
        """Restore a directory's entries; returns their renames."""
        deferred_links: list[tuple[Node, bytes]] = []
        renames = self.names.plan(nodes)
        for listed in nodes:
            path = prefix + b"/" + listed.name
            if not self._wanted(path, listed):
                continue
            node = unprivileged(listed) if self._vet else listed
            if node is not listed:
                self.tally.add(privileged_dropped=1)
                if node is None:
                    continue
            if renames:
                node = self.names.place(node, path, dest.components(), renames)
                if node is None:
                    continue
            self.reporter.item(path)
            try:
                if node.type == tree.DIR:
                    self._restore_dir(dest, node, path)
                elif node.type != tree.FILE:
                    self._restore_special(dest, node, path)
                elif not self._queue_file(dest, node, path):
                    deferred_links.append((node, path))
                else:
                    self._batch_bytes += node.size
                    if len(self._batch) >= BATCH_FILES or self._batch_bytes >= BATCH_BYTES:
                        self._hand_over()
            except OSError as e:
                self.tally.fail(path, e.strerror or str(e))
        if deferred_links:
            self._hand_over()  # the files they link to may be listed but not handed over
        for node, path in deferred_links:
            self._restore_link(dest, node, path)
        return renames

    def _queue_file(self, dest: Dest, node: Node, path: bytes) -> bool:
        """Add a file to the batch; False for another name of a hard-linked
        file already queued (it is linked once that one is written)."""
        key = (node.device, node.inode)
        if node.links > 1 and key in self._links:
            return False
        dest.fd()  # the directory exists before a worker looks for it
        if dest not in self._batch_dests:
            self._batch_dests.add(dest)
            self._dirs.writing([dest])
        written = _Written()
        if node.links > 1:
            self._links[key] = (dest.components(), node.name, written)
        self._batch.append((dest, node, path, written))
        return True

    def _restore_dir(self, parent: Dest, node: Node, path: bytes) -> None:
        try:
            children = self.repo.blobs.load_tree(node.subtree)
        except NeostoreError as e:
            self.tally.fail(path, f"cannot read directory listing: {e}")
            return
        child = Dest(parent, node.name, node, path=path)
        wanted = not self._include or self._include.matches(path)
        if wanted and self._in_the_way(parent, node, path):
            return
        if wanted:
            child.fd()
        self._dirs.opened(child)
        try:
            renames = self._restore_nodes(child, children, path)
            if self.options.delete and child.created:
                self._delete_extra(child.fd(), children, path, renames)
        finally:
            self._dirs.walked(child)  # its metadata once its files are written

    def _finish_dir(self, dest: Dest) -> None:
        """A directory whose content is all written: its metadata now."""
        if not dest.created or dest.node is None:
            return
        try:
            self.metadata.apply_fd(dest.fd(), dest.node)
        except OSError as e:
            self.tally.fail(dest.path, e.strerror or str(e))
            return
        self.tally.add(dirs=1)

    def _delete_extra(
        self, dir_fd: int, nodes: Sequence[Node], prefix: bytes, renames: dict[bytes, Rename]
    ) -> None:
        """``delete``: remove what this destination directory holds that the
        snapshot's directory does not (nothing excluded, or not included)."""
        keep = self.names.kept(nodes, renames)
        for entry in os.listdir(dir_fd):
            name = os.fsencode(entry)
            path = prefix + b"/" + name
            if keep(name) or (self._exclude and self._exclude.matches(path)):
                continue
            if self._include and not self._include.matches(path):
                continue
            try:
                destination.remove_tree(dir_fd, name)
                self.tally.add(removed=1)
            except OSError as e:
                self.tally.fail(path, f"cannot delete: {e.strerror or e}")

    def _restore_link(self, dest: Dest, node: Node, path: bytes) -> None:
        components, first_name, written = self._links[(node.device, node.inode)]
        written.done.wait()
        if written.ok:
            try:
                src_fd = open_below(self.files.root_fd, components)
                try:
                    dir_fd = dest.fd()
                    if self._kept(dir_fd, node):
                        return
                    destination.remove(dir_fd, node.name)
                    os.link(
                        first_name,
                        node.name,
                        src_dir_fd=src_fd,
                        dst_dir_fd=dir_fd,
                        follow_symlinks=False,
                    )
                finally:
                    os.close(src_fd)
                self.tally.add(files=1)
                return
            except OSError:
                pass  # e.g. across file systems: fall back to a copy
        if self.files.restore(dest.fd(), node, path):
            self.reporter.advance(node.size, 1)

    def _in_the_way(self, parent: Dest, node: Node, path: bytes) -> bool:
        """A file (or link, …) kept by the overwrite policy where the
        snapshot has a directory; its subtree is not restored."""
        if self.policy == Overwrite.ALWAYS:
            return False
        try:
            existing = os.stat(node.name, dir_fd=parent.fd(), follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(existing.st_mode) or not keep_existing(self.policy, existing, node):
            return False
        self.tally.add(files_skipped=1)
        self.reporter.warning(
            path,
            "kept what is there; the snapshot's directory is not restored "
            f"(overwrite policy: {self.policy})",
        )
        return True

    def _kept(self, dir_fd: int, node: Node) -> bool:
        """Whether the overwrite policy leaves what exists alone."""
        if self.policy == Overwrite.ALWAYS:
            return False
        try:
            existing = os.stat(node.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if keep_existing(self.policy, existing, node):
            self.tally.add(files_skipped=1)
            return True
        return False

    def _restore_special(self, dest: Dest, node: Node, path: bytes) -> None:
        dir_fd = dest.fd()
        name = node.name
        if self._kept(dir_fd, node):
            return
        destination.remove(dir_fd, name)
        if node.type == tree.SYMLINK:
            os.symlink(node.link_target or b"", name, dir_fd=dir_fd)
            self.metadata.apply_symlink(dir_fd, node)
        elif node.type == tree.FIFO:
            os.mkfifo(name, 0o600, dir_fd=dir_fd)
            self.metadata.apply_special(dir_fd, node)
        elif node.type in (tree.CHARDEV, tree.BLOCKDEV):
            kind = stat.S_IFCHR if node.type == tree.CHARDEV else stat.S_IFBLK
            try:
                os.mknod(name, kind | 0o600, node.rdev, dir_fd=dir_fd)
            except PermissionError:
                self.reporter.warning(path, "device node not restored (needs root)")
                return
            self.metadata.apply_special(dir_fd, node)
        else:
            self.reporter.warning(path, "socket not restored")
            return
        self.tally.add(others=1)


#: in a worker process: the file restorer it inherited
_WORKER: FileRestorer | None = None


def _child_init(files: FileRestorer) -> None:
    global _WORKER
    _WORKER = files
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    gc.freeze()
    # little retained free heap (every worker's memory counts); buffers of
    # 4 MiB and more (max-size chunks: 8 MiB of mostly zeros in sparse
    # files) mapped and returned at once: the heap kept them and a worker's
    # peak grew with the input (1.26x on 10 GB, bench flat-memory)
    tune_malloc(mmap_threshold=4 * MIB)


def _child_batch(work: list[tuple[list[bytes], list[tuple[Node, bytes]]]]) -> BatchResult:
    assert _WORKER is not None
    return _WORKER.run_batch(work)
