"""Pure encoders/decoders: round trips, tamper detection, and fuzzing
(malformed input raises IntegrityError, never anything else)."""

from __future__ import annotations

import io
import itertools
import os
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neostore.errors import IntegrityError
from neostore.format import crypto
from neostore.format.blob import Ref, decrypt_blob, encrypt_blob, make_ref
from neostore.format.chunker import Chunker
from neostore.format.config import Config
from neostore.format.indexfile import PackRecord, decode_index, encode_index
from neostore.format.manifest import Manifest, open_manifest, seal_manifest
from neostore.format.pack import PackBuilder, header_length, open_header
from neostore.format.targets import DATA, TREE, Domain, new_target, target_seal_secret
from neostore.format.tree import Node, decode_tree, encode_tree
from neostore.format.writer import WriterIdentity

REPO_ID = b"r" * 16
MASTER = b"m" * 32
OWNER = crypto.SigningKey(b"o" * 32)
DOMAIN = Domain(b"d" * 16, 1, b"k" * 32)
WRITER = WriterIdentity(b"w" * 16, crypto.SigningKey(b"s" * 32), owner=OWNER)
TARGET_ID = b"t" * 16


def domain_for(domain_id: bytes, epoch: int) -> Domain | None:
    return DOMAIN if (domain_id, epoch) == (DOMAIN.domain_id, DOMAIN.epoch) else None


# -- blobs ---------------------------------------------------------------------------


@given(st.binary(max_size=5000), st.sampled_from([DATA, TREE]))
@settings(max_examples=60, deadline=None)
def test_blob_round_trip(plaintext: bytes, btype: int) -> None:
    ref = make_ref(DOMAIN, btype, plaintext)
    stored = encrypt_blob(REPO_ID, btype, ref, plaintext)
    assert decrypt_blob(REPO_ID, btype, ref, stored) == plaintext
    assert plaintext[:16] not in stored or len(plaintext) < 16 or plaintext[:16] == bytes(16)


def test_blob_ids_and_keys_depend_on_type_and_domain() -> None:
    other = Domain(b"e" * 16, 1, b"j" * 32)
    data = b"same content"
    assert make_ref(DOMAIN, DATA, data).blob_id != make_ref(DOMAIN, TREE, data).blob_id
    assert make_ref(DOMAIN, DATA, data).blob_id != make_ref(other, DATA, data).blob_id
    assert make_ref(DOMAIN, DATA, data).blob_key != make_ref(other, DATA, data).blob_key
    # the chunker seed is per domain and fits pyfastcdc's 63 bits
    assert DOMAIN.chunker_seed != other.chunker_seed
    assert 0 < DOMAIN.chunker_seed < 2**63


def test_blob_tampering_detected() -> None:
    plaintext = os.urandom(1000)
    ref = make_ref(DOMAIN, DATA, plaintext)
    stored = bytearray(encrypt_blob(REPO_ID, DATA, ref, plaintext))
    for position in (0, 30, len(stored) - 1):
        bad = bytearray(stored)
        bad[position] ^= 1
        with pytest.raises(IntegrityError):
            decrypt_blob(REPO_ID, DATA, ref, bytes(bad))
    with pytest.raises(IntegrityError):  # another repository's AD
        decrypt_blob(b"x" * 16, DATA, ref, bytes(stored))
    with pytest.raises(IntegrityError):  # typed AD: a data blob is not a tree
        decrypt_blob(REPO_ID, TREE, ref, bytes(stored))
    # a reference with the right key but a wrong digest: the commitment check
    wrong = Ref(ref.blob_id, ref.blob_key, crypto.content_hash(b"other"), ref.length)
    with pytest.raises(IntegrityError, match="does not match its hash"):
        decrypt_blob(REPO_ID, DATA, wrong, bytes(stored))
    # a reference that lies about the length cannot make us decompress more
    compressible = b"a" * 100_000
    cref = make_ref(DOMAIN, DATA, compressible)
    cstored = encrypt_blob(REPO_ID, DATA, cref, compressible)
    with pytest.raises(IntegrityError):
        decrypt_blob(REPO_ID, DATA, cref._replace(length=10), cstored)


def test_padme_sizes() -> None:
    assert [crypto.padme(n) for n in (0, 1, 2, 3, 9, 1000)] == [0, 1, 2, 3, 10, 1024]
    for n in range(2, 5000, 7):
        padded = crypto.padme(n)
        assert n <= padded <= n * 1.13 + 2
    big = 1024 * 1024 + 1
    assert crypto.padme(big) - big < big * 0.04


