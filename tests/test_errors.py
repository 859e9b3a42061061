"""Bad input through the real CLI: a clear one-line error, the documented
exit code, and nothing lost."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

from conftest import Cli
from treeutil import IS_ROOT


def _tree_digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_wrong_password_exit_12_and_untouched(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    repo.ok("snapshot", src)
    before = _tree_digest(repo.repo)
    for command in (["snapshots"], ["snapshot", str(src)], ["check"], ["ls", "latest"]):
        result = repo(*command, password="not the password")
        assert result.code == 12, command
        assert "wrong password" in result.err
        assert len(result.err.strip().splitlines()) == 1
    assert _tree_digest(repo.repo) == before


def test_missing_repository_exit_10(cli: Cli, tmp_path: Path) -> None:
    result = cli("snapshots", "-r", tmp_path / "nowhere")
    assert result.code == 10
    assert "no repository" in result.err
    assert not (tmp_path / "nowhere").exists()


def test_no_repository_given(cli: Cli) -> None:
    env = dict(cli.env)
    result = subprocess.run(
        [sys.executable, "-m", "neostore_cli.main", "snapshots"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2  # a missing argument, as a malformed one
    assert b"no repository given" in result.stderr


def test_init_twice_refused(repo: Cli) -> None:
    result = repo("init")
    assert result.code == 1 and "already exists" in result.err


def test_password_file(cli: Cli, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("file password\n")
    cli.ok("init", "--password-file", pw, password=None)
    assert cli.ok("snapshots", "--password-file", pw, "--json", password=None).json() == []
    env_file = cli("snapshots", password=None, extra_env={"NEOSTORE_PASSWORD_FILE": str(pw)})
    assert env_file.code == 0
    assert cli("snapshots", password="file password").code == 0
    nothing = cli("snapshots", password=None)
    assert nothing.code == 1 and "no password given" in nothing.err


def test_newer_format_refused(repo: Cli) -> None:
    config = repo.repo / "config"
    body, signature = msgpack.unpackb(config.read_bytes())
    fields = msgpack.unpackb(body)
    fields["v"] = 2
    config.write_bytes(msgpack.packb([msgpack.packb(fields), signature]))
    result = repo("snapshots")
    assert result.code == 1
    assert "newer than this neostore supports" in result.err


def test_tampered_config_rejected(repo: Cli) -> None:
    config = repo.repo / "config"
    body, signature = msgpack.unpackb(config.read_bytes())
    fields = msgpack.unpackb(body)
    fields["pack_size"] = 1 << 20
    config.write_bytes(msgpack.packb([msgpack.packb(fields), signature]))
    result = repo("snapshots")
    assert result.code == 1 and "config: signature does not verify" in result.err


def _without_dac_override() -> None:
    """Root reads anything; drop the two capabilities that let it (from the
    bounding set, so they are gone after exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_file_exit_3(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("fine")
    secret = src / "secret.txt"
    secret.write_text("nobody may read this")
    secret.chmod(0o000)
    kwargs = {"preexec_fn": _without_dac_override} if IS_ROOT else {}
    result = repo("snapshot", src, "--json", **kwargs)
    assert result.code == 3, result.err
    assert str(secret) in result.err
    summary = result.json()
    assert [e["path"] for e in summary["errors"]] == [str(secret)]
    listed = repo.ok("ls", "latest", str(src)).out.splitlines()
    assert listed == [str(src / "ok.txt")]


def _flip_byte_in_largest_pack(repo_path: Path) -> Path:
    packs = sorted(
        (repo_path / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0
    )
    victim = packs[-1]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01  # inside the first blob of the pack
    victim.write_bytes(bytes(data))
    return victim


def test_flipped_byte_detected_and_rest_restored(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {f"f{i}.bin": os.urandom(300_000) for i in range(6)}
    for name, content in files.items():
        (src / name).write_bytes(content)
    repo.ok("init", "-r", tmp_path / "unused")  # unrelated repo must not matter
    # small packs so that corruption hits some files and not others
    small = tmp_path / "small-packs"
    repo.ok(
        "init",
        "-r",
        small,
        "--pack-size",
        "400000",
        "--chunk-min",
        "65536",
        "--chunk-avg",
        "131072",
        "--chunk-max",
        "262144",
    )
    repo.ok("snapshot", "-r", small, src)
    assert repo.ok("check", "-r", small, "--read-data").code == 0

    victim = _flip_byte_in_largest_pack(small)
    checked = repo("check", "-r", small, "--read-data")
    assert checked.code == 1
    assert victim.name in checked.err
    assert "authentication failed" in checked.err or "does not match" in checked.err
    assert repo("check", "-r", small).code == 0  # structure alone is still fine

    out = tmp_path / "out"
    restored = repo("restore", "-r", small, "latest", "--to", out)
    assert restored.code == 1
    assert victim.name in restored.err
    base = out / str(src).lstrip("/")
    intact = [
        name
        for name, content in files.items()
        if (base / name).exists() and (base / name).read_bytes() == content
    ]
    broken = [name for name in files if name not in intact]
    assert broken, "the flipped byte must break at least one file"
    assert intact, "files in other packs must still be restored"
    for name in broken:
        assert name in restored.err
        assert not (base / name).exists()


def test_interrupted_snapshot_exit_130_and_consistent(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-random.bin").write_bytes(os.urandom(48 * 1024 * 1024))
    with open(src / "b-sparse.img", "wb") as f:
        f.truncate(64 * 1024**3)  # 64 GiB of zeros: far longer than the test waits
    proc = repo.popen("snapshot", src)
    deadline = time.monotonic() + 120
    # wait for a complete pack (not a pack still being written, a temporary file)
    while not any(p.is_file() and ".tmp-" not in p.name for p in (repo.repo / "data").rglob("*")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert not any(p.is_file() for p in (repo.repo / "snapshots").rglob("*"))
    assert list((repo.repo / "index").iterdir()), "uploaded packs are indexed on interrupt"
    assert repo.ok("check", "--read-data").code == 0
    assert repo.ok("snapshots", "--json").json() == []

    # the next snapshot reuses what the interrupted one uploaded
    (src / "b-sparse.img").unlink()
    assert not [p for p in (repo.repo / "data").rglob("*") if ".tmp-" in p.name]
    uploaded = sum(p.stat().st_size for p in (repo.repo / "data").rglob("*") if p.is_file())
    assert uploaded > 0
    again = repo.ok("snapshot", src, "--json").json()
    assert again["bytes_added"] + uploaded < 50 * 1024 * 1024  # nothing uploaded twice
    assert repo.ok("check", "--read-data").code == 0


@pytest.mark.parametrize("flag", ["--exclude", "--exclude-file"])
def test_excludes(repo: Cli, tmp_path: Path, flag: str) -> None:
    src = tmp_path / "src"
    (src / "cache").mkdir(parents=True)
    (src / "cache" / "big").write_text("x")
    (src / "keep.txt").write_text("k")
    (src / "skip.tmp").write_text("s")
    patterns = ["*.tmp", f"{src}/cache"]
    if flag == "--exclude":
        args = [a for p in patterns for a in ("--exclude", p)]
    else:
        listing = tmp_path / "excludes"
        listing.write_text("# comment\n" + "\n".join(patterns) + "\n")
        args = ["--exclude-file", str(listing)]
    repo.ok("snapshot", src, *args)
    assert repo.ok("ls", "latest", str(src), "-R").out.splitlines() == [str(src / "keep.txt")]


def _children(pid: int) -> list[int]:
    """The worker processes of ``pid`` (not the resource tracker that
    ``multiprocessing`` starts beside spawned workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and b"resource_tracker" not in command:
                found.append(int(entry.name))
    return found


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (its /proc fd links)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


def test_store_refusing_packs_fails_the_snapshot_cleanly(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    repo.ok("snapshot", src)
    # the store can no longer take packs: data/ is now a file, so no pack
    # (nor its temporary file) can be created in it
    data = repo.repo / "data"
    data.rename(tmp_path / "data-aside")
    data.write_bytes(b"")
    (src / "b.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    result = repo("snapshot", src)
    assert result.code == 1, result.err
    assert "data" in result.err and len(result.err.strip().splitlines()) == 1
    data.unlink()
    (tmp_path / "data-aside").rename(data)
    assert len(repo.ok("snapshots", "--json").json()) == 1  # no manifest was written
    assert repo.ok("check", "--read-data").code == 0
    repo.ok("snapshot", src)  # and the store works again once it takes packs


def test_killed_worker_fails_the_snapshot_and_loses_nothing(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_text("kept")
    repo.ok("snapshot", src, "--tag", "before")
    with open(src / "sparse.img", "wb") as f:
        f.truncate(64 * 1024**3)  # zeros: far longer than the test waits
    proc = repo.popen("snapshot", src)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    busy: list[int] = []
    while len(workers) < 2 or not busy:  # until a worker has the sparse file open
        assert proc.poll() is None and time.monotonic() < deadline
        workers = _children(proc.pid)
        busy = [pid for pid in workers if _has_open(pid, src / "sparse.img")]
        time.sleep(0.02)
    # the hard case: kill a worker holding no batch (the other is reading the
    # sparse file), which no batch result will ever report: the run must
    # still end, not wait for the busy one
    idle = next(pid for pid in workers if pid not in busy)
    os.kill(idle, signal.SIGKILL)
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # no-op once it ended; never leave a 64 GiB read behind
    assert proc.returncode == 1, err
    assert b"worker process died" in err
    assert [s["tags"] for s in repo.ok("snapshots", "--json").json()] == [["before"]]
    assert repo.ok("check", "--read-data").code == 0
