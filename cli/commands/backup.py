"""``snapshot``: back up files and directories."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import typer

from neostore.commandline import ExitCode

from .. import context, render
from .. import sources as src
from ..options import (
    ExcludeOpt,
    IExcludeOpt,
    JsonOpt,
    PasswordFileOpt,
    QuietOpt,
    RepoOpt,
    TargetOpt,
    VerboseOpt,
)
from ..say import say

if TYPE_CHECKING:
    from neostore.backup.options import SnapshotOptions, SnapshotResult

    from ..progress import BarReporter


def snapshot(
    paths: src.PathsArg = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    tag: src.TagOpt = None,
    host: src.HostOpt = None,
    exclude: ExcludeOpt = None,
    exclude_file: src.ExcludeFileOpt = None,
    iexclude: IExcludeOpt = None,
    iexclude_file: src.IExcludeFileOpt = None,
    exclude_caches: src.ExcludeCachesOpt = False,
    exclude_if_present: src.ExcludeIfPresentOpt = None,
    exclude_larger_than: src.ExcludeLargerOpt = None,
    files_from: src.FilesFromOpt = None,
    files_from_verbatim: src.FilesFromVerbatimOpt = None,
    files_from_raw: src.FilesFromRawOpt = None,
    stdin: src.StdinOpt = False,
    stdin_filename: src.StdinFilenameOpt = "stdin",
    stdin_from_command: src.StdinCommandOpt = False,
    one_file_system: src.OneFileSystemOpt = False,
    no_cache: src.NoCacheOpt = False,
    dry_run: src.DryRunOpt = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Back up PATHs into a new snapshot of the target; prints its id
    (``backup`` is the same command)."""
    from neostore.backup.archiver import Archiver
    from neostore.backup.prewalk import Prewalk

    stream = src.stream_source(paths or [], stdin, stdin_filename, stdin_from_command)
    sources = [] if stream else src.listed_paths(
        paths or [], files_from or [], files_from_verbatim or [], files_from_raw or []
    )  # fmt: skip
    rules = src.exclusions(
        exclude or [], exclude_file or [], iexclude or [], iexclude_file or [],
        exclude_caches, exclude_if_present or [], exclude_larger_than,
    )  # fmt: skip
    # read the file system ahead while the key is derived
    prewalk = None if stream else Prewalk(sources, rules, one_file_system)
    meanwhile = prewalk.run if prewalk else None
    repository = context.open_repo(repo, password_file, meanwhile=meanwhile)
    reporter = context.reporter(json_output, verbose, quiet)
    chosen = target or repository.default_target
    options = src.snapshot_options(
        sources, chosen, tag or [], rules, host, one_file_system, no_cache, stream, dry_run
    )
    counting = _precount(reporter, options) if reporter.shows_progress else None
    try:
        result = Archiver(repository, options, reporter, prewalk).run()
    finally:
        if counting is not None:
            counting.set()
    _finish(result, reporter, json_output, quiet)


def _precount(reporter: BarReporter, options: SnapshotOptions) -> threading.Event:
    """Count what the snapshot will read beside it, as restic does, so that
    its progress has a total and an ETA (a thread: it only lists and stats)."""
    from neostore.backup.precount import count_paths

    stop = threading.Event()

    def run() -> None:
        count = count_paths(options.paths, options.exclusions, options.one_file_system, stop)
        if count.complete:
            reporter.set_total(count.bytes)

    if options.stream is None:
        threading.Thread(target=run, name="neostore-precount", daemon=True).start()
    return stop


def _finish(result: SnapshotResult, reporter: BarReporter, json_output: bool, quiet: bool) -> None:
    if json_output:
        render.emit(_result_json(result, reporter))
    elif not result.snapshot_id:  # a dry run: what it would do, on stdout
        s = result.stats
        print(
            f"dry run: would read {render.size(s.bytes_read)} of {render.size(s.bytes_total)} "
            f"({s.files_new} new, {s.files_changed} changed, {s.files_unchanged} unchanged "
            f"files) and add {render.size(s.bytes_added)} ({s.blobs_new} new blobs); "
            "nothing was saved"
        )
    else:
        if not quiet:  # on stderr even when it is no terminal: cron mails say what happened
            print(_summary(result), file=sys.stderr)
        print(result.snapshot_id.hex())
    if result.errors:
        say("warning", f"{len(result.errors)} source file(s) could not be read")
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
        "id": result.snapshot_id.hex() or None,
        "dry_run": not result.snapshot_id,
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
