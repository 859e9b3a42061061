"""The writer's side of prune's two phases: before a new manifest names its
blobs, make sure none of them lives only in packs a prune condemned while
the run went on (docs/design.md, "Prune").

Used by every command that saves a manifest over blobs it did not just
write: ``snapshot`` (files cache, dedup) and ``copy`` (dedup against the
destination).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..backend.names import ObjectType
from ..errors import NeostoreError
from ..format import tree
from ..format.blob import Ref
from ..format.targets import DATA, TREE
from .packer import Packer
from .repository import Repository


def pruned_meanwhile(error: NeostoreError, what: str = "snapshot") -> NeostoreError:
    return NeostoreError(
        f"a prune running at the same time removed data this {what} reuses; "
        f"the {what} was not saved, run the {what} again ({error})"
    )


def keep_condemned(
    repo: Repository, root: Sequence[Ref], packer: Packer, what: str = "snapshot"
) -> int:
    """A prune may have condemned packs since this run loaded the index,
    among them packs it reused or wrote. Copy every blob below ``root``
    that now has no live trusted copy into a new pack (flushed), so the
    grace period only has to cover the moment from here to the manifest.
    Returns how many blobs were copied; raises when a copy is gone too
    (``what`` names the command's result in that message)."""
    listed = repo.objects.list(ObjectType.INDEX)
    stored: set[str] | None = None
    if repo.index_files_gone(listed):
        # a prune swept while this run went on: it may have deleted packs
        # (and the marks that condemned them) that this run reused or
        # wrote. Look at the index and the packs afresh.
        repo.reset_index()
        repo.load_index(names=listed)
        stored = set(repo.objects.list(ObjectType.DATA))
    elif not repo.load_index(names=listed):
        return 0
    try:
        needed = _without_live_copy(repo, root, stored)
    except NeostoreError as e:
        raise pruned_meanwhile(e, what) from None
    for btype, ref in needed:
        try:
            copy = repo.blobs.verified_stored(btype, ref)
        except NeostoreError as e:
            raise pruned_meanwhile(e, what) from None
        packer.add_stored(btype, ref.blob_id, copy)
    if needed:
        packer.flush()
    return len(needed)


def _without_live_copy(
    repo: Repository, root: Sequence[Ref], stored: set[str] | None = None
) -> list[tuple[int, Ref]]:
    """Blobs below ``root`` with no trusted copy outside condemned packs
    (with ``stored``: none in a pack that still exists either)."""
    index = repo.index

    def live(blob_id: bytes) -> bool:
        if blob_id not in index:
            return False
        first = index.lookup(blob_id)  # the trusted, uncondemned copy reads use
        return stored is None or (first is not None and first.pack_id.hex() in stored)

    out: list[tuple[int, Ref]] = []
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        refs = stack.pop()
        if refs and refs[0].blob_id in seen:
            continue
        for ref in refs:
            if ref.blob_id not in seen and not live(ref.blob_id):
                out.append((TREE, ref))
            seen.add(ref.blob_id)
        for node in repo.blobs.load_tree(refs):
            if node.type == tree.FILE:
                for ref in node.content:
                    if ref.blob_id not in seen and not live(ref.blob_id):
                        out.append((DATA, ref))
                    seen.add(ref.blob_id)
            elif node.type == tree.DIR:
                stack.append(node.subtree)
    return out
