"""HTML building blocks: escaping, the page frame, links to snapshot paths,
and how sizes, times and modes are shown. Every value that comes from a
snapshot or the user goes through :func:`esc` or :func:`path_url`."""

from __future__ import annotations

import html
import stat
import time
from collections.abc import Iterable
from urllib.parse import quote_from_bytes, urlencode

from aiohttp import web

from .security import CSRF_FIELD


def esc(value: object) -> str:
    """Escaped for HTML; a path decoded with surrogateescape (bytes that
    are not UTF-8) shows its bytes as \\xNN instead of failing the page."""
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return html.escape(text, quote=True)


def name_text(name: bytes) -> str:
    """A file name as text; bytes that are not UTF-8 show as \\xNN."""
    return name.decode("utf-8", "backslashreplace")


def path_url(snapshot_id: str, path: bytes, **query: str) -> str:
    """``s/<id>/<path>`` (relative to the page's base, the UI's prefix),
    each byte of ``path`` that needs it %-encoded."""
    url = f"s/{snapshot_id}" + quote_from_bytes(path if path.startswith(b"/") else b"/" + path)
    return url + ("?" + urlencode(query) if query else "")


def restore_url(snapshot_id: str, *paths: bytes) -> str:
    """The restore form for ``paths``: each %-encoded once as an item, and
    the query encoded once more (the form decodes both)."""
    items = [("item", quote_from_bytes(p)) for p in paths]
    return "restore?" + urlencode([("snapshot", snapshot_id), *items])


def size_text(nbytes: int | None) -> str:
    if nbytes is None:
        return "–"
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def time_text(ns: int | None) -> str:
    if ns is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


#: node type -> the file-type bits stat.filemode() shows
TYPE_BITS = {"f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK, "p": stat.S_IFIFO,
             "c": stat.S_IFCHR, "b": stat.S_IFBLK, "s": stat.S_IFSOCK}  # fmt: skip


def mode_text(mode: int, node_type: str) -> str:
    """``-rw-r--r--``, ``drwxr-xr-x`` … (a node keeps permission bits only)."""
    return stat.filemode(stat.S_IMODE(mode) | TYPE_BITS.get(node_type, 0))


def page_number(request: web.Request) -> int:
    """``?page=N`` (1 when absent or not a number)."""
    text = request.query.get("page", "1")
    return max(1, int(text)) if text.isascii() and text.isdigit() and len(text) < 9 else 1


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(token)}">'


def breadcrumbs(snapshot_id: str, path: bytes) -> str:
    parts = [p for p in path.split(b"/") if p]
    crumbs = [f'<a href="{esc(path_url(snapshot_id, b"/"))}">{esc(snapshot_id[:8])}</a>']
    for i, part in enumerate(parts):
        here = b"/" + b"/".join(parts[: i + 1])
        if i == len(parts) - 1:
            crumbs.append(f'<span aria-current="page">{esc(name_text(part))}</span>')
        else:
            crumbs.append(
                f'<a href="{esc(path_url(snapshot_id, here))}">{esc(name_text(part))}</a>'
            )
    return '<nav class="crumbs" aria-label="Breadcrumbs">' + " / ".join(crumbs) + "</nav>"


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], label: str, css: str = "") -> str:
    """A table of already-escaped cells."""
    head = "".join(f'<th scope="col">{h}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    style = f' class="{css}"' if css else ""
    return (
        f'<table{style} aria-label="{esc(label)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


NAV = (
    ("./", "Snapshots"),
    ("find", "Search"),
    ("diff", "Compare"),
    ("backup", "Back up"),
    ("profiles", "Profiles"),
    ("jobs", "Jobs"),
)


def page(
    title: str, body: str, csrf: str, base: str, banner: str | None = None, locked: bool = False
) -> str:
    """The whole document: navigation, an error banner when there is one,
    the body, and the Quit control."""
    nav = "" if locked else "".join(f'<a href="{href}">{esc(text)}</a>' for href, text in NAV)
    alert = f'<div class="banner" role="alert">{esc(banner)}</div>' if banner else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<base href="{esc(base)}">
<meta name="csrf-token" content="{esc(csrf)}">
<title>{esc(title)} · neostore</title>
<link rel="stylesheet" href="static/app.css">
<script src="static/app.js" defer></script>
</head><body>
<header><a class="brand" href="./">neostore</a><nav aria-label="Main">{nav}</nav>
<form method="post" action="quit" class="quit">{csrf_field(csrf)}
<button type="submit" id="quit">Quit</button></form></header>
{alert}<main id="main"><h1>{esc(title)}</h1>
{body}
</main></body></html>"""
