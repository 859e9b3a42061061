"""Large listings kept encoded (neostore.format.listing): the same nodes as
a decoded listing, the same refusals, and what a hostile one cannot do."""

from __future__ import annotations

import errno
import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from neostore.errors import IntegrityError
from neostore.format.blob import Ref
from neostore.format.codec import pack
from neostore.format.listing import INLINE_REFS, EncodedListing, EncodedRefs, read_encoded_listing
from neostore.format.tree import MAX_XATTR_BYTES, ListingTooLarge, Node, decode_tree, encode_tree

from conftest import PASSWORD, Cli


def _ref(n: int) -> Ref:
    return Ref(os.urandom(32), os.urandom(32), n.to_bytes(32, "big"), 1 + n % 5000)


def _nodes() -> list[Node]:
    rng = random.Random(7)
    nodes = []
    for i in range(3000):
        name = b"n%05d-" % i + rng.randbytes(rng.randrange(0, 20)).replace(b"/", b"_").replace(
            b"\0", b"_"
        )
        kind = i % 4
        if kind == 0:
            refs = [_ref(i * 10 + k) for k in range(rng.randrange(0, 4))]
            node = Node(name, "f", size=sum(r.length for r in refs), content=refs)
        elif kind == 1:
            node = Node(name, "d", subtree=[_ref(i)])
        elif kind == 2:
            node = Node(name, "l", link_target=b"../t%d" % i, xattrs={b"user.a": b"v" * i})
        else:
            node = Node(name, "c", rdev=i, mtime_ns=1 << 62, user="me", group="us")
        nodes.append(node)
    refs = [_ref(k) for k in range(INLINE_REFS + 10)]  # one file of many chunks
    nodes.append(Node(b"zz-big", "f", size=sum(r.length for r in refs), content=refs))
    return nodes


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[at : at + size] for at in range(0, len(data), size))


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_the_same_nodes_as_a_decoded_listing(piece: int) -> None:
    data = encode_tree(_nodes())
    listing = read_encoded_listing(_pieces(data, piece), len(data), "tree t")
    decoded = decode_tree(data, "tree t")
    assert len(listing) == len(decoded) == 3001
    assert list(listing) == decoded
    assert listing[-1] == decoded[-1] and listing[5:8] == decoded[5:8]
    big = listing[-1].content
    assert isinstance(big, EncodedRefs) and len(big) == INLINE_REFS + 10
    assert big[3] == decoded[-1].content[3] and list(big) == decoded[-1].content
    assert not isinstance(listing[0].content, EncodedRefs)  # short lists are decoded
    # a worker gets the references' own bytes, not the listing's
    sent = pickle.dumps(listing[-1])
    assert len(sent) < len(data) // 2 and pickle.loads(sent) == decoded[-1]


@pytest.mark.parametrize("piece", [7, 1 << 20])
def test_a_listing_within_decode_at_most_comes_back_decoded_by_the_same_read(piece: int) -> None:
    data = encode_tree(_nodes())
    decoded = decode_tree(data, "tree t")
    whole = read_encoded_listing(_pieces(data, piece), len(data), "tree t", decode_at_most=3001)
    assert isinstance(whole, list) and whole == decoded
    assert isinstance(whole[-1].content, EncodedRefs)  # a long reference list stays encoded
    over = read_encoded_listing(_pieces(data, piece), len(data), "tree t", decode_at_most=3000)
    assert isinstance(over, EncodedListing) and list(over) == decoded


def test_a_name_is_found_by_bisection() -> None:
    from neostore.browse.navigate import named

    data = encode_tree(_nodes())
    listing = read_encoded_listing(_pieces(data, 1000), len(data), "tree t")
    assert isinstance(listing, EncodedListing)
    assert named(listing, b"zz-big") == listing[-1]
    assert named(listing, listing[1234].name) == listing[1234]
    assert named(listing, b"n01234") is None and named(listing, b"zzz") is None


