"""``rewrite``: new snapshots without the files that match."""

from __future__ import annotations

from typing import Annotated

import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import (
    DryRunOpt,
    ExcludeOpt,
    IExcludeOpt,
    JsonOpt,
    PasswordFileOpt,
    RepoOpt,
    SnapshotsArg,
    TargetOpt,
)
from ..sources import ExcludeFileOpt, IExcludeFileOpt

ForgetOpt = Annotated[
    bool,
    typer.Option("--forget", help="Forget the originals (owner keys); prune then frees the data."),
]


def rewrite(
    snapshot_ids: SnapshotsArg = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    exclude: ExcludeOpt = None,
    exclude_file: ExcludeFileOpt = None,
    iexclude: IExcludeOpt = None,
    iexclude_file: IExcludeFileOpt = None,
    forget: ForgetOpt = False,
    dry_run: DryRunOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Save new snapshots without the paths that match (all of the
    target's snapshots when none is named), e.g. a secret backed up by
    mistake. The originals stay unless --forget."""
    from neostore.lifecycle.pathcut import rewrite_excluding
    from neostore.matcher import PathMatcher
    from neostore.snapshots.lookup import select

    from ..sources import exclusions

    rules = exclusions(
        exclude or [], exclude_file or [], iexclude or [], iexclude_file or [], False, [], None
    )
    matcher = PathMatcher(rules.patterns, rules.insensitive)
    if not matcher:
        raise Fail(
            "give what to leave out: --exclude, --iexclude or an exclude file", ExitCode.USAGE
        )
    repository = context.open_repo(repo, password_file)
    chosen = select(repository, snapshot_ids, target)
    reporter = context.reporter(json_output, echo=False)
    cuts = rewrite_excluding(
        repository, chosen, matcher, forget_originals=forget, dry_run=dry_run, reporter=reporter
    )
    if json_output:
        render.emit(
            [
                {
                    "target": c.info.target,
                    "old": c.info.hex_id,
                    "new": c.replacement.hex_id if c.replacement else None,
                    "removed": [render.show(p) for p in c.removed],
                    "dry_run": dry_run,
                }
                for c in cuts
            ]
        )
        return
    for c in cuts:
        name = f"{c.info.target}/{c.info.hex_id[:8]}"
        if not c.removed:
            print(f"{name} unchanged: nothing matches")
            continue
        new = c.replacement.hex_id[:8] if c.replacement else ""
        after = "would be rewritten" if dry_run else f"-> {new}"
        print(f"{name} {after}: {len(c.removed)} path(s) left out")
        for path in c.removed:
            print(f"  - {render.show(path)}")
