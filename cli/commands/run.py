"""``run PROFILE``: snapshot → forget → prune → check as a profile says,
with its hooks, and one summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from neostore.commandline import ExitCode, Fail

from .. import context, render
from ..options import JsonOpt
from ..say import say

if TYPE_CHECKING:
    from neostore.profiles import Profile

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        envvar="NEOSTORE_CONFIG",
        help="The profiles file (default: config.toml in the configuration folder).",
    ),
]


class _Failed(Exception):
    def __init__(
        self, step: str, message: str, code: int, outcome: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.step, self.code = step, code
        #: the failed step's result, when a step (not a hook) failed
        self.outcome = outcome


def _hook(profile: Profile, when: str, extra: dict[str, str] | None = None) -> None:
    """Run the profile's hook commands for ``when`` by the system shell;
    the first that fails stops the run (on-failure hooks are all run)."""
    env = dict(os.environ, NEOSTORE_PROFILE=profile.name, **(extra or {}))
    for command in profile.hooks(when):
        done = subprocess.run(command, shell=True, env=env, stdin=subprocess.DEVNULL, check=False)  # noqa: S602 -- the user's own shell line
        if done.returncode != 0 and when != "on-failure":
            raise _Failed(when, f"hook {command!r} exited {done.returncode}", ExitCode.FATAL)


def _step(step: str, argv: list[str], progress: bool) -> dict[str, Any]:
    """One neostore command of the profile, in its own process, with --json;
    with ``progress``, its progress lines are passed on as they come."""
    first = ["--progress"] if progress else []
    command = [sys.executable, "-m", "neostore_cli.main", *first, argv[0], "--json", *argv[1:]]
    problems = []
    # stdout to a file: a large result must not fill a pipe nobody reads yet
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert child.stderr is not None
        for raw in child.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                event = json.loads(line)
            except ValueError:
                event = {"type": "error", "message": line}
            if event.get("type") == "progress":
                print(line, file=sys.stderr, flush=True)
            else:
                problems.append(event)
        code = child.wait()
        out.seek(0)
        stdout = out.read()
    try:
        result = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        result = None
    outcome = {"step": step, "exit_code": code, "result": result, "problems": problems}
    if code not in (ExitCode.OK, ExitCode.PARTIAL):
        errors = [p["message"] for p in problems if p.get("type") == "error"]
        message = errors[-1] if errors else f"exited {code}"
        raise _Failed(step, f"{step}: {message}", code, outcome)
    return outcome


def _summary(name: str, steps: list[dict[str, Any]], took: float) -> str:
    parts = []
    for s in steps:
        r = s["result"] or {}
        if s["step"] == "snapshot":
            added = render.size(r.get("bytes_added", 0))
            parts.append(
                f"snapshot {str(r.get('id', ''))[:8]} ({r.get('files_new', 0)} new, "
                f"{r.get('files_changed', 0)} changed, added {added})"
            )
        elif s["step"] == "forget":
            removed = sum(len(g.get("remove", [])) for g in (s["result"] or []))
            parts.append(f"forgot {removed}")
        elif s["step"] == "prune":
            parts.append(f"pruned {render.size(r.get('bytes_deleted', 0))}")
        elif s["step"] == "check":
            parts.append("check ok" if r.get("ok") else "check found problems")
    return f"profile {name}: " + ", ".join(parts) + f" in {took:.1f}s"


def run(
    profile_name: Annotated[str, typer.Argument(metavar="PROFILE", help="A profile's name.")],
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Run a profile from the configuration file: snapshot, then forget,
    prune and check as it says, with its hooks (README, "Profiles")."""
    from neostore import filelocks
    from neostore.core.localstate import state_dir
    from neostore.errors import UsageError
    from neostore.profiles import get_profile

    try:
        profile = get_profile(profile_name, Path(config) if config else None)
    except UsageError as e:
        raise context.usage(e) from None
    locks = state_dir() / "profiles"
    locks.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = filelocks.try_acquire(locks / f"{profile.name}.lock")
    if lock is None:
        raise Fail(f"profile {profile.name} is already running (a second run waits for none)")
    started, steps, code = time.monotonic(), [], 0
    try:
        _hook(profile, "before")
        for step, argv in profile.steps():
            steps.append(_step(step, argv, json_output and context.progress_requested()))
            code = max(code, steps[-1]["exit_code"])
        _hook(profile, "after")
    except _Failed as failure:
        if failure.outcome is not None:
            steps.append(failure.outcome)
        code = failure.code
        _hook(
            profile,
            "on-failure",
            {"NEOSTORE_FAILED_STEP": failure.step, "NEOSTORE_ERROR": str(failure)},
        )
        _report(profile.name, steps, time.monotonic() - started, code, json_output, str(failure))
        raise typer.Exit(code) from None
    finally:
        lock.release()
    _report(profile.name, steps, time.monotonic() - started, code, json_output, None)
    if code:
        raise typer.Exit(code)


def _report(
    name: str, steps: list[dict[str, Any]], took: float, code: int, as_json: bool, error: str | None
) -> None:
    if as_json:
        render.emit(
            {"profile": name, "ok": code == 0, "exit_code": code, "error": error,
             "steps": steps, "duration": round(took, 3)}
        )  # fmt: skip
        return
    for s in steps:
        for problem in s["problems"]:
            if problem.get("type") in ("warning", "error", "tampering"):
                say(
                    problem["type"],
                    f"{s['step']}: {problem.get('message', '')}",
                    problem.get("path"),
                )
    if error is not None:
        say("error", f"profile {name} failed at {error}")
    print(_summary(name, steps, took))
