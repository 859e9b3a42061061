"""What changes things: ``/backup`` and ``/restore`` (forms that start a
job), ``/jobs`` (their progress, live), and ``/quit``."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from aiohttp import web
from multidict import MultiDictProxy

import neostore

from .browse import resolve
from .html import csrf_field, esc, name_text, size_text, table, time_text
from .jobs import Job
from .session import Session, is_writable_dir, parse_path
from .state import state

#: paths named on the page that asks before overwriting
CONFIRM_SHOWN = 50


async def backup_form(request: web.Request, error: str | None = None) -> web.StreamResponse:
    s = state(request)
    targets = await s.session.run(neostore.list_targets, s.session.need())
    form = await request.post() if request.method == "POST" else {}
    options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in targets)
    message = f'<p class="bad" role="alert">{esc(error)}</p>' if error else ""
    csrf = csrf_field(s.guard.csrf)
    body = f"""{message}<form method="post" action="backup" class="stack">{csrf}
<label for="target">Target</label><select id="target" name="target">{options}</select>
<label for="paths">Folders and files to back up (one per line)</label>
<textarea id="paths" name="paths" rows="4" required>{esc(form.get("paths", ""))}</textarea>
<label for="excludes">Leave out (patterns, one per line; optional)</label>
<textarea id="excludes" name="excludes" rows="3">{esc(form.get("excludes", ""))}</textarea>
<label for="tags">Tags (comma-separated; optional)</label>
<input id="tags" name="tags" value="{esc(form.get("tags", ""))}">
<button type="submit" id="start-backup">Back up now</button></form>"""
    return s.page("Back up", body)


def _lines(text: object) -> list[str]:
    return [line.strip() for line in str(text or "").splitlines() if line.strip()]


async def backup(request: web.Request) -> web.StreamResponse:
    s = state(request)
    form = await request.post()
    paths = _lines(form.get("paths"))
    missing = [p for p in paths if not os.path.isabs(p) or not os.path.lexists(p)]
    if not paths or missing:
        why = f"{missing[0]}: no such file or folder (give absolute paths)" if missing else None
        return await backup_form(request, why or "give at least one folder to back up")
    spec = {
        "paths": paths,
        "target": str(form.get("target", "default")),
        "excludes": _lines(form.get("excludes")),
        "tags": [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()],
    }
    job = s.jobs.submit("backup", f"Back up {', '.join(paths)} into {spec['target']}", spec)
    raise web.HTTPSeeOther(s.url(f"jobs/{job.number}"))


def _items(request_items: list[str]) -> list[bytes]:
    items = []
    for quoted in request_items:
        path = parse_path(unquote_to_bytes(quoted))
        if path is None:
            raise web.HTTPNotFound(text="404: no such path")
        items.append(path)
    if not items:
        raise web.HTTPBadRequest(text="400: select at least one file or folder to restore")
    return items


async def restore_form(request: web.Request) -> web.StreamResponse:
    s = state(request)
    snapshot_id = request.query.get("snapshot", "")
    items = _items(request.query.getall("item", []))
    info = await s.session.run(s.session.snapshot, snapshot_id)
    return s.page("Restore", _restore_body(s.guard.csrf, info, items, "", "folder", None))


def _restore_body(
    csrf: str,
    info: neostore.SnapshotInfo,
    items: list[bytes],
    destination: str,
    where: str,
    error: str | None,
) -> str:
    listed = "".join(f"<li><code>{esc(name_text(p))}</code></li>" for p in items)
    hidden = "".join(
        f'<input type="hidden" name="item" value="{esc(quote_from_bytes(p))}">' for p in items
    )
    modes = "".join(
        f'<option value="{m.value}">{esc(m.value)}</option>' for m in neostore.Overwrite
    )
    message = f'<p class="bad" role="alert">{esc(error)}</p>' if error else ""
    checked = ("checked" if where == "folder" else "", "checked" if where == "original" else "")
    return f"""{message}<p>From the snapshot of {esc(time_text(info.manifest.time_ns))}
