"""The ``neostore`` command group: global options anywhere on the line,
and one suggestion for a mistyped command (restic's names included).

restic takes ``-r``, ``--password-file``, ``--json`` before or after the
command's name; Click takes a command's options only after its name and
the group's only before it. :func:`reorder` moves each to where Click
looks for it before parsing, so both spellings mean the same.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import click
from typer.core import TyperGroup

#: options that belong to the commands, allowed before the command's name
#: too (the number: how many values follow)
COMMAND_OPTIONS = {
    "-r": 1,
    "--repo": 1,
    "--password-file": 1,
    "--json": 0,
    "-v": 0,
    "-vv": 0,
    "-vvv": 0,
    "--verbose": 0,
    "-q": 0,
    "--quiet": 0,
}
#: restic's command names neostore spells otherwise
RESTIC_NAMES = {
    "rebuild-index": "neostore repair index",
    "cat": "neostore dump (files) or neostore snapshots --json (snapshots)",
    "list": "neostore snapshots",
    "generate": "neostore completion SHELL",
    "version": "neostore --version",
    "unlock": "nothing: neostore holds no repository lock to remove",
    "migrate": "nothing: repositories migrate when opened",
}


def _option(token: str, table: dict[str, int]) -> tuple[str, int] | None:
    """The option a token is (``--repo=x`` included) and how many values
    follow it on the line."""
    name, eq, _ = token.partition("=")
    if name not in table or (eq and table[name] == 0):
        return None
    return name, 0 if eq else table[name]


def _group_options(group: click.Group) -> dict[str, int]:
    out: dict[str, int] = {}
    for param in group.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                out[name] = 0 if param.is_flag or param.count else param.nargs
    return out


def _takes(command: click.Command, name: str) -> bool:
    if not name.startswith("--"):
        name = name[:2]  # -vv is -v twice
    return any(name in (*p.opts, *p.secondary_opts) for p in command.params)


def reorder(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with the group's options first, then the command's name
    (and sub-command's), then the command options given before the name,
    then the rest in its order. Nothing after ``--`` moves."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    group_opts = _group_options(group)
    front: list[str] = []
    path: list[str] = []
    moved: list[str] = []
    rest: list[str] = []
    at: click.Command | None = group
    i = 0
    while i < len(head):
        token = head[i]
        mine = _option(token, group_opts)
        theirs = _option(token, COMMAND_OPTIONS)
        if mine is not None:
            take, into = 1 + mine[1], front
        elif theirs is not None and isinstance(at, click.Group):
            take, into = 1 + theirs[1], moved
        elif token.startswith("-") or not isinstance(at, click.Group):
            take, into = 1, (front if at is group else rest)
        else:
            at = at.commands.get(token) if isinstance(at, click.Group) else None
            take, into = 1, path
            if at is None:  # let Click say it is no command
                take, into = len(head) - i, path
        into.extend(head[i : i + take])
        i += take
    if isinstance(at, click.Command) and not isinstance(at, click.Group):
        for token in moved:
            option = _option(token, COMMAND_OPTIONS)
            if option is not None and not _takes(at, option[0]):
                name = " ".join(p for p in path)
                raise click.UsageError(f"'{name}' does not take {option[0]}", ctx)
    return front + path + moved + rest + tail


class NeostoreGroup(TyperGroup):
    """neostore's command groups: one suggestion for a mistyped command
    (Click's), and restic's names for what neostore calls otherwise."""

    def __init__(self, **attrs: Any) -> None:
        attrs["suggest_commands"] = False  # Click suggests; Typer would say it again
        super().__init__(**attrs)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in RESTIC_NAMES and name not in self.commands and ctx.parent is None:
            raise click.UsageError(
                f"No such command '{name}': restic's '{name}' is {RESTIC_NAMES[name]}.", ctx
            )
        return super().resolve_command(ctx, args)


class TopGroup(NeostoreGroup):
    """The ``neostore`` group itself: command options anywhere."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, reorder(self, ctx, list(args)))

    def _main_shell_completion(
        self, ctx_args: MutableMapping[str, Any], prog_name: str, complete_var: str | None = None
    ) -> None:
        """Answer a completion script (``neostore completion SHELL``) in the
        format it reads: Typer's, whose classes it registers only for apps
        that offer ``--install-completion``."""
        from typer._completion_classes import completion_init

        completion_init()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)
