"""``key add|list|remove|passwd``: several passwords per repository."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from .. import context, render
from ..options import JsonOpt, KdfOpt, NewPasswordOpt, PasswordFileOpt, RepoOpt


def key_add(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    new_password_file: NewPasswordOpt = None,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            click_type=click.Choice(["owner", "writer", "reader", "read-write"]),
            help="owner (every target), writer, reader or read-write.",
        ),
    ] = "owner",
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="The target of a per-target role.")
    ] = None,
    kdf: KdfOpt = "default",
    json_output: JsonOpt = False,
) -> None:
    """Add a key file opened by a new password; prints its id."""
    from neostore.core import keyring

    params = context.kdf(kdf)
    repository = context.open_repo(repo, password_file)
    repository.require_owner("adding a key")
    password = context.new_password(new_password_file)
    key_id = keyring.add_key(repository, password, role, target, params)
    if json_output:
        render.emit({"key_id": key_id, "role": role, "target": target})
    else:
        print(key_id)


def key_list(
    repo: RepoOpt = None, password_file: PasswordFileOpt = None, json_output: JsonOpt = False
) -> None:
    """List key files: id, role, target, created, host/user (owner keys
    only: it is sealed to them), the one in use."""
    from neostore.core import keyring

    found = keyring.list_keys(context.open_repo(repo, password_file))
    if json_output:
        render.emit(
            [
                {
                    "id": k.key_id,
                    "role": k.role,
                    "target": k.target,
                    "created": render.iso(k.created_ns),
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
            f"{render.local_time(k.created_ns):<19} "
            f"{'-' if k.host is None else f'{k.host}/{k.user}'}"
        )


def key_remove(
    key_id: Annotated[str, typer.Argument(help="Key id (a prefix of at least 4 hex digits).")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Delete a key file (not the one in use, never the last owner key)."""
    from neostore.core import keyring

    removed = keyring.remove_key(context.open_repo(repo, password_file), key_id)
    print(f"removed key {removed}")


def key_passwd(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    new_password_file: NewPasswordOpt = None,
    kdf: KdfOpt = "default",
) -> None:
    """Change the password of the key in use (same key id; --kdf, never the old file's)."""
    from neostore.core import keyring

    params = context.kdf(kdf)
    repository = context.open_repo(repo, password_file)
    password = context.new_password(new_password_file)
    key_id = keyring.change_password(repository, password, params)
    print(f"password changed for key {key_id}")
