"""Forget records: the owner's signed word that snapshots were removed.

A reader reports a snapshot missing from a writer's chain as tampering
unless an owner-signed forget record names it (DESIGN §4). ``forget``
therefore writes ``forget/<target>/<H(stored)>`` first and deletes the
snapshots after: a crash in between leaves a record naming snapshots that
still exist, which is harmless.

A record names each forgotten snapshot with its place in its writer's chain
(writer id, seq, prev), so a forgotten snapshot stays in the chain as a
stand-in: its own ``prev`` link is still checked, and a store cannot hide
the kept snapshot before it. The record is sealed to the target's key like
a manifest (it says which writer made which snapshot):

``stored = crypto_box_seal(target_pk, msgpack([body, Sig(owner_sk;
"neostore-v1-forget" ‖ repo_id ‖ body)]))``, ``body = msgpack({"v": 1,
"target_id", "time", "snapshots": [[id, writer_id, seq, prev|nil], …]})``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import IntegrityError
from . import crypto
from .codec import field, pack, unpack, unpack_parts
from .targets import TargetRecord


@dataclass(frozen=True)
class Forgotten:
    """A removed snapshot's place in its writer's chain."""

    snapshot_id: bytes
    writer_id: bytes
    seq: int
    prev: bytes | None


def encode_record(
    forgotten_: list[Forgotten], *, owner: crypto.SigningKey, repo_id: bytes, record: TargetRecord
) -> bytes:
    entries = [[f.snapshot_id, f.writer_id, f.seq, f.prev] for f in forgotten_]
    body = pack(
        {"v": 1, "target_id": record.target_id, "time": time.time_ns(), "snapshots": entries}
    )
    signed = pack([body, owner.sign(crypto.SIG_FORGET + repo_id, body)])
    return crypto.seal(record.seal_pk, signed)


def decode_record(
    stored: bytes, *, what: str, repo_id: bytes, owner_vk: bytes, target_id: bytes, seal_sk: bytes
) -> list[Forgotten]:
    body_bytes, signature = unpack_parts(crypto.unseal(seal_sk, stored, what), 2, what)
    crypto.verify(owner_vk, crypto.SIG_FORGET + repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    if field(body, "v", int, what) != 1 or field(body, "target_id", bytes, what) != target_id:
        raise IntegrityError(f"{what}: made for another target")
    out = []
    for entry in field(body, "snapshots", list, what):
        if not (
            isinstance(entry, list)
            and len(entry) == 4
            and isinstance(entry[0], bytes)
            and len(entry[0]) == 32
            and isinstance(entry[1], bytes)
            and isinstance(entry[2], int)
            and (entry[3] is None or isinstance(entry[3], bytes))
        ):
            raise IntegrityError(f"{what}: malformed entry")
        out.append(Forgotten(entry[0], entry[1], entry[2], entry[3]))
    return out
