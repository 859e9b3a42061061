"""``neostore ui`` against the issue's targets: ``python -m bench ui [--reps 3]``.

One repository (production key derivation) holds a snapshot of a folder of
100 000 small files and a 1 GiB file of random bytes (bench/mount.py's,
made once, seeded), then 999 snapshots of a small changing folder: 1 000
snapshots in all. Per repetition, each with a fresh ``neostore ui``
process (nothing cached):

* **first page**: from starting ``neostore ui`` (Python start-up, key
  derivation, listing and verifying 1 000 snapshots) to the home page
  received, and the home page request alone (target ≤ 1 s after start);
* **100k folder**: opened after the home page, as a user gets there: the
  folder page over HTTP (decode 100 000 entries, render the first 500),
  and in headless Chromium from navigation start to first contentful
  paint (target ≤ 2 s);
* **download**: the 1 GiB file through ``?download=1`` (saved by the
  client) against ``neostore dump --to`` of it, both written to tmpfs,
  minus dump's fixed cost (``neostore
  ls`` of the file's folder: open, list, find the snapshot, load the index,
  resolve); the ratio is download throughput over dump's (target ≥ 0.8).

Prints medians; saves raw numbers under ``bench/results/ui-<date>.json``.
The data is the bench's own (synthetic); say so when quoting it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench.compare import RESULTS_DIR
from bench.mount import _extra, _scratch

PASSWORD = "bench ui password"
SNAPSHOTS = 1000


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOSTORE_")}
    env.update(
        NEOSTORE_REPO=str(work / "ui-repo"),
        NEOSTORE_PASSWORD=PASSWORD,
        NEOSTORE_STATE_DIR=str(work / "ui-state"),
        NEOSTORE_CACHE_DIR=str(work / "ui-cache"),
    )
    return env


def _neostore(*args: str) -> list[str]:
    return [sys.executable, "-m", "neostore_cli.main", *args]


def _repository(work: Path, extra: Path) -> None:
    """The 1 000-snapshot repository, made once (through the public API:
    one key derivation for all of them)."""
    done = work / "ui-repo.complete"
    if done.exists():
        return
    shutil.rmtree(work / "ui-repo", ignore_errors=True)
    shutil.rmtree(work / "ui-state", ignore_errors=True)
    os.environ.update({k: v for k, v in _env(work).items() if k.startswith("NEOSTORE_")})
    import neostore

    repo = neostore.init_repository(work / "ui-repo", PASSWORD)
    neostore.snapshot(repo, neostore.SnapshotOptions(paths=[str(extra)]))
    small = work / "ui-small"
    small.mkdir(exist_ok=True)
    for n in range(SNAPSHOTS - 1):
        (small / "counter.txt").write_text(f"{n}\n")
        (small / f"file-{n % 50}.txt").write_text(f"version {n}\n" * 20)
        neostore.snapshot(repo, neostore.SnapshotOptions(paths=[str(small)]))
        if n % 100 == 0:
            print(f"  {n + 2} snapshots", file=sys.stderr)
    done.write_text("")


class _Ui:
    def __init__(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            _neostore("ui", "--no-open", "--listen", "127.0.0.1:0"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        parts = urllib.parse.urlsplit(self.url)
        self.host, self.port = parts.hostname or "", parts.port or 0
        self.base = parts.path  # every path of the UI is under this prefix
        reply = self.request(f"/?{parts.query}")
        self.cookie = reply[1]["Set-Cookie"].split(";", 1)[0]

    def request(self, path: str, into: Path | None = None) -> tuple[int, Any, int]:
        """GET ``path``; the body is counted, or written to ``into``."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        headers = {"Cookie": self.cookie} if getattr(self, "cookie", None) else {}
        conn.request("GET", self.base + path.removeprefix("/"), headers=headers)
        response = conn.getresponse()
        size = 0
        with open(into or os.devnull, "wb") as out:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                out.write(chunk)
        conn.close()
        return response.status, response.msg, size

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def _paint(url: str, cookie: str) -> float | None:
    """Navigation start to first contentful paint in headless Chromium (s),
    after the home page was shown (as a user gets to a folder)."""
    try:
        from selenium import webdriver
    except ImportError:
        return None
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    try:
        base = url.split("/s/")[0] + "/"
        driver.get(base + "static/app.css")  # the origin, for the cookie
        name, value = cookie.split("=", 1)
        driver.add_cookie({"name": name, "value": value, "path": urllib.parse.urlsplit(base).path})
        driver.get(base)
        driver.get(url)
        driver.set_script_timeout(10)
        paint = driver.execute_async_script(
            "const done = arguments[0]; setTimeout(() => done(null), 5000);"
            "new PerformanceObserver(l => done(l.getEntries().find("
            "e => e.name === 'first-contentful-paint')?.startTime ?? null))"
            ".observe({type: 'paint', buffered: true});"
        )
        return None if paint is None else float(paint) / 1000
    finally:
        driver.quit()


