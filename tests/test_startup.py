"""Start-up stays cheap: --help and a missing repository load no crypto,
compression or pipeline modules (issue #3's lazy-import requirement)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = [
    "nacl",
    "zstandard",
    "blake3",
    "pyfastcdc",
    "msgpack",
    "sqlite3",
    "tqdm",
    "neostore.core.repository",
    "neostore.backup.archiver",
    "neostore.restorer.walk",
    "neostore.lifecycle.check",
]

PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["neostore", *args]
from neostore_cli.main import run
try:
    run()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["snapshot", "--help"], ["snapshots", "-r", "/nonexistent/repo"]]
)
def test_cheap_commands_import_nothing_heavy(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == []


def test_real_commands_do_load_them(tmp_path: object) -> None:
    """The probe can fail: an actual repository operation imports the crypto."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps(["init", "-r", f"{tmp_path}/r"]),
            json.dumps(HEAVY),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={
            "NEOSTORE_PASSWORD": "x",
            "NEOSTORE_STATE_DIR": f"{tmp_path}/s",
            "PATH": "/usr/bin:/bin",
        },
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert "nacl" in loaded and "neostore.core.repository" in loaded
