"""Privileged metadata on restore (issue 15 item 3): from a snapshot a
writer key signed, a restore run as root drops setuid/setgid bits, device
nodes and security.*/trusted.* attributes unless --preserve-privileged is
given; from an owner's snapshot (and its tagged replacement) it keeps them."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest

from conftest import Cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates device nodes and caps: root")

#: a file capability (VFS_CAP_REVISION_2, effective): cap_net_raw
CAPABILITY = struct.pack("<IIIII", 0x02000000 | 1, 1 << 13, 0, 0, 0)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name, mode in (("suid", 0o4755), ("sgid", 0o2755)):
        (src / name).write_text("#!/bin/sh\n")
        os.chmod(src / name, mode)
    (src / "group-dir").mkdir()
    os.chmod(src / "group-dir", 0o2775)  # a setgid directory grants nothing: kept
    os.mknod(src / "disk", 0o666 | stat.S_IFBLK, os.makedev(7, 0))
    (src / "capped").write_text("binary\n")
    os.setxattr(src / "capped", "security.capability", CAPABILITY)
    os.setxattr(src / "capped", "trusted.origin", b"planted")
    os.setxattr(src / "capped", "user.note", b"kept")
    return src


def _restore(repo: Cli, snapshot: str, out: Path, *extra: str) -> dict[str, object]:
    return repo.ok("restore", snapshot, "--to", out, "--json", *extra).json()


def _privileged(out: Path, src: Path) -> dict[str, object]:
    root = out / src.relative_to("/")
    return {
        "suid": stat.S_IMODE(os.lstat(root / "suid").st_mode),
        "sgid": stat.S_IMODE(os.lstat(root / "sgid").st_mode),
        "group-dir": stat.S_IMODE(os.lstat(root / "group-dir").st_mode),
        "disk": os.path.lexists(root / "disk"),
        "xattrs": sorted(os.listxattr(root / "capped")),
    }


FULL = {
    "suid": 0o4755,
    "sgid": 0o2755,
    "group-dir": 0o2775,
    "disk": True,
    "xattrs": ["security.capability", "trusted.origin", "user.note"],
}
DROPPED = {
    "suid": 0o755,
    "sgid": 0o755,
    "group-dir": 0o2775,
    "disk": False,
    "xattrs": ["user.note"],
}


def test_writer_snapshots_restore_without_privileged_metadata(repo: Cli, tmp_path: Path) -> None:
    src = _source(tmp_path)
    new = {"NEOSTORE_NEW_PASSWORD": "writer pw"}
    repo.ok("key", "add", "--role", "writer", "--target", "default", extra_env=new)
    by_writer = repo.ok("snapshot", src, "--json", password="writer pw").json()["id"]
    by_owner = repo.ok("snapshot", src, "--json").json()["id"]

    stats = _restore(repo, by_writer, tmp_path / "w")
    assert _privileged(tmp_path / "w", src) == DROPPED and stats["privileged_dropped"] == 4
    text = repo.ok("restore", by_writer, "--to", tmp_path / "w-text")
    assert "dropped the privileged metadata of 4 item(s)" in text.err
    assert "--preserve-privileged" in text.err

    stats = _restore(repo, by_writer, tmp_path / "w-all", "--preserve-privileged")
    assert _privileged(tmp_path / "w-all", src) == FULL and stats["privileged_dropped"] == 0

    stats = _restore(repo, by_owner, tmp_path / "o")
    assert _privileged(tmp_path / "o", src) == FULL and stats["privileged_dropped"] == 0

    # the owner tagging a writer's snapshot does not launder its tree; the
    # owner's own snapshot keeps full fidelity through a tag
    tagged = repo.ok("tag", by_writer, by_owner, "--add", "t", "--json").json()
    new_ids = {row["old"]: row["new"] for row in tagged}
    _restore(repo, new_ids[by_writer], tmp_path / "w-tagged")
    assert _privileged(tmp_path / "w-tagged", src) == DROPPED
    _restore(repo, new_ids[by_owner], tmp_path / "o-tagged")
    assert _privileged(tmp_path / "o-tagged", src) == FULL


def test_an_archive_of_a_writer_snapshot_drops_privileged_metadata(
    repo: Cli, tmp_path: Path
) -> None:
    """dump --archive follows restore's rule (issue 16): `tar -xp` as root
    would otherwise apply what a leaked writer key signed."""
    import io
    import tarfile

    src = _source(tmp_path)
    new = {"NEOSTORE_NEW_PASSWORD": "writer pw"}
    repo.ok("key", "add", "--role", "writer", "--target", "default", extra_env=new)
    by_writer = repo.ok("snapshot", src, "--json", password="writer pw").json()["id"]

    def members(*extra: str) -> tuple[dict[str, tarfile.TarInfo], str]:
        dumped = repo.ok("dump", f"{by_writer}:{src}", "--archive", "tar", *extra)
        with tarfile.open(fileobj=io.BytesIO(dumped.stdout_bytes)) as t:
            return {m.name.rsplit("/", 1)[-1]: m for m in t.getmembers()}, dumped.err

    vetted, err = members()
    assert vetted["suid"].mode == 0o755 and vetted["sgid"].mode == 0o755
    assert vetted["group-dir"].mode == 0o2775 and "disk" not in vetted
    assert [k for k in vetted["capped"].pax_headers if k.startswith("SCHILY")] == [
        "SCHILY.xattr.user.note"
    ]
    assert "dropped the privileged metadata of 4 item(s)" in err
    full, _ = members("--preserve-privileged")
    assert full["suid"].mode == 0o4755 and full["disk"].isblk()
    assert "SCHILY.xattr.security.capability" in full["capped"].pax_headers
