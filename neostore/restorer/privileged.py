"""Privileged metadata, and who may have it applied on restore.

A restore run as root recreates what the snapshot says: a setuid binary, a
world-writable block device, a file capability in ``security.capability``.
Whoever signed the snapshot decides that. An owner key is the user's own;
a writer or read-write key is usually one per machine, and a leaked one
must not be able to plant a setuid shell on the machine that restores
(DESIGN §4). So from snapshots not signed by an owner key, a restore drops
setuid/setgid bits on non-directories, device nodes and ``security.*`` /
``trusted.*`` extended attributes, and counts them, unless asked to keep
them (``preserve_privileged``). A setgid directory (group inheritance) is
kept: it grants nothing to a program.
"""

from __future__ import annotations

import dataclasses
import stat

from ..format import tree
from ..format.tree import Node

#: extended attributes only privileged processes may set (and the kernel acts on)
PRIVILEGED_XATTRS = (b"security.", b"trusted.")


def unprivileged(node: Node) -> Node | None:
    """``node`` without privileged metadata: the same object when it has
    none, a copy without it, or None for a device node."""
    if node.type in (tree.CHARDEV, tree.BLOCKDEV):
        return None
    mode = node.mode
    if node.type != tree.DIR:
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
    xattrs = {k: v for k, v in node.xattrs.items() if not k.startswith(PRIVILEGED_XATTRS)}
    if mode == node.mode and len(xattrs) == len(node.xattrs):
        return node
    return dataclasses.replace(node, mode=mode, xattrs=xattrs)
