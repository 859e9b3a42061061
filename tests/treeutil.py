"""Build a source tree with every kind of file, and compare two trees."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

IS_ROOT = os.geteuid() == 0
NS = 1_234_567_891_123_456_789  # a timestamp with non-zero nanoseconds


def build_fidelity_tree(root: Path) -> None:
    root.mkdir(parents=True)
    rb = os.fsencode(root)
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_text("hello neostore\n" * 100)
    (root / "random.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (root / "日本語 ✓.txt").write_text("unicode name\n")
    with open(rb + b"/caf\xe9-latin1", "wb") as f:
        f.write(b"non-utf8 name\n")
    os.mkdir(rb + b"/dir-\xff\xfe")
    with open(rb + b"/dir-\xff\xfe/inside", "wb") as f:
        f.write(b"in a non-utf8 directory\n")

    # sparse: data, a 40 MiB hole, data, then a trailing hole
    with open(root / "sparse.img", "wb") as f:
        f.write(os.urandom(4096))
        f.seek(40 * 1024 * 1024)
        f.write(os.urandom(4096))
        f.truncate(64 * 1024 * 1024)

    # modes
    for name, mode in [("setuid", 0o4755), ("setgid", 0o2711), ("private", 0o600), ("odd", 0o1)]:
        (root / name).write_text(name)
        os.chmod(root / name, mode)
    (root / "sticky").mkdir()
    os.chmod(root / "sticky", 0o1777)
    (root / "sgid-dir").mkdir()
    os.chmod(root / "sgid-dir", 0o2775)

    # symlinks, stored not followed (one dangling, one absolute, one to a dir)
    os.symlink("small.txt", root / "link-rel")
    os.symlink("/nonexistent/target", root / "link-dangling")
    os.symlink("sticky", root / "link-dir")

    # hard links, in one directory and across directories
    (root / "hl").mkdir()
    (root / "hl" / "a").write_text("linked content\n")
    os.link(root / "hl" / "a", root / "hl" / "b")
    os.link(root / "hl" / "a", root / "sticky" / "c")

    # FIFO and, as root, device nodes
    os.mkfifo(root / "fifo", 0o640)
    if IS_ROOT:
        os.mknod(root / "null-dev", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(root / "blk-dev", stat.S_IFBLK | 0o600, os.makedev(7, 200))
        (root / "owned").write_text("owned by someone else\n")
        os.chown(root / "owned", 1234, 5678)
        os.chown(root / "link-rel", 4321, 8765, follow_symlinks=False)

    # extended attributes
    os.setxattr(root / "small.txt", "user.comment", b"an \x00 attribute")
    os.setxattr(root / "sticky", "user.dir-attr", b"on a directory")

    # deep nesting (45 levels)
    deep = root / "deep"
    for level in range(45):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_text("at the bottom\n")

    # nanosecond mtimes, on files and on directories (set last, bottom-up)
    os.utime(root / "small.txt", ns=(NS, NS))
    os.utime(root / "link-rel", ns=(NS, NS + 1), follow_symlinks=False)
    for dirpath, _dirs, _files in os.walk(rb, topdown=False):
        os.utime(dirpath, ns=(NS, NS + 7))


def _digest(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def describe(root: Path) -> dict[bytes, dict[str, Any]]:
    """Everything we promise to restore, per relative path."""
    rb = os.fsencode(root)
    out: dict[bytes, dict[str, Any]] = {}
    inodes: dict[int, bytes] = {}
    for dirpath, dirs, files in os.walk(rb):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, rb)
            st = os.lstat(path)
            info: dict[str, Any] = {
                "type": stat.S_IFMT(st.st_mode),
                "mode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "mtime_ns": st.st_mtime_ns,
            }
            if stat.S_ISREG(st.st_mode):
                info["size"] = st.st_size
                info["sha256"] = _digest(path)
                if st.st_nlink > 1:
                    info["link_group"] = os.path.relpath(inodes.setdefault(st.st_ino, path), rb)
            if stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(path)
                del info["mode"]  # symlink modes are meaningless on Linux
            else:
                info["xattrs"] = {
                    n: os.getxattr(path, n, follow_symlinks=False)
                    for n in os.listxattr(path, follow_symlinks=False)
                }
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info["rdev"] = st.st_rdev
            out[rel] = info
    return out


def assert_same_tree(a: Path, b: Path) -> None:
    assert describe(a) == describe(b)
