"""Looking at snapshots: ``snapshots``, ``ls``, ``dump``, ``find``, ``diff``, ``stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import click
import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import JsonOpt, PasswordFileOpt, RepoOpt, SnapshotArg, SnapshotsArg, TargetOpt
from ..say import say

if TYPE_CHECKING:
    from neostore.core.repository import Repository
    from neostore.snapshots.info import SnapshotInfo


def snapshots(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    host: Annotated[list[str] | None, typer.Option("--host", help="Only this host's.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only with these tags (a,b: both).")
    ] = None,
    path: Annotated[
        list[str] | None, typer.Option("--path", help="Only those that backed up PATH.")
    ] = None,
    latest: Annotated[
        int, typer.Option("--latest", help="The N newest per host and paths.", show_default=False)
    ] = 0,
    json_output: JsonOpt = False,
) -> None:
    """List snapshots (of one target, or of every target the key can read)."""
    repository = context.open_repo(repo, password_file)
    from neostore.snapshots import filter as chosen
    from neostore.snapshots.chains import list_verified

    listing = list_verified(repository, target)
    context.tampering(listing.tampering)
    render.problems("warning", listing.warnings)
    render.problems("error", listing.failures)
    shown = chosen.SnapshotFilter(host or [], tag or [], path or []).apply(listing.snapshots)
    if latest:
        shown = chosen.latest(shown, latest)
    if json_output:
        render.emit([render.snapshot_json(i) for i in shown])
    else:
        render.print_snapshots(shown)
    if listing.failures:
        raise typer.Exit(ExitCode.FATAL)


def ls(
    snapshot_id: SnapshotArg,
    path: Annotated[str, typer.Argument(help="Directory inside the snapshot.")] = "/",
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    long: Annotated[bool, typer.Option("--long", "-l", help="Mode, owner, size, time.")] = False,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="Everything below PATH.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """List files in a snapshot."""
    repository = context.open_repo(repo, password_file)
    from neostore.browse.navigate import entries
    from neostore.snapshots.lookup import find_snapshot

    info = find_snapshot(repository, snapshot_id, target)
    repository.load_index()
    found = entries(repository, info, path, recursive)  # printed as it is read
    if json_output:
        render.emit_array(render.node_json(p, n) for p, n in found)
        return
    for entry_path, entry in found:
        print(render.node_line(entry_path, entry) if long else render.show(entry_path))


def dump(
    snapshot_id: Annotated[str, typer.Argument(metavar="SNAPSHOT[:PATH]")],
    path: Annotated[
        str | None, typer.Argument(help="File (or, with --archive, folder) in the snapshot.")
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            metavar="tar|zip",
            help="Write the folder at PATH (/ for everything) as a tar or zip archive.",
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Write to this file instead of stdout.")
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    preserve_privileged: Annotated[
        bool,
        typer.Option(
            "--preserve-privileged",
            help="In an archive of a snapshot not signed by an owner key, keep setuid/setgid "
            "bits, device nodes and security.*/trusted.* attributes.",
        ),
    ] = False,
) -> None:
    """Write one file's content, or a folder as a tar or zip archive, to
    stdout (or --to FILE)."""
    snap, sep, inner = snapshot_id.partition(":")
    if sep and path is not None:
        raise Fail("give the path once: SNAPSHOT:PATH or SNAPSHOT PATH", ExitCode.USAGE)
    wanted = inner if sep else path
    if not wanted:
        raise Fail("PATH: give the file or folder to dump", ExitCode.USAGE)
    from neostore.restorer.archive import FORMATS

    if archive is not None and archive not in FORMATS:
        raise Fail(f"--archive: {archive!r} is not tar or zip", ExitCode.USAGE)
    repository = context.open_repo(repo, password_file)
    from neostore.snapshots.lookup import find_snapshot

    info = find_snapshot(repository, snap, target)
    repository.load_index()
    if archive is None:
        from neostore.browse.files import read_file

        with render.output_file(to) as out:
            for data in read_file(repository, info, wanted):
                out.write(data)
    else:
        _dump_archive(repository, info, wanted, archive, to, preserve_privileged)


def _dump_archive(
    repository: Repository,
    info: SnapshotInfo,
    path: str,
    kind: str,
    to: str | None,
    privileged: bool,
) -> None:
    from neostore.restorer.archive import write_archive

    with render.output_file(to) as out:
        stats = write_archive(repository, info, path, kind, out, render.path_warning, privileged)
    if stats.privileged_dropped:
        say(
            "warning",
            f"dropped the privileged metadata of {stats.privileged_dropped} item(s): "
            "the snapshot is not signed by an owner key; --preserve-privileged keeps them",
        )
    if stats.errors:
        say("error", f"{len(stats.errors)} file(s) could not be read")
        raise typer.Exit(ExitCode.FATAL)


def find(
    patterns: Annotated[list[str], typer.Argument(metavar="PATTERN...", help="Globs to look for.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    snapshot_specs: Annotated[
        list[str] | None, typer.Option("--snapshot", "-s", help="Search only this (repeatable).")
    ] = None,
    ignore_case: Annotated[
        bool, typer.Option("--ignore-case", "-i", help="Match without regard to case.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Which snapshots hold a matching path (a pattern without "/" matches names)."""
    from neostore.browse.find import find as find_paths
    from neostore.snapshots.lookup import select

    repository = context.open_repo(repo, password_file)
    chosen = select(repository, snapshot_specs, target)
    repository.load_index()
    results = []
    matched = False
    for info, found in find_paths(repository, chosen, patterns, ignore_case):
        if not found:
            continue
        matched = True
        if json_output:
            matches = [render.node_json(p, n) for p, n in found]
            results.append({**render.snapshot_json(info), "matches": matches})
            continue
        print(
            f"snapshot {info.hex_id[:8]} ({info.target}, "
            f"{render.local_time(info.manifest.time_ns)}):"
        )
        for path, node in found:
            print(
                f"  {render.mode_string(node)} {node.size:>12} "
                f"{render.local_time(node.mtime_ns)} {render.show(path)}"
            )
    if json_output:
        render.emit(results)
    if not matched:  # as restic: said, and not an error
        say("notice", f"no match in {len(chosen)} snapshot(s)")


