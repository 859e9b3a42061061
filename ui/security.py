"""Who may talk to the UI: the holder of the printed URL, from the UI's
own pages.

- Every URL lives under a random path prefix (kept per user, so bookmarks
  last), and the session cookie is scoped to it: cookies are not scoped by
  port, so a cookie for ``/`` would go to any server another local user
  runs on 127.0.0.1; one for ``/<prefix>/`` goes only where the prefix is
  known.
- The printed URL carries a random token; the first request with it gets
  the session cookie (HttpOnly, SameSite=Strict) and is redirected to the
  same page without the token, so it leaves the address bar.
  Every other request needs the cookie: 401 and no data otherwise.
- ``Host`` must name the UI itself (a DNS-rebinding page reaches 127.0.0.1
  under its own host name), and an ``Origin`` or ``Sec-Fetch-Site`` that
  says the request comes from another site is refused: 403.
- Requests that change state (POST) also carry the CSRF token the pages
  hold (a form field or the ``X-CSRF-Token`` header): 403 without it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PARAM = "token"  # noqa: S105 - the name of the query parameter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: sent with every response: nothing from elsewhere runs or loads, no
#: framing, no sniffing, no referrer to other sites, nothing cached
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say Origin: null
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class Guard:
    def __init__(self, hosts: list[str], port: int, prefix: str) -> None:
        self.token = secrets.token_urlsafe(32)
        self.session = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)
        self.port = port
        self.hosts = {f"{host}:{port}" for host in hosts}
        self.origins = {f"http://{host}" for host in self.hosts}
        #: every URL of the UI starts with this (see the module's docstring)
        self.base = f"/{prefix}/"
        #: two UIs (two ports) must not overwrite each other's cookie
        self.cookie = f"neostore_ui_{port}"

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}{self.base}?{TOKEN_PARAM}={self.token}"

    @staticmethod
    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        """On every response, streamed ones too (``on_response_prepare``)."""
        response.headers.update(HEADERS)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in self.hosts:
            return _refuse(403, "this address is not the UI's own (Host refused)")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return _refuse(403, "a request from another site (Origin refused)")
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return _refuse(403, "a request from another site refused")
        if _same(request.query.get(TOKEN_PARAM), self.token):
            return self._login(request)
        if not _same(request.cookies.get(self.cookie), self.session):
            return _refuse(401, "open the address `neostore ui` printed (it carries the token)")
        if request.method not in ("GET", "HEAD") and not await self._csrf_ok(request):
            return _refuse(403, "missing or wrong CSRF token: reload the page and try again")
        return await handler(request)

    def _login(self, request: web.Request) -> web.StreamResponse:
        """The cookie, and the same page without the token (always a path
        of ours: never ``//other.host/…``)."""
        path = "/" + request.rel_url.raw_path.lstrip("/")
        query = [(k, v) for k, v in request.query.items() if k != TOKEN_PARAM]
        where = path + ("?" + urlencode(query) if query else "")
        response = web.HTTPSeeOther(where if path.startswith(self.base) else self.base)
        response.set_cookie(
            self.cookie, self.session, httponly=True, samesite="Strict", path=self.base
        )
        return response

    async def _csrf_ok(self, request: web.Request) -> bool:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()  # kept by aiohttp for the handler
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        return _same(sent, self.csrf)


def _refuse(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=f"{status}: {message}\n", content_type="text/plain")
