"""Retention policies: table-driven cases, and the same policies run by the
real restic on snapshots with the same times and tags (a differential test)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neostore.errors import UsageError
from neostore.lifecycle.retention import Duration, Item, Policy, apply, parse_duration

T0 = dt.datetime(2026, 11, 30, 12, 0)


def kept(policy: Policy, times: list[dt.datetime], tags: list[set[str]] | None = None) -> list[int]:
    """Indices (into ``times``) of the snapshots the policy keeps."""
    items = [Item(t, frozenset((tags or [set()] * len(times))[n]), n) for n, t in enumerate(times)]
    return sorted(d.item.ref for d in apply(policy, items, now=T0) if d.keep)


def d(year: int, month: int, day: int = 1, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour)


def hours_ago(*hours: float) -> list[dt.datetime]:
    return [T0 - dt.timedelta(hours=h) for h in hours]


@pytest.mark.parametrize(
    ("policy", "times", "expected"),
    [
        # keep-last: the newest N, whatever their times
        (Policy(last=2), hours_ago(1, 2, 3, 4), [0, 1]),
        (Policy(last=-1), hours_ago(1, 2, 3), [0, 1, 2]),
        # keep-daily: the newest of each of the last N days; a count left
        # over when the oldest is reached keeps the oldest too
        (Policy(daily=2), hours_ago(1, 2, 25, 26, 49, 50), [0, 2]),
        (Policy(daily=3), hours_ago(1, 2, 25, 26), [0, 2, 3]),
        (Policy(daily=2), hours_ago(1, 2, 3), [0, 2]),
        # hourly and daily together: either keeps
        (Policy(hourly=2, daily=2), hours_ago(0.1, 0.2, 1.1, 25, 26, 49), [0, 2, 3]),
        # weekly counts ISO weeks (Mon 2026-11-30 starts week 49)
        (
            Policy(weekly=2),
            [d(2026, 11, 30, 1), d(2026, 11, 29, 23), d(2026, 11, 23, 1), d(2026, 11, 22, 1)],
            [0, 1],
        ),
        (Policy(monthly=2), [d(2026, 11, 3), d(2026, 11, 1), d(2026, 10, 31), d(2026, 9)], [0, 2]),
        (Policy(yearly=1), [d(2026, 1, 1), d(2025, 12, 31)], [0]),
        # keep-within: relative to the newest snapshot, not to now
        (Policy(within=Duration(days=1)), hours_ago(100, 110, 123.5, 125), [0, 1, 2]),
        # a future snapshot does not anchor keep-within (but is kept: it is newer)
        (Policy(within=Duration(hours=2)), hours_ago(-48, 1, 2.5, 4), [0, 1, 2]),
        # every snapshot in the future: nothing anchors keep-within, all are kept
        (Policy(within=Duration(days=1)), hours_ago(-50, -100), [0, 1]),
        # a duration reaching before year 1 keeps everything instead of failing
        (Policy(within=Duration(years=3000)), hours_ago(1, 90000), [0, 1]),
        # calendar months: a month before 31 March is 3 March (restic's carry)
        (Policy(within=Duration(months=1)), [d(2026, 3, 31), d(2026, 3, 3, 1), d(2026, 3)], [0, 1]),
    ],
)  # fmt: skip
def test_policy_table(policy: Policy, times: list[dt.datetime], expected: list[int]) -> None:
    assert kept(policy, times) == expected


def test_tags_keep_without_counting() -> None:
    times = hours_ago(1, 2, 3, 4)
    tags = [set(), {"monthly", "db"}, {"db"}, {"monthly"}]
    policy = Policy(last=1, tags=(frozenset({"monthly", "db"}), frozenset({"pinned"})))
    assert kept(policy, times, tags) == [0, 1]
    assert kept(Policy(tags=(frozenset({"monthly"}),)), times, tags) == [1, 3]


def test_empty_policy_keeps_everything_and_durations_parse() -> None:
    assert kept(Policy(), hours_ago(1, 2)) == [0, 1]
    assert parse_duration("1y6m") == Duration(1, 6, 0, 0)
    assert parse_duration("36h") == Duration(hours=36)
    assert str(parse_duration("2y3m4d5h")) == "2y3m4d5h"
    for bad in ("", "5", "1d2y", "3w", "-1d"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def _restic_times(seed: int) -> list[tuple[dt.datetime, set[str]]]:
    """Three years of irregular snapshots: bursts within an hour, several a
    day, gaps of weeks; the oldest alone in its year (so that restic 0.14,
    which lacks the keep-the-oldest rule, and newer releases agree)."""
    rng = random.Random(seed)
    out = [(dt.datetime(2022, 6, 15, 8, 30), {"first"})]
    moment = dt.datetime(2023, 1, 2, 9, 0)
    while moment < dt.datetime(2025, 6, 30):
        out.append((moment, {rng.choice(["a", "b"])}))
        step = rng.choice([0.3, 2, 26, 24 * 20, 24 * 60])
        moment += dt.timedelta(hours=step, minutes=rng.randrange(60))
    return out


RESTIC_POLICIES = [
    ["--keep-last", "5"],
    ["--keep-hourly", "6"],
    ["--keep-daily", "7"],
    ["--keep-weekly", "5"],
    ["--keep-monthly", "12"],
    ["--keep-yearly", "10"],
    ["--keep-daily", "7", "--keep-weekly", "5", "--keep-monthly", "12", "--keep-yearly", "75"],
    ["--keep-within", "1m15d"],
    ["--keep-within", "2y", "--keep-last", "1"],
    ["--keep-tag", "a", "--keep-last", "2"],
    ["--keep-hourly", "3", "--keep-weekly", "20", "--keep-yearly", "1"],
]
# (restic 0.14, the one CI installs, has no "-1" for "unlimited": the
# table above covers it)


def _policy_from_args(args: list[str]) -> Policy:
    values: dict[str, object] = {}
    tags = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        name = flag.removeprefix("--keep-")
        if name == "within":
            values["within"] = parse_duration(value)
        elif name == "tag":
            tags.append(frozenset(value.split(",")))
        else:
            values[name] = int(value)
    return Policy(tags=tuple(tags), **values)  # type: ignore[arg-type]


#: restic commands run at once: each spends most of its time in its own key
#: derivation (one core) and waiting out its lock check
RESTIC_JOBS = 3


def _restic_or_skip() -> str:
    """The restic binary; without one the test fails under CI (which installs
    it) and is skipped, loudly, elsewhere."""
    restic = shutil.which("restic")
    if restic is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(
                "restic is not installed: scripts/test.sh installs it (apt-get install restic)"
            )
        pytest.skip(
            "restic is not installed: the differential test against restic did NOT run "
            "(scripts/test.sh installs it; under CI this is a failure)"
        )
    return restic


def test_same_decisions_as_restic(tmp_path: Path) -> None:
    restic_bin = _restic_or_skip()
    env = dict(
        os.environ,
        TZ="UTC",
        RESTIC_PASSWORD="pw",
        RESTIC_REPOSITORY=str(tmp_path / "r"),
        RESTIC_CACHE_DIR=str(tmp_path / "restic-cache"),
    )
    env.pop("RESTIC_PASSWORD_FILE", None)

    def restic(*args: str) -> str:
        done = subprocess.run([restic_bin, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    restic("init")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    snapshots = _restic_times(seed=7)
    assert len(snapshots) > 30
    backups = [
        (
            "backup", "-q", "--time", moment.strftime("%Y-%m-%d %H:%M:%S"),
            *[x for t in sorted(tags) for x in ("--tag", t)], str(src),
        )
        for moment, tags in snapshots
    ]  # fmt: skip
    # backups take non-exclusive locks: several run at once
    with ThreadPoolExecutor(RESTIC_JOBS) as pool:
        list(pool.map(lambda args: restic(*args), backups))
    made = json.loads(restic("snapshots", "--json"))
    by_id = {s["id"]: dt.datetime.fromisoformat(s["time"][:19]) for s in made}
    assert len(by_id) == len(snapshots)
    # each backup has its own time and tags, whatever order they ran in
    assert {by_id[s["id"]]: set(s.get("tags") or []) for s in made} == dict(snapshots)
    times = [t for t, _ in snapshots]
    tags = [tg for _, tg in snapshots]
    # a forget takes an exclusive lock even with --dry-run (restic 0.14);
    # --dry-run only reads, and nothing writes any more: no lock needed
    with ThreadPoolExecutor(RESTIC_JOBS) as pool:
        answers = list(
            pool.map(
                lambda args: restic("--no-lock", "forget", "--dry-run", "--json", *args),
                RESTIC_POLICIES,
            )
        )
    checked = 0
    for args, answer in zip(RESTIC_POLICIES, answers, strict=True):
        groups = json.loads(answer)
        assert len(groups) == 1
        theirs = sorted(times.index(by_id[s["id"]]) for s in groups[0]["keep"] or [])
        ours = kept(_policy_from_args(args), times, tags)
        assert ours == theirs, (args, sorted(set(ours) ^ set(theirs)))
        assert 0 < len(ours) < len(times)
        checked += 1
    assert checked == len(RESTIC_POLICIES)