def _dump(env: dict[str, str], snapshot: str, path: Path, into: Path) -> float:
    """Wall time of ``neostore dump`` of one file into a file."""
    started = time.monotonic()
    subprocess.run(_neostore("dump", snapshot, str(path), "--to", str(into)), env=env,
                   check=True, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.monotonic() - started


def _one(env: dict[str, str], snapshot: str, extra: Path, scratch: Path) -> dict[str, float | None]:
    ui = _Ui(env)
    try:
        t0 = time.monotonic()
        status, _, _ = ui.request("/")
        home = time.monotonic() - t0
        assert status == 200
        first_page = time.monotonic() - ui.started
        time.sleep(1)  # a user reads the page before opening a folder
        folder_url = f"/s/{snapshot}" + urllib.parse.quote(str(extra / "wide"))
        t0 = time.monotonic()
        status, _, size = ui.request(folder_url)
        folder_http = time.monotonic() - t0
        assert status == 200 and size > 50_000
    finally:
        ui.stop()
    ui = _Ui(env)  # nothing cached again, for the browser
    try:
        paint = _paint(f"http://{ui.host}:{ui.port}{ui.base}{folder_url[1:]}", ui.cookie)
        t0 = time.monotonic()
        status, _, size = ui.request(
            f"/s/{snapshot}" + urllib.parse.quote(str(extra / "big.bin")) + "?download=1",
            scratch / "downloaded",
        )
        download = time.monotonic() - t0
        assert status == 200 and size == (extra / "big.bin").stat().st_size
    finally:
        ui.stop()
        (scratch / "downloaded").unlink(missing_ok=True)
    big = _dump(env, snapshot, extra / "big.bin", scratch / "dumped")
    (scratch / "dumped").unlink()
    started = time.monotonic()  # dump's fixed cost: open, list, find, index, resolve
    subprocess.run(_neostore("ls", snapshot, str(extra)), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    tiny = time.monotonic() - started
    return {
        "first_page_after_start": first_page,
        "home_request": home,
        "folder_100k_http": folder_http,
        "folder_100k_first_paint": paint,
        "download_s": download,
        "dump_s": big,
        "dump_startup_s": tiny,
        "download_vs_dump": (big - tiny) / download,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ui")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neostore-bench"))
    args = parser.parse_args(argv)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    extra = _extra(work)
    _repository(work, extra)
    env = _env(work)
    listed = json.loads(subprocess.run(_neostore("snapshots", "--json"), env=env,
                                       capture_output=True, check=True).stdout)  # fmt: skip
    assert len(listed) == SNAPSHOTS, len(listed)
    snapshot = listed[0]["id"]
    scratch = _scratch()  # both copies of the 1 GiB file are written to tmpfs
    runs = [_one(env, snapshot, extra, scratch) for _ in range(args.reps)]
    medians = {
        key: statistics.median(v for r in runs if (v := r[key]) is not None)
        if any(r[key] is not None for r in runs) else None
        for key in runs[0]
    }  # fmt: skip
    for key, value in medians.items():
        print(f"{key:28} {'–' if value is None else f'{value:.3f}'}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"ui-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"runs": runs, "medians": medians, "snapshots": SNAPSHOTS}, indent=1))
    print(f"saved {out}")
    return 0
