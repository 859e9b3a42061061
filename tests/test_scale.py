"""Large and wide inputs: > 4 GiB files stream, 100 000-entry directories."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Cli

GiB = 1024**3


def test_file_over_4_gib_round_trip(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = src / "huge.img"
    marks = {0: os.urandom(1000), 4 * GiB + 12345: os.urandom(5000), 5 * GiB - 7: b"END!!!!"}
    with open(big, "wb") as f:
        for offset, data in marks.items():
            f.seek(offset)
            f.write(data)
    size = big.stat().st_size
    assert size == 5 * GiB
    result = repo.ok("snapshot", src, "--json").json()
    assert result["bytes_read"] == size
    assert result["bytes_added"] < 64 * 1024 * 1024  # zeros dedup and compress

    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out)
    restored = out / str(big).lstrip("/")
    st = restored.stat()
    assert st.st_size == size
    assert st.st_blocks * 512 < 64 * 1024 * 1024  # restored sparse
    with open(restored, "rb") as f:
        for offset, data in marks.items():
            f.seek(offset)
            assert f.read(len(data)) == data


def test_wide_directory_100k_entries(repo: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    wide = src / "wide"
    wide.mkdir(parents=True)
    count = 100_000
    for i in range(count):
        with open(os.path.join(wide, f"entry-{i:06d}"), "wb") as f:
            if i % 1000 == 0:
                f.write(f"content {i}\n".encode())
    first = repo.ok("snapshot", src, "--json").json()
    assert first["files_new"] == count
    listed = repo.ok("ls", "latest", str(wide)).out.splitlines()
    assert len(listed) == count
    assert listed[0].endswith("entry-000000") and listed[-1].endswith("entry-099999")
    assert repo.ok("dump", "latest", str(wide / "entry-042000")).out == "content 42000\n"
    second = repo.ok("snapshot", src, "--json").json()
    assert second["files_unchanged"] == count
    # a listing this large is kept encoded: diff merges the two sides
    (wide / "entry-050000").write_text("changed\n")
    (wide / "entry-000001").unlink()
    (wide / "entry-100000").write_text("new\n")
    third = repo.ok("snapshot", src, "--json").json()
    changes = repo.ok("diff", second["id"], third["id"], str(wide), "--json").json()["changes"]
    assert sorted((c["path"].removeprefix(str(wide)), c["change"]) for c in changes) == [
        ("/entry-000001", "removed"),
        ("/entry-050000", "modified"),
        ("/entry-100000", "added"),
    ]

    out = tmp_path / "out"
    repo.ok("restore", "latest", "--to", out)
    restored = out / str(wide).lstrip("/")
    assert len(os.listdir(restored)) == count
    assert (restored / "entry-050000").read_text() == "changed\n"
    assert (restored / "entry-099000").read_text() == "content 99000\n"
