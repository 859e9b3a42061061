"""``neostore mount`` (issue 16): a real repository mounted with FUSE by the
real command, the tree read through the mount compared with the source,
for the owner, a reader and a share key; unmounted by signal."""

from __future__ import annotations

import ctypes.util
import errno
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mountutil import mounted as _mounted

from conftest import PASSWORD, Cli


def _fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing on this machine"
    from neostore.errors import NeostoreError
    from neostore.mount.fuse import _binding

    try:
        _binding()  # the library the mount itself would take
    except NeostoreError as e:
        return f"{e} (scripts/test.sh installs fuse3)"
    return None


pytestmark = pytest.mark.skipif(
    _fuse_missing() is not None, reason=f"MOUNT TESTS SKIPPED: {_fuse_missing()}"
)

BAD_NAME = b"caf\xe9.txt"


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    rng = random.Random(9)
    (src / "docs" / "deep").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("hello\n")
    (src / "docs" / "deep" / "big.bin").write_bytes(rng.randbytes(3_000_000))
    (src / "docs" / "empty").write_bytes(b"")
    os.link(src / "docs" / "a.txt", src / "docs" / "deep" / "hard")
    os.symlink("../a.txt", src / "docs" / "deep" / "link")
    with open(os.path.join(os.fsencode(src / "docs"), BAD_NAME), "wb") as f:
        f.write(b"latin-1\n")
    os.chmod(src / "docs" / "a.txt", 0o640)
    os.setxattr(src / "docs" / "a.txt", "user.note", b"\x00bin\xff")
    os.mkfifo(src / "docs" / "pipe")
    (src / "shared").mkdir()
    (src / "shared" / "deck.txt").write_text("deck\n")
    return src


def _compare(src: Path, seen: Path) -> int:
    """``seen`` (through the mount) shows what ``src`` holds; how many entries."""
    count = 0
    for root, dirs, files in os.walk(os.fsencode(src)):
        for name in dirs + files:
            a = os.path.join(root, name)
            b = os.path.join(os.fsencode(seen), os.path.relpath(a, os.fsencode(src)))
            sa, sb = os.lstat(a), os.lstat(b)
            assert sa.st_mode == sb.st_mode, b
            assert (sa.st_uid, sa.st_gid) == (sb.st_uid, sb.st_gid), b
            if not stat.S_ISDIR(sa.st_mode):
                assert sa.st_mtime_ns == sb.st_mtime_ns, b
                assert sa.st_nlink == sb.st_nlink, b
            if stat.S_ISREG(sa.st_mode):
                assert sa.st_size == sb.st_size, b
                with open(a, "rb") as fa, open(b, "rb") as fb:
                    assert fa.read() == fb.read(), b
            if stat.S_ISLNK(sa.st_mode):
                assert os.readlink(a) == os.readlink(b)
            elif not stat.S_ISFIFO(sa.st_mode):
                for key in os.listxattr(a):
                    assert os.getxattr(a, key) == os.getxattr(b, key), (b, key)
                assert sorted(os.listxattr(a)) == sorted(os.listxattr(b)), b
            count += 1
    return count


