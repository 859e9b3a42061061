"""``/``: the targets and their snapshots with the repository's status;
``/t/<target>``: every snapshot of one target, a page at a time;
``/unlock``: the password form when the UI started without one."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

import neostore

from .html import (
    csrf_field,
    esc,
    name_text,
    page_number,
    path_url,
    size_text,
    table,
    time_text,
)
from .session import Session
from .state import state

#: snapshots per target on the home page, and per page of a target's list
HOME_ROWS = 20
PAGE_ROWS = 100

ROLE_TEXT = {
    "owner": "an owner key: every target, every action",
    "reader": "a reader key: reads its target's snapshots",
    "read-write": "a read-write key: reads and backs up its target",
    "share": "a share key: sees only the shared folder",
    "writer": "a put-only writer key: can back up, cannot read any snapshot",
}


def _rows(snapshots: list[neostore.SnapshotInfo]) -> list[list[str]]:
    rows = []
    for info in snapshots:
        m = info.manifest
        size = m.stats.get("bytes_total") if isinstance(m.stats, dict) else None
        paths = ", ".join(name_text(p) for p in m.paths)
        rows.append(
            [
                f'<a href="{esc(path_url(info.hex_id, b"/"))}">{esc(time_text(m.time_ns))}</a>',
                esc(m.host),
                esc(", ".join(m.tags)),
                esc(paths),
                esc(size_text(size if isinstance(size, int) else None)),
                f"<code>{esc(info.hex_id[:8])}</code>",
            ]
        )
    return rows


HEADERS = ["Time", "Host", "Tags", "Paths", "Size", "Id"]


def _status(
    listing: neostore.Listing | None, last: neostore.LastCheck | None, used: int | None
) -> str:
    items = []
    if last is None:
        items.append("Never checked from this machine: run <code>neostore check</code>.")
    else:
        verdict = "no problem found" if last.ok else f"{last.errors} error(s)"
        if last.tampering:
            verdict += f", {last.tampering} sign(s) of tampering"
        items.append(f"Last check {esc(time_text(last.time_ns))}: {esc(verdict)}.")
    if listing is not None:
        for text in [*listing.tampering, *listing.failures]:
            items.append(f'<strong class="bad">{esc(text)}</strong>')
        for text in listing.warnings:
            items.append(f"<strong>{esc(text)}</strong>")
    items.append(f"Space used in the store: {esc(size_text(used))}.")
    return '<ul class="status">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


Status = tuple[neostore.Listing | None, list[str], neostore.LastCheck | None, int | None]


def _home_data(session: Session) -> Status:
    repo = session.need()
    listing = None if repo.role == neostore.Role.WRITER else session.listing()
    targets = neostore.list_targets(repo)
    return listing, targets, neostore.last_check(repo), session.stored_bytes()


async def home(request: web.Request) -> web.StreamResponse:
    s = state(request)
    if s.session.locked:
        raise web.HTTPSeeOther(s.url("unlock"))
    repo = s.session.need()
    listing, targets, last, used = await s.session.run(_home_data, s.session)
    s.session.warm()  # the index, while the page is read: folders open faster
    body = [
        f"<p>Repository <code>{esc(s.session.location)}</code>, opened with "
        f"{esc(ROLE_TEXT.get(repo.role, repo.role))}.</p>",
        '<section aria-labelledby="status"><h2 id="status">Status</h2>',
        _status(listing, last, used),
        "</section>",
    ]
    if listing is None:
        body.append(
            '<p>This key can back up (<a href="/backup">Back up</a>) but cannot read any '
            "snapshot: the repository's contents are sealed from it.</p>"
        )
        return s.page("Snapshots", "".join(body))
    for target in sorted({i.target for i in listing.snapshots} | set(targets)):
        mine = [i for i in listing.snapshots if i.target == target][::-1]
        body.append(f'<section aria-labelledby="t-{esc(target)}">')
        body.append(f'<h2 id="t-{esc(target)}">Target {esc(target)} ({len(mine)} snapshots)</h2>')
        body.append(table(HEADERS, _rows(mine[:HOME_ROWS]), f"snapshots of {target}"))
        if len(mine) > HOME_ROWS:
            body.append(f'<p><a href="t/{quote(target)}">All {len(mine)} snapshots</a></p>')
        body.append("</section>")
    return s.page("Snapshots", "".join(body))


async def target_page(request: web.Request) -> web.StreamResponse:
    s = state(request)
    target = request.match_info["target"]
    listing = await s.session.run(s.session.listing)
    mine = [i for i in listing.snapshots if i.target == target][::-1]
    if not mine:
        raise web.HTTPNotFound(text=f"no snapshots of target {target!r}")
    page = page_number(request)
    pages = (len(mine) + PAGE_ROWS - 1) // PAGE_ROWS
    shown = mine[(page - 1) * PAGE_ROWS : page * PAGE_ROWS]
    links = " ".join(
        f'<a href="?page={n}"{" aria-current=page" if n == page else ""}>{n}</a>'
        for n in range(1, pages + 1)
    )
    body = table(HEADERS, _rows(shown), f"snapshots of {target}")
    nav = f'<nav class="pages" aria-label="Pages">Page {links}</nav>'
    return s.page(f"Target {target}", nav + body + nav)


async def unlock_form(request: web.Request) -> web.StreamResponse:
    s = state(request)
    return s.page("Unlock", _unlock_body(s.session.location or "", s.guard.csrf, None))


def _unlock_body(location: str, csrf: str, error: str | None) -> str:
    message = f'<p class="bad" role="alert">{esc(error)}</p>' if error else ""
    return f"""{message}<form method="post" action="unlock" class="stack">{csrf_field(csrf)}
<label for="location">Repository</label>
<input id="location" name="location" value="{esc(location)}" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"
 required autofocus>
<button type="submit">Unlock</button></form>
<p>The password goes to this machine's neostore process only; it is not stored.</p>"""


async def unlock(request: web.Request) -> web.StreamResponse:
    s = state(request)
    form = await request.post()
    location, password = str(form.get("location", "")), str(form.get("password", ""))
    try:
        await s.session.run_unlocked(s.session.open, location, password.encode())
    except neostore.NeostoreError as e:
        return s.page("Unlock", _unlock_body(location, s.guard.csrf, str(e)))
    raise web.HTTPSeeOther(s.url(""))
