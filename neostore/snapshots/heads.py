"""A put-only writer's chain head, kept in the store sealed to itself.

A writer cannot read the snapshots it wrote, so on a rebuilt machine (local
state lost) it could not continue its chain (``seq``, ``prev``). After each
snapshot it therefore writes ``heads/<target>/<name>`` with
``name = H_k(head_key; target_id ‖ u64le(seq))`` and content
``AEAD(head_key, msgpack([seq, snapshot_id]), AD = "neostore-v1-head" ‖
repo_id ‖ target_id)``, ``head_key = KDF(ctx; writer_seed)``. Only the
writer can compute the names or open them; the store sees one small object
per snapshot. Recovery finds the longest run of names 1, 2, … present.
"""

from __future__ import annotations

import struct

from ..backend.names import ObjectType
from ..core import objects
from ..core.repository import Repository
from ..errors import IntegrityError
from ..format import crypto
from ..format.codec import pack, unpack
from ..format.targets import TargetRecord


def _key(repo: Repository) -> bytes | None:
    seed = repo.material.writer_seed
    return None if seed is None else crypto.derive_key(crypto.CTX_WRITER_HEAD, seed)


def _leaf(key: bytes, record: TargetRecord, seq: int) -> str:
    return crypto.keyed_hash(key, record.target_id, struct.pack("<Q", seq)).hex()


def _ad(repo: Repository, record: TargetRecord) -> bytes:
    return crypto.AD_WRITER_HEAD + repo.repo_id + record.target_id


def save_head(repo: Repository, record: TargetRecord, seq: int, snapshot_id: bytes) -> None:
    key = _key(repo)
    if key is None:
        return
    stored = crypto.aead_encrypt(key, pack([seq, snapshot_id]), _ad(repo, record))
    repo.objects.save_new(objects.head(record.name, _leaf(key, record, seq)), stored)


def recover_head(repo: Repository, record: TargetRecord) -> tuple[int, bytes] | None:
    """This writer's newest (seq, snapshot id) in ``record``, from the store."""
    key = _key(repo)
    if key is None:
        return None
    present = repo.objects.list_group(ObjectType.HEADS, record.name)
    seq = 0
    while _leaf(key, record, seq + 1) in present:
        seq += 1
    if seq == 0:
        return None
    address = objects.head(record.name, _leaf(key, record, seq))
    what = f"chain head {address.name}"
    plain = crypto.aead_decrypt(key, repo.objects.load(address), _ad(repo, record), what)
    value = unpack(plain, what)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and value[0] == seq
        and isinstance(value[1], bytes)
        and len(value[1]) == 32
    ):
        raise IntegrityError(f"{what}: malformed")
    return seq, value[1]
