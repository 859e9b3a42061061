"""``schedule install|list|remove``: run a profile regularly with the
platform's own scheduler (systemd timer, launchd agent, Task Scheduler)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import click
import typer

from neostore.commandline import ExitCode, Fail

from .. import context
from ..say import say
from .run import ConfigOpt

KINDS = ["systemd", "launchd", "task"]
KindOpt = Annotated[
    str | None,
    typer.Option(
        "--kind",
        click_type=click.Choice(KINDS),
        help="Which scheduler's format (default: this platform's); with --print for another.",
    ),
]
SystemOpt = Annotated[
    bool, typer.Option("--system", help="A system-wide systemd timer (root) instead of a user one.")
]


def _kind(kind: str | None) -> str:
    if kind is not None:
        return kind
    return {"darwin": "launchd", "win32": "task"}.get(sys.platform, "systemd")


def _systemd_dir(system: bool) -> Path:
    if system:
        return Path("/etc/systemd/system")
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "systemd" / "user"


def _launchd_dir() -> Path:
    return Path(os.path.expanduser("~/Library/LaunchAgents"))


def _command(profile: str, config: str | None) -> list[str]:
    """What the scheduler runs: this installation's neostore, with the
    configuration file spelled out (a timer has no shell environment)."""
    from neostore.profiles import profiles_file

    found = shutil.which("neostore")
    program = [found] if found else [sys.executable, "-m", "neostore_cli.main"]
    path = Path(config) if config else profiles_file()
    return [*program, "run", profile, "--config", str(path.resolve())]


def _files(
    kind: str, profile: str, every: str, config: str | None, system: bool
) -> dict[Path, bytes]:
    from neostore import schedules
    from neostore.errors import UsageError

    try:
        job = schedules.Job(profile, schedules.parse_every(every), _command(profile, config))
        if kind == "systemd":
            units = schedules.systemd_units(job, system)
            return {_systemd_dir(system) / n: text.encode() for n, text in units.items()}
        if kind == "launchd":
            logs = Path(os.path.expanduser("~/Library/Logs"))
            plist = _launchd_dir() / f"org.neostore.{profile}.plist"
            return {plist: schedules.launchd_plist(job, logs)}
        name = schedules.unit_name(profile)
        return {Path(f"{name}.xml"): schedules.task_xml(job).encode("utf-16")}
    except UsageError as e:
        raise context.usage(e) from None


def _enable(kind: str, profile: str, files: dict[Path, bytes], system: bool) -> list[list[str]]:
    """The commands that load what was written."""
    from neostore.schedules import unit_name

    name = unit_name(profile)
    if kind == "systemd":
        scope = [] if system else ["--user"]
        return [
            ["systemctl", *scope, "daemon-reload"],
            ["systemctl", *scope, "enable", "--now", f"{name}.timer"],
        ]
    if kind == "launchd":
        return [["launchctl", "load", "-w", str(next(iter(files)))]]
    return [["schtasks", "/Create", "/F", "/TN", name, "/XML", str(next(iter(files)))]]


def _run_all(commands: list[list[str]]) -> str | None:
    """Run each; the first failure's message, or None."""
    for command in commands:
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as e:
            return f"{command[0]}: {e.strerror or e}"
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            return f"{' '.join(command)} exited {done.returncode}: {detail[-1] if detail else ''}"
    return None


def install(
    profile: Annotated[str, typer.Argument(metavar="PROFILE")],
    every: Annotated[
        str, typer.Option("--every", metavar="hourly|daily|weekly|monthly|HH:MM", help="When.")
    ],
    config: ConfigOpt = None,
    system: SystemOpt = False,
    kind: KindOpt = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Show what would be written; change nothing.")
    ] = False,
) -> None:
    """Run PROFILE regularly: writes and enables a systemd timer (Linux),
    a launchd agent (macOS) or a Task Scheduler task (Windows)."""
    from neostore.errors import UsageError
    from neostore.profiles import get_profile

    chosen = _kind(kind)
    try:
        settings = get_profile(profile, Path(config) if config else None).settings
    except UsageError as e:
        raise context.usage(e) from None
    files = _files(chosen, profile, every, config, system)
    if print_only:
        for path, data in files.items():
            print(f"# {path}")
            print(data.decode("utf-16" if chosen == "task" else "utf-8"))
        return
    if "password-file" not in settings and "password-command" not in settings:
        say("warning", f"profile {profile} has no password-file or password-command: "
            "a scheduled run has no terminal to ask")  # fmt: skip
    if chosen == "task":
        folder = Path(tempfile.mkdtemp(prefix="neostore-task-"))
        files = {folder / p.name: d for p, d in files.items()}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path}")
    failed = _run_all(_enable(chosen, profile, files, system))
    if failed:
        raise Fail(f"written, but not enabled: {failed}")
    if chosen == "systemd" and not system:
        user = os.environ.get("USER", "USER")
        say("notice", "a user timer runs while you are logged in; on a server, "
            f"`loginctl enable-linger {user}` runs it without a session")  # fmt: skip


def remove(
    profile: Annotated[str, typer.Argument(metavar="PROFILE")],
    system: SystemOpt = False,
    kind: KindOpt = None,
) -> None:
    """Stop running PROFILE on a schedule and remove what install wrote."""
    from neostore.schedules import unit_name

    chosen, name = _kind(kind), unit_name(profile)
    if chosen == "systemd":
        scope = [] if system else ["--user"]
        stop = [["systemctl", *scope, "disable", "--now", f"{name}.timer"]]
        paths = [_systemd_dir(system) / f"{name}.{s}" for s in ("timer", "service")]
    elif chosen == "launchd":
        paths = [_launchd_dir() / f"org.neostore.{profile}.plist"]
        stop = [["launchctl", "unload", "-w", str(paths[0])]]
    else:
        paths, stop = [], [["schtasks", "/Delete", "/F", "/TN", name]]
    if chosen != "task" and not any(p.exists() for p in paths):
        raise Fail(f"profile {profile} is not scheduled ({paths[0]} does not exist)")
    failed = _run_all(stop)
    for path in paths:
        path.unlink(missing_ok=True)
        print(f"removed {path}")
    if failed:
        say("warning", f"could not stop it: {failed}")
        raise typer.Exit(ExitCode.FATAL)


def schedule_list(system: SystemOpt = False, kind: KindOpt = None) -> None:
    """Profiles scheduled on this machine (by this user, or --system)."""
    chosen = _kind(kind)
    if chosen == "task":
        raise Fail(_run_all([["schtasks", "/Query", "/TN", "\\"]]) or "see Task Scheduler")
    folder = _systemd_dir(system) if chosen == "systemd" else _launchd_dir()
    pattern = "neostore-*.timer" if chosen == "systemd" else "org.neostore.*.plist"
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    for path in found:
        when = ""
        if chosen == "systemd":
            lines = path.read_text().splitlines()
            when = next((x.split("=", 1)[1] for x in lines if x.startswith("OnCalendar=")), "")
        profile = path.name.removeprefix("neostore-").removeprefix("org.neostore.")
        print(f"{profile.rsplit('.', 1)[0]:<20} {when:<24} {path}")
    if not found:
        say("notice", f"no profile is scheduled ({folder})")
