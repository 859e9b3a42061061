"""``copy``: snapshots from another repository, with other keys."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import (
    FromPasswordFileOpt,
    FromRepoOpt,
    FromServerCaOpt,
    FromServerFingerprintOpt,
    FromTargetOpt,
    JsonOpt,
    PasswordFileOpt,
    RepoOpt,
)
from ..say import say

if TYPE_CHECKING:
    from neostore.core.repository import Repository
    from neostore.lifecycle.copy import Copied


def copy(
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SNAPSHOT]...", help="Source snapshots (default: all)."),
    ] = None,
    from_repo: FromRepoOpt = "",
    from_password_file: FromPasswordFileOpt = None,
    from_target: FromTargetOpt = None,
    from_server_fingerprint: FromServerFingerprintOpt = None,
    from_server_ca: FromServerCaOpt = None,
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
    from neostore.lifecycle.copy import copy_snapshots

    if not from_repo:
        raise Fail("give the source: --from-repo (or NEOSTORE_FROM_REPO)", ExitCode.USAGE)
    source = _open_source(from_repo, from_password_file, from_server_fingerprint, from_server_ca)
    dest = context.open_repo(repo, password_file)
    report = copy_snapshots(
        source,
        dest,
        snapshot_ids,
        from_target=from_target,
        target=target,
        on_copied=None if json_output else _print_copied,
        reporter=context.reporter(json_output, echo=False),
    )
    totals = asdict(report.stats)
    if json_output:
        rows = [_copied_json(done) for done in report.copied]
        render.emit(
            {
                "snapshots": rows,
                "stats": totals,
                "problems": report.problems,
                "tampering": report.tampering,
            }
        )
    else:
        print(
            f"{totals['snapshots_copied']} copied, {totals['snapshots_skipped']} skipped; "
            f"read {render.size(totals['bytes_read'])} from the source, added "
            f"{render.size(totals['bytes_added'])} ({totals['blobs_new']} new blobs)"
        )
    for problem in report.problems:
        say("error", f"source: {problem}")
    context.tampering([f"source: {finding}" for finding in report.tampering])
    if report.problems:
        raise typer.Exit(ExitCode.FATAL)


def _open_source(
    location: str, password_file: str | None, fingerprint: str | None, ca: str | None
) -> Repository:
    """The source: its own password and server options, never the
    destination's (one server's token must not go to another)."""
    return context.open_repository(
        location,
        lambda: context.read_password(
            password_file,
            env_var="NEOSTORE_FROM_PASSWORD",
            what="source password",
            options="NEOSTORE_FROM_PASSWORD_FILE or --from-password-file",
        ),
        server=context.ServerOptions(
            fingerprint,
            ca,
            credentials_env="NEOSTORE_FROM_SERVER",
            env_prefix="NEOSTORE_FROM_",
            insecure_http=context.global_server().insecure_http,
        ),
    )


def _print_copied(done: Copied) -> None:
    verb = "skipped (copied before)" if done.snapshot_id is None else "copied"
    new = f" -> {done.target}/{done.snapshot_id.hex()[:8]}" if done.snapshot_id else ""
    print(f"{done.source.target}/{done.source.hex_id[:8]} {verb}{new}")


def _copied_json(done: Copied) -> dict[str, Any]:
    return {
        "source": done.source.hex_id,
        "source_target": done.source.target,
        "target": done.target,
        "id": done.snapshot_id.hex() if done.snapshot_id else None,
        "skipped": done.snapshot_id is None,
    }
