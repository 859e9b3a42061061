"""Bytes out of a snapshot: a file as it was (``?download=1``), a folder
as a zip or tar archive (``?download=zip|tar``), and the preview on a
file's page (text shown escaped, images of a few raster types only: an
SVG could carry script)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast
from urllib.parse import quote

from aiohttp import web

import neostore

from .html import esc, path_url
from .session import Session
from .state import state

IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".ico": "image/x-icon",
}
PREVIEW_BYTES = 64 << 10


def _disposition(kind: str, name: bytes) -> str:
    """The header naming a download: an ASCII fallback (no quotes, no
    backslashes, no control characters) and the UTF-8 name (bytes that
    are not UTF-8 become U+FFFD)."""
    text = name.decode("utf-8", "replace")
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in text
    )
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(text, safe='')}"


def _image_type(path: bytes) -> str | None:
    return IMAGES.get(os.path.splitext(os.fsdecode(path))[1].lower())


async def file(
    request: web.Request,
    session: Session,
    info: neostore.SnapshotInfo,
    path: bytes,
    node: neostore.Node,
) -> web.StreamResponse:
    """The file's bytes, as the snapshot holds them."""
    if node.type != "f":
        raise web.HTTPNotFound(text="404: only regular files can be downloaded")
    image = _image_type(path) if request.query.get("inline") == "1" else None
    response = web.StreamResponse(
        headers={
            "Content-Type": image or "application/octet-stream",
            "Content-Disposition": _disposition(
                "inline" if image else "attachment", path.rsplit(b"/", 1)[-1]
            ),
        }
    )
    response.content_length = node.size
    pieces = await session.run(neostore.read_file, session.need(), info, path)

    def produce(out: _ToLoop) -> None:
        for data in pieces:  # fetched and verified here while the loop sends
            out.write(data)

    return await _relay(request, response, produce)


@contextlib.contextmanager
def _streaming(request: web.Request) -> Iterator[None]:
    """Counted while being sent: the idle timeout does not cut it off."""
    s = state(request)
    s.streaming += 1
    try:
        yield
    finally:
        s.streaming -= 1


class _ToLoop(io.RawIOBase):
    """A write-only file whose writes go, 256 KiB or more at a time, to a
    queue the event loop drains (the writer is a thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self._loop, self._queue = loop, queue
        self._buffer = bytearray()
        #: set when the browser went away: the next write ends the download
        self.abandoned = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if isinstance(data, bytes) and not self._buffer and len(data) >= 256 << 10:
            self._put(data)  # a whole chunk: passed on as it is, not copied
            return len(data)
        view = memoryview(data)  # type: ignore[arg-type]
        self._buffer += view
        if len(self._buffer) >= 256 << 10:
            self.flush()
        return view.nbytes

    def flush(self) -> None:
        if self._buffer:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._put(chunk)

    def _put(self, chunk: bytes) -> None:
        if self.abandoned.is_set():
            raise OSError("the download was abandoned")
        asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()


async def archive(
    request: web.Request, session: Session, info: neostore.SnapshotInfo, path: bytes, kind: str
) -> web.StreamResponse:
    """The folder as a zip or tar archive, written while it is sent."""
    name = path.rstrip(b"/").rsplit(b"/", 1)[-1] or b"snapshot-" + info.hex_id[:8].encode()
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip" if kind == "zip" else "application/x-tar",
            "Content-Disposition": _disposition("attachment", name + b"." + kind.encode()),
        }
    )

    def produce(out: _ToLoop) -> None:
        # a repository of its own: an archive walks trees for as long as
        # it is sent, and the pages' repository is not for two walkers
        with session.another() as repo:
            neostore.dump_archive(repo, info, path, kind, cast("BinaryIO", out))

    return await _relay(request, response, produce)


async def _relay(
    request: web.Request, response: web.StreamResponse, produce: Callable[[_ToLoop], None]
) -> web.StreamResponse:
    """Send what ``produce`` writes, from a thread of its own, so that
    reading the repository and sending overlap (a queue of 8 pieces)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
    failed: list[BaseException] = []
    out = _ToLoop(loop, queue)

    def run() -> None:
        try:
            produce(out)
            out.flush()
        except BaseException as e:
            failed.append(e)
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    await response.prepare(request)
    threading.Thread(target=run, name="ui-download", daemon=True).start()
    with _streaming(request):
        try:
            while (chunk := await queue.get()) is not None:
                await response.write(chunk)
        except BaseException:
            out.abandoned.set()
            while await queue.get() is not None:  # let the writer reach its end
                pass
            raise
        if failed:  # cut short: the client sees a broken download
            raise failed[0]
        await response.write_eof()
    return response


async def preview(
    session: Session, info: neostore.SnapshotInfo, path: bytes, node: neostore.Node
) -> str:
    """The preview block of a file's page."""
    image = _image_type(path)
    if image is not None:
        source = path_url(info.hex_id, path, download="1", inline="1")
        return f'<figure><img src="{esc(source)}" alt="preview of the image"></figure>'

    def head() -> bytes:
        with neostore.open_file(session.need(), info, path) as f:
            return f.read(PREVIEW_BYTES)

    data = await session.run(head)
    if b"\0" in data[:8192]:
        return "<p>No preview: a binary file.</p>"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 4:  # not just a character cut at the end
            return "<p>No preview: not UTF-8 text.</p>"
        text = data[: e.start].decode("utf-8")
    more = "<p>(first 64 KiB shown)</p>" if node.size > PREVIEW_BYTES else ""
    return f'<pre class="preview" tabindex="0" aria-label="preview">{esc(text)}</pre>{more}'
