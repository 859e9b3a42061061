"""Object types and names in the store, validated once at the edge.

This module is a leaf (no crypto, no I/O) so that neostore-server can share
the exact same validation as the client.
"""

from __future__ import annotations

import re

from ..errors import UsageError

#: object type -> number of "/"-separated segments its names have
OBJECT_TYPES: dict[str, int] = {
    "config": 1,
    "keys": 1,
    "targets": 1,
    "data": 1,
    "index": 1,
    "snapshots": 2,  # <target>/<id>
    "sharelists": 2,  # <target>/<epoch>
    "shares": 2,  # <share>/<id>
    "forget": 2,  # <target>/<id>
    "locks": 1,
}

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def validate(otype: str, name: str) -> None:
    """Raise UsageError unless (otype, name) is a well-formed object address."""
    segments = OBJECT_TYPES.get(otype)
    if segments is None:
        raise UsageError(f"unknown object type {otype!r}")
    parts = name.split("/")
    if len(parts) != segments or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise UsageError(f"invalid object name {otype}/{name!r}")
    if otype == "data" and not _HEX64.fullmatch(name):
        raise UsageError(f"invalid pack name {name!r}: expected 64 hex digits")


def is_valid_target_name(name: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name))


def relative_path(otype: str, name: str) -> str:
    """Path of an object relative to the repository root ("/"-separated)."""
    validate(otype, name)
    if otype == "config":
        return "config"
    if otype == "data":
        return f"data/{name[:2]}/{name}"
    return f"{otype}/{name}"
