"""A single-node Ceph cluster with a RADOS Gateway, for tests and benches.

One monitor, one OSD on memstore (objects kept in memory), pool size 1,
authentication off, and radosgw's beast frontend on a free loopback port;
an S3 user is created with ``radosgw-admin``. Everything lives under one
work directory and is stopped by PID.

    python tests/services/ceph.py start DIR [--memstore-gib N]   # prints JSON
    python tests/services/ceph.py stop DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

try:
    from . import processes
except ImportError:  # run as a script: python tests/services/NAME.py
    import processes  # type: ignore[no-redef]

PACKAGES = ("ceph-mon", "ceph-osd", "radosgw", "ceph-common")
ACCESS_KEY = "NEOSTORETESTACCESS01"
SECRET_KEY = "neostore-test-secret-key-0123456789abcdef"


@dataclass
class S3Service:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    workdir: str
    pids: list[int]


def installed() -> bool:
    return all(shutil.which(c) for c in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin"))


def _config(work: Path, mon_port: int, rgw_port: int, memstore_bytes: int) -> str:
    return f"""[global]
fsid = {uuid.uuid4()}
mon host = v2:127.0.0.1:{mon_port}
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc secure
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 2000
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
run dir = {work}/run
admin socket = {work}/run/$name.asok
log file = {work}/log/$name.log
pid file = {work}/run/$name.pid
mon data = {work}/mon/$name
osd data = {work}/osd/$name
keyring = {work}/keyring
mon warn on pool no redundancy = false
mon data avail warn = 1
osd memory target = 1073741824

[client.rgw.local]
ms mon client mode = crc secure
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {work}/rgw
rgw thread pool size = 64
rgw enable usage log = false
# memstore holds everything in memory: give deleted objects' space back soon
# (radosgw's garbage collector waits two hours by default)
rgw gc obj min wait = 0
rgw gc processor period = 5
rgw gc processor max time = 5
"""


def _run(work: Path, *args: str) -> str:
    done = subprocess.run(
        [*args, "-c", str(work / "ceph.conf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _wait_http(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"radosgw did not listen on port {port}")


def start(workdir: str | os.PathLike[str], memstore_bytes: int = 2 << 30) -> S3Service:
    work = Path(workdir).resolve()
    if work.exists():
        stop(work)
        shutil.rmtree(work)
    for sub in ("run", "log", "mon/mon.a", "osd/osd.0", "rgw"):
        (work / sub).mkdir(parents=True)
    mon_port, rgw_port = processes.free_port(), processes.free_port()
    (work / "ceph.conf").write_text(_config(work, mon_port, rgw_port, memstore_bytes))
    conf = str(work / "ceph.conf")
    monmap = str(work / "monmap")
    fsid = _config_value(work, "fsid")
    subprocess.run(
        [
            "monmaptool",
            "--create",
            "--fsid",
            fsid,
            "--addv",
            "a",
            f"[v2:127.0.0.1:{mon_port}]",
            monmap,
        ],
        check=True,
        capture_output=True,
    )
    _run(work, "ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
    pids = [_daemon(work, ["ceph-mon", "-i", "a", "-c", conf, "-f"], "mon")]
    _run(work, "ceph", "osd", "create")
    _run(work, "ceph-osd", "-i", "0", "--mkfs")
    pids.append(_daemon(work, ["ceph-osd", "-i", "0", "-c", conf, "-f"], "osd"))
    pids.append(_daemon(work, ["radosgw", "-n", "client.rgw.local", "-c", conf, "-f"], "rgw"))
    (work / "pids").write_text(" ".join(map(str, pids)))
    _wait_http(rgw_port, time.monotonic() + 120)
    _create_user(work, "neostore", ACCESS_KEY, SECRET_KEY)
    service = S3Service(
        f"http://127.0.0.1:{rgw_port}", ACCESS_KEY, SECRET_KEY, "us-east-1", str(work), pids
    )
    (work / "service.json").write_text(json.dumps(asdict(service)))
    return service


def add_user(service: S3Service, uid: str) -> tuple[str, str]:
    """Another S3 account (its access key and secret): buckets are private
    to the account that made them."""
    work = Path(service.workdir)
    access = f"NEOSTORE{uid.upper()}"[:20].ljust(20, "0")
    secret = f"secret-of-{uid}-0123456789abcdef0123456789"
    _create_user(work, uid, access, secret)
    return access, secret


def _create_user(work: Path, uid: str, access: str, secret: str) -> None:
    _run(work, "radosgw-admin", "user", "create", "--uid", uid, "--display-name", uid,
         "--access-key", access, "--secret-key", secret)  # fmt: skip


def _config_value(work: Path, key: str) -> str:
    for line in (work / "ceph.conf").read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip()
    raise KeyError(key)


def _daemon(work: Path, argv: list[str], name: str) -> int:
    return processes.daemon(work / "log" / f"{name}.out", argv).pid


def stop(workdir: str | os.PathLike[str]) -> None:
    processes.stop(workdir, grace=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("workdir")
    parser.add_argument("--memstore-gib", type=float, default=2.0)
    args = parser.parse_args()
    if args.action == "start":
        print(json.dumps(asdict(start(args.workdir, int(args.memstore_gib * (1 << 30))))))
    else:
        stop(args.workdir)


if __name__ == "__main__":
    sys.exit(main())
