"""``forget`` and ``prune``: remove snapshots, then the data nobody needs."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import (
    DryRunOpt,
    GraceOpt,
    JsonOpt,
    MaxUnusedOpt,
    PasswordFileOpt,
    RepoOpt,
    TargetOpt,
)
from ..say import say

if TYPE_CHECKING:
    from neostore.core.repository import Repository
    from neostore.lifecycle.prune import PruneOptions
    from neostore.lifecycle.retention import Policy


def _keep(flag: str, short: str, text: str) -> Any:
    """A ``--keep-*`` count (no "[default: 0]" in --help: 0 means unused)."""
    return typer.Option(flag, short, help=text, show_default=False)


def forget(
    snapshot_ids: Annotated[
        list[str] | None, typer.Argument(metavar="[SNAPSHOT]...", help="Forget these snapshots.")
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    target: TargetOpt = None,
    keep_last: Annotated[int, _keep("--keep-last", "-l", "Keep the newest N.")] = 0,
    keep_hourly: Annotated[int, _keep("--keep-hourly", "-H", "Last N hours.")] = 0,
    keep_daily: Annotated[int, _keep("--keep-daily", "-d", "Last N days.")] = 0,
    keep_weekly: Annotated[int, _keep("--keep-weekly", "-w", "Last N weeks.")] = 0,
    keep_monthly: Annotated[int, _keep("--keep-monthly", "-m", "Last N months.")] = 0,
    keep_yearly: Annotated[int, _keep("--keep-yearly", "-y", "Last N years.")] = 0,
    keep_within: Annotated[
        str | None,
        typer.Option("--keep-within", help="Keep all within DURATION (1y2m3d4h) of the newest."),
    ] = None,
    keep_tag: Annotated[
        list[str] | None,
        typer.Option("--keep-tag", help="Keep snapshots with all of these tags (a,b; repeatable)."),
    ] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="Apply the policy per host, paths and/or tags.")
    ] = "host,paths",
    dry_run: DryRunOpt = False,
    prune: Annotated[bool, typer.Option("--prune", help="Then run prune.")] = False,
    max_unused: MaxUnusedOpt = "5%",
    grace: GraceOpt = "1h",
    json_output: JsonOpt = False,
) -> None:
    """Remove snapshots by a retention policy (restic's --keep-* rules) or by id.

    Counts of -1 mean "no limit". Each target's snapshots are grouped by
    --group-by and the policy applies to each group. The owner signs a
    forget record first, so readers do not mistake the removal for tampering.
    With --prune, prune runs afterwards (--max-unused, --grace as for prune).
    """
    counts = (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    policy = _policy(counts, keep_within, keep_tag)
    groups = _group_fields(group_by)
    if snapshot_ids and not policy.empty:
        raise Fail("give snapshot ids or a --keep-* policy, not both", ExitCode.USAGE)
    prune_options = _prune_options(dry_run, max_unused, grace) if prune else None
    repository = context.open_repo(repo, password_file)
    repository.require_owner("forget")
    if snapshot_ids:
        removed = _forget_ids(repository, snapshot_ids, target, dry_run, json_output)
    elif policy.empty:
        say("warning", "no policy was given (--keep-*): nothing is removed")
        removed = []
    else:
        removed = _forget_by_policy(repository, policy, groups, target, dry_run, json_output)
    if prune_options is None:
        if json_output:
            render.emit(removed)
        return
    stats = _prune(repository, prune_options, json_output=False, quiet=json_output)
    if json_output:
        render.emit({"forget": removed, "prune": stats})


def _policy(counts: tuple[int, ...], keep_within: str | None, keep_tag: list[str] | None) -> Policy:
    from neostore.errors import UsageError
    from neostore.lifecycle import retention

    if any(n < -1 for n in counts):
        raise Fail("--keep-* counts must be ≥ 0, or -1 for no limit", ExitCode.USAGE)
    try:
        within = retention.parse_duration(keep_within) if keep_within else retention.Duration()
    except UsageError as e:
        raise context.usage(e) from None
    last, hourly, daily, weekly, monthly, yearly = counts
    return retention.Policy(
        last=last,
        hourly=hourly,
        daily=daily,
        weekly=weekly,
        monthly=monthly,
        yearly=yearly,
        within=within,
        tags=tuple(frozenset(t for t in tags.split(",") if t) for tags in keep_tag or []),
    )


def _group_fields(group_by: str) -> list[str]:
    from neostore.lifecycle.forget import GROUP_FIELDS

    if group_by and any(f.strip() not in GROUP_FIELDS for f in group_by.split(",")):
        raise Fail(f"--group-by {group_by!r}: use host, paths and/or tags", ExitCode.USAGE)
    return [f.strip() for f in group_by.split(",") if f.strip()]


def _forget_ids(
    repository: Repository, specs: list[str], target: str | None, dry_run: bool, quiet: bool
) -> list[dict[str, Any]]:
    from neostore.lifecycle.forget import forget_snapshots
    from neostore.snapshots.lookup import find_snapshot

    chosen = [find_snapshot(repository, spec, target) for spec in specs]
    if not dry_run:
        forget_snapshots(repository, chosen)
    for info in chosen:
        if not quiet:
            print(f"{'would remove' if dry_run else 'removed'} {info.target}/{info.hex_id[:8]}")
    return [{"target": i.target, "remove": [i.hex_id], "dry_run": dry_run} for i in chosen]


def _forget_by_policy(
    repository: Repository,
    policy: Policy,
    groups: list[str],
    target: str | None,
    dry_run: bool,
    quiet: bool,
) -> list[dict[str, Any]]:
    from neostore.lifecycle import forget as forgetting

    names = [target] if target else repository.target_names()
    plans = forgetting.plan(repository, names, policy, groups)
    if not dry_run:
        forgetting.execute(repository, plans)
    if quiet:
        return [render.plan_json(p, dry_run) for p in plans]
    print(policy.describe())
    for plan in plans:
        render.print_plan(plan, dry_run)
    return []


def prune(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    max_unused: MaxUnusedOpt = "5%",
    grace: GraceOpt = "1h",
    dry_run: DryRunOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Remove data no snapshot references, repacking partly used packs.

    Safe beside snapshots running elsewhere: unused packs are first
    condemned (writers stop reusing them, and a running snapshot that did
    copies what it needs out of them) and deleted by a later prune once the
    grace period has passed. Refuses to change anything when check finds
    errors.
    """
    options = _prune_options(dry_run, max_unused, grace)
    repository = context.open_repo(repo, password_file)
    _prune(repository, options, json_output)


def _prune_options(dry_run: bool, max_unused: str, grace: str) -> PruneOptions:
    from neostore.errors import UsageError
    from neostore.lifecycle.prune import PruneOptions, parse_grace, parse_max_unused

    try:
        share = parse_max_unused(max_unused)
        grace_ns = parse_grace(grace)
    except UsageError as e:
        raise context.usage(e) from None
    return PruneOptions(max_unused=share, grace_ns=grace_ns, dry_run=dry_run)


def _prune(
    repository: Repository, options: PruneOptions, json_output: bool, quiet: bool = False
) -> dict[str, Any]:
    from neostore.lifecycle.prune import Pruner

    # a bar on a terminal; problems are in the stats, printed below once
    stats = Pruner(repository, options, context.reporter(json_output, echo=False)).run()
    out = dict(asdict(stats), dry_run=options.dry_run)
    if json_output:
        render.emit(out)
    elif not quiet:
        verb = "would " if options.dry_run else ""
        size = render.size
        print(
            f"{stats.packs} packs, {size(stats.bytes)}; {size(stats.bytes_used)} used by snapshots"
        )
        rescued = (
            f"; {stats.packs_rescued} kept: a snapshot needs them again"
            if stats.packs_rescued
            else ""
        )
        print(
            f"{verb}delete {stats.packs_deleted} packs ({size(stats.bytes_deleted)}) "
            f"condemned more than the grace period ago{rescued}"
        )
        print(
            f"{verb}condemn {stats.packs_condemned} packs ({size(stats.bytes_condemned)}), "
            f"{stats.packs_repacked} of them after repacking {stats.blobs_repacked} blobs "
            f"into {stats.packs_written} new packs ({size(stats.bytes_repacked)})"
        )
        print(
            f"waiting: {stats.packs_pending} packs ({size(stats.bytes_pending)}) condemned "
            f"earlier, deleted by a prune after the grace period; "
            f"{stats.packs_young} unused packs too young to condemn"
        )
        if stats.temporaries_removed:
            print(
                f"{verb}remove {stats.temporaries_removed} temporary file(s) left by "
                "interrupted writes"
            )
        if stats.forgotten_removed:
            print(
                f"{verb}remove {stats.forgotten_removed} forgotten snapshot(s) still in the "
                "store (an interrupted forget, or put back)"
            )
    render.problems("warning", stats.problems)
    return out
