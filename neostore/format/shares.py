"""Share lists, capabilities and withdrawals: the objects of read-only shares.

* A **share list** (``sharelists/<target>/<H(stored)>``) is the owner's
  signed, numbered list of a target's shares, encrypted with the target's
  share-list key so the store sees no path.
* A **capability** (``shares/<share>/<cap name>``) gives one share one
  snapshot: the node of the shared path P (its blob keys open P's subtree
  and nothing else), signed by the writer and sealed to the share's key.
* A **withdrawal** (``shares/<share>/<withdrawal name>``) is the owner's
  signed word that a capability was removed (its snapshot forgotten), and
  which capability replaces it, if any.

Byte formats are in docs/format.md ("Shares").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import IntegrityError
from . import crypto
from .codec import field, pack, unpack, unpack_parts
from .manifest import AFTER_LIMIT
from .tree import Node, decode_node
from .writer import WriterIdentity, verify_writer

SHARELIST_VERSION = 1
CAP_VERSION = 1
WITHDRAWAL_VERSION = 1


@dataclass(frozen=True)
class Share:
    share_id: bytes
    name: str
    public_key: bytes
    path: bytes
    created_ns: int
    revoked_ns: int | None = None

    def encode(self) -> dict[str, Any]:
        return {
            "id": self.share_id,
            "name": self.name,
            "pk": self.public_key,
            "path": self.path,
            "created": self.created_ns,
            "revoked": self.revoked_ns,
        }

    @classmethod
    def decode(cls, raw: object, what: str) -> Share:
        if not isinstance(raw, dict):
            raise IntegrityError(f"{what}: malformed share entry")
        revoked = raw.get("revoked")
        return cls(
            share_id=field(raw, "id", bytes, what),
            name=field(raw, "name", str, what),
            public_key=field(raw, "pk", bytes, what),
            path=field(raw, "path", bytes, what),
            created_ns=field(raw, "created", int, what),
            revoked_ns=revoked if isinstance(revoked, int) else None,
        )


@dataclass(frozen=True)
class ShareList:
    version: int
    time_ns: int
    shares: tuple[Share, ...]

    @property
    def active(self) -> list[Share]:
        return [s for s in self.shares if s.revoked_ns is None]


def _list_ad(repo_id: bytes, target_id: bytes) -> bytes:
    return crypto.AD_SHARELIST + repo_id + target_id


def encode_sharelist(
    shares: ShareList, *, key: bytes, owner: crypto.SigningKey, repo_id: bytes, target_id: bytes
) -> bytes:
    body = pack(
        {
            "v": SHARELIST_VERSION,
            "target_id": target_id,
            "version": shares.version,
            "time": shares.time_ns,
            "shares": [s.encode() for s in shares.shares],
        }
    )
    signature = owner.sign(crypto.SIG_SHARELIST + repo_id, body)
    sealed = crypto.aead_encrypt(key, pack([body, signature]), _list_ad(repo_id, target_id))
    return pack([SHARELIST_VERSION, sealed])


def decode_sharelist(
    stored: bytes, *, what: str, key: bytes, repo_id: bytes, target_id: bytes, owner_vk: bytes
) -> ShareList:
    outer = unpack(stored, what)
    if not (isinstance(outer, list) and len(outer) == 2 and outer[0] == SHARELIST_VERSION):
        raise IntegrityError(f"{what}: malformed")
    plain = crypto.aead_decrypt(key, outer[1], _list_ad(repo_id, target_id), what)
    body_bytes, signature = unpack_parts(plain, 2, what)
    crypto.verify(
        owner_vk, crypto.SIG_SHARELIST + repo_id, body_bytes, signature, f"{what}: owner signature"
    )
    body = unpack(body_bytes, what)
    if field(body, "target_id", bytes, what) != target_id:
        raise IntegrityError(f"{what}: signed for another target")
    return ShareList(
        version=field(body, "version", int, what),
        time_ns=field(body, "time", int, what),
        shares=tuple(Share.decode(s, what) for s in field(body, "shares", list, what)),
    )


# -- names ---------------------------------------------------------------------


def cap_name(share_id: bytes, snapshot_id: bytes) -> str:
    """Where a snapshot's capability for a share lives. Keyed by the share
    id (which the store never sees), so the store cannot link a capability
    to its snapshot, and deterministic, so it is published at most once."""
    return crypto.keyed_hash(share_id, b"cap", snapshot_id).hex()


def withdrawal_name(share_id: bytes, cap: str) -> str:
    """Where the owner's withdrawal of capability ``cap`` lives: derived
    from the capability's name, so a holder missing a capability it saw
    can look for it."""
    return crypto.keyed_hash(share_id, b"withdrawn", bytes.fromhex(cap)).hex()


def is_hex64(text: str) -> bool:
    return len(text) == 64 and not text.strip("0123456789abcdef")


# -- capabilities ------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """What a capability says about one snapshot, verified."""

    snapshot_id: bytes
    target_id: bytes
    epoch: int
    writer_id: bytes
    seq: int
    time_ns: int
    host: str
    tags: list[str]
    node: Node
    #: the snapshots its manifest names in ``after`` (neostore.snapshots.order)
    after: tuple[bytes, ...] = ()


def seal_cap(cap: Capability, *, repo_id: bytes, share: Share, writer: WriterIdentity) -> bytes:
    """The stored capability: signed by ``writer``, sealed to the share."""
    optional = {"after": list(cap.after)} if cap.after else {}
    body = pack(
        optional
        | {
            "v": CAP_VERSION,
            "repo_id": repo_id,
            "target_id": cap.target_id,
            "share_id": share.share_id,
            "snapshot": cap.snapshot_id,
            "signer": writer.writer_id,
            "epoch": cap.epoch,
            "writer_id": cap.writer_id,
            "seq": cap.seq,
            "time": cap.time_ns,
            "host": cap.host,
            "tags": cap.tags,
            "path": share.path,
            "node": cap.node.encode(),
        }
    )
    signature = writer.signing.sign(crypto.SIG_SHARE_CAP + repo_id, body)
    cert = writer.cert(repo_id, cap.target_id, cap.epoch)
    return crypto.seal(share.public_key, pack([body, signature, writer.verify_key, cert]))


def open_cap(
    parts: list[bytes],
    *,
    what: str,
    repo_id: bytes,
    owner_vk: bytes,
    target_id: bytes,
    share_id: bytes,
    share_path: bytes | None,
) -> Capability:
    """A capability from its unsealed parts (body, signature, writer key,
    certificate), checked: signed by a writer the owner certified for this
    target, made for this repository, target, share and path."""
    body_bytes, signature, writer_vk, cert = parts
    crypto.verify(writer_vk, crypto.SIG_SHARE_CAP + repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    if (
        field(body, "v", int, what) != CAP_VERSION
        or field(body, "repo_id", bytes, what) != repo_id
        or field(body, "target_id", bytes, what) != target_id
        or field(body, "share_id", bytes, what) != share_id
        or field(body, "path", bytes, what) != share_path
    ):
        raise IntegrityError(f"{what}: made for another repository, target, share or path")
    epoch = field(body, "epoch", int, what)
    signer = field(body, "signer", bytes, what)
    verify_writer(owner_vk, repo_id, target_id, signer, writer_vk, epoch, cert, what)
    tags = field(body, "tags", list, what)
    after = field(body, "after", list, what) if "after" in body else []
    if len(after) > AFTER_LIMIT or not all(isinstance(a, bytes) and len(a) == 32 for a in after):
        raise IntegrityError(f"{what}: malformed after list")
    return Capability(
        snapshot_id=field(body, "snapshot", bytes, what),
        target_id=target_id,
        epoch=epoch,
        writer_id=field(body, "writer_id", bytes, what),
        seq=field(body, "seq", int, what),
        time_ns=field(body, "time", int, what),
        host=field(body, "host", str, what),
        tags=[t for t in tags if isinstance(t, str)],
        node=decode_node(field(body, "node", dict, what), what),
        after=tuple(after),
    )


# -- withdrawals -------------------------------------------------------------------


@dataclass(frozen=True)
class Withdrawal:
    cap: str
    replaced_by: str | None


def seal_withdrawal(
    withdrawal: Withdrawal,
    *,
    repo_id: bytes,
    share: Share,
    owner: crypto.SigningKey,
    time_ns: int,
) -> bytes:
    body = pack(
        {
            "v": WITHDRAWAL_VERSION,
            "repo_id": repo_id,
            "share_id": share.share_id,
            "cap": withdrawal.cap,
            "replaced_by": withdrawal.replaced_by,
            "time": time_ns,
        }
    )
    signature = owner.sign(crypto.SIG_SHARE_WITHDRAW + repo_id, body)
    return crypto.seal(share.public_key, pack([body, signature]))


def open_withdrawal(
    parts: list[bytes], *, what: str, repo_id: bytes, owner_vk: bytes, share_id: bytes
) -> Withdrawal:
    """A withdrawal from its unsealed parts (body, owner signature), checked."""
    body_bytes, signature = parts
    crypto.verify(owner_vk, crypto.SIG_SHARE_WITHDRAW + repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    successor = body.get("replaced_by") if isinstance(body, dict) else None
    if (
        field(body, "v", int, what) != WITHDRAWAL_VERSION
        or field(body, "repo_id", bytes, what) != repo_id
        or field(body, "share_id", bytes, what) != share_id
        or not (successor is None or (isinstance(successor, str) and is_hex64(successor)))
    ):
        raise IntegrityError(f"{what}: made for another repository or share")
    cap = field(body, "cap", str, what)
    if not is_hex64(cap):
        raise IntegrityError(f"{what}: malformed")
    return Withdrawal(cap, successor)


def unseal_share_object(share_sk: bytes, stored: bytes, what: str) -> list[bytes]:
    """The parts of a capability (four) or a withdrawal (two)."""
    plain = crypto.unseal(share_sk, stored, what)
    parts = unpack(plain, what)
    count = 2 if isinstance(parts, list) and len(parts) == 2 else 4
    return unpack_parts(plain, count, what)
