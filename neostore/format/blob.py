"""Blob encoding: compress (when it helps), pad to a PADME size, encrypt.

Stored blob = ``nonce ‖ XChaCha20-Poly1305(blob_key, P, AD)`` with
``P = flags(1) ‖ pad_len(u32 LE) ‖ payload ‖ zeros(pad_len)`` and
``AD = "neostore-v1-blob" ‖ repo_id ‖ type ‖ blob_id``.
"""

from __future__ import annotations

import queue
import struct
import threading
from typing import NamedTuple

import zstandard

from ..errors import IntegrityError
from . import crypto
from .targets import Domain

FLAG_ZSTD = 0x01
_PREFIX = struct.Struct("<BI")
ZSTD_LEVEL = 3
#: compressed output must save at least this fraction to be kept
MIN_SAVING = 1 / 32


class Ref(NamedTuple):
    """A capability for one blob: enough to find, decrypt and verify it."""

    blob_id: bytes
    blob_key: bytes
    digest: bytes
    length: int

    def encode(self) -> list[object]:
        return [self.blob_id, self.blob_key, self.digest, self.length]

    @classmethod
    def decode(cls, value: object, what: str) -> Ref:
        if isinstance(value, list) and len(value) == 4:
            blob_id, key, digest, length = value  # checked inline: one per chunk of a listing
            if (
                isinstance(blob_id, bytes)
                and isinstance(key, bytes)
                and isinstance(digest, bytes)
                and len(blob_id) == len(key) == len(digest) == 32
                and isinstance(length, int)
                and length >= 0
            ):
                return cls(blob_id, key, digest, length)
        raise IntegrityError(f"{what}: malformed blob reference")


#: a ref as a fixed record in local caches: id ‖ key ‖ digest ‖ u64le length
REF_RECORD = 32 * 3 + 8


def refs_to_records(refs: list[Ref]) -> bytes:
    return b"".join(
        r.blob_id + r.blob_key + r.digest + r.length.to_bytes(8, "little") for r in refs
    )


def refs_from_records(raw: bytes) -> list[Ref] | None:
    """The refs of :func:`refs_to_records`; None when ``raw`` is damaged."""
    if len(raw) % REF_RECORD:
        return None
    return [
        Ref(
            raw[i : i + 32],
            raw[i + 32 : i + 64],
            raw[i + 64 : i + 96],
            int.from_bytes(raw[i + 96 : i + 104], "little"),
        )
        for i in range(0, len(raw), REF_RECORD)
    ]


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    comp = getattr(_local, "compressor", None)
    if comp is None:
        comp = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
        _local.compressor = comp
    return comp


#: decompressors not in use. A pool, not one per thread: FUSE calls the
#: mount from threads Python sees anew at every call (ctypes gives a foreign
#: thread a fresh thread state each time), so a per-thread one would be
#: made again for every read
_decompressors: queue.SimpleQueue[zstandard.ZstdDecompressor] = queue.SimpleQueue()


def _decompress(payload: bytes | memoryview, size: int) -> bytes:
    try:
        dec = _decompressors.get_nowait()
    except queue.Empty:
        dec = zstandard.ZstdDecompressor()
    try:
        return dec.decompress(payload, max_output_size=size)
    finally:
        _decompressors.put(dec)


def blob_ad(repo_id: bytes, btype: int, blob_id: bytes) -> bytes:
    return crypto.AD_BLOB + repo_id + bytes([btype]) + blob_id


def make_ref(domain: Domain, btype: int, plaintext: bytes | memoryview) -> Ref:
    digest = crypto.content_hash(plaintext)
    return Ref(
        domain.blob_id(btype, digest), domain.blob_key(btype, digest), digest, len(plaintext)
    )


def encrypt_blob(repo_id: bytes, btype: int, ref: Ref, plaintext: bytes | memoryview) -> bytes:
    flags = 0
    payload: bytes | memoryview = plaintext
    if len(plaintext) >= 64:
        compressed = _compressor().compress(plaintext)
        if len(compressed) <= len(plaintext) * (1 - MIN_SAVING):
            payload, flags = compressed, FLAG_ZSTD
    unpadded = _PREFIX.size + len(payload)
    pad_len = crypto.padme(unpadded) - unpadded
    padded = b"".join((_PREFIX.pack(flags, pad_len), payload, bytes(pad_len)))
    return crypto.aead_encrypt(ref.blob_key, padded, blob_ad(repo_id, btype, ref.blob_id))


def decrypt_blob(repo_id: bytes, btype: int, ref: Ref, stored: bytes | memoryview) -> bytes:
    """Decrypt, decompress (capped at ``ref.length``) and verify ``d``."""
    what = f"blob {ref.blob_id.hex()}"
    padded = crypto.aead_decrypt(ref.blob_key, stored, blob_ad(repo_id, btype, ref.blob_id), what)
    del stored  # freed now if the caller kept no reference
    if len(padded) < _PREFIX.size:
        raise IntegrityError(f"{what}: truncated")
    flags, pad_len = _PREFIX.unpack_from(padded)
    end = len(padded) - pad_len
    if end < _PREFIX.size or flags & ~FLAG_ZSTD:
        raise IntegrityError(f"{what}: malformed padding or flags")
    payload = memoryview(padded)[_PREFIX.size : end]
    if flags & FLAG_ZSTD:
        try:
            params = zstandard.get_frame_parameters(payload)
            if params.content_size != ref.length:
                raise IntegrityError(f"{what}: length does not match its reference")
            plain = _decompress(payload, ref.length)
        except zstandard.ZstdError as e:
            raise IntegrityError(f"{what}: cannot decompress") from e
    else:
        plain = bytes(payload)
    if len(plain) != ref.length or crypto.content_hash(plain) != ref.digest:
        raise IntegrityError(f"{what}: content does not match its hash")
    return plain
