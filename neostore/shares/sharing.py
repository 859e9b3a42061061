"""Read-only shares of one sub-folder of a target.

The owner keeps, per target, owner-signed, numbered **share lists**
(``sharelists/<target>/<H(stored)>``), encrypted with the target's
share-list key so the store sees no path. Writers of the target verify
them (owner signature) and merge them: a share is known once any list
names it and revoked once any list (or this machine, earlier) marks it so,
so neither concurrent owners nor a store that shows an older list can undo
a revocation this machine has seen. For
each snapshot, seal to every active share a **capability**: the node of the
shared path P in that snapshot (its blob keys open P's subtree and nothing
else), signed by the writer. The share holder's key opens only those.

Formats are in docs/format.md ("Shares").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..backend.names import is_valid_segment
from ..core import localstate
from ..core.repository import Repository, SnapshotInfo
from ..errors import IntegrityError, NeostoreError, NotFound, UsageError
from ..format import crypto
from ..format import keyfile as keys
from ..format.blob import Ref
from ..format.codec import field, pack, unpack, unpack_parts
from ..format.manifest import Manifest
from ..format.roles import make_share_material
from ..format.targets import TargetRecord
from ..format.tree import DIR, Node, decode_node
from ..format.writer import WriterIdentity, verify_writer

SHARELIST_VERSION = 1
CAP_VERSION = 1


@dataclass(frozen=True)
class Share:
    share_id: bytes
    name: str
    public_key: bytes
    path: bytes
    created_ns: int
    revoked_ns: int | None = None

    def encode(self) -> dict[str, Any]:
        return {
            "id": self.share_id,
            "name": self.name,
            "pk": self.public_key,
            "path": self.path,
            "created": self.created_ns,
            "revoked": self.revoked_ns,
        }

    @classmethod
    def decode(cls, raw: object, what: str) -> Share:
        if not isinstance(raw, dict):
            raise IntegrityError(f"{what}: malformed share entry")
        revoked = raw.get("revoked")
        return cls(
            share_id=field(raw, "id", bytes, what),
            name=field(raw, "name", str, what),
            public_key=field(raw, "pk", bytes, what),
            path=field(raw, "path", bytes, what),
            created_ns=field(raw, "created", int, what),
            revoked_ns=revoked if isinstance(revoked, int) else None,
        )


@dataclass(frozen=True)
class ShareList:
    version: int
    time_ns: int
    shares: tuple[Share, ...]

    @property
    def active(self) -> list[Share]:
        return [s for s in self.shares if s.revoked_ns is None]


def _list_ad(repo_id: bytes, target_id: bytes) -> bytes:
    return crypto.AD_SHARELIST + repo_id + target_id


def encode_sharelist(
    shares: ShareList, *, key: bytes, owner: crypto.SigningKey, repo_id: bytes, target_id: bytes
) -> tuple[str, bytes]:
    body = pack(
        {
            "v": SHARELIST_VERSION,
            "target_id": target_id,
            "version": shares.version,
            "time": shares.time_ns,
            "shares": [s.encode() for s in shares.shares],
        }
    )
    signature = owner.sign(crypto.SIG_SHARELIST + repo_id, body)
    sealed = crypto.aead_encrypt(key, pack([body, signature]), _list_ad(repo_id, target_id))
    stored = pack([SHARELIST_VERSION, sealed])
    return crypto.object_hash(stored).hex(), stored


def decode_sharelist(
    stored: bytes, *, what: str, key: bytes, repo_id: bytes, target_id: bytes, owner_vk: bytes
) -> ShareList:
    outer = unpack(stored, what)
    if not (isinstance(outer, list) and len(outer) == 2 and outer[0] == SHARELIST_VERSION):
        raise IntegrityError(f"{what}: malformed")
    plain = crypto.aead_decrypt(key, outer[1], _list_ad(repo_id, target_id), what)
    body_bytes, signature = unpack_parts(plain, 2, what)
    crypto.verify(
        owner_vk, crypto.SIG_SHARELIST + repo_id, body_bytes, signature, f"{what}: owner signature"
    )
    body = unpack(body_bytes, what)
    if field(body, "target_id", bytes, what) != target_id:
        raise IntegrityError(f"{what}: signed for another target")
    return ShareList(
        version=field(body, "version", int, what),
        time_ns=field(body, "time", int, what),
        shares=tuple(Share.decode(s, what) for s in field(body, "shares", list, what)),
    )


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
    for object_name, _ in repo.backend.list("sharelists"):
        tname, _, digest = object_name.partition("/")
        if tname != record.name:
            continue
        what = f"share list {object_name}"
        try:
            stored = repo.backend.load("sharelists", object_name)
            if crypto.object_hash(stored).hex() != digest:
                raise IntegrityError(f"{what}: content does not match its name")
            found = decode_sharelist(
                stored,
                what=what,
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
        raise IntegrityError(
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
    name, stored = encode_sharelist(
        shares, key=key, owner=owner, repo_id=repo.repo_id, target_id=record.target_id
    )
    repo.backend.save("sharelists", f"{record.name}/{name}", stored)
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
    repo: Repository, target: str, path: str | bytes, name: str | None, password: bytes
) -> tuple[str, Share]:
    """A new share of ``path`` in ``target`` and the key file that opens
    it; returns (key id, share). Snapshots made from now on publish to it."""
    repo.require_owner("creating a share")
    shared = normalise_share_path(path)
    name = name or os.fsdecode(shared.rsplit(b"/", 1)[-1])
    if not is_valid_segment(name):
        raise UsageError(f"invalid share name {name!r} (use A-Z, a-z, 0-9, '.', '_', '-')")
    record = repo.ensure_target(target)
    taken = {s.name for t in repo.target_names() for s in _lists(repo, t).shares}
    if name in taken:
        raise UsageError(f"a share named {name!r} exists (or existed) already; pick --name")
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
    if not repo.backend.save_new("keys", key_id, keys.encode_keyfile(material, password)):
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


# -- capabilities ---------------------------------------------------------------------


def cap_name(share_id: bytes, snapshot_id: bytes) -> str:
    """Where a snapshot's capability for a share lives. Keyed by the share
    id (which the store never sees), so the store cannot link a capability
    to its snapshot, and deterministic, so it is published at most once."""
    return crypto.keyed_hash(share_id, b"cap", snapshot_id).hex()


def withdrawal_name(share_id: bytes, cap: str) -> str:
    """Where the owner's withdrawal of capability ``cap`` lives: derived
    from the capability's name, so a holder missing a capability it saw
    can look for it."""
    return crypto.keyed_hash(share_id, b"withdrawn", bytes.fromhex(cap)).hex()


def withdraw(
    repo: Repository,
    record: TargetRecord,
    snapshot_ids: list[bytes],
    replaced: dict[bytes, bytes] | None = None,
) -> int:
    """Remove the capabilities of forgotten snapshots from the target's
    shares, revoked ones included (owner keys). Each gets an owner-signed
    withdrawal first, sealed to the share, so its holder does not take the
    gap for a store hiding snapshots; then the capability is deleted.
    ``replaced``: the snapshot that replaces a forgotten one (tag, repair),
    named in the withdrawal so a holder can insist on seeing it. Returns
    how many went."""
    owner = repo.require_owner("withdrawing share capabilities")
    shares = current_sharelist(repo, record).shares
    if not shares or not snapshot_ids:
        return 0
    existing = {name for name, _ in repo.backend.list("shares")}
    removed = 0
    for share in shares:
        for snapshot_id in snapshot_ids:
            cap = cap_name(share.share_id, snapshot_id)
            if f"{share.name}/{cap}" not in existing:
                continue
            successor = (replaced or {}).get(snapshot_id)
            follows = None if successor is None else cap_name(share.share_id, successor)
            if f"{share.name}/{follows}" not in existing:
                follows = None  # not published to this share (revoked, or not in it)
            body = pack(
                {
                    "v": 1,
                    "repo_id": repo.repo_id,
                    "share_id": share.share_id,
                    "cap": cap,
                    "replaced_by": follows,
                    "time": time.time_ns(),
                }
            )
            signature = owner.sign(crypto.SIG_SHARE_WITHDRAW + repo.repo_id, body)
            stored = crypto.seal(share.public_key, pack([body, signature]))
            repo.backend.save(
                "shares", f"{share.name}/{withdrawal_name(share.share_id, cap)}", stored
            )
            try:
                repo.backend.remove("shares", f"{share.name}/{cap}")
            except NotFound:
                pass
            removed += 1
    return removed


@dataclass(frozen=True)
class _Withdrawal:
    cap: str
    replaced_by: str | None


def _open_withdrawal(repo: Repository, what: str, parts: list[bytes]) -> _Withdrawal:
    secrets = repo.share_secrets()
    body_bytes, signature = parts
    crypto.verify(
        repo.material.owner_vk,
        crypto.SIG_SHARE_WITHDRAW + repo.repo_id,
        body_bytes,
        signature,
        what,
    )
    body = unpack(body_bytes, what)
    successor = body.get("replaced_by") if isinstance(body, dict) else None
    if (
        field(body, "v", int, what) != 1
        or field(body, "repo_id", bytes, what) != repo.repo_id
        or field(body, "share_id", bytes, what) != secrets.share_id
        or not (successor is None or (isinstance(successor, str) and _is_hex64(successor)))
    ):
        raise IntegrityError(f"{what}: made for another repository or share")
    cap = field(body, "cap", str, what)
    if not _is_hex64(cap):
        raise IntegrityError(f"{what}: malformed")
    return _Withdrawal(cap, successor)


def _withdrawal_of(repo: Repository, cap: str) -> _Withdrawal | None:
    """For a share key: the owner's withdrawal of capability ``cap``, if
    there is one (raises when the object there does not verify)."""
    secrets = repo.share_secrets()
    assert secrets.share_sk is not None and secrets.share_id is not None
    object_name = f"{secrets.share_name}/{withdrawal_name(secrets.share_id, cap)}"
    what = f"share withdrawal {object_name}"
    try:
        stored = repo.backend.load("shares", object_name)
    except NotFound:
        return None
    parts = unpack_parts(crypto.unseal(secrets.share_sk, stored, what), 2, what)
    found = _open_withdrawal(repo, what, parts)
    if found.cap != cap:
        raise IntegrityError(f"{what}: withdraws another capability")
    return found


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and not text.strip("0123456789abcdef")


def find_node(repo: Repository, root: list[Ref], path: bytes) -> Node | None:
    nodes = repo.load_tree(root)
    node: Node | None = None
    for part in (p for p in path.split(b"/") if p):
        node = next((n for n in nodes if n.name == part), None)
        if node is None:
            return None
        nodes = repo.load_tree(node.subtree) if node.type == DIR else []
    return node


def _seal_cap(
    repo: Repository,
    record: TargetRecord,
    writer: WriterIdentity,
    share: Share,
    info: SnapshotInfo,
    node: Node,
) -> bytes:
    m = info.manifest
    body = pack(
        {
            "v": CAP_VERSION,
            "repo_id": repo.repo_id,
            "target_id": record.target_id,
            "share_id": share.share_id,
            "snapshot": info.snapshot_id,
            "signer": writer.writer_id,
            "epoch": m.epoch,
            "writer_id": m.writer_id,
            "seq": m.seq,
            "time": m.time_ns,
            "host": m.host,
            "tags": m.tags,
            "path": share.path,
            "node": node.encode(),
        }
    )
    signature = writer.signing.sign(crypto.SIG_SHARE_CAP + repo.repo_id, body)
    cert = writer.cert(repo.repo_id, record.target_id, m.epoch)
    return crypto.seal(share.public_key, pack([body, signature, writer.verify_key, cert]))


def publish(
    repo: Repository,
    record: TargetRecord,
    writer: WriterIdentity,
    snapshots: list[SnapshotInfo],
    only: set[str] | None = None,
) -> int:
    """Seal each snapshot's capability to every active share (or those
    named in ``only``) that lacks one; returns how many were written."""
    shares = [s for s in current_sharelist(repo, record).active if only is None or s.name in only]
    if only is not None and len(shares) != len(only):
        missing = only - {s.name for s in shares}
        raise NotFound(f"no active share named {', '.join(sorted(missing))} in {record.name}")
    if not shares or not snapshots:
        return 0
    existing = {name for name, _ in repo.backend.list("shares")}
    written = 0
    for info in snapshots:
        for share in shares:
            object_name = f"{share.name}/{cap_name(share.share_id, info.snapshot_id)}"
            if object_name in existing:
                continue
            node = find_node(repo, info.manifest.root, share.path)
            if node is None:
                continue  # P is not in this snapshot
            stored = _seal_cap(repo, record, writer, share, info, node)
            if repo.backend.save_new("shares", object_name, stored):
                written += 1
    return written


def publish_or_warn(
    repo: Repository, record: TargetRecord, writer: WriterIdentity, snapshots: list[SnapshotInfo]
) -> int:
    """:func:`publish` right after saving snapshots: they are safe already,
    so a failure here is a warning (``share sync`` publishes them later)."""
    try:
        return publish(repo, record, writer, snapshots)
    except NeostoreError as e:
        repo.on_problem(NeostoreError(f"snapshot saved, but not published to shares: {e}"))
        return 0


def sync(repo: Repository, target: str, only: set[str] | None = None) -> int:
    """Publish every existing snapshot of ``target`` to the shares (needed
    for snapshots made before a share existed). The key must read the
    target's snapshots and sign for it: owner or read-write."""
    record = repo.target(target)
    if repo.role not in ("owner", "read-write"):
        raise repo.deny(
            f"publishing snapshots of target {target!r} to its shares", "an owner or read-write key"
        )
    repo.require_reader(record)
    writer = repo.writer
    snapshots = repo.list_snapshots(target, on_error=repo.on_problem)
    from ..lifecycle.forget import forgotten

    gone = forgotten(repo, record)
    live = [i for i in snapshots if i.snapshot_id not in gone]
    repo.load_index()
    published = publish(repo, record, writer, live, only)
    if repo.role == "owner" and gone:  # capabilities a forget left behind
        withdraw(repo, record, list(gone), _replacements(snapshots, live, set(gone)))
    return published


