"""The repository core: an open repository, the key in use and what it may
do, targets and their dedup domains, the index, and blob access.

Opening verifies, in order: the format version in ``config``; a key file
that the password opens; the config signature against the owner key carried
in that key file; the local pin of (repo_id, owner_vk, config_version).

Everything about snapshots (listing, order, chains, forget records) lives
above this module (:mod:`neostore.snapshots`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..backend.base import Backend
from ..backend.names import ObjectType, is_valid_target_name
from ..errors import (
    IntegrityError,
    NeostoreError,
    NotFound,
    PermissionDenied,
    RepositoryNotFound,
    TamperingDetected,
    UsageError,
)
from ..format import crypto
from ..format import keyfile as keys
from ..format.config import Config, decode_config, encode_config, verify_config
from ..format.indexfile import PackRecord, condemned_by, decode_index, entries_trusted
from ..format.keyfile import Role
from ..format.pack import PackEntry, header_length, open_header
from ..format.roles import RoleSecrets, describe, role_secrets
from ..format.signed import Envelope
from ..format.targets import (
    Domain,
    TargetRecord,
    decode_target,
    domain_secret,
    encode_target,
    new_target,
    sharelist_key,
    target_seal_secret,
)
from ..format.writer import WriterIdentity
from . import localstate, objects
from .blobs import BlobReader
from .index import MasterIndex
from .objects import ObjectStore
from .unlock import open_with_password

DEFAULT_TARGET = "default"


class Repository:
    def __init__(self, store: ObjectStore, config: Config, material: keys.KeyMaterial) -> None:
        self.objects = store
        self.config = config
        self.material = material
        self.repo_id = config.repo_id
        self.index = MasterIndex()
        self.blobs = BlobReader(store, self.index, config.repo_id, config.chunk_max)
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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """What a spawned worker gets (:mod:`.workerstart`): the store's
        recipe, the config, the unlocked key material (no Argon2id again),
        the targets and domains met so far and the index as loaded. It
        crosses the pipe to the worker, never argv or the environment."""
        state = (dict(self._targets), dict(self._domains), set(self._index_loaded))
        return (_revive, (self.objects, self.config, self.material, self.index, state))

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
        store = ObjectStore(backend)
        if store.exists_repository():
            raise UsageError(f"{store.location}: a repository already exists there")
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
            role=Role.OWNER,
            repo_id=repo_id,
            owner_vk=owner.verify_key,
            owner_seed=owner.seed,
            master=os.urandom(32),
            writer_seed=os.urandom(32),
        )
        store.create_repository()
        store.save(objects.key_file(material.key_id), keys.encode_keyfile(material, password, kdf))
        repo = cls(store, config, material)
        repo.ensure_target(DEFAULT_TARGET)
        # config last: a repository "exists" only once everything else is in place
        store.save(objects.CONFIG, encode_config(config, owner))
        localstate.pin_config(repo_id, owner.verify_key, config.config_version)
        return repo

    @classmethod
    def open(
        cls,
        backend: Backend,
        password: bytes,
        on_problem: Callable[[NeostoreError], None] | None = None,
    ) -> Repository:
        """Open with the key file ``password`` opens; malformed key files on
        the way are skipped and reported to ``on_problem`` (which becomes
        the repository's :attr:`on_problem`)."""
        store = ObjectStore(backend)
        if not store.exists_repository():
            raise RepositoryNotFound(f"{store.location}: no repository there")
        raw_config = store.load(objects.CONFIG)
        claimed, _, _ = decode_config(raw_config)  # refuses newer formats before the KDF
        # the key file this machine opened last is tried first: one KDF, not one per key file
        # (the claimed repo id only orders the attempts; everything is verified below)
        hint = localstate.key_hint(claimed.repo_id)
        material = open_with_password(store, password, first=hint, on_problem=on_problem)
        config = verify_config(raw_config, material.owner_vk)
        if config.repo_id != material.repo_id:
            raise IntegrityError("config: repository id does not match the key file")
        _check_sizes(config)
        localstate.check_config_pin(config.repo_id, config.owner_vk, config.config_version)
        if hint != material.key_id.hex():
            localstate.record_key_hint(config.repo_id, material.key_id.hex())
        repo = cls(store, config, material)
        if on_problem is not None:
            repo.on_problem = on_problem
        return repo

    # -- roles -----------------------------------------------------------------

    @property
    def role(self) -> Role:
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

    @property
    def share_secrets(self) -> RoleSecrets:
        """What a share key holds (its share's id, name, path and secret)."""
        if self.role != Role.SHARE or self._roles.share_sk is None:
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
            if self.role != Role.OWNER and name != self.material.target:
                raise self.deny(
                    f"target {name!r}", f"an owner key or a key made for target {name!r}"
                )
            if self.role == Role.SHARE:
                # share holders may not see the target record (server scope)
                # and need nothing from it but the domain their key names
                return self._share_record(name)
            try:
                data = self.objects.load(objects.target_record(name))
            except NotFound:
                raise NotFound(f"target {name!r} does not exist") from None
            record = decode_target(data, name, self.repo_id, self.material.owner_vk)
            if self.role != Role.OWNER and record.target_id != self._roles.target_id:
                raise TamperingDetected(
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
        return sorted(self.objects.list(ObjectType.TARGETS))

    def ensure_target(self, name: str) -> TargetRecord:
        try:
            return self.target(name)
        except NotFound:
            if localstate.pinned_target(self.repo_id, name) is not None:
                raise TamperingDetected(
                    f"target {name!r} existed when this machine last looked and is now gone "
                    "(deleted or hidden by the store)"
                ) from None
        owner = self.require_owner(f"creating target {name!r}")
        assert self.material.master is not None
        record = new_target(name, self.material.master)
        encoded = encode_target(record, self.repo_id, owner)
        if not self.objects.save_new(objects.target_record(name), encoded):
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
        address = objects.index_file(name)
        return decode_index(
            self.objects.load_verified(address),
            what=address.what,
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
        deduped against. Files are read in name order, so the copy of a blob
        that a reader tries first does not depend on the store's listing."""
        if names is None:
            names = self.objects.list(ObjectType.INDEX)
        wanted = sorted(n for n in names if n not in self._index_loaded)
        loaded: list[tuple[str, Envelope, list[PackRecord]]] = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {pool.submit(self.read_index_file, n): n for n in wanted}
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

    def index_files_gone(self, listed: Iterable[str]) -> bool:
        """Whether an index file loaded before is missing from ``listed``
        (deleted since by a prune's sweep, or ``repair index``)."""
        return not self._index_loaded <= set(listed)

    def reset_index(self) -> None:
        """Forget the loaded index; the next :meth:`load_index` reads it all."""
        self.index.clear()
        self._index_loaded = set()

    def note_index_written(self, name: str) -> None:
        self._index_loaded.add(name)

    # -- packs ---------------------------------------------------------------------

    def pack_header(
        self, name: str, size: int | None = None
    ) -> tuple[Envelope, list[PackEntry], bytes]:
        """A pack's signed header (envelope, entries, blob-region hash),
        read with two range reads and verified."""
        address = objects.pack(name)
        what = address.what
        if size is None:
            size = self.objects.size(address)
        if size < 4:
            raise IntegrityError(f"{what}: too short")
        length = header_length(self.objects.load(address, size - 4, 4), size, what)
        opened = open_header(
            self.objects.load(address, size - 4 - length, length),
            what=what,
            repo_id=self.repo_id,
            owner_vk=self.material.owner_vk,
            domain_for=self.domain_for,
        )
        if opened is None:
            raise IntegrityError(f"{what}: of a domain this key cannot read")
        return opened


def _revive(
    store: ObjectStore,
    config: Config,
    material: keys.KeyMaterial,
    index: MasterIndex,
    state: tuple[dict[str, TargetRecord], dict[tuple[bytes, int], Domain], set[str]],
) -> Repository:
    repo = Repository(store, config, material)
    repo.index = index
    repo.blobs = BlobReader(store, index, config.repo_id, config.chunk_max)
    repo._targets, repo._domains, repo._index_loaded = state
    return repo


def _raise(error: NeostoreError) -> None:
    raise error


def _check_sizes(config: Config) -> None:
    if not (64 <= config.chunk_min <= config.chunk_avg <= config.chunk_max <= 16 * 1024 * 1024):
        raise UsageError("chunk sizes must satisfy 64 ≤ min ≤ avg ≤ max ≤ 16 MiB")
    if config.chunk_min > 1024 * 1024 or config.chunk_max < 1024:
        raise UsageError("chunk min must be ≤ 1 MiB and max ≥ 1 KiB")
    if not (1024 <= config.pack_size <= 1024 * 1024 * 1024):
        raise UsageError("pack size must be between 1 KiB and 1 GiB")
