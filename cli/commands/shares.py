"""``share create|list|revoke|sync``: read-only shares of one sub-folder."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import context, render
from ..options import JsonOpt, KdfOpt, NewPasswordOpt, PasswordFileOpt, RepoOpt, TargetOpt


def share_create(
    target: Annotated[str, typer.Option("--target", "-t", help="Target holding the folder.")],
    path: Annotated[str, typer.Option("--path", help="Folder to share, as `ls` shows it.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Share name (default: the folder's name).")
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    new_password_file: NewPasswordOpt = None,
    kdf: KdfOpt = "default",
    json_output: JsonOpt = False,
) -> None:
    """Create a share and the key (a new password) that opens it; prints the key id.

    Snapshots of the target made from now on are published to it; run
    `share sync` to publish earlier ones.
    """
    from neostore.shares.lists import create_share

    params = context.kdf(kdf)
    repository = context.open_repo(repo, password_file)
    repository.require_owner("creating a share")
    password = context.new_password(new_password_file)
    key_id, share = create_share(repository, target, path, name, password, params)
    if json_output:
        render.emit({"key_id": key_id, **render.share_json(target, share)})
    else:
        print(key_id)


def share_list(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List the shares of every target (or one), revoked ones included."""
    from neostore.shares.lists import list_shares

    repository = context.open_repo(repo, password_file)
    repository.require_owner("listing shares")
    found = list_shares(repository, target)
    if json_output:
        render.emit([render.share_json(t, s) for t, s in found])
        return
    print(f"{'Name':<20} {'Target':<12} {'Created':<19} {'State':<8} Path")
    for t, s in found:
        state = "revoked" if s.revoked_ns else "active"
        created = render.local_time(s.created_ns)
        print(f"{s.name:<20} {t:<12} {created:<19} {state:<8} {render.show(s.path)}")


def share_revoke(
    name: Annotated[str, typer.Argument(help="Share name.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
) -> None:
    """Stop publishing new snapshots to a share (what it has stays readable to it)."""
    from neostore.shares.lists import revoke_share

    revoked = revoke_share(context.open_repo(repo, password_file), name, target)
    print(f"revoked share {revoked.name}: new snapshots are no longer published to it")


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
    from neostore.shares.publish import sync

    repository = context.open_repo(repo, password_file)
    chosen = target or repository.default_target
    count = sync(repository, chosen, set(name) if name else None)
    if json_output:
        render.emit({"target": chosen, "published": count})
    else:
        print(f"published {count} snapshot(s) to shares of {chosen}")
