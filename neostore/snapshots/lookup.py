"""Naming snapshots: ``latest``, a full id or a unique prefix.

Every lookup first verifies the chains of the target it resolves in
(:func:`.chains.verify_chains`), so a command that reads one snapshot still
notices a store that hid, rolled back or put back others: each finding
goes to ``repo.on_problem`` as :class:`~neostore.errors.TamperingDetected`
and the lookup goes on (reading an authentic snapshot stays safe).
``latest`` is refused instead while the newest snapshot this machine has
seen of a writer is missing without an owner's forget record: falling back
to an older one quietly is what a rollback attack wants. A snapshot the
owner forgot is never found again, whoever put it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..backend.names import ObjectType
from ..core import localstate
from ..core.repository import Repository
from ..errors import NotFound, TamperingDetected, UsageError
from ..format.keyfile import Role
from ..format.targets import TargetRecord
from . import shared
from .catalog import list_snapshots, load_snapshot
from .chains import verify_chains
from .forgotten import forgotten, resurrected
from .info import SnapshotInfo

T = TypeVar("T")


def find_snapshot(repo: Repository, spec: str, target: str | None = None) -> SnapshotInfo:
    """Resolve ``latest``, a full id or a unique prefix of at least 4 hex digits."""
    return select(repo, [spec], target)[0]


def select(repo: Repository, specs: list[str] | None, target: str | None) -> list[SnapshotInfo]:
    """The snapshots named by ``specs``, or every readable one (of
    ``target``); each target's chains are verified once."""
    if repo.role == Role.SHARE:
        if not specs:
            return list_snapshots(repo)
        return [_find_shared(repo, spec, target) for spec in specs]
    verified: dict[str, list[SnapshotInfo]] = {}

    def listing(name: str) -> list[SnapshotInfo]:
        if name not in verified:
            verified[name] = _verified(repo, repo.target(name))
        return verified[name]

    if not specs:
        names = [target] if target else repo.target_names()
        return [info for name in names for info in listing(name)]
    return [_find(repo, spec, target, listing) for spec in specs]


def _verified(repo: Repository, record: TargetRecord) -> list[SnapshotInfo]:
    snapshots = list_snapshots(repo, record.name, on_error=repo.on_problem)
    for problem in verify_chains(repo, record, snapshots):
        repo.on_problem(problem)
    return snapshots


def _find(
    repo: Repository,
    spec: str,
    target: str | None,
    listing: Callable[[str], list[SnapshotInfo]],
) -> SnapshotInfo:
    if spec == "latest":
        name = target or repo.default_target
        snapshots = listing(name)
        refuse_rollback(repo, repo.target(name), snapshots)
        if not snapshots:
            raise NotFound(f"target {name!r} has no snapshots")
        return snapshots[-1]
    spec = _checked(spec)
    if target is not None:
        repo.target(target)  # a target this key may not use: refused here
    wanted = {target} if target else set(repo.target_names())
    matches = []
    for address, _ in repo.objects.addresses(ObjectType.SNAPSHOTS):
        tname, _, sid = address.name.partition("/")
        if sid.startswith(spec) and tname in wanted:
            matches.append((tname, sid))
    tname, sid = _unique(spec, matches)
    found = [i for i in listing(tname) if i.hex_id == sid]
    if found:
        return found[0]
    record = repo.target(tname)
    if bytes.fromhex(sid) in forgotten(repo, record):
        raise resurrected(repo, record, bytes.fromhex(sid))
    return load_snapshot(repo, record, sid)  # it did not verify: raise why


def _find_shared(repo: Repository, spec: str, target: str | None) -> SnapshotInfo:
    if target is not None:
        repo.target(target)
    snapshots = list_snapshots(repo)
    problem = shared.rollback(repo, snapshots)
    if spec == "latest":
        if problem is not None:
            raise TamperingDetected(f"{problem}; name a snapshot id to proceed")
        if not snapshots:
            raise NotFound(f"target {repo.default_target!r} has no snapshots")
        return snapshots[-1]
    if problem is not None:
        repo.on_problem(TamperingDetected(problem))
    spec = _checked(spec)
    return _unique(spec, [i for i in snapshots if i.hex_id.startswith(spec)])


def _checked(spec: str) -> str:
    spec = spec.lower()
    if len(spec) < 4 or any(c not in "0123456789abcdef" for c in spec):
        raise UsageError(f"{spec!r}: give `latest`, a snapshot id or a prefix of ≥ 4 hex digits")
    return spec


def _unique(spec: str, matches: list[T]) -> T:
    if not matches:
        raise NotFound(f"no snapshot matches {spec!r}")
    if len(matches) > 1:
        raise UsageError(f"{spec!r} matches {len(matches)} snapshots; give more digits")
    return matches[0]


def refuse_rollback(repo: Repository, record: TargetRecord, snapshots: list[SnapshotInfo]) -> None:
    """``latest`` must not quietly fall back to an older snapshot when the
    store hides the newest one this machine has seen."""
    newest: dict[bytes, int] = {}
    for info in snapshots:
        m = info.manifest
        newest[m.writer_id] = max(newest.get(m.writer_id, 0), m.seq)
    present = {info.snapshot_id for info in snapshots}
    gone = None
    for writer_id, (seq, sid) in localstate.seen_heads(repo.repo_id, record.target_id).items():
        if newest.get(writer_id, 0) >= seq:
            continue
        gone = forgotten(repo, record) if gone is None else gone
        # the owner forgot it: the newest snapshot it kept before it must be here
        kept: bytes | None = sid
        for _ in range(len(gone) + 1):
            if kept is None or kept not in gone:
                break
            kept = gone[kept].prev
        if sid in gone and (kept is None or kept in present):
            continue
        raise TamperingDetected(
            f"target {record.name}: snapshot #{seq} of writer {writer_id.hex()[:8]} was "
            "seen before and is missing now (rolled back or hidden); name a snapshot "
            "id to proceed"
        )
