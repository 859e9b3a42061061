"""A target's shares, as the owner lists them.

The owner keeps, per target, owner-signed, numbered **share lists**
(``sharelists/<target>/<H(stored)>``, :mod:`neostore.format.shares`).
Writers of the target verify them (owner signature) and merge them: a
share is known once any list names it and revoked once any list (or this
machine, earlier) marks it so, so neither concurrent owners nor a store
that shows an older list can undo a revocation this machine has seen.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from ..backend.names import ObjectType, is_valid_segment
from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NotFound, TamperingDetected, UsageError
from ..format import crypto
from ..format import keyfile as keys
from ..format.roles import make_share_material
from ..format.shares import Share, ShareList, decode_sharelist, encode_sharelist
from ..format.targets import TargetRecord


def current_sharelist(repo: Repository, record: TargetRecord) -> ShareList:
    """Every share of a target, merged from all share lists that verify.
    Lists that do not (not signed by the owner, corrupt) are reported
    through ``repo.on_problem`` and ignored. A share revoked in any list,
    or seen revoked by this machine before, stays revoked; a newest list
    older than the one this machine saw is an error (a store hiding
    changes)."""
    key = repo.sharelist_key(record)
    if key is None:
        raise repo.deny(
            f"the share list of target {record.name!r}", "an owner, writer or read-write key"
        )
    version, newest_time = 0, 0
    merged: dict[bytes, Share] = {}
    for leaf in repo.objects.list_group(ObjectType.SHARELISTS, record.name):
        address = objects.sharelist(record.name, leaf)
        try:
            found = decode_sharelist(
                repo.objects.load_verified(address),
                what=address.what,
                key=key,
                repo_id=repo.repo_id,
                target_id=record.target_id,
                owner_vk=repo.material.owner_vk,
            )
        except (IntegrityError, NotFound) as e:
            repo.on_problem(IntegrityError(f"ignored: {e}"))
            continue
        version, newest_time = max(version, found.version), max(newest_time, found.time_ns)
        for share in found.shares:
            known = merged.get(share.share_id)
            if known is not None and known.revoked_ns is not None:
                continue
            merged[share.share_id] = share
    pinned = localstate.sharelist_version(repo.repo_id, record.target_id)
    if version < pinned:
        raise TamperingDetected(
            f"target {record.name}: share list #{pinned} was seen before and the newest now is "
            f"#{version} (rolled back or hidden by the store)"
        )
    revoked = localstate.revoked_shares(repo.repo_id, record.target_id)
    for share_id, share in list(merged.items()):
        if share.revoked_ns is None and share_id in revoked:
            merged[share_id] = replace(share, revoked_ns=revoked[share_id])
    localstate.pin_sharelist(
        repo.repo_id,
        record.target_id,
        version,
        {s.share_id: s.revoked_ns for s in merged.values() if s.revoked_ns is not None},
    )
    ordered = sorted(merged.values(), key=lambda s: (s.created_ns, s.name))
    return ShareList(version, newest_time, tuple(ordered))


def _save_list(repo: Repository, record: TargetRecord, shares: ShareList) -> None:
    owner = repo.require_owner("changing shares")
    key = repo.sharelist_key(record)
    assert key is not None
    stored = encode_sharelist(
        shares, key=key, owner=owner, repo_id=repo.repo_id, target_id=record.target_id
    )
    repo.objects.save_addressed(ObjectType.SHARELISTS, record.name, stored)
    revoked = {s.share_id: s.revoked_ns for s in shares.shares if s.revoked_ns is not None}
    localstate.pin_sharelist(repo.repo_id, record.target_id, shares.version, revoked)


def normalise_share_path(path: str | bytes) -> bytes:
    raw = os.fsencode(path)
    if not raw.startswith(b"/"):
        raise UsageError(
            "give the shared path as it appears in the snapshot, from its root "
            "(e.g. /home/me/documents/presentations; see `neostore ls`)"
        )
    parts = [p for p in raw.split(b"/") if p]
    if not parts:
        raise UsageError("sharing / would share the whole target: add a reader key instead")
    if any(p in (b".", b"..") for p in parts):
        raise UsageError("the shared path may not contain '.' or '..'")
    return b"/" + b"/".join(parts)


def create_share(
    repo: Repository,
    target: str,
    path: str | bytes,
    name: str | None,
    password: bytes,
    kdf: keys.KdfParams | None = None,
) -> tuple[str, Share]:
    """A new share of ``path`` in ``target`` and the key file that opens
    it; returns (key id, share). Snapshots made from now on publish to it."""
    repo.require_owner("creating a share")
    shared = normalise_share_path(path)
    name = name or os.fsdecode(shared.rsplit(b"/", 1)[-1])
    if not is_valid_segment(name):
        raise UsageError(
            f"invalid share name {name!r} (use A-Z, a-z, 0-9, '.', '_', '-')", option="name"
        )
    record = repo.ensure_target(target)
    taken = {s.name for t in repo.target_names() for s in _lists(repo, t).shares}
    if name in taken:
        raise UsageError(
            f"a share named {name!r} exists (or existed) already; pick another name", option="name"
        )
    current = current_sharelist(repo, record)
    secret = os.urandom(32)
    share = Share(
        share_id=os.urandom(32),
        name=name,
        public_key=crypto.box_public_key(secret),
        path=shared,
        created_ns=time.time_ns(),
    )
    assert repo.material.master is not None
    material = make_share_material(
        record=record,
        repo_id=repo.repo_id,
        owner_vk=repo.material.owner_vk,
        master=repo.material.master,
        share_id=share.share_id,
        share_name=name,
        share_sk=secret,
        path=shared,
    )
    key_id = material.key_id.hex()
    keyfile = keys.encode_keyfile(material, password, kdf)
    if not repo.objects.save_new(objects.key_file(key_id), keyfile):
        raise IntegrityError(f"key file {key_id} exists already")
    updated = ShareList(current.version + 1, time.time_ns(), (*current.shares, share))
    _save_list(repo, record, updated)
    return key_id, share


def _lists(repo: Repository, target: str) -> ShareList:
    return current_sharelist(repo, repo.target(target))


def list_shares(repo: Repository, target: str | None) -> list[tuple[str, Share]]:
    """(target, share) for every share ever made, revoked ones included."""
    out: list[tuple[str, Share]] = []
    for name in [target] if target else repo.target_names():
        out.extend((name, s) for s in _lists(repo, name).shares)
    return out


def revoke_share(repo: Repository, name: str, target: str | None) -> Share:
    """Stop publishing to a share. What it already received stays readable
    to its holder (docs/design.md, "Shares")."""
    repo.require_owner("revoking a share")
    for tname, share in list_shares(repo, target):
        if share.name == name and share.revoked_ns is None:
            record = repo.target(tname)
            current = current_sharelist(repo, record)
            revoked = replace(share, revoked_ns=time.time_ns())
            shares = tuple(revoked if s.share_id == share.share_id else s for s in current.shares)
            _save_list(repo, record, ShareList(current.version + 1, time.time_ns(), shares))
            return revoked
    raise NotFound(f"no active share named {name!r}")
