"""The HTTP backend's retry, refusal and fork behaviour, against a stub
server that fails on purpose (the real server is tested in test_server.py).
Retries come from the wrapper :func:`open_backend` puts around it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import blake3
import pytest

from neostore.backend import BackendOptions, open_backend
from neostore.backend.base import Backend
from neostore.backend.http import HttpBackend
from neostore.errors import NotFound, PermanentBackendError, TransientBackendError

BODY = b"0123456789"
NAME = blake3.blake3(BODY).hexdigest()


class Stub:
    """Answers ``failures`` requests with ``fail_status`` (or by dropping the
    connection when it is 0), then serves ``BODY`` and accepts uploads."""

    def __init__(self) -> None:
        self.failures = 0
        self.fail_status = 503
        self.requests: list[str] = []
        self.dropped = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> bool:
                stub.requests.append(self.command)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if stub.failures > 0:
                    stub.failures -= 1
                    if stub.fail_status == 0:
                        stub.dropped += 1
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return False
                    self.send_response(stub.fail_status)
                    self.send_header("Content-Length", "6")
                    self.end_headers()
                    self.wfile.write(b"nope.\n")
                    return False
                return True

            def do_GET(self) -> None:
                if not self._answer():
                    return
                if self.path.endswith("/" + "0" * 64):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                first = int(self.headers["Range"].split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {first}-9/10")
                self.send_header("Content-Length", str(10 - first))
                self.end_headers()
                self.wfile.write(BODY[first:])

            def do_POST(self) -> None:
                if not self._answer():
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repo"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    monkeypatch.setattr("neostore.backend.retry.time.sleep", lambda _s: None)
    s = Stub()
    yield s
    s.server.shutdown()


def _retrying(url: str, retries: int, **options: object) -> Backend:
    return open_backend(url, BackendOptions(retries=retries, **options))  # type: ignore[arg-type]


def test_transient_failures_are_retried(stub: Stub) -> None:
    backend = _retrying(stub.url, 3)
    stub.failures = 2
    assert backend.load("data", NAME, 2) == BODY[2:]
    assert stub.requests == ["GET"] * 3


def test_dropped_connections_are_retried(stub: Stub) -> None:
    backend = _retrying(stub.url, 3)
    stub.failures, stub.fail_status = 2, 0
    assert backend.load("data", NAME) == BODY
    assert stub.dropped == 2 and stub.requests == ["GET"] * 3


def test_retries_run_out(stub: Stub) -> None:
    backend = _retrying(stub.url, 1)
    stub.failures = 5
    with pytest.raises(TransientBackendError, match="503"):
        backend.load("data", NAME)
    assert len(stub.requests) == 2


def test_content_addressed_uploads_are_retried_create_only_ones_are_not(stub: Stub) -> None:
    backend = _retrying(stub.url, 3)
    stub.failures = 1
    backend.save("data", NAME, BODY)
    assert stub.requests == ["POST", "POST"]
    stub.requests.clear()
    stub.failures = 1
    with pytest.raises(TransientBackendError):
        backend.save_new("targets", "docs", b"record")
    assert stub.requests == ["POST"]  # sent once: a retry could see its own write as "exists"


def test_refusals_are_clear_and_not_retried(stub: Stub) -> None:
    backend = _retrying(stub.url, 3)
    stub.failures, stub.fail_status = 1, 403
    with pytest.raises(PermanentBackendError, match="this account may not read data/"):
        backend.load("data", NAME)
    assert len(stub.requests) == 1
    with pytest.raises(NotFound):
        backend.load("data", "0" * 64)


def test_a_forked_child_opens_its_own_connections(stub: Stub) -> None:
    backend = HttpBackend(stub.url)
    assert backend.load("data", NAME) == BODY
    assert backend._pool is not None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        ok = backend._pool is None and backend.load("data", NAME) == BODY
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend._pool is not None  # the parent's pool is untouched
    assert backend.load("data", NAME) == BODY


def test_a_connection_cut_during_the_tls_handshake_is_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server killed mid-handshake is unreachable (retried), not a
    certificate problem (which would never be retried)."""
    monkeypatch.setattr("neostore.backend.retry.time.sleep", lambda _s: None)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.recv(1024)  # the ClientHello
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    port = listener.getsockname()[1]
    backend = _retrying(
        f"https://127.0.0.1:{port}/repo", 2, server_fingerprint="SHA256:" + "ab" * 32
    )
    try:
        with pytest.raises(TransientBackendError, match="server unreachable"):
            backend.load("data", NAME)
    finally:
        listener.close()
    assert len(accepted) == 3
