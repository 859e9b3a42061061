"""Finding paths in a snapshot's trees: the one navigation used by ``ls``,
``dump``, ``diff``, ``find``, restore and the share publisher.

Paths are absolute byte paths as backed up (``/home/me/notes.txt``);
empty components and a trailing slash are ignored. For a share key the
root of a snapshot is the shared folder alone.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator, Sequence

from ..core.repository import Repository
from ..errors import IntegrityError, NotFound
from ..format.blob import Ref
from ..format.tree import DIR, MAX_LISTING_ENTRIES, Node
from ..snapshots.info import SnapshotInfo


@contextlib.contextmanager
def in_snapshot(snapshot: SnapshotInfo) -> Iterator[None]:
    """Name the snapshot in a damaged or hostile tree's error."""
    try:
        yield
    except IntegrityError as e:
        if str(e).startswith("snapshot "):
            raise
        raise type(e)(f"snapshot {snapshot.hex_id[:12]}: {e}") from e


def normalise(path: str | bytes) -> bytes:
    """``/a/b`` for ``a/b/``, ``//a//b`` …; ``/`` for the root."""
    return b"/" + b"/".join(p for p in os.fsencode(path).split(b"/") if p)


def listing_key(refs: Sequence[Ref]) -> tuple[bytes, ...]:
    """What identifies a listing: its blob ids (listings are content-addressed,
    so the same ids are the same subtree)."""
    return tuple(r.blob_id for r in refs)


def root_listing(repo: Repository, snapshot: SnapshotInfo) -> Sequence[Node]:
    """The nodes at "/" of a snapshot (for a share: the shared folder)."""
    if snapshot.shared_root is not None:
        return list(snapshot.shared_root)
    return repo.blobs.load_tree(snapshot.manifest.root)


def named(listing: Sequence[Node], name: bytes) -> Node | None:
    """The node called ``name`` in a listing, by bisection: every listing
    is sorted by name (verified when read), and one kept encoded then
    decodes ~20 nodes, not all of them."""
    at = bisect.bisect_left(listing, name, key=lambda n: n.name)
    found = listing[at] if at < len(listing) else None
    return found if found is not None and found.name == name else None


def _descend(
    repo: Repository, listing: Sequence[Node], path: bytes, every_entry: bool = False
) -> tuple[Node | None, Sequence[Node]] | None:
    """From ``listing`` down ``path``: (the node there or None for the
    start, the listing of that node when it is a directory), or None when
    some component is missing. With ``every_entry`` the caller will read
    all of the last listing: a large one is then returned decoded (its
    verifying read decodes each node anyway: one decoding, not two)."""
    node: Node | None = None
    parts = [p for p in path.split(b"/") if p]
    for index, part in enumerate(parts):
        found = named(listing, part)
        if found is None:
            return None
        node = found
        keep = MAX_LISTING_ENTRIES if every_entry and index == len(parts) - 1 else 0
        listing = repo.blobs.load_tree(found.subtree, keep) if found.type == DIR else []
    return node, listing


def resolve(
    repo: Repository, snapshot: SnapshotInfo, path: bytes, every_entry: bool = False
) -> tuple[Node | None, Sequence[Node]]:
    """``path`` in a snapshot: (its node, or None for "/"; its listing when
    it is a directory, else empty; see :func:`_descend` for ``every_entry``).
    Raises NotFound."""
    with in_snapshot(snapshot):
        found = _descend(repo, root_listing(repo, snapshot), path, every_entry)
    if found is None:
        raise NotFound(f"{os.fsdecode(path)}: not in snapshot {snapshot.hex_id[:12]}")
    return found


def find_node(repo: Repository, root: Sequence[Ref], path: bytes) -> Node | None:
    """The node at ``path`` below the tree ``root`` (None: not there)."""
    found = _descend(repo, repo.blobs.load_tree(root), path)
    return None if found is None else found[0]


def walk(
    repo: Repository, refs: Sequence[Ref], prefix: bytes = b""
) -> Iterator[tuple[bytes, Node]]:
    """Depth-first walk below the tree ``refs``, yielding (path, node)."""
    for node in repo.blobs.load_tree(refs):
        path = prefix + b"/" + node.name
        yield path, node
        if node.type == DIR:
            yield from walk(repo, node.subtree, path)


def entries(
    repo: Repository, snapshot: SnapshotInfo, path: str | bytes = b"/", recursive: bool = False
) -> Iterator[tuple[bytes, Node]]:
    """What ``ls`` shows, as it is read: the entries of the directory at
    ``path`` (and, ``recursive``, everything below), or the node itself
    for a file."""
    wanted = normalise(path)
    node, listing = resolve(repo, snapshot, wanted, every_entry=True)
    if node is not None and node.type != DIR:
        yield wanted, node
        return
    base = wanted.rstrip(b"/")
    with in_snapshot(snapshot):
        for child in listing:
            child_path = base + b"/" + child.name
            yield child_path, child
            if recursive and child.type == DIR:
                yield from walk(repo, child.subtree, child_path)
