"""``ui``: the graphical front-end, a local web application (neostore_ui)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from .. import context
from ..options import PasswordFileOpt, RepoOpt

ListenOpt = Annotated[
    str,
    typer.Option(
        "--listen",
        metavar="HOST:PORT",
        help="Where to serve (default 127.0.0.1:8765, or a free port when that one is "
        "taken). Another address than loopback lets others reach the page over plain HTTP.",
    ),
]
NoOpenOpt = Annotated[
    bool, typer.Option("--no-open", help="Print the address; do not open a browser.")
]
IdleOpt = Annotated[
    float,
    typer.Option(
        "--idle-timeout",
        metavar="SECONDS",
        min=0,
        help="Stop after this long with no page open and no job running (0: never).",
    ),
]


def ui(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    listen: ListenOpt = "127.0.0.1",
    no_open: NoOpenOpt = False,
    idle_timeout: IdleOpt = 600.0,
) -> None:
    """Browse, search, restore and back up in a web browser, on this machine.

    The address printed carries a secret token: whoever has it can use the
    repository as this key can. Stops on Ctrl-C, the Quit button, or after
    --idle-timeout with no page open."""
    from neostore.errors import UsageError
    from neostore_ui.app import is_loopback, parse_listen, serve
    from neostore_ui.session import Session

    try:
        host, _ = parse_listen(listen)
    except UsageError as e:
        raise context.usage(e) from None
    session = Session(repo, context.backend_options(context.global_server()))
    if repo and _password_at_hand(password_file):
        session.open(repo, context.read_password(password_file))  # errors exit as usual
    if not is_loopback(host):
        print(
            f"warning: listening on {host}: the page and its token travel over plain HTTP to "
            "whoever can reach this address",
            file=sys.stderr,
        )

    def announce(url: str) -> None:
        print(url, flush=True)
        state = "unlocked" if not session.locked else "locked: unlock it in the page"
        stop = f"after {idle_timeout:.0f} s with no page open, " if idle_timeout else ""
        print(f"neostore ui: repository {state}; stops {stop}on Ctrl-C or Quit", file=sys.stderr)

    try:
        serve(
            session,
            listen,
            open_browser=not no_open,
            idle_timeout=idle_timeout or None,
            announce=announce,
        )
    except UsageError as e:
        raise context.usage(e) from None


def _password_at_hand(password_file: str | None) -> bool:
    """Whether the password comes as for every command (the environment, a
    file, or the terminal); else the page asks for it."""
    return bool(password_file or "NEOSTORE_PASSWORD" in os.environ or sys.stdin.isatty())
