"""``neostore ui`` over real HTTP: who may talk to it (token, cookie, Host,
Origin, CSRF), what each page shows, downloads byte for byte, and jobs
(backup, restore, queueing, cancelling) run against a real repository."""

from __future__ import annotations

import http.client
import io
import os
import random
import re
import shutil
import signal
import tarfile
import time
import urllib.parse
import zipfile
from pathlib import Path

from conftest import PASSWORD, Cli
from uiutil import Ui, snapshot_path


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "notes.txt").write_text("first version\n")
    (src / "docs" / "evil.html").write_text("<script>alert(1)</script>\n")
    (src / "big.bin").write_bytes(random.Random(7).randbytes(3_000_000))
    (src / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    os.symlink("docs/notes.txt", src / "link")
    return src


def _ids(repo: Cli) -> list[str]:
    return [s["id"] for s in repo.ok("snapshots", "--json").json()]


def test_nothing_without_the_token(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    snapshot_id = _ids(repo)[0]
    with Ui(repo) as ui:
        for path in ("/", snapshot_path(snapshot_id, src), "/api/jobs/1", "/static/app.js"):
            refused = ui.get(path)
            assert refused.status == 401 and snapshot_id[:8] not in refused.text
        assert ui.get("/?token=" + "x" * 43, cookie=False).status == 401
        ui.cookie = f"neostore_ui_{ui.port}=" + "y" * 43
        assert ui.get("/").status == 401
        # the token buys an HttpOnly, SameSite=Strict cookie and leaves the URL
        reply = ui.get(f"/find?q=a&token={ui.token}", cookie=False)
        assert reply.status == 303 and reply.headers["Location"] == ui.base + "find?q=a"
        cookie = reply.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        home = ui.login()
        assert home.status == 200 and snapshot_id[:8] in home.text
        assert "default-src 'none'" in home.headers["Content-Security-Policy"]
        # another Host (DNS rebinding) or a request from another site: refused
        evil = ui.get("/", headers={"Host": f"evil.example:{ui.port}"})
        assert evil.status == 403 and snapshot_id[:8] not in evil.text
        assert ui.get("/", headers={"Origin": "http://evil.example"}).status == 403
        assert ui.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status == 403
        same = ui.get("/", headers={"Origin": f"http://127.0.0.1:{ui.port}"})
        assert same.status == 200
        # a state change needs the CSRF token, whatever the cookie
        form = {"paths": str(src), "target": "default"}
        assert ui.post("/backup", form, csrf=False).status == 403
        bad = [*form.items(), ("csrf", "nope")]
        assert ui.post("/backup", bad, csrf=False).status == 403
        assert ui.get("/api/jobs/1").status == 404  # no job was started
        assert ui.stop() == 0


def test_browse_file_pages_and_downloads(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    (src / "docs" / "notes.txt").write_text("second version\n")
    repo.ok("snapshot", src)
    first, second = _ids(repo)
    with Ui(repo) as ui:
        ui.login()
        folder = ui.get(snapshot_path(second, src))
        assert folder.status == 200
        for name in ("docs/", "big.bin", "pic.png", "link"):
            assert f">{name}</a>" in folder.text
        assert "Breadcrumbs" in folder.text and "-rw-r--r--" in folder.text
        # a file: its versions, changed or not, and an escaped preview
        notes = ui.get(snapshot_path(second, src / "docs" / "notes.txt")).text
        assert "second version" in notes
        assert re.search(r"changed</td>.*first version</td>", notes, re.S)
        evil = ui.get(snapshot_path(second, src / "docs" / "evil.html")).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil and "<script>alert" not in evil
        assert "unchanged" in evil
        # downloads, byte for byte
        got = ui.get(snapshot_path(second, src / "big.bin") + "?download=1")
        assert got.status == 200 and got.body == (src / "big.bin").read_bytes()
        assert got.headers["Content-Disposition"].startswith("attachment;")
        old = ui.get(snapshot_path(first, src / "docs" / "notes.txt") + "?download=1")
        assert old.body == b"first version\n"
        image = ui.get(snapshot_path(second, src / "pic.png") + "?download=1&inline=1")
        assert image.headers["Content-Type"] == "image/png"
        html = ui.get(snapshot_path(second, src / "docs" / "evil.html") + "?download=1&inline=1")
        assert html.headers["Content-Type"] == "application/octet-stream"  # never rendered
        # a folder as zip and as tar
        archive = ui.get(snapshot_path(second, src) + "?download=zip")
        with zipfile.ZipFile(io.BytesIO(archive.body)) as z:
            assert z.read("src/big.bin") == (src / "big.bin").read_bytes()
            assert z.read("src/docs/notes.txt") == b"second version\n"
        archive = ui.get(snapshot_path(second, src / "docs") + "?download=tar")
        with tarfile.open(fileobj=io.BytesIO(archive.body)) as t:
            member = t.extractfile("docs/notes.txt")
            assert member is not None and member.read() == b"second version\n"
        # paths that climb, or are not there: 404
        climbing = snapshot_path(second, src) + "/docs/%2e%2e/%2e%2e/etc/passwd"
        assert ui.get(climbing).status == 404
        assert ui.get(snapshot_path(second, src / "nothing")).status == 404
        assert ui.get(snapshot_path("ab" * 32, "/")).status == 404


def test_a_large_folder_pages_and_sorts(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    for n in range(1200):
        (src / f"f{n:05d}").write_bytes(b"x" * (n % 7))
    repo.ok("snapshot", src)
    (snapshot_id,) = _ids(repo)
    with Ui(repo) as ui:
        ui.login()
        first = ui.get(snapshot_path(snapshot_id, src)).text
        assert "Entries 1–250 of 1200" in first
        assert ">f00000</a>" in first and ">f00249</a>" in first and ">f00250</a>" not in first
        last = ui.get(snapshot_path(snapshot_id, src) + "?page=5").text
        assert "Entries 1001–1200 of 1200" in last and ">f01199</a>" in last
        by_size = ui.get(snapshot_path(snapshot_id, src) + "?sort=size&order=desc").text
        names = re.findall(r">(f\d{5})</a>", by_size)
        assert len(names) == 250 and all(int(n[1:]) % 7 == 6 for n in names[:150])


def test_home_status_search_and_compare(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src, "--tag", "before")
    (src / "docs" / "notes.txt").write_text("second version\n")
    (src / "pic.png").unlink()
    (src / "new.txt").write_text("new\n")
    repo.ok("snapshot", src)
    repo.ok("check")
    first, second = _ids(repo)
    with Ui(repo) as ui:
        home = ui.login().text
        assert first[:8] in home and second[:8] in home and "before" in home
        assert "Last check" in home and "no problem found" in home
        assert "Space used in the store" in home and "Target default (2 snapshots)" in home
        found = ui.get("/find?q=notes.txt").text
        assert "2 match(es)" in found and found.count("/docs/notes.txt</a>") == 2
        assert "0 match(es)" in ui.get("/find?q=nothing-like-it").text
        changes = ui.get(f"/diff?a={first}&b={second}").text
        assert "1 added" in changes and "1 modified" in changes and "1 removed" in changes
        assert re.search(r"removed</td><td><a [^>]*>[^<]*/pic.png</a>", changes)
        assert "no change" in ui.get(f"/diff?a={first}&b={first}").text


def test_backup_and_restore_jobs(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    with Ui(repo) as ui:
        ui.login()
        started = ui.post("/backup", {"paths": str(src), "target": "default", "tags": "ui"})
        assert started.status == 303 and started.headers["Location"] == ui.base + "jobs/1"
        job = ui.wait_job(1)
        assert job["state"] == "done", job
        assert job["total_files"] == 4 and job["total_bytes"] == job["bytes"] > 3_000_000
        new = job["result"]["snapshot"]
        assert new in _ids(repo) and new[:8] in ui.get("/").text  # shown at once
        # restore a folder into a chosen folder
        fields = [("snapshot", new), ("item", str(src / "docs")), ("where", "folder"),
                  ("destination", str(tmp_path / "out")), ("overwrite", "always")]  # fmt: skip
        assert ui.post("/restore", fields).headers["Location"] == ui.base + "jobs/2"
        assert ui.wait_job(2)["state"] == "done"
        assert (tmp_path / "out" / "docs" / "notes.txt").read_text() == "first version\n"
        # to the original place: a confirmation first, naming what is overwritten
        (src / "docs" / "notes.txt").write_text("edited since\n")
        fields = [("snapshot", new), ("item", str(src / "docs")), ("where", "original"),
                  ("overwrite", "always")]  # fmt: skip
        ask = ui.post("/restore", fields)
        assert ask.status == 200 and "Overwrite these files?" in ask.text
        assert f"{src}/docs/notes.txt" in ask.text and "2\nexisting file(s)" in ask.text
        assert (src / "docs" / "notes.txt").read_text() == "edited since\n"
        done = ui.post("/restore", [*fields, ("confirm", "yes")])
        assert done.headers["Location"] == ui.base + "jobs/3" and ui.wait_job(3)["state"] == "done"
        assert (src / "docs" / "notes.txt").read_text() == "first version\n"
        # a destination that cannot be written: said in the page, no job
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        fields = [("snapshot", new), ("item", str(src)), ("where", "folder"),
                  ("destination", str(blocked / "inside")), ("overwrite", "always")]  # fmt: skip
        refused = ui.post("/restore", fields)
        assert refused.status == 200 and "not a folder" in refused.text
        assert ui.get("/api/jobs/4").status == 404


def test_jobs_queue_and_cancel(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    for n in range(6):
        (src / f"r{n}").write_bytes(os.urandom(40_000_000))
    with Ui(repo) as ui:
        ui.login()
        ui.post("/backup", {"paths": str(src), "target": "default"})
        ui.post("/backup", {"paths": str(src), "target": "default"})
        ui.post("/backup", {"paths": str(src), "target": "default"})
        assert ui.get("/api/jobs/2").json()["state"] == "queued"
        assert "Queued: starts when job 1 ends" in ui.get("/jobs/2").text
        ui.post("/jobs/3/cancel", {})
        assert ui.get("/api/jobs/3").json()["state"] == "cancelled"
        deadline = time.monotonic() + 60
        while ui.get("/api/jobs/1").json()["bytes"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        ui.post("/jobs/1/cancel", {})
        assert ui.wait_job(1)["state"] == "cancelled"
        second = ui.wait_job(2)
        assert second["state"] == "done"
    assert _ids(repo) == [second["result"]["snapshot"]]
    repo.ok("check")


def test_roles_a_writer_and_a_share(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    (src / "shared").mkdir()
    (src / "shared" / "deck.txt").write_text("deck\n")
    repo.ok("key", "add", "--role", "writer", "--target", "default",
            extra_env={"NEOSTORE_NEW_PASSWORD": "writer pw"})  # fmt: skip
    repo.ok("share", "create", "-t", "default", "--path", f"{src}/shared",
            extra_env={"NEOSTORE_NEW_PASSWORD": "share pw"})  # fmt: skip
    repo.ok("snapshot", src)
    repo.ok("share", "sync")
    (snapshot_id,) = _ids(repo)
    with Ui(repo, password="writer pw") as ui:
        home = ui.login().text
        assert "cannot read any snapshot" in home and snapshot_id[:8] not in home
        denied = ui.get(snapshot_path(snapshot_id, "/"))
        assert denied.status == 403 and "notes.txt" not in denied.text
        ui.post("/backup", {"paths": str(src / "docs"), "target": "default"})
        assert ui.wait_job(1)["state"] == "done"
    with Ui(repo, password="share pw") as ui:
        home = ui.login().text
        assert "share key" in home
        root = ui.get(snapshot_path(snapshot_id, "/")).text
        assert ">shared/</a>" in root and "docs" not in root
        assert (
            ui.get(snapshot_path(snapshot_id, "/shared/deck.txt") + "?download=1").body == b"deck\n"
        )
        assert ui.get(snapshot_path(snapshot_id, str(src / "docs" / "notes.txt"))).status == 404


def test_unlock_page_and_stopping(repo: Cli, tmp_path: Path) -> None:
    with Ui(repo, password=None) as ui:
        ui.login()
        assert ui.get("/").headers["Location"] == ui.base + "unlock"
        form = ui.get("/unlock").text
        assert 'type="password"' in form and str(repo.repo) in form
        wrong = ui.post("/unlock", {"location": str(repo.repo), "password": "wrong"})
        assert wrong.status == 200 and "wrong password" in wrong.text.lower()
        right = ui.post("/unlock", {"location": str(repo.repo), "password": PASSWORD})
        assert right.status == 303 and ui.get("/").status == 200
        assert ui.post("/quit", {}).status == 200
        assert ui.proc.wait(timeout=30) == 0
    with Ui(repo, "--idle-timeout", "1") as ui:  # no page open: stops by itself
        assert ui.proc.wait(timeout=30) == 0
    with Ui(repo) as ui:
        ui.proc.send_signal(signal.SIGTERM)
        assert ui.proc.wait(timeout=30) == 0


def test_an_unreachable_repository_shows_a_banner(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src)
    (snapshot_id,) = _ids(repo)
    with Ui(repo) as ui:
        ui.login()
        repo.repo.rename(tmp_path / "moved")
        time.sleep(5.5)  # past the listing's reuse time
        page = ui.get(snapshot_path(snapshot_id, src / "docs"))
        assert page.status == 502 and "The repository cannot be reached" in page.text
        assert 'role="alert"' in page.text and "<nav" in page.text  # not a blank page
        home = ui.get("/")
        assert home.status == 502 and "is no longer there" in home.text


def test_assets_are_local(repo: Cli) -> None:
    with Ui(repo) as ui:
        home = ui.login().text
        assert "http://" not in home and "https://" not in home
        for asset in ("/static/app.js", "/static/app.css"):
            reply = ui.get(asset)
            assert reply.status == 200 and b"http" not in reply.body


def test_listen_addresses(repo: Cli) -> None:
    bad = repo("ui", "--no-open", "--listen", "127.0.0.1:http", timeout=60)  # never serves
    assert bad.code == 2 and "--listen" in bad.err
    wildcard = repo("ui", "--no-open", "--listen", "0.0.0.0:0", timeout=60)
    assert wildcard.code == 2 and "the address people will use" in wildcard.err
    with Ui(repo, "--listen", "127.0.0.2:0") as ui:  # not the default: a loopback all the same
        assert ui.url.startswith("http://127.0.0.2:") and ui.login().status == 200
        assert ui.get("/", headers={"Host": f"localhost:{ui.port}"}).status == 200


def test_the_cookie_stays_under_the_prefix(repo: Cli, tmp_path: Path) -> None:
    """Cookies are not scoped by port: one for "/" would reach any server
    another user runs on 127.0.0.1. Ours is scoped to a random prefix."""
    repo.ok("snapshot", _source(tmp_path))
    with Ui(repo) as ui:
        base = ui.base
        assert len(base) > 20 and base.startswith("/") and base.endswith("/")
        reply = ui.get(f"/?token={ui.token}", cookie=False)
        assert f"Path={base}" in reply.headers["Set-Cookie"]
        ui.login()
        assert ui.get("/", raw=True).status in (401, 404)  # outside the prefix: nothing
        # the login redirect never leaves the prefix, and keeps repeated values
        away = ui.get(f"//evil.example/?token={ui.token}", raw=True, cookie=False)
        assert away.headers["Location"] == base
        kept = ui.get(f"/restore?snapshot=x&item=%2Fa&item=%2Fb&token={ui.token}", cookie=False)
        where, _, query = kept.headers["Location"].partition("?")
        assert where == base + "restore"
        assert urllib.parse.parse_qsl(query) == [("snapshot", "x"), ("item", "/a"), ("item", "/b")]
    prefix_file = Path(repo.env["NEOSTORE_STATE_DIR"]) / "ui-prefix"
    assert prefix_file.stat().st_mode & 0o777 == 0o600
    with Ui(repo) as again:  # bookmarks last: the same prefix next time
        assert again.base == base


def test_the_browser_is_not_given_the_token(repo: Cli, tmp_path: Path) -> None:
    """Every local user can read a process's command line: the browser is
    opened on a private file that redirects, not on the token URL."""
    seen = tmp_path / "browser-args"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$@" > {seen}\ncat "${{1#file://}}" >> {seen}\nsleep 30\n')
    browser.chmod(0o755)
    env = {"BROWSER": f"{browser} %s"}
    ui = Ui(repo, env=env, no_open=False)
    try:
        deadline = time.monotonic() + 30
        while not (seen.exists() and "refresh" in seen.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        args, _, page = seen.read_text().partition("\n")
        assert args.startswith("file://") and ui.token not in args
        assert ui.token in page  # the page redirects to the token URL
        started = time.monotonic()
        ui.proc.send_signal(signal.SIGINT)  # while the browser command still runs
        assert ui.proc.wait(timeout=20) == 0 and time.monotonic() - started < 10
        assert not Path(args.removeprefix("file://").strip()).exists()
    finally:
        ui.stop()


def test_names_that_are_hard_to_show(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    odd = os.fsencode(src) + b"/caf\xe9"
    os.makedirs(odd)
    with open(odd + b"/menu\xff.txt", "wb") as f:
        f.write(b"not utf-8 names\n")
    (src / "new\nline.txt").write_text("a newline in the name\n")
    (src / "a%41.txt").write_text("percent\n")
    (src / "aA.txt").write_text("the other one\n")
    repo.ok("snapshot", os.fsdecode(odd))  # its path, shown on the home page, is not UTF-8
    repo.ok("snapshot", src)
    snapshot_id = _ids(repo)[1]
    with Ui(repo) as ui:
        home = ui.login()
        assert home.status == 200 and "caf\\xe9" in home.text
        folder = ui.get(snapshot_path(snapshot_id, odd))
        assert folder.status == 200 and "menu\\xff.txt" in folder.text
        got = ui.get(snapshot_path(snapshot_id, odd + b"/menu\xff.txt") + "?download=1")
        assert got.status == 200 and got.body == b"not utf-8 names\n"
        assert "\\" not in got.headers["Content-Disposition"].split(";")[1]
        archive = ui.get(snapshot_path(snapshot_id, odd) + "?download=zip")
        assert archive.status == 200 and archive.body.startswith(b"PK")
        missing = ui.get(snapshot_path(snapshot_id, odd + b"/gone\xfe"))
        assert missing.status == 404 and "gone\\xfe" in missing.text
        newline = ui.get(snapshot_path(snapshot_id, src / "new\nline.txt") + "?download=1")
        assert newline.body == b"a newline in the name\n"
        # the file page's Restore link names this file, not aA.txt
        page = ui.get(snapshot_path(snapshot_id, src / "a%41.txt")).text
        link = re.search(r'href="(restore\?[^"]+)">Restore…', page)
        assert link is not None
        form = ui.get("/" + link.group(1).replace("&amp;", "&")).text
        assert "a%41.txt" in form and "aA.txt" not in form
        # odd page numbers and job numbers: pages, not crashes
        assert ui.get(snapshot_path(snapshot_id, src) + "?page=%C2%B2").status == 200
        assert ui.get("/jobs/%C2%B2").status == 404 and "<nav" in ui.get("/jobs/9").text
        assert ui.get("/api/jobs/9").json() == {"error": "no such job"}


def test_the_overwrite_list_is_what_the_restorer_replaces(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "data"
    (src / "sub" / "inner").mkdir(parents=True)
    (src / "sub" / "inner" / "f.txt").write_text("in the snapshot\n")
    (src / "sub" / "top.txt").write_text("top\n")
    repo.ok("snapshot", src)
    (snapshot_id,) = _ids(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f.txt").write_text("behind a symlink: never touched\n")
    shutil.rmtree(src / "sub" / "inner")
    os.symlink(elsewhere, src / "sub" / "inner")
    with Ui(repo) as ui:
        ui.login()
        fields = [("snapshot", snapshot_id), ("item", str(src / "sub")), ("where", "original"),
                  ("overwrite", "always")]  # fmt: skip
        ask = ui.post("/restore", fields).text
        assert f"<code>{src}/sub/inner</code>" in ask and f"{src}/sub/top.txt" in ask
        assert "inner/f.txt" not in ask and "2\nexisting file(s)" in ask
        # two selected items with one name cannot go into one folder
        two = [("snapshot", snapshot_id), ("item", str(src / "sub")), ("item", str(src)),
               ("where", "folder"), ("destination", str(tmp_path / "out")),
               ("overwrite", "always")]  # fmt: skip
        assert "restore them one at a time" not in ui.post("/restore", two).text
        same = [("snapshot", snapshot_id), ("item", str(src / "sub")),
                ("item", str(src / "sub" / "inner")), ("item", str(src / "sub" / "inner")),
                ("where", "folder"), ("destination", str(tmp_path / "out")),
                ("overwrite", "always")]  # fmt: skip
        assert "restore them one at a time" in ui.post("/restore", same).text


def test_a_long_download_outlives_the_idle_timeout(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = random.Random(3).randbytes(64 << 20)
    (src / "large.bin").write_bytes(data)
    repo.ok("snapshot", src)
    (snapshot_id,) = _ids(repo)
    with Ui(repo, "--idle-timeout", "1") as ui:
        ui.login()
        conn = http.client.HTTPConnection(ui.host, ui.port, timeout=60)
        conn.request("GET", ui.base + snapshot_path(snapshot_id, src / "large.bin")[1:]
                     + "?download=1", headers={"Cookie": ui.cookie or ""})  # fmt: skip
        response = conn.getresponse()
        got = bytearray()
        while chunk := response.read(1 << 20):
            got += chunk
            time.sleep(0.06)  # a slow reader: ~4 s, past the idle timeout
        assert bytes(got) == data
        assert ui.proc.wait(timeout=30) == 0  # and then it stops by itself