(<code>{esc(info.hex_id[:8])}</code>):</p><ul>{listed}</ul>
<form method="post" action="restore" class="stack">{csrf_field(csrf)}
<input type="hidden" name="snapshot" value="{esc(info.hex_id)}">{hidden}
<fieldset><legend>Where to</legend>
<label><input type="radio" name="where" value="folder" {checked[0]}> Into this folder:</label>
<input id="destination" name="destination" value="{esc(destination)}"
 aria-label="destination folder" placeholder="/home/me/restored">
<label><input type="radio" name="where" value="original" {checked[1]}> Their original place
 (asks before overwriting)</label></fieldset>
<label for="overwrite">Files that exist already</label>
<select id="overwrite" name="overwrite">{modes}</select>
<button type="submit" id="start-restore">Restore</button></form>"""


def _plan(
    session: Session, info: neostore.SnapshotInfo, items: list[bytes], where: str, folder: str
) -> tuple[list[tuple[str, str]], list[bytes], int]:
    """(subpath, destination) per item, and what the restore would
    overwrite: the first paths and their count."""
    plan: list[tuple[str, str]] = []
    existing: list[bytes] = []
    count = 0
    names: set[bytes] = set()
    for path in items:
        _, node, _ = resolve(session, info.hex_id, path)
        is_dir = node is None or node.type == "d"
        name = path.rstrip(b"/").rsplit(b"/", 1)[-1]
        if where == "original":
            destination = path if is_dir else path.rsplit(b"/", 1)[0] or b"/"
            for inner in _overwritten(session, info, path, node):
                count += 1
                if len(existing) < CONFIRM_SHOWN:
                    existing.append(inner)
        else:
            if name in names:
                raise neostore.UsageError(
                    f"two selected items are named {name_text(name)}: restore them one at a time"
                )
            names.add(name)
            base = os.fsencode(folder)
            destination = os.path.join(base, name) if is_dir and name else base
        plan.append((os.fsdecode(path), os.fsdecode(destination)))
    return plan, existing, count


def _overwritten(
    session: Session, info: neostore.SnapshotInfo, path: bytes, node: neostore.Node | None
) -> Iterator[bytes]:
    """What restoring ``path`` to its original place replaces, as the
    restorer sees it (no symlink followed below the item): each existing
    non-folder where the snapshot has something, and each symlink or file
    where it has a folder (nothing behind it is touched)."""
    if node is not None and node.type != "d":
        if os.path.lexists(path):
            yield path
        return
    skip: bytes | None = None
    for inner, child in neostore.walk(session.need(), info, path):
        if skip is not None and inner.startswith(skip):
            continue
        try:
            found = os.lstat(inner)
        except OSError:
            found = None
        if child.type == "d" and (found is None or not stat.S_ISDIR(found.st_mode)):
            skip = inner + b"/"  # created afresh: nothing below it exists to replace
        if found is not None and not (child.type == "d" and stat.S_ISDIR(found.st_mode)):
            yield inner


async def restore(request: web.Request) -> web.StreamResponse:
    s = state(request)
    form = await request.post()
    info = await s.session.run(s.session.snapshot, str(form.get("snapshot", "")))
    items = _items([str(v) for v in form.getall("item", [])])
    where = "original" if form.get("where") == "original" else "folder"
    folder = str(form.get("destination", "")).strip()
    overwrite = str(form.get("overwrite", "always"))
    if overwrite not in {m.value for m in neostore.Overwrite}:
        raise web.HTTPBadRequest(text="400: unknown overwrite choice")
    problem = is_writable_dir(folder) if where == "folder" else None
    if where == "folder" and not folder:
        problem = "choose a folder to restore into"
    if problem is None:
        try:
            plan, existing, count = await s.session.run(
                _plan, s.session, info, items, where, folder
            )
        except neostore.UsageError as e:
            problem = str(e)
        else:
            problem = next((w for _, d in plan if (w := is_writable_dir(d))), None)
    if problem is not None:
        body = _restore_body(s.guard.csrf, info, items, folder, where, problem)
        return s.page("Restore", body)
    if count and form.get("confirm") != "yes" and overwrite != "never":
        return s.page("Overwrite these files?", _confirm_body(s.guard.csrf, form, existing, count))
    spec = {"snapshot": info.hex_id, "target": info.target, "items": plan, "overwrite": overwrite}
    where_to = "their original place" if where == "original" else folder
    names = ", ".join(name_text(p) for p in items[:3]) + (" …" if len(items) > 3 else "")
    job = s.jobs.submit("restore", f"Restore {names} to {where_to}", spec)
    raise web.HTTPSeeOther(s.url(f"jobs/{job.number}"))


def _confirm_body(csrf: str, form: MultiDictProxy[Any], existing: list[bytes], count: int) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
        for k, v in form.items()
        if k not in ("csrf", "confirm") and isinstance(v, str)
    )
    listed = "".join(f"<li><code>{esc(name_text(p))}</code></li>" for p in existing)
    more = f"<p>… and {count - len(existing)} more.</p>" if count > len(existing) else ""
    return f"""<p role="alert">Restoring to the original place would overwrite {count}
