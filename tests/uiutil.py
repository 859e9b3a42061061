"""Running ``neostore ui`` as a real process and talking HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from typing import Any

from conftest import PASSWORD, Cli


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Ui:
    """A ``neostore ui --no-open`` process and an HTTP client that holds
    its session cookie once :meth:`login` has run."""

    def __init__(
        self,
        cli: Cli,
        *args: str,
        password: str | None = PASSWORD,
        env: dict[str, str] | None = None,
        no_open: bool = True,
    ):
        full = dict(cli.env, NEOSTORE_REPO=str(cli.repo), **(env or {}))
        full.pop("NEOSTORE_PASSWORD", None)
        if password is not None:
            full["NEOSTORE_PASSWORD"] = password
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "neostore_cli.main",
                "ui",
                *(["--no-open"] if no_open else []),
                "--listen",
                "127.0.0.1:0",
                *args,
            ],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            self.proc.kill()
            raise AssertionError(
                f"neostore ui printed {line!r}: {self.proc.stderr.read().decode()}"
            )  # type: ignore[union-attr]
        self.url = line
        parsed = urllib.parse.urlsplit(line)
        self.host, self.port = parsed.hostname or "", parsed.port or 0
        self.token = urllib.parse.parse_qs(parsed.query)["token"][0]
        #: the URL prefix every path of the UI starts with
        self.base = parsed.path
        self.cookie: str | None = None
        self.csrf: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        cookie: bool = True,
        raw: bool = False,
    ) -> Reply:
        """``path`` is under the UI's prefix ("/find" is ``<base>find``)
        unless ``raw``."""
        if not raw and path.startswith("/") and not path.startswith(self.base):
            path = self.base + path[1:]
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if cookie and self.cookie:
            sent["Cookie"] = self.cookie
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        reply = Reply(response.status, response.msg, response.read())
        conn.close()
        return reply

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(
        self,
        path: str,
        fields: list[tuple[str, str]] | dict[str, str],
        csrf: bool = True,
        **kw: Any,
    ) -> Reply:
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if csrf:
            items.append(("csrf", self.csrf or ""))
        headers = {"Content-Type": "application/x-www-form-urlencoded", **kw.pop("headers", {})}
        return self.request("POST", path, urllib.parse.urlencode(items).encode(), headers, **kw)

    def login(self) -> Reply:
        reply = self.get(f"/?token={self.token}", cookie=False)
        assert reply.status == 303, reply.text
        self.cookie = reply.headers["Set-Cookie"].split(";", 1)[0]
        home = self.get("/")
        if home.status == 303:  # locked: the unlock page
            home = self.get(home.headers["Location"])
        marker = 'name="csrf-token" content="'
        start = home.text.find(marker)
        if start >= 0:
            self.csrf = home.text[start + len(marker) :].split('"', 1)[0]
        return home

    def wait_job(self, number: int, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/jobs/{number}").json()
            if job["state"] not in ("queued", "running"):
                return job  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"job {number} still running after {timeout} s")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> Ui:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()


def snapshot_path(snapshot_id: str, path: str | bytes) -> str:
    raw = os.fsencode(path)
    return f"/s/{snapshot_id}" + urllib.parse.quote_from_bytes(raw)
