"""``/s/<snapshot-id>/<path>``: a folder (sortable, a page of entries at a
time, with breadcrumbs) or a file (its versions, a preview, downloads).
The path is taken from the raw URL as bytes, so names that are not UTF-8
have stable URLs too; a ``.`` or ``..`` component is a 404."""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from aiohttp import web

import neostore

from . import downloads
from .html import (
    breadcrumbs,
    esc,
    mode_text,
    name_text,
    page_number,
    path_url,
    restore_url,
    size_text,
    table,
    time_text,
)
from .session import Session, parse_path
from .state import state

#: entries per page of a folder
PAGE_SIZE = 250
#: versions shown on a file's page unless all are asked for
VERSIONS_SHOWN = 50
KINDS = {"d": "folder", "f": "file", "l": "symlink", "p": "fifo", "c": "char device",
         "b": "block device", "s": "socket"}  # fmt: skip
SORTS: dict[str, Callable[[neostore.Node], Any]] = {
    "name": lambda n: n.name,
    "size": lambda n: (n.size, n.name),
    "mtime": lambda n: (n.mtime_ns, n.name),
    "type": lambda n: (n.type != "d", n.type, n.name),
}


COLUMNS = (("name", "Name"), ("type", "Type"), ("size", "Size"), ("mtime", "Modified"))


def target_of(request: web.Request) -> tuple[str, bytes]:
    """(snapshot id, path) of a ``…/s/<id>/<path>`` URL, the path from the
    raw URL as bytes; 404 for a path that climbs."""
    snapshot_id = request.match_info["snapshot"]
    marker = f"/s/{snapshot_id}/"
    raw = request.rel_url.raw_path
    at = raw.find(marker)
    path = parse_path(unquote_to_bytes(raw[at + len(marker) :])) if at >= 0 else None
    if path is None or not snapshot_id:
        raise web.HTTPNotFound(text="404: no such path")
    return snapshot_id, path


def resolve(
    session: Session, snapshot_id: str, path: bytes
) -> tuple[neostore.SnapshotInfo, neostore.Node | None, list[neostore.Node]]:
    """(snapshot, the node at ``path`` (None for the root), its entries if a folder)."""
    info = session.snapshot(snapshot_id)
    if path == b"/":
        return info, None, session.folder(info, path)
    parent, _, name = path.rpartition(b"/")
    siblings = session.folder(info, parent or b"/")  # in name order
    at = bisect.bisect_left(siblings, name, key=lambda n: n.name)
    if at < len(siblings) and siblings[at].name == name:
        node = siblings[at]
        return info, node, session.folder(info, path) if node.type == "d" else []
    raise neostore.NotFound(f"{os.fsdecode(path)}: not in snapshot {snapshot_id[:8]}")


async def view(request: web.Request) -> web.StreamResponse:
    s = state(request)
    snapshot_id, path = target_of(request)
    info, node, entries = await s.session.run(resolve, s.session, snapshot_id, path)
    download = request.query.get("download")
    if node is not None and node.type != "d":
        if download:
            return await downloads.file(request, s.session, info, path, node)
        return await _file_page(request, info, path, node)
    if download in ("zip", "tar"):
        return await downloads.archive(request, s.session, info, path, download)
    return await _folder_page(request, info, path, entries)


