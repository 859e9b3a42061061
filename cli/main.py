"""Typer app for ``neostore``. Parses, prompts, prints, maps errors to exit codes.

Library modules are imported inside the commands so that ``--help`` and
cheap commands do not pay for them.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from . import exitcodes

if TYPE_CHECKING:
    from neostore.core.repository import Repository
    from neostore.format.tree import Node
    from neostore.snapshots.info import SnapshotInfo

    from .progress import BarReporter

app = typer.Typer(
    name="neostore",
    help="End-to-end encrypted, deduplicating backups.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RepoOpt = Annotated[
    str | None,
    typer.Option(
        "-r",
        "--repo",
        envvar="NEOSTORE_REPO",
        help="Repository: a directory, file:// URL or https://HOST:PORT/REPO on neostore-server.",
    ),
]
PasswordFileOpt = Annotated[
    str | None,
    typer.Option(
        "--password-file", envvar="NEOSTORE_PASSWORD_FILE", help="Read the password from FILE."
    ),
]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="Target name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


@app.callback()
def main(
    server_fingerprint: Annotated[
        str | None,
        typer.Option(
            "--server-fingerprint",
            envvar="NEOSTORE_SERVER_FINGERPRINT",
            help="Pin the server's TLS certificate (SHA256:...) instead of checking CAs.",
        ),
    ] = None,
    server_ca: Annotated[
        str | None,
        typer.Option(
            "--server-ca", envvar="NEOSTORE_SERVER_CA", help="Trust this CA file for the server."
        ),
    ] = None,
) -> None:
    """End-to-end encrypted, deduplicating backups."""
    _server["fingerprint"] = server_fingerprint
    _server["ca"] = server_ca


class Fail(Exception):
    def __init__(self, message: str, code: int = exitcodes.FATAL) -> None:
        super().__init__(message)
        self.code = code


# -- plumbing -------------------------------------------------------------------


def _password(
    password_file: str | None,
    confirm: bool = False,
    env_var: str = "NEOSTORE_PASSWORD",
    what: str = "password",
    options: str = "NEOSTORE_PASSWORD_FILE or --password-file",
) -> bytes:
    """A password from ``env_var``, a file, or the terminal (twice with ``confirm``)."""
    env = os.environ.get(env_var)
    if env is not None:
        return env.encode()
    if password_file:
        try:
            with open(password_file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Fail(f"cannot read password file {password_file}: {e.strerror}") from e
        return data.rstrip(b"\r\n")
    if not sys.stdin.isatty():
        raise Fail(f"no {what} given: set {env_var}, {options}")
    first = getpass.getpass(f"enter {what} for repository: ")
    if confirm and getpass.getpass(f"enter {what} again: ") != first:
        raise Fail("passwords do not match")
    return first.encode()


#: how to reach a repository on neostore-server (global options, see main()),
#: and the source repository of `copy` (its own options, never these)
_server: dict[str, str | None] = {}
_source_server: dict[str, str | None] = {}


def _backend(repo: str | None, source: bool = False) -> Any:
    from neostore.backend import open_backend

    server = _source_server if source else _server
    return open_backend(
        repo or "",
        fingerprint=server.get("fingerprint"),
        ca_file=server.get("ca"),
        env_prefix="NEOSTORE_FROM_SERVER" if source else "NEOSTORE_SERVER",
    )


def _open(
    repo: str | None,
    password_file: str | None,
    meanwhile: Callable[[threading.Event], None] | None = None,
    source: bool = False,
) -> Repository:
    """Open the repository (``source``: the one `copy` reads, with its own
    password options). ``meanwhile(done)`` runs in this thread while the
    key is derived in another (Argon2id runs without the GIL) and must return
    soon after ``done`` is set."""
    backend = _backend(repo, source)
    if not backend.exists_repository():
        from neostore.errors import RepositoryNotFound

        raise RepositoryNotFound(f"{backend.location}: no repository there (run `neostore init`)")
    from neostore.core.repository import Repository

    if source:
        password = _password(
            password_file,
            env_var="NEOSTORE_FROM_PASSWORD",
            what="source password",
            options="NEOSTORE_FROM_PASSWORD or --from-password-file",
        )
    else:
        password = _password(password_file)
    if meanwhile is None:
        repository = Repository.open(backend, password)
    else:
        outcome: list[Repository | BaseException] = []
        done = threading.Event()

        def derive() -> None:
            try:
                outcome.append(Repository.open(backend, password))
            except BaseException as e:
                outcome.append(e)
            finally:
                done.set()

        worker = threading.Thread(target=derive, name="open-repository", daemon=True)
        worker.start()
        meanwhile(done)
        worker.join()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        repository = outcome[0]
    repository.on_problem = _warn
    return repository


def _warn(error: Exception) -> None:
    print(f"warning: {error}", file=sys.stderr)


def _reporter(json_output: bool) -> BarReporter:
    from .progress import BarReporter

    return BarReporter(show=sys.stderr.isatty() and not json_output)


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _show(path: bytes) -> str:
    return os.fsdecode(path)


def _split_snapshot_arg(spec: str) -> tuple[str, bytes]:
    snap, sep, sub = spec.partition(":")
    return snap, os.fsencode(sub) if sep else b"/"


def _time(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def _iso(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _exit_code(error: BaseException) -> int:
    from neostore import errors

    table: list[tuple[type[BaseException], int]] = [
        (errors.RepositoryNotFound, exitcodes.NO_REPOSITORY),
        (errors.RepositoryLocked, exitcodes.LOCKED),
        (errors.WrongPassword, exitcodes.WRONG_PASSWORD),
        (errors.PermissionDenied, exitcodes.PERMISSION),
    ]
    for cls, code in table:
        if isinstance(error, cls):
            return code
    return exitcodes.FATAL


def _die(message: str, code: int) -> NoReturn:
    print(f"neostore: {message}", file=sys.stderr)
    raise typer.Exit(code)


F = TypeVar("F", bound=Callable[..., None])


def command(name: str | None = None, on: typer.Typer | None = None) -> Callable[[F], F]:
    """Register a command (on ``app``, or a sub-app ``on``) whose library
    errors become one line and an exit code."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            from neostore.errors import NeostoreError

            try:
                func(*args, **kwargs)
            except KeyboardInterrupt:
                _die("interrupted; nothing half-done was recorded", exitcodes.INTERRUPTED)
            except Fail as e:
                _die(str(e), e.code)
            except NeostoreError as e:
                _die(str(e), _exit_code(e))
            except BrokenPipeError:
                raise typer.Exit(exitcodes.FATAL) from None
            except OSError as e:
                where = f"{os.fsdecode(e.filename)}: " if e.filename else ""
                _die(f"{where}{e.strerror or e}", exitcodes.FATAL)

        (on or app).command(name)(wrapper)
        return func

    return decorate


