"""Retention policies: which snapshots ``forget`` keeps, with restic's rules.

Pure functions of snapshot times and tags. Within a group, snapshots are
taken newest first. Each ``keep-<period> N`` keeps the newest snapshot of
each of the last N periods (hours, days, ISO weeks, months, years) that
have one; ``keep-last N`` the newest N; ``-1`` means no limit. A count
that is not used up by the time the oldest snapshot is reached keeps the
oldest one too (the longest history the counts allow). ``keep-within D``
keeps every snapshot less than D older than the group's newest (not
"now"); ``keep-tag a,b`` every snapshot carrying all of a and b. A
snapshot is kept if any rule keeps it. Times are wall-clock times in the
local time zone, as restic reads them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import UsageError

T = TypeVar("T")

_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?(?:(\d+)h)?")


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def __str__(self) -> str:
        parts = zip((self.years, self.months, self.days, self.hours), "ymdh", strict=True)
        return "".join(f"{n}{unit}" for n, unit in parts if n) or "0h"

    @property
    def zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def before(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` minus this duration, calendar-wise: a month back from
        31 March is 3 March (31 February, carried over), as restic does."""
        months = moment.year * 12 + (moment.month - 1) - self.years * 12 - self.months
        year, month = divmod(months, 12)
        try:
            first = moment.replace(year=year, month=month + 1, day=1)
            shifted = first + dt.timedelta(days=moment.day - 1 - self.days)
            return shifted - dt.timedelta(hours=self.hours)
        except (ValueError, OverflowError):  # before year 1: everything is within
            return dt.datetime.min


def parse_duration(text: str) -> Duration:
    """``1y5m7d2h`` (any of the parts, in that order)."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise UsageError(
            f"invalid duration {text!r}: use e.g. 2y, 6m, 14d, 36h or 1y6m", option="keep_within"
        )
    y, m, d, h = (int(x) if x else 0 for x in match.groups())
    return Duration(y, m, d, h)


@dataclass(frozen=True)
class Policy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration = field(default_factory=Duration)
    tags: tuple[frozenset[str], ...] = ()

    @property
    def empty(self) -> bool:
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        return not any(counts) and self.within.zero and not self.tags

    def describe(self) -> str:
        parts = []
        for count, what in (
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ):
            if count:
                parts.append(f"{'all' if count < 0 else count} {what}")
        text = f"{', '.join(parts)} snapshots" if parts else ""
        extra = []
        if self.tags:
            extra.append("all with tags " + " or ".join(",".join(sorted(t)) for t in self.tags))
        if not self.within.zero:
            extra.append(f"all within {self.within} of the newest")
        return "keep " + " and ".join(x for x in [text, *extra] if x)


@dataclass(frozen=True)
class Item(Generic[T]):
    """What a policy looks at; ``ref`` is the caller's snapshot."""

    time: dt.datetime  # local wall-clock time
    tags: frozenset[str]
    ref: T


@dataclass
class Decision(Generic[T]):
    item: Item[T]
    keep: bool
    reasons: list[str]


@dataclass
class _Bucket:
    reason: str
    left: int  # -1: no limit
    key: Callable[[dt.datetime, int], int]
    previous: int | None = None


def _hour(t: dt.datetime, _: int) -> int:
    return ((t.year * 100 + t.month) * 100 + t.day) * 100 + t.hour


def _day(t: dt.datetime, _: int) -> int:
    return (t.year * 100 + t.month) * 100 + t.day


def _iso_week(t: dt.datetime, _: int) -> int:
    year, week, _day = t.isocalendar()
    return year * 100 + week


def _buckets(policy: Policy) -> list[_Bucket]:
    return [
        _Bucket("last snapshot", policy.last, lambda _t, n: n),
        _Bucket("hourly snapshot", policy.hourly, _hour),
        _Bucket("daily snapshot", policy.daily, _day),
        _Bucket("weekly snapshot", policy.weekly, _iso_week),
        _Bucket("monthly snapshot", policy.monthly, lambda t, _: t.year * 100 + t.month),
        _Bucket("yearly snapshot", policy.yearly, lambda t, _: t.year),
    ]


def apply(
    policy: Policy, items: Sequence[Item[T]], now: dt.datetime | None = None
) -> list[Decision[T]]:
    """Decisions for ``items`` (one group), newest first. An empty policy
    keeps everything (the caller should refuse to run one)."""
    ordered = sorted(items, key=lambda i: i.time, reverse=True)
    if policy.empty:
        return [Decision(i, True, ["policy is empty"]) for i in ordered]
    if not ordered:
        return []
    now = now or dt.datetime.now()
    # the newest snapshot that is not in the future anchors keep-within
    past = [i.time for i in ordered if i.time < now]
    cutoff = None
    if not policy.within.zero:  # no snapshot in the past: all are within (as restic)
        cutoff = policy.within.before(max(past)) if past else dt.datetime.min
    buckets = _buckets(policy)
    out = []
    for number, item in enumerate(ordered):
        reasons = []
        for wanted in policy.tags:
            if wanted <= item.tags:
                reasons.append(f"has tags {','.join(sorted(wanted))}")
        if cutoff is not None and item.time > cutoff:
            reasons.append(f"within {policy.within}")
        oldest = number == len(ordered) - 1
        for bucket in buckets:
            if bucket.left == 0:
                continue
            value = bucket.key(item.time, number)
            if value != bucket.previous or oldest:
                new_period = value != bucket.previous
                reasons.append(bucket.reason if new_period else f"oldest {bucket.reason}")
                bucket.previous = value
                if bucket.left > 0:
                    bucket.left -= 1
        out.append(Decision(item, bool(reasons), reasons))
    return out


def local_time(ns: int) -> dt.datetime:
    """A snapshot time as local wall-clock time (what periods count in)."""
    return dt.datetime.fromtimestamp(ns / 1e9)