async def _folder_page(
    request: web.Request,
    info: neostore.SnapshotInfo,
    path: bytes,
    entries: list[neostore.Node],
) -> web.StreamResponse:
    s = state(request)
    sort = request.query.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    descending = request.query.get("order") == "desc"
    ordered = entries
    if sort != "name" or descending:
        ordered = await s.session.run_unlocked(
            lambda: sorted(entries, key=SORTS[sort], reverse=descending)
        )
    pages = max(1, (len(ordered) + PAGE_SIZE - 1) // PAGE_SIZE)
    number = min(page_number(request), pages)
    shown = ordered[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    base = path.rstrip(b"/")
    rows = [_entry_row(info.hex_id, base + b"/" + node.name, node) for node in shown]
    headers = ['<span class="sr-only">Select</span>'] + [
        _sort_link(key, label, sort, descending)
        for key, label in COLUMNS
    ] + ["Mode"]  # fmt: skip
    title = f"{name_text(path)} — {time_text(info.manifest.time_ns)}"
    actions = _folder_actions(info.hex_id, path)
    pager = _pager(number, pages, len(ordered), sort, descending)
    body = f"""{breadcrumbs(info.hex_id, path)}{actions}
<form method="get" action="restore" id="selection">
<input type="hidden" name="snapshot" value="{esc(info.hex_id)}">
{pager}{table(headers, rows, "folder contents", "listing")}{pager}
<button type="submit" id="restore-selected">Restore selected…</button></form>"""
    return s.page(title, body)


def _entry_row(snapshot_id: str, path: bytes, node: neostore.Node) -> list[str]:
    name = node.name
    shown = name_text(name) + ("/" if node.type == "d" else "")
    quoted = quote_from_bytes(path)
    return [
        f'<input type="checkbox" name="item" value="{esc(quoted)}" '
        f'aria-label="select {esc(name_text(name))}">',
        f'<a href="{esc(path_url(snapshot_id, path))}">{esc(shown)}</a>',
        esc(KINDS.get(node.type, node.type)),
        esc(size_text(node.size)) if node.type == "f" else "",
        esc(time_text(node.mtime_ns)),
        f"<code>{esc(mode_text(node.mode, node.type))}</code>",
    ]


def _sort_link(key: str, label: str, sort: str, descending: bool) -> str:
    order = "desc" if key == sort and not descending else "asc"
    mark = (" ▼" if descending else " ▲") if key == sort else ""
    current = f' aria-sort="{"descending" if descending else "ascending"}"' if key == sort else ""
    return f'<a href="?sort={key}&amp;order={order}"{current}>{esc(label)}{mark}</a>'


def _pager(number: int, pages: int, total: int, sort: str, descending: bool) -> str:
    if pages == 1:
        return f'<p class="count">{total} entries</p>'
    order = "desc" if descending else "asc"

    def link(n: int, text: str) -> str:
        return f'<a href="?sort={sort}&amp;order={order}&amp;page={n}">{esc(text)}</a>'

    first = (number - 1) * PAGE_SIZE + 1
    parts = [f"Entries {first}–{min(total, number * PAGE_SIZE)} of {total}"]
    if number > 1:
        parts += [link(1, "« first"), link(number - 1, "‹ previous")]
    if number < pages:
        parts += [link(number + 1, "next ›"), link(pages, "last »")]
    return '<nav class="pages" aria-label="Pages">' + " · ".join(parts) + "</nav>"


def _folder_actions(snapshot_id: str, path: bytes) -> str:
    zip_url, tar_url = (
        path_url(snapshot_id, path, download="zip"),
        path_url(snapshot_id, path, download="tar"),
    )
    return (
        '<p class="actions">'
        f'<a href="{esc(restore_url(snapshot_id, path))}">Restore this folder…</a> · '
        f'<a href="{esc(zip_url)}" download>Download as zip</a> · '
        f'<a href="{esc(tar_url)}" download>Download as tar</a></p>'
    )


async def _file_page(
    request: web.Request, info: neostore.SnapshotInfo, path: bytes, node: neostore.Node
) -> web.StreamResponse:
    s = state(request)
    every = request.query.get("versions") == "all"
    versions, total = await s.session.run(_versions, s.session, info, path, every)
    download = path_url(info.hex_id, path, download="1")
    facts = [
        ("Size", size_text(node.size) if node.type == "f" else "–"),
        ("Modified", time_text(node.mtime_ns)),
        ("Mode", mode_text(node.mode, node.type)),
        ("Owner", f"{node.user or node.uid}:{node.group or node.gid}"),
    ]
    if node.link_target is not None:
        facts.append(("Points to", name_text(node.link_target)))
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    body = [breadcrumbs(info.hex_id, path), f'<dl class="facts">{dl}</dl>']
    if node.type == "f":
        body.append(
            f'<p class="actions"><a href="{esc(download)}" id="download" download>Download</a> · '
            f'<a href="{esc(restore_url(info.hex_id, path))}">Restore…</a></p>'
        )
        body.append(await downloads.preview(s.session, info, path, node))
    body.append('<section aria-labelledby="versions"><h2 id="versions">Versions</h2>')
    complete = len(versions) == total
    body.append(_versions_table(versions, path, info.hex_id, complete))
    if not complete:
        body.append('<p><a href="?versions=all">All versions</a></p>')
    body.append("</section>")
    return s.page(name_text(path.rsplit(b"/", 1)[-1]), "".join(body))


Version = tuple[neostore.SnapshotInfo, neostore.Node | None]


def _versions(
    session: Session, current: neostore.SnapshotInfo, path: bytes, every: bool
) -> tuple[list[Version], int]:
    """The node at ``path`` in each snapshot of the same target, newest
    first, and how many snapshots that target has."""
    same = [i for i in session.listing().snapshots if i.target == current.target][::-1]
    out: list[Version] = []
    for info in same if every else same[:VERSIONS_SHOWN]:
        try:
            entries = neostore.list_directory(session.need(), info, path)
        except neostore.NotFound:
            out.append((info, None))
            continue
        out.append((info, entries[0][1] if len(entries) == 1 and entries[0][0] == path else None))
    return out, len(same)


def _fingerprint(node: neostore.Node | None) -> object:
    if node is None:
        return None
    if node.type != "f":
        return (node.type, node.link_target, node.size)
    return (node.size, tuple(ref.digest for ref in node.content))


def _change(versions: list[Version], index: int, complete: bool) -> str:
    """How version ``index`` compares with the nearest older snapshot that
    holds the path (snapshots without it in between are skipped)."""
    node = versions[index][1]
    if node is None:
        return "absent"
    older = next((n for _, n in versions[index + 1 :] if n is not None), None)
    kind = "" if node.type == "f" else f" ({KINDS.get(node.type, node.type)})"
    if older is None:
        return ("first version" if complete else "older not shown") + kind
    if older.type != node.type:
        return f"was a {KINDS.get(older.type, older.type)}" + kind
    return ("changed" if _fingerprint(node) != _fingerprint(older) else "unchanged") + kind


def _versions_table(versions: list[Version], path: bytes, current: str, complete: bool) -> str:
    rows = []
    for index, (info, node) in enumerate(versions):
        change = _change(versions, index, complete)
        when = esc(time_text(info.manifest.time_ns))
        link = when if node is None else f'<a href="{esc(path_url(info.hex_id, path))}">{when}</a>'
        mark = " (this one)" if info.hex_id == current else ""
        size = esc(size_text(node.size)) if node is not None and node.type == "f" else ""
        rows.append([link + mark, size, esc(change), f"<code>{esc(info.hex_id[:8])}</code>"])
    return table(["Snapshot", "Size", "Compared with the one before", "Id"], rows, "versions")
