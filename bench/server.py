"""Snapshot and restore throughput through neostore-server (HTTPS, localhost)
beside a local directory, for neostore and for restic (REST backend).

``python -m bench server [--size full|small] [--reps 3]``

Every repetition runs four configurations in alternating order, each in a
fresh repository: neostore to a local directory, neostore to neostore-server
over HTTPS, restic to a local directory, restic to neostore-server over
HTTPS. Per configuration: the first snapshot of the corpus and a full restore
(verified against the corpus). Each configuration starts with the page
cache dropped and the corpus read once (as root). The server runs on the
same 2 cores as the client, so its CPU (read from /proc) is reported too: on a real deployment it
would be another machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.compare import (
    MB,
    Measurement,
    drop_caches,
    ensure_programs,
    generate_corpus,
    run_measured,
    settle,
    tree_digest,
    warm_cache,
)

CONFIGS = ("neostore-local", "neostore-https", "restic-local", "restic-https")


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, work: Path, exe: str) -> None:
        self.data = work / "server-data"
        shutil.rmtree(self.data, ignore_errors=True)
        info = json.loads(
            subprocess.run(
                [exe, "init", "--data", str(self.data), "--json"],
                check=True,
                capture_output=True,
            ).stdout
        )
        self.token, self.fingerprint, self.cert = (
            info["admin_token"],
            info["fingerprint"],
            info["certificate"],
        )
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [exe, "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}",
             "--access-log", str(work / "server-access.log")],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "server.log", "ab"),  # noqa: SIM115 - lives as long as the server
        )  # fmt: skip
        time.sleep(1.5)
        if self.proc.poll() is not None:
            raise SystemExit(f"neostore-server did not start; see {work / 'server.log'}")

    def cpu(self) -> float:
        return _proc_cpu(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def _env(base: Path, config: str, server: Server, rep: int) -> tuple[dict[str, str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEOSTORE_", "RESTIC_"))}
    name = f"{config}-{rep}"
    if config.startswith("neostore"):
        env.update(
            NEOSTORE_PASSWORD="bench",
            NEOSTORE_CACHE_DIR=str(base / "cache"),
            NEOSTORE_STATE_DIR=str(base / "state"),
        )
        if config.endswith("https"):
            env.update(
                NEOSTORE_REPO=f"https://127.0.0.1:{server.port}/{name}",
                NEOSTORE_SERVER_TOKEN=server.token,
                NEOSTORE_SERVER_FINGERPRINT=server.fingerprint,
            )
        else:
            env["NEOSTORE_REPO"] = str(base / "repo")
        return env, []
    env.update(RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=str(base / "cache"))
    if config.endswith("https"):
        env["RESTIC_REPOSITORY"] = (
            f"rest:https://admin:{server.token}@127.0.0.1:{server.port}/{name}/"
        )
        return env, ["--cacert", server.cert]
    env["RESTIC_REPOSITORY"] = str(base / "repo")
    return env, []


def run_config(
    config: str,
    rep: int,
    corpus: Path,
    work: Path,
    server: Server,
    exes: dict[str, str],
    digest: Any,
) -> dict[str, Any]:
    base = work / config
    shutil.rmtree(base, ignore_errors=True)
    (base / "restore").mkdir(parents=True)
    env, extra = _env(base, config, server, rep)
    log = base / "log.txt"
    tool = "neostore" if config.startswith("neostore") else "restic"
    exe = exes[tool]
    subprocess.run([exe, *extra, "init"], env=env, check=True, capture_output=True)
    steps = {
        "snapshot": [exe, *extra, "snapshot" if tool == "neostore" else "backup", str(corpus)],
        "restore": [exe, *extra, "restore", "latest", "--to" if tool == "neostore" else "--target",
                    str(base / "restore")],
    }  # fmt: skip
    record: dict[str, Any] = {"config": config, "rep": rep}
    record["caches_dropped"] = drop_caches(corpus)
    for step, cmd in steps.items():
        settle()
        cpu0 = server.cpu()
        m: Measurement = run_measured(cmd, env, log)
        record[step] = {"wall": m.wall, "client_cpu": m.cpu, "server_cpu": server.cpu() - cpu0}
    got = tree_digest(base / "restore" / corpus.relative_to(corpus.anchor))
    if got != digest:
        raise SystemExit(f"{config}: restored tree differs from the corpus")
    shutil.rmtree(base)
    shutil.rmtree(server.data / "repos" / f"{config}-{rep}", ignore_errors=True)
    print(json.dumps(record), flush=True)
    return record


def summarise(records: list[dict[str, Any]], corpus_bytes: int) -> str:
    def med(config: str, step: str, key: str) -> float:
        return statistics.median(r[step][key] for r in records if r["config"] == config)

    lines = [
        f"{'median of ' + str(len(records) // len(CONFIGS)):<18}"
        + "".join(f"{c:>16}" for c in CONFIGS)
    ]
    for step in ("snapshot", "restore"):
        walls = {c: med(c, step, "wall") for c in CONFIGS}
        lines.append(f"{step + ' s':<18}" + "".join(f"{walls[c]:>16.2f}" for c in CONFIGS))
        lines.append(
            f"{step + ' MB/s':<18}"
            + "".join(f"{corpus_bytes / MB / walls[c]:>16.1f}" for c in CONFIGS)
        )
        for key in ("client_cpu", "server_cpu"):
            lines.append(
                f"{step + ' ' + key.split('_')[0] + ' CPU s':<18}"
                + "".join(f"{med(c, step, key):>16.2f}" for c in CONFIGS)
            )
        for tool in ("neostore", "restic"):
            ratio = walls[f"{tool}-local"] / walls[f"{tool}-https"]
            lines.append(f"  {tool} {step}: https throughput = {ratio:.2f} x local")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench server", description=__doc__)
    parser.add_argument("--size", choices=("small", "full"), default="full")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    exes = {"neostore": str(bindir / "neostore"), "server": str(bindir / "neostore-server")}
    if ensure_programs(["restic"], install=not args.no_install):
        raise SystemExit("restic is needed: apt-get install restic")
    exes["restic"] = shutil.which("restic") or "restic"
    corpus = work / f"corpus-{args.size}"
    meta = generate_corpus(corpus, args.size)
    digest = tree_digest(corpus)
    warm_cache(corpus)
    print(f"corpus: {meta['files']} files, {meta['bytes'] / MB:.1f} MB", flush=True)
    server = Server(work, exes["server"])
    records = []
    try:
        for rep in range(args.reps):
            order = CONFIGS if rep % 2 == 0 else tuple(reversed(CONFIGS))
            for config in order:
                records.append(run_config(config, rep, corpus, work, server, exes, digest))
    finally:
        server.stop()
    table = summarise(records, meta["bytes"])
    print(table)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(__file__).parent / "results" / f"server-{args.size}-{stamp}.json"
    out.write_text(json.dumps({"corpus": meta, "records": records, "table": table}, indent=1))
    print(f"results: {out}")
    return 0
