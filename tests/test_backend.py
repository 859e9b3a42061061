"""One conformance suite, run against every backend."""

from __future__ import annotations

import inspect
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import pytest
import s3util
import sftputil

from neostore.backend import Backend, BackendOptions, Credentials, LocalBackend, MemoryBackend
from neostore.backend.base import BufferedStream, ObjectStream, Payload
from neostore.backend.http import HttpBackend
from neostore.backend.names import CONTENT_ADDRESSED, OBJECT_TYPES, relative_path
from neostore.backend.rest import RestBackend
from neostore.backend.retry import FIRST_DELAY, MAX_DELAY, RetryingBackend
from neostore.backend.s3 import S3Backend
from neostore.backend.sftp import SftpBackend
from neostore.errors import NotFound, PermanentBackendError, TransientBackendError, UsageError
from neostore.fsutil import TEMP_MARK
from neostore_server.storage import META

PACK = "ab" * 32


def ca(data: bytes) -> str:
    """The name of a content-addressed object: the BLAKE3 of its bytes."""
    return blake3.blake3(data).hexdigest()


HELLO = ca(b"hello world")


@pytest.fixture(params=["local", "memory", "http", "s3", "sftp", "rest-rclone", "rest-neoserver"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    if request.param == "s3":
        ceph = request.getfixturevalue("ceph")
        for name, value in s3util.account_env(ceph).items():
            monkeypatch.setenv(name, value)
        bucket = s3util.make_bucket(ceph, "conformance")
        b: Backend = S3Backend(s3util.location(ceph, bucket, uuid.uuid4().hex[:12]))
    elif request.param == "sftp":
        home = sftputil.ssh_home(request.getfixturevalue("sshd"), tmp_path / "home")
        monkeypatch.setenv("HOME", str(home))
        b = SftpBackend(sftputil.location(tmp_path / "over-sftp"))
    elif request.param == "rest-rclone":
        rclone = request.getfixturevalue("rclone")  # http://127.0.0.1:PORT/, basic auth
        b = RestBackend(
            f"rest:{rclone.url}conformance/{uuid.uuid4().hex[:12]}",
            BackendOptions(
                credentials=Credentials(rclone.user, rclone.password), insecure_http=True
            ),
        )
    elif request.param == "rest-neoserver":
        server = request.getfixturevalue("neoserver")
        b = RestBackend(
            "rest:" + server.url(f"conformance-{uuid.uuid4().hex[:12]}"),
            BackendOptions(
                credentials=Credentials("admin", server.admin_token), server_ca=server.cert
            ),
        )
    elif request.param == "local":
        b = LocalBackend(str(tmp_path / "store"))
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


@pytest.fixture
def stored(backend: Backend, request: pytest.FixtureRequest) -> Callable[[], dict[str, bytes]]:
    """Everything the store holds, seen from below the Backend API: its files
    (temporaries included) by path relative to the repository, for the local
    directory and for the server's copy of the repository; the memory
    backend's objects by the path they would have."""
    if isinstance(backend, MemoryBackend):
        return lambda: {relative_path(t, n): d for (t, n), d in backend._objects.items()}
    if isinstance(backend, S3Backend):
        ceph = request.getfixturevalue("ceph")
        where = backend.where
        return lambda: s3util.objects(ceph, where.bucket, where.prefix.rstrip("/"))
    if isinstance(backend, LocalBackend):
        root = Path(backend.root)
    elif isinstance(backend, SftpBackend):
        root = Path(backend.where.path)  # the server runs on this machine
    elif isinstance(backend, RestBackend) and "/conformance/" in backend.location:
        rclone = request.getfixturevalue("rclone")
        root = Path(rclone.workdir) / "data" / urlsplit(backend.location[5:]).path.strip("/")
    elif isinstance(backend, RestBackend):
        server = request.getfixturevalue("neoserver")
        root = server.data / "repos" / urlsplit(backend.location[5:]).path.strip("/")
    else:
        assert isinstance(backend, HttpBackend)
        server = request.getfixturevalue("neoserver")
        root = server.data / "repos" / urlsplit(backend.location).path.strip("/")
    assert root.is_dir()

    def files() -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and p.name != META  # the server's own record of the repository
        }

    return files


def _parameters(function: Callable[..., Any], *, bound: bool) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of a function's parameters, without ``self``."""
    params = list(inspect.signature(function).parameters.values())
    if not bound:
        assert params[0].name == "self", function
        params = params[1:]
    return [(p.name, p.kind, p.default) for p in params]


def _protocol_methods(protocol: type) -> list[str]:
    return [n for n, v in vars(protocol).items() if not n.startswith("_") and callable(v)]


def _assert_conforms(backend: Backend) -> None:
    methods = _protocol_methods(Backend)
    assert len(methods) == 12, methods  # this helper sees the whole protocol
    for name in methods:
        implementation = getattr(backend, name, None)
        assert callable(implementation), f"{type(backend).__name__} lacks {name}"
        assert _parameters(implementation, bound=True) == _parameters(
            getattr(Backend, name), bound=False
        ), f"{type(backend).__name__}.{name}{inspect.signature(implementation)}"
    assert isinstance(backend.location, str) and backend.location
    assert type(backend.batch_reads) is bool


def test_is_a_backend(backend: Backend) -> None:
    """Every method of the protocol, with its parameters' names, kinds and
    defaults (callers pass ``offset=``, ``length=`` by name), and the two
    attributes with their types; the streams too."""
    _assert_conforms(backend)
    remote = HttpBackend | S3Backend | SftpBackend  # RestBackend is an HttpBackend
    assert backend.batch_reads is isinstance(backend, remote)
    stream = backend.create_stream("data")
    for name in _protocol_methods(ObjectStream):
        assert _parameters(getattr(stream, name), bound=True) == _parameters(
            getattr(ObjectStream, name), bound=False
        ), name
    stream.abort()


def test_the_conformance_check_can_fail() -> None:
    class Sloppy(MemoryBackend):
        def load(self, otype: str, name: str, start: int = 0, length: int | None = None) -> bytes:
            return b""

    class NoDefault(MemoryBackend):
        def load(self, otype: str, name: str, offset: int, length: int | None = None) -> bytes:
            return b""

    class NoLocation(MemoryBackend):
        def __init__(self) -> None:
            super().__init__()
            self.location = ""

    class NotABool(MemoryBackend):
        batch_reads = 0  # type: ignore[assignment]

    for wrong in (Sloppy(), NoDefault(), NoLocation(), NotABool()):
        with pytest.raises(AssertionError):
            _assert_conforms(wrong)
    _assert_conforms(RetryingBackend(MemoryBackend()))  # the wrapper is a Backend too


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


def test_save_new_race_has_one_winner(backend: Backend, request: pytest.FixtureRequest) -> None:
    winners: list[int] = []

    def attempt(n: int) -> None:
        if backend.save_new("targets", "contested", bytes([n])):
            winners.append(n)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if request.node.callspec.params["backend"] != "rest-rclone":
        assert len(winners) == 1
        assert backend.load("targets", "contested") == bytes(winners)
    else:  # rclone ignores If-None-Match: check-then-write; whole, and a winner's
        assert winners and backend.load("targets", "contested") in [bytes([w]) for w in winners]


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


@pytest.mark.parametrize("otype", ["nosuchtype", "../x", "keys/../config", ""])
def test_listings_of_no_type_are_refused(backend: Backend, otype: str) -> None:
    """Checked before any I/O (the local backend raised KeyError, memory
    listed nothing, http sent the type into its URL)."""
    with pytest.raises(UsageError, match="unknown object type"):
        list(backend.list(otype))


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
    # retrying cannot help: permanent, and it names the reason
    with pytest.raises(PermanentBackendError, match="already exists"):
        backend.create_repository()
    assert backend.load("config", "config") == b"c"  # left as it was
    assert backend.exists_repository()


def test_saves_leave_their_objects_and_nothing_else(
    backend: Backend, stored: Callable[[], dict[str, bytes]]
) -> None:
    """No temporary survives a save, a replacing save, a repeated save of
    a content-addressed object or a refused create-only save; the objects
    are where the layout puts them (the server keeps the local layout)."""
    data = b"x" * 1000
    name = ca(data)
    backend.save("data", name, data)
    backend.save("data", name, [data[:10], data[10:]])
    backend.save("keys", "k1", b"one")
    backend.save("keys", "k1", b"two")
    assert backend.save_new("targets", "docs", b"first")
    assert not backend.save_new("targets", "docs", b"second")
    assert stored() == {
        f"data/{name[:2]}/{name}": data,
        "keys/k1": b"two",
        "targets/docs": b"first",
    }


def test_save_takes_buffers_in_order(backend: Backend) -> None:
    backend.save("data", HELLO, [b"he", b"llo ", b"world"])
    assert backend.load("data", HELLO) == b"hello world"


def _pending(
    backend: Backend, stream: ObjectStream, stored: Callable[[], dict[str, bytes]], data: bytes
) -> None:
    """What an uncommitted stream holds: a temporary file in the local
    directory (the probe sees it, listings skip it), its parts in memory
    elsewhere (nothing reaches the store before the commit)."""
    assert list(backend.list("data")) == []
    during = stored()
    if isinstance(backend, LocalBackend):
        ((path, content),) = during.items()
        assert path.startswith("data/") and TEMP_MARK in path and content == data
    else:
        assert during == {}
        assert isinstance(stream, BufferedStream) and b"".join(stream._parts) == data


def _released(stream: ObjectStream) -> None:
    if isinstance(stream, BufferedStream):
        assert stream._parts == []  # no object kept in memory after the end


def test_stream_is_invisible_until_committed(
    backend: Backend, stored: Callable[[], dict[str, bytes]]
) -> None:
    stream = backend.create_stream("data")
    stream.write(b"part one, ")
    stream.write(memoryview(b"part two"))
    _pending(backend, stream, stored, b"part one, part two")
    name = ca(b"part one, part two")
    stream.commit(name)
    assert backend.load("data", name) == b"part one, part two"
    assert list(backend.list("data")) == [(name, 18)]
    assert stored() == {f"data/{name[:2]}/{name}": b"part one, part two"}  # no temporary
    _released(stream)


def test_aborted_stream_leaves_nothing(
    backend: Backend, stored: Callable[[], dict[str, bytes]]
) -> None:
    stream = backend.create_stream("data")
    stream.write(b"never committed")
    _pending(backend, stream, stored, b"never committed")
    stream.abort()
    assert list(backend.list("data")) == []
    assert stored() == {}
    _released(stream)


def test_stream_names_are_validated(
    backend: Backend, stored: Callable[[], dict[str, bytes]]
) -> None:
    stream = backend.create_stream("data")
    stream.write(b"x")
    with pytest.raises(UsageError, match="invalid"):
        stream.commit("../escape")
    stream.abort()
    assert stored() == {}


# -- the retry wrapper, over any backend --------------------------------------

RETRIES = 3


class Flaky:
    """A backend around another whose every method fails with ``error`` the
    first ``failures`` times it is called (counted per method, in
    ``calls``): a store behind a connection that drops. A listing that
    fails breaks off after its first entry, as a dropped connection would
    cut it."""

    def __init__(
        self,
        inner: Backend,
        failures: int,
        error: type[Exception] = TransientBackendError,
    ) -> None:
        self.inner = inner
        self.location = inner.location
        self.batch_reads = inner.batch_reads
        self.failures = failures
        self.error = error
        self.calls: Counter[str] = Counter()

    def _attempt(self, method: str) -> None:
        self.calls[method] += 1
        if self.calls[method] <= self.failures:
            raise self.error(f"{method}: connection reset (attempt {self.calls[method]})")

    def exists_repository(self) -> bool:
        self._attempt("exists_repository")
        return self.inner.exists_repository()

    def create_repository(self) -> None:
        self._attempt("create_repository")
        self.inner.create_repository()

    def save(self, otype: str, name: str, data: Payload) -> None:
        self._attempt("save")
        self.inner.save(otype, name, data)

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        self._attempt("save_new")
        return self.inner.save_new(otype, name, data)

    def create_stream(self, otype: str) -> ObjectStream:
        self._attempt("create_stream")
        return self.inner.create_stream(otype)

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self._attempt("load")
        return self.inner.load(otype, name, offset, length)

    def size(self, otype: str, name: str) -> int:
        self._attempt("size")
        return self.inner.size(otype, name)

    def exists(self, otype: str, name: str) -> bool:
        self._attempt("exists")
        return self.inner.exists(otype, name)

    def remove(self, otype: str, name: str) -> None:
        self._attempt("remove")
        self.inner.remove(otype, name)

    def temporaries(self) -> Iterator[tuple[str, int]]:
        self._attempt("temporaries")
        return self.inner.temporaries()

    def remove_temporary(self, path: str) -> None:
        self._attempt("remove_temporary")
        self.inner.remove_temporary(path)

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        self.calls["list"] += 1
        attempt = self.calls["list"]
        entries = self.inner.list(otype)

        def cut_short() -> Iterator[tuple[str, int]]:
            yield from itertools.islice(entries, 1)
            raise self.error(f"list: connection reset (attempt {attempt})")

        return cut_short() if attempt <= self.failures else entries


def _flaky(failures: int, retries: int = RETRIES) -> tuple[RetryingBackend, Flaky]:
    inner = MemoryBackend()
    inner.create_repository()
    inner.save("config", "config", b"c")
    inner.save("data", HELLO, b"hello world")
    inner.save("keys", "k1", b"one")
    inner.save("keys", "k2", b"two!")
    flaky = Flaky(inner, failures)
    return RetryingBackend(flaky, retries), flaky


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses between attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("neostore.backend.retry.time.sleep", slept.append)
    return slept


def _name(otype: str, data: bytes) -> str:
    """A valid name of ``otype`` for ``data`` (content-addressed where the
    type is)."""
    if otype == "config":
        return "config"
    return ca(data) if OBJECT_TYPES[otype] == 1 else f"docs/{ca(data)}"


def test_flaky_store_is_a_backend() -> None:
    retrying, flaky = _flaky(0)
    _assert_conforms(flaky)
    _assert_conforms(retrying)
    assert retrying.location == "memory:" and retrying.batch_reads is False


def test_retry_reads_listings_and_deletes_until_they_succeed(sleeps: list[float]) -> None:
    backend, flaky = _flaky(failures=RETRIES)
    assert backend.exists_repository()
    assert backend.load("data", HELLO, 6, 5) == b"world"
    assert backend.load("data", HELLO, offset=6) == b"world"  # failures are spent: once
    assert backend.size("data", HELLO) == 11
    assert backend.exists("data", HELLO)
    assert sorted(backend.list("keys")) == [("k1", 3), ("k2", 4)]  # whole, no duplicates
    backend.remove("keys", "k1")
    assert not flaky.inner.exists("keys", "k1")
    assert flaky.calls == {
        "exists_repository": RETRIES + 1,
        "load": RETRIES + 2,
        "size": RETRIES + 1,
        "exists": RETRIES + 1,
        "list": RETRIES + 1,
        "remove": RETRIES + 1,
    }
    assert len(sleeps) == 6 * RETRIES


def _contents(backend: Backend, otype: str) -> dict[str, bytes]:
    return {name: backend.load(otype, name) for name, _ in backend.list(otype)}


@pytest.mark.parametrize("otype", sorted(str(t) for t in OBJECT_TYPES))
def test_retry_repeats_only_saves_that_cannot_change_the_outcome(
    otype: str, sleeps: list[float]
) -> None:
    """A content-addressed save is repeated (its name fixes its bytes); a
    replacing save of a named object (a key file, the config) and every
    create-only save are tried once: the lost answer may hide a success."""
    backend, flaky = _flaky(failures=RETRIES)
    name = _name(otype, b"payload")
    before = _contents(flaky.inner, otype)
    if otype in CONTENT_ADDRESSED:
        backend.save(otype, name, [b"pay", b"load"])
        assert flaky.calls["save"] == RETRIES + 1 and len(sleeps) == RETRIES
        assert _contents(flaky.inner, otype) == {**before, name: b"payload"}
    else:
        with pytest.raises(TransientBackendError, match="attempt 1"):
            backend.save(otype, name, b"payload")
        assert flaky.calls["save"] == 1 and sleeps == []
        assert _contents(flaky.inner, otype) == before
    sleeps.clear()
    before = _contents(flaky.inner, otype)
    with pytest.raises(TransientBackendError, match="attempt 1"):
        backend.save_new(otype, _name(otype, b"another payload"), b"another payload")
    assert flaky.calls["save_new"] == 1 and sleeps == []
    assert _contents(flaky.inner, otype) == before


def test_retry_commits_a_stream_as_a_retried_save(sleeps: list[float]) -> None:
    backend, flaky = _flaky(failures=RETRIES)
    stream = backend.create_stream("data")
    stream.write(b"part one, ")
    stream.write(memoryview(b"part two"))
    assert flaky.calls["save"] == 0  # nothing sent before the commit
    name = ca(b"part one, part two")
    stream.commit(name)
    assert flaky.calls["save"] == RETRIES + 1
    assert flaky.inner.load("data", name) == b"part one, part two"
    with pytest.raises(PermanentBackendError):  # no name to retry a key file under
        backend.create_stream("keys")


@pytest.mark.parametrize("method", ["load", "list", "remove", "save"])
def test_retry_gives_up_after_retries(method: str, sleeps: list[float]) -> None:
    retries = 7
    backend, flaky = _flaky(failures=retries + 1, retries=retries)
    call: Callable[[], object] = {
        "load": lambda: backend.load("data", HELLO),
        "list": lambda: list(backend.list("keys")),
        "remove": lambda: backend.remove("keys", "k1"),
        "save": lambda: backend.save("index", ca(b"i"), b"i"),
    }[method]
    with pytest.raises(TransientBackendError, match=f"attempt {retries + 1}"):
        call()
    assert flaky.calls[method] == retries + 1
    # exponential pauses with jitter, up to a ceiling
    assert len(sleeps) == retries
    for n, pause in enumerate(sleeps):
        base = min(FIRST_DELAY * 2**n, MAX_DELAY)
        assert base <= pause <= 2 * base, (n, sleeps)
    assert flaky.inner.exists("keys", "k1") and not flaky.inner.exists("index", ca(b"i"))


def test_retry_does_not_repeat_other_errors(sleeps: list[float]) -> None:
    backend, flaky = _flaky(failures=0)
    with pytest.raises(NotFound):
        backend.load("data", PACK)
    with pytest.raises(UsageError):
        backend.load("data", "../escape")
    assert flaky.calls["load"] == 2
    flaky.error, flaky.failures = PermanentBackendError, 10
    with pytest.raises(PermanentBackendError):
        backend.load("data", HELLO)
    with pytest.raises(PermanentBackendError):
        backend.save("data", HELLO, b"hello world")
    assert flaky.calls["load"] == 3 and flaky.calls["save"] == 1
    assert sleeps == []
    # no retries asked for: one attempt
    once, flaky = _flaky(failures=1, retries=0)
    with pytest.raises(TransientBackendError):
        once.load("data", HELLO)
    assert flaky.calls["load"] == 1 and sleeps == []


def test_sftp_keeps_pack_handles_open_within_bounds(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Range reads of packs reuse an open handle (one round trip); at most
    MAX_OPEN stay open, and a removed pack is never read from a kept one."""
    from neostore.backend import sftp as sftpmodule

    monkeypatch.setenv("HOME", str(sftputil.ssh_home(sshd, tmp_path / "home")))
    monkeypatch.setattr(sftpmodule._PackHandles, "MAX_OPEN", 4)
    b = SftpBackend(sftputil.location(tmp_path / "packs"))
    b.create_repository()
    packs = {ca(bytes([i]) * 1000): bytes([i]) * 1000 for i in range(10)}
    for name, data in packs.items():
        b.save("data", name, data)
    for _ in range(2):
        for name, data in packs.items():
            assert b.load("data", name, 10, 20) == data[10:30]
            assert len(b._packs._open) <= 4
    name = next(iter(reversed(packs)))  # the most recently read: its handle is kept
    assert b._path("data", name) in b._packs._open
    b.remove("data", name)
    assert b._path("data", name) not in b._packs._open
    with pytest.raises(NotFound):
        b.load("data", name, 0, 10)