# -- chunker ---------------------------------------------------------------------------


@given(
    size=st.integers(min_value=0, max_value=3 * 1024 * 1024),
    data_seed=st.integers(min_value=0, max_value=2**64 - 1),
    seed=st.integers(min_value=1, max_value=2**62),
)
@settings(max_examples=15, deadline=None)
def test_chunker_stream_and_buffer_agree(size: int, data_seed: int, seed: int) -> None:
    config = Config(
        repo_id=REPO_ID, owner_vk=b"v" * 32, chunk_min=16384, chunk_avg=65536, chunk_max=262144
    )
    # drawn from hypothesis (through a seed), so a failing example replays
    data = random.Random(data_seed).randbytes(size)
    chunker = Chunker(config, seed)
    from_buffer = [bytes(c) for c in chunker.cut_buffer(data)]
    from_stream = [bytes(c) for c in Chunker(config, seed).cut_stream(io.BytesIO(data))]
    assert from_buffer == from_stream
    assert b"".join(from_buffer) == data
    assert all(len(c) <= 262144 for c in from_buffer)


SMALL_CHUNKS = Config(
    repo_id=REPO_ID, owner_vk=b"v" * 32, chunk_min=1024, chunk_avg=4096, chunk_max=16384
)


@given(
    size=st.integers(min_value=200_000, max_value=400_000),
    data_seed=st.integers(min_value=0, max_value=2**64 - 1),
    seed=st.integers(min_value=1, max_value=2**62),
    where=st.floats(min_value=0.25, max_value=0.75),
    inserted=st.binary(min_size=1, max_size=16),
)
# Re-alignment is a statistical property: in 20,000 random trials of this
# shape the original lost 1 chunk in 97%, <= 3 in 99.8% and 5 at most, so the
# bound below holds for ~99.99% of inputs. derandomize: a fixed set of
# examples, so the test cannot flake on the rare input that needs more.
@settings(max_examples=20, deadline=None, derandomize=True, database=None)
def test_keyed_chunker_boundaries_realign_after_an_insertion(
    size: int, data_seed: int, seed: int, where: float, inserted: bytes
) -> None:
    data = random.Random(data_seed).randbytes(size)
    at = int(size * where)
    edited = data[:at] + inserted + data[at:]
    before = [bytes(c) for c in Chunker(SMALL_CHUNKS, seed).cut_buffer(data)]
    after = [bytes(c) for c in Chunker(SMALL_CHUNKS, seed).cut_buffer(edited)]
    assert len(before) >= 20  # many chunks, so the claims below say something
    assert b"".join(after) == edited
    # every chunk that ends before the insertion point is unchanged (a cut
    # after byte i depends on bytes up to i, so a chunk ending exactly at the
    # insertion point may move: it counts as the one containing it)
    ends = list(itertools.accumulate(len(c) for c in before))
    untouched = sum(1 for end in ends if end < at)
    assert after[:untouched] == before[:untouched]
    # the chunks after it re-align: the two lists share a common suffix, and
    # only a few chunks around the insertion point differ
    common_tail = 0
    while (
        common_tail < min(len(before), len(after)) - untouched
        and before[-1 - common_tail] == after[-1 - common_tail]
    ):
        common_tail += 1
    lost = before[untouched : len(before) - common_tail]
    made = after[untouched : len(after) - common_tail]
    assert 1 <= len(lost) <= 4 and 1 <= len(made) <= 4, (len(lost), len(made))
    # the same, counted as multisets of chunk contents
    assert sum((Counter(before) - Counter(after)).values()) <= 4
    assert sum((Counter(after) - Counter(before)).values()) <= 4


def test_chunk_boundaries_depend_on_seed() -> None:
    config = Config(repo_id=REPO_ID, owner_vk=b"v" * 32)
    data = os.urandom(8 * 1024 * 1024)
    a = [len(c) for c in Chunker(config, 12345).cut_buffer(data)]
    b = [len(c) for c in Chunker(config, 67890).cut_buffer(data)]
    assert a != b
    assert 3 <= len(a) <= 30  # about 1 MiB on average


# -- packs and index -----------------------------------------------------------------


def _pack(n: int = 3) -> tuple[bytes, bytes, list[Ref]]:
    builder = PackBuilder()
    refs = []
    for i in range(n):
        plaintext = f"blob {i}".encode() * 50
        ref = make_ref(DOMAIN, DATA, plaintext)
        builder.add(DATA, ref.blob_id, encrypt_blob(REPO_ID, DATA, ref, plaintext))
        refs.append(ref)
    pack_id, parts = builder.finish(
        repo_id=REPO_ID, domain=DOMAIN, target_id=TARGET_ID, writer=WRITER
    )
    data = b"".join(parts)
    assert pack_id == crypto.object_hash(data)  # the name is the hash of the whole pack
    return pack_id, data, refs


