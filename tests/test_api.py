"""The public Python API: what ``neostore`` exports is pinned here (a change
to it is deliberate: update this list, docs/api.md and the closing note),
importing it stays cheap, and the examples in docs/api.md run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neostore

API = [
    "ArchiveStats",
    "BackendError",
    "BackendOptions",
    "Change",
    "CheckResult",
    "Credentials",
    "IntegrityError",
    "LastCheck",
    "Listing",
    "Manifest",
    "NeostoreError",
    "Node",
    "NotFound",
    "Overwrite",
    "PathCount",
    "PermanentBackendError",
    "PermissionDenied",
    "Profile",
    "Reporter",
    "Repository",
    "RepositoryLocked",
    "RepositoryNotFound",
    "RestoreOptions",
    "RestoreStats",
    "Role",
    "SnapshotInfo",
    "SnapshotOptions",
    "SnapshotResult",
    "SnapshotStats",
    "TamperedKeyFile",
    "TransientBackendError",
    "UnsupportedFormat",
    "UsageError",
    "WrongPassword",
    "__version__",
    "check",
    "check_reachable",
    "count_paths",
    "diff",
    "dump_archive",
    "find",
    "find_snapshot",
    "init_repository",
    "last_check",
    "list_directory",
    "list_snapshots",
    "list_targets",
    "load_profiles",
    "open_file",
    "open_repository",
    "profiles_file",
    "read_file",
    "restore",
    "snapshot",
    "state_dir",
    "stored_bytes",
    "walk",
]
DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def test_the_public_api_is_what_it_was() -> None:
    assert neostore.__all__ == API
    for name in API:
        assert getattr(neostore, name) is not None, name
    errors = [getattr(neostore, n) for n in API if n.endswith("Error") or n == "WrongPassword"]
    assert all(issubclass(e, neostore.NeostoreError) for e in errors)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(AttributeError):
        neostore.no_such_thing  # noqa: B018


def test_importing_the_package_loads_no_crypto() -> None:
    probe = (
        "import json, sys, neostore; neostore.NeostoreError; "
        "print(json.dumps([m for m in ('nacl', 'blake3', 'neostore.core.repository') "
        "if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert json.loads(done.stdout) == []


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)


def test_the_documented_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The code blocks of docs/api.md, in order, in one namespace (they build
    on each other), in a temporary directory."""
    blocks = _examples()
    assert len(blocks) >= 6
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    namespace: dict[str, object] = {"__name__": "api_example"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/api.md example {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "refused: wrong password" in printed
    assert re.search(r"snapshot [0-9a-f]{8} new files: 2", printed)


def test_every_exported_name_is_typed() -> None:
    """mypy sees ``neostore.X`` through the TYPE_CHECKING imports of
    ``__init__``; a name missing there is typed Any in every program."""
    import ast

    tree = ast.parse(Path(neostore.__file__).read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for stmt in node.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }
    assert set(API) - {"__version__"} <= typed, sorted(set(API) - {"__version__"} - typed)
