"""The key files of a repository: several passwords, each its own key file.

A new owner key file copies the owner's secrets but gets its own key id and
its own writer key, so each key file keeps its own snapshot chain
(docs/design.md, departure 2). Keys of the per-target roles (writer,
reader, read-write) carry only what their role needs
(:mod:`neostore.format.roles`); share keys are made by
:mod:`neostore.shares.lists`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..backend.names import ObjectType
from ..errors import IntegrityError, NotFound, UsageError
from ..format import crypto
from ..format import keyfile as keys
from ..format.keyfile import Role
from ..format.roles import TARGET_ROLES, make_role_material
from . import objects
from .repository import Repository


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    role: Role
    target: str | None
    created_ns: int
    #: the host and user that made it: shown to owner keys only (sealed
    #: to the owner), None for other keys
    host: str | None
    user: str | None
    current: bool


def list_keys(repo: Repository) -> list[KeyInfo]:
    """Every key file's public header, oldest first. A malformed one is
    reported through ``repo.on_problem`` and left out."""
    seed = repo.material.owner_seed
    owner = crypto.SigningKey(seed) if seed is not None else None
    out = []
    for name in repo.objects.list(ObjectType.KEYS):
        try:
            header, _ = keys.decode_keyfile_header(repo.objects.load(objects.key_file(name)), name)
        except IntegrityError as e:
            repo.on_problem(e)
            continue
        if header.key_id.hex() != name:
            repo.on_problem(IntegrityError(f"key file {name}: its header names another key id"))
            continue
        try:
            made = keys.who_made(header, owner)
        except IntegrityError as e:
            repo.on_problem(e)
            made = None
        out.append(
            KeyInfo(
                key_id=name,
                role=header.role,
                target=header.target,
                created_ns=header.created_ns,
                host=made[0] if made else None,
                user=made[1] if made else None,
                current=header.key_id == repo.material.key_id,
            )
        )
    return sorted(out, key=lambda k: (k.created_ns, k.key_id))


def add_key(
    repo: Repository,
    password: bytes,
    role: Role | str = Role.OWNER,
    target: str | None = None,
    kdf: keys.KdfParams | None = None,
) -> str:
    """A new key file of ``role`` (for ``target``) opened by ``password``;
    returns its id."""
    owner = repo.require_owner("adding a key")
    if role == Role.OWNER:
        if target is not None:
            raise UsageError("an owner key is for every target: give none", option="target")
        material = replace(repo.material, key_id=os.urandom(16), writer_seed=os.urandom(32))
    elif role in TARGET_ROLES:
        if target is None:
            raise UsageError(f"a {role} key is for one target: give it", option="target")
        assert repo.material.master is not None
        material = make_role_material(
            role=Role(role),
            record=repo.ensure_target(target),
            repo_id=repo.repo_id,
            owner_vk=repo.material.owner_vk,
            owner=owner,
            master=repo.material.master,
        )
    else:
        raise UsageError(
            f"unknown role {role!r}: owner, writer, reader or read-write "
            "(share keys: `neostore share create`)"
        )
    key_id = material.key_id.hex()
    keyfile = keys.encode_keyfile(material, password, kdf)
    if not repo.objects.save_new(objects.key_file(key_id), keyfile):
        raise IntegrityError(f"key file {key_id} exists already")
    return key_id


def resolve_key(repo: Repository, prefix: str) -> KeyInfo:
    prefix = prefix.lower()
    if len(prefix) < 4:
        raise UsageError("a key id needs at least 4 hex digits")
    found = [k for k in list_keys(repo) if k.key_id.startswith(prefix)]
    if not found:
        raise NotFound(f"no key {prefix}")
    if len(found) > 1:
        raise UsageError(f"key id {prefix} is ambiguous")
    return found[0]


def remove_key(repo: Repository, prefix: str) -> str:
    """Delete a key file; its password stops opening the repository. The
    key in use and the last owner key are refused."""
    repo.require_owner("removing a key")
    key = resolve_key(repo, prefix)
    if key.current:
        raise UsageError(
            f"key {key.key_id[:8]} is the one in use; open with another key to remove it"
        )
    owners = [k for k in list_keys(repo) if k.role == Role.OWNER]
    if key.role == Role.OWNER and len(owners) <= 1:
        raise UsageError("refusing to remove the last owner key")
    repo.objects.remove(objects.key_file(key.key_id))
    return key.key_id


def change_password(repo: Repository, password: bytes, kdf: keys.KdfParams | None = None) -> str:
    """Re-wrap the key in use under a new password, with ``kdf`` or the
    current defaults (never the old file's), replacing its key file
    atomically. The key id, and with it the writer identity and chain, stay
    the same."""
    key_id = repo.material.key_id.hex()
    keyfile = keys.encode_keyfile(repo.material, password, kdf)
    repo.objects.save(objects.key_file(key_id), keyfile)
    return key_id
