"""``tag``: change the tags of snapshots."""

from __future__ import annotations

from typing import Annotated

import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import JsonOpt, PasswordFileOpt, RepoOpt, TargetOpt


def _tags(values: list[str] | None) -> list[str]:
    """Tags from repeatable options, each of which may hold a,b,c."""
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


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
    from neostore.snapshots.lookup import find_snapshot

    if not (add or remove or set_tags is not None):
        raise Fail("give --add, --remove and/or --set", ExitCode.USAGE)
    repository = context.open_repo(repo, password_file)
    chosen = [find_snapshot(repository, spec, target) for spec in snapshot_ids]
    new_tags = None if set_tags is None else _tags(set_tags)
    done, unchanged = retag(repository, chosen, _tags(add), _tags(remove), new_tags)
    if json_output:
        pairs = [(r.old, r.new) for r in done] + [(i, i) for i in unchanged]
        render.emit(
            [
                {"target": o.target, "old": o.hex_id, "new": n.hex_id, "tags": n.manifest.tags}
                for o, n in pairs
            ]
        )
        return
    for r in done:
        tags = ", ".join(r.new.manifest.tags) or "(none)"
        print(f"{r.old.target}/{r.old.hex_id[:8]} -> {r.new.hex_id[:8]}  tags: {tags}")
    for info in unchanged:
        print(f"{info.target}/{info.hex_id[:8]} unchanged")
