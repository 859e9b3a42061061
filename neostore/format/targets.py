"""Targets (named snapshot streams) and dedup domains.

A target record ``targets/<name>`` is owner-signed and public: target id,
sealing public key, dedup domain id and epoch. Secrets are not stored: the
owner derives them from its master secret (see docs/design.md), and
role keys carry copies of the ones they need (:mod:`neostore.format.roles`).
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from ..errors import IntegrityError
from . import crypto
from .codec import field, pack, unpack, unpack_parts

DATA = 0
TREE = 1
BLOB_TYPES = (DATA, TREE)


@dataclass(frozen=True)
class TargetRecord:
    name: str
    target_id: bytes
    seal_pk: bytes
    domain_id: bytes
    epoch: int
    created_ns: int

    def body(self) -> bytes:
        return pack(
            {
                "v": 1,
                "name": self.name,
                "target_id": self.target_id,
                "seal_pk": self.seal_pk,
                "domain_id": self.domain_id,
                "epoch": self.epoch,
                "created": self.created_ns,
            }
        )


def encode_target(record: TargetRecord, repo_id: bytes, owner: crypto.SigningKey) -> bytes:
    body = record.body()
    return pack([body, owner.sign(crypto.SIG_TARGET + repo_id, body)])


def decode_target(data: bytes, name: str, repo_id: bytes, owner_vk: bytes) -> TargetRecord:
    what = f"target record {name}"
    body_bytes, signature = unpack_parts(data, 2, what)
    crypto.verify(owner_vk, crypto.SIG_TARGET + repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    record = TargetRecord(
        name=field(body, "name", str, what),
        target_id=field(body, "target_id", bytes, what),
        seal_pk=field(body, "seal_pk", bytes, what),
        domain_id=field(body, "domain_id", bytes, what),
        epoch=field(body, "epoch", int, what),
        created_ns=field(body, "created", int, what),
    )
    if record.name != name:
        raise IntegrityError(f"{what}: record names target {record.name!r}")
    return record


def target_seal_secret(master: bytes, target_id: bytes) -> bytes:
    return crypto.derive_key(crypto.CTX_TARGET_SEAL, master + target_id)


def domain_secret(master: bytes, domain_id: bytes, epoch: int) -> bytes:
    return crypto.derive_key(
        crypto.CTX_DOMAIN_SECRET, master + domain_id + struct.pack("<I", epoch)
    )


def sharelist_key(master: bytes, target_id: bytes) -> bytes:
    """Encrypts a target's share lists: the owner and the target's writers hold it."""
    return crypto.derive_key(crypto.CTX_SHARELIST_KEY, master + target_id)


def new_target(name: str, master: bytes, domain_of: TargetRecord | None = None) -> TargetRecord:
    target_id = os.urandom(16)
    seal_pk = crypto.box_public_key(target_seal_secret(master, target_id))
    if domain_of is None:
        domain_id, epoch = os.urandom(16), 1
    else:
        domain_id, epoch = domain_of.domain_id, domain_of.epoch
    return TargetRecord(name, target_id, seal_pk, domain_id, epoch, time.time_ns())


class Domain:
    """The working keys of one dedup domain at one epoch. A domain known
    only by its ``index_key`` (readers, shares) can locate blobs, not make
    them (``writable`` False)."""

    def __init__(self, domain_id: bytes, epoch: int, secret: bytes) -> None:
        self.domain_id = domain_id
        self.epoch = epoch
        self.writable = True
        self.id_key = crypto.derive_key(crypto.CTX_ID_KEY, secret)
        self.conv_key = crypto.derive_key(crypto.CTX_CONV_KEY, secret)
        self.index_key = crypto.derive_key(crypto.CTX_INDEX_KEY, secret)
        seed_bytes = crypto.derive_key(crypto.CTX_CHUNKER_SEED, secret)
        # pyfastcdc XORs the seed into a 64-bit gear table and shifts it left
        # once, so it must fit in 63 bits; 0 would mean "unkeyed".
        self.chunker_seed = (int.from_bytes(seed_bytes[:8], "little") >> 1) or 1

    @classmethod
    def index_only(cls, domain_id: bytes, epoch: int, index_key: bytes) -> Domain:
        self = cls.__new__(cls)
        self.domain_id, self.epoch, self.writable = domain_id, epoch, False
        self.index_key = index_key
        self.id_key = self.conv_key = b""
        self.chunker_seed = 0
        return self

    def blob_id(self, btype: int, digest: bytes) -> bytes:
        return crypto.keyed_hash(self.id_key, bytes([btype]), digest)

    def blob_key(self, btype: int, digest: bytes) -> bytes:
        return crypto.keyed_hash(self.conv_key, bytes([btype]), digest)

    def header_ad(self, repo_id: bytes, writer_id: bytes) -> bytes:
        return repo_id + self.domain_id + struct.pack("<I", self.epoch) + writer_id
