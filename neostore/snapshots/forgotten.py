"""Forget records in the store: which snapshots the owner removed.

A reader takes a snapshot missing from a writer's chain for tampering
unless a forget record names it (the codec and its reasons are in
:mod:`neostore.format.forget`).
"""

from __future__ import annotations

from ..backend.names import ObjectType
from ..core import objects
from ..core.repository import Repository
from ..errors import IntegrityError, NotFound
from ..format.forget import Forgotten, decode_record, encode_record
from ..format.targets import TargetRecord


def forgotten(repo: Repository, record: TargetRecord) -> dict[bytes, Forgotten]:
    """Snapshots the owner removed from ``record``, by id (bad records are
    reported through ``repo.on_problem`` and ignored)."""
    out: dict[bytes, Forgotten] = {}
    if not repo.can_read(record):
        return out
    seal_sk = repo.target_secret(record)
    for leaf in repo.objects.list_group(ObjectType.FORGET, record.name):
        address = objects.forget_record(record.name, leaf)
        try:
            for entry in decode_record(
                repo.objects.load_verified(address),
                what=address.what,
                repo_id=repo.repo_id,
                owner_vk=repo.material.owner_vk,
                target_id=record.target_id,
                seal_sk=seal_sk,
            ):
                out[entry.snapshot_id] = entry
        except (IntegrityError, NotFound) as e:
            repo.on_problem(IntegrityError(f"ignored: {e}"))
    return out


def record_forgotten(repo: Repository, record: TargetRecord, entries: list[Forgotten]) -> None:
    """Save the owner's signed record that ``entries`` were removed (before
    anything is deleted)."""
    owner = repo.require_owner("forgetting snapshots")
    stored = encode_record(entries, owner=owner, repo_id=repo.repo_id, record=record)
    repo.objects.save_addressed(ObjectType.FORGET, record.name, stored)