# -- lazy library entry points (temporary, until the commands move to cli/commands) --


def find_snapshot(*args: Any) -> Any:
    from neostore.snapshots.catalog import find_snapshot as found

    return found(*args)


def list_snapshots(*args: Any, **kwargs: Any) -> Any:
    from neostore.snapshots.catalog import list_snapshots as found

    return found(*args, **kwargs)


def resolve(*args: Any) -> tuple[Node | None, list[Node]]:
    from neostore.browse.navigate import resolve as found

    return found(*args)


def walk(*args: Any) -> Any:
    from neostore.browse.navigate import walk as found

    return found(*args)


# -- commands -----------------------------------------------------------------------


@command()
def init(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    chunk_min: Annotated[int | None, typer.Option(help="Minimum chunk size in bytes.")] = None,
    chunk_avg: Annotated[int | None, typer.Option(help="Average chunk size in bytes.")] = None,
    chunk_max: Annotated[int | None, typer.Option(help="Maximum chunk size in bytes.")] = None,
    pack_size: Annotated[int | None, typer.Option(help="Target pack size in bytes.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Create a repository and its owner key; prints the repository id."""
    from neostore.core.repository import Repository
    from neostore.format import config as cfg

    backend = _backend(repo)
    if backend.exists_repository():
        raise Fail(f"{backend.location}: a repository already exists there")
    password = _password(password_file, confirm=True)
    sizes = None
    if chunk_min or chunk_avg or chunk_max:
        sizes = (
            chunk_min or cfg.DEFAULT_CHUNK_MIN,
            chunk_avg or cfg.DEFAULT_CHUNK_AVG,
            chunk_max or cfg.DEFAULT_CHUNK_MAX,
        )
    created = Repository.init(backend, password, chunk_sizes=sizes, pack_size=pack_size)
    if json_output:
        _emit({"repository_id": created.repo_id.hex(), "location": backend.location})
    else:
        print(created.repo_id.hex())


@command()
def snapshot(
    paths: Annotated[list[str], typer.Argument(help="Files and directories to back up.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the snapshot (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-e", help="Exclude a glob.")
    ] = None,
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
) -> None:
    """Back up PATHs into a new snapshot of the target; prints its id."""
    from neostore.matcher import read_exclude_file

    patterns = list(exclude or [])
    for path in exclude_file or []:
        patterns.extend(read_exclude_file(path))
    from neostore.backup.archiver import Archiver, SnapshotOptions
    from neostore.backup.prewalk import Prewalk

    # read the file system ahead while the key is derived
    prewalk = Prewalk(paths, patterns, one_file_system)
    repository = _open(repo, password_file, meanwhile=prewalk.run)

    reporter = _reporter(json_output)
    options = SnapshotOptions(
        paths=paths,
        target=target or repository.default_target,
        tags=tag or [],
        excludes=patterns,
        one_file_system=one_file_system,
        use_files_cache=not no_cache,
    )
    result = Archiver(repository, options, reporter, prewalk).run()
    s = result.stats
    if json_output:
        _emit(
            {
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
                "shares_published": result.shares_published,
                "duration": round(s.duration, 3),
                "errors": [{"path": _show(p), "message": m} for p, m in result.errors],
                "warnings": [{"path": _show(p or b""), "message": m} for p, m in reporter.warnings],
            }
        )
    else:
        if sys.stderr.isatty():
            print(
                f"files: {s.files_new} new, {s.files_changed} changed, "
                f"{s.files_unchanged} unchanged; "
                f"read {s.bytes_read} B, added {s.bytes_added} B in {s.duration:.1f}s",
                file=sys.stderr,
            )
        print(result.snapshot_id.hex())
    if result.errors:
        print(f"warning: {len(result.errors)} source file(s) could not be read", file=sys.stderr)
        raise typer.Exit(exitcodes.PARTIAL)


@command()
def snapshots(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List snapshots (of one target, or of every target the key can read)."""
    repository = _open(repo, password_file)
    from neostore.snapshots.catalog import chain_order
    from neostore.snapshots.chains import verify_chains

    names = [target] if target else repository.target_names()
    rows = []
    failures: list[str] = []
    for name in names:
        record = repository.target(name)
        infos = list_snapshots(repository, name, on_error=lambda e: failures.append(str(e)))
        if repository.role == "share":  # a share sees some snapshots, not chains
            from neostore.snapshots.shared import rollback

            problem = rollback(repository, infos)
            if problem is not None:
                print(f"warning: {problem}", file=sys.stderr)
        else:
            for problem in verify_chains(repository, record, infos):
                print(f"warning: {problem}", file=sys.stderr)
        rows.extend(infos)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if repository.role != "share":
        rows = chain_order(rows)
    if json_output:
        _emit([_snapshot_json(i) for i in rows])
    else:
        _print_snapshots(rows)
    if failures:
        raise typer.Exit(exitcodes.FATAL)


def _print_snapshots(rows: list[SnapshotInfo]) -> None:
    print(f"{'ID':<10} {'Time':<19} {'Target':<12} {'Host':<16} {'Tags':<12} Paths")
    for info in rows:
        m = info.manifest
        paths = ", ".join(_show(p) for p in m.paths)
        print(
            f"{info.hex_id[:8]:<10} {_time(m.time_ns):<19} {info.target:<12} {m.host[:16]:<16} "
            f"{','.join(m.tags)[:12]:<12} {paths}"
        )
    print(f"{len(rows)} snapshot(s)")


def _snapshot_json(info: SnapshotInfo) -> dict[str, Any]:
    m = info.manifest
    return {
        "id": info.hex_id,
        "short_id": info.hex_id[:8],
        "target": info.target,
        "time": _iso(m.time_ns),
        "host": m.host,
        "user": m.user,
        "paths": [_show(p) for p in m.paths],
        "tags": m.tags,
        "parent": m.parent.hex() if m.parent else None,
        "writer": m.writer_id.hex(),
        "seq": m.seq,
        "stats": m.stats,
        "original": m.original.hex() if m.original else None,
        "original_repo": m.original_repo.hex() if m.original_repo else None,
        "rewritten": _iso(m.rewritten_ns) if m.rewritten_ns is not None else None,
        "lost": [{"path": _show(p), "type": k, "bytes": n} for p, k, n in m.lost],
    }


def _mode_string(node: Node) -> str:
    kinds = {"f": "-", "d": "d", "l": "l", "p": "p", "c": "c", "b": "b", "s": "s"}
    return kinds[node.type] + stat.filemode(node.mode)[1:]


def _node_json(path: bytes, node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": _show(path),
        "name": _show(node.name),
        "type": {
            "f": "file",
            "d": "dir",
            "l": "symlink",
            "p": "fifo",
            "c": "chardev",
            "b": "blockdev",
            "s": "socket",
        }[node.type],
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "size": node.size,
        "mtime": _iso(node.mtime_ns),
        "mtime_ns": node.mtime_ns,
        "inode": node.inode,
        "links": node.links,
    }
    if node.link_target is not None:
        out["link_target"] = _show(node.link_target)
    return out


@command("ls")
def ls_command(
    snapshot_id: Annotated[
        str, typer.Argument(metavar="SNAPSHOT", help="Id, unique prefix or 'latest'.")
    ],
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
    repository = _open(repo, password_file)

    info = find_snapshot(repository, snapshot_id, target)
    repository.load_index()
    wanted = b"/" + b"/".join(p for p in os.fsencode(path).split(b"/") if p)
    node, listing = resolve(repository, info, wanted)
    base = wanted.rstrip(b"/")
    entries: list[tuple[bytes, Node]] = []
    if node is not None and node.type != "d":
        entries.append((wanted, node))
    else:
        for child in listing:
            child_path = base + b"/" + child.name
            entries.append((child_path, child))
            if recursive and child.type == "d":
                entries.extend(walk(repository, child.subtree, child_path))
    if json_output:
        _emit([_node_json(p, n) for p, n in entries])
        return
    for entry_path, entry in entries:
        if long:
            owner = entry.user or str(entry.uid)
            group = entry.group or str(entry.gid)
            suffix = f" -> {_show(entry.link_target)}" if entry.link_target is not None else ""
            print(
                f"{_mode_string(entry)} {owner:>8} {group:>8} {entry.size:>12} "
                f"{_time(entry.mtime_ns)} {_show(entry_path)}{suffix}"
            )
        else:
            print(_show(entry_path))


@command()
def dump(
    snapshot_id: Annotated[str, typer.Argument(metavar="SNAPSHOT")],
    path: Annotated[str, typer.Argument(help="File inside the snapshot.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
) -> None:
    """Write one file's content to stdout."""
    repository = _open(repo, password_file)
    from neostore.format.targets import DATA

    info = find_snapshot(repository, snapshot_id, target)
    repository.load_index()
    node, _ = resolve(repository, info, os.fsencode(path))
    if node is None or node.type != "f":
        raise Fail(f"{path}: not a regular file in snapshot {info.hex_id[:8]}")
    out = sys.stdout.buffer
    for ref in node.content:
        out.write(repository.blobs.read(DATA, ref))
    out.flush()


@command()
def restore(
    snapshot_spec: Annotated[str, typer.Argument(metavar="SNAPSHOT[:SUBPATH]")],
    to: Annotated[str, typer.Option("--to", "--target-dir", help="Destination directory.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", "-i", help="Restore only matches.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-e", help="Skip matches.")
    ] = None,
    overwrite: Annotated[
        str,
        typer.Option(
            "--overwrite",
            help="Existing files: always (only changed chunks are fetched), if-changed "
            "(size or mtime differ), if-newer, never.",
        ),
    ] = "always",
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove what the snapshot does not hold.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Restore a snapshot (or a sub-path of it) under a directory.

    Into a directory that already holds a copy, existing files are cut into
    chunks as the repository would and only the chunks that differ are
    downloaded."""
    from neostore.restore.restorer import OVERWRITE

    if overwrite not in OVERWRITE:
        raise Fail(f"--overwrite {overwrite}: use {', '.join(OVERWRITE)}", exitcodes.USAGE)
    snap, subpath = _split_snapshot_arg(snapshot_spec)
    repository = _open(repo, password_file)
    from neostore.restore.restorer import RestoreOptions, Restorer

    info = find_snapshot(repository, snap, target)
    reporter = _reporter(json_output)
    options = RestoreOptions(
        destination=to,
        subpath=subpath,
        includes=include or [],
        excludes=exclude or [],
        overwrite=overwrite,
        delete=delete,
    )
    started = time.monotonic()
    stats = Restorer(repository, options, reporter).run(info)
    if json_output:
        _emit(
            {
                "snapshot": info.hex_id,
                "files": stats.files,
                "dirs": stats.dirs,
                "others": stats.others,
                "bytes_written": stats.bytes_written,
                "files_skipped": stats.files_skipped,
                "files_unchanged": stats.files_unchanged,
                "bytes_downloaded": stats.bytes_downloaded,
                "bytes_reused": stats.bytes_reused,
                "removed": stats.removed,
                "duration": round(time.monotonic() - started, 3),
                "errors": [{"path": _show(p), "message": m} for p, m in stats.errors],
            }
        )
    elif sys.stderr.isatty():
        print(f"restored {stats.files} files, {stats.dirs} directories to {to}", file=sys.stderr)
    if stats.errors:
        print(f"error: {len(stats.errors)} item(s) could not be restored", file=sys.stderr)
        raise typer.Exit(exitcodes.FATAL)


@command()
def check(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Decrypt and verify every blob.")
    ] = False,
    read_data_subset: Annotated[
        str | None,
        typer.Option("--read-data-subset", help="Read only part N/M of the packs, or a random X%."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Verify the repository's structure (and, with --read-data, every blob)."""
    from neostore.errors import UsageError
    from neostore.lifecycle.check import Checker, Subset

    if read_data and read_data_subset:
        raise Fail("give --read-data or --read-data-subset, not both", exitcodes.USAGE)
    try:
        subset = Subset.parse(read_data_subset) if read_data_subset else None
    except UsageError as e:
        raise Fail(str(e), exitcodes.USAGE) from None
    repository = _open(repo, password_file)
    repository.require_owner("check")
    reporter = _reporter(True)  # problems are printed below, once
    result = Checker(repository, reporter).run(read_data=read_data, subset=subset)
    read_data = read_data or subset is not None
    if json_output:
        _emit(
            {
                "ok": result.ok,
                "errors": result.errors,
                "warnings": result.warnings,
                "snapshots": result.snapshots,
                "trees": result.trees,
                "packs": result.packs,
                "packs_read": result.packs_read,
                "blobs_checked": result.blobs_checked,
            }
        )
    else:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for error in result.errors:
            print(f"error: {error}", file=sys.stderr)
        summary = f"{result.snapshots} snapshots, {result.trees} trees, {result.packs} packs"
        if read_data:
            summary += f", {result.packs_read} packs read, {result.blobs_checked} blobs verified"
        print(f"{'no errors' if result.ok else f'{len(result.errors)} error(s)'} ({summary})")
    if not result.ok:
        raise typer.Exit(exitcodes.FATAL)


def _chosen_snapshots(
    repository: Repository, specs: list[str] | None, target: str | None
) -> list[SnapshotInfo]:
    """The snapshots named, or every readable one (of --target)."""
    if specs:
        return [find_snapshot(repository, spec, target) for spec in specs]
    names = [target] if target else repository.target_names()
    return [i for n in names for i in list_snapshots(repository, n, repository.on_problem)]


@command()
def find(
    patterns: Annotated[list[str], typer.Argument(metavar="PATTERN...", help="Globs to look for.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    snapshot_specs: Annotated[
        list[str] | None, typer.Option("--snapshot", "-s", help="Search only this (repeatable).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Which snapshots hold a matching path (a pattern without "/" matches names)."""
    from neostore.browse.search import find as find_paths

    repository = _open(repo, password_file)
    chosen = _chosen_snapshots(repository, snapshot_specs, target)
    repository.load_index()
    results = []
    for info, found in find_paths(repository, chosen, patterns):
        if not found:
            continue
        if json_output:
            results.append(
                {**_snapshot_json(info), "matches": [_node_json(p, n) for p, n in found]}
            )
            continue
        print(f"snapshot {info.hex_id[:8]} ({info.target}, {_time(info.manifest.time_ns)}):")
        for path, node in found:
            print(f"  {_mode_string(node)} {node.size:>12} {_time(node.mtime_ns)} {_show(path)}")
    if json_output:
        _emit(results)


@command("diff")
def diff_command(
    first: Annotated[str, typer.Argument(metavar="SNAPSHOT_A")],
    second: Annotated[str, typer.Argument(metavar="SNAPSHOT_B")],
    path: Annotated[str, typer.Argument(help="Compare only below this path.")] = "/",
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """What changed from SNAPSHOT_A to SNAPSHOT_B: + added, - removed, M modified, U metadata."""
    from neostore.browse.search import diff as diff_trees
    from neostore.errors import NotFound

    repository = _open(repo, password_file)
    a = find_snapshot(repository, first, target)
    b = find_snapshot(repository, second, target)
    repository.load_index()
    wanted = b"/" + b"/".join(p for p in os.fsencode(path).split(b"/") if p)

    def at_path(info: SnapshotInfo) -> tuple[Node | None, list[Node]]:
        """PATH's node in a snapshot (None for "/" or when absent) and its listing."""
        try:
            return resolve(repository, info, wanted)
        except NotFound:
            return None, []

    (node_a, before), (node_b, after) = at_path(a), at_path(b)
    prefix = wanted.rstrip(b"/")
    if wanted != b"/" and node_a is None and node_b is None:
        raise Fail(f"{path}: in neither snapshot", exitcodes.FATAL)
    if wanted != b"/" and any(n is None or n.type != "d" for n in (node_a, node_b)):
        # PATH is not a directory on both sides: compare it as one entry
        prefix = prefix.rsplit(b"/", 1)[0]
        before = [node_a] if node_a is not None else []
        after = [node_b] if node_b is not None else []
    counts = {"added": 0, "removed": 0, "modified": 0, "metadata": 0}
    changes = []
    signs = {"added": "+", "removed": "-", "modified": "M", "metadata": "U"}
    for change in diff_trees(repository, before, after, prefix):
        counts[change.kind] += 1
        if json_output:
            changes.append({"path": _show(change.path), "change": change.kind})
        else:
            print(f"{signs[change.kind]}    {_show(change.path)}")
    if json_output:
        _emit({"from": a.hex_id, "to": b.hex_id, "changes": changes, "summary": counts})
    else:
        print(
            f"\n{counts['added']} added, {counts['removed']} removed, "
            f"{counts['modified']} modified, {counts['metadata']} metadata only"
        )


@command()
def stats(
    snapshot_specs: Annotated[
        list[str] | None, typer.Argument(metavar="[SNAPSHOT]...", help="Default: all.")
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    mode: Annotated[
        str, typer.Option("--mode", help="restore-size (what a restore writes) or raw-data.")
    ] = "restore-size",
    json_output: JsonOpt = False,
) -> None:
    """Sizes: what restoring the snapshots writes, and the distinct data behind them."""
    from neostore.browse.search import stats as collect

    if mode not in ("restore-size", "raw-data"):
        raise Fail(f"--mode {mode!r}: use restore-size or raw-data", exitcodes.USAGE)
    repository = _open(repo, password_file)
    chosen = _chosen_snapshots(repository, snapshot_specs, target)
    repository.load_index()
    s = collect(repository, chosen)
    if json_output:
        _emit(
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
        print(f"restore size: {_size(s.restore_size)}")
    else:
        print(f"blobs:        {s.blobs}")
        print(f"raw data:     {_size(s.plain_bytes)} (before compression)")
        print(f"stored:       {_size(s.stored_bytes)} (compression ratio {s.compression:.2f}x)")
        print(f"dedup ratio:  {s.dedup:.2f}x (restore size {_size(s.restore_size)})")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"


def _tag_list(values: list[str] | None) -> list[str]:
    """Tags from repeatable options, each of which may hold a,b,c."""
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


@command()
def tag(
    snapshot_ids: Annotated[
        list[str], typer.Argument(metavar="SNAPSHOT...", help="Snapshots to change.")
    ],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="Add these tags (a,b; repeatable).")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Remove these tags (a,b; repeatable).")
    ] = None,
    set_tags: Annotated[
        list[str] | None,
        typer.Option("--set", help="Replace all tags with these (a,b; repeatable)."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Change the tags of snapshots (owner keys).

    Each changed snapshot gets a new id: a new manifest is saved with the old
    one's time and content, and the old one is forgotten."""
    from neostore.lifecycle.rewrite import tag as retag

    if not (add or remove or set_tags is not None):
        raise Fail("give --add, --remove and/or --set", exitcodes.USAGE)
    repository = _open(repo, password_file)
    chosen = [find_snapshot(repository, spec, target) for spec in snapshot_ids]
    done, unchanged = retag(
        repository,
        chosen,
        _tag_list(add),
        _tag_list(remove),
        None if set_tags is None else _tag_list(set_tags),
    )
    if json_output:
        _emit(
            [
                {
                    "target": r.old.target,
                    "old": r.old.hex_id,
                    "new": r.new.hex_id,
                    "tags": r.new.manifest.tags,
                }
                for r in done
            ]
            + [
                {"target": i.target, "old": i.hex_id, "new": i.hex_id, "tags": i.manifest.tags}
                for i in unchanged
            ]
        )
        return
    for r in done:
        tags = ", ".join(r.new.manifest.tags) or "(none)"
        print(f"{r.old.target}/{r.old.hex_id[:8]} -> {r.new.hex_id[:8]}  tags: {tags}")
    for info in unchanged:
        print(f"{info.target}/{info.hex_id[:8]} unchanged")


@command()
def forget(
    snapshot_ids: Annotated[
        list[str] | None, typer.Argument(metavar="[SNAPSHOT]...", help="Forget these snapshots.")
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    keep_last: Annotated[int, typer.Option("--keep-last", "-l", help="Keep the newest N.")] = 0,
    keep_hourly: Annotated[int, typer.Option("--keep-hourly", "-H", help="Last N hours.")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily", "-d", help="Last N days.")] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly", "-w", help="Last N weeks.")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly", "-m", help="Last N months.")] = 0,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly", "-y", help="Last N years.")] = 0,
    keep_within: Annotated[
        str | None,
        typer.Option("--keep-within", help="Keep all within DURATION (1y2m3d4h) of the newest."),
    ] = None,
    keep_tag: Annotated[
        list[str] | None,
        typer.Option("--keep-tag", help="Keep snapshots with all of these tags (a,b; repeatable)."),
    ] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="Apply the policy per host, paths and/or tags.")
    ] = "host,paths",
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only show.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Then run prune.")] = False,
    max_unused: Annotated[
        str, typer.Option("--max-unused", help="With --prune: as prune's --max-unused.")
    ] = "5%",
    grace: Annotated[str, typer.Option("--grace", help="With --prune: as prune's --grace.")] = "1h",
    json_output: JsonOpt = False,
) -> None:
    """Remove snapshots by a retention policy (restic's --keep-* rules) or by id.

    Counts of -1 mean "no limit". Each target's snapshots are grouped by
    --group-by and the policy applies to each group. The owner signs a
    forget record first, so readers do not mistake the removal for tampering.
    """
    from neostore.lifecycle import forget as forgetting
    from neostore.lifecycle import retention

    counts = (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    if any(n < -1 for n in counts):
        raise Fail("--keep-* counts must be ≥ 0, or -1 for no limit", exitcodes.USAGE)
    policy = retention.Policy(
        last=keep_last,
        hourly=keep_hourly,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        yearly=keep_yearly,
        within=_duration(keep_within),
        tags=tuple(frozenset(t for t in tags.split(",") if t) for tags in keep_tag or []),
    )
    if group_by and any(f.strip() not in forgetting.GROUP_FIELDS for f in group_by.split(",")):
        raise Fail(f"--group-by {group_by!r}: use host, paths and/or tags", exitcodes.USAGE)
    if snapshot_ids and not policy.empty:
        raise Fail("give snapshot ids or a --keep-* policy, not both", exitcodes.USAGE)
    prune_options = _prune_options(dry_run, max_unused, grace) if prune else None
    repository = _open(repo, password_file)
    repository.require_owner("forget")
    if snapshot_ids:
        chosen = [find_snapshot(repository, spec, target) for spec in snapshot_ids]
        by_target: dict[str, list[SnapshotInfo]] = {}
        for info in chosen:
            group = by_target.setdefault(info.target, [])
            if all(i.snapshot_id != info.snapshot_id for i in group):
                group.append(info)
        if not dry_run:  # one record (and one pass over the shares) per target
            for name, infos in by_target.items():
                forgetting.forget(repository, repository.target(name), infos)
        for info in chosen:
            if not json_output:
                print(f"{'would remove' if dry_run else 'removed'} {info.target}/{info.hex_id[:8]}")
        removed = [{"target": i.target, "remove": [i.hex_id], "dry_run": dry_run} for i in chosen]
        _then_prune(repository, prune_options, json_output, removed)
        return
    if policy.empty:
        print("neostore: no policy was given (--keep-*): nothing is removed", file=sys.stderr)
        _then_prune(repository, prune_options, json_output, [])
        return
    group_fields = [f.strip() for f in group_by.split(",") if f.strip()]
    names = [target] if target else repository.target_names()
    plans = forgetting.plan(repository, names, policy, group_fields)
    if not dry_run:
        forgetting.execute(repository, plans)
    if json_output:
        _then_prune(repository, prune_options, json_output, [_plan_json(p, dry_run) for p in plans])
        return
    print(policy.describe())
    for plan in plans:
        shown = ", ".join(
            f"{k} {','.join(v) if isinstance(v, list) else v}" for k, v in plan.group.items()
        )
        print(f"\ntarget {plan.target}" + (f" ({shown})" if shown else ""))
        for d in plan.decisions:
            info = d.item.ref
            gone = "would remove" if dry_run else "removed"
            verdict = f"keep    {', '.join(d.reasons)}" if d.keep else gone
            print(f"  {info.hex_id[:8]}  {_time(info.manifest.time_ns)}  {verdict}")
    _then_prune(repository, prune_options, json_output, [])


def _then_prune(
    repository: Repository, options: Any, json_output: bool, removed: list[Any]
) -> None:
    """The end of forget: JSON of what was removed, then prune when asked
    (with --json: ``{"forget": [...], "prune": {...}}``)."""
    if options is None:
        if json_output:
            _emit(removed)
        return
    stats = _prune(repository, options, json_output=False, quiet=json_output)
    if json_output:
        _emit({"forget": removed, "prune": stats})


def _prune_options(dry_run: bool = False, max_unused: str = "5%", grace: str = "1h") -> Any:
    from neostore.errors import UsageError
    from neostore.lifecycle.prune import PruneOptions, parse_max_unused

    try:
        share = parse_max_unused(max_unused)
    except UsageError as e:
        raise Fail(f"--max-unused: {e}", exitcodes.USAGE) from None
    seconds = _seconds(grace, "--grace")
    return PruneOptions(max_unused=share, grace_ns=seconds * 1_000_000_000, dry_run=dry_run)


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str, option: str) -> int:
    """``90s``, ``15m``, ``1h``, ``2d`` or a combination (``1h30m``)."""
    import re

    parts = re.findall(r"(\d+)([smhd])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise Fail(f"{option} {text!r}: use a duration such as 30s, 15m, 1h or 2d", exitcodes.USAGE)
    return sum(int(n) * _SECONDS[u] for n, u in parts)


@command()
def prune(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    max_unused: Annotated[
        str,
        typer.Option(
            "--max-unused", help="Unused space tolerated, in % of the repository, or 'unlimited'."
        ),
    ] = "5%",
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="How long condemned packs wait before deletion (30s, 15m, 1h, 2d).",
        ),
    ] = "1h",
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only show.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Remove data no snapshot references, repacking partly used packs.

    Safe beside snapshots running elsewhere: unused packs are first
    condemned (writers stop reusing them, and a running snapshot that did
    copies what it needs out of them) and deleted by a later prune once the
    grace period has passed. Refuses to change anything when check finds
    errors.
    """
    repository = _open(repo, password_file)
    options = _prune_options(dry_run=dry_run, max_unused=max_unused, grace=grace)
    _prune(repository, options, json_output)


def _prune(
    repository: Repository, options: Any, json_output: bool, quiet: bool = False
) -> dict[str, Any]:
    from dataclasses import asdict

    from neostore.lifecycle.prune import Pruner

    stats = Pruner(repository, options).run()
    out = dict(asdict(stats), dry_run=options.dry_run)
    if json_output:
        _emit(out)
    elif not quiet:
        verb = "would " if options.dry_run else ""
        print(
            f"{stats.packs} packs, {_size(stats.bytes)}; "
            f"{_size(stats.bytes_used)} used by snapshots"
        )
        print(
            f"{verb}delete {stats.packs_deleted} packs ({_size(stats.bytes_deleted)}) "
            f"condemned more than the grace period ago"
            + (
                f"; {stats.packs_rescued} kept: a snapshot needs them again"
                if stats.packs_rescued
                else ""
            )
        )
        print(
            f"{verb}condemn {stats.packs_condemned} packs ({_size(stats.bytes_condemned)}), "
            f"{stats.packs_repacked} of them after repacking {stats.blobs_repacked} blobs "
            f"into {stats.packs_written} new packs ({_size(stats.bytes_repacked)})"
        )
        print(
            f"waiting: {stats.packs_pending} packs ({_size(stats.bytes_pending)}) condemned "
            f"earlier, deleted by a prune after the grace period; "
            f"{stats.packs_young} unused packs too young to condemn"
        )
    for problem in stats.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return out


def _duration(text: str | None) -> Any:
    from neostore.errors import UsageError
    from neostore.lifecycle import retention

    try:
        return retention.parse_duration(text) if text else retention.Duration()
    except UsageError as e:
        raise Fail(str(e), exitcodes.USAGE) from None


def _plan_json(plan: Any, dry_run: bool) -> dict[str, Any]:
    return {
        "target": plan.target,
        "group": plan.group,
        "keep": [d.item.ref.hex_id for d in plan.decisions if d.keep],
        "remove": [d.item.ref.hex_id for d in plan.decisions if not d.keep],
        "reasons": [
            {"id": d.item.ref.hex_id, "matches": d.reasons} for d in plan.decisions if d.keep
        ],
        "dry_run": dry_run,
    }


# -- entry point ----------------------------------------------------------------------


# -- keys ------------------------------------------------------------------------


@command()
def copy(
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SNAPSHOT]...", help="Source snapshots (default: all)."),
    ] = None,
    from_repo: Annotated[
        str, typer.Option("--from-repo", envvar="NEOSTORE_FROM_REPO", help="Source repository.")
    ] = "",
    from_password_file: Annotated[
        str | None,
        typer.Option(
            "--from-password-file",
            envvar="NEOSTORE_FROM_PASSWORD_FILE",
            help="Source password file (or NEOSTORE_FROM_PASSWORD).",
        ),
    ] = None,
    from_target: Annotated[
        str | None, typer.Option("--from-target", help="Source target (default: every one).")
    ] = None,
    from_server_fingerprint: Annotated[
        str | None,
        typer.Option(
            "--from-server-fingerprint",
            envvar="NEOSTORE_FROM_SERVER_FINGERPRINT",
            help="Pin the source server's TLS certificate (SHA256:...).",
        ),
    ] = None,
    from_server_ca: Annotated[
        str | None,
        typer.Option(
            "--from-server-ca",
            envvar="NEOSTORE_FROM_SERVER_CA",
            help="Trust this CA file for the source server.",
        ),
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Destination target (default: the source's name)."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy snapshots from another repository into this one.

    Files are cut again with this repository's keyed chunker, so only chunks
    it lacks are uploaded. Snapshots copied before are skipped."""
    from dataclasses import asdict

    from neostore.lifecycle.copy import Copier
    from neostore.snapshots.catalog import chain_order

    if not from_repo:
        raise Fail(
            "give the source repository: --from-repo (or NEOSTORE_FROM_REPO)", exitcodes.USAGE
        )
    _source_server.update(fingerprint=from_server_fingerprint, ca=from_server_ca)
    source = _open(from_repo, from_password_file, source=True)
    dest = _open(repo, password_file)
    failures: list[str] = []
    if snapshot_ids:
        chosen = [find_snapshot(source, spec, from_target) for spec in snapshot_ids]
    else:
        from neostore.snapshots.chains import verify_chains

        chosen = []
        for name in [from_target] if from_target else source.target_names():
            infos = list_snapshots(source, name, on_error=lambda e: failures.append(str(e)))
            # a source store holding back snapshots is reported, not copied around
            failures.extend(verify_chains(source, source.target(name), infos))
            chosen += infos
    chosen = chain_order(chosen)
    by_target: dict[str, list[SnapshotInfo]] = {}
    for info in chosen:
        by_target.setdefault(target or info.target, []).append(info)
    rows: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    for name, infos in by_target.items():
        copier = Copier(source, dest, name)
        for done in copier.run(infos):
            rows.append(
                {
                    "source": done.source.hex_id,
                    "source_target": done.source.target,
                    "target": done.target,
                    "id": done.snapshot_id.hex() if done.snapshot_id else None,
                    "skipped": done.snapshot_id is None,
                }
            )
            if not json_output:
                verb = "skipped (copied before)" if done.snapshot_id is None else "copied"
                new = f" -> {done.target}/{done.snapshot_id.hex()[:8]}" if done.snapshot_id else ""
                print(f"{done.source.target}/{done.source.hex_id[:8]} {verb}{new}")
        for key, value in asdict(copier.stats).items():
            totals[key] = totals.get(key, 0) + value
    if json_output:
        _emit({"snapshots": rows, "stats": totals, "problems": failures})
    else:
        print(
            f"{totals.get('snapshots_copied', 0)} copied, {totals.get('snapshots_skipped', 0)} "
            f"skipped; read {_size(totals.get('bytes_read', 0))} from the source, added "
            f"{_size(totals.get('bytes_added', 0))} ({totals.get('blobs_new', 0)} new blobs)"
        )
    for failure in failures:
        print(f"error: source: {failure}", file=sys.stderr)
    if failures:
        raise typer.Exit(exitcodes.FATAL)


key_app = typer.Typer(help="Manage key files: several passwords per repository.")
app.add_typer(key_app, name="key")

NewPasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--new-password-file",
        envvar="NEOSTORE_NEW_PASSWORD_FILE",
        help="Read the new password from FILE (or set NEOSTORE_NEW_PASSWORD).",
    ),
]


def _new_password(path: str | None) -> bytes:
    return _password(
        path,
        confirm=True,
        env_var="NEOSTORE_NEW_PASSWORD",
        what="new password",
        options="NEOSTORE_NEW_PASSWORD_FILE or --new-password-file",
    )


@command("add", on=key_app)
def key_add(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    new_password_file: NewPasswordOpt = None,
    role: Annotated[
        str,
        typer.Option("--role", help="owner (every target), writer, reader or read-write."),
    ] = "owner",
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="The target of a per-target role.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Add a key file opened by a new password; prints its id."""
    from neostore.core import keyring

    repository = _open(repo, password_file)
    repository.require_owner("adding a key")
    key_id = keyring.add_key(repository, _new_password(new_password_file), role, target)
    if json_output:
        _emit({"key_id": key_id, "role": role, "target": target})
    else:
        print(key_id)


@command("list", on=key_app)
def key_list(
    repo: RepoOpt = None, password_file: PasswordFileOpt = None, json_output: JsonOpt = False
) -> None:
    """List key files: id, role, target, created, host/user, the one in use."""
    from neostore.core import keyring

    found = keyring.list_keys(_open(repo, password_file))
    if json_output:
        _emit(
            [
                {
                    "id": k.key_id,
                    "role": k.role,
                    "target": k.target,
                    "created": _iso(k.created_ns),
                    "host": k.host,
                    "user": k.user,
                    "current": k.current,
                }
                for k in found
            ]
        )
        return
    print(f"  {'ID':<10} {'Role':<10} {'Target':<12} {'Created':<19} Host/user")
    for k in found:
        mark = "*" if k.current else " "
        print(
            f"{mark} {k.key_id[:8]:<10} {k.role:<10} {k.target or '-':<12} "
            f"{_time(k.created_ns):<19} {k.host}/{k.user}"
        )


@command("remove", on=key_app)
def key_remove(
    key_id: Annotated[str, typer.Argument(help="Key id (a prefix of at least 4 hex digits).")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Delete a key file (not the one in use, never the last owner key)."""
    from neostore.core import keyring

    removed = keyring.remove_key(_open(repo, password_file), key_id)
    print(f"removed key {removed}")


@command("passwd", on=key_app)
def key_passwd(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    new_password_file: NewPasswordOpt = None,
) -> None:
    """Change the password of the key in use (same key id, current KDF settings)."""
    from neostore.core import keyring

    repository = _open(repo, password_file)
    key_id = keyring.change_password(repository, _new_password(new_password_file))
    print(f"password changed for key {key_id}")


# -- shares ------------------------------------------------------------------------

repair_app = typer.Typer(help="Rebuild damaged repository metadata.")
app.add_typer(repair_app, name="repair")


@command("index", on=repair_app)
def repair_index_command(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only show.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Rebuild the index from the packs' signed headers (owner keys).

    New index files are written first, then the old ones are removed (prune's
    marks are kept). Packs whose header does not verify are left out and
    reported."""
    from dataclasses import asdict

    from neostore.lifecycle.repair import repair_index

    repository = _open(repo, password_file)
    stats = repair_index(repository, dry_run=dry_run)
    if json_output:
        _emit(dict(asdict(stats), dry_run=dry_run))
    else:
        write, remove = ("would write", "would remove") if dry_run else ("wrote", "removed")
        print(
            f"{stats.packs_indexed} of {stats.packs} packs indexed; {write} "
            f"{stats.index_files_written} index files, {remove} {stats.index_files_removed}, "
            f"kept {stats.marks_kept} prune marks"
        )
    for problem in stats.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if stats.problems:
        raise typer.Exit(exitcodes.FATAL)


@command("snapshots", on=repair_app)
def repair_snapshots_command(
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
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only show.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Replace snapshots that name missing data by ones without it.

    Files keep what is still readable (missing chunks are cut out); an
    unreadable directory becomes empty. The new snapshot is tagged
    `repaired` and lists what was lost. Run `repair index` first when check
    reports index problems."""
    from neostore.lifecycle.salvage import repair_snapshots

    repository = _open(repo, password_file)
    chosen = _chosen_snapshots(repository, snapshot_ids, target)
    by_target: dict[str, list[SnapshotInfo]] = {}
    for info in chosen:
        by_target.setdefault(info.target, []).append(info)
    rows: list[dict[str, Any]] = []
    for name, infos in by_target.items():
        outcomes, gone = repair_snapshots(
            repository, name, infos, forget_originals=forget, read_data=read_data, dry_run=dry_run
        )
        if gone and not json_output:
            print(f"target {name}: the index names {len(gone)} pack(s) that are gone")
        for o in outcomes:
            new = o.replacement.hex_id if o.replacement is not None else None
            rows.append(
                {
                    "target": name,
                    "id": o.info.hex_id,
                    "damaged": bool(o.lost),
                    "new": new,
                    "forgotten": bool(o.lost) and forget and not dry_run,
                    "lost": [{"path": _show(p), "type": k, "bytes": n} for p, k, n in o.lost],
                }
            )
    if json_output:
        _emit({"dry_run": dry_run, "snapshots": rows})
        return
    for row in rows:
        if not row["damaged"]:
            print(f"{row['target']}/{row['id'][:8]}  ok")
            continue
        verb = "would replace" if dry_run else f"replaced by {row['new'][:8]}"
        print(f"{row['target']}/{row['id'][:8]}  damaged, {verb}")
        for entry in row["lost"]:
            what = "directory emptied" if entry["type"] == "dir" else f"{entry['bytes']} bytes cut"
            print(f"    {entry['path']}: {what}")
    damaged = sum(r["damaged"] for r in rows)
    print(f"{damaged} of {len(rows)} snapshot(s) damaged" + (" (dry run)" if dry_run else ""))


share_app = typer.Typer(help="Read-only shares of one sub-folder of a target.")
app.add_typer(share_app, name="share")


def _share_json(target: str, share: Any) -> dict[str, Any]:
    return {
        "name": share.name,
        "target": target,
        "path": _show(share.path),
        "created": _iso(share.created_ns),
        "revoked": _iso(share.revoked_ns) if share.revoked_ns else None,
    }


@command("create", on=share_app)
def share_create(
    target: Annotated[str, typer.Option("--target", "-t", help="Target holding the folder.")],
    path: Annotated[str, typer.Option("--path", help="Folder to share, as `ls` shows it.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Share name (default: the folder's name).")
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    new_password_file: NewPasswordOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Create a share and the key (a new password) that opens it; prints the key id.

    Snapshots of the target made from now on are published to it; run
    `share sync` to publish earlier ones.
    """
    from neostore.shares import lists as shares

    repository = _open(repo, password_file)
    repository.require_owner("creating a share")
    key_id, share = shares.create_share(
        repository, target, path, name, _new_password(new_password_file)
    )
    if json_output:
        _emit({"key_id": key_id, **_share_json(target, share)})
    else:
        print(key_id)


@command("list", on=share_app)
def share_list(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List the shares of every target (or one), revoked ones included."""
    from neostore.shares import lists as shares

    repository = _open(repo, password_file)
    repository.require_owner("listing shares")
    found = shares.list_shares(repository, target)
    if json_output:
        _emit([_share_json(t, s) for t, s in found])
        return
    print(f"{'Name':<20} {'Target':<12} {'Created':<19} {'State':<8} Path")
    for t, s in found:
        state = "revoked" if s.revoked_ns else "active"
        print(f"{s.name:<20} {t:<12} {_time(s.created_ns):<19} {state:<8} {_show(s.path)}")


@command("revoke", on=share_app)
def share_revoke(
    name: Annotated[str, typer.Argument(help="Share name.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
) -> None:
    """Stop publishing new snapshots to a share (what it has stays readable to it)."""
    from neostore.shares import lists as shares

    revoked = shares.revoke_share(_open(repo, password_file), name, target)
    print(f"revoked share {revoked.name}: new snapshots are no longer published to it")


@command("sync", on=share_app)
def share_sync(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Only this share (repeatable).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Publish a target's existing snapshots to its shares (needs owner or read-write)."""

    repository = _open(repo, password_file)
    chosen = target or repository.default_target
    from neostore.shares.publish import sync

    count = sync(repository, chosen, set(name) if name else None)
    if json_output:
        _emit({"target": chosen, "published": count})
    else:
        print(f"published {count} snapshot(s) to shares of {chosen}")


def run() -> None:
    from neostore.runtime import tune_gc, tune_malloc

    tune_malloc()
    tune_gc()
    # deep trees are walked recursively (pure-Python frames, no C stack in
    # 3.11+); restore holds a directory fd per level
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")
    app()


if __name__ == "__main__":
    run()