def _open(data: bytes) -> object:
    length = header_length(data[-4:], len(data), "pack")
    return open_header(
        data[-4 - length : -4],
        what="pack",
        repo_id=REPO_ID,
        owner_vk=OWNER.verify_key,
        domain_for=domain_for,
    )


def test_pack_header_round_trip() -> None:
    pack_id, data, refs = _pack()
    assert pack_id == crypto.object_hash(data)
    opened = _open(data)
    assert opened is not None
    _env, entries, blobs_hash = opened  # type: ignore[misc]
    assert [e.blob_id for e in entries] == [r.blob_id for r in refs]
    region = data[: entries[-1].offset + entries[-1].length]
    assert crypto.object_hash(region) == blobs_hash
    for entry, ref in zip(entries, refs, strict=True):
        plain = decrypt_blob(REPO_ID, DATA, ref, data[entry.offset : entry.offset + entry.length])
        assert make_ref(DOMAIN, DATA, plain) == ref


def test_pack_header_needs_domain_key_and_detects_tampering() -> None:
    _pack_id, data, _refs = _pack()
    length = header_length(data[-4:], len(data), "pack")
    header = data[-4 - length : -4]
    assert (
        open_header(
            header,
            what="p",
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            domain_for=lambda d, e: None,
        )
        is None
    )
    bad = bytearray(header)
    bad[-20] ^= 1
    with pytest.raises(IntegrityError):
        open_header(
            bytes(bad), what="p", repo_id=REPO_ID, owner_vk=OWNER.verify_key, domain_for=domain_for
        )
    # a writer whose certificate was not made by this owner is not trusted
    with pytest.raises(IntegrityError, match="certificate"):
        open_header(
            header,
            what="p",
            repo_id=REPO_ID,
            owner_vk=crypto.SigningKey(b"x" * 32).verify_key,
            domain_for=domain_for,
        )


def test_index_round_trip_and_forgery() -> None:
    pack_id, data, _refs = _pack()
    opened = _open(data)
    assert opened is not None
    entries = opened[1]  # type: ignore[index]
    name, encoded = encode_index(
        [PackRecord(pack_id, len(data), entries)],
        repo_id=REPO_ID,
        domain=DOMAIN,
        target_id=TARGET_ID,
        writer=WRITER,
    )
    assert name == crypto.object_hash(encoded)
    decoded = decode_index(
        encoded, what="i", repo_id=REPO_ID, owner_vk=OWNER.verify_key, domain_for=domain_for
    )
    assert decoded is not None
    assert decoded[1][0].pack_id == pack_id and decoded[1][0].entries == entries
    rogue = WriterIdentity(
        b"w" * 16, crypto.SigningKey(b"z" * 32), owner=crypto.SigningKey(b"q" * 32)
    )
    _, forged = encode_index(
        [PackRecord(pack_id, 1, entries)],
        repo_id=REPO_ID,
        domain=DOMAIN,
        target_id=TARGET_ID,
        writer=rogue,
    )
    with pytest.raises(IntegrityError):
        decode_index(
            forged, what="i", repo_id=REPO_ID, owner_vk=OWNER.verify_key, domain_for=domain_for
        )


# -- trees and manifests ----------------------------------------------------------------


def test_tree_round_trip_sorted_bytes_names() -> None:
    nodes = [
        Node(name=b"z\xff", type="f", size=3, content=[make_ref(DOMAIN, DATA, b"abc")]),
        Node(name=b"a", type="d", subtree=[]),
        Node(name=b"l", type="l", link_target=b"../x", xattrs={b"user.k": b"\x00v"}),
        Node(name=b"dev", type="c", rdev=259),
    ]
    decoded = decode_tree(encode_tree(nodes), "t")
    assert [n.name for n in decoded] == [b"a", b"dev", b"l", b"z\xff"]
    assert decoded[3].content == nodes[0].content
    assert decoded[2].xattrs == {b"user.k": b"\x00v"} and decoded[2].link_target == b"../x"
    assert decoded[1].rdev == 259


