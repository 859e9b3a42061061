"""``snapshot``: back up files and directories."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from neostore.commandline import ExitCode

from .. import context, render
from ..options import (
    ExcludeOpt,
    JsonOpt,
    PasswordFileOpt,
    QuietOpt,
    RepoOpt,
    TargetOpt,
    VerboseOpt,
)

if TYPE_CHECKING:
    from neostore.backup.options import SnapshotResult

    from ..progress import BarReporter


def snapshot(
    paths: Annotated[list[str], typer.Argument(help="Files and directories to back up.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the snapshot (repeatable).")
    ] = None,
    exclude: ExcludeOpt = None,
    exclude_file: Annotated[
        list[str] | None, typer.Option("--exclude-file", help="Read exclude globs from FILE.")
    ] = None,
    one_file_system: Annotated[
        bool, typer.Option("--one-file-system", "-x", help="Do not cross file-system boundaries.")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ignore the files cache: read every file.")
    ] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Back up PATHs into a new snapshot of the target; prints its id
    (``backup`` is the same command)."""
    from neostore.backup.archiver import Archiver
    from neostore.backup.options import SnapshotOptions
    from neostore.backup.prewalk import Prewalk
    from neostore.matcher import read_exclude_file

    patterns = list(exclude or [])
    for path in exclude_file or []:
        patterns.extend(read_exclude_file(path))
    # read the file system ahead while the key is derived
    prewalk = Prewalk(paths, patterns, one_file_system)
    repository = context.open_repo(repo, password_file, meanwhile=prewalk.run)
    reporter = context.reporter(json_output, verbose, quiet)
    options = SnapshotOptions(
        paths=paths,
        target=target or repository.default_target,
        tags=tag or [],
        excludes=patterns,
        one_file_system=one_file_system,
        use_files_cache=not no_cache,
    )
    result = Archiver(repository, options, reporter, prewalk).run()
    if json_output:
        render.emit(_result_json(result, reporter))
    else:
        if not quiet:  # on stderr even when it is no terminal: cron mails say what happened
            print(_summary(result), file=sys.stderr)
        print(result.snapshot_id.hex())
    if result.errors:
        print(f"warning: {len(result.errors)} source file(s) could not be read", file=sys.stderr)
        raise typer.Exit(ExitCode.PARTIAL)


def _summary(result: SnapshotResult) -> str:
    s = result.stats
    return (
        f"snapshot {result.snapshot_id.hex()[:8]} of {result.target}: files "
        f"{s.files_new} new, {s.files_changed} changed, {s.files_unchanged} unchanged; "
        f"read {render.size(s.bytes_read)} of {render.size(s.bytes_total)}, "
        f"added {render.size(s.bytes_added)} in {s.duration:.1f}s"
    )


def _result_json(result: SnapshotResult, reporter: BarReporter) -> dict[str, object]:
    s = result.stats
    return {
        "id": result.snapshot_id.hex(),
        "target": result.target,
        "files_new": s.files_new,
        "files_changed": s.files_changed,
        "files_unchanged": s.files_unchanged,
        "dirs": s.dirs,
        "others": s.others,
        "bytes_read": s.bytes_read,
        "bytes_total": s.bytes_total,
        "bytes_added": s.bytes_added,
        "blobs_added": s.blobs_new,
        "blobs_copied": s.blobs_copied,
        "packs_recovered": s.packs_recovered,
        "shares_published": result.shares_published,
        "duration": round(s.duration, 3),
        "errors": [{"path": render.show(p), "message": m} for p, m in result.errors],
        "warnings": [{"path": render.show(p or b""), "message": m} for p, m in reporter.warnings],
    }
