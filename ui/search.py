"""``/find``: file names across snapshots (as ``neostore find``);
``/diff``: what changed between two snapshots (as ``neostore diff``)."""

from __future__ import annotations

from aiohttp import web

import neostore

from .html import esc, name_text, path_url, size_text, table, time_text
from .session import Session
from .state import state

#: matches shown before the rest are only counted
MAX_MATCHES = 1000
MAX_CHANGES = 5000


def _search(
    session: Session, pattern: str, target: str
) -> tuple[list[tuple[neostore.SnapshotInfo, bytes, neostore.Node]], int]:
    snapshots = [i for i in session.listing().snapshots if not target or i.target == target][::-1]
    shown: list[tuple[neostore.SnapshotInfo, bytes, neostore.Node]] = []
    total = 0
    for info, found in neostore.find(session.need(), snapshots, [pattern]):
        total += len(found)
        for path, node in found[: max(0, MAX_MATCHES - len(shown))]:
            shown.append((info, path, node))
    return shown, total


def _target_choice(listing: neostore.Listing, chosen: str) -> str:
    names = sorted({i.target for i in listing.snapshots})
    options = ['<option value="">every target</option>'] + [
        f'<option value="{esc(n)}"{" selected" if n == chosen else ""}>{esc(n)}</option>'
        for n in names
    ]
    choices = "".join(options)
    return f'<label for="target">Target</label><select id="target" name="target">{choices}</select>'


async def find(request: web.Request) -> web.StreamResponse:
    s = state(request)
    pattern = request.query.get("q", "").strip()
    target = request.query.get("target", "")
    listing = await s.session.run(s.session.listing)
    form = f"""<form method="get" action="find" class="inline" role="search">
<label for="q">File name or pattern</label>
<input id="q" name="q" value="{esc(pattern)}" placeholder="*.pdf or /home/*/notes.txt" autofocus>
{_target_choice(listing, target)}<button type="submit">Search</button></form>
<p class="hint">A pattern without "/" matches a name, one with "/" the whole path;
* and ? are wildcards.</p>"""
    if not pattern:
        return s.page("Search", form)
    shown, total = await s.session.run(_search, s.session, pattern, target)
    rows = [
        [
            f'<a href="{esc(path_url(info.hex_id, path))}">{esc(name_text(path))}</a>',
            esc(size_text(node.size)) if node.type == "f" else "folder" if node.type == "d" else "",
            esc(time_text(node.mtime_ns)),
            f'<a href="{esc(path_url(info.hex_id, b"/"))}">'
            f"{esc(time_text(info.manifest.time_ns))}</a>",
            esc(info.target),
        ]
        for info, path, node in shown
    ]
    summary = f'<p class="count" role="status">{total} match(es)'
    summary += f", the first {len(shown)} shown</p>" if total > len(shown) else "</p>"
    result = table(["Path", "Size", "Modified", "Snapshot", "Target"], rows, "matches")
    return s.page("Search", form + summary + result)


def _snapshot_choice(name: str, label: str, listing: neostore.Listing, chosen: str) -> str:
    options = [
        f'<option value="{esc(i.hex_id)}"{" selected" if i.hex_id == chosen else ""}>'
        f"{esc(time_text(i.manifest.time_ns))} · {esc(i.target)} · {esc(i.hex_id[:8])}</option>"
        for i in listing.snapshots[::-1]
    ]
    choices = "".join(options)
    return (
        f'<label for="{name}">{label}</label><select id="{name}" name="{name}">{choices}</select>'
    )


def _changes(
    session: Session, before: str, after: str, path: str
) -> tuple[list[neostore.Change], int]:
    a, b = session.snapshot(before), session.snapshot(after)
    shown: list[neostore.Change] = []
    total = 0
    for change in neostore.diff(session.need(), a, b, path or "/"):
        total += 1
        if len(shown) < MAX_CHANGES:
            shown.append(change)
    return shown, total


def _change_row(before: str, after: str, change: neostore.Change) -> list[str]:
    side, node = (before, change.before) if change.kind == "removed" else (after, change.after)
    assert node is not None
    sizes = [
        c.size if c is not None and c.type == "f" else None for c in (change.before, change.after)
    ]
    return [
        esc(change.kind),
        f'<a href="{esc(path_url(side, change.path))}">{esc(name_text(change.path))}</a>'
        + ("/" if node.type == "d" else ""),
        esc(size_text(sizes[0])),
        esc(size_text(sizes[1])),
    ]


async def diff(request: web.Request) -> web.StreamResponse:
    s = state(request)
    listing = await s.session.run(s.session.listing)
    ids = [i.hex_id for i in listing.snapshots]
    before = request.query.get("a", ids[-2] if len(ids) > 1 else "")
    after = request.query.get("b", ids[-1] if ids else "")
    path = request.query.get("path", "")
    form = f"""<form method="get" action="diff" class="stack">
{_snapshot_choice("a", "Before", listing, before)}{_snapshot_choice("b", "After", listing, after)}
<label for="path">Only below (optional)</label>
<input id="path" name="path" value="{esc(path)}" placeholder="/home/me/Documents">
<button type="submit">Compare</button></form>"""
    if "a" not in request.query or not before or not after:
        return s.page("Compare snapshots", form)
    shown, total = await s.session.run(_changes, s.session, before, after, path)
    counts: dict[str, int] = {}
    for change in shown:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no change"
    more = f" (first {len(shown)} of {total} shown)" if total > len(shown) else ""
    rows = [_change_row(before, after, c) for c in shown]
    result = table(["Change", "Path", "Size before", "Size after"], rows, "changes")
    return s.page(
        "Compare snapshots",
        form + f'<p class="count" role="status">{esc(summary)}{esc(more)}</p>' + result,
    )