@pytest.mark.parametrize("name", [b"", b".", b"..", b"a/b", b"a\x00b", b"/abs"])
def test_tree_rejects_hostile_names(name: bytes) -> None:
    from neostore.format.codec import pack

    raw = pack(
        {
            "v": 1,
            "nodes": [{"n": name, "t": "f", "m": 0, "u": 0, "g": 0, "mt": 0, "sz": 0, "c": []}],
        }
    )
    with pytest.raises(IntegrityError):
        decode_tree(raw, "t")


def test_tree_rejects_size_mismatch_and_duplicates() -> None:
    ref = make_ref(DOMAIN, DATA, b"abc")
    lying = encode_tree([Node(name=b"f", type="f", size=999, content=[ref])])
    with pytest.raises(IntegrityError, match="does not add up"):
        decode_tree(lying, "t")
    with pytest.raises(ValueError, match="name order"):  # a writer cannot make one
        encode_tree([Node(name=b"f", type="f"), Node(name=b"f", type="f")])
    from neostore.format.codec import pack

    one = Node(name=b"f", type="f").encode()
    with pytest.raises(IntegrityError, match="sorted"):
        decode_tree(pack({"v": 1, "nodes": [one, one]}), "t")


# The decoders' fuzz tests (valid objects, mutated at every level, re-signed
# and re-sealed so that the field checks are reached) are in test_decoders.py.


def _manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = dict(
        repo_id=REPO_ID,
        target_id=TARGET_ID,
        writer_id=WRITER.writer_id,
        epoch=1,
        seq=1,
        prev=None,
        time_ns=1,
        host="h",
        user="u",
        paths=[b"/x"],
        tags=["t"],
        parent=None,
        root=[make_ref(DOMAIN, TREE, b"root")],
    )
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


def _open_sealed(stored: bytes, target_sk: bytes, target_id: bytes) -> Manifest:
    manifest, _ = open_manifest(
        stored,
        what="s",
        target_sk=target_sk,
        repo_id=REPO_ID,
        owner_vk=OWNER.verify_key,
        target_id=target_id,
    )
    return manifest


def test_manifest_sealed_to_target_and_signed() -> None:
    record = new_target("docs", MASTER)
    secret = target_seal_secret(MASTER, record.target_id)
    manifest = _manifest(target_id=record.target_id)
    sid, stored = seal_manifest(manifest, WRITER, record.seal_pk)
    assert sid == crypto.object_hash(stored)
    opened = _open_sealed(stored, secret, record.target_id)
    assert opened == manifest
    other = new_target("work", MASTER)
    with pytest.raises(IntegrityError):  # another target's key cannot open it
        open_manifest(
            stored,
            what="s",
            target_sk=target_seal_secret(MASTER, other.target_id),
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            target_id=other.target_id,
        )
    # anyone can seal to the public key, but not sign as a certified writer
    rogue = WriterIdentity(
        b"w" * 16, crypto.SigningKey(b"y" * 32), owner=crypto.SigningKey(b"p" * 32)
    )
    _, forged = seal_manifest(manifest, rogue, record.seal_pk)
    with pytest.raises(IntegrityError, match="certificate"):
        _open_sealed(forged, secret, record.target_id)
    # a manifest moved to another target is refused
    moved = _manifest(target_id=other.target_id)
    _, stored_moved = seal_manifest(moved, WRITER, record.seal_pk)
    with pytest.raises(IntegrityError, match="another repository or target"):
        _open_sealed(stored_moved, secret, record.target_id)


def test_envelope_signature_binds_its_domain() -> None:
    """Re-encrypting a signed header under another domain's key (by someone
    holding both index keys) must not make it valid there."""
    from neostore.format.codec import pack as mp
    from neostore.format.codec import unpack

    other = Domain(b"e" * 16, 1, b"j" * 32)
    _pack_id, data, _refs = _pack()
    length = header_length(data[-4:], len(data), "pack")
    outer = unpack(data[-4 - length : -4], "h")
    ad = crypto.AD_PACK_HEADER + DOMAIN.header_ad(REPO_ID, WRITER.writer_id)
    plain = crypto.aead_decrypt(DOMAIN.index_key, outer[4], ad, "h")
    moved_ad = crypto.AD_PACK_HEADER + other.header_ad(REPO_ID, WRITER.writer_id)
    moved = mp(
        [
            1,
            other.domain_id,
            1,
            WRITER.writer_id,
            crypto.aead_encrypt(other.index_key, plain, moved_ad),
        ]
    )
    with pytest.raises(IntegrityError, match="another dedup domain"):
        open_header(
            moved,
            what="p",
            repo_id=REPO_ID,
            owner_vk=OWNER.verify_key,
            domain_for=lambda d, e: other,
        )
