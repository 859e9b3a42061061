"""``mount``: the snapshots as read-only folders (FUSE)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import context, render
from ..options import PasswordFileOpt, RepoOpt, TargetOpt


def mount(
    mountpoint: Annotated[str, typer.Argument(help="An empty directory to mount on.")],
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    cache_size: Annotated[
        int,
        typer.Option("--cache-size", metavar="MIB", min=1, help="Chunk cache, in MiB."),
    ] = 256,
    allow_other: Annotated[
        bool,
        typer.Option(
            "--allow-other",
            help="Let other users in (their access is then checked against the modes shown; "
            "needs user_allow_other in /etc/fuse.conf unless run as root).",
        ),
    ] = False,
    refresh: Annotated[
        float,
        typer.Option(
            "--refresh", metavar="SECONDS", min=0, help="List new snapshots at most this often."
        ),
    ] = 5.0,
) -> None:
    """Show the snapshots as read-only folders until unmounted (fusermount -u,
    Ctrl-C or SIGTERM):

    MOUNTPOINT/TARGET/ids/ID/…, snapshots/TIME/…, tags/TAG/TIME/…, latest"""
    from neostore.errors import UsageError
    from neostore.mount.fuse import check_mountpoint

    try:
        check_mountpoint(mountpoint)  # before any password is asked
    except UsageError as e:
        raise context.usage(e) from None
    repository = context.open_repo(repo, password_file)
    from neostore.mount.fuse import serve
    from neostore.mount.layout import Layout

    repository.load_index()
    layout = Layout(repository, target, refresh)
    for name in layout.targets():  # a key that cannot read fails here, not in the mount
        layout.view(name)
    print(f"snapshots at {mountpoint}: fusermount -u or Ctrl-C to stop", file=sys.stderr)
    serve(
        repository,
        layout,
        mountpoint,
        lambda path, message: render.path_warning(path.encode(), message),
        cache_size=cache_size << 20,
        allow_other=allow_other,
    )
