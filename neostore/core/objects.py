"""Where every object of a repository lives, and the one way to reach them.

An :class:`Address` is an object type and a name. The functions here build
every name the repository uses (``snapshots/<target>/<id>``,
``data/<pack id>`` …), so no other module spells one. :class:`ObjectStore`
is the only caller of a :class:`~neostore.backend.Backend` above the
backend wrappers: it checks that content-addressed objects hash to their
name when asked to, and lists the objects of one target or share without
every caller splitting names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..backend.base import Backend, ObjectStream, Payload
from ..backend.names import ObjectType, content_hash
from ..errors import IntegrityError, NotFound
from ..format import crypto

#: how messages name an object of each type
_KIND = {
    ObjectType.CONFIG: "config",
    ObjectType.KEYS: "key file",
    ObjectType.TARGETS: "target record",
    ObjectType.DATA: "pack",
    ObjectType.INDEX: "index file",
    ObjectType.SNAPSHOTS: "snapshot",
    ObjectType.SHARELISTS: "share list",
    ObjectType.SHARES: "share object",
    ObjectType.FORGET: "forget record",
    ObjectType.HEADS: "chain head",
    ObjectType.LOCKS: "lock",
}


@dataclass(frozen=True, slots=True)
class Address:
    otype: ObjectType
    name: str

    @property
    def what(self) -> str:
        """How a message names the object: ``snapshot default/3f…``."""
        if self.otype == ObjectType.CONFIG:
            return "config"
        return f"{_KIND[self.otype]} {self.name}"

    @property
    def leaf(self) -> str:
        """The last segment of the name (a snapshot's id, a pack's id …)."""
        return self.name.rsplit("/", 1)[-1]


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


CONFIG = Address(ObjectType.CONFIG, "config")


def key_file(key_id: bytes | str) -> Address:
    return Address(ObjectType.KEYS, _hex(key_id))


def target_record(target: str) -> Address:
    return Address(ObjectType.TARGETS, target)


def pack(pack_id: bytes | str) -> Address:
    return Address(ObjectType.DATA, _hex(pack_id))


def index_file(name: bytes | str) -> Address:
    return Address(ObjectType.INDEX, _hex(name))


def snapshot(target: str, snapshot_id: bytes | str) -> Address:
    return Address(ObjectType.SNAPSHOTS, f"{target}/{_hex(snapshot_id)}")


def sharelist(target: str, leaf: str) -> Address:
    return Address(ObjectType.SHARELISTS, f"{target}/{leaf}")


def share_object(share: str, leaf: str) -> Address:
    return Address(ObjectType.SHARES, f"{share}/{leaf}")


def forget_record(target: str, leaf: str) -> Address:
    return Address(ObjectType.FORGET, f"{target}/{leaf}")


def head(target: str, leaf: str) -> Address:
    return Address(ObjectType.HEADS, f"{target}/{leaf}")


#: two-segment types, and the builder of an address in one group
_GROUPED = {
    ObjectType.SNAPSHOTS: snapshot,
    ObjectType.SHARELISTS: sharelist,
    ObjectType.SHARES: share_object,
    ObjectType.FORGET: forget_record,
    ObjectType.HEADS: head,
}


class ObjectStore:
    """Typed access to the objects of one repository. Thread-safe as the
    backend is; errors are the backend's (:class:`~neostore.errors.NotFound`,
    transient or permanent backend errors) plus
    :class:`~neostore.errors.IntegrityError` from :meth:`load_verified`."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    @property
    def location(self) -> str:
        return self._backend.location

    @property
    def batch_reads(self) -> bool:
        """A request costs more than reading a few hundred KiB more (a
        server): readers fetch neighbouring blobs in one range read."""
        return self._backend.batch_reads

    def exists_repository(self) -> bool:
        return self._backend.exists_repository()

    def create_repository(self) -> None:
        self._backend.create_repository()

    # -- single objects --------------------------------------------------------

    def load(self, address: Address, offset: int = 0, length: int | None = None) -> bytes:
        return self._backend.load(address.otype, address.name, offset, length)

    def load_verified(self, address: Address) -> bytes:
        """The whole object; for a content-addressed one, checked against
        its name (a store that swapped it is caught here)."""
        data = self.load(address)
        expected = content_hash(address.otype, address.name)
        if expected is not None and crypto.object_hash(data).hex() != expected:
            raise IntegrityError(f"{address.what}: content does not match its name")
        return data

    def save(self, address: Address, data: Payload) -> None:
        self._backend.save(address.otype, address.name, data)

    def save_new(self, address: Address, data: Payload) -> bool:
        """Create only: False (and nothing changed) when the name is taken."""
        return self._backend.save_new(address.otype, address.name, data)

    def save_addressed(self, otype: ObjectType, group: str | None, data: bytes) -> Address:
        """Save a content-addressed object under the hash of its bytes (in
        ``group``: the target or share of a two-segment type)."""
        digest = crypto.object_hash(data).hex()
        address = Address(otype, digest) if group is None else _GROUPED[otype](group, digest)
        self.save(address, data)
        return address

    def remove(self, address: Address, missing_ok: bool = False) -> None:
        try:
            self._backend.remove(address.otype, address.name)
        except NotFound:
            if not missing_ok:
                raise

    def exists(self, address: Address) -> bool:
        return self._backend.exists(address.otype, address.name)

    def size(self, address: Address) -> int:
        return self._backend.size(address.otype, address.name)

    def create_stream(self, otype: ObjectType) -> ObjectStream:
        """An object written piece by piece, named at commit (packs)."""
        return self._backend.create_stream(otype)

    # -- listings --------------------------------------------------------------

    def list(self, otype: ObjectType) -> dict[str, int]:
        """Name → size of every object of a type."""
        return dict(self._backend.list(otype))

    def temporaries(self) -> dict[str, int]:
        """What interrupted writes left in the store: path → mtime (ns)."""
        return dict(self._backend.temporaries())

    def remove_temporary(self, path: str) -> None:
        self._backend.remove_temporary(path)

    def addresses(self, otype: ObjectType) -> Iterator[tuple[Address, int]]:
        for name, size in self._backend.list(otype):
            yield Address(otype, name), size

    def list_group(self, otype: ObjectType, group: str) -> dict[str, int]:
        """Leaf → size of the objects of one target or share (two-segment types)."""
        prefix = f"{group}/"
        return {
            name[len(prefix) :]: size
            for name, size in self._backend.list(otype)
            if name.startswith(prefix)
        }
