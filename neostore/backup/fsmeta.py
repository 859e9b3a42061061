"""Reading file-system metadata into tree nodes (the backup side)."""

from __future__ import annotations

import errno
import os
import stat
import sys

from .. import owners
from ..format import tree
from ..format.tree import Node
from ..hostfs import xattrs

_TYPES = {
    stat.S_IFREG: tree.FILE,
    stat.S_IFDIR: tree.DIR,
    stat.S_IFLNK: tree.SYMLINK,
    stat.S_IFIFO: tree.FIFO,
    stat.S_IFCHR: tree.CHARDEV,
    stat.S_IFBLK: tree.BLOCKDEV,
    stat.S_IFSOCK: tree.SOCKET,
}


user_name = owners.user_name
group_name = owners.group_name


def node_from_stat(name: bytes, path: bytes, st: os.stat_result) -> Node:
    ntype = _TYPES.get(stat.S_IFMT(st.st_mode))
    if ntype is None:
        raise OSError(errno.EINVAL, "unsupported file type")
    node = Node(
        name=name,
        type=ntype,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        user=user_name(st.st_uid),
        group=group_name(st.st_gid),
        mtime_ns=st.st_mtime_ns,
        atime_ns=st.st_atime_ns,
        ctime_ns=st.st_ctime_ns,
        size=st.st_size if ntype == tree.FILE else 0,
        inode=st.st_ino,
        device=st.st_dev,
        links=st.st_nlink,
    )
    if ntype == tree.SYMLINK:
        node.link_target = os.readlink(path)
    elif ntype in (tree.CHARDEV, tree.BLOCKDEV):
        node.rdev = st.st_rdev
    node.xattrs = xattrs.read(path)
    _platform_fields(node, st)
    return node


def _platform_fields(node: Node, st: os.stat_result, platform: str = sys.platform) -> None:
    """What the platform's stat has beyond POSIX (none of it on Linux):
    file flags (macOS, BSD), file attributes (Windows), creation time."""
    flags = getattr(st, "st_flags", 0)
    if flags:
        node.flags = flags
    attributes = getattr(st, "st_file_attributes", None)
    if attributes is not None:
        node.attributes = attributes
    birth = getattr(st, "st_birthtime_ns", None)  # Windows, Python 3.12+
    seconds = getattr(st, "st_birthtime", None)  # macOS, BSD
    if birth is None and seconds is not None:
        birth = int(seconds * 1_000_000_000)
    if birth is None and platform == "win32":
        # before Python 3.12, Windows reports the creation time as st_ctime
        # (and has no change time to record there)
        birth = st.st_ctime_ns
    if birth:
        node.birth_ns = birth
