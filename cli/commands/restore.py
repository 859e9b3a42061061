"""``restore``: recreate a snapshot (or part of it) under a directory."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from neostore.commandline import ExitCode

from .. import context, render
from ..options import (
    ExcludeOpt,
    IExcludeOpt,
    IIncludeOpt,
    IncludeOpt,
    JsonOpt,
    OverwriteOpt,
    PasswordFileOpt,
    QuietOpt,
    RepoOpt,
    TargetOpt,
    VerboseOpt,
)
from ..say import say

if TYPE_CHECKING:
    from neostore.restorer.options import RestoreOptions, RestoreStats
    from neostore.snapshots.info import SnapshotInfo

    from ..progress import BarReporter

DeleteOpt = Annotated[
    bool, typer.Option("--delete", help="Remove what the snapshot does not hold.")
]
PreservePrivilegedOpt = Annotated[
    bool,
    typer.Option(
        "--preserve-privileged",
        help="Also from snapshots not signed by an owner key, restore setuid/setgid "
        "bits, device nodes and security.*/trusted.* attributes.",
    ),
]

ToOpt = Annotated[str | None, typer.Option("--to", "--target-dir", help="Destination directory.")]
OnConflictOpt = Annotated[
    str,
    typer.Option(
        "--on-conflict",
        click_type=click.Choice(["rename", "skip", "fail"]),
        help="Names the destination cannot hold (case-insensitive file systems, FAT, "
        "Windows rules): rename (restore under an escaped name, listed; exit 3), skip "
        "(leave out, listed; exit 3), fail (check every name first, restore nothing).",
    ),
]


def restore(
    snapshot_spec: Annotated[str, typer.Argument(metavar="SNAPSHOT[:SUBPATH]")],
    to: ToOpt = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    iinclude: IIncludeOpt = None,
    iexclude: IExcludeOpt = None,
    overwrite: OverwriteOpt = "always",
    delete: DeleteOpt = False,
    preserve_privileged: PreservePrivilegedOpt = False,
    on_conflict: OnConflictOpt = "rename",
    json_output: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Restore a snapshot (or a sub-path of it) under a directory.

    Into a directory that already holds a copy, existing files are cut into
    chunks as the repository would and only the chunks that differ are
    downloaded."""
    from neostore.errors import UsageError
    from neostore.restorer.options import RestoreOptions

    if to is None:
        raise _no_destination(snapshot_spec, target)
    snap, sep, sub = snapshot_spec.partition(":")
    options = RestoreOptions(
        destination=to,
        subpath=os.fsencode(sub) if sep else b"/",
        includes=include or [],
        excludes=exclude or [],
        iincludes=iinclude or [],
        iexcludes=iexclude or [],
        overwrite=overwrite,
        delete=delete,
        preserve_privileged=preserve_privileged,
        on_conflict=on_conflict,
    )
    try:
        options.policy()
    except UsageError as e:
        raise context.usage(e) from None
    repository = context.open_repo(repo, password_file)  # after the options are checked
    from neostore.restorer.walk import Restorer
    from neostore.snapshots.lookup import find_snapshot

    info = find_snapshot(repository, snap, target)
    started = time.monotonic()
    reporter = context.reporter(json_output, verbose, quiet)
    _known_total(reporter, info, options)
    stats = Restorer(repository, options, reporter).run(info)
    took = time.monotonic() - started
    if json_output:
        render.emit(_stats_json(info.hex_id, stats, took))
    elif not quiet:
        print(_summary(stats, to, took), file=sys.stderr)
    _report(stats)


def _known_total(reporter: BarReporter, info: SnapshotInfo, options: RestoreOptions) -> None:
    """A whole snapshot restores what its snapshot read: a total (and an
    ETA) for the progress without a walk ahead."""
    whole = options.subpath == b"/" and not (
        options.includes or options.excludes or options.iincludes or options.iexcludes
    )
    total = info.manifest.stats.get("bytes_total") if whole else None
    if reporter.shows_progress and isinstance(total, int):
        reporter.set_total(total)


