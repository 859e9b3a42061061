"""The application: routes, the error pages, and running it until Ctrl-C,
the Quit control, or an idle time with no page open."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

import neostore

from . import actions, browse, home, search
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
    """Every failure becomes a page (or JSON for /api/): never a blank one."""
    s = state(request)
    s.last_seen = time.monotonic()
    status, banner = 500, None
    try:
        return await handler(request)
    except web.HTTPException as e:  # a response of its own, returned so headers are added
        return web.Response(status=e.status, text=e.text, headers=e.headers)
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
            return web.Response(status=303, headers={"Location": "/unlock"})
        banner = str(e)
    if request.path.startswith("/api/"):
        return web.json_response({"error": banner}, status=status)
    page = s.page("Something went wrong", '<p><a href="/">Back to the snapshots</a></p>', banner)
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
    routes = [
        web.get("/", home.home),
        web.get("/t/{target}", home.target_page),
        web.get("/unlock", home.unlock_form),
        web.post("/unlock", home.unlock),
        web.get("/s/{snapshot}", _slash),
        web.get("/s/{snapshot}/{path:.*}", browse.view),
        web.get("/find", search.find),
        web.get("/diff", search.diff),
        web.get("/backup", actions.backup_form),
        web.post("/backup", actions.backup),
        web.get("/restore", actions.restore_form),
        web.post("/restore", actions.restore),
        web.get("/jobs", actions.jobs),
        web.get("/jobs/{number}", actions.job_page),
        web.post("/jobs/{number}/cancel", actions.job_cancel),
        web.get("/api/jobs/{number}", actions.job_json),
        web.get("/api/ping", actions.ping),
        web.post("/quit", actions.quit_ui),
    ]
    app.add_routes(routes)
    app.router.add_static("/static", STATIC, append_version=False)
    return app


async def _slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(request.rel_url.raw_path + "/")


def parse_listen(listen: str) -> tuple[str, int | None]:
    """``HOST:PORT``, ``HOST`` or ``[V6]:PORT`` → (host, port or None)."""
    host, sep, port = listen.rpartition(":")
    if not sep or "]" in port:
        host, port = listen, ""
    host = host.strip("[]") or "127.0.0.1"
    if port and not port.isdigit():
        raise neostore.UsageError(f"{listen!r}: the port must be a number", option="listen")
    if host in ("0.0.0.0", "::"):  # noqa: S104 - refused, not used
        raise neostore.UsageError(
            f"{listen!r}: give the address people will use, not a wildcard "
            "(requests must name it: the Host check)",
            option="listen",
        )
    return host, int(port) if port else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
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
    guard = Guard(names, bound)
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
    if open_browser:
        await loop.run_in_executor(None, webbrowser.open, url)
    watcher = asyncio.create_task(_idle(s))
    try:
        await s.stopping.wait()
    finally:
        watcher.cancel()
        await loop.run_in_executor(None, s.jobs.stop)
        await runner.cleanup()
        s.session.pool.shutdown(wait=False, cancel_futures=True)


async def _idle(s: State) -> None:
    while s.idle_timeout is not None:
        await asyncio.sleep(min(IDLE_CHECK, s.idle_timeout))
        if s.jobs.busy():
            s.last_seen = time.monotonic()
        elif time.monotonic() - s.last_seen > s.idle_timeout:
            log.info("no page open for %.0f s: stopping", s.idle_timeout)
            s.stopping.set()
            return
