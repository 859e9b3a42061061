"""The HTTP application: routing, authentication, grants, object I/O.

Objects live at ``/<repo>/<type>/<name>`` in the shape of restic's REST
protocol v2 (``docs/server.md`` lists every request and answer). The server
never interprets an object: it checks names, hashes of content-addressed
objects, sizes, quotas and grants, and stores bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from neostore.backend import names
from neostore.fsutil import fsync_dir, pread_all

from .accounting import Accounting, Limits, OverQuota, Reservation, TooBusy
from .accounts import Account, AccountStore
from .grants import SHARED_TYPES, allowed, repo_wide
from .storage import ObjectRef, Storage, StorageError, Upload, is_disk_full

V2 = "application/vnd.x.restic.rest.v2"
#: uploads are written to disk in blocks of this size
WRITE_BLOCK = 1 << 20
#: reads up to this size are answered from one buffer; larger ones are streamed
READ_AT_ONCE = 8 << 20

log = logging.getLogger("neostore_server")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str
    max_object_size: int = 512 << 20
    #: seconds an upload may go without receiving a byte
    idle_timeout: float = 120.0
    #: seconds a connection has to deliver a complete request head (and
    #: finish its TLS handshake), from its start or its previous response
    header_timeout: float = 20.0
    limits: Limits = field(default_factory=Limits)


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers=headers)


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.accounts = AccountStore(settings.data_dir)
        self.storage = Storage(settings.data_dir)
        self.accounting = Accounting(self.storage, settings.limits)

    # -- entry ---------------------------------------------------------------

    async def handle(self, request: web.Request) -> StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        if path == "/healthz" and request.method in ("GET", "HEAD"):
            return web.Response(text="ok\n")
        try:
            account = self._authenticate(request)
            request["account"] = account.name
            with self.accounting.request(account.name):
                return await self._route(request, account, path)
        except TooBusy as e:
            return _error(429, str(e), {"Retry-After": "1"})
        except Refused as e:
            return _error(e.status, str(e), e.headers)
        except StorageError as e:
            return _error(e.status, str(e))
        except FileNotFoundError:  # removed between two steps of a request
            return _error(404, "no such object")
        except OSError as e:
            if is_disk_full(e):
                return _error(507, "insufficient storage")
            log.error("I/O error on %s %s: %s", request.method, path, e)
            return _error(500, "internal storage error")

    def _authenticate(self, request: web.Request) -> Account:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        account = None
        if scheme.lower() == "bearer" and value:
            account = self.accounts.authenticate(None, value.strip())
        elif scheme.lower() == "basic" and value:
            try:
                name, _, token = (
                    base64.b64decode(value.strip(), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                name, token = "", ""
            if name and token:
                account = self.accounts.authenticate(name, token)
        if account is None:
            raise Refused(
                401,
                "missing or invalid credentials",
                {"WWW-Authenticate": 'Basic realm="neostore", charset="UTF-8"'},
            )
        return account

    async def _route(self, request: web.Request, account: Account, path: str) -> StreamResponse:
        segments = path.split("/")[1:]
        repo = segments[0]
        self.storage.repo_dir(repo)  # validates the name
        rest = segments[1:]
        if rest in ([], [""]):
            return await self._repo_root(request, account, repo)
        if not any(g.applies_to(repo) for g in account.grants):
            # before looking: an account learns nothing of repositories it has no grant on
            raise Refused(403, f"this account has no access to repository {repo}")
        meta = self.storage.meta(repo)
        if meta is None:
            raise Refused(404, f"no repository {repo}")
        fmt = meta["format"]
        otype = rest[0]
        if otype == "config" and len(rest) == 1:
            return await self._object(
                request, account, self.storage.ref(repo, fmt, "config", "config"), meta
            )
        if len(rest) == 1 or rest[1:] == [""]:
            return await self._listing(request, account, repo, fmt, otype)
        name = "/".join(rest[1:])
        if fmt != "restic":  # a rest: client's one-segment spelling (names.flat)
            name = names.unflat(otype, name)
        return await self._object(request, account, self.storage.ref(repo, fmt, otype, name), meta)

    # -- repository ----------------------------------------------------------

    async def _repo_root(self, request: web.Request, account: Account, repo: str) -> StreamResponse:
        if request.method != "POST":
            raise Refused(405, "method not allowed", {"Allow": "POST"})
        if request.query.get("create") != "true":
            raise Refused(400, "POST to a repository needs ?create=true")
        if not repo_wide(account.grants, repo, "admin"):
            raise Refused(403, f"this account may not create repository {repo}")
        fmt = request.query.get("format", "restic")
        await asyncio.to_thread(self.storage.create, repo, fmt)
        log.info("repository %s created (%s) by %s", repo, fmt, account.name)
        return web.Response(status=200)

    async def _listing(
        self, request: web.Request, account: Account, repo: str, fmt: str, otype: str
    ) -> StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise Refused(405, "method not allowed", {"Allow": "GET, HEAD"})
        if not allowed(account.grants, repo, "read", otype, None):
            raise Refused(403, f"this account may not list {otype} in {repo}")
        entries = await asyncio.to_thread(self.storage.list_objects, repo, fmt, otype)
        if otype not in SHARED_TYPES:
            entries = [
                (n, s) for n, s in entries if allowed(account.grants, repo, "read", otype, n)
            ]
        if V2 in request.headers.get("Accept", ""):
            body = json.dumps([{"name": n, "size": s} for n, s in entries])
            return web.Response(body=body.encode(), headers={"Content-Type": V2})
        return web.json_response([n for n, _ in entries])

    # -- objects -------------------------------------------------------------

    async def _object(
        self, request: web.Request, account: Account, ref: ObjectRef, meta: dict[str, Any]
    ) -> StreamResponse:
        method = request.method
        if method in ("GET", "HEAD"):
            self._require(account, ref, "read", "read")
            return await self._read(request, ref)
        if method == "POST":
            return await self._write(request, account, ref, meta)
        if method == "DELETE":
            may = allowed(account.grants, ref.repo, "delete", ref.otype, ref.name) or (
                ref.otype == "locks"
                and allowed(account.grants, ref.repo, "append", "locks", ref.name)
            )
            if ref.otype == "config" and not repo_wide(account.grants, ref.repo, "admin"):
                may = False
            if not may:
                raise Refused(403, f"this account may not delete {ref.otype}/{ref.name}")
            await asyncio.to_thread(self._unlink, ref)
            return web.Response(status=200)
        raise Refused(405, "method not allowed", {"Allow": "GET, HEAD, POST, DELETE"})

    def _require(self, account: Account, ref: ObjectRef, perm: str, verb: str) -> None:
        if not allowed(account.grants, ref.repo, perm, ref.otype, ref.name):
            raise Refused(403, f"this account may not {verb} {ref.otype}/{ref.name}")

    @staticmethod
    def _unlink(ref: ObjectRef) -> None:
        try:
            os.unlink(ref.path)
        except FileNotFoundError as e:
            raise StorageError(404, f"{ref.otype}/{ref.name} does not exist") from e
        fsync_dir(os.path.dirname(ref.path))

    async def _read(self, request: web.Request, ref: ObjectRef) -> StreamResponse:
        try:
            size = (await asyncio.to_thread(os.stat, ref.path)).st_size
        except FileNotFoundError as e:
            raise StorageError(404, f"{ref.otype}/{ref.name} does not exist") from e
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return web.Response(headers=headers | {"Content-Length": str(size)})
        status, start, stop = 200, 0, size
        spec = request.headers.get("Range")
        if spec is not None:
            wanted = parse_range(spec, size)
            if wanted is None:
                raise Refused(
                    416, "invalid or unsatisfiable range", {"Content-Range": f"bytes */{size}"}
                )
            status, (start, stop) = 206, wanted
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        if stop - start <= READ_AT_ONCE:
            # one thread hop per request: most reads are one blob or one small run
            data = await asyncio.to_thread(_pread, ref.path, start, stop - start)
            if len(data) != stop - start:
                raise StorageError(500, f"{ref.otype}/{ref.name} changed while read")
            return web.Response(body=data, status=status, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = stop - start
        await response.prepare(request)
        fd = await asyncio.to_thread(os.open, ref.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            offset = start
            while offset < stop:
                block = await asyncio.to_thread(
                    os.pread, fd, min(READ_AT_ONCE, stop - offset), offset
                )
                if not block:
                    raise ConnectionResetError("object shrank while read")
                await response.write(block)
                offset += len(block)
        finally:
            os.close(fd)
        await response.write_eof()
        return response

    async def _write(
        self, request: web.Request, account: Account, ref: ObjectRef, meta: dict[str, Any]
    ) -> StreamResponse:
        if ref.otype == "config":
            if not repo_wide(account.grants, ref.repo, "admin"):
                raise Refused(
                    403, "this account may not write config (needs admin on the repository)"
                )
        elif ref.otype == "keys":
            self._require(account, ref, "admin", "write key file")
        else:
            self._require(account, ref, "append", "write")
        create_only = request.headers.get("If-None-Match", "").strip() == "*"
        may_replace = (
            not create_only
            and ref.hash_alg is None
            and allowed(account.grants, ref.repo, "delete", ref.otype, ref.name)
        )
        exists = await asyncio.to_thread(os.path.exists, ref.path)
        if exists and create_only:
            raise Refused(412, f"{ref.otype}/{ref.name} exists")
        if exists and ref.hash_alg is None and not may_replace:
            raise Refused(
                403, f"this account may not overwrite {ref.otype}/{ref.name} (needs delete)"
            )
        length = request.content_length
        limit = self.settings.max_object_size
        if length is not None and length > limit:
            raise Refused(413, f"object larger than the server's limit of {limit} bytes")
        quota = self.accounting.upload(ref.repo, meta.get("quota"))
        created = False
        try:
            if length is not None:
                await quota.grow(length)
            upload = await asyncio.to_thread(Upload, ref)
            try:
                await self._receive(request, upload, limit, length, quota)
                created = await asyncio.to_thread(upload.finish, may_replace)
            except BaseException:
                await asyncio.to_thread(upload.abort)
                raise
        except OverQuota as e:
            raise Refused(507, str(e)) from None
        finally:
            quota.settle(upload.size if created else 0)
        request["bytes_in"] = upload.size
        if not created and create_only:
            raise Refused(412, f"{ref.otype}/{ref.name} exists")
        if not created and ref.hash_alg is None:
            raise Refused(
                403, f"this account may not overwrite {ref.otype}/{ref.name} (needs delete)"
            )
        # an existing content-addressed object: the same bytes, verified; nothing changes
        return web.Response(status=200)

    async def _receive(
        self,
        request: web.Request,
        upload: Upload,
        limit: int,
        length: int | None,
        quota: Reservation,
    ) -> None:
        content = request.content
        idle = self.settings.idle_timeout

        async def within(step: Awaitable[bytes]) -> bytes:
            # a client that stops sending (dead, or holding connections open)
            # loses its upload after ``idle`` seconds without a byte
            try:
                return await asyncio.wait_for(step, idle)
            except TimeoutError as e:
                raise Refused(408, f"upload stalled for {idle:g} s") from e

        if length is not None:  # the usual case: blocks of WRITE_BLOCK, one thread hop each
            remaining = length
            while remaining:
                want = min(WRITE_BLOCK, remaining)
                try:
                    block = await within(content.readexactly(want))
                except (ConnectionError, asyncio.IncompleteReadError) as e:
                    raise Refused(400, f"truncated upload: fewer than {length} bytes") from e
                await asyncio.to_thread(upload.write, block)
                remaining -= len(block)
            return
        buffer = bytearray()  # chunked transfer encoding
        received = 0
        while chunk := await within(content.readany()):
            received += len(chunk)
            if received > limit:
                raise Refused(413, f"object larger than the server's limit of {limit} bytes")
            await quota.grow(len(chunk))  # counted as it arrives: no length was declared
            buffer += chunk
            if len(buffer) >= WRITE_BLOCK:
                await asyncio.to_thread(upload.write, bytes(buffer))
                buffer = bytearray()
        if buffer:
            await asyncio.to_thread(upload.write, bytes(buffer))


_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)


def parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a single ``bytes=`` range, clamped to ``size``;
    None when malformed or unsatisfiable."""
    m = _RANGE.fullmatch(spec.strip().replace(" ", ""))
    if m is None or m.group(1) == m.group(2) == "":
        return None
    if m.group(1) == "":  # the last N bytes
        suffix = int(m.group(2))
        return (max(0, size - suffix), size) if suffix and size else None
    start = int(m.group(1))
    stop = size if m.group(2) == "" else min(size, int(m.group(2)) + 1)
    return (start, stop) if start < stop else None


def _pread(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return pread_all(fd, offset, length)
    finally:
        os.close(fd)


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON object per request; credentials are never logged."""

    def log(self, request: BaseRequest, response: StreamResponse, time_taken: float) -> None:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "remote": request.remote,
            "account": request.get("account"),
            "method": request.method,
            "path": request.raw_path,
            "status": response.status,
            "bytes_in": request.get("bytes_in", 0),
            "bytes_out": response.body_length,
            "ms": round(time_taken * 1000, 1),
        }
        self.logger.info(json.dumps(record))


#: the application's :class:`Accounting` (connections are counted outside it)
ACCOUNTING = web.AppKey("accounting", Accounting)


def make_app(settings: Settings) -> web.Application:
    server = Server(settings)
    app = web.Application(client_max_size=settings.max_object_size)
    app[ACCOUNTING] = server.accounting
    handler: Callable[[web.Request], Awaitable[StreamResponse]] = server.handle
    app.router.add_route("*", "/{tail:.*}", handler)
    return app
