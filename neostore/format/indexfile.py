"""Index files: which blob lives where, as a writer signed it.

An index file is a signed envelope (:mod:`.signed`) whose body lists
``[pack_id, pack_size, [entries]]``; its name is the BLAKE3 of its bytes.
An owner's prune adds a ``condemn`` list (a *mark*); a file copied by an
owner from another writer's listing is marked ``untrusted``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import IntegrityError
from . import crypto
from .codec import field
from .pack import PackEntry, decode_entries
from .signed import Envelope, open_envelope, seal_envelope
from .targets import Domain
from .writer import WriterIdentity


@dataclass(frozen=True)
class PackRecord:
    pack_id: bytes
    size: int
    entries: list[PackEntry]


def encode_index(
    packs: Iterable[PackRecord],
    *,
    repo_id: bytes,
    domain: Domain,
    target_id: bytes,
    writer: WriterIdentity,
    condemn: Iterable[bytes] = (),
    untrusted: bool = False,
) -> tuple[bytes, bytes]:
    """``condemn``: packs an owner's prune marks for deletion (a *mark*,
    docs/format.md); ``untrusted``: entries copied by an owner from another
    writer's index file, not verified, so nobody dedups against them."""
    body: dict[str, object] = {
        "v": 1,
        "packs": [[p.pack_id, p.size, [e.encode() for e in p.entries]] for p in packs],
        "time": time.time_ns(),
    }
    condemned = list(condemn)
    if condemned:
        body["condemn"] = condemned
    if untrusted:
        body["untrusted"] = True
    data = seal_envelope(
        body,
        repo_id=repo_id,
        domain=domain,
        target_id=target_id,
        writer=writer,
        ad_prefix=crypto.AD_INDEX,
        sig_prefix=crypto.SIG_INDEX,
    )
    return crypto.object_hash(data), data


def decode_index(
    data: bytes,
    *,
    what: str,
    repo_id: bytes,
    owner_vk: bytes,
    domain_for: Callable[[bytes, int], Domain | None],
) -> tuple[Envelope, list[PackRecord]] | None:
    envelope = open_envelope(
        data,
        what=what,
        repo_id=repo_id,
        owner_vk=owner_vk,
        domain_for=domain_for,
        ad_prefix=crypto.AD_INDEX,
        sig_prefix=crypto.SIG_INDEX,
    )
    if envelope is None:
        return None
    records = []
    for item in field(envelope.body, "packs", list, what):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], bytes)):
            raise IntegrityError(f"{what}: malformed pack record")
        if not isinstance(item[1], int):
            raise IntegrityError(f"{what}: malformed pack size")
        records.append(PackRecord(item[0], item[1], decode_entries(item[2], what)))
    condemn = envelope.body.get("condemn", [])
    if not (isinstance(condemn, list) and all(isinstance(p, bytes) for p in condemn)):
        raise IntegrityError(f"{what}: malformed condemn list")
    if not isinstance(envelope.body.get("untrusted", False), bool):
        raise IntegrityError(f"{what}: malformed untrusted flag")
    return envelope, records


def index_time(envelope: Envelope) -> int:
    value = envelope.body.get("time", 0)
    return value if isinstance(value, int) else 0


def condemned_by(envelope: Envelope) -> list[bytes]:
    """The packs a mark condemns; only an owner's marks count."""
    return list(envelope.body.get("condemn", [])) if envelope.by_owner else []


def entries_trusted(envelope: Envelope, own_writer_id: bytes) -> bool:
    """Whether this key may dedup against the file's entries: written by an
    owner key or by this key itself, and not an owner's unverified copy."""
    if envelope.body.get("untrusted", False):
        return False
    return envelope.by_owner or envelope.writer_id == own_writer_id
