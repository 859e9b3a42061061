"""``repair index`` and ``repair snapshots``: rebuild damaged metadata."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from neostore.commandline import ExitCode

from .. import context, render
from ..options import DryRunOpt, JsonOpt, PasswordFileOpt, RepoOpt, TargetOpt


def repair_index(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    dry_run: DryRunOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Rebuild the index from the packs' signed headers (owner keys).

    New index files are written first, then the old ones are removed (prune's
    marks are kept). Packs whose header does not verify are left out and
    reported."""
    from neostore.lifecycle.repair import repair_index as rebuild

    stats = rebuild(context.open_repo(repo, password_file), dry_run=dry_run)
    if json_output:
        render.emit(dict(asdict(stats), dry_run=dry_run))
    else:
        write, remove = ("would write", "would remove") if dry_run else ("wrote", "removed")
        print(
            f"{stats.packs_indexed} of {stats.packs} packs indexed; {write} "
            f"{stats.index_files_written} index files, {remove} {stats.index_files_removed}, "
            f"kept {stats.marks_kept} prune marks"
        )
    render.problems("warning", stats.problems)
    if stats.problems:
        raise typer.Exit(ExitCode.FATAL)


def repair_snapshots(
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SNAPSHOT]...", help="Snapshots to repair (default: all)."),
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    forget: Annotated[
        bool, typer.Option("--forget", help="Forget the damaged originals (owner keys).")
    ] = False,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Also read every file chunk and drop bad ones.")
    ] = False,
    dry_run: DryRunOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Replace snapshots that name missing data by ones without it.

    Files keep what is still readable (missing chunks are cut out); an
    unreadable directory becomes empty. The new snapshot is tagged
    `repaired` and lists what was lost. Run `repair index` first when check
    reports index problems."""
    from neostore.lifecycle.salvage import repair_targets
    from neostore.snapshots.lookup import select

    repository = context.open_repo(repo, password_file)
    chosen = select(repository, snapshot_ids, target)
    rows: list[dict[str, Any]] = []
    for name, outcomes, gone in repair_targets(
        repository, chosen, forget_originals=forget, read_data=read_data, dry_run=dry_run
    ):
        if gone and not json_output:
            print(f"target {name}: the index names {len(gone)} pack(s) that are gone")
        for o in outcomes:
            rows.append(
                {
                    "target": name,
                    "id": o.info.hex_id,
                    "damaged": bool(o.lost),
                    "new": o.replacement.hex_id if o.replacement is not None else None,
                    "forgotten": bool(o.lost) and forget and not dry_run,
                    "lost": [{"path": render.show(p), "type": k, "bytes": n} for p, k, n in o.lost],
                }
            )
    if json_output:
        render.emit({"dry_run": dry_run, "snapshots": rows})
        return
    for row in rows:
        _print_row(row, dry_run)
    damaged = sum(r["damaged"] for r in rows)
    print(f"{damaged} of {len(rows)} snapshot(s) damaged" + (" (dry run)" if dry_run else ""))


def _print_row(row: dict[str, Any], dry_run: bool) -> None:
    if not row["damaged"]:
        print(f"{row['target']}/{row['id'][:8]}  ok")
        return
    verb = "would replace" if dry_run else f"replaced by {row['new'][:8]}"
    print(f"{row['target']}/{row['id'][:8]}  damaged, {verb}")
    for entry in row["lost"]:
        what = "directory emptied" if entry["type"] == "dir" else f"{entry['bytes']} bytes cut"
        print(f"    {entry['path']}: {what}")