existing file(s) (as the overwrite choice says):</p><ul>{listed}</ul>{more}
<form method="post" action="restore">{csrf_field(csrf)}{hidden}
<input type="hidden" name="confirm" value="yes">
<button type="submit" id="confirm-restore">Overwrite and restore</button>
<a href="./">Cancel</a></form>"""


# -- jobs ------------------------------------------------------------------------------


def _job(request: web.Request) -> Job:
    number = request.match_info["number"]
    digits = number.isascii() and number.isdigit() and len(number) < 9
    job = state(request).jobs.jobs.get(int(number)) if digits else None
    if job is None:
        raise web.HTTPNotFound(text="404: no such job")
    return job


async def jobs(request: web.Request) -> web.StreamResponse:
    s = state(request)
    rows = [
        [f'<a href="jobs/{j.number}">{esc(j.title)}</a>', esc(j.state),
         esc(f"{j.files} files, {size_text(j.bytes)}")]
        for j in reversed(list(s.jobs.jobs.values()))
    ]  # fmt: skip
    return s.page(
        "Jobs", table(["Job", "State", "Done"], rows, "jobs") if rows else "<p>No job yet.</p>"
    )


async def job_page(request: web.Request) -> web.StreamResponse:
    s = state(request)
    job = _job(request)
    ahead = s.jobs.running
    queued = (
        f"<p>Queued: starts when job {ahead.number} ends.</p>"
        if job.state == "queued" and ahead is not None
        else ""
    )
    body = f"""<div id="job" data-job="{job.number}">
<p>{esc(job.title)}</p>{queued}
<p>State: <strong id="job-state" role="status">{esc(job.state)}</strong></p>
<progress id="job-progress" max="100" aria-label="progress"></progress>
<p id="job-counts" aria-live="polite"></p>
<p id="job-current" class="current"></p>
<p id="job-result" aria-live="polite"></p>
<ul id="job-messages" class="messages"></ul>
<form method="post" action="jobs/{job.number}/cancel" id="cancel-form">{csrf_field(s.guard.csrf)}
<button type="submit" id="cancel">Cancel</button></form>
<noscript><p>Reload the page to see progress.</p></noscript></div>"""
    return s.page(f"Job {job.number}: {job.kind}", body)


async def job_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(_job(request).as_json())


async def job_cancel(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    s = state(request)
    s.jobs.cancel(job.number)
    raise web.HTTPSeeOther(s.url(f"jobs/{job.number}"))


async def ping(request: web.Request) -> web.StreamResponse:
    return web.json_response({"busy": state(request).jobs.busy()})


async def quit_ui(request: web.Request) -> web.StreamResponse:
    s = state(request)
    asyncio.get_running_loop().call_later(0.2, s.stopping.set)
    return web.Response(
        text="<!doctype html><title>neostore</title><p>neostore ui has stopped.</p>",
        content_type="text/html",
    )
