"""Object types and names in the store, validated once at the edge.

This module is a leaf (no crypto, no I/O) so that neostore-server can share
the exact same validation as the client.
"""

from __future__ import annotations

import re
from enum import StrEnum

from ..errors import UsageError


class ObjectType(StrEnum):
    """The kinds of object a repository holds (the first part of an address;
    equal to its string, which backends and the server's URLs use)."""

    CONFIG = "config"
    KEYS = "keys"
    TARGETS = "targets"
    DATA = "data"
    INDEX = "index"
    SNAPSHOTS = "snapshots"
    SHARELISTS = "sharelists"
    SHARES = "shares"
    FORGET = "forget"
    HEADS = "heads"
    LOCKS = "locks"


#: object type -> number of "/"-separated segments its names have
OBJECT_TYPES: dict[str, int] = {
    ObjectType.CONFIG: 1,
    ObjectType.KEYS: 1,
    ObjectType.TARGETS: 1,
    ObjectType.DATA: 1,
    ObjectType.INDEX: 1,
    ObjectType.SNAPSHOTS: 2,  # <target>/<id>
    ObjectType.SHARELISTS: 2,  # <target>/<H(stored)>
    ObjectType.SHARES: 2,  # <share>/<capability name>
    ObjectType.FORGET: 2,  # <target>/<H(stored)>
    ObjectType.HEADS: 2,  # <target>/<name>: a put-only writer's sealed chain head
    ObjectType.LOCKS: 1,
}

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: two-segment types whose second segment is 64 hex digits
_HEX_SECOND = frozenset({"snapshots", "sharelists", "shares", "heads", "forget"})


def validate_type(otype: str) -> int:
    """The number of name segments of ``otype``; UsageError for no type of ours."""
    segments = OBJECT_TYPES.get(otype)
    if segments is None:
        raise UsageError(f"unknown object type {otype!r}")
    return segments


def validate(otype: str, name: str) -> None:
    """Raise UsageError unless (otype, name) is a well-formed object address."""
    segments = validate_type(otype)
    parts = name.split("/")
    if len(parts) != segments or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise UsageError(f"invalid object name {otype}/{name!r}")
    if otype in ("data", "index") and not _HEX64.fullmatch(name):
        raise UsageError(f"invalid {otype} name {name!r}: expected 64 hex digits")
    if otype in ("snapshots", "sharelists", "shares", "heads", "forget") and not _HEX64.fullmatch(
        parts[1]
    ):
        raise UsageError(f"invalid {otype} name {name!r}: expected <name>/<64 hex digits>")


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


#: neostore object types whose (last) name segment is the BLAKE3 of the bytes
#: joins the two segments of a name where a store keeps one level per type
#: (restic's REST protocol as rclone serves it lists leaf names only); no
#: segment may contain it
FLAT_JOIN = "+"


def flat(name: str) -> str:
    """A name as one segment: ``docs/ab…`` → ``docs+ab…``."""
    return name.replace("/", FLAT_JOIN)


def unflat(otype: str, name: str) -> str:
    """The name :func:`flat` made, back in its usual form (other names as
    they are)."""
    if OBJECT_TYPES.get(otype) == 2 and "/" not in name:
        return name.replace(FLAT_JOIN, "/", 1)
    return name


CONTENT_ADDRESSED: frozenset[str] = frozenset(
    {"data", "index", "snapshots", "sharelists", "forget"}
)

#: object types of a restic repository (REST protocol v2); every name but
#: ``config`` is the SHA-256 of the object's bytes
RESTIC_TYPES: frozenset[str] = frozenset({"config", "data", "keys", "locks", "snapshots", "index"})


def validate_restic(otype: str, name: str) -> None:
    """Raise UsageError unless (otype, name) is a restic object address."""
    if otype not in RESTIC_TYPES:
        raise UsageError(f"unknown object type {otype!r}")
    if otype == "config":
        if name != "config":
            raise UsageError("invalid object name for config")
    elif not _HEX64.fullmatch(name):
        raise UsageError(f"invalid object name {otype}/{name!r}: expected 64 hex digits")


def content_hash(otype: str, name: str) -> str | None:
    """The hex hash a neostore object's bytes must have, or None for objects
    not named by their content."""
    if otype not in CONTENT_ADDRESSED:
        return None
    digest = name.rsplit("/", 1)[-1]
    return digest if _HEX64.fullmatch(digest) else None


def is_valid_segment(segment: str) -> bool:
    """A single path segment of an object name (also used for repository names)."""
    return bool(_SEGMENT.fullmatch(segment))
