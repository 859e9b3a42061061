"""The application: routes, the error pages, and running it until Ctrl-C,
the Quit control, or an idle time with no page open."""

from __future__ import annotations

import asyncio
import contextlib
import html
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

import neostore

from . import actions, browse, home, profilespage, search
from .jobs import Job, JobQueue
from .security import Guard, Handler
from .session import Session
from .state import STATE, State, state

log = logging.getLogger("neostore_ui")
STATIC = Path(__file__).parent / "static"
#: the port tried first, so bookmarks keep working from one start to the next
DEFAULT_PORT = 8765
IDLE_CHECK = 2.0


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a page (or JSON for api/): never a blank one."""
    s = state(request)
    s.last_seen = time.monotonic()
    status, banner = 500, None
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:  # a redirect: returned, so that headers are added
            return web.Response(status=e.status, text=e.text, headers=e.headers)
        status, banner = e.status, (e.text or e.reason).removeprefix(f"{e.status}: ")
    except neostore.RepositoryNotFound as e:
        status, banner = 502, f"The repository cannot be reached: {e}"
    except neostore.NotFound as e:
        status, banner = 404, str(e)
    except neostore.PermissionDenied as e:
        status, banner = 403, f"This key may not do that: {e}"
    except neostore.BackendError as e:
        status, banner = 502, f"The repository cannot be reached: {e}"
    except neostore.NeostoreError as e:
        if s.session.locked:
            return web.Response(status=303, headers={"Location": s.guard.base + "unlock"})
        banner = str(e)
    if request.path.startswith(s.guard.base + "api/"):
        return web.json_response({"error": banner}, status=status)
    page = s.page("Something went wrong", '<p><a href="./">Back to the snapshots</a></p>', banner)
    page.set_status(status)
    return page


def make_app(session: Session, guard: Guard, idle_timeout: float | None) -> web.Application:
    app = web.Application(middlewares=[guard.middleware, errors], client_max_size=1 << 20)
    app.on_response_prepare.append(guard.add_headers)

    def finished(job: Job) -> None:
        if job.kind == "backup":
            session.forget_cached()

    jobs = JobQueue(lambda: session.unlock, finished)
    app[STATE] = State(session, guard, jobs, idle_timeout)
    base = guard.base
    routes = [
        web.get(base, home.home),
        web.get(base + "t/{target}", home.target_page),
        web.get(base + "unlock", home.unlock_form),
        web.post(base + "unlock", home.unlock),
        web.get(base + "s/{snapshot}", _slash),
        # [\s\S]: a name may hold a newline, which "." does not match
        web.get(base + "s/{snapshot}/{path:[\\s\\S]*}", browse.view),
        web.get(base + "find", search.find),
        web.get(base + "diff", search.diff),
        web.get(base + "backup", actions.backup_form),
        web.post(base + "backup", actions.backup),
        web.get(base + "restore", actions.restore_form),
        web.post(base + "restore", actions.restore),
        web.get(base + "profiles", profilespage.profiles),
        web.post(base + "profiles/{name}/run", profilespage.run_profile),
        web.get(base + "jobs", actions.jobs),
        web.get(base + "jobs/{number}", actions.job_page),
        web.post(base + "jobs/{number}/cancel", actions.job_cancel),
        web.get(base + "api/jobs/{number}", actions.job_json),
        web.get(base + "api/ping", actions.ping),
        web.post(base + "quit", actions.quit_ui),
    ]
    app.add_routes(routes)
    app.router.add_static(base + "static", STATIC, append_version=False)
    return app


async def _slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(request.rel_url.raw_path + "/")


def parse_listen(listen: str) -> tuple[str, int | None]:
    """``HOST:PORT``, ``HOST``, ``[V6]:PORT`` or ``V6`` → (host, port or
    None). A wildcard (0.0.0.0, ::, or a name for one) is refused: requests
    must name the address (the Host check)."""
    if listen.startswith("["):
        host, _, rest = listen[1:].partition("]")
        port = rest.removeprefix(":")
    elif listen.count(":") == 1:
        host, port = listen.split(":")
    else:
        host, port = listen, ""
    host = host or "127.0.0.1"
    if port and not (port.isascii() and port.isdigit() and int(port) < 65536):
        raise neostore.UsageError(f"{listen!r}: the port must be 0 to 65535", option="listen")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError) as e:
        raise neostore.UsageError(f"{listen!r}: {e}", option="listen") from e
    if any(ipaddress.ip_address(str(a).split("%")[0]).is_unspecified for a in addresses):
        raise neostore.UsageError(
            f"{listen!r}: give the address people will use, not a wildcard "
            "(requests must name it: the Host check)",
            option="listen",
        )
    return host, int(port) if port else None


def is_loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback
            for info in socket.getaddrinfo(host, None)
        )
    except (OSError, UnicodeError, ValueError):
        return False


def _bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``port``, or on any free port when none is
    given and the default one is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in [port] if port is not None else [DEFAULT_PORT, 0]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((host, candidate))
        except OSError as e:
            sock.close()
            if port is not None or candidate == 0:
                raise neostore.UsageError(f"cannot listen on {host}:{candidate}: {e.strerror}",
                                          option="listen") from e  # fmt: skip
            continue
        sock.listen(128)
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable")


def _prefix() -> str:
    """This user's URL prefix: random once, then kept (0600) with the
    local state, so bookmarks work from one start to the next."""
    path = neostore.state_dir() / "ui-prefix"
    with contextlib.suppress(OSError):
        kept = path.read_text().strip()
        if len(kept) >= 22 and kept.replace("-", "").replace("_", "").isalnum():
            return kept
    prefix = secrets.token_urlsafe(16)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(prefix + "\n")
    return prefix


def serve(
    session: Session,
    listen: str,
    *,
    open_browser: bool,
    idle_timeout: float | None,
    announce: Callable[[str], None],
) -> None:
    """Serve until Ctrl-C/SIGTERM, Quit, or ``idle_timeout`` seconds
    without a request from a page while no job runs."""
    host, port = parse_listen(listen)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    names = [shown, "localhost"] if is_loopback(host) else [shown]
    guard = Guard(names, bound, _prefix())
    app = make_app(session, guard, idle_timeout)
    url = guard.url(shown)
    asyncio.run(_run(app, sock, url, open_browser, announce))


async def _run(
    app: web.Application,
    sock: socket.socket,
    url: str,
    open_browser: bool,
    announce: Callable[[str], None],
) -> None:
    s = app[STATE]
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(signum, s.stopping.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    announce(url)  # serving, and Ctrl-C/SIGTERM handled, from here on
    launcher = _open_browser(url) if open_browser else None
    watcher = asyncio.create_task(_idle(s))
    try:
        await s.stopping.wait()
    finally:
        if launcher is not None:
            shutil.rmtree(launcher, ignore_errors=True)
        watcher.cancel()
        await loop.run_in_executor(None, s.jobs.stop)
        await runner.cleanup()
        s.session.pool.shutdown(wait=False, cancel_futures=True)


def _open_browser(url: str) -> str:
    """Open ``url`` through a page in a private folder that redirects to it:
    the browser's command line (which every local user can read) then
    names a file, not the token. Returns the folder, removed at exit. The
    browser command may not return soon: it runs in a thread of its own."""
    folder = tempfile.mkdtemp(prefix="neostore-ui-")  # 0700
    page = os.path.join(folder, "open.html")
    descriptor = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(
            '<!doctype html><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0;url={html.escape(url)}">'
            f'<a href="{html.escape(url)}">Open neostore</a>'
        )
    target = Path(page).as_uri()
    threading.Thread(target=webbrowser.open, args=(target,), daemon=True).start()
    return folder


async def _idle(s: State) -> None:
    while s.idle_timeout is not None:
        await asyncio.sleep(min(IDLE_CHECK, s.idle_timeout))
        if s.jobs.busy() or s.streaming:  # a job, or a download still being sent
            s.last_seen = time.monotonic()
        elif time.monotonic() - s.last_seen > s.idle_timeout:
            log.info("no page open for %.0f s: stopping", s.idle_timeout)
            s.stopping.set()
            return
