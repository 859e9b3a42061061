"""``init`` and ``check``: creating a repository and verifying one."""

from __future__ import annotations

from typing import Annotated

import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import JsonOpt, KdfOpt, PasswordFileOpt, RepoOpt
from ..say import say


def init(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    chunk_min: Annotated[int | None, typer.Option(help="Minimum chunk size in bytes.")] = None,
    chunk_avg: Annotated[int | None, typer.Option(help="Average chunk size in bytes.")] = None,
    chunk_max: Annotated[int | None, typer.Option(help="Maximum chunk size in bytes.")] = None,
    pack_size: Annotated[int | None, typer.Option(help="Target pack size in bytes.")] = None,
    kdf: KdfOpt = "default",
    create_bucket: Annotated[
        bool,
        typer.Option("--create-bucket", help="On S3, create the bucket if it does not exist."),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Create a repository and its owner key; prints the repository id."""
    from neostore.core.repository import Repository
    from neostore.format import config as cfg

    params = context.kdf(kdf)
    backend = context.open_backend(repo, create_bucket=create_bucket)
    if backend.exists_repository():
        raise Fail(f"{backend.location}: a repository already exists there")
    password = context.read_password(password_file, confirm=True)
    context.warn_if_weak(password)
    sizes = None
    if chunk_min or chunk_avg or chunk_max:
        sizes = (
            chunk_min or cfg.DEFAULT_CHUNK_MIN,
            chunk_avg or cfg.DEFAULT_CHUNK_AVG,
            chunk_max or cfg.DEFAULT_CHUNK_MAX,
        )
    created = Repository.init(backend, password, chunk_sizes=sizes, pack_size=pack_size, kdf=params)
    if json_output:
        render.emit({"repository_id": created.repo_id.hex(), "location": backend.location})
    else:
        print(created.repo_id.hex())
    say(
        "notice",
        "keep this password safe. Without it (or another key's) nobody can read "
        "this repository: a lost password means lost data.",
    )


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
        raise Fail("give --read-data or --read-data-subset, not both", ExitCode.USAGE)
    try:
        subset = Subset.parse(read_data_subset) if read_data_subset else None
    except UsageError as e:
        raise context.usage(e) from None
    repository = context.open_repo(repo, password_file)
    repository.require_owner("check")
    reporter = context.reporter(json_output, echo=False)  # problems are printed below, once
    result = Checker(repository, reporter).run(read_data=read_data, subset=subset)
    if json_output:
        render.emit(
            {
                "ok": result.ok,
                "tampering": result.tampering,
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
        render.problems("warning", result.warnings)
        render.problems("error", result.errors)
        summary = f"{result.snapshots} snapshots, {result.trees} trees, {result.packs} packs"
        if read_data or subset is not None:
            summary += f", {result.packs_read} packs read, {result.blobs_checked} blobs verified"
        verdict = f"{len(result.errors)} error(s)" if result.errors else "no errors"
        if result.tampering:
            verdict += f", {len(result.tampering)} sign(s) of tampering"
        print(f"{verdict} ({summary})")
    context.tampering(result.tampering)
    if not result.ok:
        raise typer.Exit(ExitCode.FATAL)
