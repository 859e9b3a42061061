"""How the command line shows what the library returns: one place for text
and JSON (``--json`` output is part of the command-line contract)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from .say import say

if TYPE_CHECKING:
    from neostore.format.shares import Share
    from neostore.format.tree import Node
    from neostore.lifecycle.forget import GroupPlan
    from neostore.snapshots.info import SnapshotInfo

_TYPES = {
    "f": "file",
    "d": "dir",
    "l": "symlink",
    "p": "fifo",
    "c": "chardev",
    "b": "blockdev",
    "s": "socket",
}


def emit(obj: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def emit_array(items: Iterable[Any]) -> None:
    """One JSON array on stdout, written item by item (a listing of a
    million entries is never held whole)."""
    out = sys.stdout
    out.write("[")
    for n, item in enumerate(items):
        out.write((", " if n else "") + json.dumps(item, ensure_ascii=False))
    out.write("]\n")


def path_warning(path: bytes, message: str) -> None:
    say("warning", message, path)


@contextlib.contextmanager
def output_file(to: str | None) -> Iterator[BinaryIO]:
    """stdout, or the file ``to``: written beside it and put in place once
    complete (a failed command leaves no half file under the name)."""
    if to is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = f"{to}.partial"
    try:
        with open(partial, "wb") as out:
            yield out
        os.replace(partial, to)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def show(path: bytes) -> str:
    return os.fsdecode(path)


def local_time(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def iso(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"


def problems(kind: str, messages: list[str]) -> None:
    """Warnings or errors on stderr, one a line."""
    for message in messages:
        say(kind, message)


# -- snapshots --------------------------------------------------------------------


def snapshot_json(info: SnapshotInfo) -> dict[str, Any]:
    m = info.manifest
    return {
        "id": info.hex_id,
        "short_id": info.hex_id[:8],
        "target": info.target,
        "time": iso(m.time_ns),
        "host": m.host,
        "user": m.user,
        "paths": [show(p) for p in m.paths],
        "tags": m.tags,
        "parent": m.parent.hex() if m.parent else None,
        "writer": m.writer_id.hex(),
        "seq": m.seq,
        "stats": m.stats,
        "original": m.original.hex() if m.original else None,
        "original_repo": m.original_repo.hex() if m.original_repo else None,
        "rewritten": iso(m.rewritten_ns) if m.rewritten_ns is not None else None,
        "lost": [{"path": show(p), "type": k, "bytes": n} for p, k, n in m.lost],
    }


def print_snapshots(rows: list[SnapshotInfo]) -> None:
    print(f"{'ID':<10} {'Time':<19} {'Target':<12} {'Host':<16} {'Tags':<12} Paths")
    for info in rows:
        m = info.manifest
        paths = ", ".join(show(p) for p in m.paths)
        print(
            f"{info.hex_id[:8]:<10} {local_time(m.time_ns):<19} {info.target:<12} "
            f"{m.host[:16]:<16} {','.join(m.tags)[:12]:<12} {paths}"
        )
    print(f"{len(rows)} snapshot(s)")


# -- tree nodes --------------------------------------------------------------------


def mode_string(node: Node) -> str:
    kinds = {"f": "-", "d": "d", "l": "l", "p": "p", "c": "c", "b": "b", "s": "s"}
    return kinds[node.type] + stat.filemode(node.mode)[1:]


def node_json(path: bytes, node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": show(path),
        "name": show(node.name),
        "type": _TYPES[node.type],
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "size": node.size,
        "mtime": iso(node.mtime_ns),
        "mtime_ns": node.mtime_ns,
        "inode": node.inode,
        "links": node.links,
    }
    if node.link_target is not None:
        out["link_target"] = show(node.link_target)
    return out


def node_line(path: bytes, node: Node) -> str:
    """``ls -l`` style: mode, owner, group, size, time, path (-> target)."""
    owner = node.user or str(node.uid)
    group = node.group or str(node.gid)
    suffix = f" -> {show(node.link_target)}" if node.link_target is not None else ""
    return (
        f"{mode_string(node)} {owner:>8} {group:>8} {node.size:>12} "
        f"{local_time(node.mtime_ns)} {show(path)}{suffix}"
    )


# -- forget and shares --------------------------------------------------------------


def plan_json(plan: GroupPlan, dry_run: bool) -> dict[str, Any]:
    return {
        "target": plan.target,
        "group": plan.group,
        "keep": [d.item.ref.hex_id for d in plan.decisions if d.keep],
        "remove": [d.item.ref.hex_id for d in plan.decisions if not d.keep],
        "reasons": [
            {"id": d.item.ref.hex_id, "matches": d.reasons} for d in plan.decisions if d.keep
        ],
        "dry_run": dry_run,
    }


def print_plan(plan: GroupPlan, dry_run: bool) -> None:
    shown = ", ".join(
        f"{k} {','.join(v) if isinstance(v, list) else v}" for k, v in plan.group.items()
    )
    print(f"\ntarget {plan.target}" + (f" ({shown})" if shown else ""))
    for d in plan.decisions:
        info = d.item.ref
        gone = "would remove" if dry_run else "removed"
        verdict = f"keep    {', '.join(d.reasons)}" if d.keep else gone
        print(f"  {info.hex_id[:8]}  {local_time(info.manifest.time_ns)}  {verdict}")


def share_json(target: str, share: Share) -> dict[str, Any]:
    return {
        "name": share.name,
        "target": target,
        "path": show(share.path),
        "created": iso(share.created_ns),
        "revoked": iso(share.revoked_ns) if share.revoked_ns else None,
    }