def _replacements(
    snapshots: list[SnapshotInfo], live: list[SnapshotInfo], gone: set[bytes]
) -> dict[bytes, bytes]:
    """For forgotten snapshots still listed (an interrupted tag or repair):
    the newest live snapshot of the same line (same ``original``)."""
    out: dict[bytes, bytes] = {}
    for info in snapshots:
        if info.snapshot_id in gone:
            line = info.manifest.original or info.snapshot_id
            for candidate in live:
                if candidate.manifest.original == line:
                    out[info.snapshot_id] = candidate.snapshot_id
    return out


def shared_snapshots(
    repo: Repository, on_error: Callable[[NeostoreError], None] | None = None
) -> list[SnapshotInfo]:
    """For a share key: every snapshot published to it and not withdrawn,
    as snapshots whose root lists the shared folder alone. Each object is
    read once: a capability (four parts inside the seal) or a withdrawal
    (two)."""
    secrets = repo.share_secrets()
    assert secrets.share_sk is not None and secrets.share_id is not None
    report = on_error or repo.on_problem
    names = set()
    for object_name, _ in repo.backend.list("shares"):
        share_name, _, name = object_name.partition("/")
        if share_name == secrets.share_name and _is_hex64(name):
            names.add(name)
    caps: dict[str, SnapshotInfo] = {}
    withdrawn: set[str] = set()
    for name in sorted(names):
        object_name = f"{secrets.share_name}/{name}"
        what = f"share object {object_name}"
        try:
            stored = repo.backend.load("shares", object_name)
            plain = crypto.unseal(secrets.share_sk, stored, what)
            parts = unpack(plain, what)
            if isinstance(parts, list) and len(parts) == 2:
                what = f"share withdrawal {object_name}"
                found = _open_withdrawal(repo, what, unpack_parts(plain, 2, what))
                if withdrawal_name(secrets.share_id, found.cap) != name:
                    raise IntegrityError(f"{what}: stored under another name")
                withdrawn.add(found.cap)
                continue
            caps[name] = _open_cap(repo, object_name, name, stored)
        except NeostoreError as e:
            report(e)
    return [info for name, info in caps.items() if name not in withdrawn]


