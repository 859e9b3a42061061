"""The repository: binds a backend, the key material, targets and the index.

Opening verifies, in order: the format version in ``config``; a key file
that the password opens; the config signature against the owner key carried
in that key file; the local pin of (repo_id, owner_vk, config_version).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..backend import Backend
from ..backend.names import is_valid_target_name
from ..errors import (
    IntegrityError,
    NeostoreError,
    NotFound,
    PermissionDenied,
    RepositoryNotFound,
    TamperedKeyFile,
    UsageError,
    WrongPassword,
)
from ..format import crypto
from ..format import keyfile as keys
from ..format.blob import Ref, decrypt_blob
from ..format.config import Config, decode_config, encode_config, verify_config
from ..format.manifest import Manifest, open_manifest, seal_manifest
from ..format.pack import PackEntry
from ..format.roles import RoleSecrets, describe, role_secrets
from ..format.signed import Envelope
from ..format.targets import (
    TREE,
    Domain,
    TargetRecord,
    decode_target,
    domain_secret,
    encode_target,
    new_target,
    sharelist_key,
    target_seal_secret,
)
from ..format.tree import Node, decode_tree
from ..format.writer import WriterIdentity
from . import localstate
from .index import Location, MasterIndex, PackRecord, condemned_by, decode_index, entries_trusted

DEFAULT_TARGET = "default"


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: bytes
    target: str
    manifest: Manifest
    #: for a share key: the root listing is the shared folder alone
    shared_root: tuple[Node, ...] | None = None
    #: signed by an owner key's own writer (not a delegated key)
    by_owner: bool = False

    @property
    def hex_id(self) -> str:
        return self.snapshot_id.hex()


class Repository:
    def __init__(self, backend: Backend, config: Config, material: keys.KeyMaterial) -> None:
        self.backend = backend
        self.config = config
        self.material = material
        self.repo_id = config.repo_id
        self.index = MasterIndex()
        self._targets: dict[str, TargetRecord] = {}
        self._domains: dict[tuple[bytes, int], Domain] = {}
        self._index_loaded: set[str] = set()
        self._owner = (
            crypto.SigningKey(material.owner_seed) if material.owner_seed is not None else None
        )
        self._roles = role_secrets(material)
        #: where non-fatal problems go (a bad object among good ones); the
        #: CLI prints them, the default raises
        self.on_problem: Callable[[NeostoreError], None] = _raise

    # -- creating and opening ------------------------------------------------

    @classmethod
    def init(
        cls,
        backend: Backend,
        password: bytes,
        *,
        chunk_sizes: tuple[int, int, int] | None = None,
        pack_size: int | None = None,
        kdf: keys.KdfParams | None = None,
    ) -> Repository:
        if backend.exists_repository():
            raise UsageError(f"{backend.location}: a repository already exists there")
        owner = crypto.SigningKey.generate()
        repo_id = os.urandom(16)
        options: dict[str, int] = {}
        if chunk_sizes:
            options.update(
                chunk_min=chunk_sizes[0], chunk_avg=chunk_sizes[1], chunk_max=chunk_sizes[2]
            )
        if pack_size:
            options["pack_size"] = pack_size
        config = Config(
            repo_id=repo_id, owner_vk=owner.verify_key, created_ns=time.time_ns(), **options
        )
        _check_sizes(config)
        material = keys.KeyMaterial(
            key_id=os.urandom(16),
            role="owner",
            repo_id=repo_id,
            owner_vk=owner.verify_key,
            owner_seed=owner.seed,
            master=os.urandom(32),
            writer_seed=os.urandom(32),
        )
        backend.create_repository()
        keyfile = keys.encode_keyfile(material, password, kdf)
        backend.save("keys", material.key_id.hex(), keyfile)
        repo = cls(backend, config, material)
        repo.ensure_target(DEFAULT_TARGET)
        # config last: a repository "exists" only once everything else is in place
        backend.save("config", "config", encode_config(config, owner))
        localstate.pin_config(repo_id, owner.verify_key, config.config_version)
        return repo

    @classmethod
    def open(cls, backend: Backend, password: bytes) -> Repository:
        if not backend.exists_repository():
            raise RepositoryNotFound(
                f"{backend.location}: no repository there (run `neostore init`)"
            )
        raw_config = backend.load("config", "config")
        claimed, _, _ = decode_config(raw_config)  # refuses newer formats before the KDF
        # the key file this machine opened last is tried first: one KDF, not one per key file
        # (the claimed repo id only orders the attempts; everything is verified below)
        hint = localstate.key_hint(claimed.repo_id)
        material = open_with_password(backend, password, first=hint)
        config = verify_config(raw_config, material.owner_vk)
        if config.repo_id != material.repo_id:
            raise IntegrityError("config: repository id does not match the key file")
        _check_sizes(config)
        localstate.check_config_pin(config.repo_id, config.owner_vk, config.config_version)
        if hint != material.key_id.hex():
            localstate.record_key_hint(config.repo_id, material.key_id.hex())
        return cls(backend, config, material)

    # -- roles -----------------------------------------------------------------

    @property
    def role(self) -> str:
        return self.material.role

    @property
    def default_target(self) -> str:
        """The target a command means when none is given: the key's own."""
        return self.material.target or DEFAULT_TARGET

    def deny(self, action: str, roles: str) -> PermissionDenied:
        return PermissionDenied(f"{action} needs {roles}; this is {describe(self.material)}")

    def require_owner(self, action: str) -> crypto.SigningKey:
        if self._owner is None or self.material.master is None:
            raise self.deny(action, "an owner key")
        return self._owner

    def require_reader(self, record: TargetRecord) -> None:
        """Raise unless this key can open the manifests of ``record``."""
        self.target_secret(record)

    def share_secrets(self) -> RoleSecrets:
        if self.role != "share" or self._roles.share_sk is None:
            raise self.deny("reading a share", "a share key")
        return self._roles

    def can_read(self, record: TargetRecord) -> bool:
        return self.material.master is not None or (
            self._roles.seal_sk is not None and self._roles.target_id == record.target_id
        )

    @property
    def writer(self) -> WriterIdentity:
        if self.material.writer_seed is None:
            raise self.deny(
                f"adding snapshots to target {self.default_target!r}",
                "a writer, read-write or owner key",
            )
        return WriterIdentity(
            writer_id=self.material.key_id,
            signing=crypto.SigningKey(self.material.writer_seed),
            owner=self._owner,
            certs=dict(self._roles.certs),
        )

    # -- targets and domains ---------------------------------------------------

    def target(self, name: str) -> TargetRecord:
        record = self._targets.get(name)
        if record is None:
            if not is_valid_target_name(name):
                raise UsageError(f"invalid target name {name!r} (use a-z, 0-9, '.', '_', '-')")
            if self.role != "owner" and name != self.material.target:
                raise self.deny(
                    f"target {name!r}", f"an owner key or a key made for target {name!r}"
                )
            if self.role == "share":
                # share holders may not see the target record (server scope)
                # and need nothing from it but the domain their key names
                return self._share_record(name)
            try:
                data = self.backend.load("targets", name)
            except NotFound:
                raise NotFound(f"target {name!r} does not exist") from None
            record = decode_target(data, name, self.repo_id, self.material.owner_vk)
            if self.role != "owner" and record.target_id != self._roles.target_id:
                raise IntegrityError(
                    f"target record {name}: not the target this key was made for (replaced?)"
                )
            localstate.pin_target(self.repo_id, name, record.target_id)
            self._targets[name] = record
        return record

    def _share_record(self, name: str) -> TargetRecord:
        assert self._roles.target_id is not None
        domain_id, epoch = next(iter(self._roles.domains))
        record = TargetRecord(name, self._roles.target_id, b"", domain_id, epoch, 0)
        self._targets[name] = record
        return record

    def target_names(self) -> list[str]:
        """Targets this key can use: all for an owner, its own otherwise."""
        if self.material.target is not None:
            return [self.material.target]
        return sorted(name for name, _ in self.backend.list("targets"))

    def ensure_target(self, name: str) -> TargetRecord:
        try:
            return self.target(name)
        except NotFound:
            if localstate.pinned_target(self.repo_id, name) is not None:
                raise IntegrityError(
                    f"target {name!r} existed when this machine last looked and is now gone "
                    "(deleted or hidden by the store)"
                ) from None
        owner = self.require_owner(f"creating target {name!r}")
        assert self.material.master is not None
        record = new_target(name, self.material.master)
        if not self.backend.save_new("targets", name, encode_target(record, self.repo_id, owner)):
            return self.target(name)  # another client created it first: use theirs
        localstate.pin_target(self.repo_id, name, record.target_id)
        self._targets[name] = record
        return record

    def domain_for(self, domain_id: bytes, epoch: int) -> Domain | None:
        found = self._domains.get((domain_id, epoch))
        if found is None and self.material.master is not None:
            found = Domain(domain_id, epoch, domain_secret(self.material.master, domain_id, epoch))
            self._domains[(domain_id, epoch)] = found
        if found is None:
            found = self._roles.domains.get((domain_id, epoch))
        return found

    def domain(self, record: TargetRecord) -> Domain:
        """The domain of ``record`` with the keys to make blobs in it."""
        found = self.domain_for(record.domain_id, record.epoch)
        if found is None or not found.writable:
            raise self.deny(
                f"adding snapshots to target {record.name!r}", "a writer, read-write or owner key"
            )
        return found

    def target_secret(self, record: TargetRecord) -> bytes:
        if self.material.master is not None:
            return target_seal_secret(self.material.master, record.target_id)
        if self.can_read(record):
            assert self._roles.seal_sk is not None
            return self._roles.seal_sk
        raise self.deny(
            f"reading snapshots of target {record.name!r}", "a reader, read-write or owner key"
        )

    def sharelist_key(self, record: TargetRecord) -> bytes | None:
        """The key of ``record``'s share lists (owner and the target's writers)."""
        if self.material.master is not None:
            return sharelist_key(self.material.master, record.target_id)
        if self._roles.target_id == record.target_id:
            return self._roles.sharelist_key
        return None

    # -- index -------------------------------------------------------------------

    def read_index_file(self, name: str) -> tuple[Envelope, list[PackRecord]] | None:
        """One index file, verified; None when this key cannot read its domain."""
        data = self.backend.load("index", name)
        what = f"index file {name}"
        if crypto.object_hash(data).hex() != name:
            raise IntegrityError(f"{what}: content does not match its name")
        return decode_index(
            data,
            what=what,
            repo_id=self.repo_id,
            owner_vk=self.material.owner_vk,
            domain_for=self.domain_for,
        )

    def load_index(
        self,
        on_error: Callable[[NeostoreError], None] | None = None,
        names: Iterable[str] | None = None,
    ) -> set[bytes]:
        """Load every index file not loaded yet (of ``names``, when the
        caller has listed them); bad ones go to ``on_error`` or raise.
        Returns the packs that the newly loaded files condemn (prune marks,
        docs/design.md "Prune"): known from now on, they are read but never
        deduped against."""
        if names is None:
            names = [n for n, _ in self.backend.list("index")]
        names = [n for n in names if n not in self._index_loaded]
        loaded: list[tuple[str, Envelope, list[PackRecord]]] = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {pool.submit(self.read_index_file, n): n for n in names}
            for future, name in futures.items():
                try:
                    decoded = future.result()
                except NeostoreError as e:
                    (on_error or self.on_problem)(e)
                    continue
                self._index_loaded.add(name)
                if decoded is not None:
                    loaded.append((name, *decoded))
        condemned = {p for _, envelope, _ in loaded for p in condemned_by(envelope)}
        # marks first, so that a condemned copy never takes a trusted slot
        self.index.condemn(condemned)
        for name, envelope, records in loaded:
            trusted = entries_trusted(envelope, self.material.key_id)
            try:
                for record in records:
                    self.index.add_pack(
                        record, trusted and not self.index.is_condemned(record.pack_id)
                    )
            except (ValueError, OverflowError) as e:  # entries the table refuses
                (on_error or self.on_problem)(IntegrityError(f"index file {name}: {e}"))
        return condemned

    def index_files_gone(self, listed: set[str]) -> bool:
        """Whether an index file loaded before is missing from ``listed``
        (deleted since by a prune's sweep, or ``repair index``)."""
        return not self._index_loaded <= listed

    def reset_index(self) -> None:
        """Forget the loaded index; the next :meth:`load_index` reads it all."""
        self.index = MasterIndex()
        self._index_loaded = set()

    def note_index_written(self, name: str) -> None:
        self._index_loaded.add(name)

    # -- blobs and trees -----------------------------------------------------------

    def check_ref(self, ref: Ref) -> None:
        """Refuse a reference no writer could have made (hostile trees)."""
        if ref.length > self.config.chunk_max:
            raise IntegrityError(
                f"blob {ref.blob_id.hex()}: reference claims {ref.length} bytes, more than the "
                f"largest chunk ({self.config.chunk_max})"
            )

    def read_blob(self, btype: int, ref: Ref, stored: bytes | None = None) -> bytes:
        """A blob's plaintext, verified. ``stored``: its encrypted bytes when
        already fetched (:meth:`fetch_stored`, from the first indexed
        copy), checked all the same. When that copy fails (wrong type,
        missing, corrupt or planted by a leaked writer key), the blob's other
        indexed copies are tried; they are looked up only then."""
        self.check_ref(ref)
        first = self.index.lookup(ref.blob_id)
        if first is None:
            raise IntegrityError(f"blob {ref.blob_id.hex()} is not in any index (missing data)")
        try:
            return self.read_copy(btype, ref, first, stored)
        except IntegrityError as e:
            failure = e
        for location in self.index.locations(ref.blob_id)[1:]:
            try:
                return self.read_copy(btype, ref, location, None)
            except IntegrityError:
                continue
        raise failure

    def read_copy(
        self, btype: int, ref: Ref, location: Location, stored: bytes | None = None
    ) -> bytes:
        """The plaintext of one copy of a blob, verified."""
        if location.btype != btype:
            raise IntegrityError(f"blob {ref.blob_id.hex()} has the wrong type in the index")
        try:
            if stored is None or len(stored) != location.length:
                stored = self._load_stored(ref, location)
            return decrypt_blob(self.repo_id, btype, ref, stored)
        except IntegrityError as e:
            raise IntegrityError(f"pack {location.pack_id.hex()}: {e}") from None

    def fetch_stored(
        self, btype: int, refs: list[Ref], max_gap: int = 256 * 1024, max_read: int = 8 << 20
    ) -> dict[bytes, bytes]:
        """The encrypted bytes of many blobs, read with as few range requests
        as possible: blobs of one pack less than ``max_gap`` apart are read
        together (up to ``max_read`` bytes a request). For a store where a
        request costs more than reading a gap (a server). Nothing is verified
        here; a blob that cannot be fetched is left out (:meth:`read_blob`
        then fetches it alone and reports the problem)."""
        wanted: list[tuple[bytes, int, int, bytes]] = []
        for ref in refs:
            location = self.index.lookup(ref.blob_id)
            if location is not None and location.btype == btype:
                wanted.append((location.pack_id, location.offset, location.length, ref.blob_id))
        wanted.sort()
        out: dict[bytes, bytes] = {}
        start = 0
        while start < len(wanted):
            pack_id, first, _, _ = wanted[start]
            end, stop = start, first
            while end < len(wanted):
                p, offset, length, _ = wanted[end]
                if p != pack_id or offset - stop > max_gap or offset + length - first > max_read:
                    break
                stop = max(stop, offset + length)
                end += 1
            end = max(end, start + 1)
            try:
                data = self.backend.load("data", pack_id.hex(), first, stop - first)
            except NeostoreError:
                data = b""
            for _, offset, length, blob_id in wanted[start:end]:
                if offset + length - first <= len(data):
                    out[blob_id] = data[offset - first : offset - first + length]
            start = end
        return out

    def pack_header(
        self, name: str, size: int | None = None
    ) -> tuple[Envelope, list[PackEntry], bytes]:
        """A pack's signed header (envelope, entries, blob-region hash),
        read with two range reads and verified."""
        from ..format import pack

        what = f"pack {name}"
        if size is None:
            size = self.backend.size("data", name)
        if size < 4:
            raise IntegrityError(f"{what}: too short")
        length = pack.header_length(self.backend.load("data", name, size - 4, 4), size, what)
        opened = pack.open_header(
            self.backend.load("data", name, size - 4 - length, length),
            what=what,
            repo_id=self.repo_id,
            owner_vk=self.material.owner_vk,
            domain_for=self.domain_for,
        )
        if opened is None:
            raise IntegrityError(f"{what}: of a domain this key cannot read")
        return opened

    def verified_stored(self, btype: int, ref: Ref) -> bytes:
        """The encrypted bytes of a copy of a blob that decrypts and matches
        its content hash (copies in condemned packs last)."""
        failure: IntegrityError | None = None
        for location in self.index.locations(ref.blob_id):
            try:
                if location.btype != btype:
                    raise IntegrityError(f"blob {ref.blob_id.hex()} has the wrong type")
                stored = self._load_stored(ref, location)
                decrypt_blob(self.repo_id, btype, ref, stored)
                return stored
            except IntegrityError as e:
                failure = e
        raise failure or IntegrityError(f"blob {ref.blob_id.hex()} is not in any index")

    def _load_stored(self, ref: Ref, location: Location) -> bytes:
        pack_name = location.pack_id.hex()
        try:
            stored = self.backend.load("data", pack_name, location.offset, location.length)
        except NotFound:
            raise IntegrityError(f"missing (needed for blob {ref.blob_id.hex()})") from None
        if len(stored) != location.length:
            raise IntegrityError("truncated")
        return stored

    def read_stream(self, btype: int, refs: list[Ref]) -> bytes:
        return b"".join(self.read_blob(btype, ref) for ref in refs)

    def root_listing(self, snapshot: SnapshotInfo) -> list[Node]:
        """The nodes at "/" of a snapshot (for a share: the shared folder)."""
        if snapshot.shared_root is not None:
            return list(snapshot.shared_root)
        return self.load_tree(snapshot.manifest.root)

    def load_tree(self, refs: list[Ref]) -> list[Node]:
        data = self.read_stream(TREE, refs)
        what = f"tree {refs[0].blob_id.hex()[:16]}" if refs else "empty tree"
        return decode_tree(data, what) if refs else []

    # -- snapshots -------------------------------------------------------------------

    def list_snapshots(
        self,
        target: str | None = None,
        on_error: Callable[[NeostoreError], None] | None = None,
    ) -> list[SnapshotInfo]:
        """Readable snapshots of one or every target, oldest first."""
        names = [target] if target else self.target_names()
        records = {name: self.target(name) for name in names}
        if self.role == "share":
            from ..shares.sharing import order_shared, shared_snapshots

            return order_shared(shared_snapshots(self, on_error))
        for record in records.values():
            self.require_reader(record)
        wanted = set(names)
        found: list[SnapshotInfo] = []
        for object_name, _ in self.backend.list("snapshots"):
            tname, _, sid = object_name.partition("/")
            if tname not in wanted:
                continue
            try:
                found.append(self.load_snapshot(records[tname], sid))
            except NeostoreError as e:
                if on_error is None:
                    raise
                on_error(e)
        return chain_order(found)

    def load_snapshot(self, record: TargetRecord, hex_id: str) -> SnapshotInfo:
        what = f"snapshot {record.name}/{hex_id}"
        stored = self.backend.load("snapshots", f"{record.name}/{hex_id}")
        if crypto.object_hash(stored).hex() != hex_id:
            raise IntegrityError(f"{what}: content does not match its name")
        manifest, by_owner = open_manifest(
            stored,
            what=what,
            target_sk=self.target_secret(record),
            repo_id=self.repo_id,
            owner_vk=self.material.owner_vk,
            target_id=record.target_id,
        )
        return SnapshotInfo(bytes.fromhex(hex_id), record.name, manifest, by_owner=by_owner)

    def find_snapshot(self, spec: str, target: str | None) -> SnapshotInfo:
        """Resolve ``latest``, a full id or a unique prefix of at least 4 hex digits."""
        if spec == "latest":
            name = target or self.default_target
            snapshots = self.list_snapshots(name, on_error=self.on_problem)
            if self.role == "share":
                from ..shares.sharing import shared_rollback

                problem = shared_rollback(self, snapshots)
                if problem is not None:
                    raise IntegrityError(f"{problem}; name a snapshot id to proceed")
            else:
                self._refuse_rollback(self.target(name), snapshots)
            if not snapshots:
                raise NotFound(f"target {name!r} has no snapshots")
            return snapshots[-1]
        spec = spec.lower()
        if len(spec) < 4 or any(c not in "0123456789abcdef" for c in spec):
            raise UsageError(
                f"{spec!r}: give `latest`, a snapshot id or a prefix of ≥ 4 hex digits"
            )
        if target is not None:
            self.target(target)  # a target this key may not use: refused here
        if self.role == "share":
            shared = [i for i in self.list_snapshots() if i.hex_id.startswith(spec)]
            if len(shared) != 1:
                if shared:
                    raise UsageError(f"{spec!r} matches {len(shared)} snapshots; give more digits")
                raise NotFound(f"no snapshot matches {spec!r}")
            return shared[0]
        wanted = {target} if target else set(self.target_names())
        matches = []
        for object_name, _ in self.backend.list("snapshots"):
            tname, _, sid = object_name.partition("/")
            if sid.startswith(spec) and tname in wanted:
                matches.append((tname, sid))
        if not matches:
            raise NotFound(f"no snapshot matches {spec!r}")
        if len(matches) > 1:
            raise UsageError(f"{spec!r} matches {len(matches)} snapshots; give more digits")
        tname, sid = matches[0]
        return self.load_snapshot(self.target(tname), sid)

    def _refuse_rollback(self, record: TargetRecord, snapshots: list[SnapshotInfo]) -> None:
        """``latest`` must not quietly fall back to an older snapshot when the
        store hides the newest one this machine has seen."""
        from ..lifecycle.forget import forgotten

        newest: dict[bytes, int] = {}
        for info in snapshots:
            m = info.manifest
            newest[m.writer_id] = max(newest.get(m.writer_id, 0), m.seq)
        present = {info.snapshot_id for info in snapshots}
        gone: dict[bytes, Any] | None = None
        for writer_id, (seq, sid) in localstate.seen_heads(self.repo_id, record.target_id).items():
            if newest.get(writer_id, 0) < seq:
                gone = forgotten(self, record) if gone is None else gone
                # the owner forgot it: the newest snapshot it kept before it must be here
                kept: bytes | None = sid
                for _ in range(len(gone) + 1):
                    if kept is None or kept not in gone:
                        break
                    kept = gone[kept].prev
                if sid in gone and (kept is None or kept in present):
                    continue
                raise IntegrityError(
                    f"target {record.name}: snapshot #{seq} of writer {writer_id.hex()[:8]} was "
                    "seen before and is missing now (rolled back or hidden); name a snapshot "
                    "id to proceed"
                )

    def save_snapshot(self, record: TargetRecord, manifest: Manifest) -> bytes:
        snapshot_id, stored = seal_manifest(manifest, self.writer, record.seal_pk)
        self.backend.save("snapshots", f"{record.name}/{snapshot_id.hex()}", stored)
        localstate.record_chain_head(
            self.repo_id, record.target_id, manifest.writer_id, manifest.seq, snapshot_id
        )
        if not self.can_read(record):
            from ..snapshots.heads import save_head

            try:
                save_head(self, record, manifest.seq, snapshot_id)
            except NeostoreError as e:
                self.on_problem(NeostoreError(f"snapshot saved; its chain head copy not: {e}"))
        return snapshot_id

    def chain_head(
        self, record: TargetRecord, snapshots: list[SnapshotInfo]
    ) -> tuple[int, bytes | None]:
        """This key's last (seq, snapshot id) in a target, from local state and
        from the target's snapshots (when this key can read them)."""
        local = localstate.chain_head(self.repo_id, record.target_id, self.material.key_id)
        best: tuple[int, bytes | None] = local or (0, None)
        if local is None and not self.can_read(record):
            from ..snapshots.heads import recover_head

            try:
                stored = recover_head(self, record)
            except NeostoreError as e:
                self.on_problem(NeostoreError(f"chain head not recovered, starting anew: {e}"))
                stored = None
            if stored is not None and stored[0] > best[0]:
                best = stored
        for info in snapshots:
            if info.manifest.writer_id == self.material.key_id and info.manifest.seq > best[0]:
                best = (info.manifest.seq, info.snapshot_id)
        return best


