"""A restore's names against what its destination holds (:mod:`.names`):
rename, leave out, or refuse before writing (``--on-conflict``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence

from ..core.repository import Repository
from ..errors import NeostoreError
from ..format import tree
from ..format.tree import Node
from . import names
from .names import NameRules, Rename
from .options import OnConflict, Tally


class NameConflict(NeostoreError):
    """``--on-conflict fail`` found names the destination cannot hold."""


class Conflicts:
    def __init__(self, rules: NameRules, policy: OnConflict, tally: Tally, root: str) -> None:
        self.rules = rules
        self.policy = policy
        self.tally = tally
        self.root = os.fsencode(root)

    def plan(self, nodes: Sequence[Node]) -> dict[bytes, Rename]:
        """The renames of one directory's entries (all of them, filters
        aside: the names do not change with --include/--exclude)."""
        return names.plan((n.name for n in nodes), self.rules)

    def place(
        self, node: Node, path: bytes, components: list[bytes], renames: dict[bytes, Rename]
    ) -> Node | None:
        """``node`` as it is written (renamed when it must be), or None
        when it is left out; every rename and omission is recorded."""
        rename = renames.get(node.name)
        if rename is None:
            return node
        if self.policy == OnConflict.SKIP:
            self.tally.record("names_skipped", (path, rename.reason))
            self.tally.reporter.warning(path, f"not restored: {rename.reason}")
            return None
        written = b"/".join([self.root.rstrip(b"/"), *components, rename.restored_as])
        self.tally.record("renamed", (path, written, rename.reason))
        shown = os.fsdecode(written)
        self.tally.reporter.warning(path, f"restored as {shown}: {rename.reason}")
        return dataclasses.replace(node, name=rename.restored_as)

    def kept(self, nodes: Sequence[Node], renames: dict[bytes, Rename]) -> Callable[[bytes], bool]:
        """For ``--delete``: whether a name found at the destination is one
        this restore writes (its own name or its escaped one, as
        :meth:`plan` gave them, compared as the destination compares names)."""
        keep = {
            names.fold(renames[n.name].restored_as if n.name in renames else n.name, self.rules)
            for n in nodes
        }
        return lambda name: names.fold(name, self.rules) in keep

    def check_all(
        self,
        repo: Repository,
        nodes: Sequence[Node],
        prefix: bytes,
        wanted: Callable[[bytes, Node], bool],
    ) -> None:
        """``--on-conflict fail``: every name of the tree to be restored,
        before anything is written; raises :class:`NameConflict` listing
        the first ones."""
        found = [
            f"{os.fsdecode(path)} ({rename.reason})"
            for path, rename in self._walk(repo, nodes, prefix, wanted)
        ]
        if found:
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise NameConflict(
                f"the destination cannot hold {len(found)} name(s), nothing was restored: "
                + "; ".join(found[:5])
                + more
                + " (--on-conflict rename restores them under escaped names)"
            )

    def _walk(
        self,
        repo: Repository,
        nodes: Sequence[Node],
        prefix: bytes,
        wanted: Callable[[bytes, Node], bool],
    ) -> Iterable[tuple[bytes, Rename]]:
        renames = self.plan(nodes)
        for node in nodes:
            path = prefix + b"/" + node.name
            if not wanted(path, node):
                continue
            if node.name in renames:
                yield path, renames[node.name]
            if node.type == tree.DIR:
                yield from self._walk(repo, repo.blobs.load_tree(node.subtree), path, wanted)
