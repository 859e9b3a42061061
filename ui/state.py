"""What every handler reaches through the application: the repository
session, the security guard, the job queue, and when a page last called."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

from . import html
from .jobs import JobQueue
from .security import Guard
from .session import Session


@dataclass
class State:
    session: Session
    guard: Guard
    jobs: JobQueue
    #: stop after this long with no request from a page (None: never)
    idle_timeout: float | None
    last_seen: float = field(default_factory=time.monotonic)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: downloads still being sent (the idle timeout waits for them)
    streaming: int = 0

    def url(self, relative: str) -> str:
        """An absolute path of ours, for a redirect: ``jobs/3`` → ``/<prefix>/jobs/3``."""
        return self.guard.base + relative

    def page(self, title: str, body: str, banner: str | None = None) -> web.Response:
        problems = self.session.problems
        if banner is None and problems:
            banner = f"{len(problems)} problem(s) met reading the repository; last: {problems[-1]}"
        text = html.page(
            title, body, self.guard.csrf, self.guard.base, banner, locked=self.session.locked
        )
        # a message may quote a path that is not UTF-8: never a failed page for it
        data = text.encode("utf-8", "backslashreplace")
        return web.Response(body=data, content_type="text/html", charset="utf-8")


STATE: web.AppKey[State] = web.AppKey("state", State)


def state(request: web.Request) -> State:
    return request.app[STATE]
