"""Options many commands take, declared once."""

from __future__ import annotations

from typing import Annotated

import click
import typer

RepoOpt = Annotated[
    str | None,
    typer.Option(
        "-r",
        "--repo",
        envvar="NEOSTORE_REPO",
        help="Repository: a directory or file:// URL, https://HOST:PORT/REPO (neostore-server), "
        "s3:…, sftp:[USER@]HOST:/PATH or rest:http(s)://… (README).",
    ),
]
PasswordFileOpt = Annotated[
    str | None,
    typer.Option(
        "--password-file", envvar="NEOSTORE_PASSWORD_FILE", help="Read the password from FILE."
    ),
]
NewPasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--new-password-file",
        envvar="NEOSTORE_NEW_PASSWORD_FILE",
        help="Read the new password from FILE (or set NEOSTORE_NEW_PASSWORD).",
    ),
]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="Target name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
KdfOpt = Annotated[
    str,
    typer.Option(
        "--kdf",
        click_type=click.Choice(["default", "strong"]),
        help="Key derivation of the new key file: default (Argon2id, 64 MiB, 3 passes) "
        "or strong (256 MiB).",
    ),
]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "-v", "--verbose", count=True, help="List each file on stderr (-vv: unchanged ones too)."
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("-q", "--quiet", help="No progress and no summary: problems only.")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="Only show.")]
SnapshotArg = Annotated[
    str, typer.Argument(metavar="SNAPSHOT", help="Id, unique prefix or 'latest'.")
]
SnapshotsArg = Annotated[
    list[str] | None, typer.Argument(metavar="[SNAPSHOT]...", help="Default: all.")
]
MaxUnusedOpt = Annotated[
    str,
    typer.Option(
        "--max-unused", help="Unused space tolerated, in % of the repository, or 'unlimited'."
    ),
]
GraceOpt = Annotated[
    str,
    typer.Option(
        "--grace", help="How long condemned packs wait before deletion (30s, 15m, 1h, 2d)."
    ),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-e", help="Skip paths matching a glob (repeatable)."),
]
IIncludeOpt = Annotated[
    list[str] | None,
    typer.Option("--iinclude", help="As --include, without regard to case (repeatable)."),
]
IExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--iexclude", help="As --exclude, without regard to case (repeatable)."),
]
IncludeOpt = Annotated[
    list[str] | None, typer.Option("--include", "-i", help="Restore only matches (repeatable).")
]
OverwriteOpt = Annotated[
    str,
    typer.Option(
        "--overwrite",
        click_type=click.Choice(["always", "if-changed", "if-newer", "never"]),
        help="Existing files: always (only changed chunks are fetched), if-changed "
        "(size or mtime differ), if-newer, never.",
    ),
]

# -- the source repository of `copy` (its own options, never the global ones) --

FromRepoOpt = Annotated[
    str, typer.Option("--from-repo", envvar="NEOSTORE_FROM_REPO", help="Source repository.")
]
FromPasswordFileOpt = Annotated[
    str | None,
    typer.Option(
        "--from-password-file",
        envvar="NEOSTORE_FROM_PASSWORD_FILE",
        help="Source password file (or NEOSTORE_FROM_PASSWORD).",
    ),
]
FromTargetOpt = Annotated[
    str | None, typer.Option("--from-target", help="Source target (default: every one).")
]
FromServerFingerprintOpt = Annotated[
    str | None,
    typer.Option(
        "--from-server-fingerprint",
        envvar="NEOSTORE_FROM_SERVER_FINGERPRINT",
        help="Pin the source server's TLS certificate (SHA256:...).",
    ),
]
FromServerCaOpt = Annotated[
    str | None,
    typer.Option(
        "--from-server-ca",
        envvar="NEOSTORE_FROM_SERVER_CA",
        help="Trust this CA file for the source server.",
    ),
]