def order_shared(snapshots: list[SnapshotInfo]) -> list[SnapshotInfo]:
    """Oldest first, by the snapshot's time as no later than now. (The
    writer id and seq a capability names are only claims: any certified
    writer of the target can sign one, so they do not decide the order.)"""
    now = time.time_ns()
    return sorted(snapshots, key=lambda i: (min(i.manifest.time_ns, now), i.snapshot_id))


def shared_rollback(repo: Repository, snapshots: list[SnapshotInfo]) -> str | None:
    """A problem when the newest capability this machine saw for the share
    is gone (a store hiding newer snapshots); else remember the newest."""
    secrets = repo.share_secrets()
    assert secrets.share_id is not None
    seen = localstate.seen_share_caps(repo.repo_id, secrets.share_id)
    names = [cap_name(secrets.share_id, i.snapshot_id) for i in snapshots]
    if seen is not None and seen not in names and not _legitimately_gone(repo, seen, names):
        return (
            f"share {secrets.share_name}: a snapshot published to it and seen by this machine "
            "before is missing now (rolled back or hidden by the store)"
        )
    if names:
        localstate.record_share_cap(repo.repo_id, secrets.share_id, names[-1])
    return None


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


def _open_cap(repo: Repository, object_name: str, name: str, stored: bytes) -> SnapshotInfo:
    secrets = repo.share_secrets()
    assert secrets.share_sk is not None and secrets.share_id is not None
    what = f"share capability {object_name}"
    plain = crypto.unseal(secrets.share_sk, stored, what)
    body_bytes, signature, writer_vk, cert = unpack_parts(plain, 4, what)
    crypto.verify(writer_vk, crypto.SIG_SHARE_CAP + repo.repo_id, body_bytes, signature, what)
    body = unpack(body_bytes, what)
    target_id = field(body, "target_id", bytes, what)
    snapshot_id = field(body, "snapshot", bytes, what)
    if (
        field(body, "v", int, what) != CAP_VERSION
        or field(body, "repo_id", bytes, what) != repo.repo_id
        or target_id != secrets.target_id
        or field(body, "share_id", bytes, what) != secrets.share_id
        or field(body, "path", bytes, what) != secrets.share_path
    ):
        raise IntegrityError(f"{what}: made for another repository, target, share or path")
    if cap_name(secrets.share_id, snapshot_id) != name:
        raise IntegrityError(f"{what}: stored under another snapshot's name")
    epoch = field(body, "epoch", int, what)
    signer = field(body, "signer", bytes, what)
    verify_writer(
        repo.material.owner_vk, repo.repo_id, target_id, signer, writer_vk, epoch, cert, what
    )
    node = decode_node(field(body, "node", dict, what), what)
    for ref in node.subtree + node.content:
        repo.check_ref(ref)
    tags = field(body, "tags", list, what)
    manifest = Manifest(
        repo_id=repo.repo_id,
        target_id=target_id,
        writer_id=field(body, "writer_id", bytes, what),
        epoch=epoch,
        seq=field(body, "seq", int, what),
        prev=None,
        time_ns=field(body, "time", int, what),
        host=field(body, "host", str, what),
        user="",
        paths=[secrets.share_path or b"/"],
        tags=[t for t in tags if isinstance(t, str)],
        parent=None,
        root=[],
    )
    return SnapshotInfo(snapshot_id, repo.default_target, manifest, shared_root=(node,))
