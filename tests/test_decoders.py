"""Structure-aware fuzzing of every decoder in neostore.format.

Each case draws a VALID object with hypothesis, encodes it with the real
encoder and checks that the decoder gives it back (so the inputs provably
start out valid), then makes a few mutants of it, each mutating one *level*
of it, and decodes them.
A level is one layer of the stored object (the stored bytes, a signed body,
the plaintext inside a seal ...) together with the way to rebuild the
stored object from a mutated copy, re-signing and re-sealing with the test
keys: a mutated body is signed again, so the mutation reaches the decoder's
field checks instead of stopping at the signature.

Mutations are byte-level (flip, truncate, append, insert, delete) or, on
msgpack levels, structural at any depth (drop a field, retype a value
int/bytes/str/list/dict/None/bool/float, an extreme integer, an empty or
overlong byte string, an extra field or element).

The property: the decoder returns a value or raises IntegrityError; never
TypeError, KeyError, struct.error, a msgpack or nacl error, ... The few
documented other outcomes (a newer format version, a wrong password) are
allowed where they are designed. The inputs that made decoders crash
before issue 15 fixed them are kept at the end, each as it was found.
"""

from __future__ import annotations

import copy
import functools
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_format import DOMAIN, MASTER, OWNER, REPO_ID, TARGET_ID, WRITER, domain_for

from neostore.errors import IntegrityError, UnsupportedFormat, WrongPassword
from neostore.format import crypto, keyfile
from neostore.format.blob import Ref, blob_ad, decrypt_blob, encrypt_blob, make_ref
from neostore.format.codec import pack, unpack
from neostore.format.config import (
    FORMAT_VERSION,
    Config,
    decode_config,
    encode_config,
    verify_config,
)
from neostore.format.forget import Forgotten, decode_record, encode_record
from neostore.format.indexfile import PackRecord, condemned_by, decode_index, encode_index
from neostore.format.keyfile import (
    FLOOR_KDF,
    KeyFileHeader,
    KeyMaterial,
    Role,
    decode_keyfile_header,
    encode_keyfile,
    open_keyfile,
)
from neostore.format.manifest import Manifest, open_manifest, seal_manifest
from neostore.format.pack import (
    MAX_HEADER,
    PackBuilder,
    PackEntry,
    decode_entries,
    header_length,
    open_header,
)
from neostore.format.roles import make_role_material, make_share_material
from neostore.format.shares import (
    Capability,
    Share,
    ShareList,
    Withdrawal,
    decode_sharelist,
    encode_sharelist,
    open_cap,
    open_withdrawal,
    seal_cap,
    seal_withdrawal,
    unseal_share_object,
)
from neostore.format.signed import Envelope, open_envelope, seal_envelope
from neostore.format.targets import (
    DATA,
    TREE,
    TargetRecord,
    decode_target,
    encode_target,
    sharelist_key,
    target_seal_secret,
)
from neostore.format.tree import (
    BLOCKDEV,
    CHARDEV,
    DIR,
    FILE,
    NODE_TYPES,
    SYMLINK,
    Node,
    decode_node,
    decode_tree,
    encode_tree,
    valid_name,
)
from neostore.format.writer import WriterIdentity, delegated_cert

# -- test keys (besides test_format's) -------------------------------------------------

#: a delegated writer (a writer key's certificate, not an owner's own writer)
_DELEGATE_SK = crypto.SigningKey(b"g" * 32)
DELEGATE = WriterIdentity(
    b"q" * 16,
    _DELEGATE_SK,
    certs={
        (TARGET_ID, DOMAIN.epoch): delegated_cert(
            OWNER, REPO_ID, TARGET_ID, b"q" * 16, _DELEGATE_SK.verify_key, DOMAIN.epoch
        )
    },
)
WRITERS = st.sampled_from([WRITER, DELEGATE])
SEAL_SK = target_seal_secret(MASTER, TARGET_ID)
SEAL_PK = crypto.box_public_key(SEAL_SK)
RECORD = TargetRecord("docs", TARGET_ID, SEAL_PK, DOMAIN.domain_id, DOMAIN.epoch, 1)
SHARE_SK = b"h" * 32
SHARE = Share(b"s" * 16, "friends", crypto.box_public_key(SHARE_SK), b"/docs", 1)
PASSWORD = b"fuzz password"

# -- levels, samples and mutants ---------------------------------------------------------


