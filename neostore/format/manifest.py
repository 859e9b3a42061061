"""Snapshot manifests: signed by the writer, sealed to the target.

Stored object = ``crypto_box_seal(target_pk, msgpack([manifest, sig,
writer_vk, cert]))`` where ``sig = Ed25519_writer("neostore-v1-snapshot" ‖
repo_id ‖ manifest)``. The snapshot id is the BLAKE3 of the stored bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import IntegrityError
from . import crypto
from .blob import Ref
from .codec import field as get_field
from .codec import pack, unpack, unpack_parts
from .writer import WriterIdentity, verify_writer


@dataclass
class Manifest:
    repo_id: bytes
    target_id: bytes
    writer_id: bytes
    epoch: int
    seq: int
    prev: bytes | None
    time_ns: int
    host: str
    user: str
    paths: list[bytes]
    tags: list[str]
    parent: bytes | None
    root: list[Ref]
    stats: dict[str, Any] = field(default_factory=dict)
    #: set on a manifest that replaces or copies another (tag, repair
    #: snapshots, copy): the snapshot the line began with, the repository
    #: it was in when that is another one, and when this manifest was made
    original: bytes | None = None
    original_repo: bytes | None = None
    rewritten_ns: int | None = None
    #: repair snapshots: what it could not keep, as (path, "file" or "dir",
    #: bytes lost; 0 for a directory, whose size is unknown)
    lost: list[tuple[bytes, str, int]] = field(default_factory=list)
    #: snapshots of the target the writer saw in the store when it saved
    #: this one (new since its previous snapshot), which it therefore
    #: follows whatever the times claim (neostore.snapshots.order)
    after: list[bytes] = field(default_factory=list)
    #: on a replacement or copy: its original was signed by an owner key,
    #: so privileged metadata in the tree may be applied (only counts in a
    #: manifest an owner key signed; neostore.restorer.privileged)
    privileged: bool = False

    def encode(self) -> bytes:
        optional: dict[str, Any] = {}
        if self.original is not None:
            optional["original"] = self.original
        if self.original_repo is not None:
            optional["original_repo"] = self.original_repo
        if self.rewritten_ns is not None:
            optional["rewritten"] = self.rewritten_ns
        if self.lost:
            optional["lost"] = [list(entry) for entry in self.lost]
        if self.after:
            optional["after"] = list(self.after)
        if self.privileged:
            optional["privileged"] = True
        return pack(
            optional
            | {
                "v": 1,
                "repo_id": self.repo_id,
                "target_id": self.target_id,
                "writer_id": self.writer_id,
                "epoch": self.epoch,
                "seq": self.seq,
                "prev": self.prev,
                "time": self.time_ns,
                "host": self.host,
                "user": self.user,
                "paths": self.paths,
                "tags": self.tags,
                "parent": self.parent,
                "root": [r.encode() for r in self.root],
                "stats": self.stats,
            }
        )

    @property
    def made_ns(self) -> int:
        """When this manifest was written (its time, unless it rewrote an
        older snapshot and kept that one's time)."""
        return self.time_ns if self.rewritten_ns is None else max(self.time_ns, self.rewritten_ns)

    @classmethod
    def decode(cls, data: bytes, what: str) -> Manifest:
        raw = unpack(data, what)
        if get_field(raw, "v", int, what) != 1:
            raise IntegrityError(f"{what}: unsupported manifest version")
        paths = get_field(raw, "paths", list, what)
        tags = get_field(raw, "tags", list, what)
        if not all(isinstance(p, bytes) for p in paths) or not all(
            isinstance(t, str) for t in tags
        ):
            raise IntegrityError(f"{what}: malformed paths or tags")
        return cls(
            repo_id=get_field(raw, "repo_id", bytes, what),
            target_id=get_field(raw, "target_id", bytes, what),
            writer_id=get_field(raw, "writer_id", bytes, what),
            epoch=get_field(raw, "epoch", int, what),
            seq=get_field(raw, "seq", int, what),
            prev=get_field(raw, "prev", (bytes, type(None)), what),
            time_ns=get_field(raw, "time", int, what),
            host=get_field(raw, "host", str, what),
            user=get_field(raw, "user", str, what),
            paths=paths,
            tags=tags,
            parent=get_field(raw, "parent", (bytes, type(None)), what),
            root=[Ref.decode(r, what) for r in get_field(raw, "root", list, what)],
            stats=get_field(raw, "stats", dict, what),
            original=_optional(raw, "original", bytes, what),
            original_repo=_optional(raw, "original_repo", bytes, what),
            rewritten_ns=_optional(raw, "rewritten", int, what),
            lost=_lost(raw, what),
            after=_after(raw, what),
            privileged=_optional(raw, "privileged", bool, what) or False,
        )


def _optional(raw: dict[str, Any], key: str, kind: type, what: str) -> Any:
    return get_field(raw, key, kind, what) if key in raw else None


#: the most snapshot ids one manifest may name in ``after`` (2 MiB)
AFTER_LIMIT = 65536


def _after(raw: dict[str, Any], what: str) -> list[bytes]:
    entries = _optional(raw, "after", list, what) or []
    if len(entries) > AFTER_LIMIT or not all(
        isinstance(e, bytes) and len(e) == 32 for e in entries
    ):
        raise IntegrityError(f"{what}: malformed after list")
    return entries


def _lost(raw: dict[str, Any], what: str) -> list[tuple[bytes, str, int]]:
    entries = _optional(raw, "lost", list, what) or []
    if not all(
        isinstance(e, list)
        and len(e) == 3
        and isinstance(e[0], bytes)
        and e[1] in ("file", "dir")
        and isinstance(e[2], int)
        for e in entries
    ):
        raise IntegrityError(f"{what}: malformed lost list")
    return [(e[0], e[1], e[2]) for e in entries]


def seal_manifest(
    manifest: Manifest, writer: WriterIdentity, target_pk: bytes
) -> tuple[bytes, bytes]:
    """Returns ``(snapshot_id, stored bytes)``."""
    body = manifest.encode()
    signature = writer.signing.sign(crypto.SIG_SNAPSHOT + manifest.repo_id, body)
    cert = writer.cert(manifest.repo_id, manifest.target_id, manifest.epoch)
    stored = crypto.seal(target_pk, pack([body, signature, writer.verify_key, cert]))
    return crypto.object_hash(stored), stored


def open_manifest(
    stored: bytes, *, what: str, target_sk: bytes, repo_id: bytes, owner_vk: bytes, target_id: bytes
) -> tuple[Manifest, bool]:
    """The manifest, and whether an owner key's own writer signed it (not a
    delegated writer or read-write key)."""
    plain = crypto.unseal(target_sk, stored, what)
    body, signature, writer_vk, cert = unpack_parts(plain, 4, what)
    crypto.verify(writer_vk, crypto.SIG_SNAPSHOT + repo_id, body, signature, what)
    manifest = Manifest.decode(body, what)
    if manifest.repo_id != repo_id or manifest.target_id != target_id:
        raise IntegrityError(f"{what}: belongs to another repository or target")
    by_owner = verify_writer(
        owner_vk, repo_id, target_id, manifest.writer_id, writer_vk, manifest.epoch, cert, what
    )
    return manifest, by_owner