def _minimal(name: bytes, **more: object) -> dict[str, object]:
    return {"n": name, "t": "f", "m": 0, "u": 0, "g": 0, "mt": 0, "sz": 0, "c": [], **more}


@pytest.mark.parametrize(
    ("nodes", "tail", "message"),
    [
        ([_minimal(b"b"), _minimal(b"a")], b"", "names not sorted"),
        ([_minimal(b"a"), _minimal(b"a")], b"", "names not sorted"),
        ([_minimal(b"a")], b"\x00", "data after the end"),
        ([_minimal(b"a", zz=[1, 2])], b"", "unknown node field 'zz' holds a list"),
        ([_minimal(b"a", c=5)], b"", "malformed reference list 'c'"),
        ([_minimal(b"a", c={"k": 1})], b"", "malformed reference list 'c'"),
        ([_minimal(b"a", c=[[b"x", 1]])], b"", "malformed blob reference"),
        ([_minimal(b"a", x=[[b"k", b"v" * (1 << 20)]] * 17)], b"", "extended attributes over"),
        ([_minimal(b"a", x=[5])], b"", "malformed xattr"),
        ([_minimal(b"a", sz=5)], b"", "does not add up"),
        ([_minimal(b"a", n=b"x" * ((16 << 20) + 1))], b"", "malformed encoding"),
    ],
)
def test_a_listing_that_breaks_a_rule_is_refused(
    nodes: list[dict[str, object]], tail: bytes, message: str
) -> None:
    data = pack({"v": 1, "nodes": nodes}) + tail
    for decode_at_most in (0, 10):  # kept encoded, or returned decoded
        with pytest.raises(IntegrityError, match=message):
            read_encoded_listing(_pieces(data, 1000), len(data), "tree t", decode_at_most)
    if len(data) < 1 << 20:  # a small listing is decoded at once: the same rules
        with pytest.raises(IntegrityError, match=message):
            decode_tree(data, "tree t")
    assert MAX_XATTR_BYTES == 16 << 20  # the xattr case above is just over it


def test_pieces_that_do_not_add_up_to_the_declared_size() -> None:
    data = pack({"v": 1, "nodes": [_minimal(b"a")]})
    with pytest.raises(IntegrityError, match="longer than its references say"):
        read_encoded_listing(_pieces(data, 10), len(data) - 1, "tree t")
    with pytest.raises(IntegrityError, match="shorter than its references say"):
        read_encoded_listing(_pieces(data, 10), len(data) + 1, "tree t")
    with pytest.raises(IntegrityError, match="cut short"):
        read_encoded_listing(_pieces(data[:-3], 10), len(data), "tree t")


def test_a_writer_refuses_extended_attributes_readers_would_refuse() -> None:
    fat = Node(b"f", "f", xattrs={b"user.%d" % i: b"v" * (1 << 20) for i in range(17)})
    with pytest.raises(ListingTooLarge, match="b'f': extended attributes over"):
        encode_tree([fat], "directory /src")
    fat.xattrs.popitem()
    fat.xattrs.popitem()
    data = encode_tree([fat])  # 15 MiB: fine for both readers
    assert read_encoded_listing(_pieces(data, 1 << 20), len(data), "t")[0].xattrs == fat.xattrs


def test_a_listing_built_node_by_node_is_the_same_bytes() -> None:
    from neostore.format.tree import ListingBuilder

    nodes = sorted(_nodes(), key=lambda n: n.name)
    whole = pack({"v": 1, "nodes": [n.encode() for n in nodes]})
    assert encode_tree(list(reversed(nodes))) == whole
    builder = ListingBuilder(len(nodes))
    for node in nodes:
        builder.add(node)
    assert builder.finish() == whole
    unsorted = ListingBuilder(2)
    unsorted.add(nodes[1])
    with pytest.raises(ValueError, match="name order"):
        unsorted.add(nodes[0])
    short = ListingBuilder(2)
    short.add(nodes[0])
    with pytest.raises(ValueError, match="1 nodes announced and not added"):
        short.finish()


