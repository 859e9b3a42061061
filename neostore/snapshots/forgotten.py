"""Forget records in the store: which snapshots the owner removed.

A reader takes a snapshot missing from a writer's chain for tampering
unless a forget record names it (the codec and its reasons are in
:mod:`neostore.format.forget`). A forgotten snapshot is never listed again,
whoever puts its object back (the store can; so can the writer whose
snapshot it was). Each machine also remembers the forgotten snapshots it
has seen named, in its local security state, so a store that deletes a
forget record as well as putting the snapshot back is still caught; and
it remembers which of them it has seen gone, so that one coming back is
tampering rather than the leftover of an interrupted ``forget``.
"""

from __future__ import annotations

from ..backend.names import ObjectType
from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound, TamperingDetected
from ..format.forget import Forgotten, decode_record, encode_record
from ..format.targets import TargetRecord


def forgotten(repo: Repository, record: TargetRecord) -> dict[bytes, Forgotten]:
    """Snapshots the owner removed from ``record``, by id: those the store's
    forget records name and those this machine saw named before (bad
    records and missing ones are reported through ``repo.on_problem``)."""
    if not repo.can_read(record):
        return {}
    stored = _stored(repo, record)
    remembered = localstate.forgotten_snapshots(repo.repo_id, record.target_id)
    missing = [sid for sid in remembered if sid not in stored]
    if missing:
        repo.on_problem(
            TamperingDetected(
                f"target {record.name}: the owner's forget records for {len(missing)} "
                "snapshot(s) this machine saw forgotten are missing (deleted by the store)"
            )
        )
    new = [entry for sid, entry in stored.items() if sid not in remembered]
    if new:
        localstate.remember_forgotten(
            repo.repo_id,
            record.target_id,
            {f.snapshot_id: (f.writer_id, f.seq, f.prev) for f in new},
        )
    out = {sid: Forgotten(sid, w, seq, prev) for sid, (w, seq, prev, _) in remembered.items()}
    out.update(stored)
    return out


def seen_gone(repo: Repository, record: TargetRecord, snapshot_ids: list[bytes]) -> None:
    """Remember that these forgotten snapshots were absent from the store."""
    localstate.confirm_forgotten(repo.repo_id, record.target_id, snapshot_ids)


def resurrected(repo: Repository, record: TargetRecord, snapshot_id: bytes) -> NeostoreError:
    """What to report about a forgotten snapshot found in the store: once
    seen gone, it was put back (tampering); otherwise it may be the
    leftover of an interrupted ``forget``."""
    remembered = localstate.forgotten_snapshots(repo.repo_id, record.target_id)
    name = f"target {record.name}: snapshot {snapshot_id.hex()[:12]}"
    if remembered.get(snapshot_id, (b"", 0, None, False))[3]:
        return TamperingDetected(
            f"{name} was forgotten by the owner and is back in the store (put back by the "
            "store or a writer key): ignored"
        )
    return NeostoreError(
        f"{name} is named in the owner's forget record but still in the store (left by an "
        "interrupted forget, or put back): ignored; the owner's next prune removes it"
    )


def _stored(repo: Repository, record: TargetRecord) -> dict[bytes, Forgotten]:
    out: dict[bytes, Forgotten] = {}
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
