"""One conformance suite, run against every backend."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from neostore.backend import Backend, BackendOptions, Credentials, LocalBackend, MemoryBackend
from neostore.backend.http import HttpBackend
from neostore.errors import NotFound, UsageError

PACK = "ab" * 32


def ca(data: bytes) -> str:
    """The name of a content-addressed object: the BLAKE3 of its bytes."""
    return blake3.blake3(data).hexdigest()


HELLO = ca(b"hello world")


@pytest.fixture(params=["local", "memory", "http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        b: Backend = LocalBackend(str(tmp_path / "store"))
    elif request.param == "memory":
        b = MemoryBackend()
    else:
        server = request.getfixturevalue("neoserver")
        b = HttpBackend(
            server.url(f"conformance-{uuid.uuid4().hex[:12]}"),
            BackendOptions(
                credentials=Credentials("admin", server.admin_token), server_ca=server.cert
            ),
        )
    b.create_repository()
    yield b


def test_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)


def test_save_load_roundtrip(backend: Backend) -> None:
    backend.save("data", HELLO, b"hello world")
    assert backend.load("data", HELLO) == b"hello world"
    assert backend.size("data", HELLO) == 11
    assert backend.exists("data", HELLO)


def test_ranges(backend: Backend) -> None:
    name = ca(bytes(range(100)))
    backend.save("index", name, bytes(range(100)))
    assert backend.load("index", name, 10, 5) == bytes(range(10, 15))
    assert backend.load("index", name, 98, 10) == bytes([98, 99])
    assert backend.load("index", name, 50) == bytes(range(50, 100))
    assert backend.load("index", name, 100) == b""


def test_missing_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.load("data", PACK)
    with pytest.raises(NotFound):
        backend.remove("keys", "nokey")
    assert not backend.exists("data", PACK)


def test_overwrite_replaces(backend: Backend) -> None:
    backend.save("keys", "k1", b"one")
    backend.save("keys", "k1", b"two")
    assert backend.load("keys", "k1") == b"two"


def test_save_new_is_create_only(backend: Backend) -> None:
    assert backend.save_new("targets", "docs", b"first")
    assert not backend.save_new("targets", "docs", b"second")
    assert backend.load("targets", "docs") == b"first"


def test_save_new_race_has_one_winner(backend: Backend) -> None:
    winners: list[int] = []

    def attempt(n: int) -> None:
        if backend.save_new("targets", "contested", bytes([n])):
            winners.append(n)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert backend.load("targets", "contested") == bytes(winners)


def test_list_and_remove(backend: Backend) -> None:
    backend.save("data", ca(b"p"), b"p")
    backend.save("data", ca(b"pp"), b"pp")
    backend.save("snapshots", "docs/" + ca(b"s"), b"s")
    backend.save("snapshots", "work/" + ca(b"ss"), b"ss")
    assert sorted(backend.list("data")) == sorted([(ca(b"p"), 1), (ca(b"pp"), 2)])
    assert sorted(backend.list("snapshots")) == [("docs/" + ca(b"s"), 1), ("work/" + ca(b"ss"), 2)]
    backend.remove("data", ca(b"p"))
    assert [n for n, _ in backend.list("data")] == [ca(b"pp")]
    assert list(backend.list("index")) == []


@pytest.mark.parametrize(
    ("otype", "name"),
    [
        ("data", "../etc/passwd"),
        ("data", "zz" * 32),
        ("keys", "a/b"),
        ("keys", ".hidden"),
        ("keys", ""),
        ("snapshots", "onlyone"),
        ("snapshots", "t/../x"),
        ("snapshots", "t/notahash"),
        ("index", "x1"),
        ("nosuchtype", "x"),
        ("keys", "a\0b"),
    ],
)
def test_invalid_names_are_refused(backend: Backend, otype: str, name: str) -> None:
    with pytest.raises(UsageError):
        backend.save(otype, name, b"x")
    with pytest.raises(UsageError):
        backend.load(otype, name)


def test_concurrent_saves(backend: Backend) -> None:
    def worker(n: int) -> None:
        for i in range(20):
            data = bytes([n]) * (i + 1)
            backend.save("index", ca(data), data)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = dict(backend.list("index"))
    assert len(listed) == 160
    assert backend.load("index", ca(bytes([3]) * 10)) == bytes([3]) * 10


def test_create_twice_fails(backend: Backend) -> None:
    backend.save("config", "config", b"c")
    assert backend.exists_repository()
    with pytest.raises(Exception):  # noqa: B017 - backend-specific error, any is fine
        backend.create_repository()


def test_local_leaves_no_temp_files(tmp_path: Path) -> None:
    b = LocalBackend(str(tmp_path / "s"))
    b.create_repository()
    b.save("data", PACK, b"x" * 1000)
    leftovers = [p for p in (tmp_path / "s").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
    assert (tmp_path / "s" / "data" / PACK[:2] / PACK).read_bytes() == b"x" * 1000


def test_save_takes_buffers_in_order(backend: Backend) -> None:
    backend.save("data", HELLO, [b"he", b"llo ", b"world"])
    assert backend.load("data", HELLO) == b"hello world"


def test_stream_is_invisible_until_committed(backend: Backend) -> None:
    stream = backend.create_stream("data")
    stream.write(b"part one, ")
    stream.write(memoryview(b"part two"))
    assert list(backend.list("data")) == []
    name = ca(b"part one, part two")
    stream.commit(name)
    assert backend.load("data", name) == b"part one, part two"
    assert list(backend.list("data")) == [(name, 18)]


def test_aborted_stream_leaves_nothing(backend: Backend, tmp_path: Path) -> None:
    stream = backend.create_stream("data")
    stream.write(b"never committed")
    stream.abort()
    assert list(backend.list("data")) == []
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_stream_names_are_validated(backend: Backend) -> None:
    stream = backend.create_stream("data")
    stream.write(b"x")
    with pytest.raises(UsageError):
        stream.commit("../escape")
    stream.abort()
