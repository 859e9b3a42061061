"""Key roles: what a key file of each role carries, and what it can do.

| role | ``extra`` carries | can |
|---|---|---|
| owner | (``owner_seed``, ``master``, ``writer_seed``) | everything |
| writer | domain secret, share-list key, writer cert | add snapshots to T |
| reader | T's sealing secret, domain ``index_key`` | read snapshots of T |
| read-write | both | both, for T only |
| share | share secret, domain ``index_key`` | read one sub-folder of T |

A key of a role lacks the secrets of the others (the cryptography enforces
the role, not a flag): a writer cannot open a manifest (no sealing secret),
a reader cannot make a blob id or sign a snapshot (no domain secret, no
writer key), a share holder gets blob keys only for its sub-folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import IntegrityError
from . import crypto
from .keyfile import KeyMaterial, Role
from .targets import Domain, TargetRecord, domain_secret, sharelist_key, target_seal_secret
from .writer import delegated_cert

#: roles of a key for one target (share keys are made by ``share create``)
TARGET_ROLES = (Role.WRITER, Role.READER, Role.READ_WRITE)


def make_role_material(
    *,
    role: Role,
    record: TargetRecord,
    repo_id: bytes,
    owner_vk: bytes,
    owner: crypto.SigningKey,
    master: bytes,
) -> KeyMaterial:
    """Key material for a new ``writer``, ``reader`` or ``read-write`` key
    of target ``record``, holding exactly what the role needs."""
    if role not in TARGET_ROLES:
        raise ValueError(role)
    key_id = os.urandom(16)
    secret = domain_secret(master, record.domain_id, record.epoch)
    extra: dict[str, Any] = {"target_id": record.target_id}
    writer_seed = None
    domain: dict[str, Any] = {"id": record.domain_id, "epoch": record.epoch}
    if role in (Role.WRITER, Role.READ_WRITE):
        writer_seed = os.urandom(32)
        writer_vk = crypto.SigningKey(writer_seed).verify_key
        domain["secret"] = secret
        extra["certs"] = [
            [
                record.epoch,
                delegated_cert(owner, repo_id, record.target_id, key_id, writer_vk, record.epoch),
            ]
        ]
        extra["sharelist_key"] = sharelist_key(master, record.target_id)
    else:
        domain["index_key"] = Domain(record.domain_id, record.epoch, secret).index_key
    if role in (Role.READER, Role.READ_WRITE):
        extra["seal_sk"] = target_seal_secret(master, record.target_id)
    extra["domains"] = [domain]
    return KeyMaterial(
        key_id=key_id,
        role=role,
        repo_id=repo_id,
        owner_vk=owner_vk,
        target=record.name,
        writer_seed=writer_seed,
        extra=extra,
    )


def make_share_material(
    *,
    record: TargetRecord,
    repo_id: bytes,
    owner_vk: bytes,
    master: bytes,
    share_id: bytes,
    share_name: str,
    share_sk: bytes,
    path: bytes,
) -> KeyMaterial:
    """Key material of a share of ``path`` in target ``record``: the share's
    own secret (caps are sealed to it) and the domain's ``index_key``, to
    find blobs. No blob key: those come with each capability."""
    secret = domain_secret(master, record.domain_id, record.epoch)
    index_key = Domain(record.domain_id, record.epoch, secret).index_key
    return KeyMaterial(
        key_id=os.urandom(16),
        role=Role.SHARE,
        repo_id=repo_id,
        owner_vk=owner_vk,
        target=record.name,
        extra={
            "target_id": record.target_id,
            "share_id": share_id,
            "share_name": share_name,
            "share_sk": share_sk,
            "path": path,
            "domains": [{"id": record.domain_id, "epoch": record.epoch, "index_key": index_key}],
        },
    )


@dataclass(frozen=True)
class RoleSecrets:
    """The secrets of a non-owner key, parsed and type-checked once."""

    target_id: bytes | None
    domains: dict[tuple[bytes, int], Domain]
    seal_sk: bytes | None
    certs: dict[tuple[bytes, int], bytes]
    sharelist_key: bytes | None
    share_id: bytes | None
    share_name: str | None
    share_sk: bytes | None
    share_path: bytes | None


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise IntegrityError(f"key material: malformed {what}")
    return value


def role_secrets(material: KeyMaterial) -> RoleSecrets:
    extra = material.extra
    target_id = extra.get("target_id")
    domains: dict[tuple[bytes, int], Domain] = {}
    for item in extra.get("domains") or []:
        if not isinstance(item, dict) or not isinstance(item.get("epoch"), int):
            raise IntegrityError("key material: malformed domain")
        domain_id = _bytes(item.get("id"), "domain id")
        epoch = item["epoch"]
        if "secret" in item:
            domains[(domain_id, epoch)] = Domain(domain_id, epoch, _bytes(item["secret"], "secret"))
        else:
            domains[(domain_id, epoch)] = Domain.index_only(
                domain_id, epoch, _bytes(item.get("index_key"), "index key")
            )
    certs: dict[tuple[bytes, int], bytes] = {}
    for item in extra.get("certs") or []:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
            raise IntegrityError("key material: malformed certificate")
        certs[(_bytes(target_id, "target id"), item[0])] = _bytes(item[1], "certificate")

    def optional(name: str) -> bytes | None:
        value = extra.get(name)
        return None if value is None else _bytes(value, name)

    share_name = extra.get("share_name")
    return RoleSecrets(
        target_id=optional("target_id"),
        domains=domains,
        seal_sk=optional("seal_sk"),
        certs=certs,
        sharelist_key=optional("sharelist_key"),
        share_id=optional("share_id"),
        share_name=share_name if isinstance(share_name, str) else None,
        share_sk=optional("share_sk"),
        share_path=optional("path"),
    )


def describe(material: KeyMaterial) -> str:
    """'an owner key', 'a writer key for target documents', ..."""
    if material.role == Role.OWNER:
        return "an owner key"
    article = "an" if material.role[0] in "aeiou" else "a"
    return f"{article} {material.role} key for target {material.target}"
