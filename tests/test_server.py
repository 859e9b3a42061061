"""neostore-server through real processes: the server in a subprocess on
127.0.0.1, the neostore CLI and the real restic client against it."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest
from serverutil import ServerProcess, free_port, server_cli

from conftest import Cli
from treeutil import assert_same_tree

V2 = "application/vnd.x.restic.rest.v2"


def _files(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and ".tmp-" not in p.name and not p.name.startswith(".")
    }


def _over(server: ServerProcess, cli: Cli, repo: str, **env: str) -> Cli:
    """The CLI pointed at a repository on the server."""
    extra = server.client_env()
    extra.update(env)
    extra["NEOSTORE_REPO"] = server.url(repo)
    return Cli(dict(cli.env, **extra), cli.repo)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "docs" / "deep").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("hello server\n" * 1000)
    (src / "docs" / "deep" / "b.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (src / "empty").write_bytes(b"")
    with open(src / "sparse.img", "wb") as f:  # data, a 20 MiB hole, data
        f.write(os.urandom(1024 * 1024))
        f.seek(21 * 1024 * 1024)
        f.write(os.urandom(1024 * 1024))
    (src / "link").symlink_to("docs/a.txt")
    return src


def test_neostore_end_to_end_over_https(neoserver: ServerProcess, cli: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    neo = _over(neoserver, cli, "e2e")
    neo.ok("init")
    first = neo.ok("snapshot", src, "--json").json()
    assert first["bytes_added"] > 3 * 1024 * 1024
    again = neo.ok("snapshot", src, "--json").json()
    assert again["bytes_added"] < 64 * 1024  # deduplicated over HTTP too
    assert len(neo.ok("snapshots", "--json").json()) == 2
    assert f"{src}/docs/a.txt" in neo.ok("ls", "latest", str(src / "docs")).out
    out = tmp_path / "out"
    neo.ok("restore", first["id"], "--to", out)
    assert_same_tree(src, out / src.relative_to("/"))
    assert neo.ok("check", "--read-data").code == 0
    # what the server stores is the local layout: the same repository opens as a directory
    on_disk = neoserver.data / "repos" / "e2e"
    local = Cli(cli.env, on_disk)
    assert len(local.ok("snapshots", "--json").json()) == 2


def test_certificate_pinning_and_credentials(neoserver: ServerProcess, cli: Cli) -> None:
    neo = _over(neoserver, cli, "pinning")
    neo.ok("init")
    wrong = "SHA256:" + "00" * 32
    result = neo("snapshots", extra_env={"NEOSTORE_SERVER_FINGERPRINT": wrong})
    assert result.code == 1
    assert neoserver.fingerprint in result.err and wrong in result.err
    assert len(result.err.strip().splitlines()) == 1
    # the same pin given as an option, in another spelling
    spelled = ":".join(neoserver.fingerprint[7:][i : i + 2].upper() for i in range(0, 64, 2))
    env = {"NEOSTORE_SERVER_FINGERPRINT": ""}
    assert neo.ok("--server-fingerprint", spelled, "snapshots", extra_env=env).code == 0
    # no pin and no CA: the self-signed certificate is refused
    unpinned = neo("snapshots", extra_env=env)
    assert unpinned.code == 1 and "--server-fingerprint" in unpinned.err
    # the server's certificate as a CA file works too
    assert neo.ok("--server-ca", neoserver.cert, "snapshots", extra_env=env).code == 0
    bad = neo("snapshots", extra_env={"NEOSTORE_SERVER_TOKEN": "not-a-token"})
    assert bad.code == 1 and "refused the credentials (401)" in bad.err
    # Basic credentials (user + token) and a credentials file
    user = neo.ok("snapshots", extra_env={"NEOSTORE_SERVER_USER": "admin"})
    assert user.code == 0
    creds = cli.repo.parent / "creds.json"
    creds.write_text(json.dumps({"user": "admin", "token": neoserver.admin_token}))
    from_file = {"NEOSTORE_SERVER_TOKEN": "", "NEOSTORE_SERVER_CREDENTIALS": str(creds)}
    assert neo.ok("snapshots", extra_env=from_file).code == 0


def _logged(server: ServerProcess, path_has: str = "", **fields: object) -> bool:
    """Whether the server's access log has a request with these fields (and
    ``path_has`` in its path)."""
    for line in server.log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(record, dict)
            and path_has in str(record.get("path"))
            and all(record.get(k) == v for k, v in fields.items())
        ):
            return True
    return False


def test_restic_client_end_to_end(neoserver: ServerProcess, tmp_path: Path) -> None:
    restic = shutil.which("restic")
    assert restic, "restic is not installed: scripts/test.sh installs it (apt-get install restic)"
    src = _source(tmp_path)
    token = neoserver.account("restic-user", ("restic-repo", "repo", "read,append,delete,admin"))
    env = dict(
        os.environ,
        RESTIC_PASSWORD="restic-test-password",
        RESTIC_REPOSITORY=f"rest:https://restic-user:{token}@127.0.0.1:{neoserver.port}/restic-repo/",
        RESTIC_CACHE_DIR=str(tmp_path / "restic-cache"),
    )

    def run(*args: str) -> str:
        proc = subprocess.run(
            [restic, "--cacert", neoserver.cert, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"restic {args}: {proc.stderr}"
        return proc.stdout

    run("init")
    run("backup", str(src))
    (src / "docs" / "new.txt").write_text("second run\n")
    run("backup", str(src))
    snapshots = json.loads(run("snapshots", "--json"))
    assert len(snapshots) == 2
    files = run("ls", "latest")
    assert f"{src}/docs/new.txt" in files
    run("restore", "latest", "--target", str(tmp_path / "restored"))
    assert_same_tree(src, tmp_path / "restored" / src.relative_to("/"))
    run("check", "--read-data")
    # an append-only account backs up (removing only its own locks) but cannot forget
    appender = neoserver.account("restic-append", ("restic-repo", "repo", "read,append"))
    append_env = dict(
        env,
        RESTIC_REPOSITORY=f"rest:https://restic-append:{appender}@127.0.0.1:{neoserver.port}/restic-repo/",
    )
    backup = subprocess.run(
        [restic, "--cacert", neoserver.cert, "backup", str(src)],
        env=append_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    assert not list((neoserver.data / "repos" / "restic-repo" / "locks").iterdir())
    # restic retries a refused delete for about a minute: it is enough that
    # the server refused one (its access log says so), then restic is stopped
    forget = subprocess.Popen(
        [restic, "--cacert", neoserver.cert, "forget", "--keep-last", "1", "--prune"],
        env=append_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    refused = {"account": "restic-append", "method": "DELETE", "status": 403}
    deadline = time.monotonic() + 120
    while not _logged(neoserver, "/snapshots/", **refused):
        assert forget.poll() is None, "restic's forget ended without trying to delete"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    forget.send_signal(signal.SIGINT)  # restic removes its lock on the way out
    assert forget.wait(timeout=60) != 0
    deleted = {"account": "restic-append", "method": "DELETE", "status": 200}
    assert not _logged(neoserver, "/snapshots/", **deleted)
    assert len(json.loads(run("snapshots", "--json"))) == 3
    run("forget", "--keep-last", "1", "--prune")
    assert len(json.loads(run("snapshots", "--json"))) == 1
    run("check", "--read-data")
    # restic's objects were checked with SHA-256 on upload; the layout is rest-server's
    stored = neoserver.data / "repos" / "restic-repo"
    assert (stored / "config").is_file() and any((stored / "data").rglob("*"))


def test_append_only_account_can_snapshot_but_not_destroy(
    neoserver: ServerProcess, cli: Cli, tmp_path: Path
) -> None:
    src = _source(tmp_path)
    owner = _over(neoserver, cli, "appendonly")
    owner.ok("init")
    token = neoserver.account("laptop", ("appendonly", "repo", "read,append"))
    laptop = _over(neoserver, cli, "appendonly", NEOSTORE_SERVER_TOKEN=token)
    laptop.ok("snapshot", src)
    (src / "docs" / "more.txt").write_text("more\n")
    laptop.ok("snapshot", src)
    before = _files(neoserver.data / "repos" / "appendonly")
    contents = {p: (neoserver.data / "repos" / "appendonly" / p).read_bytes() for p in before}
    auth = ("laptop", token)
    for rel in before:
        otype, _, rest = rel.partition("/")
        name = rest.split("/", 1)[1] if otype == "data" else rest
        path = f"/appendonly/{otype}/{name}" if otype != "config" else "/appendonly/config"
        status, _, _ = neoserver.request("DELETE", path, auth=auth)
        assert status == 403, (rel, status)
        if otype in ("config", "keys", "targets"):
            status, _, _ = neoserver.request("POST", path, body=b"overwritten", auth=auth)
            assert status == 403, (rel, status)
    # a pack re-sent with its own bytes is accepted and changes nothing; other bytes are refused
    pack = next(p for p in before if p.startswith("data/"))
    pack_name = pack.rsplit("/", 1)[1]
    body = contents[pack]
    assert (
        neoserver.request("POST", f"/appendonly/data/{pack_name}", body=body, auth=auth)[0] == 200
    )
    assert (
        neoserver.request("POST", f"/appendonly/data/{pack_name}", body=b"x", auth=auth)[0] == 400
    )
    # nor can it create the repository again or write a key file
    assert neoserver.request("POST", "/appendonly/?create=true", body=b"", auth=auth)[0] == 403
    fake_key = "ab" * 16
    assert neoserver.request("POST", f"/appendonly/keys/{fake_key}", body=b"k", auth=auth)[0] == 403
    after = _files(neoserver.data / "repos" / "appendonly")
    assert after == before
    assert all(
        (neoserver.data / "repos" / "appendonly" / p).read_bytes() == c for p, c in contents.items()
    )
    assert owner.ok("check", "--read-data").code == 0
    assert len(owner.ok("snapshots", "--json").json()) == 2


def test_target_scoped_account_sees_only_its_target(
    neoserver: ServerProcess, cli: Cli, tmp_path: Path
) -> None:
    src = _source(tmp_path)
    owner = _over(neoserver, cli, "scoped")
    owner.ok("init")
    docs = owner.ok("snapshot", src, "--target", "documents", "--json").json()
    work = owner.ok("snapshot", src, "--target", "work", "--json").json()
    token = neoserver.account("work-reader", ("scoped", "target:work", "read"))
    auth = ("work-reader", token)
    status, headers, body = neoserver.request(
        "GET", "/scoped/snapshots/", headers={"Accept": V2}, auth=auth
    )
    assert status == 200 and headers["Content-Type"] == V2
    names = [e["name"] for e in json.loads(body)]
    assert names == [f"work/{work['id']}"]
    assert (
        neoserver.request("GET", f"/scoped/snapshots/documents/{docs['id']}", auth=auth)[0] == 403
    )
    assert (
        neoserver.request("HEAD", f"/scoped/snapshots/documents/{docs['id']}", auth=auth)[0] == 403
    )
    assert neoserver.request("GET", "/scoped/targets/documents", auth=auth)[0] == 403
    status, _, body = neoserver.request(
        "GET", "/scoped/targets/", headers={"Accept": V2}, auth=auth
    )
    assert [e["name"] for e in json.loads(body)] == ["work"]
    assert neoserver.request("GET", f"/scoped/snapshots/work/{work['id']}", auth=auth)[0] == 200
    # a read grant cannot write, even inside its scope
    assert (
        neoserver.request("POST", f"/scoped/snapshots/work/{'ab' * 32}", body=b"x", auth=auth)[0]
        == 403
    )
    # no grant on another repository, and no hint whether one exists
    assert neoserver.request("GET", "/e2e/config", auth=auth)[0] == 403
    assert neoserver.request("GET", "/no-such-repo/config", auth=auth)[0] == 403
    # the owner's key through this account reads work and nothing of documents
    reader = _over(neoserver, cli, "scoped", NEOSTORE_SERVER_TOKEN=token)
    assert [s["id"] for s in reader.ok("snapshots", "--json").json()] == [work["id"]]
    restored = tmp_path / "restored"
    reader.ok("restore", "latest", "--target", "work", "--to", restored)
    assert_same_tree(src, restored / src.relative_to("/"))
    denied = reader("snapshots", "--target", "documents")
    assert denied.code != 0 and "may not read" in denied.err


def test_bad_inputs_get_4xx_and_the_server_keeps_serving(
    neoserver: ServerProcess, cli: Cli
) -> None:
    _over(neoserver, cli, "hostile").ok("init")
    body = b"some bytes"
    good = blake3.blake3(body).hexdigest()
    cases = [
        ("GET", "/hostile/../../etc/passwd", None, {}),
        ("GET", "/../accounts.json", None, {}),
        ("GET", "/hostile/keys/..%2F..%2Faccounts.json", None, {}),
        ("GET", "/hostile/keys/.hidden", None, {}),
        ("GET", "/hostile/data/" + "zz" * 32, None, {}),
        ("POST", "/hostile/data/" + "ab" * 32, body, {}),  # wrong hash
        ("POST", "/hostile/index/not-a-hash", body, {}),
        ("POST", "/hostile/nosuchtype/x", body, {}),
        ("GET", "/.hidden/config", None, {}),
        ("PUT", "/hostile/data/" + good, body, {}),
        ("POST", "/hostile/", b"", {}),  # no ?create=true
    ]
    for method, path, data, headers in cases:
        status, _, _ = neoserver.request(method, path, body=data, headers=headers)
        assert 400 <= status < 500, (method, path, status)
    assert not (neoserver.data / "repos" / "hostile" / "data" / "ab").joinpath("ab" * 32).exists()
    # credentials
    assert neoserver.request("GET", "/hostile/config", auth=None)[0] == 401
    assert neoserver.request("GET", "/hostile/config", auth=("admin", "wrong"))[0] == 401
    assert (
        neoserver.request("GET", "/hostile/config", auth=("nobody", neoserver.admin_token))[0]
        == 401
    )
    garbage = {"Authorization": "Basic !!!not-base64"}
    assert neoserver.request("GET", "/hostile/config", headers=garbage, auth=None)[0] == 401
    # ranges
    assert neoserver.request("POST", f"/hostile/data/{good}", body=body)[0] == 200
    for bad_range in ("bytes=zz", "bytes=5-2", "bytes=100-", "items=0-1"):
        status, _, _ = neoserver.request(
            "GET", f"/hostile/data/{good}", headers={"Range": bad_range}
        )
        assert status == 416, (bad_range, status)
    status, headers, got = neoserver.request(
        "GET", f"/hostile/data/{good}", headers={"Range": "bytes=0-"}
    )
    assert (status, got) == (206, body) and headers[
        "Content-Range"
    ] == f"bytes 0-{len(body) - 1}/{len(body)}"
    status, _, got = neoserver.request(
        "GET", f"/hostile/data/{good}", headers={"Range": "bytes=5-7"}
    )
    assert (status, got) == (206, body[5:8])
    # a body announced longer than it is stores nothing (http.client sends what it has)
    short = blake3.blake3(b"complete").hexdigest()
    with neoserver.partial_post(f"/hostile/data/{short}", 100, b"compl"):
        pass
    # the server has handled it once its access log shows the refusal
    deadline = time.monotonic() + 10
    while f'/hostile/data/{short}", "status": 400' not in neoserver.log.read_text():
        assert time.monotonic() < deadline, "the cut-off upload was never answered"
        time.sleep(0.05)
    stored = neoserver.data / "repos" / "hostile" / "data" / short[:2] / short
    assert not stored.exists()
    assert not any(".tmp-" in p.name for p in (neoserver.data / "repos" / "hostile").rglob("*"))
    # the server still serves
    assert neoserver.request("GET", "/healthz", auth=None)[0] == 200
    assert neoserver.request("GET", f"/hostile/data/{good}")[2] == body


def test_size_limit_and_quota(tmp_path: Path, cli: Cli) -> None:
    server = ServerProcess(
        tmp_path / "srv", "--max-object-size", "1M", "--idle-timeout", "1"
    ).start()
    try:
        _over(server, cli, "limited").ok("init")
        big = os.urandom(1024 * 1024 + 1)
        assert (
            server.request("POST", f"/limited/data/{blake3.blake3(big).hexdigest()}", body=big)[0]
            == 413
        )
        server_cli(server.data, "repo", "quota", "limited", "--max-size", "64K")
        small = os.urandom(100 * 1024)
        status, _, _ = server.request(
            "POST", f"/limited/data/{blake3.blake3(small).hexdigest()}", body=small
        )
        assert status == 507
        # an upload that stalls (the client alive but silent) is dropped after the idle timeout
        stalled = blake3.blake3(b"never finished").hexdigest()
        with server.partial_post(f"/limited/data/{stalled}", 14, b"never") as tls:
            answer = tls.recv(200)  # answered while the connection is still open
            assert answer.startswith(b"HTTP/1.1 408"), answer
        repo_dir = server.data / "repos" / "limited"
        assert not any(".tmp-" in p.name for p in repo_dir.rglob("*"))
        assert not (repo_dir / "data" / stalled[:2] / stalled).exists()
        assert server.request("GET", "/healthz", auth=None)[0] == 200
    finally:
        server.stop()


def test_accounts_change_while_the_server_runs(neoserver: ServerProcess, cli: Cli) -> None:
    _over(neoserver, cli, "mgmt").ok("init")
    token = neoserver.account("temp")
    auth = ("temp", token)
    assert neoserver.request("GET", "/mgmt/config", auth=auth)[0] == 403
    server_cli(neoserver.data, "account", "grant", "temp", "--repo", "mgmt", "--perms", "read")
    assert neoserver.request("GET", "/mgmt/config", auth=auth)[0] == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert neoserver.request("GET", "/mgmt/config", headers=bearer, auth=None)[0] == 200
    listed = json.loads(server_cli(neoserver.data, "account", "list", "--json").stdout)
    entry = next(a for a in listed if a["name"] == "temp")
    assert entry["grants"] == [{"repo": "mgmt", "scope": "repo", "perms": ["read"]}]
    assert (
        token not in json.dumps(listed)
        and token not in (neoserver.data / "accounts.json").read_text()
    )
    server_cli(neoserver.data, "account", "revoke", "temp", "--repo", "mgmt")
    assert neoserver.request("GET", "/mgmt/config", auth=auth)[0] == 403
    server_cli(neoserver.data, "account", "remove", "temp")
    assert neoserver.request("GET", "/mgmt/config", auth=auth)[0] == 401
    # the access log: one JSON object per request, naming the account, never the token
    log = neoserver.log.read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    mine = [r for r in records if r["account"] == "temp" and r["path"] == "/mgmt/config"]
    assert [r["status"] for r in mine] == [403, 200, 200, 403]
    assert token not in log and neoserver.admin_token not in log
    bad = server_cli(
        neoserver.data, "account", "grant", "x", "--repo", "r", "--perms", "fly", check=False
    )
    assert bad.returncode == 1 and "invalid permissions" in bad.stderr


def test_server_killed_during_snapshot(tmp_path: Path, cli: Cli) -> None:
    server = ServerProcess(tmp_path / "srv").start()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-random.bin").write_bytes(os.urandom(48 * 1024 * 1024))
    with open(src / "b-sparse.img", "wb") as f:
        f.truncate(64 * 1024**3)  # far longer than the test waits
    neo = _over(server, cli, "killed")
    # small chunks and packs, so that index files are written early in the run
    neo.ok("init", "--chunk-min", "16384", "--chunk-avg", "65536", "--chunk-max", "262144",
           "--pack-size", "262144")  # fmt: skip
    stored = server.data / "repos" / "killed"
    env = dict(neo.env, NEOSTORE_PASSWORD="correct horse battery staple")
    proc = subprocess.Popen(
        [sys.executable, "-m", "neostore_cli.main", "snapshot", str(src)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # a complete index file, not one still arriving (a temporary file)
        while not any(".tmp-" not in p.name for p in (stored / "index").iterdir()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.kill()
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    message = err.decode().strip()
    assert len(message.splitlines()) == 1 and "server unreachable" in message, message
    assert not any((stored / "snapshots").rglob("*/*"))
    # a temporary left by a killed upload is swept at the next start, unless
    # it is recent (it could be another server process's upload in flight)
    stale = stored / "data" / "ab" / f"{'ab' * 32}.tmp-1-deadbeef"
    stale.write_bytes(b"half an upload")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = stored / "data" / "cd" / f"{'cd' * 32}.tmp-2-deadbeef"
    fresh.write_bytes(b"in flight")
    server.start()
    assert not stale.exists() and fresh.exists()
    assert "stale upload temporaries" in server.log.read_text()
    try:
        assert neo.ok("check", "--read-data").code == 0
        (src / "b-sparse.img").unlink()
        again = neo.ok("snapshot", src, "--json").json()
        # what the killed run indexed is not uploaded again
        assert again["bytes_added"] < 40 * 1024 * 1024, again
        assert neo.ok("check", "--read-data").code == 0
        out = tmp_path / "out"
        neo.ok("restore", "latest", "--to", out)
        assert_same_tree(src, out / src.relative_to("/"))
    finally:
        assert server.stop() == 0
    assert b"stopped" in server.log.read_bytes()


def test_two_server_processes_serve_one_repository(tmp_path: Path, cli: Cli) -> None:
    first = ServerProcess(tmp_path / "srv").start()
    second = copy.copy(first)  # a second process on the same data directory
    second.port = second_port = free_port()
    second.start()
    try:
        src = _source(tmp_path)
        a = _over(first, cli, "shared")
        a.ok("init")
        b = Cli(dict(a.env, NEOSTORE_REPO=first.url("shared", port=second_port)), cli.repo)
        results: list[subprocess.CompletedProcess[bytes]] = []
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "neostore_cli.main",
                    "snapshot",
                    str(src),
                    "--target",
                    target,
                ],
                env=dict(c.env, NEOSTORE_PASSWORD="correct horse battery staple"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            for c, target in ((a, "one"), (b, "two"))
        ]
        for p in procs:
            out, err = p.communicate(timeout=300)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        assert len(b.ok("snapshots", "--json").json()) == 2
        assert a.ok("check", "--read-data").code == 0
    finally:
        assert first.stop() == 0 and second.stop() == 0


def test_plain_http_needs_the_flag(tmp_path: Path, cli: Cli) -> None:
    server = ServerProcess(tmp_path / "srv")
    refused = server_cli(
        server.data, "serve", "--insecure-http", "--tls-cert", server.cert, check=False
    )
    assert refused.returncode == 2
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "neostore_server.main", "serve", "--data",
         str(server.data), "--listen", f"127.0.0.1:{port}", "--insecure-http"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        neo = Cli(
            dict(cli.env, NEOSTORE_REPO=f"http://127.0.0.1:{port}/plain",
                 NEOSTORE_SERVER_TOKEN=server.admin_token),
            cli.repo,
        )  # fmt: skip
        # the client does not send a token over plain http unless told to
        refused = neo("init")
        assert refused.code == 1 and refused.err.startswith("neostore: --insecure-http: http://")
        assert "refusing to send the account's credentials over plain http" in refused.err
        allowed = {"NEOSTORE_INSECURE_HTTP": "1"}
        deadline = time.monotonic() + 30
        while (result := neo("init", extra_env=allowed)).code != 0:
            assert time.monotonic() < deadline, result.err
            time.sleep(0.2)
        assert len(neo.ok("--insecure-http", "snapshots", "--json").json()) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("args", [["serve"], ["account", "list"]])
def test_uninitialised_data_directory_is_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    result = server_cli(tmp_path / "nothing", *args, check=False)
    assert result.returncode == 1 and "neostore-server init" in result.stderr


def test_worked_example_roles_over_the_server(
    neoserver: ServerProcess, cli: Cli, tmp_path: Path
) -> None:
    """README's worked example: targets documents and work, an append-only
    account with a writer key for a laptop, a read-only account scoped to
    the share presentations that sees nothing else."""
    documents = tmp_path / "Documents"
    (documents / "presentations").mkdir(parents=True)
    (documents / "presentations" / "deck.txt").write_text("slides\n")
    (documents / "taxes.txt").write_text("private\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "plan.txt").write_text("work plan\n")
    owner = _over(neoserver, cli, "home")
    owner.ok("init")
    owner.ok("snapshot", "--target", "documents", documents)
    owner.ok("snapshot", "--target", "work", work)
    new_pw = {"NEOSTORE_NEW_PASSWORD": "laptop pw"}
    owner.ok("key", "add", "--role", "writer", "--target", "documents", extra_env=new_pw)
    shared = str(documents / "presentations")
    share_pw = {"NEOSTORE_NEW_PASSWORD": "colleague pw"}
    owner.ok("share", "create", "--target", "documents", "--path", shared, extra_env=share_pw)

    laptop_token = neoserver.account("home-laptop", ("home", "target:documents", "read,append"))
    laptop = _over(neoserver, cli, "home", NEOSTORE_SERVER_TOKEN=laptop_token)
    (documents / "presentations" / "deck.txt").write_text("slides v2\n")
    made = laptop.ok("snapshot", documents, "--json", password="laptop pw").json()
    assert made["target"] == "documents" and made["shares_published"] == 1
    denied = laptop("ls", "latest", password="laptop pw")
    assert denied.code == 13 and "needs a reader" in denied.err
    # the laptop's account cannot delete or overwrite, nor reach work
    auth = ("home-laptop", laptop_token)
    assert (
        neoserver.request("DELETE", f"/home/snapshots/documents/{made['id']}", auth=auth)[0] == 403
    )
    assert neoserver.request("GET", "/home/targets/work", auth=auth)[0] == 403
    assert laptop("snapshot", work, "--target", "work", password="laptop pw").code == 13

    colleague_token = neoserver.account("home-colleague", ("home", "share:presentations", "read"))
    colleague = _over(neoserver, cli, "home", NEOSTORE_SERVER_TOKEN=colleague_token)
    listed = colleague.ok("snapshots", "--json", password="colleague pw").json()
    assert [s["id"] for s in listed] == [made["id"]] and listed[0]["paths"] == [shared]
    paths = [
        e["path"]
        for e in colleague.ok("ls", "latest", "-R", "--json", password="colleague pw").json()
    ]
    assert paths == ["/presentations", "/presentations/deck.txt"]
    out = tmp_path / "from-me"
    colleague.ok("restore", "latest", "--to", out, password="colleague pw")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "presentations",
        "presentations/deck.txt",
    ]
    assert (out / "presentations" / "deck.txt").read_text() == "slides v2\n"
    # its account sees nothing else: no snapshots, targets, share lists or heads
    cauth = ("home-colleague", colleague_token)
    for listing in ("snapshots", "targets", "sharelists", "heads"):
        status, _, body = neoserver.request(
            "GET", f"/home/{listing}/", headers={"Accept": V2}, auth=cauth
        )
        assert status == 403 or json.loads(body) == [], (listing, status, body)
    assert neoserver.request("GET", "/home/targets/documents", auth=cauth)[0] == 403
    # nor can the owner's password, used through that account, see more
    assert colleague("snapshots", "--target", "work").code != 0
    # a target account may publish capabilities but not delete another target's
    cleaner = neoserver.account("home-cleaner", ("home", "target:work", "read,append,delete"))
    cap = next((neoserver.data / "repos" / "home" / "shares" / "presentations").iterdir())
    cap_path = f"/home/shares/presentations/{cap.name}"
    assert neoserver.request("DELETE", cap_path, auth=("home-cleaner", cleaner))[0] == 403
    assert cap.exists()
    # the owner sees both targets and every snapshot; the repository checks out
    assert len(owner.ok("snapshots", "--json").json()) == 3
    assert owner.ok("check", "--read-data").code == 0