def _summary(stats: RestoreStats, to: str, took: float) -> str:
    return (
        f"restored {stats.files} files, {stats.dirs} directories "
        f"({render.size(stats.bytes_written)} written, "
        f"{render.size(stats.bytes_downloaded)} downloaded) to {to} in {took:.1f}s"
    )


def _no_destination(spec: str, target: str | None) -> click.UsageError:
    """restic's ``--target DIR`` is neostore's ``--to DIR`` (``--target``
    names one of the repository's targets): say what to type."""
    if target is not None and (
        os.sep in target or target.startswith(("~", ".")) or os.path.isdir(target)
    ):
        return click.UsageError(
            f"--target names a target of the repository (documents, work); to restore into "
            f"the folder {target}, type: neostore restore {spec} --to {target}"
        )
    return click.UsageError("Missing option '--to' (the destination directory).")


def _report(stats: RestoreStats) -> None:
    """Warnings after the restore, and its exit code."""
    if stats.privileged_dropped:
        say(
            "warning",
            f"dropped the privileged metadata of {stats.privileged_dropped} item(s) "
            "(setuid/setgid bits, device nodes, security.*/trusted.* attributes): the snapshot "
            "is not signed by an owner key; --preserve-privileged restores them",
        )
    _not_kept(stats)
    if stats.errors:
        say("error", f"{len(stats.errors)} item(s) could not be restored")
        raise typer.Exit(ExitCode.FATAL)
    if stats.incomplete:
        say(
            "warning",
            f"{len(stats.renamed)} item(s) restored under another name, "
            f"{len(stats.names_skipped)} left out: the destination cannot hold their names "
            "(each listed above)",
        )
        raise typer.Exit(ExitCode.PARTIAL)


def _not_kept(stats: RestoreStats) -> None:
    """One line for the metadata the destination did not keep."""
    from neostore.restorer.destination import KINDS

    lost = [(kind, getattr(stats, f"{kind}_not_applied")) for kind in KINDS]
    here = [(kind, n) for kind, n in lost[:4] if n]
    if here:
        shown = ", ".join(f"{kind} of {n}" for kind, n in here)
        say(
            "warning",
            f"the destination did not keep some metadata ({shown} item(s)); "
            "FAT and exFAT keep no owners, modes or extended attributes",
        )
    foreign = [(kind, n) for kind, n in lost[4:] if n]
    if foreign:
        shown = ", ".join(f"{kind} of {n}" for kind, n in foreign)
        say(
            "warning",
            f"not applied on this platform: metadata another platform recorded "
            f"({shown} item(s): file flags from macOS or BSD, attributes or creation times)",
        )


def _stats_json(snapshot_id: str, stats: RestoreStats, duration: float) -> dict[str, Any]:
    from neostore.restorer.destination import KINDS

    return {
        "snapshot": snapshot_id,
        "files": stats.files,
        "dirs": stats.dirs,
        "others": stats.others,
        "bytes_written": stats.bytes_written,
        "files_skipped": stats.files_skipped,
        "files_unchanged": stats.files_unchanged,
        "bytes_downloaded": stats.bytes_downloaded,
        "bytes_reused": stats.bytes_reused,
        "removed": stats.removed,
        "privileged_dropped": stats.privileged_dropped,
        "metadata_not_applied": {kind: getattr(stats, f"{kind}_not_applied") for kind in KINDS},
        "renamed": [
            {"path": render.show(p), "restored_as": render.show(w), "reason": r}
            for p, w, r in stats.renamed
        ],
        "names_skipped": [{"path": render.show(p), "reason": r} for p, r in stats.names_skipped],
        "duration": round(duration, 3),
        "errors": [{"path": render.show(p), "message": m} for p, m in stats.errors],
    }
