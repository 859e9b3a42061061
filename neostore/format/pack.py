"""Packs: ``blob region ‖ header envelope ‖ u32 LE header length``.

The header lists ``[type, blob_id, offset, stored length]`` per blob and the
BLAKE3 of the blob region, inside a signed envelope (:mod:`.signed`).
A pack's name is the BLAKE3 of all its bytes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import blake3

from ..errors import IntegrityError
from . import crypto
from .codec import field
from .signed import Envelope, open_envelope, seal_envelope
from .targets import BLOB_TYPES, Domain
from .writer import WriterIdentity

_TRAILER = struct.Struct("<I")
MAX_HEADER = 64 * 1024 * 1024


@dataclass(frozen=True)
class PackEntry:
    btype: int
    blob_id: bytes
    offset: int
    length: int

    def encode(self) -> list[object]:
        return [self.btype, self.blob_id, self.offset, self.length]


#: offsets and lengths are kept as uint32 in memory (packs are ≤ 1 GiB)
MAX_PACK_OFFSET = 1 << 32


def decode_entries(value: object, what: str) -> list[PackEntry]:
    if not isinstance(value, list):
        raise IntegrityError(f"{what}: malformed entry list")
    entries = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and item[0] in BLOB_TYPES
            and isinstance(item[1], bytes)
            and len(item[1]) == 32
            and isinstance(item[2], int)
            and isinstance(item[3], int)
            and 0 <= item[2] < MAX_PACK_OFFSET
            and 0 < item[3] < MAX_PACK_OFFSET
        ):
            raise IntegrityError(f"{what}: malformed entry")
        entries.append(PackEntry(item[0], item[1], item[2], item[3]))
    return entries


class PackBuilder:
    """Accumulates encrypted blobs of one type; not thread-safe. With a
    ``sink``, every byte goes to it at once (a backend stream) and the
    builder keeps only the entries."""

    def __init__(self, sink: Callable[[bytes], None] | None = None) -> None:
        self.parts: list[bytes] = []
        self.entries: list[PackEntry] = []
        self.size = 0
        self._hasher = blake3.blake3()
        self._sink = sink

    def add(self, btype: int, blob_id: bytes, stored: bytes) -> PackEntry:
        entry = PackEntry(btype, blob_id, self.size, len(stored))
        if self._sink is None:
            self.parts.append(stored)
        else:
            self._sink(stored)
        self.entries.append(entry)
        self._hasher.update(stored)
        self.size += len(stored)
        return entry

    def finish(
        self, *, repo_id: bytes, domain: Domain, target_id: bytes, writer: WriterIdentity
    ) -> tuple[bytes, list[bytes]]:
        """Returns ``(pack_id, the pack's bytes as buffers in order)``; with
        a sink, header and trailer go to it and the list is empty. ``size``
        is then the whole pack's. The pack id continues the blob region's
        hash over header and trailer, so no byte is hashed twice."""
        body = {
            "v": 1,
            "entries": [e.encode() for e in self.entries],
            "blobs_hash": self._hasher.digest(),
            "time": time.time_ns(),
        }
        header = seal_envelope(
            body,
            repo_id=repo_id,
            domain=domain,
            target_id=target_id,
            writer=writer,
            ad_prefix=crypto.AD_PACK_HEADER,
            sig_prefix=crypto.SIG_PACK,
        )
        trailer = _TRAILER.pack(len(header))
        whole = self._hasher.copy()
        whole.update(header)
        whole.update(trailer)
        parts, self.parts = self.parts, []
        parts += (header, trailer)
        self.size += len(header) + len(trailer)
        if self._sink is not None:
            self._sink(header)
            self._sink(trailer)
            parts = []
        return whole.digest(), parts


def header_length(trailer: bytes, pack_size: int, what: str) -> int:
    if len(trailer) != _TRAILER.size or pack_size < _TRAILER.size:
        raise IntegrityError(f"{what}: too short to be a pack")
    length: int = _TRAILER.unpack(trailer)[0]
    if length > MAX_HEADER or length + _TRAILER.size > pack_size:
        raise IntegrityError(f"{what}: header length out of range")
    return length


def open_header(
    header: bytes,
    *,
    what: str,
    repo_id: bytes,
    owner_vk: bytes,
    domain_for: object,
) -> tuple[Envelope, list[PackEntry], bytes] | None:
    envelope = open_envelope(
        header,
        what=what,
        repo_id=repo_id,
        owner_vk=owner_vk,
        domain_for=domain_for,  # type: ignore[arg-type]
        ad_prefix=crypto.AD_PACK_HEADER,
        sig_prefix=crypto.SIG_PACK,
    )
    if envelope is None:
        return None
    entries = decode_entries(field(envelope.body, "entries", list, what), what)
    blobs_hash = field(envelope.body, "blobs_hash", bytes, what)
    return envelope, entries, blobs_hash
