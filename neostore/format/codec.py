"""msgpack conventions shared by every encoder: bin for bytes, str for text."""

from __future__ import annotations

from typing import Any

import msgpack

from ..errors import IntegrityError


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes | memoryview, what: str) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise IntegrityError(f"{what}: malformed encoding") from e


def field(mapping: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """Fetch ``mapping[key]`` and check its type, or raise IntegrityError."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise IntegrityError(f"{what}: missing field {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise IntegrityError(f"{what}: field {key!r} has the wrong type")
    return value


def unpack_parts(data: bytes | memoryview, count: int, what: str) -> list[bytes]:
    """Decode a msgpack list of exactly ``count`` byte strings (the shape of
    every signed or sealed envelope)."""
    parts = unpack(data, what)
    if not (
        isinstance(parts, list) and len(parts) == count and all(isinstance(p, bytes) for p in parts)
    ):
        raise IntegrityError(f"{what}: malformed")
    return parts
