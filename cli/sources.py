"""What ``snapshot`` reads and leaves out, from its options: paths given
and listed in files (``--files-from*``), and restic's exclusion options."""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Annotated

import typer

from neostore.commandline import ExitCode, Fail

if TYPE_CHECKING:
    from neostore.backup.exclude import Exclusions
    from neostore.backup.options import SnapshotOptions
    from neostore.backup.stream import StreamSource

_FILES = "Back up the paths listed in FILE"
FilesFromOpt = Annotated[
    list[str] | None,
    typer.Option("--files-from", help=f"{_FILES}, a line each (globs expanded, # comments)."),
]
FilesFromVerbatimOpt = Annotated[
    list[str] | None,
    typer.Option("--files-from-verbatim", help=f"{_FILES}, a line each, as they are."),
]
FilesFromRawOpt = Annotated[
    list[str] | None,
    typer.Option("--files-from-raw", help=f"{_FILES}, separated by NUL bytes (find -print0)."),
]
ExcludeFileOpt = Annotated[
    list[str] | None, typer.Option("--exclude-file", help="Read exclude patterns from FILE.")
]
IExcludeFileOpt = Annotated[
    list[str] | None,
    typer.Option("--iexclude-file", help="Read case-insensitive exclude patterns from FILE."),
]
ExcludeCachesOpt = Annotated[
    bool,
    typer.Option("--exclude-caches", help="Leave out the content of folders with a CACHEDIR.TAG."),
]
ExcludeIfPresentOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude-if-present",
        metavar="NAME[:HEADER]",
        help="Leave out the content of folders holding a file NAME (starting with HEADER).",
    ),
]
ExcludeLargerOpt = Annotated[
    str | None,
    typer.Option(
        "--exclude-larger-than", metavar="SIZE", help="Leave out files over SIZE (2m, 1g)."
    ),
]
PathsArg = Annotated[list[str] | None, typer.Argument(help="Files and directories to back up.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Tag the snapshot (repeatable).")]
OneFileSystemOpt = Annotated[
    bool, typer.Option("--one-file-system", "-x", help="Do not cross file-system boundaries.")
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Ignore the files cache: read every file.")
]
StdinOpt = Annotated[
    bool, typer.Option("--stdin", help="Back up standard input as one file (a dump).")
]
StdinFilenameOpt = Annotated[
    str, typer.Option("--stdin-filename", help="The file's name in the snapshot.")
]
StdinCommandOpt = Annotated[
    bool,
    typer.Option(
        "--stdin-from-command",
        help="Back up the output of the command given after -- (a failing one saves nothing).",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", "-n", help="Say what would be read and added; store nothing (-v: which files)."
    ),
]
HostOpt = Annotated[
    str | None, typer.Option("--host", help="Record this host name (default: this machine's).")
]


def _read(path: str, what: str) -> bytes:
    try:
        if path == "-":
            import sys

            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Fail(f"{what} {path}: {e.strerror or e}") from e


def listed_paths(
    given: list[str], files_from: list[str], verbatim: list[str], raw: list[str]
) -> list[str]:
    """The paths to back up: those given, then those the files list
    (``-`` reads standard input). ``--files-from`` skips blank lines and
    ``#`` comments and expands globs (a glob that matches nothing is an
    error, as a missing path is); ``--files-from-verbatim`` takes every
    non-empty line as it is; ``--files-from-raw`` splits on NUL."""
    paths = list(given)
    for name in files_from:
        for line in _read(name, "--files-from").decode("utf-8", "surrogateescape").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if any(c in line for c in "*?["):
                found = sorted(glob.glob(line))
                if not found:
                    raise Fail(f"--files-from {name}: {line}: matches nothing", ExitCode.USAGE)
                paths.extend(found)
            else:
                paths.append(line)
    for name in verbatim:
        text = _read(name, "--files-from-verbatim").decode("utf-8", "surrogateescape")
        paths.extend(line for line in text.split("\n") if line)
    for name in raw:
        data = _read(name, "--files-from-raw")
        paths.extend(os.fsdecode(p) for p in data.split(b"\0") if p)
    if not paths:
        raise Fail("nothing to back up: give PATHs or --files-from FILE", ExitCode.USAGE)
    return paths


def exclusions(
    exclude: list[str],
    exclude_file: list[str],
    iexclude: list[str],
    iexclude_file: list[str],
    caches: bool,
    if_present: list[str],
    larger_than: str | None,
) -> Exclusions:
    from neostore.backup.exclude import CACHEDIR_TAG, Exclusions, parse_size
    from neostore.errors import UsageError
    from neostore.matcher import read_exclude_file

    from .context import usage

    try:
        patterns = list(exclude) + [p for f in exclude_file for p in read_exclude_file(f)]
        insensitive = list(iexclude) + [p for f in iexclude_file for p in read_exclude_file(f)]
        limit = parse_size(larger_than) if larger_than is not None else None
    except UsageError as e:
        raise usage(e) from None
    markers = [*if_present, *([CACHEDIR_TAG] if caches else [])]
    return Exclusions(patterns, insensitive, markers, limit)


def snapshot_options(
    paths: list[str],
    target: str,
    tags: list[str],
    rules: Exclusions,
    host: str | None,
    one_file_system: bool,
    no_cache: bool,
    stream: StreamSource | None = None,
    dry_run: bool = False,
) -> SnapshotOptions:
    from neostore.backup.options import SnapshotOptions

    return SnapshotOptions(
        paths=paths,
        target=target,
        tags=tags,
        excludes=rules.patterns,
        iexcludes=rules.insensitive,
        exclude_if_present=rules.if_present,
        exclude_larger_than=rules.larger_than,
        host=host,
        one_file_system=one_file_system,
        use_files_cache=not no_cache,
        stream=stream,
        dry_run=dry_run,
    )


def stream_source(
    paths: list[str], stdin: bool, name: str, from_command: bool
) -> StreamSource | None:
    """``--stdin`` or ``--stdin-from-command -- CMD ARGS…`` (the command is
    what would be the paths)."""
    from neostore.backup.stream import StreamSource

    if stdin and from_command:
        raise Fail("give --stdin or --stdin-from-command, not both", ExitCode.USAGE)
    if from_command:
        if not paths:
            raise Fail("--stdin-from-command: give the command after --", ExitCode.USAGE)
        return StreamSource(name=name, command=paths)
    if stdin:
        if paths:
            raise Fail("--stdin backs up standard input: give no PATHs", ExitCode.USAGE)
        import sys

        return StreamSource(name=name, reader=sys.stdin.buffer)
    return None
