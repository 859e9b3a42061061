"""Schedules: what runs a profile regularly, as each platform's own
scheduler wants it — a systemd service and timer on Linux, a launchd agent
on macOS, a Task Scheduler task on Windows.

This module only writes the definitions (text, never printed here) and
says where they go and how they are enabled; ``neostore schedule`` writes
and enables them. ``--every`` is ``hourly``, ``daily``, ``weekly``,
``monthly`` or a time of day ``HH:MM`` (daily at that time).
"""

from __future__ import annotations

import plistlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from .errors import UsageError

EVERY = ("hourly", "daily", "weekly", "monthly")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
#: profile names become unit and task names: keep them to what every
#: scheduler takes
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class When:
    every: str  # hourly, daily, weekly, monthly
    hour: int = 0
    minute: int = 0


def parse_every(text: str) -> When:
    if text in EVERY:
        return When(text)
    found = _TIME.fullmatch(text)
    if found is None:
        raise UsageError(f"--every {text}: give hourly, daily, weekly, monthly or HH:MM")
    return When("daily", int(found.group(1)), int(found.group(2)))


def unit_name(profile: str) -> str:
    if not _NAME.fullmatch(profile):
        raise UsageError(f"profile {profile!r}: a scheduled profile's name uses A-Z a-z 0-9 _ . -")
    return f"neostore-{profile}"


@dataclass(frozen=True)
class Job:
    profile: str
    when: When
    #: the command line that runs the profile (the neostore executable first)
    command: list[str]


# -- systemd ---------------------------------------------------------------------


def on_calendar(when: When) -> str:
    if when.every == "daily" and (when.hour or when.minute):
        return f"*-*-* {when.hour:02d}:{when.minute:02d}:00"
    return when.every


def systemd_units(job: Job, system: bool = False) -> dict[str, str]:
    """File name -> content: the service that runs the profile once and
    the timer that starts it. ``Persistent=true`` runs a backup the
    machine was off for at the next boot; a random delay of up to 5
    minutes keeps many machines from starting at once."""
    name = unit_name(job.profile)
    service = "\n".join(
        [
            "[Unit]",
            f"Description=neostore backup: profile {job.profile}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={' '.join(_systemd_quote(a) for a in job.command)}",
            "Nice=10",
            "IOSchedulingClass=idle",
            "",
        ]
    )
    timer = "\n".join(
        [
            "[Unit]",
            f"Description=neostore backup: profile {job.profile}, {job.when.every}",
            "",
            "[Timer]",
            f"OnCalendar={on_calendar(job.when)}",
            "Persistent=true",
            "RandomizedDelaySec=300",
            f"Unit={name}.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def _systemd_quote(arg: str) -> str:
    """systemd's quoting of one ExecStart word (and % doubled: specifiers)."""
    arg = arg.replace("%", "%%")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- launchd ---------------------------------------------------------------------


def launchd_plist(job: Job, log_dir: Path) -> bytes:
    """A launchd agent (``~/Library/LaunchAgents``): ``StartCalendarInterval``
    runs it at the times given, and after a sleep that skipped one."""
    interval: dict[str, int] = {"Minute": job.when.minute}
    if job.when.every != "hourly":
        interval["Hour"] = job.when.hour
    if job.when.every == "weekly":
        interval["Weekday"] = 0  # Sunday
    if job.when.every == "monthly":
        interval["Day"] = 1
    name = unit_name(job.profile)
    return plistlib.dumps(
        {
            "Label": f"org.neostore.{job.profile}",
            "ProgramArguments": list(job.command),
            "StartCalendarInterval": interval,
            "ProcessType": "Background",
            "LowPriorityIO": True,
            "StandardOutPath": str(log_dir / f"{name}.log"),
            "StandardErrorPath": str(log_dir / f"{name}.log"),
        }
    )


# -- Task Scheduler ----------------------------------------------------------------

TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"


def _trigger(when: When) -> str:
    start = f"<StartBoundary>2026-01-04T{when.hour:02d}:{when.minute:02d}:00</StartBoundary>"
    if when.every == "hourly":
        return (
            f"<TimeTrigger>{start}<Enabled>true</Enabled>"
            "<Repetition><Interval>PT1H</Interval><StopAtDurationEnd>false</StopAtDurationEnd>"
            "</Repetition></TimeTrigger>"
        )
    if when.every == "weekly":  # 2026-01-04 is a Sunday
        schedule = (
            "<ScheduleByWeek><WeeksInterval>1</WeeksInterval>"
            "<DaysOfWeek><Sunday /></DaysOfWeek></ScheduleByWeek>"
        )
    elif when.every == "monthly":
        months = "".join(
            f"<{m} />"
            for m in [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ]
        )
        schedule = (
            f"<ScheduleByMonth><DaysOfMonth><Day>1</Day></DaysOfMonth>"
            f"<Months>{months}</Months></ScheduleByMonth>"
        )
    else:
        schedule = "<ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>"
    return f"<CalendarTrigger>{start}<Enabled>true</Enabled>{schedule}</CalendarTrigger>"


def task_xml(job: Job) -> str:
    """A Task Scheduler task (``schtasks /Create /XML FILE /TN NAME``):
    runs as the user who creates it, catches up a missed start
    (``StartWhenAvailable``), never twice at once."""
    program, *args = job.command
    arguments = escape(" ".join(_windows_quote(a) for a in args))
    return (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        f'<Task version="1.2" xmlns="{TASK_NS}">'
        f"<RegistrationInfo><Description>neostore backup: profile "
        f"{escape(job.profile)}</Description></RegistrationInfo>"
        f"<Triggers>{_trigger(job.when)}</Triggers>"
        '<Principals><Principal id="Author"><LogonType>InteractiveToken</LogonType>'
        "<RunLevel>LeastPrivilege</RunLevel></Principal></Principals>"
        "<Settings><MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>"
        "<StartWhenAvailable>true</StartWhenAvailable>"
        "<DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>"
        "<ExecutionTimeLimit>PT72H</ExecutionTimeLimit>"
        "<Priority>7</Priority></Settings>"
        f'<Actions Context="Author"><Exec><Command>{escape(program)}</Command>'
        f"<Arguments>{arguments}</Arguments></Exec></Actions>"
        "</Task>\n"
    )


def _windows_quote(arg: str) -> str:
    if arg and not re.search(r'[\s"]', arg):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def shell_line(command: list[str]) -> str:
    return shlex.join(command)