def _same(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class Level:
    """One layer of a stored object: its valid encoding, and how to build the
    stored object from a (mutated) copy of it."""

    name: str
    encoded: bytes
    build: Callable[[bytes], bytes] = _same
    #: msgpack, so structural mutations apply (byte mutations always do)
    structured: bool = True

    def __repr__(self) -> str:
        return f"Level({self.name!r})"


@dataclass(frozen=True)
class Sample:
    """A valid object: what the decoder must return for ``stored``, the
    levels it can be mutated at, and what the decoder needs to know."""

    value: Any
    stored: bytes
    levels: tuple[Level, ...]
    ctx: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Sample({self.value!r})"


@dataclass(frozen=True)
class Mutant:
    level: Level
    ops: tuple[str, ...]
    encoded: bytes  # the mutated level
    stored: bytes  # the stored object rebuilt from it

    def __repr__(self) -> str:
        shown = self.stored.hex()
        shown = shown if len(shown) <= 400 else shown[:400] + "..."
        return f"Mutant(level={self.level.name!r}, ops={list(self.ops)}, stored={shown})"


#: replacements of another type (compared by their msgpack encoding, so True != 1)
ODD_VALUES: tuple[Any, ...] = (
    0,
    1,
    -1,
    2**64 - 1,
    b"",
    b"\x00" * 32,
    "",
    "x",
    "0" * 64,
    [],
    [0],
    {},
    {"k": b""},
    None,
    True,
    False,
    1.5,
)
EXTREME_INTS = (-1, -(2**63), 2**63, 2**64 - 1)
OVERLONG = (b"\xa5" * 33, b"\xa5" * 65, b"\xa5" * 70_000)


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, (*prefix, i))
    return out


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def _replace(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _at(root, path[:-1])[path[-1]] = value
    return root


@st.composite
def _structural(draw: st.DrawFn, encoded: bytes) -> tuple[bytes, tuple[str, ...]]:
    obj = msgpack.unpackb(encoded, raw=False, strict_map_key=False)
    ops: list[str] = []
    count = draw(st.integers(1, 2))
    # one or two mutations, and more if they happened to cancel out
    while len(ops) < count or (pack(obj) == encoded and len(ops) < 8):
        # a depth first, then a place at that depth: the fields of a body are
        # picked as often as the elements of its many nested references
        paths = _paths(obj)
        depth = draw(st.sampled_from(sorted({len(p) for p in paths})))
        path = draw(st.sampled_from([p for p in paths if len(p) == depth]))
        current = _at(obj, path)
        kinds = ["retype", "int", "bytes"]
        if path:
            kinds.append("drop")
        if isinstance(current, dict | list):
            kinds.append("add")
        kind = draw(st.sampled_from(kinds))
        if kind == "drop":
            del _at(obj, path[:-1])[path[-1]]
            ops.append(f"drop {list(path)}")
            continue
        if kind == "add":
            extra = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
            if isinstance(current, dict):
                current["zz-unknown"] = extra
            elif current and draw(st.booleans()):  # a second copy of an element
                current.append(copy.deepcopy(current[0]))
            else:
                current.append(extra)
            ops.append(f"add to {list(path)}")
            continue
        if kind == "retype":
            choices = [v for v in ODD_VALUES if _kind(v) != _kind(current)]
        elif kind == "int":
            choices = [v for v in EXTREME_INTS if pack(v) != pack(current)]
        else:
            choices = [*OVERLONG, b""]
            if isinstance(current, bytes) and current:
                choices += [current[:-1], current + b"\x00"]
            choices = [v for v in choices if pack(v) != pack(current)]
        value = copy.deepcopy(draw(st.sampled_from(choices)))
        obj = _replace(obj, path, value)
        shown = repr(value) if len(repr(value)) < 40 else f"{_kind(value)} of {len(value)}"
        ops.append(f"{kind} {list(path)} -> {shown}")
    return pack(obj), tuple(ops)


@st.composite
def _bytewise(draw: st.DrawFn, encoded: bytes) -> tuple[bytes, tuple[str, ...]]:
    data = bytearray(encoded)
    ops: list[str] = []
    count = draw(st.integers(1, 2))
    # one or two mutations, and more if they happened to cancel out (a flip undone)
    while len(ops) < count or (data == encoded and len(ops) < 8):
        kind = draw(st.sampled_from(["flip", "truncate", "append", "insert", "delete"]))
        if kind in ("flip", "truncate", "delete") and not data:
            kind = "append"
        if kind == "flip":
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
            ops.append(f"flip byte {at}")
        elif kind == "truncate":
            keep = draw(st.integers(0, len(data) - 1))
            del data[keep:]
            ops.append(f"truncate to {keep}")
        elif kind == "delete":
            at = draw(st.integers(0, len(data) - 1))
            span = draw(st.integers(1, 16))
            del data[at : at + span]
            ops.append(f"delete {span} at {at}")
        else:
            extra = draw(st.binary(min_size=1, max_size=40))
            at = len(data) if kind == "append" else draw(st.integers(0, len(data)))
            data[at:at] = extra
            ops.append(f"{kind} {extra.hex()} at {at}")
    return bytes(data), tuple(ops)


@st.composite
def mutants(draw: st.DrawFn, sample: Sample) -> Mutant:
    level = draw(st.sampled_from(sample.levels))
    structural = level.structured and draw(st.integers(0, 2)) > 0
    encoded, ops = draw(_structural(level.encoded) if structural else _bytewise(level.encoded))
    return Mutant(level, ops, encoded, level.build(encoded))


def _loads(data: bytes) -> Any:
    """``data`` unpacked as the decoders do, or ``_MALFORMED``."""
    try:
        return unpack(data, "test")
    except IntegrityError:
        return _MALFORMED


_MALFORMED = object()

# -- the property ---------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """An outcome other than IntegrityError that is allowed for the inputs
    ``applies`` accepts: a designed error."""

    raises: tuple[type[BaseException], ...]
    applies: Callable[[Sample, bytes], bool]


def _always(sample: Sample, stored: bytes) -> bool:
    return True


@dataclass(frozen=True)
class Case:
    name: str
    samples: st.SearchStrategy[Sample]
    #: decodes a stored object; for an unmutated one the result is ``expect(sample)``
    decode: Callable[[Sample, bytes], Any]
    expect: Callable[[Sample], Any] = lambda sample: sample.value
    allowed: tuple[Allowed, ...] = ()
    examples: int = 250
    #: drop mutants the decoder would spend a lot on by design (costly Argon2id)
    admit: Callable[[Sample, bytes], bool] = _always

    def __repr__(self) -> str:
        return self.name


CRYPTO_FAILURES = (
    "signature does not verify",
    "authentication failed",
    "cannot be opened",
    "too short to be an encrypted object",
)


def _outcome(case: Case, sample: Sample, stored: bytes) -> str:
    """Decode and classify: "decoded", "crypto" (stopped by a signature or
    seal), "parsed" (an IntegrityError of the parser) or "allowed"."""
    try:
        case.decode(sample, stored)
    except IntegrityError as e:
        return "crypto" if any(text in str(e) for text in CRYPTO_FAILURES) else "parsed"
    except Exception as e:
        for rule in case.allowed:
            if isinstance(e, rule.raises) and rule.applies(sample, stored):
                return "allowed"
        raise
    return "decoded"


def _with_mutants(
    samples: st.SearchStrategy[Sample],
) -> st.SearchStrategy[tuple[Sample, list[Mutant]]]:
    """A valid sample and a few mutants of it (independent of each other)."""
    return samples.flatmap(
        lambda s: st.lists(mutants(s), min_size=1, max_size=4).map(lambda ms: (s, ms))
    )


def _fuzz(case: Case) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=case.examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(_with_mutants(case.samples))
    def run(drawn: tuple[Sample, list[Mutant]]) -> None:
        sample, mutated = drawn
        # the unmutated object is valid: it decodes back to what was encoded
        assert case.decode(sample, sample.stored) == case.expect(sample)
        for mutant in mutated:
            if not case.admit(sample, mutant.stored):
                outcomes["not admitted"] += 1
                continue
            # the mutation did change the level it was applied to, and so
            # the stored object the decoder sees
            assert mutant.encoded != mutant.level.encoded, mutant
            assert mutant.stored != sample.stored, mutant
            outcomes[_outcome(case, sample, mutant.stored)] += 1

    run()
    return outcomes


# -- config -----------------------------------------------------------------------------

U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
B16 = st.binary(min_size=16, max_size=16)
B32 = st.binary(min_size=32, max_size=32)
TEXT = st.text(max_size=12)


@st.composite
def configs(draw: st.DrawFn) -> Sample:
    config = Config(
        repo_id=draw(B16),
        owner_vk=OWNER.verify_key,
        config_version=draw(st.integers(1, 2**32)),
        chunk_min=draw(U64),
        chunk_avg=draw(U64),
        chunk_max=draw(U64),
        pack_size=draw(U64),
        created_ns=draw(st.integers(1, 2**63)),
        format_version=draw(st.integers(-(2**63), FORMAT_VERSION)),
    )
    stored = encode_config(config, OWNER)
    body = unpack(stored, "config")[0]

    def signed(b: bytes) -> bytes:
        return pack([b, OWNER.sign(crypto.SIG_CONFIG, b)])

    return Sample(config, stored, (Level("stored", stored), Level("body", body, signed)))


def _newer_format(sample: Sample, stored: bytes) -> bool:
    """UnsupportedFormat is designed for a body whose version is newer."""
    outer = _loads(stored)
    is_pair = isinstance(outer, list) and len(outer) == 2 and isinstance(outer[0], bytes)
    body = _loads(outer[0]) if is_pair else None
    version = body.get("v") if isinstance(body, dict) else None
    return isinstance(version, int) and version > FORMAT_VERSION


NEWER_FORMAT = Allowed((UnsupportedFormat,), _newer_format)

# -- key files --------------------------------------------------------------------------


@functools.cache
def _keyfile(role: Role) -> tuple[KeyMaterial, bytes]:
    """One real key file per role (each costs an Argon2id run, so they are
    made once; the mutations vary)."""
    if role is Role.OWNER:
        material = KeyMaterial(
            key_id=b"k" * 16,
            role=role,
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            owner_seed=OWNER.seed,
            master=MASTER,
            writer_seed=WRITER.signing.seed,
        )
    elif role is Role.SHARE:
        material = make_share_material(
            record=RECORD,
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            master=MASTER,
            share_id=SHARE.share_id,
            share_name=SHARE.name,
            share_sk=SHARE_SK,
            path=SHARE.path,
        )
    else:
        material = make_role_material(
            role=role,
            record=RECORD,
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            owner=OWNER,
            master=MASTER,
        )
    return material, encode_keyfile(material, PASSWORD, FLOOR_KDF)


@st.composite
def keyfiles(draw: st.DrawFn) -> Sample:
    material, stored = _keyfile(draw(st.sampled_from(list(Role))))
    header, sealed = unpack(stored, "key file")
    salt = unpack(header, "key file header")["salt"]
    wrapping = keyfile._wrapping_key(PASSWORD, salt, FLOOR_KDF)
    plain = crypto.aead_decrypt(wrapping, sealed, crypto.AD_KEYFILE + header, "key file")

    def with_header(h: bytes) -> bytes:
        return pack([h, sealed])

    def with_header_resealed(h: bytes) -> bytes:
        return pack([h, crypto.aead_encrypt(wrapping, plain, crypto.AD_KEYFILE + h)])

    def with_material(m: bytes) -> bytes:
        return pack([header, crypto.aead_encrypt(wrapping, m, crypto.AD_KEYFILE + header)])

    levels = (
        Level("stored", stored),
        Level("header", header, with_header),
        Level("header, material sealed to it", header, with_header_resealed),
        Level("material", plain, with_material),
    )
    return Sample(material, stored, levels)


def _header_summary(header: KeyFileHeader) -> tuple[Any, ...]:
    return header.key_id, header.role, header.target, header.params


def _floor_cost(sample: Sample, stored: bytes) -> bool:
    """Admit a key file unless it asks for a costlier Argon2id than the
    floor: accepted by design up to 16 passes over 4 GiB, too slow here
    (the header decoder, run on every such mutant, checks the parsing)."""
    try:
        header, _ = decode_keyfile_header(stored, "k")
    except IntegrityError:
        return True
    return header.params == FLOOR_KDF


def _header_of(stored: bytes) -> Any:
    try:
        return decode_keyfile_header(stored, "k")
    except IntegrityError:
        return None


# -- targets, share lists, capabilities, withdrawals, forget records --------------------


@st.composite
def target_records(draw: st.DrawFn) -> Sample:
    record = TargetRecord(
        name=draw(st.text(min_size=1, max_size=12)),
        target_id=draw(B16),
        seal_pk=draw(B32),
        domain_id=draw(B16),
        epoch=draw(st.integers(0, 2**32 - 1)),
        created_ns=draw(U64),
    )
    stored = encode_target(record, REPO_ID, OWNER)
    body = unpack(stored, "target")[0]

    def signed(b: bytes) -> bytes:
        return pack([b, OWNER.sign(crypto.SIG_TARGET + REPO_ID, b)])

    return Sample(record, stored, (Level("stored", stored), Level("body", body, signed)))


SHARES = st.builds(
    Share,
    share_id=B16,
    name=TEXT,
    public_key=B32,
    path=st.binary(max_size=20),
    created_ns=U64,
    revoked_ns=st.none() | U64,
)
SHARELIST_KEY = sharelist_key(MASTER, TARGET_ID)
SHARELIST_AD = crypto.AD_SHARELIST + REPO_ID + TARGET_ID


@st.composite
def sharelists(draw: st.DrawFn) -> Sample:
    shares = ShareList(draw(U64), draw(U64), tuple(draw(st.lists(SHARES, max_size=3))))
    stored = encode_sharelist(
        shares, key=SHARELIST_KEY, owner=OWNER, repo_id=REPO_ID, target_id=TARGET_ID
    )
    plain = crypto.aead_decrypt(SHARELIST_KEY, unpack(stored, "s")[1], SHARELIST_AD, "s")

    def sealed(p: bytes) -> bytes:
        return pack([1, crypto.aead_encrypt(SHARELIST_KEY, p, SHARELIST_AD)])

    def signed(b: bytes) -> bytes:
        return sealed(pack([b, OWNER.sign(crypto.SIG_SHARELIST + REPO_ID, b)]))

    levels = (
        Level("stored", stored),
        Level("signed list", plain, sealed),
        Level("body", unpack(plain, "s")[0], signed),
    )
    return Sample(shares, stored, levels)


REFS = st.lists(st.builds(Ref, B32, B32, B32, st.integers(0, 2**40)), max_size=3)
NAMES = st.binary(min_size=1, max_size=10).filter(valid_name)


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    ntype = draw(st.sampled_from(NODE_TYPES))
    node = Node(
        name=draw(NAMES),
        type=ntype,
        mode=draw(st.integers(0, 2**32 - 1)),
        uid=draw(U64),
        gid=draw(U64),
        user=draw(st.none() | TEXT),
        group=draw(st.none() | TEXT),
        mtime_ns=draw(I64),
        atime_ns=draw(I64),
        ctime_ns=draw(I64),
        inode=draw(U64),
        device=draw(U64),
        links=draw(st.integers(0, 2**32 - 1)),
        xattrs=draw(st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8))),
    )
    if ntype == FILE:
        node.content = draw(REFS)
        node.size = sum(r.length for r in node.content)
    elif ntype == DIR:
        node.subtree = draw(REFS)
    elif ntype == SYMLINK:
        node.link_target = draw(st.binary(max_size=20))
    elif ntype in (CHARDEV, BLOCKDEV):
        node.rdev = draw(U64)
    return node


def _refs_not_iterable(raw: Any) -> bool:
    """A node whose content ("c", a file) or subtree ("st", a directory) list
    is not iterable at all (an integer, None, a float ...)."""
    if not isinstance(raw, dict):
        return False
    ntype = raw.get("t")
    key = "c" if ntype == FILE else "st" if ntype == DIR else None
    return key in raw and not isinstance(raw[key], list | tuple | dict | str | bytes)


@st.composite
def capabilities(draw: st.DrawFn) -> Sample:
    writer = draw(WRITERS)
    cap = Capability(
        snapshot_id=draw(B32),
        target_id=TARGET_ID,
        epoch=DOMAIN.epoch,
        writer_id=draw(B16),
        seq=draw(U64),
        time_ns=draw(U64),
        host=draw(TEXT),
        tags=draw(st.lists(TEXT, max_size=3)),
        node=draw(nodes()),
    )
    stored = seal_cap(cap, repo_id=REPO_ID, share=SHARE, writer=writer)
    plain = crypto.unseal(SHARE_SK, stored, "cap")
    body, _sig, writer_vk, cert = unpack(plain, "cap")

    def sealed(p: bytes) -> bytes:
        return crypto.seal(SHARE.public_key, p)

    def signed(b: bytes) -> bytes:
        signature = writer.signing.sign(crypto.SIG_SHARE_CAP + REPO_ID, b)
        return sealed(pack([b, signature, writer_vk, cert]))

    levels = (
        Level("stored", stored, structured=False),
        Level("sealed parts", plain, sealed),
        Level("body", body, signed),
    )
    return Sample(cap, stored, levels)


@st.composite
def withdrawals(draw: st.DrawFn) -> Sample:
    hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
    withdrawal = Withdrawal(draw(hex64), draw(st.none() | hex64))
    stored = seal_withdrawal(
        withdrawal, repo_id=REPO_ID, share=SHARE, owner=OWNER, time_ns=draw(U64)
    )
    plain = crypto.unseal(SHARE_SK, stored, "withdrawal")

    def sealed(p: bytes) -> bytes:
        return crypto.seal(SHARE.public_key, p)

    def signed(b: bytes) -> bytes:
        return sealed(pack([b, OWNER.sign(crypto.SIG_SHARE_WITHDRAW + REPO_ID, b)]))

    levels = (
        Level("stored", stored, structured=False),
        Level("sealed parts", plain, sealed),
        Level("body", unpack(plain, "w")[0], signed),
    )
    return Sample(withdrawal, stored, levels)


def open_share_object(sample: Sample | None, stored: bytes) -> Capability | Withdrawal:
    """What neostore.snapshots.shared does with a share object: unseal, then
    a capability (four parts) or a withdrawal (two)."""
    parts = unseal_share_object(SHARE_SK, stored, "share object")
    if len(parts) == 2:
        return open_withdrawal(
            parts,
            what="withdrawal",
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            share_id=SHARE.share_id,
        )
    return open_cap(
        parts,
        what="capability",
        repo_id=REPO_ID,
        owner_vk=OWNER.verify_key,
        target_id=TARGET_ID,
        share_id=SHARE.share_id,
        share_path=SHARE.path,
    )


@st.composite
def forget_records(draw: st.DrawFn) -> Sample:
    forgotten = draw(
        st.lists(st.builds(Forgotten, B32, B16, U64, st.none() | B32), min_size=1, max_size=3)
    )
    stored = encode_record(forgotten, owner=OWNER, repo_id=REPO_ID, record=RECORD)
    plain = crypto.unseal(SEAL_SK, stored, "forget")

    def sealed(p: bytes) -> bytes:
        return crypto.seal(SEAL_PK, p)

    def signed(b: bytes) -> bytes:
        return sealed(pack([b, OWNER.sign(crypto.SIG_FORGET + REPO_ID, b)]))

    levels = (
        Level("stored", stored, structured=False),
        Level("signed record", plain, sealed),
        Level("body", unpack(plain, "f")[0], signed),
    )
    return Sample(forgotten, stored, levels)


# -- envelopes, pack headers, index files ----------------------------------------------


def envelope_levels(
    header: bytes,
    *,
    writer: WriterIdentity,
    ad_prefix: bytes,
    sig_prefix: bytes,
    wrap: Callable[[bytes], bytes] = _same,
    name: str = "envelope",
) -> tuple[Level, ...]:
    """The levels of a signed envelope (signed.py): ``wrap`` makes the stored
    object from the envelope (a pack adds its blob region and trailer)."""
    version, domain_id, epoch, writer_id, sealed = unpack(header, "envelope")
    ad = ad_prefix + DOMAIN.header_ad(REPO_ID, writer.writer_id)
    plain = crypto.aead_decrypt(DOMAIN.index_key, sealed, ad, "envelope")
    inner, _sig, writer_vk, cert = unpack(plain, "envelope contents")

    def from_plain(p: bytes) -> bytes:
        sealed = crypto.aead_encrypt(DOMAIN.index_key, p, ad)
        return wrap(pack([version, domain_id, epoch, writer_id, sealed]))

    def from_inner(i: bytes) -> bytes:
        return from_plain(pack([i, writer.signing.sign(sig_prefix + REPO_ID, i), writer_vk, cert]))

    return (
        Level(name, header, wrap),
        Level(f"{name} contents", plain, from_plain),
        Level(f"{name} body", inner, from_inner),
    )


ENVELOPE_BODIES = st.dictionaries(
    st.sampled_from(["a", "b", "entries", "packs"]), st.none() | U64 | st.binary(max_size=8)
)


@st.composite
def envelopes(draw: st.DrawFn) -> Sample:
    writer = draw(WRITERS)
    body = draw(ENVELOPE_BODIES)
    prefixes = dict(ad_prefix=crypto.AD_INDEX, sig_prefix=crypto.SIG_INDEX)
    stored = seal_envelope(
        body, repo_id=REPO_ID, domain=DOMAIN, target_id=TARGET_ID, writer=writer, **prefixes
    )
    expected = Envelope(
        DOMAIN.domain_id,
        DOMAIN.epoch,
        writer.writer_id,
        writer.verify_key,
        dict(body, target_id=TARGET_ID, domain_id=DOMAIN.domain_id, epoch=DOMAIN.epoch),
        by_owner=writer is WRITER,
    )
    return Sample(expected, stored, envelope_levels(stored, writer=writer, **prefixes))


def _envelope_sealed_not_bytes(header: bytes) -> bool:
    """An envelope of a domain the key has, whose sealed part is no bytes."""
    outer = _loads(header)
    return (
        isinstance(outer, list)
        and len(outer) == 5
        and outer[0] == 1
        and isinstance(outer[1], bytes)
        and isinstance(outer[2], int)
        and isinstance(outer[3], bytes)
        and domain_for(outer[1], outer[2]) is not None
        and type(outer[4]) is not bytes
    )


ENTRIES = st.lists(
    st.builds(
        PackEntry,
        st.sampled_from([DATA, TREE]),
        B32,
        st.integers(0, 2**32 - 1),
        st.integers(1, 2**32 - 1),
    ),
    max_size=4,
)


@st.composite
def entry_lists(draw: st.DrawFn) -> Sample:
    entries = draw(ENTRIES)
    encoded = pack([e.encode() for e in entries])
    return Sample(entries, encoded, (Level("entries", encoded),))


@st.composite
def packs(draw: st.DrawFn) -> Sample:
    writer = draw(WRITERS)
    builder = PackBuilder()
    btype = draw(st.sampled_from([DATA, TREE]))
    for plaintext in draw(st.lists(st.binary(max_size=200), max_size=4)):
        ref = make_ref(DOMAIN, btype, plaintext)
        builder.add(btype, ref.blob_id, encrypt_blob(REPO_ID, btype, ref, plaintext))
    entries = list(builder.entries)
    _pack_id, parts = builder.finish(
        repo_id=REPO_ID, domain=DOMAIN, target_id=TARGET_ID, writer=writer
    )
    stored = b"".join(parts)
    region, header = b"".join(parts[:-2]), parts[-2]

    def wrap(h: bytes) -> bytes:  # the blob region, the header, its length
        return region + h + struct.pack("<I", len(h))

    levels = envelope_levels(
        header,
        writer=writer,
        ad_prefix=crypto.AD_PACK_HEADER,
        sig_prefix=crypto.SIG_PACK,
        wrap=wrap,
        name="header",
    )
    value = (entries, crypto.object_hash(region))
    return Sample(value, stored, (Level("pack", stored, structured=False), *levels))


def open_pack(sample: Sample | None, stored: bytes) -> Any:
    """How ``check --read-data`` reads a whole pack: trailer, then header."""
    length = header_length(stored[-4:], len(stored), "pack")
    opened = open_header(
        stored[-4 - length : -4],
        what="pack",
        repo_id=REPO_ID,
        owner_vk=OWNER.verify_key,
        domain_for=domain_for,
    )
    return None if opened is None else (opened[1], opened[2])


def _header_in(stored: bytes) -> bytes | None:
    if len(stored) < 4:
        return None
    length = int.from_bytes(stored[-4:], "little")
    if length > MAX_HEADER or length + 4 > len(stored):
        return None
    return stored[-4 - length : -4]


@st.composite
def index_files(draw: st.DrawFn) -> Sample:
    writer = draw(WRITERS)
    records = draw(st.lists(st.builds(PackRecord, B32, U64, ENTRIES), max_size=3))
    condemn = draw(st.lists(B32, max_size=2))
    _name, stored = encode_index(
        records,
        repo_id=REPO_ID,
        domain=DOMAIN,
        target_id=TARGET_ID,
        writer=writer,
        condemn=condemn,
        untrusted=draw(st.booleans()),
    )
    levels = envelope_levels(
        stored, writer=writer, ad_prefix=crypto.AD_INDEX, sig_prefix=crypto.SIG_INDEX
    )
    return Sample((records, condemn if writer is WRITER else []), stored, levels)


def open_index(sample: Sample | None, stored: bytes) -> Any:
    opened = decode_index(
        stored, what="index", repo_id=REPO_ID, owner_vk=OWNER.verify_key, domain_for=domain_for
    )
    return None if opened is None else (opened[1], condemned_by(opened[0]))


# -- manifests, blobs, trees ---------------------------------------------------------------


@st.composite
def manifests(draw: st.DrawFn, writer: WriterIdentity | None = None) -> Manifest:
    writer = writer or WRITER
    return Manifest(
        repo_id=REPO_ID,
        target_id=TARGET_ID,
        writer_id=writer.writer_id,
        epoch=DOMAIN.epoch,
        seq=draw(U64),
        prev=draw(st.none() | B32),
        time_ns=draw(U64),
        host=draw(TEXT),
        user=draw(TEXT),
        paths=draw(st.lists(st.binary(max_size=10), max_size=3)),
        tags=draw(st.lists(TEXT, max_size=3)),
        parent=draw(st.none() | B32),
        root=draw(REFS),
        stats=draw(st.dictionaries(TEXT, U64, max_size=3)),
        original=draw(st.none() | B32),
        original_repo=draw(st.none() | B16),
        rewritten_ns=draw(st.none() | U64),
        lost=draw(
            st.lists(st.tuples(st.binary(max_size=8), st.sampled_from(["file", "dir"]), U64))
        ),
    )


@st.composite
def manifest_bodies(draw: st.DrawFn) -> Sample:
    manifest = draw(manifests())
    encoded = manifest.encode()
    return Sample(manifest, encoded, (Level("manifest", encoded),))


@st.composite
def sealed_manifests(draw: st.DrawFn) -> Sample:
    writer = draw(WRITERS)
    manifest = draw(manifests(writer))
    _sid, stored = seal_manifest(manifest, writer, SEAL_PK)
    plain = crypto.unseal(SEAL_SK, stored, "m")
    body, _sig, writer_vk, cert = unpack(plain, "m")

    def sealed(p: bytes) -> bytes:
        return crypto.seal(SEAL_PK, p)

    def signed(b: bytes) -> bytes:
        signature = writer.signing.sign(crypto.SIG_SNAPSHOT + REPO_ID, b)
        return sealed(pack([b, signature, writer_vk, cert]))

    levels = (
        Level("stored", stored, structured=False),
        Level("sealed parts", plain, sealed),
        Level("manifest", body, signed),
    )
    return Sample((manifest, writer is WRITER), stored, levels)


PLAINTEXTS = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.binary(min_size=1, max_size=8), st.integers(8, 2000)).map(lambda t: t[0] * t[1]),
)


@st.composite
def blobs(draw: st.DrawFn) -> Sample:
    plaintext = draw(PLAINTEXTS)
    btype = draw(st.sampled_from([DATA, TREE]))
    ref = make_ref(DOMAIN, btype, plaintext)
    stored = encrypt_blob(REPO_ID, btype, ref, plaintext)
    ad = blob_ad(REPO_ID, btype, ref.blob_id)
    padded = crypto.aead_decrypt(ref.blob_key, stored, ad, "blob")
    flags, pad_len = struct.unpack_from("<BI", padded)
    payload = padded[5 : len(padded) - pad_len]

    def encrypted(p: bytes) -> bytes:
        return crypto.aead_encrypt(ref.blob_key, p, ad)

    def with_payload(p: bytes) -> bytes:  # flags and padding kept
        return encrypted(struct.pack("<BI", flags, pad_len) + p + bytes(pad_len))

    levels = (
        Level("stored", stored, structured=False),
        Level("padded plaintext", padded, encrypted, structured=False),
        Level("zstd frame" if flags else "payload", payload, with_payload, structured=False),
    )
    return Sample(plaintext, stored, levels, {"btype": btype, "ref": ref})


def open_blob(sample: Sample, stored: bytes) -> bytes:
    return decrypt_blob(REPO_ID, sample.ctx["btype"], sample.ctx["ref"], stored)


@st.composite
def blob_refs(draw: st.DrawFn) -> Sample:
    """The reference is the hostile input here, the stored blob is intact."""
    blob = draw(blobs())
    encoded = pack(blob.ctx["ref"].encode())
    return Sample(blob.value, encoded, (Level("ref", encoded),), dict(blob.ctx, blob=blob.stored))


def open_blob_by_ref(sample: Sample, stored: bytes) -> bytes:
    ref = Ref.decode(unpack(stored, "ref"), "ref")
    return decrypt_blob(REPO_ID, sample.ctx["btype"], ref, sample.ctx["blob"])


@st.composite
def trees(draw: st.DrawFn) -> Sample:
    listing = draw(st.lists(nodes(), max_size=4, unique_by=lambda n: n.name))
    encoded = encode_tree(listing)
    return Sample(sorted(listing, key=lambda n: n.name), encoded, (Level("tree", encoded),))


@st.composite
def tree_nodes(draw: st.DrawFn) -> Sample:
    node = draw(nodes())
    encoded = pack(node.encode())
    return Sample(node, encoded, (Level("node", encoded),))


# -- the cases ----------------------------------------------------------------------------


CASES = [
    Case(
        "config.decode_config",
        configs(),
        lambda s, b: decode_config(b)[0],
        allowed=(NEWER_FORMAT,),
    ),
    Case(
        "config.verify_config",
        configs(),
        lambda s, b: verify_config(b, OWNER.verify_key),
        allowed=(NEWER_FORMAT,),
    ),
    Case(
        "keyfile.decode_keyfile_header",
        keyfiles(),
        lambda s, b: _header_summary(decode_keyfile_header(b, "k")[0]),
        expect=lambda s: (s.value.key_id, s.value.role, s.value.target, FLOOR_KDF),
        examples=400,
    ),
    Case(
        "keyfile.open_keyfile",
        keyfiles(),
        lambda s, b: open_keyfile(b, "k", PASSWORD),
        allowed=(
            Allowed((WrongPassword,), _always),  # and TamperedKeyFile, by design
        ),
        examples=25,
        admit=_floor_cost,
    ),
    Case(
        "targets.decode_target",
        target_records(),
        lambda s, b: decode_target(b, s.value.name, REPO_ID, OWNER.verify_key),
    ),
    Case(
        "shares.decode_sharelist",
        sharelists(),
        lambda s, b: decode_sharelist(
            b,
            what="share list",
            key=SHARELIST_KEY,
            repo_id=REPO_ID,
            target_id=TARGET_ID,
            owner_vk=OWNER.verify_key,
        ),
    ),
    Case(
        "shares.unseal_share_object+open_cap",
        capabilities(),
        open_share_object,
    ),
    Case("shares.unseal_share_object+open_withdrawal", withdrawals(), open_share_object),
    Case(
        "forget.decode_record",
        forget_records(),
        lambda s, b: decode_record(
            b,
            what="forget",
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            target_id=TARGET_ID,
            seal_sk=SEAL_SK,
        ),
    ),
    Case(
        "pack.header_length+open_header",
        packs(),
        open_pack,
    ),
    Case("pack.decode_entries", entry_lists(), lambda s, b: decode_entries(unpack(b, "e"), "e")),
    Case(
        "indexfile.decode_index",
        index_files(),
        open_index,
    ),
    Case(
        "signed.open_envelope",
        envelopes(),
        lambda s, b: open_envelope(
            b,
            what="envelope",
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            domain_for=domain_for,
            ad_prefix=crypto.AD_INDEX,
            sig_prefix=crypto.SIG_INDEX,
        ),
    ),
    Case("manifest.Manifest.decode", manifest_bodies(), lambda s, b: Manifest.decode(b, "m")),
    Case(
        "manifest.open_manifest",
        sealed_manifests(),
        lambda s, b: open_manifest(
            b,
            what="snapshot",
            target_sk=SEAL_SK,
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            target_id=TARGET_ID,
        ),
    ),
    Case("blob.decrypt_blob", blobs(), open_blob),
    Case("blob.Ref.decode+decrypt_blob", blob_refs(), open_blob_by_ref),
    Case(
        "tree.decode_tree",
        trees(),
        lambda s, b: decode_tree(b, "tree"),
    ),
    Case(
        "tree.decode_node",
        tree_nodes(),
        lambda s, b: decode_node(unpack(b, "node"), "node"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decoder_fails_only_with_integrity_errors(case: Case) -> None:
    outcomes = _fuzz(case)
    # a fuzz test whose mutants all died at a signature or seal would prove
    # nothing about the parser: enough of them must get past it
    past_the_crypto = outcomes["decoded"] + outcomes["parsed"]
    checked = sum(outcomes.values()) - outcomes["not admitted"]
    assert past_the_crypto >= max(2, checked // 5), outcomes


# -- inputs that crashed decoders (found by the cases above, fixed in issue 15) --------
#
# a non-bytes part taken to bytes() (TypeError, or an allocation as large as an
# integer asks: 1.9 GB for one 72-byte target record), a pack under 4 bytes
# (struct.error), a node whose content or subtree is not a list (TypeError), a
# key file's salt that is not 16 bytes (nacl's ValueError, for any password),
# key material that is not a map (AttributeError)


#: a file node whose content list is an integer, and a directory whose subtree is nil
FILE_NODE_C_INT = {"n": b"f", "t": FILE, "m": 0, "u": 0, "g": 0, "mt": 0, "sz": 0, "c": 5}
DIR_NODE_ST_NIL = {"n": b"d", "t": DIR, "m": 0, "u": 0, "g": 0, "mt": 0, "st": None}
#: an envelope of a domain the key has, whose sealed part is text
ENVELOPE_TEXT_SEALED = pack([1, DOMAIN.domain_id, DOMAIN.epoch, WRITER.writer_id, "sealed"])
#: a pack of 8 bytes of blobs and that envelope as its header
PACK_TEXT_SEALED = b"\0" * 8 + ENVELOPE_TEXT_SEALED + struct.pack("<I", len(ENVELOPE_TEXT_SEALED))


def _cap_with_node(raw_node: dict[str, Any]) -> bytes:
    """A capability made by the real encoder, its node replaced, re-signed
    by the certified writer and sealed to the share: only a writer can make it."""
    node = Node(b"f", FILE)
    cap = Capability(b"n" * 32, TARGET_ID, DOMAIN.epoch, WRITER.writer_id, 1, 1, "h", [], node)
    plain = crypto.unseal(SHARE_SK, seal_cap(cap, repo_id=REPO_ID, share=SHARE, writer=WRITER), "c")
    body_bytes, _sig, writer_vk, cert = unpack(plain, "c")
    body = dict(unpack(body_bytes, "c"), node=raw_node)
    body_bytes = pack(body)
    signature = WRITER.signing.sign(crypto.SIG_SHARE_CAP + REPO_ID, body_bytes)
    return crypto.seal(SHARE.public_key, pack([body_bytes, signature, writer_vk, cert]))


def _keyfile_with_salt(salt: bytes) -> bytes:
    """The owner's key file with its (plaintext) header's salt replaced."""
    header, sealed = unpack(_keyfile(Role.OWNER)[1], "k")
    return pack([pack(dict(unpack(header, "k"), salt=salt)), sealed])


def _keyfile_with_material(material: bytes) -> bytes:
    """The owner's key file with other material sealed under the password."""
    header, _sealed = unpack(_keyfile(Role.OWNER)[1], "k")
    wrapping = keyfile._wrapping_key(PASSWORD, unpack(header, "k")["salt"], FLOOR_KDF)
    return pack([header, crypto.aead_encrypt(wrapping, material, crypto.AD_KEYFILE + header)])


CRASHED_BEFORE = [
    pytest.param(
        lambda: decode_target(pack([b"body", "signature"]), "docs", REPO_ID, OWNER.verify_key),
        id="decode_target-text-signature",
    ),
    pytest.param(
        lambda: decode_target(pack([2**64 - 1, b"sig"]), "docs", REPO_ID, OWNER.verify_key),
        id="decode_target-integer-body",
    ),
    pytest.param(
        lambda: decode_sharelist(
            pack([1, "sealed"]),
            what="share list",
            key=SHARELIST_KEY,
            repo_id=REPO_ID,
            target_id=TARGET_ID,
            owner_vk=OWNER.verify_key,
        ),
        id="decode_sharelist-text-sealed",
    ),
    pytest.param(
        lambda: open_envelope(
            ENVELOPE_TEXT_SEALED,
            what="envelope",
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            domain_for=domain_for,
            ad_prefix=crypto.AD_INDEX,
            sig_prefix=crypto.SIG_INDEX,
        ),
        id="open_envelope-text-sealed",
    ),
    pytest.param(
        lambda: open_pack(None, PACK_TEXT_SEALED),
        id="open_header-text-sealed",
    ),
    pytest.param(
        lambda: open_index(None, ENVELOPE_TEXT_SEALED),
        id="decode_index-text-sealed",
    ),
    pytest.param(
        lambda: open_pack(None, b"\0\0"),
        id="header_length-2-byte-pack",
    ),
    pytest.param(
        lambda: decode_tree(pack({"v": 1, "nodes": [FILE_NODE_C_INT]}), "tree"),
        id="decode_tree-file-content-int",
    ),
    pytest.param(
        lambda: decode_tree(pack({"v": 1, "nodes": [DIR_NODE_ST_NIL]}), "tree"),
        id="decode_tree-dir-subtree-nil",
    ),
    pytest.param(
        lambda: open_share_object(None, _cap_with_node(FILE_NODE_C_INT)),
        id="open_cap-file-content-int",
    ),
    pytest.param(
        lambda: open_keyfile(_keyfile_with_salt(b"s" * 15), "k", b"any password"),
        id="open_keyfile-15-byte-salt",
    ),
    pytest.param(
        lambda: open_keyfile(_keyfile_with_material(pack(["not", "a map"])), "k", PASSWORD),
        id="open_keyfile-material-not-a-map",
    ),
]


@pytest.mark.parametrize("decode", CRASHED_BEFORE)
def test_inputs_that_crashed_decoders(decode: Callable[[], object]) -> None:
    with pytest.raises(IntegrityError):
        decode()
