"""What a snapshot reads (issue 20, items 4 and 5). Patterns with restic's
meaning: the files a snapshot leaves out are those restic leaves out, for
the same patterns and paths (real restic's ``backup --dry-run -vv`` is the
reference), in every command that takes patterns; the options that come
with them; and streams (``--stdin``, ``--stdin-from-command``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_retention import _restic_or_skip

from neostore.matcher import PathMatcher

from conftest import PASSWORD, Cli

FILES = [
    "home/cache/a",
    "home/me/.cache/b",
    "home/top.txt",
    "home/me/c.txt",
    "home/me/notes/d.txt",
    "home/me/Notes.TXT",
    "data/keep/k",
    "data/other/o",
    "deep/a/b/cache/z",
    "docs/readme.txt",
    "docs/big.bin",
    "tagged/CACHEDIR.TAG",
    "tagged/inside",
    "marked/.nobackup",
    "marked/sub/f",
    "x.TXT",
]


def _tree(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / "docs" / "big.bin").write_bytes(b"\x01" * 5000)
    tag = b"Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n"
    (root / "tagged" / "CACHEDIR.TAG").write_bytes(tag)
    return root


def _cases(src: Path) -> list[list[str]]:
    """Exclusion options, each case given to both tools as is."""
    s = str(src)
    return [
        ["--exclude", "*.txt"],
        ["--exclude", "cache"],
        ["--exclude", f"{s}/home/**/cache"],
        ["--exclude", f"{s}/data/*", "--exclude", f"!{s}/data/keep"],
        ["--exclude", "me/*.txt"],
        ["--exclude", f"{s}/home/*.txt"],  # * does not cross /
        ["--exclude", f"{s}/*/me"],
        ["--exclude", ".cache"],
        ["--exclude", "**/b"],
        ["--exclude", "d?cs", "--exclude", "[xy].*"],
        ["--iexclude", "*.txt"],
        ["--exclude-caches"],
        ["--exclude-if-present", ".nobackup"],
        ["--exclude-larger-than", "1k"],
    ]


def _restic_files(restic_bin: str, env: dict[str, str], src: Path, case: list[str]) -> set[str]:
    done = subprocess.run(
        [restic_bin, "backup", "--dry-run", "-vv", *case, str(src)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (case, done.stderr)
    found = set()
    for line in done.stdout.splitlines():
        if line.startswith("new ") and "," in line:
            path = line[4:].split(",", 1)[0].strip()
            if not path.endswith("/"):
                found.add(path)
    return found


def _neostore_files(repo: Cli, src: Path, case: list[str]) -> set[str]:
    made = repo("snapshot", *case, src)
    assert made.code == 0, (case, made.err)
    listed = repo("ls", "latest", src, "--recursive", "--json")
    assert listed.code == 0, listed.err
    return {e["path"] for e in listed.json() if e["type"] == "file"}


def test_excludes_leave_out_what_restic_leaves_out(repo: Cli, tmp_path: Path) -> None:
    restic_bin = _restic_or_skip()
    src = _tree(tmp_path / "src")
    env = dict(
        os.environ,
        RESTIC_PASSWORD="pw",
        RESTIC_REPOSITORY=str(tmp_path / "r"),
        RESTIC_CACHE_DIR=str(tmp_path / "restic-cache"),
    )
    env.pop("RESTIC_PASSWORD_FILE", None)
    subprocess.run([restic_bin, "init"], env=env, check=True, capture_output=True)
    everything = {str(src / name) for name in FILES}
    for case in _cases(src):
        theirs = _restic_files(restic_bin, env, src, case)
        assert theirs and theirs != everything, case  # each case leaves something out
        assert _neostore_files(repo, src, case) == theirs, case


def test_the_same_patterns_in_restore_and_find(repo: Cli, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    repo.ok("snapshot", src)
    out = tmp_path / "out"
    restored = repo(
        "restore", f"latest:{src}", "--to", out,
        "--exclude", "home/**/cache", "--exclude", "*.bin", "--iexclude", "*.TXT",
    )  # fmt: skip
    assert restored.code == 0, restored.err
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert got == sorted(
        n
        for n in FILES
        if not n.startswith("home/cache") and not n.lower().endswith((".bin", ".txt"))
    )
    only = tmp_path / "only"
    assert repo("restore", f"latest:{src}", "--to", only, "--iinclude", "*.txt").code == 0
    got = sorted(str(p.relative_to(only)) for p in only.rglob("*") if p.is_file())
    assert got == sorted(n for n in FILES if n.lower().endswith(".txt"))
    found = repo("find", "*.txt", "--json").json()[0]["matches"]
    assert sorted(m["path"] for m in found) == sorted(
        str(src / n) for n in FILES if n.endswith(".txt")
    )
    folded = repo("find", "-i", "notes*", "--json").json()[0]["matches"]
    assert sorted(m["path"] for m in folded) == [
        str(src / "home/me/Notes.TXT"),
        str(src / "home/me/notes"),
    ]  # the folder itself, not what lies below it


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*"], b"/a/b", True),
        (["/a/*"], b"/a/b/c", True),  # below a match
        (["/a/*.c"], b"/a/b/c.c", False),  # * stays in its component
        (["/home/**/cache"], b"/home/cache", True),  # ** is also no component
        (["cache"], b"/x/cache/y", True),  # any depth
        (["/cache"], b"/x/cache", False),  # anchored
        (["/data/*", "!/data/keep"], b"/data/keep/f", False),
        (["!/data/keep", "/data/*"], b"/data/keep/f", True),  # order matters
        (["/"], b"/anything", True),
    ],
)
def test_matcher_units(patterns: list[str], path: bytes, expected: bool) -> None:
    assert PathMatcher(patterns).matches(path) is expected


def test_files_from_host_and_snapshot_filters(repo: Cli, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    listing = tmp_path / "list"
    listing.write_text(f"# what to back up\n{src}/docs\n\n{src}/home/me/*.txt\n")
    made = repo("snapshot", "--files-from", listing, "--host", "laptop", "--tag", "a")
    assert made.code == 0, made.err
    raw = tmp_path / "raw"
    raw.write_bytes(os.fsencode(f"{src}/data") + b"\0" + os.fsencode(f"{src}/x.TXT") + b"\0")
    assert repo("snapshot", "--files-from-raw", raw, "--tag", "a", "--tag", "b").code == 0
    verbatim = tmp_path / "verbatim"
    verbatim.write_text(f"{src}/tagged\n")
    assert repo("snapshot", "--files-from-verbatim", verbatim, "--host", "laptop").code == 0
    everything = repo("snapshots", "--json").json()
    assert everything[0]["paths"] == [str(src / "docs"), str(src / "home/me/c.txt")]
    assert everything[1]["paths"] == [str(src / "data"), str(src / "x.TXT")]

    def ids(*args: str) -> list[int]:
        shown = repo("snapshots", "--json", *args).json()
        return [everything.index(s) for s in shown]

    assert ids("--host", "laptop") == [0, 2]
    assert ids("--tag", "a,b") == [1]
    assert ids("--tag", "b", "--tag", "a") == [0, 1]
    assert ids("--path", str(src / "docs")) == [0]
    assert ids("--path", str(src / "docs"), "--path", str(src / "data")) == []
    assert ids("--latest", "1", "--host", "laptop") == [0, 2]  # different paths: two groups
    assert repo("snapshot", "--files-from", listing, "--host", "laptop").code == 0
    everything = repo("snapshots", "--json").json()
    assert ids("--latest", "1", "--host", "laptop") == [2, 3]
    nothing = tmp_path / "nothing"
    nothing.write_text(f"{src}/no-such-*\n")
    refused = repo("snapshot", "--files-from", nothing)
    assert refused.code == 2 and "matches nothing" in refused.err
    assert repo("snapshot").code == 2  # no path at all
    bad_size = repo("snapshot", "--exclude-larger-than", "2x", src)
    assert bad_size.code == 2 and "--exclude-larger-than: '2x': not a size" in bad_size.err


def _run(repo: Cli, args: list[str], data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = dict(repo.env, NEOSTORE_PASSWORD=PASSWORD, NEOSTORE_REPO=str(repo.repo))
    return subprocess.run(
        [sys.executable, "-m", "neostore_cli.main", *args],
        env=env,
        input=data,
        capture_output=True,
        timeout=120,
    )


def test_streams_are_backed_up_as_one_file(repo: Cli, tmp_path: Path) -> None:
    """snapshot --stdin and --stdin-from-command (issue 20, item 5): the
    bytes come back from dump and restore; a command that fails saves no
    snapshot; no FIFO is left behind."""
    data = os.urandom(3 << 20) + b"tail"
    made = _run(repo, ["snapshot", "--stdin", "--stdin-filename", "db.dump"], data)
    assert made.returncode == 0, made.stderr
    assert _run(repo, ["dump", "latest", "/db.dump"]).stdout == data
    dumped = _run(
        repo, ["snapshot", "--stdin-from-command", "--stdin-filename", "n.txt", "--", "seq", "5"]
    )
    assert dumped.returncode == 0, dumped.stderr
    listed = repo("snapshots", "--json").json()
    assert [s["paths"] for s in listed] == [["/db.dump"], ["/n.txt"]]
    assert _run(repo, ["dump", "latest", "/n.txt"]).stdout == b"1\n2\n3\n4\n5\n"
    out = tmp_path / "out"
    assert repo("restore", f"{listed[0]['id']}:/", "--to", out).code == 0
    assert (out / "db.dump").read_bytes() == data
    failing = _run(repo, ["snapshot", "--stdin-from-command", "--", "sh", "-c", "echo x; exit 3"])
    assert failing.returncode == 1
    assert b"exited 3; no snapshot saved" in failing.stderr
    missing = _run(repo, ["snapshot", "--stdin-from-command", "--", "/no/such/command"])
    assert missing.returncode == 1 and b"command not found" in missing.stderr
    assert len(repo("snapshots", "--json").json()) == 2
    both = repo("snapshot", "--stdin", "--stdin-from-command", "--", "true")
    assert both.code == 2 and "not both" in both.err
    assert not list(Path(tempfile.gettempdir()).glob("neostore-stream-*"))


def _store_listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_dry_run_says_what_would_be_added_and_stores_nothing(repo: Cli, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    (src / "random.bin").write_bytes(os.urandom(300_000))
    before = _store_listing(repo.repo)
    dry = repo("snapshot", "--dry-run", "-v", src, "--json")
    assert dry.code == 0, dry.err
    planned = dry.json()
    assert planned["dry_run"] is True and planned["id"] is None
    assert planned["files_new"] == len(FILES) + 1 and planned["bytes_added"] > 300_000
    listed = [json.loads(line) for line in dry.err.splitlines()]  # -v under --json: JSON
    assert {"type": "file", "status": "new", "path": str(src / "random.bin")} in listed
    assert _store_listing(repo.repo) == before  # no pack, index or snapshot written
    assert repo.ok("snapshots", "--json").json() == []
    text = repo("snapshot", "-n", src)
    assert text.out.startswith("dry run: would read ") and "nothing was saved" in text.out
    real = repo.ok("snapshot", src, "--json").json()
    # the dry run left no files-cache entries: the real run read every file
    assert real["files_new"] == planned["files_new"] and real["bytes_read"] == planned["bytes_read"]
    # stored blobs as counted, plus pack headers and the index
    assert real["blobs_added"] == planned["blobs_added"]
    assert planned["bytes_added"] <= real["bytes_added"] <= planned["bytes_added"] + 16_384
    again = repo.ok("snapshot", "--dry-run", src, "--json").json()
    assert (again["bytes_added"], again["files_unchanged"]) == (0, len(FILES) + 1)
