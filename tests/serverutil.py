"""A real neostore-server in a subprocess, on 127.0.0.1 and a free port."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "neostore_server.main", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert proc.returncode == 0, (
            f"neostore-server {args} exited {proc.returncode}: {proc.stderr}"
        )
    return proc


class ServerProcess:
    def __init__(self, data: Path, *serve_args: str) -> None:
        self.data = data
        self.serve_args = serve_args
        info = json.loads(server_cli(data, "init", "--json").stdout)
        self.admin_token: str = info["admin_token"]
        self.fingerprint: str = info["fingerprint"]
        self.cert: str = info["certificate"]
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data / "serve.log"

    def start(self, port: int | None = None) -> ServerProcess:
        port = self.port if port is None else port
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "neostore_server.main", "serve",
                    "--data", str(self.data), "--listen", f"127.0.0.1:{port}", *self.serve_args,
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.request("GET", "/healthz", port=port, auth=None)[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=40)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def url(self, repo: str, port: int | None = None) -> str:
        return f"https://127.0.0.1:{self.port if port is None else port}/{repo}"

    def account(self, name: str, *grants: tuple[str, str, str]) -> str:
        """Create an account with (repo, scope, perms) grants; returns its token."""
        token: str = json.loads(server_cli(self.data, "account", "add", name, "--json").stdout)[
            "token"
        ]
        for repo, scope, perms in grants:
            server_cli(
                self.data,
                "account",
                "grant",
                name,
                "--repo",
                repo,
                "--scope",
                scope,
                "--perms",
                perms,
            )
        return token

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | str | None = "admin",
        port: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """A raw HTTPS request (path sent exactly as given)."""
        context = ssl.create_default_context(cafile=self.cert)
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port if port is None else port, context=context, timeout=30
        )
        all_headers = dict(headers or {})
        if auth == "admin":
            auth = ("admin", self.admin_token)
        if isinstance(auth, tuple):
            all_headers["Authorization"] = _basic(*auth)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    @contextlib.contextmanager
    def partial_post(self, path: str, announced: int, sent: bytes) -> Iterator[ssl.SSLSocket]:
        """An upload announcing ``announced`` bytes that sends only ``sent``;
        the connection stays open inside the block and is cut after it."""
        context = ssl.create_default_context(cafile=self.cert)
        with (
            socket.create_connection(("127.0.0.1", self.port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {_basic('admin', self.admin_token)}\r\n"
                f"Content-Length: {announced}\r\n\r\n"
            )
            tls.sendall(head.encode() + sent)
            tls.settimeout(30)
            yield tls

    def client_env(self, token: str | None = None, user: str | None = None) -> dict[str, str]:
        """Environment for the neostore CLI to use this server."""
        env = {
            "NEOSTORE_SERVER_TOKEN": token or self.admin_token,
            "NEOSTORE_SERVER_FINGERPRINT": self.fingerprint,
            "NEOSTORE_HTTP_RETRIES": "2",
        }
        if user:
            env["NEOSTORE_SERVER_USER"] = user
        return env


def _basic(name: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()
