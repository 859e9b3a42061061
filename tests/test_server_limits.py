"""neostore-server under abuse (issue 15 items 9 and 10), through a real
server process and raw sockets: quotas on uploads without a length, slow
or silent connections, and caps per client address and per account."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import blake3
from serverutil import ServerProcess, _basic, server_cli

MIB = 1 << 20


def _tls(server: ServerProcess) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=server.cert)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _closed(sock: socket.socket) -> bool:
    """Whether the server closes this connection (waiting up to 60 s; the
    deadlines under test are a few seconds)."""
    sock.settimeout(60)
    try:
        return sock.recv(100) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def _repo_bytes(server: ServerProcess, repo: str) -> int:
    root = server.data / "repos" / repo
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _chunked_upload(server: ServerProcess, path: str, body: bytes) -> bytes:
    """POST ``body`` with chunked transfer encoding (no Content-Length);
    returns the status line."""
    with _tls(server) as tls:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Authorization: {_basic('admin', server.admin_token)}\r\n\r\n"
        )
        tls.sendall(head.encode())
        try:
            for start in range(0, len(body), 256 * 1024):
                piece = body[start : start + 256 * 1024]
                tls.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            tls.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # refused before the end: the answer is waiting
        return tls.recv(200).split(b"\r\n", 1)[0]


def test_quota_holds_for_uploads_without_a_length(tmp_path: Path, cli: object) -> None:
    server = ServerProcess(tmp_path / "srv").start()
    try:
        assert server.request("POST", "/limited/?create=true&format=neostore")[0] == 200
        server_cli(server.data, "repo", "quota", "limited", "--max-size", "3M")
        statuses = []
        for _ in range(5):  # 5 x 1 MiB against a 3 MiB quota
            data = os.urandom(MIB)
            statuses.append(
                _chunked_upload(server, f"/limited/data/{blake3.blake3(data).hexdigest()}", data)
            )
        assert statuses.count(b"HTTP/1.1 200 OK") == 2, statuses
        assert all(s.startswith(b"HTTP/1.1 507") for s in statuses[2:]), statuses
        assert _repo_bytes(server, "limited") <= 3 * MIB
        # an upload in flight counts: a second one that would pass the quota
        # together with it is refused while the first is still arriving
        server_cli(server.data, "repo", "quota", "limited", "--max-size", "4M")
        first = os.urandom(MIB + MIB // 2)
        first_path = f"/limited/data/{blake3.blake3(first).hexdigest()}"
        with server.partial_post(first_path, len(first), first[:1000]):
            second = os.urandom(MIB)
            refused = server.request(
                "POST", f"/limited/data/{blake3.blake3(second).hexdigest()}", body=second
            )
            assert refused[0] == 507, refused
        assert _repo_bytes(server, "limited") <= 4 * MIB
    finally:
        server.stop()


@contextmanager
def _limited_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path / "srv",
        "--header-timeout",
        "2",
        "--max-connections-per-address",
        "4",
        "--max-requests-per-account",
        "2",
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_slow_and_silent_connections_are_closed(tmp_path: Path) -> None:
    with _limited_server(tmp_path) as server:
        # never starts TLS
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        # TLS, then a request head one byte at a time (slowloris)
        slow = _tls(server)
        assert _closed(silent)
        slow.settimeout(60)
        started = time.monotonic()
        cut = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200:
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                cut = True
                break
            time.sleep(0.25)
        assert cut or _closed(slow), f"held for {time.monotonic() - started:.0f} s"
        silent.close()
        slow.close()
        # a client that sends its request in time is served
        assert server.request("GET", "/healthz", auth=None)[0] == 200


def test_connections_per_address_and_requests_per_account_are_capped(tmp_path: Path) -> None:
    with _limited_server(tmp_path) as server:
        assert server.request("POST", "/capped/?create=true&format=neostore")[0] == 200
        held = [_tls(server) for _ in range(4)]
        extra = _tls(server)  # the fifth from this address
        assert _closed(extra)
        held.pop().close()
        time.sleep(0.5)
        assert server.request("GET", "/healthz", auth=None)[0] == 200
        for sock in held:
            sock.close()
        # two uploads in progress for the admin account: a third request waits its turn
        data = os.urandom(1000)
        names = [blake3.blake3(bytes([i]) + data).hexdigest() for i in range(2)]
        with (
            server.partial_post(f"/capped/data/{names[0]}", 1001, b"x"),
            server.partial_post(f"/capped/data/{names[1]}", 1001, b"x"),
        ):
            time.sleep(0.5)
            status, headers, body = server.request("GET", "/capped/config")
            assert status == 429 and headers.get("Retry-After") == "1", body
            assert b"requests in progress" in body
        time.sleep(0.5)
        assert server.request("GET", "/capped/keys/")[0] == 200
