"""A share key's view of its target: the snapshots published to its share.

A share holder cannot open manifests; it reads the capabilities writers
sealed to its share (:mod:`neostore.format.shares`), each a snapshot whose
root listing is the shared folder alone, minus those the owner withdrew
(their snapshots were forgotten). A capability seen before that is now
missing without a withdrawal is a store hiding snapshots; one withdrawn
before (remembered locally) stays withdrawn even if the store deletes the
withdrawal and puts the capability back.
"""

from __future__ import annotations

from collections.abc import Callable

from ..backend.names import ObjectType
from ..core import localstate, objects
from ..core.repository import Repository
from ..errors import IntegrityError, NeostoreError, NotFound, TamperingDetected
from ..format.manifest import Manifest
from ..format.shares import (
    Capability,
    Withdrawal,
    cap_name,
    is_hex64,
    open_cap,
    open_withdrawal,
    unseal_share_object,
    withdrawal_name,
)
from .firstsight import pinned
from .info import SnapshotInfo
from .order import chain_order


def shared_snapshots(
    repo: Repository, on_error: Callable[[NeostoreError], None] | None = None
) -> list[SnapshotInfo]:
    """Every snapshot published to this key's share and not withdrawn, as
    snapshots whose root lists the shared folder alone. Each object is read
    once: a capability (four parts inside the seal) or a withdrawal (two)."""
    secrets = repo.share_secrets
    assert secrets.share_sk is not None and secrets.share_name is not None
    report = on_error or repo.on_problem
    names = sorted(n for n in repo.objects.list_group(ObjectType.SHARES, secrets.share_name))
    caps: dict[str, SnapshotInfo] = {}
    withdrawn: set[str] = set()
    for name in filter(is_hex64, names):
        address = objects.share_object(secrets.share_name, name)
        try:
            parts = unseal_share_object(
                secrets.share_sk, repo.objects.load(address), f"share object {address.name}"
            )
            if len(parts) == 2:
                found = _open_withdrawal(repo, f"share withdrawal {address.name}", parts)
                if withdrawal_name(_share_id(repo), found.cap) != name:
                    raise IntegrityError(
                        f"share withdrawal {address.name}: stored under another name"
                    )
                withdrawn.add(found.cap)
                continue
            caps[name] = _snapshot(repo, f"share capability {address.name}", name, parts)
        except NeostoreError as e:
            report(e)
    share_id = _share_id(repo)
    remembered = localstate.withdrawn_caps(repo.repo_id, share_id)
    back = sorted(name for name in remembered - withdrawn if name in caps)
    if back:
        report(
            TamperingDetected(
                f"share {secrets.share_name}: {len(back)} snapshot(s) the owner withdrew are back "
                "and their withdrawals gone (put back by the store): ignored"
            )
        )
    if withdrawn - remembered:
        localstate.remember_withdrawn(repo.repo_id, share_id, withdrawn - remembered)
    excluded = withdrawn | remembered
    return [info for name, info in caps.items() if name not in excluded]


def order(repo: Repository, snapshots: list[SnapshotInfo]) -> list[SnapshotInfo]:
    """Oldest first, as :func:`.order.chain_order` has it but without
    chains: the writer id and seq a capability names are only claims (any
    certified writer of the target can sign one), while the ``after`` list
    it carries cannot name a snapshot made later, and a claimed future
    time is pinned at first sight as for other keys."""
    target_id = repo.share_secrets.target_id
    assert target_id is not None
    return chain_order(pinned(repo, target_id, snapshots), chains=False)


def rollback(repo: Repository, snapshots: list[SnapshotInfo]) -> str | None:
    """A problem when the newest capability this machine saw for the share
    is gone (a store hiding newer snapshots); else remember the newest."""
    share_id = _share_id(repo)
    seen = localstate.seen_share_caps(repo.repo_id, share_id)
    names = [cap_name(share_id, i.snapshot_id) for i in snapshots]
    if seen is not None and seen not in names and not _legitimately_gone(repo, seen, names):
        return (
            f"share {repo.share_secrets.share_name}: a snapshot published to it and seen by "
            "this machine before is missing now (rolled back or hidden by the store)"
        )
    if names:
        localstate.record_share_cap(repo.repo_id, share_id, names[-1])
    return None


def _share_id(repo: Repository) -> bytes:
    share_id = repo.share_secrets.share_id
    assert share_id is not None
    return share_id


def _legitimately_gone(repo: Repository, cap: str, present: list[str]) -> bool:
    """Whether a capability seen before may be missing now: the owner
    withdrew it and, when it was replaced (tag, repair), the replacement —
    or, if that was withdrawn in turn, its replacement — is present. A
    withdrawal that does not verify counts as none (reported)."""
    for _ in range(64):
        try:
            found = _withdrawal_of(repo, cap)
        except NeostoreError as e:
            repo.on_problem(NeostoreError(f"ignored: {e}"))
            return False
        if found is None:
            return False
        if found.replaced_by is None or found.replaced_by in present:
            return True
        cap = found.replaced_by
    return False


def _withdrawal_of(repo: Repository, cap: str) -> Withdrawal | None:
    """The owner's withdrawal of capability ``cap``, if there is one
    (raises when the object there does not verify)."""
    secrets = repo.share_secrets
    assert secrets.share_sk is not None and secrets.share_name is not None
    address = objects.share_object(secrets.share_name, withdrawal_name(_share_id(repo), cap))
    what = f"share withdrawal {address.name}"
    try:
        stored = repo.objects.load(address)
    except NotFound:
        return None
    parts = unseal_share_object(secrets.share_sk, stored, what)
    if len(parts) != 2:
        raise IntegrityError(f"{what}: malformed")
    found = _open_withdrawal(repo, what, parts)
    if found.cap != cap:
        raise IntegrityError(f"{what}: withdraws another capability")
    return found


def _open_withdrawal(repo: Repository, what: str, parts: list[bytes]) -> Withdrawal:
    return open_withdrawal(
        parts,
        what=what,
        repo_id=repo.repo_id,
        owner_vk=repo.material.owner_vk,
        share_id=_share_id(repo),
    )


def _snapshot(repo: Repository, what: str, name: str, parts: list[bytes]) -> SnapshotInfo:
    secrets = repo.share_secrets
    assert secrets.target_id is not None
    cap: Capability = open_cap(
        parts,
        what=what,
        repo_id=repo.repo_id,
        owner_vk=repo.material.owner_vk,
        target_id=secrets.target_id,
        share_id=_share_id(repo),
        share_path=secrets.share_path,
    )
    if cap_name(_share_id(repo), cap.snapshot_id) != name:
        raise IntegrityError(f"{what}: stored under another snapshot's name")
    for ref in [*cap.node.subtree, *cap.node.content]:
        repo.blobs.check_ref(ref)
    manifest = Manifest(
        repo_id=repo.repo_id,
        target_id=cap.target_id,
        writer_id=cap.writer_id,
        epoch=cap.epoch,
        seq=cap.seq,
        prev=None,
        time_ns=cap.time_ns,
        host=cap.host,
        user="",
        paths=[secrets.share_path or b"/"],
        tags=cap.tags,
        parent=None,
        root=[],
        after=list(cap.after),
    )
    return SnapshotInfo(cap.snapshot_id, repo.default_target, manifest, shared_root=(cap.node,))