def _raise(error: NeostoreError) -> None:
    raise error


def chain_order(snapshots: list[SnapshotInfo]) -> list[SnapshotInfo]:
    """Oldest first. A writer's own sequence numbers are authoritative, and
    a claimed time is trusted no further than "now" and no later than the
    moment the writer's next manifest was made, so a future timestamp
    cannot make a snapshot `latest`. A manifest that rewrote an older
    snapshot (tag, repair, copy) keeps that snapshot's time and place; it
    bounds the writer's earlier manifests only by when it was written."""
    effective: dict[bytes, int] = {}
    now = time.time_ns()
    by_writer: dict[bytes, list[SnapshotInfo]] = {}
    for info in snapshots:
        by_writer.setdefault(info.manifest.writer_id, []).append(info)
    for infos in by_writer.values():
        bound = time.time_ns()
        for info in sorted(infos, key=lambda i: i.manifest.seq, reverse=True):
            effective[info.snapshot_id] = min(bound, info.manifest.time_ns)
            bound = min(bound, info.manifest.made_ns)
    # on a tie a replacement follows what it replaced (and a later
    # replacement an earlier one); otherwise the writer's seq decides
    return sorted(
        snapshots,
        key=lambda i: (
            effective[i.snapshot_id],
            min(i.manifest.rewritten_ns or 0, now),
            i.manifest.seq,
        ),
    )


