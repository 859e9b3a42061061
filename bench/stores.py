"""Snapshot and restore on remote stores that scale past one machine, beside
restic on the very same store: S3 on a single-node Ceph RADOS Gateway, and
SFTP on OpenSSH's server, both on this machine's loopback.

``python -m bench stores [--size full|small | --corpus DIR] [--reps 3]``

The services are started by the project's own scripts (tests/services/) and
stopped at the end. Every repetition runs four configurations in
alternating order, each in a fresh bucket or directory: neostore and
restic to S3 (``s3:http://127.0.0.1:PORT/BUCKET``), neostore and restic to
SFTP (neostore through ``~/.ssh/config``, restic through ``ssh`` with the
same key and known_hosts). Per configuration: the first snapshot of the
corpus and a full restore (verified against the corpus), page cache
dropped before each. ``--corpus DIR`` measures a directory of real files
(e.g. /usr/share/doc) instead of the generated bench corpus. The services
run on the same 2 cores as the clients: their CPU is part of every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

from bench.compare import (
    MB,
    REPO_ROOT,
    chosen_corpus,
    drop_caches,
    ensure_programs,
    run_measured,
    save_results,
    settle,
    tree_digest,
)

CONFIGS = ("neostore-s3", "restic-s3", "neostore-sftp", "restic-sftp")
PASSWORD = "bench-password"


def _services() -> Any:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from services import ceph, sshd

    return ceph, sshd


def _ssh_home(work: Path, ssh: Any) -> Path:
    home = work / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "config").write_text(
        f"Host bench-sftp\n  HostName {ssh.host}\n  Port {ssh.port}\n  User {ssh.user}\n"
        f"  IdentityFile {ssh.identity}\n  UserKnownHostsFile {ssh.known_hosts}\n"
    )
    return home


def _env(config: str, base: Path, s3: Any, ssh: Any, home: Path) -> tuple[dict[str, str], str]:
    """The environment and the repository location of one configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEOSTORE_", "RESTIC_"))}
    tool, store = config.split("-")
    if store == "s3":
        env.update(
            AWS_ACCESS_KEY_ID=s3.access_key,
            AWS_SECRET_ACCESS_KEY=s3.secret_key,
            AWS_DEFAULT_REGION=s3.region,
        )
        bucket = f"b-{uuid.uuid4().hex[:16]}"
        location = f"s3:{s3.endpoint}/{bucket}"
    elif tool == "neostore":
        env["HOME"] = str(home)
        location = f"sftp:bench-sftp:{base / 'on-server'}"
    else:
        location = f"sftp:{ssh.user}@{ssh.host}:{base / 'on-server'}"
    if tool == "neostore":
        env.update(
            NEOSTORE_PASSWORD=PASSWORD,
            NEOSTORE_CACHE_DIR=str(base / "cache"),
            NEOSTORE_STATE_DIR=str(base / "state"),
            NEOSTORE_REPO=location,
        )
    else:
        env.update(
            RESTIC_PASSWORD=PASSWORD,
            RESTIC_CACHE_DIR=str(base / "cache"),
            RESTIC_REPOSITORY=location,
        )
    return env, location


def _restic_args(config: str, ssh: Any) -> list[str]:
    if config != "restic-sftp":
        return []
    command = (
        f"ssh -i {ssh.identity} -o UserKnownHostsFile={ssh.known_hosts} "
        f"-o StrictHostKeyChecking=yes -p {ssh.port} {ssh.user}@{ssh.host} -s sftp"
    )
    return ["-o", f"sftp.command={command}"]