def test_the_mount_caches_large_listings_encoded_and_within_its_bound(
    repo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder whose listing is kept encoded is cached by the mount as its
    bytes and a name index, outside the reader's walk budget (else cached
    folders would use that budget up) and inside the cache's own bound."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.mount import fs as mountfs
    from neostore.mount.chunks import ChunkCache
    from neostore.mount.layout import Layout

    monkeypatch.setattr(mountfs, "_DECODE_AT_MOST", 1000)  # else cached decoded
    src = tmp_path / "src"
    for folder in ("big", "other"):
        (src / folder).mkdir(parents=True)
        for i in range(6000):  # ~1.6 MB of listing: kept encoded
            (src / folder / (f"{i:05d}-" + "n" * 100)).write_bytes(b"")
    (src / "big" / "zz-content").write_text("content\n")
    repo.ok("snapshot", src)
    owner = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    owner.load_index()
    fs = mountfs.SnapshotFs(owner, Layout(owner, None), ChunkCache(owner), lambda p, m: None)
    (stamp,) = [n for n in fs.readdir("/default/snapshots") if n not in (".", "..")]
    base = f"/default/snapshots/{stamp}{src}"
    names = fs.readdir(f"{base}/big")
    assert len(names) == 6003 and names[-1] == "zz-content"
    assert fs.getattr(f"{base}/big/zz-content")["st_size"] == 8
    handle = fs.open(f"{base}/big/zz-content", os.O_RDONLY)
    assert fs.read(f"{base}/big/zz-content", 100, 0, handle) == b"content\n"
    # handle 0: a file the kernel opened without asking, found by its path
    assert fs.read(f"{base}/big/zz-content", 3, 2, 0) == b"nte"
    with pytest.raises(OSError) as caught:
        fs.read(f"{base}/big", 10, 0, 0)
    assert caught.value.errno == errno.EISDIR
    assert owner.blobs._budget.held == 0  # nothing kept counts against walks
    (big,) = [f for f in fs._listings.values() if len(list(f.names())) == 6001]
    assert 1 << 20 < big.cost < 4 << 20  # bytes + index, not decoded nodes
    monkeypatch.setattr(mountfs, "MAX_LISTING_CACHE", big.cost + 1000)
    fs.readdir(f"{base}/other")  # the older one goes
    assert fs._cached <= mountfs.MAX_LISTING_CACHE + big.cost
    sizes = [len(list(f.names())) for f in fs._listings.values()]
    assert 6000 in sizes and 6001 not in sizes  # "other" in, "big" out


def test_load_tree_decodes_a_large_listing_once_when_asked(repo: Cli, tmp_path: Path) -> None:
    """A listing over the eager size comes back decoded when it has at most
    ``decode_at_most`` entries, counted against the walk budget while it
    lives; one with more stays encoded."""
    from neostore.backend import LocalBackend
    from neostore.browse.navigate import root_listing
    from neostore.core.blobs import Listing
    from neostore.core.repository import Repository
    from neostore.snapshots.lookup import find_snapshot

    src = tmp_path / "src"
    src.mkdir()
    for i in range(6000):  # ~1.6 MB of listing
        (src / (f"{i:05d}-" + "n" * 100)).write_bytes(b"")
    repo.ok("snapshot", src)
    owner = Repository.open(LocalBackend(str(repo.repo)), PASSWORD.encode())
    owner.load_index()
    node = root_listing(owner, find_snapshot(owner, "latest"))[0]
    while node.name != b"src":
        node = owner.blobs.load_tree(node.subtree)[0]
    decoded = owner.blobs.load_tree(node.subtree, decode_at_most=6000)
    assert isinstance(decoded, Listing) and len(decoded) == 6000
    assert owner.blobs._budget.held > 6000 * 400
    encoded = owner.blobs.load_tree(node.subtree, decode_at_most=5999)
    assert isinstance(encoded, EncodedListing) and list(encoded) == decoded
    del decoded, encoded
    assert owner.blobs._budget.held == 0
