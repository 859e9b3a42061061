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

from ..core.repository import Repository
from ..errors import IntegrityError
from ..format import crypto
from ..format.codec import pack as encode
from ..format.codec import unpack
from ..format.targets import TargetRecord


def _key(repo: Repository) -> bytes | None:
    seed = repo.material.writer_seed
    return None if seed is None else crypto.derive_key(crypto.CTX_WRITER_HEAD, seed)


def _name(key: bytes, record: TargetRecord, seq: int) -> str:
    return crypto.keyed_hash(key, record.target_id, struct.pack("<Q", seq)).hex()


def _ad(repo: Repository, record: TargetRecord) -> bytes:
    return crypto.AD_WRITER_HEAD + repo.repo_id + record.target_id


def save_head(repo: Repository, record: TargetRecord, seq: int, snapshot_id: bytes) -> None:
    key = _key(repo)
    if key is None:
        return
    stored = crypto.aead_encrypt(key, encode([seq, snapshot_id]), _ad(repo, record))
    repo.backend.save_new("heads", f"{record.name}/{_name(key, record, seq)}", stored)


def recover_head(repo: Repository, record: TargetRecord) -> tuple[int, bytes] | None:
    """This writer's newest (seq, snapshot id) in ``record``, from the store."""
    key = _key(repo)
    if key is None:
        return None
    prefix = f"{record.name}/"
    present = {n[len(prefix) :] for n, _ in repo.backend.list("heads") if n.startswith(prefix)}
    seq = 0
    while _name(key, record, seq + 1) in present:
        seq += 1
    if seq == 0:
        return None
    what = f"chain head {prefix}{_name(key, record, seq)}"
    plain = crypto.aead_decrypt(
        key, repo.backend.load("heads", prefix + _name(key, record, seq)), _ad(repo, record), what
    )
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
