"""Accepting connections: TLS handshake and request-head deadlines, and a
cap on connections per client address.

A client that opens connections and then sends nothing, or a request head
one byte at a time, or never starts TLS, holds a connection and a slot of
the server for as long as it is allowed to. Each connection therefore has
``header_timeout`` seconds to finish its TLS handshake, and then (aiohttp's
keep-alive timer, which runs from the start of a connection and from each
response) to deliver a complete request head; after that, a body that
stalls is the upload's own ``idle_timeout``. Connections from one address
beyond the cap are closed at once (after their handshake, when the
address is first known to the protocol).
"""

from __future__ import annotations

import asyncio
from ssl import SSLContext
from typing import Any

from aiohttp import web

from .accounting import Accounting


class _Counted(asyncio.Protocol):
    """aiohttp's protocol, counted against its client address's cap."""

    def __init__(self, inner: asyncio.Protocol, accounting: Accounting) -> None:
        self._inner = inner
        self._accounting = accounting
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._accounting.connect(address):
            transport.close()
            return
        self._address = address
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return  # refused: aiohttp never saw it
        self._accounting.disconnect(self._address)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: SSLContext | None,
        accounting: Accounting,
        handshake_timeout: float,
        shutdown_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            runner, host, port, ssl_context=ssl_context, shutdown_timeout=shutdown_timeout
        )
        self._accounting = accounting
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        options: dict[str, Any] = {}
        if self._ssl_context is not None:
            options["ssl_handshake_timeout"] = self._handshake_timeout
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Counted(server(), self._accounting),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            **options,
        )


def serve_forever(
    app: web.Application,
    accounting: Accounting,
    address: tuple[str, int],
    *,
    ssl_context: SSLContext | None,
    header_timeout: float,
    **runner_options: Any,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then let requests in flight
    finish (up to 30 s)."""
    runner = web.AppRunner(
        app, handle_signals=True, keepalive_timeout=header_timeout, **runner_options
    )
    loop = asyncio.new_event_loop()

    async def start() -> None:
        await runner.setup()
        site = GuardedSite(
            runner,
            *address,
            ssl_context=ssl_context,
            accounting=accounting,
            handshake_timeout=header_timeout,
        )
        await site.start()

    try:
        loop.run_until_complete(start())
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.close()