def _check_sizes(config: Config) -> None:
    if not (64 <= config.chunk_min <= config.chunk_avg <= config.chunk_max <= 16 * 1024 * 1024):
        raise UsageError("chunk sizes must satisfy 64 ≤ min ≤ avg ≤ max ≤ 16 MiB")
    if config.chunk_min > 1024 * 1024 or config.chunk_max < 1024:
        raise UsageError("chunk min must be ≤ 1 MiB and max ≥ 1 KiB")
    if not (1024 <= config.pack_size <= 1024 * 1024 * 1024):
        raise UsageError("pack size must be between 1 KiB and 1 GiB")


def open_with_password(
    backend: Backend, password: bytes, first: str | None = None
) -> keys.KeyMaterial:
    """The key material of the first key file the password opens (each try
    costs one Argon2id run); key file ``first`` is tried before the others."""
    names = sorted(name for name, _ in backend.list("keys"))
    if first in names:
        names.remove(first)
        names.insert(0, first)
    if not names:
        raise IntegrityError("repository has no key files")
    tampered: TamperedKeyFile | None = None
    malformed: list[str] = []
    for name in names:
        try:
            material = keys.open_keyfile(backend.load("keys", name), name, password)
        except TamperedKeyFile as e:
            tampered = tampered or e
            continue
        except WrongPassword:
            continue
        except IntegrityError:
            malformed.append(name[:8])
            continue
        if material.key_id.hex() != name:
            tampered = tampered or TamperedKeyFile(
                f"key file {name[:8]} claims to be key {material.key_id.hex()[:8]}; refusing it"
            )
            continue
        return material
    if tampered is not None:
        raise tampered
    if malformed:
        raise WrongPassword(
            "wrong password: no key file opens with it (malformed key file(s), "
            f"maybe tampered: {', '.join(malformed)})"
        )
    raise WrongPassword("wrong password: no key file opens with it")


def default_host_user() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return socket.gethostname(), user


def iter_tree(
    repo: Repository, refs: list[Ref], prefix: bytes = b""
) -> Iterator[tuple[bytes, Node]]:
    """Depth-first walk yielding (absolute path, node)."""
    for node in repo.load_tree(refs):
        path = prefix + b"/" + node.name
        yield path, node
        if node.type == "d":
            yield from iter_tree(repo, node.subtree, path)
