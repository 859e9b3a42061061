"""One conformance suite, run against every backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from neostore.backend import Backend, LocalBackend, MemoryBackend
from neostore.errors import NotFound, UsageError

PACK = "ab" * 32


@pytest.fixture(params=["local", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        b: Backend = LocalBackend(str(tmp_path / "store"))
    else:
        b = MemoryBackend()
    b.create_repository()
    yield b


def test_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)


def test_save_load_roundtrip(backend: Backend) -> None:
    backend.save("data", PACK, b"hello world")
    assert backend.load("data", PACK) == b"hello world"
    assert backend.size("data", PACK) == 11
    assert backend.exists("data", PACK)


def test_ranges(backend: Backend) -> None:
    backend.save("index", "x1", bytes(range(100)))
    assert backend.load("index", "x1", 10, 5) == bytes(range(10, 15))
    assert backend.load("index", "x1", 98, 10) == bytes([98, 99])
    assert backend.load("index", "x1", 50) == bytes(range(50, 100))


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
    backend.save("data", PACK, b"p")
    backend.save("data", "cd" * 32, b"pp")
    backend.save("snapshots", "docs/" + "ef" * 32, b"s")
    backend.save("snapshots", "work/" + "01" * 32, b"ss")
    assert sorted(backend.list("data")) == [(PACK, 1), ("cd" * 32, 2)]
    assert sorted(backend.list("snapshots")) == [("docs/" + "ef" * 32, 1), ("work/" + "01" * 32, 2)]
    backend.remove("data", PACK)
    assert [n for n, _ in backend.list("data")] == ["cd" * 32]
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
            backend.save("index", f"w{n}-{i}", bytes([n]) * (i + 1))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = dict(backend.list("index"))
    assert len(listed) == 160
    assert backend.load("index", "w3-9") == bytes([3]) * 10


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
    backend.save("data", PACK, [b"he", b"llo ", b"world"])
    assert backend.load("data", PACK) == b"hello world"


def test_stream_is_invisible_until_committed(backend: Backend) -> None:
    stream = backend.create_stream("data")
    stream.write(b"part one, ")
    stream.write(memoryview(b"part two"))
    assert list(backend.list("data")) == []
    stream.commit(PACK)
    assert backend.load("data", PACK) == b"part one, part two"
    assert list(backend.list("data")) == [(PACK, 18)]


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