def test_the_owner_sees_every_snapshot_as_it_was(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    first = repo.ok("snapshot", src, "--tag", "daily", "--json").json()["id"]
    mnt = tmp_path / "mnt"
    with _mounted(repo, mnt) as proc:
        target = mnt / "default"
        assert sorted(os.listdir(target)) == ["ids", "latest", "snapshots", "tags"]
        assert os.listdir(target / "ids") == [first[:8]]
        (stamp,) = os.listdir(target / "snapshots")
        assert os.readlink(target / "latest") == f"snapshots/{stamp}"
        assert os.listdir(target / "tags" / "daily") == [stamp]
        inside = str(src).lstrip("/")
        assert _compare(src, target / "ids" / first[:8] / inside) == 11
        assert _compare(src, target / "latest" / inside) == 11
        # a middle read fetches what it touches
        with open(target / "latest" / inside / "docs" / "deep" / "big.bin", "rb") as f:
            f.seek(1_500_000)
            assert f.read(10) == (src / "docs" / "deep" / "big.bin").read_bytes()[1_500_000:][:10]
        with pytest.raises(OSError):  # read-only
            open(target / "latest" / inside / "docs" / "new", "w")  # noqa: SIM115
        # a new snapshot appears without remounting
        (src / "docs" / "a.txt").write_text("changed\n")
        second = repo.ok("snapshot", src, "--json").json()["id"]
        assert sorted(os.listdir(target / "ids")) == sorted([first[:8], second[:8]])
        assert (target / "latest" / inside / "docs" / "a.txt").read_text() == "changed\n"
        assert (target / "ids" / first[:8] / inside / "docs" / "a.txt").read_text() == "hello\n"
        # a forgotten snapshot's folder goes with the next listing
        repo.ok("forget", first)
        assert os.listdir(target / "ids") == [second[:8]]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not os.path.ismount(mnt) and os.listdir(mnt) == []


def test_a_reader_and_a_share_key(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("key", "add", "--role", "reader", "--target", "default", extra_env={
        "NEOSTORE_NEW_PASSWORD": "reader pw"})  # fmt: skip
    repo.ok("share", "create", "-t", "default", "--path", f"{src}/shared", extra_env={
        "NEOSTORE_NEW_PASSWORD": "share pw"})  # fmt: skip
    repo.ok("snapshot", src)
    repo.ok("share", "sync")
    inside = str(src).lstrip("/")
    with _mounted(repo, tmp_path / "r", "reader pw") as _:
        assert _compare(src, tmp_path / "r" / "default" / "latest" / inside) == 11
    with _mounted(repo, tmp_path / "s", "share pw") as _:
        shown = tmp_path / "s" / "default" / "latest"
        assert os.listdir(shown) == ["shared"]  # the shared folder alone
        assert (shown / "shared" / "deck.txt").read_text() == "deck\n"


def test_a_key_that_cannot_read_is_refused_before_mounting(repo: Cli, tmp_path: Path) -> None:
    new = {"NEOSTORE_NEW_PASSWORD": "writer pw"}
    repo.ok("key", "add", "--role", "writer", "--target", "default", extra_env=new)
    (tmp_path / "mnt").mkdir()
    refused = repo("mount", str(tmp_path / "mnt"), password="writer pw", timeout=60)
    assert refused.code == 13 and "needs a reader" in refused.err, refused.err
    assert not os.path.ismount(tmp_path / "mnt")


def test_bad_mountpoints(repo: Cli, tmp_path: Path) -> None:
    missing = repo("mount", str(tmp_path / "nowhere"))
    assert missing.code == 2 and "not a directory" in missing.err
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    busy = repo("mount", str(full))
    assert busy.code == 2 and "not empty" in busy.err


def test_no_fuse_library_is_one_clear_line(repo: Cli, tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    env = {"FUSE_LIBRARY_PATH": str(tmp_path / "libfuse-missing.so")}
    result = repo("mount", str(tmp_path / "mnt"), extra_env=env, process=True)
    assert result.code == 1 and "Traceback" not in result.err, result.err
    assert "no FUSE library found" in result.err and "apt install fuse3 libfuse3-3" in result.err


def test_damage_sparse_files_and_mount_options(repo: Cli, tmp_path: Path) -> None:
    """A chunk that fails verification is EIO for its file and a warning
    naming it; the mount keeps serving. A sparse file uses the blocks it
    did. The mount is read-only, nosuid and nodev."""
    src = _source(tmp_path)
    with open(src / "sparse", "wb") as f:
        f.truncate(64 << 20)  # eight max-size chunks of zeros: holes
        f.write(b"head")
    repo.ok("snapshot", src)
    packs = sorted((repo.repo / "data").rglob("*"), key=lambda p: p.stat().st_size)
    data = bytearray(packs[-1].read_bytes())  # the biggest holds big.bin's chunks
    data[2000] ^= 0xFF
    packs[-1].write_bytes(bytes(data))
    mnt = tmp_path / "mnt"
    with _mounted(repo, mnt) as proc:
        inside = mnt / "default" / "latest" / str(src).lstrip("/")
        with pytest.raises(OSError) as failed:
            (inside / "docs" / "deep" / "big.bin").read_bytes()
        assert failed.value.errno == errno.EIO
        assert (inside / "docs" / "a.txt").read_text() == "hello\n"  # still serving
        sparse = os.stat(inside / "sparse")
        # the chunk holding "head" is data, the seven after it are holes
        assert sparse.st_size == 64 << 20 and sparse.st_blocks * 512 <= 16 << 20
        with open(inside / "sparse", "rb") as f:
            assert f.read(4) == b"head" and f.read(1 << 20) == bytes(1 << 20)
        (options,) = [
            line.split()[3]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == str(mnt)
        ]
        assert {"ro", "nosuid", "nodev"} <= set(options.split(","))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "big.bin: cannot be read" in err, err


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user: root")
def test_allow_other_checks_other_users_against_the_modes(repo: Cli, tmp_path: Path) -> None:
    """Without --allow-other only the user who mounted gets in; with it,
    another user reads what the recorded modes let it read."""
    import tempfile

    # a source every user can reach (the test's own folders are 0o700):
    # a.txt is 0o640 root:root, deck.txt 0o644
    open_dir = Path(tempfile.mkdtemp(dir="/tmp", prefix="neostore-src-"))
    os.chmod(open_dir, 0o755)
    src = _source(open_dir)
    os.chmod(src, 0o755)
    repo.ok("snapshot", src)
    inside = str(src).lstrip("/")

    def as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", str(path)],
            capture_output=True,
            text=True,
        )

    for allow in (False, True):
        mnt = Path(tempfile.mkdtemp(dir="/tmp", prefix="neostore-mnt-"))
        os.chmod(mnt, 0o755)
        try:
            with _mounted(repo, mnt, PASSWORD, *(["--allow-other"] if allow else [])):
                latest = mnt / "default" / "latest" / inside
                deck = as_nobody(latest / "shared" / "deck.txt")
                secret = as_nobody(latest / "docs" / "a.txt")
        finally:
            os.rmdir(mnt)
        assert secret.returncode != 0 and "Permission denied" in secret.stderr
        if allow:
            assert (deck.returncode, deck.stdout) == (0, "deck\n"), deck.stderr
        else:
            assert deck.returncode != 0  # not even in
    shutil.rmtree(open_dir)


def test_a_repository_on_neostore_server(neoserver: Any, cli: Cli, tmp_path: Path) -> None:
    """Over real HTTPS: stat and listings as locally, and sequential reads
    fetched a window of blobs at a time."""
    src = _source(tmp_path)
    env = dict(cli.env, **neoserver.client_env(), NEOSTORE_REPO=neoserver.url("mounted"))
    remote = Cli(env, cli.repo)
    remote.ok("init")
    remote.ok("snapshot", src)
    with _mounted(remote, tmp_path / "mnt") as _:
        latest = tmp_path / "mnt" / "default" / "latest" / str(src).lstrip("/")
        assert _compare(src, latest) == 11


def test_targets_and_the_target_option(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src / "docs")
    repo.ok("snapshot", src / "shared", "--target", "work")
    with _mounted(repo, tmp_path / "all") as _:
        assert sorted(os.listdir(tmp_path / "all")) == ["default", "work"]
        work = tmp_path / "all" / "work" / "latest" / str(src / "shared").lstrip("/")
        assert (work / "deck.txt").read_text() == "deck\n"
    with _mounted(repo, tmp_path / "one", PASSWORD, "--target", "work") as proc:
        assert os.listdir(tmp_path / "one") == ["work"]
        proc.send_signal(signal.SIGHUP)  # the terminal went away: a clean stop too
        assert proc.wait(timeout=30) == 0
    assert not os.path.ismount(tmp_path / "one")


def test_a_large_folder_is_listed_page_by_page_with_its_attributes(
    repo: Cli, tmp_path: Path
) -> None:
    """Thousands of entries take many readdir pages (each resumes at an
    offset); every entry comes with its attributes (readdirplus), and
    ``ls -l`` of it works without an error about attributes it lacks."""
    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(3000):
        entry = wide / f"{i:05d}-{'x' * (i % 90)}"
        entry.write_text(str(i))
        os.utime(entry, ns=(i * 10**9 + 7, i * 10**9 + 7))
        os.chmod(entry, 0o600 | (i % 0o100))
    repo.ok("snapshot", wide)
    with _mounted(repo, tmp_path / "mnt") as _:
        seen = tmp_path / "mnt" / "default" / "latest" / str(wide).lstrip("/")
        assert sorted(os.listdir(seen)) == sorted(os.listdir(wide))
        with os.scandir(seen) as entries:
            for entry in entries:
                a, b = os.lstat(wide / entry.name), entry.stat(follow_symlinks=False)
                assert (a.st_mode, a.st_mtime_ns, a.st_size) == (
                    b.st_mode,
                    b.st_mtime_ns,
                    b.st_size,
                )
        listed = subprocess.run(["ls", "-l", seen], capture_output=True, text=True)
        assert listed.returncode == 0 and listed.stderr == "", listed.stderr
        assert len(listed.stdout.splitlines()) == 3001  # "total" and the entries


def test_readdirplus_pages_resume_at_their_offsets() -> None:
    """The readdir callback itself (libfuse 3): "." and "..", then each
    entry with its attributes and the offset of the next, from wherever
    the kernel asks to resume."""
    from neostore.mount.fuse import _binding
    from neostore.mount.ops import fuse_class

    mfusepy = _binding()
    if mfusepy.fuse_version_major != 3:
        pytest.skip("readdirplus needs libfuse 3")

    class Fs:
        def listing(self, path: str, start: int = 0) -> Iterator[tuple[bytes, dict[str, Any]]]:
            assert path == "/t/dir"
            for i in range(start, 5):
                attrs = dict.fromkeys(("st_nlink", "st_uid", "st_gid", "st_rdev", "st_blocks"), 0)
                times = dict.fromkeys(("st_atime", "st_mtime", "st_ctime"), i * 10**9 + 5)
                yield f"e{i}".encode(), {**attrs, **times, "st_mode": 0o100644, "st_size": i}

    calls: list[tuple[bytes, int | None, int, int]] = []

    def page(offset: int, room: int, flags: int = 1) -> list[tuple[bytes, int | None, int, int]]:
        def filler(buf: Any, name: bytes, st: Any, off: int, fill: int) -> int:
            if len(calls) == room:
                return 1  # the kernel's buffer is full
            if st is not None:
                assert st.st_mtimespec.tv_sec == st.st_size and st.st_mtimespec.tv_nsec == 5
            calls.append((name, None if st is None else st.st_size, off, fill))
            return 0

        calls.clear()
        fuse = fuse_class(mfusepy, Fs())
        assert fuse.readdir_fuse_3(fuse, b"/t/dir", None, filler, offset, None, flags) == 0
        return list(calls)

    first = page(0, 4)
    assert first == [(b".", None, 1, 0), (b"..", None, 2, 0), (b"e0", 0, 3, 2), (b"e1", 1, 4, 2)]
    assert page(4, 10) == [(b"e2", 2, 5, 2), (b"e3", 3, 6, 2), (b"e4", 4, 7, 2)]
    assert page(7, 10) == []
    assert page(1, 2, flags=0) == [(b"..", None, 2, 0), (b"e0", 0, 3, 0)]


def test_missing_security_and_acl_attributes_are_not_supported(repo: Cli, tmp_path: Path) -> None:
    """``security.*`` and ``system.*`` an entry lacks: "not supported" (ls
    and cp then stop asking); any other missing name: "no such attribute";
    a recorded one is shown whatever its namespace."""
    src = _source(tmp_path)
    labelled = src / "docs" / "empty"
    try:
        os.setxattr(labelled, "security.neostore-test", b"label")
    except OSError:
        labelled = None  # type: ignore[assignment]  # not root, or no security.* here
    repo.ok("snapshot", src)
    with _mounted(repo, tmp_path / "mnt") as _:
        docs = tmp_path / "mnt" / "default" / "latest" / str(src / "docs").lstrip("/")
        for name, code in [
            ("security.selinux", errno.EOPNOTSUPP),
            ("system.posix_acl_access", errno.EOPNOTSUPP),
            ("user.absent", errno.ENODATA),
            ("trusted.absent", errno.ENODATA),
        ]:
            with pytest.raises(OSError) as caught:
                os.getxattr(docs / "a.txt", name)
            assert caught.value.errno == code, name
        assert os.getxattr(docs / "a.txt", "user.note") == b"\x00bin\xff"
        if labelled is not None:
            assert os.getxattr(docs / "empty", "security.neostore-test") == b"label"


@pytest.mark.skipif(ctypes.util.find_library("fuse") is None, reason="libfuse 2 not installed")
def test_libfuse_2_serves_and_stops_cleanly_too(repo: Cli, tmp_path: Path) -> None:
    """Where only libfuse 2 is found (older systems): no readdirplus, the
    same tree, the same clean exit on a signal."""
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    repo.env["FUSE_LIBRARY_PATH"] = str(ctypes.util.find_library("fuse"))
    with _mounted(repo, tmp_path / "mnt") as proc:
        inside = str(src).lstrip("/")
        assert _compare(src, tmp_path / "mnt" / "default" / "latest" / inside) == 11
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert not os.path.ismount(tmp_path / "mnt")


def test_the_signal_watcher_ends_with_the_session(tmp_path: Path) -> None:
    """In a process of its own (a process-wide signal would reach any
    thread of pytest's that does not block it): a session that ends by
    itself leaves no thread behind waiting for signals (it would take a
    later Ctrl-C meant for a program using the API); one ended by SIGTERM
    asks for the session's end, and its watcher goes too. The signals stay
    blocked only meanwhile."""
    script = f"""
import os, signal, threading
from neostore.mount.fuse import _until_stopped

stopping = threading.Event()
_until_stopped(lambda: None, {str(tmp_path)!r}, stopping)
assert not stopping.is_set() and threading.active_count() == 1, threading.enumerate()

def session():  # stands for fuse_main: ends once asked to
    os.kill(os.getpid(), signal.SIGTERM)  # blocked here: the watcher takes it
    assert stopping.wait(10), "the watcher did not ask the session to end"

_until_stopped(session, {str(tmp_path)!r}, stopping)
assert stopping.is_set() and threading.active_count() == 1, threading.enumerate()
assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
print("ok")
"""
    run = [sys.executable, "-c", script]
    done = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