def diff(
    first: Annotated[str, typer.Argument(metavar="SNAPSHOT_A")],
    second: Annotated[str, typer.Argument(metavar="SNAPSHOT_B")],
    path: Annotated[str, typer.Argument(help="Compare only below this path.")] = "/",
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """What changed from SNAPSHOT_A to SNAPSHOT_B: + added, - removed, M modified, U metadata."""
    from neostore.browse.diff import diff_at
    from neostore.errors import NotFound
    from neostore.snapshots.lookup import find_snapshot

    repository = context.open_repo(repo, password_file)
    a = find_snapshot(repository, first, target)
    b = find_snapshot(repository, second, target)
    repository.load_index()
    try:
        changes = diff_at(repository, a, b, path)
    except NotFound as e:
        raise Fail(f"{path}: in neither snapshot") from e
    counts = {"added": 0, "removed": 0, "modified": 0, "metadata": 0}
    signs = {"added": "+", "removed": "-", "modified": "M", "metadata": "U"}
    rows = []
    for change in changes:
        counts[change.kind] += 1
        if json_output:
            rows.append({"path": render.show(change.path), "change": change.kind})
        else:
            print(f"{signs[change.kind]}    {render.show(change.path)}")
    if json_output:
        render.emit({"from": a.hex_id, "to": b.hex_id, "changes": rows, "summary": counts})
    else:
        print(
            f"\n{counts['added']} added, {counts['removed']} removed, "
            f"{counts['modified']} modified, {counts['metadata']} metadata only"
        )


def stats(
    snapshot_specs: SnapshotsArg = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            click_type=click.Choice(["restore-size", "raw-data"]),
            help="restore-size (what a restore writes) or raw-data.",
        ),
    ] = "restore-size",
    json_output: JsonOpt = False,
) -> None:
    """Sizes: what restoring the snapshots writes, and the distinct data behind them."""
    from neostore.browse.usage import stats as collect
    from neostore.snapshots.lookup import select

    if mode not in ("restore-size", "raw-data"):
        raise Fail(f"--mode {mode!r}: use restore-size or raw-data", ExitCode.USAGE)
    repository = context.open_repo(repo, password_file)
    chosen = select(repository, snapshot_specs, target)
    repository.load_index()
    s = collect(repository, chosen)
    if json_output:
        render.emit(
            {
                "mode": mode,
                "snapshots": s.snapshots,
                "files": s.files,
                "dirs": s.dirs,
                "others": s.others,
                "restore_size": s.restore_size,
                "blobs": s.blobs,
                "raw_size": s.plain_bytes,
                "stored_size": s.stored_bytes,
                "compression_ratio": round(s.compression, 4),
                "dedup_ratio": round(s.dedup, 4),
            }
        )
        return
    print(f"snapshots:    {s.snapshots}")
    if mode == "restore-size":
        print(f"files:        {s.files} ({s.dirs} directories, {s.others} other)")
        print(f"restore size: {render.size(s.restore_size)}")
    else:
        print(f"blobs:        {s.blobs}")
        print(f"raw data:     {render.size(s.plain_bytes)} (before compression)")
        print(
            f"stored:       {render.size(s.stored_bytes)} (compression ratio {s.compression:.2f}x)"
        )
        print(f"dedup ratio:  {s.dedup:.2f}x (restore size {render.size(s.restore_size)})")