def run_config(
    config: str, rep: int, corpus: Path, work: Path, services: dict[str, Any], digest: Any
) -> dict[str, Any]:
    s3, ssh, home = services["s3"], services["ssh"], services["home"]
    base = work / config
    shutil.rmtree(base, ignore_errors=True)
    (base / "restore").mkdir(parents=True)
    env, location = _env(config, base, s3, ssh, home)
    log = base / "log.txt"
    tool = config.split("-")[0]
    exe = services["exes"][tool]
    extra = _restic_args(config, ssh)
    if tool == "neostore":
        init = [exe, "init", *(["--create-bucket"] if location.startswith("s3:") else [])]
    else:
        if location.startswith("s3:"):
            services["make_bucket"](location.rsplit("/", 1)[1])
        init = [exe, *extra, "init"]
    run_measured(init, env, log)
    steps = {
        "snapshot": [exe, *extra, "snapshot" if tool == "neostore" else "backup", str(corpus)],
        "restore": [exe, *extra, "restore", "latest", "--to" if tool == "neostore" else "--target",
                    str(base / "restore")],
    }  # fmt: skip
    record: dict[str, Any] = {"config": config, "rep": rep}
    for step, cmd in steps.items():
        record["caches_dropped"] = drop_caches(corpus)
        settle()
        m = run_measured(cmd, env, log)
        record[step] = {"wall": m.wall, "cpu": m.cpu, "tree_pss_kib": m.tree_pss_kib}
    if tree_digest(base / "restore" / corpus.relative_to(corpus.anchor)) != digest:
        raise SystemExit(f"{config}: restored tree differs from the corpus")
    if location.startswith("s3:"):
        services["drop_bucket"](location.rsplit("/", 1)[1])
    shutil.rmtree(base)
    print(json.dumps(record), flush=True)
    return record


def summarise(records: list[dict[str, Any]], corpus_bytes: int) -> str:
    def med(config: str, step: str, key: str) -> float:
        return statistics.median(r[step][key] for r in records if r["config"] == config)

    lines = [f"{'median of ' + str(len(records) // len(CONFIGS)):<20}" + "".join(
        f"{c:>15}" for c in CONFIGS)]  # fmt: skip
    for step in ("snapshot", "restore"):
        walls = {c: med(c, step, "wall") for c in CONFIGS}
        lines.append(f"{step + ' s':<20}" + "".join(f"{walls[c]:>15.2f}" for c in CONFIGS))
        lines.append(
            f"{step + ' MB/s':<20}"
            + "".join(f"{corpus_bytes / MB / walls[c]:>15.1f}" for c in CONFIGS)
        )
        lines.append(
            f"{step + ' CPU s':<20}" + "".join(f"{med(c, step, 'cpu'):>15.2f}" for c in CONFIGS)
        )
        for store in ("s3", "sftp"):
            ratio = walls[f"neostore-{store}"] / walls[f"restic-{store}"]
            lines.append(f"  {step} on {store}: neostore = {ratio:.2f} x restic's time")
    return "\n".join(lines)


def _bucket_tools(s3: Any) -> tuple[Any, Any]:
    import s3util  # tests/, on the path since _services()

    client = s3util.client(s3)

    def make(bucket: str) -> None:
        s3util.make_bucket(s3, bucket)

    def drop(bucket: str) -> None:  # memstore keeps everything in memory
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            for start in range(0, len(keys), 1000):
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})
        client.delete_bucket(Bucket=bucket)

    return make, drop


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stores", description=__doc__)
    parser.add_argument("--size", choices=("small", "full"), default="full")
    parser.add_argument("--corpus", type=Path, help="a directory of real files instead")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench-stores"))
    parser.add_argument("--memstore-gib", type=int, default=8)
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if ensure_programs(["restic"], install=not args.no_install):
        raise SystemExit("restic is needed: apt-get install restic")
    exes = {"neostore": str(Path(sys.executable).parent / "neostore")}
    exes["restic"] = shutil.which("restic") or "restic"
    corpus, meta = chosen_corpus(args.corpus, work, args.size)
    digest = tree_digest(corpus)
    ceph, sshd = _services()
    s3 = ceph.start(work / "ceph", memstore_bytes=args.memstore_gib << 30)
    try:
        ssh = sshd.start(work / "sshd")
        try:
            make, drop = _bucket_tools(s3)
            services = {"s3": s3, "ssh": ssh, "home": _ssh_home(work, ssh), "exes": exes,
                        "make_bucket": make, "drop_bucket": drop}  # fmt: skip
            records = []
            for rep in range(args.reps):
                order = CONFIGS if rep % 2 == 0 else tuple(reversed(CONFIGS))
                for config in order:
                    records.append(run_config(config, rep, corpus, work, services, digest))
        finally:
            sshd.stop(work / "sshd")
    finally:
        ceph.stop(work / "ceph")
    table = summarise(records, meta["bytes"])
    print(table)
    name = "real" if args.corpus else args.size
    save_results("stores", name, {"corpus": meta, "records": records, "table": table})
    return 0
