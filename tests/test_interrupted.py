"""What an interrupted snapshot costs (issue 15 item 8): the packs a run
killed with SIGKILL had uploaded are indexed by the next run instead of
uploaded again, and the temporary files interrupted writes leave are
reported by check and removed by prune."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from neostore.fsutil import TEMP_MARK

from conftest import PASSWORD, Cli

MIB = 1 << 20


def _packs(repo: Path) -> list[Path]:
    return [p for p in (repo / "data").rglob("*") if p.is_file() and TEMP_MARK not in p.name]


def test_a_killed_snapshot_costs_only_the_packs_in_flight(cli: Cli, tmp_path: Path) -> None:
    cli.ok(
        "init", "--chunk-min", "65536", "--chunk-avg", "262144", "--chunk-max", "524288",
        "--pack-size", str(MIB),
    )  # fmt: skip
    src = tmp_path / "src"
    src.mkdir()
    for i in range(48):
        (src / f"f{i:02}").write_bytes(os.urandom(MIB))
    env = dict(cli.env, NEOSTORE_PASSWORD=PASSWORD, NEOSTORE_REPO=str(cli.repo))
    proc = subprocess.Popen(
        [sys.executable, "-m", "neostore_cli.main", "snapshot", str(src)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while len(_packs(cli.repo)) < 20 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the snapshot finished before the kill"
    uploaded = len(_packs(cli.repo))
    assert not list((cli.repo / "index").iterdir())  # no index checkpoint was due yet
    done = cli.ok("snapshot", src, "--json").json()
    # lost: packs cut mid-write, and those a content worker had uploaded
    # but not yet reported to the run (about one per worker)
    assert done["packs_recovered"] >= uploaded - 4, (done["packs_recovered"], uploaded)
    stored = sum(p.stat().st_size for p in _packs(cli.repo))
    # what was lost: the packs that were still being written (one per upload
    # thread and content worker) and the run's small tree pack
    assert stored <= 48 * MIB * 1.03 + 6 * MIB, stored / MIB
    assert cli.ok("check", "--read-data", "--json").json()["ok"]


def test_check_reports_and_prune_removes_temporary_files(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    repo.ok("snapshot", src)
    old = repo.repo / "snapshots" / "default" / f"a{TEMP_MARK}1234-abcdef"
    old.write_bytes(b"left by a kill")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    young = repo.repo / "data" / f"{TEMP_MARK}99-0011"
    young.write_bytes(b"a write in progress")
    checked = repo.ok("check", "--json").json()
    assert checked["ok"] and any("2 temporary file(s)" in w for w in checked["warnings"])
    assert "remove 1 temporary file(s)" in repo.ok("prune", "--dry-run").out
    assert old.exists()
    assert "remove 1 temporary file(s)" in repo.ok("prune").out
    assert not old.exists() and young.exists()  # younger than the grace period: kept
