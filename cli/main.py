"""The ``neostore`` command: the Typer app, its commands in the order
``--help`` shows them, and the process set-up of :func:`run`.

Commands live in :mod:`neostore_cli.commands`, one module per command or
group; what they share is in :mod:`.context` (repository, passwords,
errors), :mod:`.options` and :mod:`.render`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from neostore.commandline import make_app

from .commands import (
    backup,
    browse,
    copy,
    forget,
    keys,
    mount,
    repair,
    repository,
    restore,
    rewrite,
    schedule,
    shares,
    shell,
    tag,
    ui,
)
from .commands import run as profile_run
from .context import META_COMMAND, META_PROGRESS, ServerOptions, command
from .group import NeostoreGroup, TopGroup

app = make_app("neostore", "End-to-end encrypted, deduplicating backups.", cls=TopGroup)
key_app = typer.Typer(help="Manage key files: several passwords per repository.", cls=NeostoreGroup)
repair_app = typer.Typer(help="Rebuild damaged repository metadata.", cls=NeostoreGroup)
schedule_app = typer.Typer(
    help="Run profiles regularly (systemd timer, launchd agent, Task Scheduler).",
    cls=NeostoreGroup,
)
share_app = typer.Typer(help="Read-only shares of one sub-folder of a target.", cls=NeostoreGroup)


@app.callback()
def main(
    ctx: typer.Context,
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
    insecure_http: Annotated[
        bool,
        typer.Option(
            "--insecure-http",
            envvar="NEOSTORE_INSECURE_HTTP",
            help="Send the server token over plain http:// (anyone on the way can read it).",
        ),
    ] = False,
    password_command: Annotated[
        str | None,
        typer.Option(
            "--password-command",
            envvar="NEOSTORE_PASSWORD_COMMAND",
            help="Run CMD and read the password from its output (a keychain, a secret manager).",
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option("--progress", help="With --json: stream progress as JSON lines on stderr."),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=shell.print_version,
            help="Print neostore's version and exit.",
        ),
    ] = False,
) -> None:
    """End-to-end encrypted, deduplicating backups."""
    ctx.obj = ServerOptions(server_fingerprint, server_ca, insecure_http=insecure_http)
    ctx.meta[META_COMMAND] = password_command
    ctx.meta[META_PROGRESS] = progress


def _register(on: typer.Typer, commands: list[tuple[str, Callable[..., Any]]]) -> None:
    for name, func in commands:
        on.command(name)(command(func))


_register(
    app,
    [
        ("init", repository.init),
        ("snapshot", backup.snapshot),
        ("snapshots", browse.snapshots),
        ("ls", browse.ls),
        ("dump", browse.dump),
        ("restore", restore.restore),
        ("mount", mount.mount),
        ("ui", ui.ui),
        ("check", repository.check),
        ("find", browse.find),
        ("diff", browse.diff),
        ("stats", browse.stats),
        ("tag", tag.tag),
        ("rewrite", rewrite.rewrite),
        ("forget", forget.forget),
        ("prune", forget.prune),
        ("copy", copy.copy),
        ("run", profile_run.run),
        ("completion", shell.completion),
    ],
)
# restic's name for it; not listed in --help
app.command("backup", hidden=True)(command(backup.snapshot))
_register(
    key_app,
    [
        ("add", keys.key_add),
        ("list", keys.key_list),
        ("remove", keys.key_remove),
        ("passwd", keys.key_passwd),
    ],
)
_register(
    repair_app,
    [("index", repair.repair_index), ("snapshots", repair.repair_snapshots)],
)
_register(
    schedule_app,
    [
        ("install", schedule.install),
        ("list", schedule.schedule_list),
        ("remove", schedule.remove),
    ],
)
_register(
    share_app,
    [
        ("create", shares.share_create),
        ("list", shares.share_list),
        ("revoke", shares.share_revoke),
        ("sync", shares.share_sync),
    ],
)
app.add_typer(key_app, name="key")
app.add_typer(repair_app, name="repair")
app.add_typer(share_app, name="share")
app.add_typer(schedule_app, name="schedule")


def setup_process() -> None:
    """What a ``neostore`` process sets before any command runs."""
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


def run() -> None:
    setup_process()
    app()


if __name__ == "__main__":
    run()
